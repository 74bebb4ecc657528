#!/usr/bin/env bash
# Frame rate of the shipped pipeline as a user runs it — a plain
#   gst-launch-1.0 filesrc ! rawvideoparse ! mattebin background=color ! fakesink
# (no queues added) on moving footage (a panning, zooming crop of scikit-image's astronaut,
# raw RGBA frames) — for several trimapgen pose settings, with Robust Video Matting measured in
# the same run (`slimmatte bench --no-pipeline`, bare ONNX Runtime calls). Writes
# results/gst_launch_speed.{md,json}.
#
#   bash scripts/gst_launch_speed.sh                 # 640x360 and 1280x720
#   SPEED_RESOLUTIONS="640x360" bash scripts/gst_launch_speed.sh
#
# fps = (N_long − N_short) / (t_long − t_short) over two runs of each pipeline, so model
# loading and warm-up cancel out.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
OUT=${SLIMMATTE_RESULTS:-results}
RESOLUTIONS=${SPEED_RESOLUTIONS:-640x360 1280x720}
CONFIGS=${SPEED_CONFIGS:-"pose=false|pose=true pose-interval=1|pose=true pose-interval=2|pose=true pose-interval=3"}
SHORT=60
LONG=300
cargo build --release --quiet
export GST_PLUGIN_PATH="$PWD/target/release"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(ls "$PWD"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0 | head -1)}"
.venv/bin/python tools/peers_fetch.py >/dev/null || echo "RVM could not be fetched: it is left out"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rows=()
for res in $RESOLUTIONS; do
  w=${res%x*}; h=${res#*x}
  .venv/bin/python - "$w" "$h" "$LONG" "$TMP/clip_$res.rgba" <<'EOF'
import sys, numpy as np
from PIL import Image
from skimage import data
w, h, n, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
img = Image.fromarray(data.astronaut())
with open(path, "wb") as f:
    for t in range(n):
        s = 0.75 + 0.2 * np.sin(t / 40.0)          # zoom
        cw = 512 * s; ch = cw * h / w
        x0 = (512 - cw) / 2 + 0.5 * (512 - cw) * np.sin(t / 25.0)   # pan
        y0 = (512 - ch) * (0.5 + 0.3 * np.cos(t / 33.0))
        frame = img.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)).convert("RGBA")
        f.write(frame.tobytes())
EOF
  IFS='|' read -r -a cfgs <<< "$CONFIGS"
  for cfg in "${cfgs[@]}"; do
    times=()
    for n in $SHORT $LONG; do
      start=$(date +%s.%N)
      gst-launch-1.0 -q filesrc location="$TMP/clip_$res.rgba" num-buffers=$n blocksize=$((w * h * 4)) \
        ! rawvideoparse width=$w height=$h format=rgba framerate=30/1 \
        ! mattebin background=color $cfg ! fakesink >/dev/null
      end=$(date +%s.%N)
      times+=("$(python3 -c "print($end - $start)")")
    done
    fps=$(python3 -c "print(($LONG - $SHORT) / (${times[1]} - ${times[0]}))")
    printf '%s %-32s %7.1f fps\n' "$res" "$cfg" "$fps"
    rows+=("$res|$cfg|$fps")
  done
done
echo "RVM (bare ONNX Runtime calls, same run)…"
./target/release/slimmatte bench --no-pipeline --resolutions "$(echo $RESOLUTIONS | tr ' ' ',')" \
  --frames 30 --warmup 3 --model models/matting_student_temporal.onnx --out "$TMP/bench" >/dev/null
.venv/bin/python - "$OUT" "$TMP/bench/bench.json" "${rows[@]}" <<'EOF'
import json, sys, platform, datetime, os
out, bench_path, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
bench = json.load(open(bench_path))
rvm = {(r["width"], r["height"]): r["fps"] for r in bench["runs"] if r["system"] == "rvm"}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
res = []
for r in rows:
    size, cfg, fps = r.split("|")
    w, h = map(int, size.split("x"))
    base = rvm.get((w, h))
    res.append({"resolution": size, "settings": cfg, "fps": round(float(fps), 1),
                "rvm_fps": round(base, 1) if base else None,
                "x_rvm": round(float(fps) / base, 2) if base else None})
meta = {"date": datetime.date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(),
        "pipeline": "filesrc ! rawvideoparse ! mattebin background=color <settings> ! fakesink",
        "footage": "panning, zooming crop of scikit-image's astronaut, raw RGBA, 30 fps",
        "rvm": "rvm_mobilenetv3_fp32.onnx, bare ONNX Runtime calls (slimmatte bench --no-pipeline), recommended downsample ratio"}
json.dump({"meta": meta, "runs": res}, open(f"{out}/gst_launch_speed.json", "w"), indent=1)
with open(f"{out}/gst_launch_speed.md", "w") as f:
    f.write("# The pipeline in a plain gst-launch-1.0, against RVM in the same run\n\n")
    f.write(f"`scripts/gst_launch_speed.sh`, {meta['date']}, {cpu}, {meta['cores']} cores. Pipeline: "
            f"`{meta['pipeline']}`; footage: {meta['footage']}; RVM: {meta['rvm']}.\n\n")
    f.write("| resolution | trimapgen settings | fps | RVM fps | × RVM |\n|---|---|---:|---:|---:|\n")
    for r in res:
        f.write(f"| {r['resolution']} | `{r['settings']}` | {r['fps']:.1f} | {r['rvm_fps'] or '–'} | {r['x_rvm'] or '–'} |\n")
print(open(f"{out}/gst_launch_speed.md").read())
EOF
