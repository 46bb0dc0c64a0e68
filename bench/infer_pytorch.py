#!/usr/bin/python3
"""PyTorch eager inference on the same weights as `ganlite bench`, and the ratios.

Reads a ganlite generator file (safetensors: public key names, ArchConfig JSON in the metadata)
with a small numpy reader, rebuilds the generator in plain torch.nn from the architecture
(methods.md 1.1 resnet, 1.3 inception; keys mirror ganlite's / the public code's), loads the
weights strictly and times `model(x)` under torch.no_grad() (fp32, and bf16 autocast) with
torch.set_num_threads(N). With --ganlite BIN it also runs `BIN bench --model FILE --json` for each
precision and prints ganlite / PyTorch ratios.

Usage: /usr/bin/python3 bench/infer_pytorch.py --model G.safetensors [--model G2 ...] [--size 256]
       [--threads 2] [--runs 10] [--warmup 3] [--ganlite build/ganlite] [--json]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError:
    print("skipped: torch/numpy not importable by this python (use /usr/bin/python3 with python3-torch)")
    sys.exit(0)

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[base + begin:base + end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


def make_norm(norm, c):
    if norm == "instance":
        return nn.InstanceNorm2d(c)
    if norm == "instance_affine":
        return nn.InstanceNorm2d(c, affine=True)
    if norm == "batch":
        return nn.BatchNorm2d(c)
    return nn.Identity()


def pad_layer(padding, amount):
    if padding == "reflect":
        return nn.ReflectionPad2d(amount)
    if padding == "replicate":
        return nn.ReplicationPad2d(amount)
    return nn.ZeroPad2d(amount)


class ResnetBlock(nn.Module):
    def __init__(self, dim, mid, padding, norm, bias):
        super().__init__()
        layers = []
        p = 0 if padding == "zero" else 1
        if padding != "zero":
            layers.append(pad_layer(padding, 1))
        layers += [nn.Conv2d(dim, mid, 3, padding=1 - p, bias=bias), make_norm(norm, mid), nn.ReLU(True)]
        if padding != "zero":
            layers.append(pad_layer(padding, 1))
        layers += [nn.Conv2d(mid, dim, 3, padding=1 - p, bias=bias), make_norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class InvertedResidualChannels(nn.Module):
    """CAT's block: res_ops (kxk conv pairs) and dw_ops (1x1, depthwise kxk, 1x1), summed, pw_bn."""

    def __init__(self, dim, widths, padding, norm, bias):
        super().__init__()
        self.res_ops = nn.ModuleList()
        self.dw_ops = nn.ModuleList()
        cnr = lambda i, o, k, g: nn.Sequential(nn.Conv2d(i, o, k, groups=g, bias=bias), make_norm(norm, o), nn.ReLU(True))
        for j, k in enumerate((1, 3, 5)):
            mid = widths[j]
            if mid:
                self.res_ops.append(nn.Sequential(pad_layer_cat(padding, (k - 1) // 2), cnr(dim, mid, k, 1), nn.Dropout(0),
                                                  pad_layer_cat(padding, (k - 1) // 2), nn.Conv2d(mid, dim, k, bias=bias)))
        for j, k in enumerate((1, 3, 5)):
            mid = widths[3 + j]
            if mid:
                self.dw_ops.append(nn.Sequential(cnr(dim, mid, 1, 1), pad_layer_cat(padding, (k - 1) // 2), cnr(mid, mid, k, mid),
                                                 nn.Dropout(0), nn.Conv2d(mid, dim, 1, bias=bias)))
        self.pw_bn = make_norm(norm, dim)
        self.empty = len(self.res_ops) + len(self.dw_ops) == 0

    def forward(self, x):
        if self.empty:
            return x
        ys = [op(x) for op in self.res_ops] + [op(x) for op in self.dw_ops]
        return x + self.pw_bn(sum(ys))


def pad_layer_cat(padding, amount):
    return nn.ConstantPad2d(amount, 0) if padding == "zero" else pad_layer(padding, amount)


def head_and_tail(cfg, w, bias):
    norm = cfg["norm"]
    down = [nn.ReflectionPad2d(3), nn.Conv2d(cfg["input_nc"], w["stem"], 7, bias=bias), make_norm(norm, w["stem"]), nn.ReLU(True)]
    for i, o in ((w["stem"], w["down1"]), (w["down1"], w["trunk"])):
        down += [nn.Conv2d(i, o, 3, 2, 1, bias=bias), make_norm(norm, o), nn.ReLU(True)]
    up = []
    for i, o in ((w["trunk"], w["up1"]), (w["up1"], w["up2"])):
        up += [nn.ConvTranspose2d(i, o, 3, 2, 1, output_padding=1, bias=bias), make_norm(norm, o), nn.ReLU(True)]
    up += [nn.ReflectionPad2d(3), nn.Conv2d(w["up2"], cfg["output_nc"], 7), nn.Tanh()]
    return down, up


class InceptionGenerator(nn.Module):
    def __init__(self, cfg, w, bias):
        super().__init__()
        down, up = head_and_tail(cfg, w, bias)
        self.down_sampling = nn.Sequential(*down)
        self.features = nn.Sequential(*[InvertedResidualChannels(w["trunk"], b, cfg["padding"], cfg["norm"], bias)
                                        for b in w["blocks"]])
        self.up_sampling = nn.Sequential(*up)

    def forward(self, x):
        return self.up_sampling(self.features(self.down_sampling(x)))


class ResnetGenerator(nn.Module):
    def __init__(self, cfg, w, bias):
        super().__init__()
        down, up = head_and_tail(cfg, w, bias)
        blocks = [ResnetBlock(w["trunk"], b[0], cfg["padding"], cfg["norm"], bias) for b in w["blocks"]]
        self.model = nn.Sequential(*(down + blocks + up))

    def forward(self, x):
        return self.model(x)


def build(cfg, state):
    w = dict(cfg.get("widths") or {})
    ngf = cfg["ngf"]
    for key, mult in (("stem", 1), ("down1", 2), ("trunk", 4), ("up1", 2), ("up2", 1)):
        if not w.get(key):
            w[key] = ngf * mult
    bias = cfg["norm"] in ("instance", "instance_affine")
    if cfg["arch"] == "resnet":
        if not w.get("blocks"):
            w["blocks"] = [[w["trunk"]] for _ in range(cfg["n_blocks"])]
        model = ResnetGenerator(cfg, w, bias)
    elif cfg["arch"] == "inception":
        if not w.get("blocks"):  # ArchConfig::with_resolved_widths: trunk / 6 per branch
            w["blocks"] = [[w["trunk"] // 6] * 6 for _ in range(cfg["n_blocks"])]
        model = InceptionGenerator(cfg, w, bias)
    else:
        raise SystemExit(f"arch {cfg['arch']} not supported by this script (resnet, inception)")
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"key mismatch: missing {missing[:5]} unexpected {unexpected[:5]}")
    return model.eval()


def time_model(model, x, runs, warmup, bf16):
    times = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def read_png_rgb(path):
    """8-bit RGB / RGBA non-interlaced PNG (what ganlite translate writes) as an HxWx3 uint8 array."""
    data = open(path, "rb").read()
    pos, idat, width, height, ctype = 8, b"", 0, 0, 2
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), "only 8-bit RGB(A) PNG"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    out, prev = np.zeros((height, stride), np.uint8), np.zeros(stride, np.int32)
    for y in range(height):
        f, row = raw[y * (stride + 1)], np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (row[x] + pred) & 255
        out[y], prev = cur, cur
    return out.reshape(height, width, bpp)[:, :, :3]


def check_same_outputs(binary, path, model, size=64):
    """Runs `ganlite translate` and this script's model on one image; returns the max difference
    of the 8-bit outputs (ganlite's files are 8-bit, so 1-2 levels is rounding)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.bmp")  # 24-bit BMP: bottom-up BGR rows (size * 3 is a multiple of 4)
        pixels = img[::-1, :, ::-1].tobytes()
        with open(src, "wb") as f:
            f.write(b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54) +
                    struct.pack("<IiiHHIIiiII", 40, size, size, 1, 24, 0, len(pixels), 2835, 2835, 0, 0) + pixels)
        subprocess.run([binary, "translate", "--model", path, "--input", src, "--out", tmp, "-q"], check=True,
                       capture_output=True)
        theirs = read_png_rgb(os.path.join(tmp, "in.png")).astype(np.int32)
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(127.5).sub(1).unsqueeze(0)
    with torch.no_grad():
        y = model(x)[0].permute(1, 2, 0).add(1).mul(127.5).round().clamp(0, 255).numpy().astype(np.int32)
    return int(np.abs(theirs - y).max())


def ganlite_bench(binary, path, args, precision):
    cmd = [binary, "bench", "--model", path, "--size", str(args.size), "--threads", str(args.threads),
           "--runs", str(args.runs), "--warmup", str(args.warmup), "--precision", precision, "--json"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ganlite", help="ganlite binary: also run `ganlite bench` and print ratios")
    ap.add_argument("--no-bf16", action="store_true", help="skip PyTorch's bf16 autocast timing")
    ap.add_argument("--torchscript", action="store_true",
                    help="also time TorchScript: traced, frozen and torch.jit.optimize_for_inference'd (fp32)")
    ap.add_argument("--check", action="store_true", help="with --ganlite: check both compute the same image")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for path in args.model:
        state, meta = read_safetensors(path)
        cfg = json.loads(meta["arch_config"])
        model = build(cfg, state)
        torch.manual_seed(0)
        x = torch.rand(1, cfg["input_nc"], args.size, args.size) * 2 - 1
        row = {"model": path, "arch": cfg["arch"], "norm": cfg["norm"]}
        row["torch_fp32_median_ms"], row["torch_fp32_p90_ms"] = time_model(model, x, args.runs, args.warmup, False)
        if not args.no_bf16:
            row["torch_bf16_median_ms"], _ = time_model(model, x, args.runs, args.warmup, True)
        if args.torchscript:
            with torch.no_grad():
                ts = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x).eval()))
            row["torchscript_fp32_median_ms"], row["torchscript_fp32_p90_ms"] = time_model(ts, x, args.runs,
                                                                                          args.warmup, False)
        if args.ganlite and args.check:
            row["max_diff_8bit_vs_ganlite"] = check_same_outputs(args.ganlite, path, model)
            if row["max_diff_8bit_vs_ganlite"] > 2:
                raise SystemExit(f"{path}: PyTorch and ganlite outputs differ by {row['max_diff_8bit_vs_ganlite']} levels")
        if args.ganlite:
            for prec in ("fp32", "bf16"):
                g = ganlite_bench(args.ganlite, path, args, prec)
                row[f"ganlite_{prec}_median_ms"] = g["median_ms"]
                row[f"ganlite_{prec}_gflops"] = g["gflops"]
                row["macs"] = g["macs"]
                row[f"ratio_{prec}_vs_torch_fp32"] = g["median_ms"] / row["torch_fp32_median_ms"]
        rows.append(row)
    if len(rows) == 2 and args.ganlite:
        t, s = rows
        mac_ratio = t["macs"] / s["macs"]
        for prec in ("fp32", "bf16"):
            speed = t[f"ganlite_{prec}_median_ms"] / s[f"ganlite_{prec}_median_ms"]
            rows.append({"teacher_student_mac_ratio": mac_ratio, "precision": prec, "wallclock_speedup": speed,
                         "speedup_over_mac_ratio": speed / mac_ratio})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
