#!/usr/bin/env python3
"""Write tiny, valid ONNX models that break the selfie-model contract, for the Rust tests.

Usage:  .venv/bin/python tools/make_test_fixtures.py [--out-dir tests/fixtures]

The runtime expects input `image` float32 [1,3,H,W] and output `mask` float32
[1,1,H,W] in 0..1.  Each fixture violates exactly one part of that:

  wrong_shape.onnx  image [1,3,64,64]   -> mask [1,2,64,64]   (two output channels; 1x1 Conv)
  wrong_names.onnx  input [1,3,144,256] -> out  [1,1,144,256] (right shapes, wrong names)
  nan_output.onnx   image [1,3,144,256] -> mask [1,1,144,256] (NaN everywhere: 0/0)

and one plumbing fixture for the matting-net contract (input `input` [1,4,H,W] = RGB + trimap,
output `alpha` [1,1,H,W]), whose output is a known function of the pixels so element tests can
predict it:

  luma_key_matte.onnx  alpha = sigmoid(20·(luma − 0.5)), dynamic H and W
  nan_matte.onnx       alpha = NaN everywhere (0/0), dynamic H and W: a broken net must be an
                       error before the refinement sees it

and three for the temporal matting contract (a second input `prev_alpha` [1,1,H,W], the previous
frame's matte on the crop, or the trimap without history):

  prev_copy_matte.onnx   alpha = prev_alpha (Identity; `input` unused), dynamic H and W: the
                         matte shows exactly what the stage fed as history
  prev_mix_matte.onnx    alpha = (prev_alpha + red) / 2, dynamic H and W: tells one pass from
                         the two the stage makes without history
  prev_wrong_shape.onnx  prev_alpha [1,2,H,W] (two channels), alpha = their mean: refused at
                         load

The files are deterministic (fixed weights, no timestamps) and a few hundred bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "slimmatte tools/make_test_fixtures.py"


def _model(name: str, nodes, inputs, outputs, initializers=(), doc: str = "") -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers), doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER, doc_string=doc)
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def _f32(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def wrong_shape() -> onnx.ModelProto:
    # 1x1 convolution 3 -> 2 channels with fixed weights: luma and its complement.
    w = np.array([[0.299, 0.587, 0.114], [-0.299, -0.587, -0.114]], np.float32).reshape(2, 3, 1, 1)
    b = np.array([0.0, 1.0], np.float32)
    return _model(
        "wrong_shape",
        [helper.make_node("Conv", ["image", "W", "B"], ["mask"], kernel_shape=[1, 1])],
        [_f32("image", [1, 3, 64, 64])], [_f32("mask", [1, 2, 64, 64])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
        doc="Valid model whose output has 2 channels instead of 1 (test fixture).")


def wrong_names() -> onnx.ModelProto:
    # Channel mean: correct shapes and value range, but named input/out.
    return _model(
        "wrong_names",
        [helper.make_node("ReduceMean", ["input"], ["out"], axes=[1], keepdims=1)],
        [_f32("input", [1, 3, 144, 256])], [_f32("out", [1, 1, 144, 256])],
        doc="Valid model with input 'input' and output 'out' instead of image/mask (test fixture).")


def nan_output() -> onnx.ModelProto:
    # z = mean(image) * 0, mask = z / z = 0/0 = NaN for every pixel (also for inf inputs).
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    return _model(
        "nan_output",
        [helper.make_node("ReduceMean", ["image"], ["m"], axes=[1], keepdims=1),
         helper.make_node("Mul", ["m", "zero"], ["z"]),
         helper.make_node("Div", ["z", "z"], ["mask"])],
        [_f32("image", [1, 3, 144, 256])], [_f32("mask", [1, 1, 144, 256])], [zero],
        doc="Valid image->mask model whose output is NaN everywhere (test fixture).")


def luma_key_matte() -> onnx.ModelProto:
    # A 1x1 convolution over RGB (trimap ignored) followed by a sigmoid: bright = foreground.
    w = (20.0 * np.array([0.299, 0.587, 0.114, 0.0], np.float32)).reshape(1, 4, 1, 1)
    b = np.array([-10.0], np.float32)
    return _model(
        "luma_key_matte",
        [helper.make_node("Conv", ["input", "W", "B"], ["logit"], kernel_shape=[1, 1]),
         helper.make_node("Sigmoid", ["logit"], ["alpha"])],
        [_f32("input", [1, 4, "height", "width"])], [_f32("alpha", [1, 1, "height", "width"])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
        doc="Matting-contract plumbing fixture: alpha = sigmoid(20*(luma-0.5)) (test fixture).")


def nan_matte() -> onnx.ModelProto:
    # z = mean over channels * 0, alpha = z / z = 0/0 = NaN for every pixel.
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    return _model(
        "nan_matte",
        [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1], keepdims=1),
         helper.make_node("Mul", ["m", "zero"], ["z"]),
         helper.make_node("Div", ["z", "z"], ["alpha"])],
        [_f32("input", [1, 4, "height", "width"])], [_f32("alpha", [1, 1, "height", "width"])],
        [zero],
        doc="Matting-contract model whose output is NaN everywhere (test fixture).")


def prev_copy_matte() -> onnx.ModelProto:
    # The output is the second input as it is: what the stage feeds as history comes back out.
    return _model(
        "prev_copy_matte",
        [helper.make_node("Identity", ["prev_alpha"], ["alpha"])],
        [_f32("input", [1, 4, "height", "width"]), _f32("prev_alpha", [1, 1, "height", "width"])],
        [_f32("alpha", [1, 1, "height", "width"])],
        doc="Temporal matting-contract fixture: alpha = prev_alpha (test fixture).")


def prev_mix_matte() -> onnx.ModelProto:
    # alpha = (prev_alpha + red) / 2: one pass from the trimap gives (t + r) / 2, a second pass
    # fed the first one's matte gives ((t + r) / 2 + r) / 2 — the tests tell them apart.
    starts = numpy_helper.from_array(np.array([0], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([1], np.int64), "ends")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    return _model(
        "prev_mix_matte",
        [helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["red"]),
         helper.make_node("Add", ["prev_alpha", "red"], ["sum"]),
         helper.make_node("Mul", ["sum", "half"], ["alpha"])],
        [_f32("input", [1, 4, "height", "width"]), _f32("prev_alpha", [1, 1, "height", "width"])],
        [_f32("alpha", [1, 1, "height", "width"])],
        [starts, ends, axes, half],
        doc="Temporal matting-contract fixture: alpha = (prev_alpha + red) / 2 (test fixture).")


def prev_wrong_shape() -> onnx.ModelProto:
    # A temporal net whose prev_alpha has two channels instead of one.
    return _model(
        "prev_wrong_shape",
        [helper.make_node("ReduceMean", ["prev_alpha"], ["alpha"], axes=[1], keepdims=1)],
        [_f32("input", [1, 4, "height", "width"]), _f32("prev_alpha", [1, 2, "height", "width"])],
        [_f32("alpha", [1, 1, "height", "width"])],
        doc="Temporal matting model whose prev_alpha has 2 channels instead of 1 (test fixture).")


FIXTURES = {"wrong_shape": wrong_shape, "wrong_names": wrong_names, "nan_output": nan_output,
            "luma_key_matte": luma_key_matte, "nan_matte": nan_matte,
            "prev_copy_matte": prev_copy_matte, "prev_mix_matte": prev_mix_matte,
            "prev_wrong_shape": prev_wrong_shape}


def band_fixed_width() -> onnx.ModelProto:
    """The shipped band student with its input fixed at one tile (30×30 cells) and its output
    at the tile's centre: right for one tile, but the stage runs tiles side by side as one wider
    input, which this net cannot take (the element must refuse it at start)."""
    repo = Path(__file__).resolve().parent.parent
    m = onnx.load(repo / "models" / "band_student.onnx")
    for value, (h, w) in ((m.graph.input[0], (30, 30)), (m.graph.output[0], (16, 16))):
        dims = value.type.tensor_type.shape.dim
        dims[2].ClearField("dim_param")
        dims[2].dim_value = h
        dims[3].ClearField("dim_param")
        dims[3].dim_value = w
    onnx.checker.check_model(m)
    return m


FIXTURES["band_fixed_width"] = band_fixed_width


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=repo / "tests" / "fixtures")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, make in FIXTURES.items():
        path = args.out_dir / f"{name}.onnx"
        onnx.save_model(make(), path)
        print(f"{path}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
