#!/usr/bin/python3
"""Gives a freshly initialised ganlite generator file trained-looking norm statistics.

A speed benchmark needs a CAT-pruned student of a given MAC budget, but not a converged teacher;
pruning an untrained teacher (all BatchNorm scales 1) would be degenerate. This rewrites every
BatchNorm `weight` (|gamma|, what pruning scores) as U(0.05, 1), `bias` as U(-0.1, 0.1),
`running_mean` U(-0.1, 0.1) and `running_var` U(0.5, 2) with a fixed seed; other tensors and the
metadata are kept. Usage: /usr/bin/python3 bench/perturb_norms.py IN.safetensors OUT.safetensors
"""
import json
import struct
import sys

import numpy as np


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    rng = np.random.default_rng(0)
    # Norm layers are the owners of a running_var buffer.
    norms = {k[: -len(".running_var")] for k in header if k.endswith(".running_var")}
    out = bytearray(data[base:])
    ranges = {"weight": (0.05, 1.0), "bias": (-0.1, 0.1), "running_mean": (-0.1, 0.1), "running_var": (0.5, 2.0)}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        prefix, _, leaf = name.rpartition(".")
        if prefix in norms and leaf in ranges:
            begin, end = info["data_offsets"]
            count = (end - begin) // 4
            lo, hi = ranges[leaf]
            out[begin:end] = rng.uniform(lo, hi, count).astype("<f4").tobytes()
    with open(dst, "wb") as f:
        f.write(data[:base] + bytes(out))


if __name__ == "__main__":
    main()
