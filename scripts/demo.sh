#!/usr/bin/env bash
# The whole pipeline on built-in synthetic data (what `make demo` runs):
#   dataset -> teacher -> one-step pruning to 1/10 of its MACs -> KA distillation -> evaluation
#   report -> ONNX export, checked by running the .onnx through OpenCV DNN.
# Usage: scripts/demo.sh [BUILD_DIR] [OUT_DIR]. Sizes are small so it runs on a 2-core CPU;
# TEACHER_ITERS / STUDENT_ITERS / THREADS override the budgets.
set -euo pipefail
build=${1:-build}
out=${2:-demo_out}
ganlite="$build/ganlite"
teacher_iters=${TEACHER_ITERS:-300}
student_iters=${STUDENT_ITERS:-200}
threads=${THREADS:-0}
rm -rf "$out"
mkdir -p "$out"
step() { printf '\n== %s\n' "$*"; }

step "1/6 synthetic dataset: edges2shapes 64x64 (paired, like edges2shoes)"
"$ganlite" make-dataset --kind edges2shapes --count 200 --test-count 40 --size 64 --seed 1 --out "$out/data"

step "2/6 teacher: ResNet ngf 16 with BatchNorm (its scales drive the pruning), pix2pix losses"
"$ganlite" train --task pix2pix --data "$out/data" --arch resnet --ngf 16 --norm batch \
  --load-size 72 --crop-size 64 --batch-size 4 --n-epochs 4 --n-epochs-decay 4 --max-iters "$teacher_iters" \
  --threads "$threads" --seed 1 --out "$out/teacher"
teacher="$out/teacher/checkpoints/latest_net_G.safetensors"

step "3/6 one-step pruning (CAT) to 1/10 of the teacher's MACs at 64x64"
teacher_macs=$("$ganlite" profile --model "$teacher" --input-size 64 --json | sed -n 's/^ *"macs": \([0-9]*\),*$/\1/p' | head -1)
"$ganlite" prune --teacher "$teacher" --target-macs $((teacher_macs / 10)) --input-size 64 --min-channels 4 \
  --out "$out/student_pruned.safetensors"

step "4/6 distillation by kernel alignment (KA) from the teacher"
"$ganlite" distill --method ka --teacher "$teacher" --student "$out/student_pruned.safetensors" --task pix2pix \
  --data "$out/data" --load-size 72 --crop-size 64 --batch-size 4 --n-epochs 4 --n-epochs-decay 4 \
  --max-iters "$student_iters" --threads "$threads" --seed 1 --out "$out/student"
student="$out/student/checkpoints/latest_net_G.safetensors"

step "5/6 evaluation: MACs, params, latency, PSNR/SSIM vs truth and vs teacher, HTML report"
"$ganlite" eval --teacher "$teacher" --student "$student" --data "$out/data" --out "$out/report" --threads "$threads"

step "6/6 ONNX export of the student, checked with OpenCV DNN"
"$ganlite" export --model "$student" --format onnx --dynamic-size --input-size 64 --out "$out/student.onnx"
"$ganlite" translate --model "$out/student.onnx" --input "$out/data/test" --out "$out/onnx_outputs" -q

printf '\nDone. Report: %s/report/index.html\n' "$out"
