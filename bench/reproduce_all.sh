#!/usr/bin/env bash
# Every recipe (recipes/*.json) through `ganlite reproduce --scale tiny`, one after the other, on
# CPU: the slow companion of tests/cli/test_reproduce.cpp (which runs one recipe in `make test`).
# Usage: bash bench/reproduce_all.sh [BUILD_DIR] [OUT_DIR] [INCEPTION_WEIGHTS]
# Without INCEPTION_WEIGHTS the FID stages are skipped (the report says so); recipes whose stages
# need flags this build lacks (DCD before the online teacher) are reported as refused, not failed.
set -uo pipefail
build=${1:-build}
out=${2:-$(mktemp -d)}
inception=${3:-}
ganlite="$build/ganlite"
extra=()
[ -n "$inception" ] && extra=(--inception "$inception")
status=0
start_all=$(date +%s)
for name in $("$ganlite" recipes --json | python3 -c 'import json,sys; print(" ".join(r["name"] for r in json.load(sys.stdin)["recipes"]))'); do
  start=$(date +%s)
  "$ganlite" reproduce --recipe "$name" --scale tiny --threads "${THREADS:-1}" --quiet --out "$out/$name" "${extra[@]}" \
      >"$out/$name.stdout" 2>"$out/$name.stderr"
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    echo "ok       $name (${secs} s)"
  elif [ $rc -eq 2 ] && grep -q "in this build; nothing was run" "$out/$name.stderr"; then
    echo "refused  $name (${secs} s): $(grep -o "stage .*nothing was run" "$out/$name.stderr")"
  else
    echo "FAILED   $name (${secs} s): see $out/$name.stderr"; tail -5 "$out/$name.stderr"; status=1
  fi
done
echo "total $(( $(date +%s) - start_all )) s; reports under $out/<recipe>/report.md"
exit $status
