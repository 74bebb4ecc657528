#!/usr/bin/env python3
"""INT8 versions of the shipped nets and whether they are worth it (issue #13).

Makes QDQ static-quantised copies (onnxruntime.quantization, per-channel int8 weights, uint8
activations) of the matting student, of the temporal student (when models/ has it; its
`prev_alpha` calibrated with the bank alpha shifted by a few pixels or the trimap) and of the
landscape segmentation model, calibrated on training material only:
  - matting: composites of the training matte bank (target/slimmatte-train/full/matte_bank,
    made by `slimmatte-train data` or scripts/train.sh): F and alpha of a bank matte over another
    bank matte's colours, the trimap from the alpha (soft pixels unknown);
  - segmentation: the training photographs with people (vtest.avi frames extracted by
    scripts/train.sh, opencv-doc's basketball and messi5).
Then times fp32 against int8 with ONNX Runtime (2 intra-op threads, interleaved rounds, the
best median of each) and writes results/int8.md. Nothing is shipped from here: the runtime
keeps fp32 unless int8 is faster and within 3 % SAD (eval).

Usage: .venv/bin/python tools/quantize_int8.py [--out target/int8] [--results results/int8.md]
"""

import argparse
import glob
import os
import platform
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BANK = os.path.join(ROOT, "target/slimmatte-train/full/matte_bank")
FRAMES = os.path.join(ROOT, "target/slimmatte-train/frames")
OPENCV = "/usr/share/doc/opencv-doc/examples/data"


class Feed(CalibrationDataReader):
    def __init__(self, feeds):
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)


def bank_calibration(n=32, h=368, w=640, temporal=False):
    files = sorted(glob.glob(os.path.join(BANK, "*.png")))
    if len(files) < 2:
        raise SystemExit(f"no matte bank in {BANK}: run `slimmatte-train data` first")
    rng = np.random.default_rng(2022)
    feeds = []
    for _ in range(n):
        a, b = rng.choice(len(files), 2, replace=False)
        # Pillow decodes the bank's 16-bit RGBA PNGs as 8-bit RGBA (enough for calibration).
        fa, fb = (np.asarray(Image.open(files[k]).convert("RGBA").resize((w, h)), np.float32)
                  / 255.0 for k in (a, b))
        alpha = fa[..., 3:4]
        rgb = alpha * fa[..., :3] + (1 - alpha) * fb[..., :3]
        trimap = np.where(alpha < 0.02, 0.0, np.where(alpha > 0.98, 1.0, 0.5)).astype(np.float32)
        x = np.concatenate([rgb, trimap], axis=2).transpose(2, 0, 1)[None]
        feed = {"input": np.ascontiguousarray(x, np.float32)}
        if temporal:
            # The previous matte: this alpha a few pixels away (the subject moved), or the
            # trimap itself (no history) on a quarter of them.
            if rng.random() < 0.25:
                prev = trimap
            else:
                dy, dx = rng.integers(-4, 5, size=2)
                prev = np.roll(alpha, (dy, dx), axis=(0, 1))
            feed["prev_alpha"] = np.ascontiguousarray(prev.transpose(2, 0, 1)[None], np.float32)
        feeds.append(feed)
    return feeds


def people_calibration(h=144, w=256):
    files = sorted(glob.glob(os.path.join(FRAMES, "*.png")))
    files += sorted(glob.glob(os.path.join(OPENCV, "basketball*.png")))
    files += glob.glob(os.path.join(OPENCV, "messi5.jpg"))
    if not files:
        raise SystemExit("no calibration photographs (run scripts/train.sh once for the frames)")
    feeds = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB").resize((w, h)), np.float32) / 255.0
        feeds.append({"image": np.ascontiguousarray(img.transpose(2, 0, 1)[None])})
    return feeds


def quantize(src, dst, feeds):
    quantize_static(src, dst, Feed(feeds), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def timings(models, feed, rounds=6, runs=9):
    """Best median (ms) of each model over interleaved rounds."""
    sessions = [session(m) for m in models]
    best = [float("inf")] * len(models)
    for _ in range(rounds):
        for k, s in enumerate(sessions):
            s.run(None, feed)
            t = []
            for _ in range(runs):
                a = time.perf_counter()
                s.run(None, feed)
                t.append(time.perf_counter() - a)
            best[k] = min(best[k], sorted(t)[runs // 2] * 1000)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "target/int8"))
    ap.add_argument("--results", default=os.path.join(ROOT, "results/int8.md"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    nets = [
        ("matting student 640×368", os.path.join(ROOT, "models/matting_student.onnx"),
         bank_calibration()),
        ("segmentation (landscape) 256×144",
         os.path.join(ROOT, "models/selfie_segmentation_landscape.onnx"), people_calibration()),
    ]
    temporal = os.path.join(ROOT, "models/matting_student_temporal.onnx")
    if os.path.exists(temporal):
        nets.insert(1, ("temporal student 640×368", temporal, bank_calibration(temporal=True)))
    for name, src, feeds in nets:
        dst = os.path.join(args.out, os.path.basename(src).replace(".onnx", "_int8.onnx"))
        quantize(src, dst, feeds)
        fp32, int8 = timings([src, dst], feeds[0])
        rows.append((name, len(feeds), fp32, int8))
        print(f"{name}: fp32 {fp32:.2f} ms, int8 {int8:.2f} ms ({fp32 / int8:.2f}x)")
    with open(args.results, "w") as f:
        f.write("# INT8 (QDQ static quantisation) vs fp32\n\n")
        f.write(f"`.venv/bin/python tools/quantize_int8.py` on {platform.processor() or 'x86_64'}, "
                f"onnxruntime {ort.__version__} CPU, 2 intra-op threads, best median of 6 "
                "interleaved rounds of 9 runs. Calibration on training material only "
                "(matte-bank composites; training photographs with people).\n\n")
        f.write("| model | calibration inputs | fp32 ms | int8 ms | int8 speed-up |\n")
        f.write("|---|---:|---:|---:|---:|\n")
        for name, n, a, b in rows:
            f.write(f"| {name} | {n} | {a:.2f} | {b:.2f} | {a / b:.2f}× |\n")
        f.write("\nThe runtime uses an int8 model only where it is faster *and* within 3 % of "
                "the fp32 SAD on every eval set; where int8 is slower the quality comparison is "
                "moot and fp32 stays the default. Quality: `slimmatte eval --model "
                "models/matting_student.onnx --model target/int8/matting_student_int8.onnx "
                "--alphamat --closed-form 0 --no-rvm --out DIR` (committed as `int8_eval.md`; the "
                "temporal student's, with `models/matting_student_temporal.onnx` and its int8 copy, "
                "as `int8_eval_temporal.md`).\n")
    print("wrote", args.results)


if __name__ == "__main__":
    main()
