#!/usr/bin/env bash
# Installed-copy test (run by scripts/test.sh): `scripts/install.sh` into a fresh home, then
# gst-inspect-1.0, gst-launch-1.0 and the `slimmatte` command are used with no environment but
# HOME and a system PATH — no GST_PLUGIN_PATH, no SLIMMATTE_* — and must work, find the
# installed models (not the checkout's) and print no build path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fail() { echo "installed-copy test FAILED: $*" >&2; exit 1; }

mkdir -p "$T/home"
# cargo and rustup keep their own homes; only the install's home is the fresh one.
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
  HOME="$T/home" PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" \
  bash scripts/install.sh > "$T/install.log" || { cat "$T/install.log"; fail "install.sh"; }
clean() { env -i HOME="$T/home" PATH=/usr/local/bin:/usr/bin:/bin "$@"; }

PLUGIN="$T/home/.local/share/gstreamer-1.0/plugins/libgstslimmatte.so"
for e in trimapgen slimmatte bgreplace mattebin; do
  details="$(clean gst-inspect-1.0 "$e")" || fail "gst-inspect-1.0 $e"
  grep -qF "Filename                 $PLUGIN" <<<"$details" \
    || fail "$e was not loaded from the installed plugin $PLUGIN"
  if grep -qF "$ROOT" <<<"$details"; then
    grep -F "$ROOT" <<<"$details" >&2
    fail "gst-inspect-1.0 $e shows the build path $ROOT"
  fi
done
grep -qF "$T/home/.local/share/slimmatte/models/matting_student_temporal.onnx" \
  <<<"$(clean gst-inspect-1.0 slimmatte)" || fail "slimmatte's model is not the installed one"

clean gst-launch-1.0 -q videotestsrc num-buffers=4 pattern=ball \
  ! video/x-raw,width=320,height=180 ! mattebin background=color \
  ! videoconvert ! pngenc ! multifilesink location="$T/frame%d.png" > "$T/launch.log" 2>&1 \
  || { cat "$T/launch.log"; fail "gst-launch-1.0 … mattebin …"; }
[ "$(ls "$T"/frame*.png | wc -l)" -eq 4 ] || fail "gst-launch wrote $(ls "$T"/frame*.png | wc -l) frames, not 4"

out="$(cd / && clean "$T/home/.local/bin/slimmatte" run --frames 4 --output "$T/out.mp4" 2>&1)" \
  || { echo "$out"; fail "slimmatte run"; }
grep -q "^models: .*$T/home/.local/share/slimmatte/models/selfie_segmentation_landscape.onnx" <<<"$out" \
  || { echo "$out"; fail "the command did not use the installed segmentation model"; }
grep -q "$T/home/.local/share/slimmatte/models/matting_student_temporal.onnx" <<<"$out" \
  || { echo "$out"; fail "the command did not use the installed matting model"; }
[ -s "$T/out.mp4" ] || fail "no $T/out.mp4"

CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" HOME="$T/home" bash scripts/install.sh --uninstall >/dev/null
[ ! -e "$T/home/.local/bin/slimmatte" ] || fail "--uninstall left the command"
echo "installed-copy test passed (gst-inspect-1.0, gst-launch-1.0 mattebin, slimmatte run)"
