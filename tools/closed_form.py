#!/usr/bin/env python3
"""Closed-form matting (Levin, Lischinski, Weiss 2008) via pymatting, for `slimmatte eval`.

Reads a job list (one line per image: `<image.png> <trimap.png> <out.f32>`), runs
`pymatting.estimate_alpha_cf(image, trimap)` on each and writes the alpha as raw little-endian
float32 (height x width, row-major) to `<out.f32>`. Prints `<out.f32> <seconds>` per image, so
the caller can report the time. Trimap: 0 background, 255 foreground, anything else unknown.

    .venv/bin/python tools/closed_form.py jobs.txt
"""
import sys
import time

import numpy as np
from PIL import Image


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from pymatting import estimate_alpha_cf
    except ImportError:
        print("pymatting is not installed: .venv/bin/pip install -r tools/requirements.txt", file=sys.stderr)
        return 3
    with open(sys.argv[1]) as f:
        jobs = [line.split() for line in f if line.strip()]
    for image_path, trimap_path, out_path in jobs:
        image = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float64) / 255.0
        trimap = np.asarray(Image.open(trimap_path).convert("L"), dtype=np.float64) / 255.0
        start = time.perf_counter()
        alpha = estimate_alpha_cf(image, trimap)
        took = time.perf_counter() - start
        np.clip(alpha, 0.0, 1.0).astype("<f4").tofile(out_path)
        print(f"{out_path} {took:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
