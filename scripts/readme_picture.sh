#!/usr/bin/env bash
# The picture at the top of README.md, remade with the shipped models: one frame of the demo
# (the built-in clip) as input | matte | result, written to docs/demo_frame.png.
#
#   bash scripts/readme_picture.sh [FRAME]     # default frame 45 of the built-in clip
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FRAME=${1:-45}
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet -p slimmatte-cli
N=$((FRAME + 1))
mkdir -p "$T/matte" "$T/result" docs
./target/release/slimmatte run --frames "$N" --background transparent --output "$T/matte/%05d.png" >/dev/null
./target/release/slimmatte run --frames "$N" --background image --output "$T/result/%05d.png" >/dev/null
.venv/bin/python - "$T" "$FRAME" <<'PY'
import sys
from pathlib import Path
from PIL import Image, ImageDraw

tmp, frame = Path(sys.argv[1]), int(sys.argv[2])
rgba = Image.open(tmp / "matte" / f"{frame:05d}.png").convert("RGBA")
result = Image.open(tmp / "result" / f"{frame:05d}.png").convert("RGB")
# bgreplace background=transparent keeps the frame's colours and puts the matte in alpha.
tiles = [("input", rgba.convert("RGB")), ("matte (alpha)", rgba.getchannel("A").convert("RGB")),
         ("result (image background)", result)]
w, h = 426, 240
out = Image.new("RGB", (3 * w + 8, h + 22), "white")
draw = ImageDraw.Draw(out)
for i, (label, img) in enumerate(tiles):
    out.paste(img.resize((w, h), Image.LANCZOS), (i * (w + 4), 22))
    draw.text((i * (w + 4) + 4, 4), label, fill="black")
out.save("docs/demo_frame.png", optimize=True)
print("wrote docs/demo_frame.png")
PY
