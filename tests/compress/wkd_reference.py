#!/usr/bin/python3
"""Independent PyTorch reference for WKD's distillation loss (tests/compress/test_wavelet.cpp).

Written from the WKD release's definition (ArchipLab-LinfengZhang/wkd-datasets,
CycleGANModel.optimize_parameters / get_wavelet_loss; docs/fidelity.md) and pytorch_wavelets'
documented semantics, without pytorch_wavelets (not packaged for Debian) and without ganlite:

  yl, yh = DWTForward(J, wave='haar', mode='zero')(x)    # yh[j]: [N, C, 3, h_j, w_j]
  loss   = weight * sum_j distance(yh_s[j], yh_t[j])     # distance: ONE mean over yh[j]

The Haar analysis is done separably with strided slices (no convolution), in float64: along one
axis, with filters dec_lo = (1, 1) / sqrt(2) and dec_hi = (-1, 1) / sqrt(2) applied as
pytorch_wavelets does (reversed, i.e. correlation), lo = (x[2k] + x[2k+1]) / sqrt(2) and
hi = (x[2k] - x[2k+1]) / sqrt(2). An odd length first gets one zero appended at its end (mode
'zero' with a 2-tap filter: output length floor((n + 1) / 2), padding 2 (out - 1) - n + 2, which
is 0 for even n and 1, all at the end, for odd n). Rows (width) first, then columns (height);
the three detail bands stack as (lo-row hi-col, hi-row lo-col, hi-row hi-col).

Usage: wkd_reference.py INPUT.npz
  INPUT.npz holds, for K = 0, 1, ...: student_K, teacher_K ([N, C, H, W], any float dtype),
  levels_K and weight_K (one-element arrays).
Prints one JSON object per case and line: {"case", "levels", "weight", "shapes",
  "l1": {"total", "levels"}, "mse": {"total", "levels"}, "max_abs_input"}; "total" is the weighted
  loss, "levels" the unweighted per-level means. When pytorch_wavelets happens to be importable,
  its DWTForward is run too and must agree (a check of this script, not a requirement).
"""
import json
import math
import sys

import numpy as np
import torch

R = 1.0 / math.sqrt(2.0)


def analysis_1d(x, dim):
    """One Haar analysis step along `dim` (zero mode): returns (lo, hi)."""
    n = x.shape[dim]
    if n % 2 == 1:
        pad_shape = list(x.shape)
        pad_shape[dim] = 1
        x = torch.cat([x, torch.zeros(pad_shape, dtype=x.dtype)], dim=dim)
    even = x.narrow(dim, 0, x.shape[dim] // 2 * 2).unfold(dim, 2, 2)  # [..., pairs, ..., 2]
    first, second = even[..., 0], even[..., 1]
    return (first + second) * R, (first - second) * R


def haar_dwt(x, levels):
    """(yl, yh) with yh[j] of shape [N, C, 3, h_j, w_j], finest first."""
    yh = []
    ll = x
    for _ in range(levels):
        lo_row, hi_row = analysis_1d(ll, 3)   # along the width
        ll, lh = analysis_1d(lo_row, 2)       # then along the height
        hl, hh = analysis_1d(hi_row, 2)
        yh.append(torch.stack([lh, hl, hh], dim=2))
    return ll, yh


def wkd_loss(student, teacher, levels, weight, distance):
    _, s_h = haar_dwt(student, levels)
    _, t_h = haar_dwt(teacher, levels)
    per_level = []
    for s, t in zip(s_h, t_h):
        d = s - t
        per_level.append((d.abs() if distance == "l1" else d * d).mean().item())
    return weight * math.fsum(per_level), per_level


def check_against_pytorch_wavelets(x, levels):
    try:
        from pytorch_wavelets import DWTForward  # noqa: optional cross-check
    except ImportError:
        return "absent"
    _, ours = haar_dwt(x, levels)
    _, theirs = DWTForward(J=levels, wave="haar", mode="zero").double()(x)
    for a, b in zip(ours, theirs):
        if a.shape != b.shape or (a - b).abs().max().item() > 1e-12:
            raise SystemExit("pytorch_wavelets disagrees with this reference")
    return "agrees"


def main():
    data = np.load(sys.argv[1])
    k = 0
    while f"student_{k}" in data:
        s = torch.from_numpy(data[f"student_{k}"].astype(np.float64))
        t = torch.from_numpy(data[f"teacher_{k}"].astype(np.float64))
        levels = int(data[f"levels_{k}"].reshape(-1)[0])
        weight = float(data[f"weight_{k}"].reshape(-1)[0])
        out = {"case": k, "levels": levels, "weight": weight, "shapes": list(s.shape),
               "max_abs_input": max(s.abs().max().item(), t.abs().max().item()),
               "pytorch_wavelets": check_against_pytorch_wavelets(s, levels)}
        for distance in ("l1", "mse"):
            total, per_level = wkd_loss(s, t, levels, weight, distance)
            out[distance] = {"total": total, "levels": per_level}
        print(json.dumps(out))
        k += 1


if __name__ == "__main__":
    main()
