#!/usr/bin/env bash
# Issue 19, lane-width rounding: `prune --target-latency` at 1/12 of the CAT teacher's measured
# fp32 latency (bench/cat_models.sh's 43.5G teacher, 256x256, batch 1), once with exact widths
# (`--lane-width off`) and once with the default (`auto`: widths also tried rounded up, and to the
# nearer multiple, of the ISA's channel block, kept when they land in the budget with more MACs);
# then both students timed alternately by `ganlite bench`, so that the load is the same for both.
# Prints one JSON line per figure; progress and `uptime` on stderr.
# Usage: bash bench/lane_rounding.sh [BUILD_DIR] [WORK_DIR]    env: THREADS (0: ganlite's default), RUNS (10), ROUNDS (3)
set -euo pipefail
build=${1:-build}
work=${2:-bench_out/lanes}
threads=${THREADS:-0}
runs=${RUNS:-10}
rounds=${ROUNDS:-3}
size=256
ganlite="$build/ganlite"
py=/usr/bin/python3
mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/cat_models.sh"
make_cat_models
echo "== teacher latency: $(uptime)" >&2
teacher_ms=$("$ganlite" bench --model "$work/teacher.safetensors" --size $size --threads "$threads" --runs "$runs" --json |
  jq '.median_ms')
budget=$("$py" -c "print('%.3f' % ($teacher_ms / 12))")
echo "{\"teacher_ms\": $teacher_ms, \"budget_ms\": $budget}"
for lanes in off auto; do
  echo "== prune --target-latency ${budget}ms --lane-width $lanes: $(uptime)" >&2
  "$ganlite" prune --teacher "$work/teacher.safetensors" --target-latency "${budget}ms" --input-size $size \
    --threads "$threads" --lane-width $lanes --out "$work/student_$lanes.safetensors" --json |
    jq -c --arg lanes "$lanes" '{lanes: $lanes, macs: .macs_after, widths, lane_width: .latency.lane_width,
      rounding: .latency.rounding, measured_ms: .latency.measured_ms, predicted_ms: .latency.predicted_ms,
      families: .latency.families}'
done
echo "== both students, alternately: $(uptime)" >&2
for r in $(seq "$rounds"); do
  for lanes in off auto; do
    "$ganlite" bench --model "$work/student_$lanes.safetensors" --size $size --threads "$threads" --runs "$runs" --json |
      jq -c --arg lanes "$lanes" --argjson round "$r" '{round: $round, lanes: $lanes, median_ms, macs}'
  done
done
echo "== done: $(uptime)" >&2
