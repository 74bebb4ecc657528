#!/usr/bin/env bash
# One command that reproduces the shipped matting models: assembles the CPU libtorch, builds
# the training crate, runs every stage (teacher, sparse distillation, latency-budget search,
# slim student, baselines), and writes models/matting_*.onnx + cards, models/results.md and
# models/plots/. Finished stages are kept in target/slimmatte-train/full and skipped on a rerun;
# an interrupted stage resumes from its checkpoint. Extra arguments go to `slimmatte-train all`
# (e.g. --budget-ms 6 --at 640x360 --threads 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# ONNX Runtime + scikit-image images come from the project's .venv (scripts/setup.sh).
if ! ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0 >/dev/null 2>&1; then
    say "no .venv with onnxruntime: running scripts/setup.sh --no-demo"
    scripts/setup.sh --no-demo
fi
# Real background / texture photographs (opencv-doc); the scikit-image ones are in .venv.
if [ ! -d /usr/share/doc/opencv-doc/examples/data ] && command -v apt-get >/dev/null; then
    say "installing opencv-doc (example photographs used as textures/backgrounds)"
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends opencv-doc >/dev/null \
        || echo "warning: opencv-doc not installed; training uses the scikit-image photographs only" >&2
fi
# Frames of opencv-doc's vtest.avi (a street with pedestrians), one every 8 s, as photographs
# for the textures and the matte bank (training/DATA.md).
frames=target/slimmatte-train/frames
vtest=/usr/share/doc/opencv-doc/examples/data/vtest.avi
if [ -f "$vtest" ] && [ -z "$(ls "$frames"/vtest_*.png 2>/dev/null)" ]; then
    mkdir -p "$frames"
    gst-launch-1.0 -q filesrc location="$vtest" ! decodebin ! videoconvert ! videorate \
        ! video/x-raw,framerate=1/8 ! pngenc ! multifilesink location="$frames/vtest_%03d.png" >/dev/null \
        || echo "warning: could not extract frames of $vtest" >&2
fi
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fonts-dejavu-core >/dev/null || true
}

say "libtorch 2.13.0 (CPU)"
LIBTORCH="$(scripts/setup_libtorch.sh | tail -n1)"
export LIBTORCH
say "building slimmatte-train"
cargo build --release -p slimmatte-training
# libtorch's OpenMP threads spin-wait; on a shared machine that collapses throughput.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
say "training the shipped operating point (about 40 min on 2 cores)"
target/release/slimmatte-train all "$@"
say "the temporal student (the crop matting net for refine=none; about 20 min)"
target/release/slimmatte-train temporal "$@"
say "the band nets (the default band-model and its comparison nets; about 20 min)"
target/release/slimmatte-train band --work target/slimmatte-train/band "$@"

# A second operating point next to the shipped one: the same teacher, stage-1 and Network
# Slimming sparsity nets (copied, not retrained); only the budget search, the slim runs and the
# baselines run again (~15 min) → models/matting_*_<N>ms.onnx, models/results_<N>ms.md.
# Off unless SLIMMATTE_SECOND_BUDGET_MS=<ms> asks for it.
second="${SLIMMATTE_SECOND_BUDGET_MS:-none}"
if [ "$second" != "none" ]; then
    op="target/slimmatte-train/op_${second}ms"
    mkdir -p "$op"
    for n in teacher stage1_sparse netslim_sparse; do
        for ext in safetensors curve.json cfg.json; do
            [ -f "$op/$n.$ext" ] || cp "target/slimmatte-train/full/$n.$ext" "$op/"
        done
    done
    say "second operating point: budget ${second} ms"
    target/release/slimmatte-train all --budget-ms "$second" --tag "_${second}ms" --work "$op"
fi
