"""DCD's distillation step in its paper form with a frozen teacher G, as ganlite implements it
(docs/fidelity.md "DCD"), written from the DCD paper and poopit/DCD-official
(distillers/base_cycleganbest_distiller.py, cycleganbest_distiller.py), read, never copied.

Networks: a frozen teacher G (eval mode, no gradients), the student G, the student's D, the teacher
D (trained online from its initial weights), adapters psi_S (trained with the student) and psi_T
(init_net's weights, kept in eval mode: its BatchNorm uses its running statistics and never
updates them), each 1x1 conv (no bias) -> BatchNorm -> ReLU to the D's input channels.

One step (ganlite's order, the CAT distiller's for the student's D):
  1. teacher (no gradient) and student forwards, with the four taps;
  2. student D: 0.5 * (GAN(D(fake S(A)), 0) + GAN(D(real B), 1)), step;
  3. teacher D: 0.5 * (GAN(D_T(T(A)), 0) + GAN(D_T(B), 1)), step (conditional on A for pix2pix);
  4. student: lambda_gan GAN(D(S(A)), 1) + lambda_recon L1(S(A), B or T(A))
     + w * sum_taps L1(D_T'(psi_S(S_i)), D_T'(psi_T(T_i))) + lambda_dcd_gan GAN(D_T(S(A)), 1),
     D_T' the teacher D cut before its last conv (the output of its last LeakyReLU), fed the
     adapter outputs at tap resolution (resized bilinearly to the image size only when too
     small for the D); the teacher side without gradient; step.
"""
import torch
import torch.nn.functional as F

import parity_common as pc


def adapters(widths, out):
    return torch.nn.ModuleList([
        torch.nn.Sequential(torch.nn.Conv2d(c, out, 1, bias=False), torch.nn.BatchNorm2d(out), torch.nn.ReLU())
        for c in widths])


def fits(n_layers, side):
    """Whether a side x side input passes every conv of an NLayerDiscriminator (4x4 kernels,
    padding 1: n_layers stride-2 convs, then two stride-1) with InstanceNorm maps above 1x1."""
    sizes = []
    for stride in [2] * n_layers + [1, 1]:
        side = (side + 2 - 4) // stride + 1 if side + 2 - 4 >= 0 else 0
        sizes.append(side)
    return all(s >= 1 for s in sizes) and all(s > 1 for s in sizes[1:-1])


def cut(net_d, x):
    """The D cut before its last conv."""
    return net_d.model[:-1](x)


def dcd_loss(d_t, psi_s, psi_t, s_taps, t_taps, image_size, n_layers):
    total = 0.0
    for a_s, a_t, s, t in zip(psi_s, psi_t, s_taps, t_taps):
        def fit(x):
            if fits(n_layers, x.shape[2]):
                return x
            return F.interpolate(x, size=image_size, mode='bilinear', align_corners=False)
        with torch.no_grad():
            target = cut(d_t, fit(a_t(t)))
        total = total + F.l1_loss(cut(d_t, fit(a_s(s))), target)
    return total


def main():
    ex = pc.Exchange(pc.main_folder())
    s = ex.settings
    d = pc.Distiller(ex)
    nc = s['d_input_nc']
    d_t = ex.load('D_teacher', pc.build_discriminator(s['teacher_discriminator'], nc))
    psi_s = ex.load('A_dcd', adapters(s['student_tap_channels'], nc))
    psi_t = ex.load('A_dcd_teacher', adapters(s['teacher_tap_channels'], nc))
    d_t.train()
    psi_s.train()
    psi_t.eval()
    pc.set_requires_grad([d_t, psi_t], False)
    opt_g = pc.adam(list(d.student.parameters()) + list(psi_s.parameters()), s)
    opt_d = pc.adam(d.net_d.parameters(), s)
    opt_dt = pc.adam(d_t.parameters(), s)
    n_layers = s['teacher_discriminator']['n_layers']
    for real_a, real_b in ex.batches:
        d.forward(real_a)
        pc.set_requires_grad([d.net_d], True)
        opt_d.zero_grad()
        loss_d_real, loss_d_fake = d.backward_d(real_a, real_b)
        opt_d.step()
        # The teacher D on real B against the teacher's output.
        pc.set_requires_grad([d_t], True)
        opt_dt.zero_grad()
        t_fake = d.gan(d_t(d.d_input(real_a, d.t_fake.detach())), False, for_discriminator=True)
        t_real = d.gan(d_t(d.d_input(real_a, real_b)), True, for_discriminator=True)
        ((t_fake + t_real) * 0.5).backward()
        opt_dt.step()
        pc.set_requires_grad([d_t], False)
        # The student.
        pc.set_requires_grad([d.net_d], False)
        opt_g.zero_grad()
        loss_gan, loss_recon = d.g_losses(real_a, real_b)
        image_size = tuple(real_a.shape[2:])
        loss_dcd = dcd_loss(d_t, psi_s, psi_t, d.s_taps.list(), d.t_taps.list(), image_size, n_layers) * s['weight']
        loss_dcd_gan = d.gan(d_t(d.d_input(real_a, d.s_fake)), True, for_discriminator=False) * s['lambda_dcd_gan']
        (loss_gan + loss_recon + loss_dcd + loss_dcd_gan).backward()
        opt_g.step()
        ex.log({'G_gan': loss_gan, 'G_recon': loss_recon, 'G_dcd': loss_dcd, 'G_dcd_gan': loss_dcd_gan,
                'D_real': loss_d_real, 'D_fake': loss_d_fake, 'D_teacher_real': t_real, 'D_teacher_fake': t_fake})
    modules = d.modules()
    modules.update({'A_dcd': psi_s, 'D_teacher': d_t, 'A_dcd_teacher': psi_t})
    ex.write(modules)


if __name__ == '__main__':
    main()
