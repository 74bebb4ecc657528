#!/usr/bin/env bash
# slimmatte one-command set-up for a fresh Debian 12 machine, then the main job:
# background replacement of the built-in clip with the shipped models, written to out/demo.mp4.
#
#   bash scripts/setup.sh             # set up + run the demo
#   bash scripts/setup.sh --no-demo   # set up only (used by scripts/test.sh and CI)
#
# Idempotent: apt packages, the Python venv and the build are only redone when missing/stale.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUN_DEMO=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) RUN_DEMO=0 ;;
    *) echo "unknown option $arg (use --no-demo)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# 1. System packages: GStreamer 1.22 development files, tools and plugins.
APT_PACKAGES=(pkg-config gcc libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  python3-venv unzip fonts-dejavu-core opencv-doc)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Python venv: onnxruntime (its libonnxruntime.so is what the Rust runtime loads) and the
#    model-conversion tools.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
if ! cmp -s tools/requirements.txt .venv/.requirements-installed; then
  say "installing Python packages (tools/requirements.txt)"
  .venv/bin/pip install -q --disable-pip-version-check -r tools/requirements.txt
  cp tools/requirements.txt .venv/.requirements-installed
fi
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(ls "$ROOT"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0 | head -1)}"

# 3. The MediaPipe wheel the shipped segmentation models were converted from (for the parity
#    tests and for regenerating models/; cached under ~/.cache/slimmatte).
.venv/bin/python -c 'import sys; sys.path.insert(0, "tools"); import mediapipe_to_onnx as m; m.extract_tflite_models()' >/dev/null

# 4. Rust toolchain and build (release: the CLI and libgstslimmatte.so).
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "cargo not found: install Rust (https://rustup.rs) and re-run" >&2
    exit 1
  fi
fi
say "building (cargo build --release)"
cargo build --release --quiet

if [ "$RUN_DEMO" = 1 ]; then
  say "running the demo: slimmatte demo -> out/demo.mp4"
  ./target/release/slimmatte demo --output out/demo.mp4
  echo
  echo "Done. Play it with:  gst-play-1.0 out/demo.mp4   (or any video player)"
  echo "Elements:            GST_PLUGIN_PATH=$ROOT/target/release gst-inspect-1.0 trimapgen"
  echo "Install for use outside the checkout (no environment variables): bash scripts/install.sh"
fi
