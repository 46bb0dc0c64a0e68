"""Shared side of the step-parity scripts (tests/parity, docs/fidelity.md "Step parity").

Written for these tests from the papers and the public code (read, never copied); nothing here
imports ganlite. The models are plain PyTorch modules whose state-dict keys are the public code's:
  ResnetGenerator, UnetGenerator, NLayerDiscriminator  junyanz/pytorch-CycleGAN-and-pix2pix,
                                                        models/networks.py
  MobileResnetGenerator                                 mit-han-lab/gan-compression,
                                                        models/modules/resnet_architecture/
  InceptionGenerator                                    snap-research/CAT,
                                                        models/modules/inception_architecture/
GANLoss follows models/networks.py GANLoss (lsgan, vanilla) and CAT's models/modules/loss.py
(hinge); its targets are made like the prediction, so the step runs in float64 (the public class
keeps float32 label buffers).

The exchange with the C++ harness (tests/parity/parity_harness.h), in the folder given as argv[1]:
  settings.json  hyperparameters and architectures; inputs.npz  init.<module>.<key> and
  batch.<k>.a / batch.<k>.b; the script writes losses.json (one {name: value} per step) and
  reference.npz (state.<module>.<key> after the steps).
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


# ---- exchange ----------------------------------------------------------------------------------

class Exchange:
    def __init__(self, folder):
        self.folder = folder
        with open(os.path.join(folder, 'settings.json')) as f:
            self.settings = json.load(f)
        arrays = np.load(os.path.join(folder, 'inputs.npz'))
        self.init = {k[len('init.'):]: torch.from_numpy(arrays[k].copy())
                     for k in arrays.files if k.startswith('init.')}
        self.batches = []
        for k in range(self.settings['steps']):
            a = torch.from_numpy(arrays['batch.%d.a' % k].copy())
            key_b = 'batch.%d.b' % k
            b = torch.from_numpy(arrays[key_b].copy()) if key_b in arrays.files else None
            self.batches.append((a, b))
        self.losses = []

    def load(self, name, module):
        """Loads init.<name>.* into `module` strictly (every key on both sides)."""
        prefix = name + '.'
        state = {k[len(prefix):]: v for k, v in self.init.items() if k.startswith(prefix)}
        module.load_state_dict(state, strict=True)
        return module

    def log(self, losses):
        self.losses.append({k: float(v) for k, v in losses.items()})

    def write(self, modules):
        """modules: {name: nn.Module}; writes losses.json and reference.npz."""
        with open(os.path.join(self.folder, 'losses.json'), 'w') as f:
            json.dump(self.losses, f)
        out = {}
        for name, module in modules.items():
            for key, value in module.state_dict().items():
                out['state.%s.%s' % (name, key)] = value.detach().cpu().numpy()
        np.savez(os.path.join(self.folder, 'reference.npz'), **out)


def main_folder():
    if len(sys.argv) != 2:
        sys.exit('usage: %s FOLDER' % sys.argv[0])
    return sys.argv[1]


# ---- layers ------------------------------------------------------------------------------------

def norm_layer(kind):
    """pytorch-CycleGAN-and-pix2pix get_norm_layer; instance_affine is CAT's --norm_affine."""
    if kind == 'instance':
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    if kind == 'instance_affine':
        return lambda c: nn.InstanceNorm2d(c, affine=True, track_running_stats=False)
    if kind == 'batch':
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    raise ValueError('norm ' + kind)


def uses_bias(kind):
    # The public code: use_bias = (norm_layer is InstanceNorm2d), affine or not.
    return kind.startswith('instance')


# ---- generators --------------------------------------------------------------------------------

class ResnetBlock(nn.Module):
    def __init__(self, dim, norm, bias):
        super().__init__()
        n = norm_layer(norm)
        # No dropout (use_dropout off adds no layer, so indices are 1, 2, 5, 6).
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=bias), n(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=bias), n(dim))

    def forward(self, x):
        return x + self.conv_block(x)


class SeparableConv2d(nn.Module):
    """gan-compression models/modules/mobile_modules.py: depthwise, InstanceNorm, pointwise."""
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cin, 3, 1, 0, groups=cin, bias=True),
            nn.InstanceNorm2d(cin),
            nn.Conv2d(cin, cout, 1, 1, bias=True))

    def forward(self, x):
        return self.conv(x)


class MobileResnetBlock(nn.Module):
    def __init__(self, dim, norm):
        super().__init__()
        n = norm_layer(norm)
        # The Dropout is always there in gan-compression (rate 0 here).
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), SeparableConv2d(dim, dim), n(dim), nn.ReLU(True), nn.Dropout(0.0),
            nn.ReflectionPad2d(1), SeparableConv2d(dim, dim), n(dim))

    def forward(self, x):
        return x + self.conv_block(x)


def _stem_and_downs(input_nc, ngf, n, bias):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=bias), n(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2 ** i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=bias), n(ngf * m * 2), nn.ReLU(True)]
    return layers


def _ups_and_head(output_nc, ngf, n, bias):
    layers = []
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                   n(ngf * m // 2), nn.ReLU(True)]
    return layers + [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]


class ResnetGenerator(nn.Module):
    """ResnetGenerator (mobile=False) or gan-compression's MobileResnetGenerator (mobile=True)."""
    def __init__(self, ngf, n_blocks, norm, mobile=False, input_nc=3, output_nc=3):
        super().__init__()
        n, bias = norm_layer(norm), uses_bias(norm)
        block = (lambda: MobileResnetBlock(ngf * 4, norm)) if mobile else (lambda: ResnetBlock(ngf * 4, norm, bias))
        layers = _stem_and_downs(input_nc, ngf, n, bias) + [block() for _ in range(n_blocks)]
        self.model = nn.Sequential(*(layers + _ups_and_head(output_nc, ngf, n, bias)))
        self.n_blocks = n_blocks

    def tap_layers(self):
        # gan-compression's mapping layers generalised: model.9 (after the downs), then the
        # outputs of blocks n/3, 2n/3 and n ('model.%d' % i for i in range(9, 21, 3) for n = 9).
        n = self.n_blocks
        return ['model.%d' % (9 + k) for k in (0, n // 3, 2 * n // 3, n)]

    def forward(self, x):
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm='batch'):
        super().__init__()
        self.outermost = outermost
        n, bias = norm_layer(norm), uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        # In place, as the public code: the LeakyReLU overwrites this block's input, so the skip
        # concatenated in forward() carries LeakyReLU(x), not x.
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            model = [downrelu, downconv, uprelu, upconv, n(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            model = [downrelu, downconv, n(inner_nc), submodule, uprelu, upconv, n(outer_nc)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, num_downs, ngf, norm, input_nc=3, output_nc=3):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm=norm)

    def forward(self, x):
        return self.model(x)


class InceptionBlock(nn.Module):
    """CAT's InvertedResidualChannels: res_ops [pad, ConvBNReLU, Dropout, pad, conv] and dw_ops
    [ConvBNReLU 1x1, pad, depthwise ConvBNReLU, Dropout, conv 1x1], kernels 1, 3, 5, branches of
    width 0 left out; x + pw_bn(sum(res) + sum(dw))."""
    def __init__(self, dim, res_widths, dw_widths, norm):
        super().__init__()
        n, bias = norm_layer(norm), uses_bias(norm)

        def cbr(cin, cout, k, groups=1):
            return nn.Sequential(nn.Conv2d(cin, cout, k, 1, 0, groups=groups, bias=bias), n(cout), nn.ReLU())
        self.res_ops = nn.ModuleList()
        for mid, k in zip(res_widths, (1, 3, 5)):
            if mid:
                p = (k - 1) // 2
                self.res_ops.append(nn.Sequential(nn.ReflectionPad2d(p), cbr(dim, mid, k), nn.Dropout(0.0),
                                                  nn.ReflectionPad2d(p), nn.Conv2d(mid, dim, k, 1, 0, bias=bias)))
        self.dw_ops = nn.ModuleList()
        for mid, k in zip(dw_widths, (1, 3, 5)):
            if mid:
                self.dw_ops.append(nn.Sequential(cbr(dim, mid, 1), nn.ReflectionPad2d((k - 1) // 2),
                                                 cbr(mid, mid, k, groups=mid), nn.Dropout(0.0),
                                                 nn.Conv2d(mid, dim, 1, 1, 0, bias=bias)))
        self.pw_bn = n(dim)

    def forward(self, x):
        if len(self.res_ops) == 0 and len(self.dw_ops) == 0:
            return x
        tmp = sum([op(x) for op in self.res_ops]) + sum([op(x) for op in self.dw_ops])
        return x + self.pw_bn(tmp)


class InceptionGenerator(nn.Module):
    """CAT's InceptionGenerator: down_sampling, features (the blocks), up_sampling.
    block_widths: per block (res_k1, res_k3, res_k5, dw_k1, dw_k3, dw_k5)."""
    def __init__(self, ngf, block_widths, norm, input_nc=3, output_nc=3):
        super().__init__()
        n, bias = norm_layer(norm), uses_bias(norm)
        self.down_sampling = nn.Sequential(*_stem_and_downs(input_nc, ngf, n, bias))
        self.features = nn.Sequential(*[InceptionBlock(ngf * 4, w[:3], w[3:], norm) for w in block_widths])
        self.up_sampling = nn.Sequential(*_ups_and_head(output_nc, ngf, n, bias))
        self.n_blocks = len(block_widths)

    def tap_layers(self):
        # CAT's mapping layers: down_sampling.9, then features.%d for range(2, 11, 3) with 9
        # blocks, i.e. the outputs of blocks n/3, 2n/3 and n.
        n = self.n_blocks
        return ['down_sampling.9'] + ['features.%d' % (k - 1) for k in (n // 3, 2 * n // 3, n)]

    def forward(self, x):
        return self.up_sampling(self.features(self.down_sampling(x)))


def build_generator(arch):
    """arch: ganlite's ArchConfig JSON (arch, ngf, n_blocks, num_downs, norm, widths)."""
    kind, ngf, norm = arch['arch'], arch['ngf'], arch['norm']
    if kind in ('resnet', 'mobile_resnet'):
        return ResnetGenerator(ngf, arch['n_blocks'], norm, mobile=kind == 'mobile_resnet')
    if kind == 'unet':
        return UnetGenerator(arch['num_downs'], ngf, norm)
    if kind == 'inception':
        widths = arch.get('widths', {}).get('blocks') or [[ngf * 4 // 6] * 6] * arch['n_blocks']
        return InceptionGenerator(ngf, widths, norm)
    raise ValueError('arch ' + kind)


class Taps:
    """Forward hooks on the named layers (the public distillers' add_mapping_hook)."""
    def __init__(self, net, names):
        self.out = {}
        modules = dict(net.named_modules())
        self.names = names
        for name in names:
            modules[name].register_forward_hook(self._hook(name))

    def _hook(self, name):
        def hook(module, inputs, output):
            self.out[name] = output
        return hook

    def list(self):
        return [self.out[n] for n in self.names]


# ---- discriminator and losses ------------------------------------------------------------------

class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf, n_layers, norm):
        super().__init__()
        n, bias = norm_layer(norm), uses_bias(norm)
        seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for i in range(1, n_layers):
            prev, mult = mult, min(2 ** i, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=bias), n(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=bias), n(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def build_discriminator(d, input_nc):
    """d: {ndf, n_layers, norm}."""
    return NLayerDiscriminator(input_nc, d['ndf'], d['n_layers'], d['norm'])


class GANLoss:
    def __init__(self, mode):
        self.mode = mode

    def __call__(self, prediction, target_is_real, for_discriminator=True):
        if self.mode in ('lsgan', 'vanilla'):
            target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
            if self.mode == 'lsgan':
                return F.mse_loss(prediction, target)
            return F.binary_cross_entropy_with_logits(prediction, target)
        if self.mode == 'hinge':
            if not for_discriminator:
                return -prediction.mean()
            zero = torch.zeros_like(prediction)
            if target_is_real:
                return -torch.min(prediction - 1, zero).mean()
            return -torch.min(-prediction - 1, zero).mean()
        raise ValueError('gan mode ' + self.mode)


def set_requires_grad(nets, flag):
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


def adam(params, s):
    return torch.optim.Adam(params, lr=s['lr'], betas=(s['beta1'], s['beta2']))


# ---- distillers --------------------------------------------------------------------------------

class Distiller:
    """The networks of the public distillers (CAT base_inception_distiller.py, gan-compression
    base_resnet_distiller.py): a frozen teacher in eval mode, a student in train mode, one D
    (conditional 6-channel for aligned data), forward hooks on the mapping layers of both."""
    def __init__(self, ex):
        s = ex.settings
        self.s = s
        self.paired = s['paired']
        self.teacher = ex.load('T', build_generator(s['teacher']))
        self.student = ex.load('G', build_generator(s['student']))
        self.net_d = ex.load('D', build_discriminator(s['discriminator'], 6 if self.paired else 3))
        self.teacher.eval()
        set_requires_grad([self.teacher], False)
        self.student.train()
        self.net_d.train()
        self.t_taps = Taps(self.teacher, self.teacher.tap_layers())
        self.s_taps = Taps(self.student, self.student.tap_layers())
        self.gan = GANLoss(s['gan_mode'])

    def forward(self, real_a):
        with torch.no_grad():
            self.t_fake = self.teacher(real_a)
        self.s_fake = self.student(real_a)

    def d_input(self, real_a, image):
        return torch.cat((real_a, image), 1) if self.paired else image

    def backward_d(self, real_a, real_b):
        """backward_D: fake (detached student output) then real, 0.5 * (fake + real)."""
        loss_fake = self.gan(self.net_d(self.d_input(real_a, self.s_fake).detach()), False, for_discriminator=True)
        loss_real = self.gan(self.net_d(self.d_input(real_a, real_b).detach()), True, for_discriminator=True)
        ((loss_fake + loss_real) * 0.5).backward()
        return loss_real, loss_fake

    def g_losses(self, real_a, real_b):
        """backward_G's GAN and reconstruction terms (aligned: L1 to B; unaligned: L1 to T(A))."""
        target = real_b if self.paired else self.t_fake
        recon = F.l1_loss(self.s_fake, target) * self.s['lambda_recon']
        gan = self.gan(self.net_d(self.d_input(real_a, self.s_fake)), True, for_discriminator=False)
        return gan * self.s['lambda_gan'], recon

    def modules(self):
        return {'G': self.student, 'D': self.net_d, 'T': self.teacher}


def run_cat_distillation(term_name, term):
    """CAT's optimize_parameters: D steps on the detached student output, then G (GAN +
    reconstruction + one distillation term against the updated D). term(d, settings) is the
    unweighted distillation loss; settings['weight'] scales it."""
    ex = Exchange(main_folder())
    s = ex.settings
    d = Distiller(ex)
    opt_g = adam(d.student.parameters(), s)
    opt_d = adam(d.net_d.parameters(), s)
    for real_a, real_b in ex.batches:
        d.forward(real_a)
        set_requires_grad([d.net_d], True)
        opt_d.zero_grad()
        loss_d_real, loss_d_fake = d.backward_d(real_a, real_b)
        opt_d.step()
        set_requires_grad([d.net_d], False)
        opt_g.zero_grad()
        loss_gan, loss_recon = d.g_losses(real_a, real_b)
        loss_term = term(d, s) * s['weight']
        (loss_gan + loss_recon + loss_term).backward()
        opt_g.step()
        ex.log({'G_gan': loss_gan, 'G_recon': loss_recon, term_name: loss_term, 'D_real': loss_d_real,
                'D_fake': loss_d_fake})
    ex.write(d.modules())
