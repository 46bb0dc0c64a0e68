#!/usr/bin/python3
"""The pix2pix training step of bench_train_speed in PyTorch eager, for comparison.

A ResNet-9 generator and a 3-layer PatchGAN (ndf 64, instance norm, conditional: 6 input channels)
written from the layer lists in docs (methods.md 1.1, 1.4); lsgan + 100 * L1; Adam(2e-4, 0.5, 0.999).
Usage: /usr/bin/python3 bench/train_speed_pytorch.py [--iters N] [--threads N] [--quick]
       [--ganlite build/bench/bench_train_speed]  (runs the C++ bench too and prints the ratio)
"""
import argparse
import subprocess
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("skipped: torch is not importable by this python (use /usr/bin/python3 with python3-torch)")
    sys.exit(0)


def resnet_generator(ngf, n_blocks=9):
    norm = lambda c: nn.InstanceNorm2d(c)
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), norm(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2 ** i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1), norm(ngf * m * 2), nn.ReLU(True)]

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm(c), nn.ReLU(True),
                                            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm(c))

        def forward(self, x):
            return x + self.conv_block(x)

    layers += [Block(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1), norm(ngf * m // 2),
                   nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patch_discriminator(input_nc, ndf=64, n_layers=3):
    layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*layers)


def bench(ngf, size, batch, iters):
    torch.manual_seed(0)
    G, D = resnet_generator(ngf), patch_discriminator(6)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    a = torch.rand(batch, 3, size, size) * 2 - 1
    b = torch.rand(batch, 3, size, size) * 2 - 1
    mse, l1 = nn.MSELoss(), nn.L1Loss()

    def step():
        fake = G(a)
        for p in D.parameters():
            p.requires_grad_(True)
        opt_d.zero_grad()
        pf = D(torch.cat([a, fake], 1).detach())
        pr = D(torch.cat([a, b], 1))
        loss_d = 0.5 * (mse(pf, torch.zeros_like(pf)) + mse(pr, torch.ones_like(pr)))
        loss_d.backward()
        opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad()
        pf = D(torch.cat([a, fake], 1))
        loss_g = mse(pf, torch.ones_like(pf)) + 100 * l1(fake, b)
        loss_g.backward()
        opt_g.step()

    step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return iters / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="64x64 only")
    ap.add_argument("--ganlite", help="path of bench_train_speed: run it with the same flags and print ratios")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    ours = {}
    if args.ganlite:
        cmd = [args.ganlite, "--iters", str(args.iters), "--threads", str(args.threads)] + (["--quick"] if args.quick else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 5 and f[0].isdigit():
                ours[(int(f[0]), int(f[1]), int(f[2]))] = float(f[3])
    print(f"PyTorch {torch.__version__} eager, threads {torch.get_num_threads()}, {args.iters} timed iterations")
    print(f"{'ngf':<6} {'size':<5} {'batch':<6} {'torch it/s':>10} {'ganlite it/s':>13} {'ratio':>7}")
    for size in (64, 256):
        if args.quick and size > 64:
            continue
        for ngf in (16, 64):
            for batch in (1, 4):
                t = bench(ngf, size, batch, args.iters)
                g = ours.get((ngf, size, batch))
                ratio = f"{g / t:7.2f}" if g else "      -"
                print(f"{ngf:<6} {size:<5} {batch:<6} {t:10.3f} {g if g else float('nan'):13.3f} {ratio}", flush=True)


if __name__ == "__main__":
    main()
