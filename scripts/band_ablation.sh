#!/usr/bin/env bash
# The band net's ablation (issue #28), on the test data of `scripts/bench.sh` (same images and
# sequences, true trimaps and the full pipeline), one `slimmatte eval` per configuration:
#
#   default           the shipped band student (refinement + band net), with the classical rows
#                     (band-net=false) of the same run
#   no-history        the same student never given the previous matte (temporal=false)
#   teacher           the unpruned temporal teacher instead of the student
#   single-frame      a band teacher trained without the previous-matte channel
#   equal-time-*      the refinement alone given the band net's time: 24 or 32 iterations at its
#                     finest level instead of 16 (at 640x360 the stage then costs about as much
#                     as with the band net; a full-resolution solve, refine-size=512, costs 2-3x
#                     more, results/band_net.md)
#
# Writes results/band_ablation/<name>/eval.{md,json} and results/band_ablation.md
# (tools/band_ablation.py). About 15 min on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${SLIMMATTE_RESULTS:-results}/band_ablation
mkdir -p "$OUT"
cargo build --release --quiet
EVAL=(./target/release/slimmatte eval --synthetic 20 --sequences 2 --sequence-frames 30 --closed-form 0 --no-rvm --alphamat)
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
run() {
  local name=$1; shift
  echo "==> $name: $*"
  "${EVAL[@]}" "$@" --out "$OUT/$name" > "$LOGS/$name.log" 2>&1 || { cat "$LOGS/$name.log"; exit 1; }
  # Keep the tables; the plots and crops of every run are in the default eval's set already.
  find "$OUT/$name" -type f ! -name eval.json ! -name eval.md -delete
  find "$OUT/$name" -mindepth 1 -type d -empty -delete
}
run default
run no-history --temporal false
run teacher --band-model models/band_teacher.onnx
run single-frame --band-model models/band_teacher_single_frame.onnx
run equal-time-24 --band-net false --refine-iterations 24
run equal-time-32 --band-net false --refine-iterations 32
.venv/bin/python tools/band_ablation.py "$OUT" > "${SLIMMATTE_RESULTS:-results}/band_ablation.md"
echo "wrote ${SLIMMATTE_RESULTS:-results}/band_ablation.md"
