#!/usr/bin/env bash
# Runs every test of slimmatte: set-up (idempotent), Rust unit, integration and GStreamer
# element tests, the model-conversion parity tests, formatting and clippy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --no-demo
export PATH="$HOME/.cargo/bin:$PATH"

echo "==> cargo test --release"
cargo test --release --quiet

echo "==> python tools tests (converter parity against LiteRT)"
SLIMMATTE_REQUIRE_PARITY=1 .venv/bin/python -m pytest -q tools/

echo "==> cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all -- --check
cargo clippy --release --quiet --all-targets -- -D warnings
echo "all tests passed"
