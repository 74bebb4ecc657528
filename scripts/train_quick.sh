#!/usr/bin/env bash
# CI quick mode: assembles libtorch, builds the training crate and runs every stage end to end
# on a tiny data set into a temporary folder. Exits non-zero unless the training loss falls and
# every exported ONNX model loads in ONNX Runtime and matches the tch model (≤ 1e-4).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0 >/dev/null 2>&1; then
    echo "==> no .venv with onnxruntime: running scripts/setup.sh --no-demo"
    scripts/setup.sh --no-demo
fi
LIBTORCH="$(scripts/setup_libtorch.sh | tail -n1)"
export LIBTORCH
cargo build --release -p slimmatte-training
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
start=$(date +%s)
target/release/slimmatte-train quick --work "$TMP/work" --models "$TMP/models" "$@"
echo "quick mode: $(( $(date +%s) - start )) s"
