"""Online distillation step (OMGD, bytedance/OMGD; DCD-official's Pix2PixBestDistiller built on it),
pix2pix, written from the papers and the public code (read, never copied):
distillers/pix2pixbest_distiller.py / multiteacher_distiller.py, optimize_parameters, and OMGD's
cycleganbest_distiller.py, backward_G_Student (SSIM, total variation); models/modules/pytorch_ssim.py.

A teacher G and its conditional D train from their initial weights together with the student.
Step k (1-based):
  1. teacher forward T(A) (train mode, with its graph); student forward S(A) (with taps);
  2. when k % n_dis == 0: D_T's loss 0.5 * (GAN(D_T(A, T(A)) detached, 0) + GAN(D_T(A, B), 1)) and
     T's loss GAN(D_T(A, T(A)), 1) + lambda_L1 L1(T(A), B) (D frozen) are both backpropagated
     before D_T and T step;
  3. the student (no D of its own): lambda_recon L1(S(A), B) + lambda_ssim (1 - SSIM(S(A), T(A)))
     + lambda_tv TV(S(A)), T(A) the detached output of 1. (before the teacher's update); with
     DCD (settings 'dcd'), + w * sum_taps L1(D_T'(psi_S(S_i)), D_T'(psi_T(T_i))) + lambda_dcd_gan
     GAN(D_T(A, S(A)), 1) through D_T after its update (dcd_step.py's term).
Unpaired (settings 'paired' false; the CycleGAN release trains a whole CycleGAN teacher): 1. is
G_A's forward without gradient (train mode); 2. is one CycleGAN step of (G_A, G_B, D_A, D_B): both
generators (GAN, cycle x lambda_A/B, identity x lambda_identity) with the D's frozen, then both
D's on real vs pooled fakes (the pools return the fakes while not full, which 3 steps never
fill); D_A (judging B images) is the D of DCD's term, unconditional.
"""
import itertools
import math

import torch
import torch.nn.functional as F

import dcd_step
import parity_common as pc


def gaussian_window(channels, size=11, sigma=1.5):
    g = torch.tensor([math.exp(-(x - size // 2) ** 2 / float(2 * sigma ** 2)) for x in range(size)])
    g = g / g.sum()
    w = g.unsqueeze(1).mm(g.unsqueeze(0))
    return w.expand(channels, 1, size, size).contiguous()


def ssim(x, y):
    c = x.shape[1]
    w = gaussian_window(c).to(x.dtype)
    blur = lambda t: F.conv2d(t, w, padding=5, groups=c)
    mu1, mu2 = blur(x), blur(y)
    s1 = blur(x * x) - mu1 * mu1
    s2 = blur(y * y) - mu2 * mu2
    s12 = blur(x * y) - mu1 * mu2
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s1 + s2 + c2))).mean()


def total_variation(x):
    return torch.sum(torch.abs(x[:, :, :, 1:] - x[:, :, :, :-1])) + torch.sum(torch.abs(x[:, :, 1:, :] - x[:, :, :-1, :]))


class State(torch.nn.Module):
    """ganlite's T_state: the step count and the best validation PSNR (-1: none)."""
    def __init__(self, steps):
        super().__init__()
        self.register_buffer('steps', torch.tensor(float(steps)))
        self.register_buffer('best_psnr', torch.tensor(-1.0))


class PairedTeacher:
    """DCD-official's pix2pix teacher: G and a conditional D, both gradients before either steps."""
    def __init__(self, ex, s, gan):
        self.s, self.gan = s, gan
        self.g = ex.load('T_G', pc.build_generator(s['teacher']))
        self.d = ex.load('T_D', pc.build_discriminator(s['teacher_discriminator'], 6))
        self.g.train()
        self.d.train()
        pc.set_requires_grad([self.d], False)
        self.opt_g = pc.adam(self.g.parameters(), s)
        self.opt_d = pc.adam(self.d.parameters(), s)

    def modules(self):
        return {'T_G': self.g, 'T_D': self.d}

    def forward(self, real_a):
        return self.g(real_a)

    def step(self, real_a, real_b, t_fake):
        self.opt_d.zero_grad()
        self.opt_g.zero_grad()
        fake_ab = torch.cat((real_a, t_fake), 1)
        pc.set_requires_grad([self.d], True)
        d_fake = self.gan(self.d(fake_ab.detach()), False, for_discriminator=True)
        d_real = self.gan(self.d(torch.cat((real_a, real_b), 1)), True, for_discriminator=True)
        ((d_fake + d_real) * 0.5).backward()
        pc.set_requires_grad([self.d], False)
        g_gan = self.gan(self.d(fake_ab), True, for_discriminator=False)
        g_l1 = F.l1_loss(t_fake, real_b) * self.s['lambda_L1']
        (g_gan + g_l1).backward()
        self.opt_d.step()
        self.opt_g.step()
        return {'T_G_GAN': g_gan, 'T_G_L1': g_l1, 'T_D_real': d_real, 'T_D_fake': d_fake}


class CycleTeacher:
    """The CycleGAN release's teacher: both directions, G step then D step on pooled fakes."""
    def __init__(self, ex, s, gan):
        self.s, self.gan = s, gan
        self.g_a = ex.load('T_G_A', pc.build_generator(s['teacher']))
        self.g_b = ex.load('T_G_B', pc.build_generator(s['teacher']))
        self.d_a = ex.load('T_D_A', pc.build_discriminator(s['teacher_discriminator'], 3))
        self.d_b = ex.load('T_D_B', pc.build_discriminator(s['teacher_discriminator'], 3))
        for net in (self.g_a, self.g_b, self.d_a, self.d_b):
            net.train()
        pc.set_requires_grad([self.d_a], False)
        self.d = self.d_a
        self.opt_g = pc.adam(itertools.chain(self.g_a.parameters(), self.g_b.parameters()), s)
        self.opt_d = pc.adam(itertools.chain(self.d_a.parameters(), self.d_b.parameters()), s)

    def modules(self):
        return {'T_G_A': self.g_a, 'T_G_B': self.g_b, 'T_D_A': self.d_a, 'T_D_B': self.d_b}

    def forward(self, real_a):
        with torch.no_grad():
            return self.g_a(real_a)

    def step(self, real_a, real_b, t_fake):
        s, gan = self.s, self.gan
        fake_b = self.g_a(real_a)
        rec_a = self.g_b(fake_b)
        fake_a = self.g_b(real_b)
        rec_b = self.g_a(fake_a)
        pc.set_requires_grad([self.d_a, self.d_b], False)
        self.opt_g.zero_grad()
        idt_a = F.l1_loss(self.g_a(real_b), real_b) * s['lambda_B'] * s['lambda_identity']
        idt_b = F.l1_loss(self.g_b(real_a), real_a) * s['lambda_A'] * s['lambda_identity']
        g_a = gan(self.d_a(fake_b), True)
        g_b = gan(self.d_b(fake_a), True)
        cycle_a = F.l1_loss(rec_a, real_a) * s['lambda_A']
        cycle_b = F.l1_loss(rec_b, real_b) * s['lambda_B']
        (g_a + g_b + cycle_a + cycle_b + idt_a + idt_b).backward()
        self.opt_g.step()
        pc.set_requires_grad([self.d_a, self.d_b], True)
        self.opt_d.zero_grad()
        d_losses = []
        for net, real, fake in ((self.d_a, real_b, fake_b), (self.d_b, real_a, fake_a)):
            loss = (gan(net(real), True) + gan(net(fake.detach()), False)) * 0.5
            loss.backward()
            d_losses.append(loss)
        self.opt_d.step()
        pc.set_requires_grad([self.d_a], False)
        return {'T_G_A': g_a, 'T_G_B': g_b, 'T_cycle_A': cycle_a, 'T_cycle_B': cycle_b, 'T_idt_A': idt_a,
                'T_idt_B': idt_b, 'T_D_A': d_losses[0], 'T_D_B': d_losses[1]}


def main():
    ex = pc.Exchange(pc.main_folder())
    s = ex.settings
    paired = s['paired']
    gan = pc.GANLoss(s['gan_mode'])
    teacher = (PairedTeacher if paired else CycleTeacher)(ex, s, gan)
    student = ex.load('G', pc.build_generator(s['student']))
    student.train()
    t_net = teacher.g if paired else teacher.g_a
    t_taps = pc.Taps(t_net, t_net.tap_layers())
    s_taps = pc.Taps(student, student.tap_layers())
    nc = 6 if paired else 3
    d_input = (lambda a, x: torch.cat((a, x), 1)) if paired else (lambda a, x: x)
    student_params = list(student.parameters())
    modules = {'G': student, 'T_state': State(len(ex.batches))}
    modules.update(teacher.modules())
    if s['dcd']:
        psi_s = ex.load('A_dcd', dcd_step.adapters(s['student_tap_channels'], nc))
        psi_t = ex.load('A_dcd_teacher', dcd_step.adapters(s['teacher_tap_channels'], nc))
        psi_s.train()
        psi_t.eval()
        pc.set_requires_grad([psi_t], False)
        student_params += list(psi_s.parameters())
        modules.update({'A_dcd': psi_s, 'A_dcd_teacher': psi_t})
    opt_s = pc.adam(student_params, s)
    for k, (real_a, real_b) in enumerate(ex.batches, start=1):
        log = {}
        t_fake = teacher.forward(real_a)
        teacher_taps = [t.detach() for t in t_taps.list()]
        target = t_fake.detach()
        if k % s['n_dis'] == 0:
            log.update(teacher.step(real_a, real_b, t_fake))
        s_fake = student(real_a)
        opt_s.zero_grad()
        total = F.l1_loss(s_fake, real_b if paired else target) * s['lambda_recon']
        log['G_recon'] = total
        if s['dcd']:
            size = tuple(real_a.shape[2:])
            n_layers = s['teacher_discriminator']['n_layers']
            dcd = dcd_step.dcd_loss(teacher.d, psi_s, psi_t, s_taps.list(), teacher_taps, size, n_layers) * s['weight']
            dcd_gan = gan(teacher.d(d_input(real_a, s_fake)), True, for_discriminator=False) * s['lambda_dcd_gan']
            total = total + dcd + dcd_gan
            log.update({'G_dcd': dcd, 'G_dcd_gan': dcd_gan})
        loss_ssim = (1 - ssim(s_fake, target)) * s['lambda_ssim']
        loss_tv = total_variation(s_fake) * s['lambda_tv']
        (total + loss_ssim + loss_tv).backward()
        opt_s.step()
        log.update({'G_ssim': loss_ssim, 'G_tv': loss_tv})
        ex.log(log)
    ex.write(modules)


if __name__ == '__main__':
    main()
