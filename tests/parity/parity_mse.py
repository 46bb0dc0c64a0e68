"""GAN Compression's MSE distillation step (mit-han-lab/gan-compression,
distillers/base_resnet_distiller.py and resnet_distiller.py, ResnetDistiller): per mapping layer
a 1x1 adaptor (with bias) maps the student's tap to the teacher's width, loss MSE(netA(S), T),
summed over the layers, times lambda_distill; the adaptors train with the student's Adam.

Step order: see ORDER below."""
import torch
import torch.nn.functional as F

import parity_common as pc

# gan-compression's ResnetDistiller.optimize_parameters computes backward_D, then backward_G
# against the same (not yet updated) D, then steps both optimizers ('release'); ganlite's mse
# declares that order (UpdateOrder::kSimultaneous). 'cat' steps D before the G loss, as CAT's
# distillers (and ganlite's other methods) do; test_parity runs both to show they differ.
ORDER = 'release'


def main():
    ex = pc.Exchange(pc.main_folder())
    s = ex.settings
    d = pc.Distiller(ex)
    t_widths = [int(c) for c in s['teacher_tap_channels']]
    s_widths = [int(c) for c in s['student_tap_channels']]
    adaptors = torch.nn.ModuleList([torch.nn.Conv2d(fs, ft, 1) for fs, ft in zip(s_widths, t_widths)])
    ex.load('A_mse', adaptors)
    order = s.get('order', ORDER)
    opt_g = pc.adam(list(d.student.parameters()) + list(adaptors.parameters()), s)
    opt_d = pc.adam(d.net_d.parameters(), s)
    for real_a, real_b in ex.batches:
        opt_d.zero_grad()
        opt_g.zero_grad()
        d.forward(real_a)
        pc.set_requires_grad([d.net_d], True)
        loss_d_real, loss_d_fake = d.backward_d(real_a, real_b)
        if order == 'cat':
            opt_d.step()
        pc.set_requires_grad([d.net_d], False)
        loss_gan, loss_recon = d.g_losses(real_a, real_b)
        loss_mse = sum(F.mse_loss(a(st), tt) for a, st, tt in zip(adaptors, d.s_taps.list(), d.t_taps.list()))
        loss_mse = loss_mse * s['weight']
        (loss_gan + loss_recon + loss_mse).backward()
        if order == 'release':
            opt_d.step()
        opt_g.step()
        ex.log({'G_gan': loss_gan, 'G_recon': loss_recon, 'G_mse': loss_mse, 'D_real': loss_d_real,
                'D_fake': loss_d_fake})
    modules = d.modules()
    modules['A_mse'] = adaptors
    ex.write(modules)


if __name__ == '__main__':
    main()
