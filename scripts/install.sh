#!/usr/bin/env bash
# Installs slimmatte for use outside this checkout: the `slimmatte` command, the GStreamer plugin
# (trimapgen, slimmatte, bgreplace, mattebin), the shipped models with their cards and licence,
# and the ONNX Runtime library the elements load. Run `bash scripts/setup.sh --no-demo` first
# (it builds and fetches onnxruntime into .venv); this script builds what is stale and copies.
#
#   bash scripts/install.sh                  # for this user, no root, no environment variables:
#       ~/.local/bin/slimmatte
#       ~/.local/share/gstreamer-1.0/plugins/libgstslimmatte.so   (GStreamer's user plugin folder)
#       ~/.local/share/slimmatte/models/*.onnx, ~/.local/share/slimmatte/lib/libonnxruntime.so.*
#   sudo bash scripts/install.sh --prefix /usr   # system-wide: the plugin goes to GStreamer's
#                                                # system plugin folder (pkg-config pluginsdir)
#   bash scripts/install.sh --prefix DIR     # elsewhere: plugin in DIR/lib/gstreamer-1.0
#                                            # (add it to GST_PLUGIN_PATH), data in DIR/share/slimmatte
#   bash scripts/install.sh --uninstall [--prefix DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PREFIX="$HOME/.local"
UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a folder}"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    *) echo "unknown option $1 (use --prefix DIR, --uninstall)" >&2; exit 2 ;;
  esac
done
PREFIX="$(mkdir -p "$PREFIX" && cd "$PREFIX" && pwd)"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

BIN_DIR="$PREFIX/bin"
DATA_DIR="$PREFIX/share/slimmatte"
if [ "$PREFIX" = "$(cd "$HOME" && pwd)/.local" ]; then
  PLUGIN_DIR="$PREFIX/share/gstreamer-1.0/plugins"   # = $XDG_DATA_HOME/gstreamer-1.0/plugins
  ON_PATH=1
elif [ "$PREFIX" = /usr ]; then
  PLUGIN_DIR="$(pkg-config --variable=pluginsdir gstreamer-1.0)"
  ON_PATH=1
else
  PLUGIN_DIR="$PREFIX/lib/gstreamer-1.0"
  ON_PATH=0
fi
PLUGIN_FILE=libgstslimmatte.so

if [ "$UNINSTALL" = 1 ]; then
  say "removing slimmatte from $PREFIX"
  rm -f "$BIN_DIR/slimmatte" "$PLUGIN_DIR/$PLUGIN_FILE"
  rm -rf "$DATA_DIR"
  exit 0
fi

export PATH="$HOME/.cargo/bin:$PATH"
# The onnxruntime release the core loads (slimmatte::runtime::ORT_VERSION, tools/requirements.txt).
ORT_VERSION="$(sed -n 's/^onnxruntime==//p' tools/requirements.txt)"
ORT_LIB="$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so."$ORT_VERSION" 2>/dev/null | head -1 || true)"
if [ -z "$ORT_LIB" ]; then
  echo "onnxruntime $ORT_VERSION is not in .venv: run 'bash scripts/setup.sh --no-demo' first" >&2
  exit 1
fi

say "building (cargo build --release -p slimmatte-cli -p gst-plugin-slimmatte)"
cargo build --release --quiet -p slimmatte-cli -p gst-plugin-slimmatte

say "installing into $PREFIX"
install -d "$BIN_DIR" "$PLUGIN_DIR" "$DATA_DIR/models" "$DATA_DIR/lib" "$DATA_DIR/assets"
install -m 755 target/release/slimmatte "$BIN_DIR/slimmatte"
install -m 644 "target/release/$PLUGIN_FILE" "$PLUGIN_DIR/$PLUGIN_FILE"
install -m 644 models/*.onnx models/*.json models/*.md models/LICENSE-* "$DATA_DIR/models/"
install -m 644 "$ORT_LIB" "$DATA_DIR/lib/"
install -m 644 assets/hubble_deep_field.jpg "$DATA_DIR/assets/"   # the default image background

echo "  command: $BIN_DIR/slimmatte"
echo "  plugin:  $PLUGIN_DIR/$PLUGIN_FILE"
echo "  models:  $DATA_DIR/models ($(ls "$DATA_DIR/models"/*.onnx | wc -l) ONNX files)"
echo "  runtime: $DATA_DIR/lib/$(basename "$ORT_LIB")"
if [ "$ON_PATH" = 1 ]; then
  echo "Check: gst-inspect-1.0 slimmatte"
else
  echo "GStreamer does not look in $PLUGIN_DIR by itself: export GST_PLUGIN_PATH=$PLUGIN_DIR"
fi
case ":$PATH:" in
  *":$BIN_DIR:"*) ;;
  *) echo "Add $BIN_DIR to PATH to run 'slimmatte' by name." ;;
esac
