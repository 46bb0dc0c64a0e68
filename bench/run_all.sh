#!/usr/bin/env bash
# Runs every built benchmark in turn: `make bench` or `bash bench/run_all.sh BUILD_DIR`.
set -euo pipefail
build=${1:-build}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
