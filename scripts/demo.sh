#!/usr/bin/env bash
# The whole pipeline on built-in synthetic data (what `make demo` runs), now one C++ command:
#   dataset -> teacher -> one-step pruning to 1/10 of its MACs -> KA distillation -> evaluation
#   report -> ONNX export, checked against ganlite's own output through OpenCV DNN.
# Usage: scripts/demo.sh [BUILD_DIR] [OUT_DIR]; TEACHER_ITERS / STUDENT_ITERS / THREADS override
# the budgets (or call `ganlite demo --help` directly).
set -euo pipefail
build=${1:-build}
out=${2:-demo_out}
exec "$build/ganlite" demo --out "$out" --force --teacher-iters "${TEACHER_ITERS:-1000}" \
  --student-iters "${STUDENT_ITERS:-800}" --threads "${THREADS:-0}"
