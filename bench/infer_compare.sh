#!/usr/bin/env bash
# Issue 8 figures: ganlite's fast inference path against PyTorch eager (Debian's python3-torch)
# on the same weights, for a CAT inception teacher (ngf 64, BatchNorm, 43.5G MACs at 256x256)
# and its one-step-pruned student (~2.6G MACs).
# Usage: bash bench/infer_compare.sh [BUILD_DIR] [WORK_DIR]; THREADS (2), RUNS (10), SIZE (256).
# The teacher is initialised by one training iteration at 32x32 (weights do not depend on the
# image size), then bench/perturb_norms.py gives its BatchNorms trained-looking statistics so the
# pruning is not degenerate; speed does not depend on how well the weights are trained.
set -euo pipefail
build=${1:-build}
work=${2:-bench_out/infer}
threads=${THREADS:-2}
runs=${RUNS:-10}
size=${SIZE:-256}
ganlite="$build/ganlite"
py=/usr/bin/python3
mkdir -p "$work"
if [ ! -f "$work/student.safetensors" ]; then
  "$ganlite" make-dataset --kind edges2shapes --count 4 --test-count 1 --size 32 --seed 1 --out "$work/data" --force -q
  "$ganlite" train --task pix2pix --data "$work/data" --arch inception --ngf 64 --norm batch --load-size 32 \
    --crop-size 32 --batch-size 2 --max-iters 1 --no-validate --threads "$threads" --out "$work/teacher_run" -q
  "$py" bench/perturb_norms.py "$work/teacher_run/checkpoints/latest_net_G.safetensors" "$work/teacher.safetensors"
  "$ganlite" prune --teacher "$work/teacher.safetensors" --target-macs 2.6G --input-size 256 \
    --out "$work/student.safetensors" -q
fi
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
