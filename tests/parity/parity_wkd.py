"""WKD distillation step: the WKD release's wavelet loss (ArchipLab-LinfengZhang/wkd-datasets,
models/cycle_gan_model.py: pytorch_wavelets DWTForward(J, mode='zero', wave='haar') on the
student's and the teacher's outputs, low band dropped, per level ONE distance over the stacked
high bands [N, C, 3, h, w], summed over levels, times the weight), on the distiller's step.

The step itself follows ganlite's documented choice (docs/fidelity.md, "WKD loss reduction"):
one CycleGAN direction per run, as CAT's distiller (D step, then GAN + L1 to T(A) + the wavelet
term), not the release's two-generator CycleGAN step. The Haar transform is written out here
(pytorch_wavelets is not needed): rows then columns, 1/sqrt(2) per axis, odd sizes padded with
one zero row / column at the end (mode 'zero' for the 2-tap filter)."""
import torch
import torch.nn.functional as F

import parity_common as pc


def haar_high_bands(x, levels):
    """[N, C, 3, h, w] per level: the three detail bands (band order and signs do not change a
    distance between two such stacks)."""
    bands = []
    for _ in range(levels):
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2))
        a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
        c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
        bands.append(torch.stack(((a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2), 2))
        x = (a + b + c + d) / 2
    return bands


def wavelet_loss(student, teacher, levels, distance):
    dist = F.l1_loss if distance == 'l1' else F.mse_loss
    return sum(dist(s, t) for s, t in zip(haar_high_bands(student, levels), haar_high_bands(teacher, levels)))


def main():
    pc.run_cat_distillation('G_wkd', lambda d, s: wavelet_loss(d.s_fake, d.t_fake, s['wkd_levels'], s['wkd_distance']))


if __name__ == '__main__':
    main()
