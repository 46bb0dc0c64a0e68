#!/usr/bin/env bash
# Issue 19 figures in one run: the CAT teacher (43.5G MACs) and its 2.6G student at 256x256,
# batch 1, through ganlite fp32 / bf16, PyTorch eager, TorchScript (traced, frozen, optimised) and
# OpenCV DNN on ganlite's ONNX export, on the same weights; quiet, with one competing busy process
# (`yes`), and with short-lived multi-threaded OpenBLAS jobs coming and going; each latency as a
# fraction of the measured conv peak; the teacher-to-student speed-up against the MAC ratio; and
# `prune --target-latency` at 1/12 of the teacher's measured latency. Ends with the issue's
# "Done when" checks.
# Usage: bash bench/latency_compare.sh [BUILD_DIR] [WORK_DIR]
#   THREADS (ganlite's default: one per available CPU), RUNS (10), SIZE (256), CHURN_RUNS (6).
set -euo pipefail
build=${1:-build}
work=${2:-bench_out/latency}
threads=${THREADS:-0}
py_threads=${THREADS:-$(nproc)}
runs=${RUNS:-10}
size=${SIZE:-256}
churn_runs=${CHURN_RUNS:-6}
ganlite="$build/ganlite"
py=/usr/bin/python3
mkdir -p "$work"
# The models of bench/cat_models.sh (trained one iteration, trained-looking norm statistics).
source "$(dirname "${BASH_SOURCE[0]}")/cat_models.sh"
make_cat_models
for m in teacher student; do
  [ -f "$work/$m.onnx" ] || "$ganlite" export --model "$work/$m.safetensors" --out "$work/$m.onnx" --input-size "$size" -q >/dev/null
done
out="$work/results.jsonl"
: > "$out"
record() {  # LOAD MODEL WHAT JSON...
  local load=$1 model=$2 what=$3
  shift 3
  echo "{\"load\": \"$load\", \"model\": \"$model\", \"what\": \"$what\", \"result\": $*}" >> "$out"
}
bench() {  # LOAD MODEL WHAT ARGS...
  local load=$1 model=$2 what=$3
  shift 3
  record "$load" "$model" "$what" "$("$ganlite" bench --model "$work/$model.safetensors" --size "$size" \
    --threads "$threads" --runs "$runs" --json "$@")"
}
run_set() {  # LOAD
  local load=$1
  record "$load" machine loadavg "{\"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
  for m in teacher student; do
    # The conv peak measured afresh on the quiet machine (a cached figure may come from a busy one).
    if [ "$load" = quiet ] && [ "$m" = teacher ]; then
      bench "$load" "$m" ganlite_fp32 --remeasure
    else
      bench "$load" "$m" ganlite_fp32
    fi
    bench "$load" "$m" ganlite_bf16 --precision bf16
    bench "$load" "$m" opencv_dnn --onnx "$work/$m.onnx"
    record "$load" "$m" pytorch "$("$py" bench/infer_pytorch.py --model "$work/$m.safetensors" --size "$size" \
      --threads "$py_threads" --runs "$runs" --no-bf16 --torchscript --json)"
  done
}
busy_pids=()
stop_load() {
  for p in "${busy_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${busy_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  busy_pids=()
}
trap stop_load EXIT

echo "== quiet: $(uptime)" >&2
run_set quiet
echo "== one busy process: $(uptime)" >&2
yes > /dev/null &
busy_pids+=($!)
run_set busy
stop_load
echo "== short-lived OpenBLAS jobs: $(uptime)" >&2
( while true; do "$py" -c "import numpy; numpy.ones((300,300)) @ numpy.ones((300,300))"; done ) &
busy_pids+=($!)
for i in $(seq "$churn_runs"); do
  bench churn student ganlite_fp32
  bench churn student opencv_dnn --onnx "$work/student.onnx"
done
stop_load

echo "== prune --target-latency (1/12 of the teacher's quiet fp32 latency): $(uptime)" >&2
budget=$("$py" -c "
import json
text, pos, d = open('$out').read(), 0, json.JSONDecoder()
while pos < len(text):
    if text[pos].isspace():
        pos += 1
        continue
    r, pos = d.raw_decode(text, pos)
    if r['load'] == 'quiet' and r['model'] == 'teacher' and r['what'] == 'ganlite_fp32':
        print('%.3f' % (r['result']['median_ms'] / 12))")
record quiet student_latency prune "$("$ganlite" prune --teacher "$work/teacher.safetensors" \
  --target-latency "${budget}ms" --input-size "$size" --threads "$threads" --out "$work/student_latency.safetensors" --json)"
record quiet student_latency ganlite_fp32 "$("$ganlite" bench --model "$work/student_latency.safetensors" \
  --size "$size" --threads "$threads" --runs "$runs" --json)"
echo "== done: $(uptime)" >&2
"$py" bench/latency_summary.py "$out"
