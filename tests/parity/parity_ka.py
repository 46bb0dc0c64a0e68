"""CAT's KA distillation step (snap-research/CAT, distillers/inception_distiller.py,
InceptionDistiller.optimize_parameters and calc_distill_loss with --distill_G_loss_type ka;
utils/common.py KA), K steps in float64 from the harness's weights and batches.

CAT runs the student under DataParallel: each GPU replica's taps give one -KA and the replicas'
losses are summed. Here the batch is split as DataParallel scatters it (torch.chunk into
ka_chunks parts) and -KA is summed over the parts; the GAN and reconstruction losses are over
the whole batch, as CAT computes them on the gathered outputs. CAT logs this term as G_distill;
ganlite calls it G_ka."""
import torch

import parity_common as pc


def KA(X, Y):
    # Uncentred linear kernel alignment of the flattened samples, as CAT's utils/common.py.
    x = X.reshape(X.size(0), -1)
    y = Y.reshape(Y.size(0), -1)
    gx = x @ x.T
    gy = y @ y.T
    return (gx * gy).sum() / ((gx ** 2).sum() * (gy ** 2).sum()) ** 0.5


def distill_loss(student_taps, teacher_taps, parts):
    losses = []
    for s, t in zip(student_taps, teacher_taps):
        losses.append(sum(-KA(sc, tc) for sc, tc in zip(torch.chunk(s, parts), torch.chunk(t, parts))))
    return sum(losses)


def main():
    ex = pc.Exchange(pc.main_folder())
    s = ex.settings
    d = pc.Distiller(ex)
    opt_g = pc.adam(d.student.parameters(), s)
    opt_d = pc.adam(d.net_d.parameters(), s)
    for real_a, real_b in ex.batches:
        d.forward(real_a)
        pc.set_requires_grad([d.net_d], True)
        opt_d.zero_grad()
        loss_d_real, loss_d_fake = d.backward_d(real_a, real_b)
        opt_d.step()
        pc.set_requires_grad([d.net_d], False)
        opt_g.zero_grad()
        loss_gan, loss_recon = d.g_losses(real_a, real_b)
        loss_ka = distill_loss(d.s_taps.list(), d.t_taps.list(), s['ka_chunks']) * s['weight']
        (loss_gan + loss_recon + loss_ka).backward()
        opt_g.step()
        ex.log({'G_gan': loss_gan, 'G_recon': loss_recon, 'G_ka': loss_ka, 'D_real': loss_d_real,
                'D_fake': loss_d_fake})
    ex.write(d.modules())


if __name__ == '__main__':
    main()
