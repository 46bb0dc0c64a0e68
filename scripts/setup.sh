#!/usr/bin/env bash
# Installs the Debian packages ganlite needs. Idempotent: installs only what is missing,
# runs apt-get update only when something is, and uses sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas0-pthread
  libopencv-dev
  libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libgloo-dev
  libcpp-httplib-dev
  python3-numpy
)
# Optional extras used by tests that skip themselves without them (independent readers,
# PyTorch reference outputs, HTML rendering). Set GANLITE_MINIMAL=1 to leave them out.
OPTIONAL=(python3-torch chromium)

missing=()
want=("${PACKAGES[@]}")
[ "${GANLITE_MINIMAL:-0}" = 1 ] || want+=("${OPTIONAL[@]}")
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
