#!/usr/bin/env bash
# Renders an HTML report with headless Chromium (Debian's `chromium` package).
#   scripts/render_report.sh REPORT_DIR/index.html OUT.png [WIDTH [HEIGHT]]   screenshot (default 1200x1600)
#   scripts/render_report.sh --dump-dom REPORT_DIR/index.html                  the DOM after loading, on stdout
# Exit 3 when no Chromium is installed (CHROMIUM=/path overrides the lookup).
set -euo pipefail

usage() { echo "usage: $0 REPORT.html OUT.png [WIDTH [HEIGHT]] | $0 --dump-dom REPORT.html" >&2; exit 2; }
chrome=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chrome" ]; then echo "render_report: chromium is not installed (apt-get install chromium)" >&2; exit 3; fi

mode=screenshot
if [ "${1:-}" = "--dump-dom" ]; then mode=dom; shift; fi
[ $# -ge 1 ] || usage
html=$1
[ -f "$html" ] || { echo "render_report: no such file '$html'" >&2; exit 1; }
url="file://$(realpath "$html")"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile")

if [ "$mode" = dom ]; then
  "$chrome" "${flags[@]}" --dump-dom "$url" 2>/dev/null
  exit
fi
[ $# -ge 2 ] || usage
png=$(realpath -m "$2")
width=${3:-1200}
height=${4:-1600}
rm -f "$png"
"$chrome" "${flags[@]}" --screenshot="$png" --window-size="$width,$height" "$url" >/dev/null 2>&1 || true
if [ ! -s "$png" ]; then echo "render_report: chromium wrote no screenshot to '$png'" >&2; exit 1; fi
echo "$png"
