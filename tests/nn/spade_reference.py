#!/usr/bin/python3
"""Independent PyTorch reference for ganlite's spade and inception_spade generators
(tests/nn/test_spade.cpp, tests/interop/test_spade_interop.cpp).

Written from the public code's layer lists (NVlabs/SPADE SPADEGenerator with
num_upsampling_layers 'more', SPADEResnetBlock, SPADE; snap-research/CAT InceptionSPADEGenerator,
SPADEInvertedResidualChannels, InceptionSPADE; methods.md 1.5) with their state-dict keys, without
ganlite and without the public code. Counting follows methods.md section 5 with forward hooks:
conv = output elements x C_in/groups x kH x kW; an affine norm = output elements; params = every
parameter.

Usage:
  spade_reference.py counts ARCH NGF SEMANTIC_NC H W [ARCH NGF ...]  -> a JSON line {"macs", "params"} each
  ARCH: spade | inception_spade | inception_spade_pruned (a student with absent branches)
  spade_reference.py fixture ARCH NGF SEMANTIC_NC H W NORM OUT_PREFIX [SPECTRAL]
      writes OUT_PREFIX.pth (the state dict, as the public scripts save it; SPECTRAL=1 saves
      NVlabs' spectral-norm keys weight_orig / weight_u / weight_v) and OUT_PREFIX_io.pt
      ({"input": a one-hot label map plus an edge channel, "output": the eval-mode output}).
      Weights are random and scaled by 1/sqrt(fan-in); norm statistics and affine scales random.
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

BLOCKS = [("head_0", 16, 16, False), ("G_middle_0", 16, 16, True), ("G_middle_1", 16, 16, True),
          ("up_0", 16, 8, True), ("up_1", 8, 4, True), ("up_2", 4, 2, True), ("up_3", 2, 1, True)]
KERNELS = [1, 3, 5]


def pf_norm(kind, c):
    return nn.BatchNorm2d(c, affine=False) if kind == "batch" else nn.InstanceNorm2d(c, affine=False)


def norm_layer(kind, c, affine):
    return nn.BatchNorm2d(c, affine=affine) if kind == "batch" else nn.InstanceNorm2d(c, affine=affine)


# ---- NVlabs SPADE -------------------------------------------------------------------------
class Spade(nn.Module):
    def __init__(self, kind, norm_nc, label_nc):
        super().__init__()
        self.param_free_norm = pf_norm(kind, norm_nc)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, 128, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(128, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(128, norm_nc, 3, padding=1)

    def forward(self, x, seg):
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        a = self.mlp_shared(seg)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(a)) + self.mlp_beta(a)


class SpadeBlock(nn.Module):
    def __init__(self, fin, fout, label_nc, kind):
        super().__init__()
        self.learned = fin != fout
        mid = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, mid, 3, padding=1)
        self.conv_1 = nn.Conv2d(mid, fout, 3, padding=1)
        if self.learned:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
        self.norm_0 = Spade(kind, fin, label_nc)
        self.norm_1 = Spade(kind, mid, label_nc)
        if self.learned:
            self.norm_s = Spade(kind, fin, label_nc)

    def forward(self, x, seg):
        xs = self.conv_s(self.norm_s(x, seg)) if self.learned else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return xs + dx


class SpadeGenerator(nn.Module):
    def __init__(self, ngf, label_nc, kind):
        super().__init__()
        self.fc = nn.Conv2d(label_nc, 16 * ngf, 3, padding=1)
        for name, fi, fo, _ in BLOCKS:
            setattr(self, name, SpadeBlock(fi * ngf, fo * ngf, label_nc, kind))
        self.conv_img = nn.Conv2d(ngf, 3, 3, padding=1)

    def forward(self, seg):
        x = self.fc(F.interpolate(seg, size=(seg.shape[2] // 64, seg.shape[3] // 64)))
        for name, _, _, up in BLOCKS:
            if up:
                x = F.interpolate(x, scale_factor=2)
            x = getattr(self, name)(x, seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


# ---- CAT inception-SPADE ------------------------------------------------------------------
class ConvNormAct(nn.Module):  # CAT's ConvSyncBNReLU keys: conv, norm, active
    def __init__(self, cin, cout, k, groups, norm, active):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, 1, (k - 1) // 2, groups=groups)
        self.norm = norm
        self.active = active

    def forward(self, x):
        return self.active(self.norm(self.conv(x)))


class ConvOnly(nn.Module):  # CAT's Conv: key conv
    def __init__(self, cin, cout, k, bias=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, 1, (k - 1) // 2, bias=bias)

    def forward(self, x):
        return self.conv(x)


class InceptionSpade(nn.Module):
    def __init__(self, kind, norm_nc, label_nc, widths):
        super().__init__()
        self.c = norm_nc
        self.param_free_norm = pf_norm(kind, norm_nc)
        self.res_ops, self.dw_ops = nn.ModuleList(), nn.ModuleList()
        for m, k in zip(widths[:3], KERNELS):
            if m:
                self.res_ops.append(nn.Sequential(
                    ConvNormAct(label_nc, m, k, 1, nn.BatchNorm2d(m), nn.ReLU()),
                    nn.Conv2d(m, 2 * norm_nc, k, padding=(k - 1) // 2)))
        for m, k in zip(widths[3:], KERNELS):
            if m:
                self.dw_ops.append(nn.Sequential(
                    ConvNormAct(label_nc, m, 1, 1, nn.BatchNorm2d(m), nn.ReLU()),
                    ConvNormAct(m, m, k, m, nn.BatchNorm2d(m), nn.ReLU()),
                    nn.Conv2d(m, 2 * norm_nc, 1)))

    def forward(self, x, seg):
        normalized = self.param_free_norm(x)
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        if len(self.res_ops) == 0 and len(self.dw_ops) == 0:
            return normalized
        t = sum([op(seg) for op in self.res_ops]) + sum([op(seg) for op in self.dw_ops])
        return normalized * (1 + t[:, :self.c]) + t[:, self.c:]


class InceptionBlock(nn.Module):
    def __init__(self, fin, fout, label_nc, kind, widths):
        super().__init__()
        act = lambda: nn.LeakyReLU()  # noqa: E731  (CAT's spade model: active_fn nn.LeakyReLU)
        self.res_ops, self.dw_ops = nn.ModuleList(), nn.ModuleList()
        for m, k in zip(widths[0:3], KERNELS):
            if m:
                self.res_ops.append(nn.Sequential(ConvNormAct(fin, m, k, 1, norm_layer(kind, m, True), act()),
                                                  ConvOnly(m, fout, k)))
        for m, k in zip(widths[3:6], KERNELS):
            if m:
                self.dw_ops.append(nn.Sequential(ConvNormAct(fin, m, 1, 1, norm_layer(kind, m, True), act()),
                                                 ConvNormAct(m, m, k, m, norm_layer(kind, m, False), act()),
                                                 ConvOnly(m, fout, 1)))
        self.shortcut = (nn.Sequential(norm_layer(kind, fin, True), ConvOnly(fin, fout, 1, bias=False))
                         if fin != fout else None)
        self.spade = InceptionSpade(kind, fin, label_nc, widths[6:12])
        self.active = act()

    def forward(self, x, seg):
        if len(self.res_ops) == 0 and len(self.dw_ops) == 0:
            return self.shortcut(x) if self.shortcut is not None else x
        t = self.active(self.spade(x, seg))
        t = sum([op(t) for op in self.res_ops]) + sum([op(t) for op in self.dw_ops])
        return t + (self.shortcut(x) if self.shortcut is not None else x)


def default_inception_widths(ngf):
    return [[min(fi, fo) * ngf // 6] * 6 + [128 // 6] * 6 for _, fi, fo, _ in BLOCKS]


class InceptionSpadeGenerator(nn.Module):
    def __init__(self, ngf, label_nc, kind, widths=None):
        super().__init__()
        widths = widths or default_inception_widths(ngf)
        self.fc_norm = nn.BatchNorm2d(16 * ngf)
        self.fc = nn.Conv2d(label_nc, 16 * ngf, 3, padding=1)
        for (name, fi, fo, _), w in zip(BLOCKS, widths):
            setattr(self, name, InceptionBlock(fi * ngf, fo * ngf, label_nc, kind, w))
        self.conv_img = nn.Conv2d(ngf, 3, 3, padding=1)

    def forward(self, seg):
        x = self.fc_norm(self.fc(F.interpolate(seg, size=(seg.shape[2] // 64, seg.shape[3] // 64))))
        for name, _, _, up in BLOCKS:
            if up:
                x = F.interpolate(x, scale_factor=2)
            x = getattr(self, name)(x, seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def pruned_widths(ngf):
    """A pruned student as test_spade.cpp's pruned_inception_spade(): absent branches, a block
    without block branches (its shortcut alone), a SPADE without branches."""
    widths = default_inception_widths(ngf)
    widths[0] = [0, 3, 1, 2, 0, 4, 5, 0, 2, 0, 3, 1]
    widths[2] = [0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2]
    widths[4] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    return widths


def build(arch, ngf, label_nc, kind="batch"):
    if arch == "spade":
        return SpadeGenerator(ngf, label_nc, kind)
    if arch == "inception_spade_pruned":
        return InceptionSpadeGenerator(ngf, label_nc, kind, pruned_widths(ngf))
    return InceptionSpadeGenerator(ngf, label_nc, kind)


def count(model, shape):
    macs = [0]

    def hook(m, _inp, out):
        if isinstance(m, nn.Conv2d):
            macs[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.affine:
            macs[0] += out.numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model.eval()(torch.zeros(shape))
    for h in hooks:
        h.remove()
    return {"macs": macs[0], "params": sum(p.numel() for p in model.parameters())}


def label_map(label_nc, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    # Blocky labels (8x8 cells) so every resize keeps several classes, and their edges.
    cells = torch.randint(0, label_nc - 1, (1, 1, h // 8, w // 8), generator=g)
    labels = F.interpolate(cells.float(), size=(h, w), mode="nearest").long()
    onehot = torch.zeros(1, label_nc - 1, h, w).scatter_(1, labels, 1.0)
    edge = torch.zeros(1, 1, h, w)
    edge[:, :, :, 1:] += (labels[:, :, :, 1:] != labels[:, :, :, :-1]).float()
    edge[:, :, 1:, :] += (labels[:, :, 1:, :] != labels[:, :, :-1, :]).float()
    return torch.cat([onehot, (edge > 0).float()], 1)


def randomize(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, 1.0 / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1)
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.2)
                if m.track_running_stats:
                    m.running_mean.normal_(0, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        # An inception block sums up to six branches onto its input: scale the branch outputs so the
        # trunk keeps about unit scale and tanh does not saturate (tolerance.h, unit gain).
        for m in model.modules():
            if isinstance(m, InceptionBlock):
                for op in list(m.res_ops) + list(m.dw_ops):
                    op[-1].conv.weight.mul_(0.4)
                for op in list(m.spade.res_ops) + list(m.spade.dw_ops):
                    op[-1].weight.mul_(0.3)


def fixture(arch, ngf, label_nc, h, w, kind, prefix, spectral):
    model = build(arch, ngf, label_nc, kind)
    randomize(model, 7)
    model.eval()
    spectral_state = {}
    if spectral:
        # NVlabs wraps conv_0 / conv_1 / conv_s in spectral_norm: the file holds weight_orig and the
        # power iteration's u, v, and in eval mode the weight is weight_orig / (u . weight_orig v).
        # The module runs that effective weight; the file gets weight_orig, u, v.
        torch.manual_seed(5)
        with torch.no_grad():
            for name, mod in model.named_modules():
                if name.split(".")[-1] in ("conv_0", "conv_1", "conv_s"):
                    orig = mod.weight.detach().clone() * 3.0
                    mat = orig.reshape(orig.shape[0], -1)
                    u = F.normalize(torch.randn(mat.shape[0]), dim=0)
                    v = F.normalize(mat.t() @ u, dim=0)
                    u = F.normalize(mat @ v, dim=0)
                    mod.weight.copy_(orig / torch.dot(u, mat @ v))
                    spectral_state[name] = (orig, u, v)
    seg = label_map(label_nc, h, w, 11)
    with torch.no_grad():
        out = model(seg)
    state = model.state_dict()
    for name, (orig, u, v) in spectral_state.items():
        del state[name + ".weight"]
        state[name + ".weight_orig"] = orig
        state[name + ".weight_u"] = u
        state[name + ".weight_v"] = v
    torch.save(state, prefix + ".pth")
    torch.save({"input": seg, "output": out}, prefix + "_io.pt")
    print(json.dumps({"arch": arch, "keys": len(state), "max_abs_output": out.abs().max().item()}))


def main():
    if sys.argv[1] == "counts":
        args = sys.argv[2:]
        for i in range(0, len(args), 5):
            arch, ngf, nc, h, w = args[i], int(args[i + 1]), int(args[i + 2]), int(args[i + 3]), int(args[i + 4])
            print(json.dumps(count(build(arch, ngf, nc), (1, nc, h, w))))
    elif sys.argv[1] == "fixture":
        arch, ngf, nc, h, w, kind, prefix = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), \
            int(sys.argv[6]), sys.argv[7], sys.argv[8]
        fixture(arch, ngf, nc, h, w, kind, prefix, len(sys.argv) > 9 and sys.argv[9] == "1")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
