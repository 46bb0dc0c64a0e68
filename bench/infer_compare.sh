#!/usr/bin/env bash
# Issue 8 figures: ganlite's fast inference path against PyTorch eager (Debian's python3-torch)
# on the same weights, for a CAT inception teacher (ngf 64, BatchNorm, 43.5G MACs at 256x256)
# and its one-step-pruned student (~2.6G MACs).
# Usage: bash bench/infer_compare.sh [BUILD_DIR] [WORK_DIR]; THREADS (2), RUNS (10), SIZE (256).
# The models: bench/cat_models.sh.
set -euo pipefail
build=${1:-build}
work=${2:-bench_out/infer}
threads=${THREADS:-2}
runs=${RUNS:-10}
size=${SIZE:-256}
ganlite="$build/ganlite"
py=/usr/bin/python3
mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/cat_models.sh"
make_cat_models "$threads"
echo "== load: $(uptime)"
for m in teacher student; do
  for p in fp32 bf16; do
    "$ganlite" bench --model "$work/$m.safetensors" --size "$size" --threads "$threads" --runs "$runs" --precision "$p"
  done
  "$ganlite" bench --model "$work/$m.safetensors" --size "$size" --threads "$threads" --runs "$runs" --eager
done
"$py" bench/infer_pytorch.py --model "$work/teacher.safetensors" --model "$work/student.safetensors" \
  --size "$size" --threads "$threads" --runs "$runs" --ganlite "$ganlite" --check
echo "== load: $(uptime)"
