"""CycleGAN training step (junyanz/pytorch-CycleGAN-and-pix2pix, models/cycle_gan_model.py,
CycleGANModel.optimize_parameters), K steps in float64 from the harness's weights and batches.
The history pools (util/image_pool.py, ImagePool.query) store and return every fake while they
hold fewer than pool_size images; only a full pool draws at random. With pool_size 50 and K
steps of a small batch the pools never fill, so the step is deterministic and the pool is the
identity on the fakes (asserted below). See parity_common.py for the exchange and the models."""
import itertools

import torch.nn.functional as F

import parity_common as pc


def main():
    ex = pc.Exchange(pc.main_folder())
    s = ex.settings
    pooled = [0, 0]  # images stored in the fake_B and fake_A pools

    def query_pool(which, fakes):
        if s['pool_size'] == 0:
            return fakes
        assert pooled[which] + fakes.size(0) <= s['pool_size'], 'a full pool draws at random: shorten the run'
        pooled[which] += fakes.size(0)
        return fakes
    g_a = ex.load('G_A', pc.build_generator(s['generator']))
    g_b = ex.load('G_B', pc.build_generator(s['generator']))
    d_a = ex.load('D_A', pc.build_discriminator(s['discriminator'], 3))
    d_b = ex.load('D_B', pc.build_discriminator(s['discriminator'], 3))
    for net in (g_a, g_b, d_a, d_b):
        net.train()
    gan = pc.GANLoss(s['gan_mode'])
    opt_g = pc.adam(itertools.chain(g_a.parameters(), g_b.parameters()), s)
    opt_d = pc.adam(itertools.chain(d_a.parameters(), d_b.parameters()), s)
    lambda_a, lambda_b, lambda_idt = s['lambda_A'], s['lambda_B'], s['lambda_identity']
    for real_a, real_b in ex.batches:
        # forward()
        fake_b = g_a(real_a)
        rec_a = g_b(fake_b)
        fake_a = g_b(real_b)
        rec_b = g_a(fake_a)
        # G_A and G_B with both D's frozen (backward_G).
        pc.set_requires_grad([d_a, d_b], False)
        opt_g.zero_grad()
        if lambda_idt > 0:
            loss_idt_a = F.l1_loss(g_a(real_b), real_b) * lambda_b * lambda_idt
            loss_idt_b = F.l1_loss(g_b(real_a), real_a) * lambda_a * lambda_idt
        else:
            loss_idt_a = loss_idt_b = 0.0
        loss_g_a = gan(d_a(fake_b), True)
        loss_g_b = gan(d_b(fake_a), True)
        loss_cycle_a = F.l1_loss(rec_a, real_a) * lambda_a
        loss_cycle_b = F.l1_loss(rec_b, real_b) * lambda_b
        (loss_g_a + loss_g_b + loss_cycle_a + loss_cycle_b + loss_idt_a + loss_idt_b).backward()
        opt_g.step()
        # D_A and D_B (backward_D_A, backward_D_B -> backward_D_basic): real, then the pool's fake.
        pc.set_requires_grad([d_a, d_b], True)
        opt_d.zero_grad()
        losses_d = []
        for net_d, real, fake in ((d_a, real_b, query_pool(0, fake_b)), (d_b, real_a, query_pool(1, fake_a))):
            loss_real = gan(net_d(real), True)
            loss_fake = gan(net_d(fake.detach()), False)
            loss = (loss_real + loss_fake) * 0.5
            loss.backward()
            losses_d.append(loss)
        opt_d.step()
        ex.log({'G_A': loss_g_a, 'G_B': loss_g_b, 'cycle_A': loss_cycle_a, 'cycle_B': loss_cycle_b,
                'idt_A': loss_idt_a, 'idt_B': loss_idt_b, 'D_A': losses_d[0], 'D_B': losses_d[1]})
    ex.write({'G_A': g_a, 'G_B': g_b, 'D_A': d_a, 'D_B': d_b})


if __name__ == '__main__':
    main()
