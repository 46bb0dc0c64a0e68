"""pix2pix training step (junyanz/pytorch-CycleGAN-and-pix2pix, models/pix2pix_model.py,
Pix2PixModel.optimize_parameters), K steps in float64 from the harness's weights and batches.
See parity_common.py for the exchange and the models."""
import torch

import parity_common as pc


def main():
    ex = pc.Exchange(pc.main_folder())
    s = ex.settings
    net_g = ex.load('G', pc.build_generator(s['generator']))
    net_d = ex.load('D', pc.build_discriminator(s['discriminator'], 6))  # conditional: A and B
    net_g.train()
    net_d.train()
    gan = pc.GANLoss(s['gan_mode'])
    opt_g = pc.adam(net_g.parameters(), s)
    opt_d = pc.adam(net_d.parameters(), s)
    for real_a, real_b in ex.batches:
        fake_b = net_g(real_a)  # forward()
        # backward_D: fake pair (detached) then real pair, 0.5 * (fake + real).
        pc.set_requires_grad([net_d], True)
        opt_d.zero_grad()
        loss_d_fake = gan(net_d(torch.cat((real_a, fake_b), 1).detach()), False)
        loss_d_real = gan(net_d(torch.cat((real_a, real_b), 1)), True)
        ((loss_d_fake + loss_d_real) * 0.5).backward()
        opt_d.step()
        # backward_G against the updated, frozen D: GAN + lambda_L1 * L1.
        pc.set_requires_grad([net_d], False)
        opt_g.zero_grad()
        loss_g_gan = gan(net_d(torch.cat((real_a, fake_b), 1)), True)
        loss_g_l1 = torch.nn.functional.l1_loss(fake_b, real_b) * s['lambda_L1']
        (loss_g_gan + loss_g_l1).backward()
        opt_g.step()
        ex.log({'G_GAN': loss_g_gan, 'G_L1': loss_g_l1, 'D_real': loss_d_real, 'D_fake': loss_d_fake})
    ex.write({'G': net_g, 'D': net_d})


if __name__ == '__main__':
    main()
