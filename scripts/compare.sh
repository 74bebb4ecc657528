#!/usr/bin/env bash
# Issue #14's comparison of the seed method with Network Slimming (models/compare.md and a block
# of models/results.md): the paper-faithful and the teacher-init arm, prune rates 0.5 and 0.75,
# equal FLOPs, controls, 3 seeds, paired bootstrap intervals on 300 test composites. Needs the
# teacher and the sparse runs of scripts/train.sh (run first when missing). Resumable: finished
# cells are cached in target/slimmatte-train/full/compare/. Extra arguments go to
# `slimmatte-train compare` (e.g. --arms faithful --seeds 3 --compare-steps 400 --threads 1).
#
# On 2 cores the two arms run faster as two 1-thread processes:
#   scripts/compare.sh --arms faithful --threads 1 & scripts/compare.sh --arms teacher-init --threads 1
# then once more without --arms to write the report of both from the cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

work=target/slimmatte-train/full
if [ ! -f "$work/stage1_sparse.safetensors" ] || [ ! -f "$work/netslim_sparse.safetensors" ]; then
    echo "==> no trained teacher / sparse runs in $work: running scripts/train.sh first"
    scripts/train.sh
fi
LIBTORCH="$(scripts/setup_libtorch.sh | tail -n1)"
export LIBTORCH
cargo build --release -p slimmatte-training
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
target/release/slimmatte-train compare "$@"
