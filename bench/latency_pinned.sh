#!/usr/bin/env bash
# Issue 19's collapse, reproduced on purpose: `ganlite bench` starts normally (libgomp sees every
# CPU, so it keeps its long spin), then all its threads are moved onto CPU 0 with taskset, as the
# scheduler does when another process holds the other core. Prints the median per frame with
# ganlite's bounded spin, libgomp's default (GOMP_SPINCOUNT=300000), and passive waiting.
# Run it on an otherwise idle machine: with other work on CPU 0 as well the figures scatter
# (3.2 s, 0.17 s and 0.085 s a frame for the default spin in three runs at load 6).
# Usage: bash bench/latency_pinned.sh MODEL.safetensors [BUILD_DIR]
set -euo pipefail
model=$1
ganlite=${2:-build}/ganlite
pinned() {  # ENV...
  local log
  log=$(mktemp)
  env "$@" "$ganlite" bench --model "$model" --runs 6 --warmup 1 --threads 2 > "$log" 2>&1 &
  local pid=$!
  sleep 0.4
  taskset -a -p 1 "$pid" > /dev/null
  wait "$pid"
  echo "$* : $(grep -h 'median' "$log")"
  rm -f "$log"
}
pinned GANLITE_PINNED=1   # ganlite's default (bounded spin)
pinned GOMP_SPINCOUNT=300000
pinned OMP_WAIT_POLICY=PASSIVE
