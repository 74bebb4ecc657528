#!/usr/bin/env python3
"""Convert MediaPipe's selfie-segmentation, pose-landmark and pose-detector TFLite models to ONNX.

Usage:
    python tools/mediapipe_to_onnx.py [--wheel PATH] [--cache DIR] [--out-dir models] [--fixture]

The two .tflite files ship inside the PyPI wheel ``mediapipe==0.10.21`` (newer
wheels no longer contain them) under ``mediapipe/modules/selfie_segmentation/``.
Without ``--wheel`` the wheel is fetched with ``pip download`` into the cache
directory (default ``~/.cache/slimmatte/wheels``) unless it is already there.

The translator is general: it walks the TFLite operators in order and maps each
one to ONNX nodes (``OP_HANDLERS``).  TFLite works in NHWC; every rank-4
activation is kept in NCHW in the ONNX graph, constant weights are re-laid out
at conversion time and fp16 weights (DEQUANTIZE of a constant) are folded into
fp32 initializers.  Any operator without a handler raises ``UnsupportedOpError``
naming it.

ONNX interface written for the slimmatte runtime (the Rust side relies on it exactly):
    input  ``image``: float32 [1, 3, H, W], RGB in 0..1, NCHW
    output ``mask`` : float32 [1, 1, H, W], person probability in 0..1 (sigmoid applied)
with (H, W) = (256, 256) for ``selfie_segmentation`` and (144, 256) for
``selfie_segmentation_landscape``.  The pose landmark network and the person detector
(``convert_pose_model``, ``convert_detector_model``) have their own interfaces, given in
their model cards; the detector's decoding (anchors, weighted NMS, letterbox removal, the
landmark region) is reproduced in numpy below as the reference for the Rust side, and
``--fixture`` writes that reference for a few frames to tests/fixtures/.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

CONVERTER = "slimmatte tools/mediapipe_to_onnx.py"
CONVERTER_VERSION = "1"
OPSET = 17
# Opset 17 needs IR >= 8; pinning it keeps the files loadable by older runtimes.
IR_VERSION = 8

MEDIAPIPE_VERSION = "0.10.21"
WHEEL_FILENAME = f"mediapipe-{MEDIAPIPE_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_MODEL_DIR = "mediapipe/modules/selfie_segmentation"
DEFAULT_CACHE = Path("~/.cache/slimmatte/wheels")

# The models we extract, with the SHA-256 of the .tflite inside the wheel (pinned
# so that a different file under the same name cannot slip in silently).
MODELS: dict[str, str] = {
    "selfie_segmentation":
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    "selfie_segmentation_landscape":
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
}

# MediaPipe Pose's landmark network ("full", BlazePose GHUM 3D), whose person segmentation
# `trimapgen pose=true` averages with the selfie mask: {name: (folder in the wheel, sha256)}.
POSE_MODELS: dict[str, tuple[str, str]] = {
    "pose_landmark_full": (
        "mediapipe/modules/pose_landmark",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}

# MediaPipe Pose's person detector (BlazePose detector, SSD with 2254 anchors), which places the
# landmark network's first region and re-finds the person after a loss: {name: (folder, sha256)}.
DETECTOR_MODELS: dict[str, tuple[str, str]] = {
    "pose_detection": (
        "mediapipe/modules/pose_detection",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
}

LICENSE = "Apache-2.0"
COPYRIGHT = "Copyright 2021 The MediaPipe Authors."


# ---------------------------------------------------------------------------
# Fetching the .tflite files out of the PyPI wheel
# ---------------------------------------------------------------------------

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ensure_wheel(cache: Path) -> Path:
    """Return the mediapipe wheel in `cache`, running `pip download` if it is absent."""
    wheel = cache / WHEEL_FILENAME
    if wheel.is_file():
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps",
        f"mediapipe=={MEDIAPIPE_VERSION}", "--only-binary=:all:",
        "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
        "-d", str(cache),
    ]
    print("fetching wheel:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    if not wheel.is_file():
        raise FileNotFoundError(f"pip download finished but {wheel} is missing")
    return wheel


def _extract(wheel: Path | str | None, cache: Path | str | None, folder: str,
             members: dict[str, tuple[str, str]]) -> dict[str, Path]:
    """Extract `members` ({name: (folder in the wheel, sha256)}) from the mediapipe wheel into
    `<cache>/<folder>`, each checked against its pinned SHA-256; returns {name: path}."""
    cache = Path(cache if cache is not None else DEFAULT_CACHE).expanduser()
    wheel = Path(wheel).expanduser() if wheel is not None else ensure_wheel(cache)
    out_dir = cache / folder
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    with zipfile.ZipFile(wheel) as zf:
        for name, (wheel_dir, want_sha) in members.items():
            member = f"{wheel_dir}/{name}.tflite"
            try:
                data = zf.read(member)
            except KeyError:
                raise FileNotFoundError(f"{member} not found in {wheel}") from None
            got_sha = sha256_bytes(data)
            if got_sha != want_sha:
                raise ValueError(f"{member} in {wheel}: sha256 {got_sha}, expected {want_sha}")
            dst = out_dir / f"{name}.tflite"
            if not dst.is_file() or dst.read_bytes() != data:
                tmp = dst.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(dst)
            paths[name] = dst
    return paths


def extract_tflite_models(wheel: Path | str | None = None,
                          cache: Path | str | None = None) -> dict[str, Path]:
    """Extract the selfie-segmentation .tflite files from the mediapipe wheel.

    Returns {model name: path of the .tflite in the cache}.  The files are
    checked against the pinned SHA-256 values in MODELS.
    """
    members = {name: (WHEEL_MODEL_DIR, sha) for name, sha in MODELS.items()}
    return _extract(wheel, cache, f"mediapipe-{MEDIAPIPE_VERSION}-selfie_segmentation", members)


def extract_pose_model(wheel: Path | str | None = None,
                       cache: Path | str | None = None) -> dict[str, Path]:
    """Extract MediaPipe Pose's landmark .tflite (POSE_MODELS) from the wheel, checked against
    its pinned SHA-256; returns {model name: path of the .tflite in the cache}."""
    return _extract(wheel, cache, f"mediapipe-{MEDIAPIPE_VERSION}-pose_landmark", POSE_MODELS)


def extract_detector_model(wheel: Path | str | None = None,
                           cache: Path | str | None = None) -> dict[str, Path]:
    """Extract MediaPipe Pose's person-detector .tflite (DETECTOR_MODELS) from the wheel, checked
    against its pinned SHA-256; returns {model name: path of the .tflite in the cache}."""
    return _extract(wheel, cache, f"mediapipe-{MEDIAPIPE_VERSION}-pose_detection", DETECTOR_MODELS)


# ---------------------------------------------------------------------------
# Reading the TFLite flatbuffer
# ---------------------------------------------------------------------------

class ConversionError(RuntimeError):
    """The model uses a feature of a supported operator that we cannot translate."""


class UnsupportedOpError(ConversionError, NotImplementedError):
    """The model contains an operator with no ONNX translation."""


_BUILTIN_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}

_NUMPY_DTYPES = {
    TensorType.FLOAT32: np.float32, TensorType.FLOAT16: np.float16,
    TensorType.INT32: np.int32, TensorType.INT64: np.int64,
    TensorType.UINT8: np.uint8, TensorType.INT8: np.int8,
    TensorType.INT16: np.int16, TensorType.BOOL: np.bool_,
}


def op_name(builtin_code: int, custom_code: str = "") -> str:
    """Readable operator name: the BuiltinOperator name or "CUSTOM:<custom code>"."""
    if builtin_code == BuiltinOperator.CUSTOM:
        return f"CUSTOM:{custom_code}"
    return _BUILTIN_NAMES.get(builtin_code, f"<unknown builtin operator code {builtin_code}>")


@dataclass
class TflTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: type
    data: np.ndarray | None          # constant contents (TFLite layout), or None
    scale: np.ndarray | None = None  # quantization parameters, if any
    zero_point: np.ndarray | None = None
    quantized_dim: int = 0


@dataclass
class TflOp:
    index: int                 # position in the subgraph's operator list
    code: int                  # BuiltinOperator value
    custom_code: str           # for BuiltinOperator.CUSTOM
    inputs: list[int]          # tensor indices; -1 marks an omitted optional input
    outputs: list[int]
    options_type: int = BuiltinOptions.NONE
    options: object = None     # flatbuffers Table of the builtin options, or None
    custom_options: bytes = b""

    @property
    def name(self) -> str:
        return op_name(self.code, self.custom_code)


class TflGraph:
    """The first subgraph of a .tflite model, decoded into plain Python objects."""

    def __init__(self, buf: bytes):
        model = tflite.Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() != 1:
            raise ConversionError(f"expected 1 subgraph, found {model.SubgraphsLength()}")
        g = model.Subgraphs(0)
        self.description = (model.Description() or b"").decode()
        self.tensors = [self._tensor(model, buf, g.Tensors(i), i) for i in range(g.TensorsLength())]
        self.inputs = [int(i) for i in g.InputsAsNumpy()]
        self.outputs = [int(i) for i in g.OutputsAsNumpy()]
        self.ops: list[TflOp] = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            oc = model.OperatorCodes(op.OpcodeIndex())
            # Schema 3a moved the code to an int32 field; old files only fill the int8 one.
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            custom = (oc.CustomCode() or b"").decode()
            self.ops.append(TflOp(
                index=i, code=code, custom_code=custom,
                inputs=[int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else [],
                outputs=[int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                options_type=op.BuiltinOptionsType(),
                options=op.BuiltinOptions(),
                custom_options=op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b"",
            ))

    @staticmethod
    def _tensor(model, buf: bytes, t, index: int) -> TflTensor:
        ttype = t.Type()
        if ttype not in _NUMPY_DTYPES:
            raise ConversionError(f"tensor {index} ({t.Name()!r}) has unsupported type {ttype}")
        dtype = _NUMPY_DTYPES[ttype]
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        data = None
        b = model.Buffers(t.Buffer())
        raw = None
        if b is not None and b.DataLength():
            raw = b.DataAsNumpy().tobytes()
        elif b is not None and b.Offset() > 1:    # large-model layout: data after the flatbuffer
            raw = buf[b.Offset():b.Offset() + b.Size()]
        if raw:
            values = np.frombuffer(raw, dtype=dtype)
            sparsity = t.Sparsity()
            if sparsity is not None:      # sparse constant (the detector's pruned 1x1 convs)
                data = _densify(values, shape, sparsity, index)
            else:
                data = values.reshape(shape).copy()
        tensor = TflTensor(index, t.Name().decode(), shape, dtype, data)
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            tensor.scale = q.ScaleAsNumpy().astype(np.float32)
            tensor.zero_point = (q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength()
                                 else np.zeros_like(tensor.scale, dtype=np.int64))
            tensor.quantized_dim = q.QuantizedDimension()
        return tensor


def _sparse_index_vector(kind: int, table, what: str, index: int) -> np.ndarray:
    """The integers of a SparseIndexVector union member (array_segments / array_indices)."""
    from tflite.Int32Vector import Int32Vector
    from tflite.SparseIndexVector import SparseIndexVector
    from tflite.Uint16Vector import Uint16Vector
    from tflite.Uint8Vector import Uint8Vector
    classes = {SparseIndexVector.Int32Vector: Int32Vector,
               SparseIndexVector.Uint16Vector: Uint16Vector,
               SparseIndexVector.Uint8Vector: Uint8Vector}
    if kind not in classes or table is None:
        raise ConversionError(f"tensor {index}: sparse {what} of unknown type {kind}")
    vec = classes[kind]()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64) if vec.ValuesLength() else np.zeros(0, np.int64)


def _densify(values: np.ndarray, shape: tuple[int, ...], sparsity, index: int) -> np.ndarray:
    """Expand a sparse TFLite constant (TACO-style SparsityParameters: one DimensionMetadata per
    level in `traversal_order`, each DENSE with a size or SPARSE_CSR with segments and indices)
    to a dense array of `shape`, as TFLite's DENSIFY does.  Block sparsity is not supported."""
    from tflite.DimensionType import DimensionType
    rank = len(shape)
    order = ([int(d) for d in sparsity.TraversalOrderAsNumpy()]
             if sparsity.TraversalOrderLength() else [])
    if sparsity.BlockMapLength() or sorted(order) != list(range(rank)) \
            or sparsity.DimMetadataLength() != rank:
        raise ConversionError(f"tensor {index}: unsupported sparsity (traversal order {order}, "
                              f"{sparsity.BlockMapLength()} block dimensions)")
    pos = np.zeros(1, np.int64)                 # position of each stored path in the level
    coords = np.zeros((1, 0), np.int64)         # its coordinates so far, in traversal order
    for level in range(rank):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == DimensionType.DENSE:
            n = int(meta.DenseSize())
            if n != shape[order[level]]:
                raise ConversionError(f"tensor {index}: dense size {n} at level {level}, "
                                      f"shape {shape}")
            pos = (pos[:, None] * n + np.arange(n)).reshape(-1)
            coords = np.concatenate([np.repeat(coords, n, axis=0),
                                     np.tile(np.arange(n), len(coords))[:, None]], axis=1)
        elif meta.Format() == DimensionType.SPARSE_CSR:
            seg = _sparse_index_vector(meta.ArraySegmentsType(), meta.ArraySegments(),
                                       "segments", index)
            idx = _sparse_index_vector(meta.ArrayIndicesType(), meta.ArrayIndices(),
                                       "indices", index)
            # Path p's children are the stored entries seg[p] .. seg[p+1]-1 of this level.
            starts, counts = seg[pos], seg[pos + 1] - seg[pos]
            parent = np.repeat(np.arange(len(pos)), counts)
            offset = np.arange(len(parent)) - np.repeat(np.cumsum(counts) - counts, counts)
            pos = starts[parent] + offset
            coords = np.concatenate([coords[parent], idx[pos][:, None]], axis=1)
        else:
            raise ConversionError(f"tensor {index}: unknown dimension format {meta.Format()}")
    if len(pos) != values.size or (len(pos) and not np.array_equal(pos, np.arange(values.size))):
        raise ConversionError(f"tensor {index}: sparse structure addresses {len(pos)} values, "
                              f"buffer holds {values.size}")
    dense = np.zeros(shape, values.dtype)
    nd_index = [None] * rank
    for level, dim in enumerate(order):
        nd_index[dim] = coords[:, level]
    dense[tuple(nd_index)] = values
    return dense


def read_options(op: TflOp, cls, expected_type: int, required: bool = True):
    """Decode the builtin options table of `op` as `cls` (None if absent and not required)."""
    if op.options is None:
        if required:
            raise ConversionError(f"operator #{op.index} {op.name} has no builtin options")
        return None
    if op.options_type != expected_type:
        raise ConversionError(f"operator #{op.index} {op.name}: options type {op.options_type}, "
                              f"expected {expected_type}")
    opts = cls()
    opts.Init(op.options.Bytes, op.options.Pos)
    return opts


# ---------------------------------------------------------------------------
# Layout helpers
# ---------------------------------------------------------------------------

NHWC_TO_NCHW = [0, 3, 1, 2]   # numpy transpose / ONNX Transpose perm
NCHW_TO_NHWC = [0, 2, 3, 1]
NHWC_AXIS_IN_NCHW = [0, 2, 3, 1]   # NHWC axis a is NCHW axis NHWC_AXIS_IN_NCHW[a]


def tf_same_pads(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow SAME padding (begin, end): output = ceil(in/stride), odd extra pad at the end."""
    out = -(-in_size // stride)
    effective_k = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective_k - in_size, 0)
    return total // 2, total - total // 2


def onnx_pads(padding: int, in_hw, k_hw, strides, dilations=(1, 1)) -> list[int]:
    """ONNX `pads` [top, left, bottom, right] for a TFLite Padding value."""
    if padding == Padding.VALID:
        return [0, 0, 0, 0]
    if padding != Padding.SAME:
        raise ConversionError(f"unknown padding type {padding}")
    (t, b), (l, r) = (tf_same_pads(in_hw[i], k_hw[i], strides[i], dilations[i]) for i in (0, 1))
    return [t, l, b, r]


# ---------------------------------------------------------------------------
# The converter
# ---------------------------------------------------------------------------

class Converter:
    """Builds an ONNX graph from a TflGraph, one operator at a time.

    Invariant: a non-constant TFLite tensor of rank 4 (NHWC) is represented in
    ONNX by a value of the same data in NCHW order; other ranks keep their
    layout.  Constants stay numpy arrays in TFLite layout until an operator
    needs them, and are then written as initializers in the layout it wants.
    """

    def __init__(self, graph: TflGraph, io_names: dict[int, str] | None = None):
        self.g = graph
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.consts: dict[int, np.ndarray] = {
            t.index: t.data for t in graph.tensors if t.data is not None}
        self.names: dict[int, str] = {}          # TFLite tensor index -> ONNX value name
        self._used: set[str] = set()
        for idx, name in (io_names or {}).items():
            self.names[idx] = self._unique(name)

    # -- names ---------------------------------------------------------------
    def _unique(self, hint: str) -> str:
        name, n = hint, 1
        while name in self._used:
            n += 1
            name = f"{hint}__{n}"
        self._used.add(name)
        return name

    def value(self, idx: int) -> str:
        """ONNX name of TFLite tensor `idx` (assigned on first use)."""
        if idx not in self.names:
            self.names[idx] = self._unique(self.g.tensors[idx].name or f"t{idx}")
        return self.names[idx]

    def tmp(self, hint: str) -> str:
        return self._unique(hint)

    # -- tensors ------------------------------------------------------------
    def shape(self, idx: int) -> tuple[int, ...]:
        return self.g.tensors[idx].shape

    def is_const(self, idx: int) -> bool:
        return idx in self.consts

    def const(self, idx: int, what: str, op: TflOp) -> np.ndarray:
        if idx < 0 or idx not in self.consts:
            raise ConversionError(f"operator #{op.index} {op.name}: {what} must be a constant tensor")
        return self.consts[idx]

    def init(self, hint: str, array: np.ndarray) -> str:
        name = self._unique(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def act(self, idx: int, op: TflOp) -> str:
        """ONNX value for a non-constant input (activation) tensor."""
        if self.is_const(idx):
            raise ConversionError(f"operator #{op.index} {op.name}: constant data input "
                                  f"{self.g.tensors[idx].name!r} is not supported here")
        return self.value(idx)

    def operand(self, idx: int, out_rank: int, op: TflOp) -> str:
        """An input of a broadcasting elementwise op whose output has rank `out_rank`.

        Broadcasting follows NumPy rules on the TFLite (NHWC) shapes; when the
        output is rank 4 the operand is brought to rank 4 and then to NCHW.
        """
        rank = len(self.shape(idx))
        if self.is_const(idx):
            c = self.consts[idx].astype(np.float32, copy=False)
            if out_rank == 4:
                c = c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(NHWC_TO_NCHW)
            return self.init(f"{self.g.tensors[idx].name}_c", c)
        x = self.value(idx)
        if out_rank == 4 and rank < 4:
            shape4 = (1,) * (4 - rank) + self.shape(idx)
            r = self.tmp(f"{x}_r4")
            self.node("Reshape", [x, self.init(f"{x}_shape4", np.array(shape4, np.int64))], [r])
            x = self.tmp(f"{x}_nchw")
            self.node("Transpose", [r], [x], perm=NHWC_TO_NCHW)
        return x

    # -- nodes --------------------------------------------------------------
    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, outputs,
                                           name=self._unique(f"{op_type}_{outputs[0]}"), **attrs))

    def emit(self, op: TflOp, op_type: str, inputs: list[str], activation: int = 0, **attrs) -> None:
        """Emit the main node of `op` writing its (single) output, then a fused activation."""
        out = self.value(op.outputs[0])
        if activation == ActivationFunctionType.NONE:
            self.node(op_type, inputs, [out], **attrs)
            return
        pre = self.tmp(f"{out}_preact")
        self.node(op_type, inputs, [pre], **attrs)
        self.activation(pre, out, activation, op)

    def activation(self, x: str, out: str, act: int, op: TflOp) -> None:
        if act == ActivationFunctionType.RELU:
            self.node("Relu", [x], [out])
        elif act in (ActivationFunctionType.RELU6, ActivationFunctionType.RELU_N1_TO_1):
            lo, hi = (0.0, 6.0) if act == ActivationFunctionType.RELU6 else (-1.0, 1.0)
            self.node("Clip", [x, self.init(f"{out}_min", np.array(lo, np.float32)),
                               self.init(f"{out}_max", np.array(hi, np.float32))], [out])
        else:
            raise ConversionError(f"operator #{op.index} {op.name}: fused activation {act} not supported")

    # -- driver -------------------------------------------------------------
    def run(self) -> None:
        for op in self.g.ops:
            translate_op(self, op)


OpHandler = Callable[[Converter, TflOp], None]
OP_HANDLERS: dict[str, OpHandler] = {}


def handles(*names: str):
    def register(fn: OpHandler) -> OpHandler:
        for n in names:
            OP_HANDLERS[n] = fn
        return fn
    return register


def translate_op(conv: Converter, op: TflOp) -> None:
    """Translate one TFLite operator; raise UnsupportedOpError for unknown operators."""
    handler = OP_HANDLERS.get(op.name)
    if handler is None:
        raise UnsupportedOpError(
            f"TFLite operator #{op.index} {op.name} (code {op.code}) is not supported by "
            f"{CONVERTER}; supported: {', '.join(sorted(OP_HANDLERS))}")
    handler(conv, op)


# ---------------------------------------------------------------------------
# Operator translations
# ---------------------------------------------------------------------------

@handles("DEQUANTIZE")
def _dequantize(c: Converter, op: TflOp) -> None:
    src, dst = op.inputs[0], op.outputs[0]
    t = c.g.tensors[src]
    if c.is_const(src):
        # Constant weights: fold now, so the ONNX graph carries plain fp32 initializers.
        data = c.consts[src]
        if data.dtype == np.float16:
            c.consts[dst] = data.astype(np.float32)
        elif t.scale is not None and data.dtype in (np.int8, np.uint8, np.int16):
            bshape = [1] * data.ndim
            if t.scale.size > 1:
                bshape[t.quantized_dim] = -1
            c.consts[dst] = ((data.astype(np.float32) - t.zero_point.reshape(bshape))
                             * t.scale.reshape(bshape)).astype(np.float32)
        else:
            raise ConversionError(f"operator #{op.index} DEQUANTIZE: cannot fold {data.dtype} constant")
    elif t.dtype == np.float16:
        c.node("Cast", [c.value(src)], [c.value(dst)], to=TensorProto.FLOAT)
    else:
        raise ConversionError(f"operator #{op.index} DEQUANTIZE of non-constant {t.dtype.__name__} "
                              "tensors is not supported")


@handles("CONV_2D")
def _conv_2d(c: Converter, op: TflOp) -> None:
    from tflite.Conv2DOptions import Conv2DOptions
    o = read_options(op, Conv2DOptions, BuiltinOptions.Conv2DOptions)
    x, w_idx = op.inputs[0], op.inputs[1]
    w = c.const(w_idx, "filter", op).astype(np.float32)      # [O, KH, KW, I/groups]
    _, h, wd, cin = c.shape(x)
    if cin % w.shape[3]:
        raise ConversionError(f"operator #{op.index} CONV_2D: {cin} input channels vs filter {w.shape}")
    _emit_conv(c, op, o, w.transpose(0, 3, 1, 2), (h, wd), group=cin // w.shape[3])


def _emit_conv(c: Converter, op: TflOp, o, w_oihw: np.ndarray, hw, group: int) -> None:
    """An ONNX Conv for a TFLite (depthwise) convolution: input, OIHW weights, optional bias,
    strides, dilations and TFLite's padding mode from the options `o`."""
    x, w_idx = op.inputs[0], op.inputs[1]
    strides, dil = [o.StrideH(), o.StrideW()], [o.DilationHFactor(), o.DilationWFactor()]
    kernel = list(w_oihw.shape[2:4])
    inputs = [c.act(x, op), c.init(f"{c.g.tensors[w_idx].name}_oihw", w_oihw)]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(c.init(c.g.tensors[op.inputs[2]].name,
                             c.const(op.inputs[2], "bias", op).astype(np.float32)))
    c.emit(op, "Conv", inputs, o.FusedActivationFunction(),
           kernel_shape=kernel, strides=strides, dilations=dil,
           pads=onnx_pads(o.Padding(), hw, kernel, strides, dil), group=group)


@handles("DEPTHWISE_CONV_2D")
def _depthwise_conv_2d(c: Converter, op: TflOp) -> None:
    from tflite.DepthwiseConv2DOptions import DepthwiseConv2DOptions
    o = read_options(op, DepthwiseConv2DOptions, BuiltinOptions.DepthwiseConv2DOptions)
    x, w_idx = op.inputs[0], op.inputs[1]
    w = c.const(w_idx, "filter", op).astype(np.float32)      # [1, KH, KW, C*M]
    _, h, wd, cin = c.shape(x)
    if w.shape[0] != 1 or w.shape[3] % cin:
        raise ConversionError(f"operator #{op.index} DEPTHWISE_CONV_2D: filter {w.shape} "
                              f"vs {cin} input channels")
    # Output channel i*M + m reads input channel i: exactly ONNX grouped conv with group = C.
    _emit_conv(c, op, o, w.transpose(3, 0, 1, 2), (h, wd), group=cin)


@handles("CUSTOM:Convolution2DTransposeBias")
def _conv_transpose_bias(c: Converter, op: TflOp) -> None:
    """MediaPipe's transposed convolution with bias (mediapipe/util/tflite/operations/
    transpose_conv_bias.cc).  Inputs: data [N,H,W,Cin], weights [Cout,KH,KW,Cin] (OHWI),
    bias [Cout].  The custom options are the raw bytes of TfLiteTransposeConvParams'
    first three fields: {int32 padding; int32 stride_width; int32 stride_height}, where
    padding is the C enum TfLitePadding (0 unknown, 1 SAME, 2 VALID) -- not the schema's
    Padding enum (SAME=0, VALID=1).
    """
    if len(op.custom_options) != 12:
        raise ConversionError(f"operator #{op.index} {op.name}: expected 12 bytes of custom "
                              f"options, got {len(op.custom_options)}")
    padding, stride_w, stride_h = struct.unpack("<3i", op.custom_options)
    if padding not in (1, 2) or stride_w < 1 or stride_h < 1:
        raise ConversionError(f"operator #{op.index} {op.name}: bad options padding={padding} "
                              f"stride_w={stride_w} stride_h={stride_h}")
    x = op.inputs[0]
    w = c.const(op.inputs[1], "weights", op).astype(np.float32)   # [Cout, KH, KW, Cin]
    bias = c.const(op.inputs[2], "bias", op).astype(np.float32)
    _, h, wd, cin = c.shape(x)
    kh, kw = w.shape[1:3]
    if w.shape[3] != cin or bias.shape != (w.shape[0],):
        raise ConversionError(f"operator #{op.index} {op.name}: weights {w.shape} / bias "
                              f"{bias.shape} do not fit {cin} input channels")

    # The kernel's rule (not TF's conv2d_transpose rule): with SAME, the full
    # output (in-1)*s + k is cropped by max(0, k - (in-1) % s - 1), the smaller
    # half at the start.  For the selfie models (k=2, s=2) the crop is 0 and
    # output = 2*input.
    def crop(size: int, k: int, s: int) -> tuple[int, int]:
        total = max(0, k - (size - 1) % s - 1) if padding == 1 else 0
        return total // 2, total - total // 2

    (pt, pb), (pl, pr) = crop(h, kh, stride_h), crop(wd, kw, stride_w)
    out_h, out_w = stride_h * (h - 1) + kh - pt - pb, stride_w * (wd - 1) + kw - pl - pr
    expect = c.shape(op.outputs[0])
    if tuple(expect[1:3]) != (out_h, out_w):
        raise ConversionError(f"operator #{op.index} {op.name}: computed output {out_h}x{out_w}, "
                              f"model says {expect}")
    c.emit(op, "ConvTranspose",
           [c.act(x, op), c.init(f"{c.g.tensors[op.inputs[1]].name}_iohw", w.transpose(3, 0, 1, 2)),
            c.init(c.g.tensors[op.inputs[2]].name, bias)],
           kernel_shape=[kh, kw], strides=[stride_h, stride_w], pads=[pt, pl, pb, pr])


def _pool(c: Converter, op: TflOp, onnx_op: str) -> None:
    from tflite.Pool2DOptions import Pool2DOptions
    o = read_options(op, Pool2DOptions, BuiltinOptions.Pool2DOptions)
    x = op.inputs[0]
    _, h, w, _ = c.shape(x)
    k, strides = [o.FilterHeight(), o.FilterWidth()], [o.StrideH(), o.StrideW()]
    pads = onnx_pads(o.Padding(), (h, w), k, strides)
    if k == [h, w] and not any(pads):
        # The window covers the whole map: a global pool (same numbers, simpler node).
        c.emit(op, "Global" + onnx_op, [c.act(x, op)], o.FusedActivationFunction())
        return
    attrs = dict(kernel_shape=k, strides=strides, pads=pads)
    if onnx_op == "AveragePool":
        attrs["count_include_pad"] = 0   # TF SAME averages over the valid pixels only
    c.emit(op, onnx_op, [c.act(x, op)], o.FusedActivationFunction(), **attrs)


@handles("AVERAGE_POOL_2D")
def _average_pool_2d(c: Converter, op: TflOp) -> None:
    _pool(c, op, "AveragePool")


@handles("MAX_POOL_2D")
def _max_pool_2d(c: Converter, op: TflOp) -> None:
    _pool(c, op, "MaxPool")    # ONNX MaxPool ignores padded cells, like TF


@handles("MEAN")
def _mean(c: Converter, op: TflOp) -> None:
    from tflite.ReducerOptions import ReducerOptions
    o = read_options(op, ReducerOptions, BuiltinOptions.ReducerOptions, required=False)
    keep = bool(o.KeepDims()) if o is not None else False
    x = op.inputs[0]
    rank = len(c.shape(x))
    axes = sorted({int(a) % rank for a in c.const(op.inputs[1], "axes", op).reshape(-1)})
    out = c.value(op.outputs[0])
    if rank != 4:
        c.node("ReduceMean", [c.act(x, op)], [out], axes=axes, keepdims=int(keep))
        return
    nchw_axes = sorted(NHWC_AXIS_IN_NCHW[a] for a in axes)
    if keep and axes == [1, 2]:   # spatial mean: the squeeze-excite pattern
        c.node("GlobalAveragePool", [c.act(x, op)], [out])
        return
    if keep:   # result is rank 4 again: stays NCHW
        c.node("ReduceMean", [c.act(x, op)], [out], axes=nchw_axes, keepdims=1)
        return
    # Rank drops below 4, so the result must be in TFLite order: reduce in NCHW with
    # keepdims, go back to NHWC, then squeeze the reduced NHWC axes.
    red, nhwc = c.tmp(f"{out}_keep"), c.tmp(f"{out}_nhwc")
    c.node("ReduceMean", [c.act(x, op)], [red], axes=nchw_axes, keepdims=1)
    c.node("Transpose", [red], [nhwc], perm=NCHW_TO_NHWC)
    c.node("Squeeze", [nhwc, c.init(f"{out}_axes", np.array(axes, np.int64))], [out])


@handles("ADD", "MUL")
def _binary(c: Converter, op: TflOp) -> None:
    if op.name == "ADD":
        from tflite.AddOptions import AddOptions as Opts
        otype, onnx_op = BuiltinOptions.AddOptions, "Add"
    else:
        from tflite.MulOptions import MulOptions as Opts
        otype, onnx_op = BuiltinOptions.MulOptions, "Mul"
    o = read_options(op, Opts, otype, required=False)
    act = o.FusedActivationFunction() if o is not None else ActivationFunctionType.NONE
    if all(c.is_const(i) for i in op.inputs):
        raise ConversionError(f"operator #{op.index} {op.name}: both inputs constant")
    out_rank = len(c.shape(op.outputs[0]))
    c.emit(op, onnx_op, [c.operand(i, out_rank, op) for i in op.inputs[:2]], act)


def _unary(onnx_op: str, **attrs) -> OpHandler:
    def handler(c: Converter, op: TflOp) -> None:
        c.node(onnx_op, [c.act(op.inputs[0], op)], [c.value(op.outputs[0])], **attrs)
    return handler


# HardSwish(x) = x * max(0, min(1, x/6 + 1/2)) = x * relu6(x + 3) / 6, as TFLite's HARD_SWISH.
OP_HANDLERS["HARD_SWISH"] = _unary("HardSwish")
OP_HANDLERS["RELU"] = _unary("Relu")
OP_HANDLERS["LOGISTIC"] = _unary("Sigmoid")


@handles("RESIZE_BILINEAR")
def _resize_bilinear(c: Converter, op: TflOp) -> None:
    from tflite.ResizeBilinearOptions import ResizeBilinearOptions
    o = read_options(op, ResizeBilinearOptions, BuiltinOptions.ResizeBilinearOptions, required=False)
    align = bool(o and o.AlignCorners())
    half = bool(o and o.HalfPixelCenters())
    if align and half:
        raise ConversionError(f"operator #{op.index} RESIZE_BILINEAR: align_corners and "
                              "half_pixel_centers are both set")
    # TF:   align_corners    -> in = out * (in_size-1)/(out_size-1)  = ONNX "align_corners"
    #       half_pixel       -> in = (out+0.5)*scale - 0.5, clamped  = ONNX "half_pixel"
    #       neither (legacy) -> in = out * scale                    = ONNX "asymmetric"
    mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
    x = op.inputs[0]
    n, _, _, ch = c.shape(x)
    new_h, new_w = (int(v) for v in c.const(op.inputs[1], "size", op).reshape(-1))
    sizes = c.init(f"{c.value(op.outputs[0])}_sizes", np.array([n, ch, new_h, new_w], np.int64))
    c.node("Resize", [c.act(x, op), "", "", sizes], [c.value(op.outputs[0])],
           mode="linear", coordinate_transformation_mode=mode)


@handles("PAD")
def _pad(c: Converter, op: TflOp) -> None:
    x = op.inputs[0]
    p = c.const(op.inputs[1], "paddings", op).astype(np.int64).reshape(-1, 2)   # [rank, 2]
    if len(c.shape(x)) == 4:
        p = p[NHWC_TO_NCHW]
    pads = c.init(f"{c.value(op.outputs[0])}_pads", np.concatenate([p[:, 0], p[:, 1]]))
    c.node("Pad", [c.act(x, op), pads], [c.value(op.outputs[0])], mode="constant")


@handles("RESHAPE")
def _reshape(c: Converter, op: TflOp) -> None:
    # The output tensor's static shape is authoritative (the optional shape input or
    # new_shape option may contain -1).  Reshape works on the TFLite (NHWC) order, so
    # rank-4 tensors are transposed around it.
    x, y = op.inputs[0], op.outputs[0]
    out_shape = c.shape(y)
    if any(d < 0 for d in out_shape):
        raise ConversionError(f"operator #{op.index} RESHAPE: dynamic output shape {out_shape}")
    src = c.act(x, op)
    out = c.value(y)
    if len(c.shape(x)) == 4:
        nhwc = c.tmp(f"{src}_nhwc")
        c.node("Transpose", [src], [nhwc], perm=NCHW_TO_NHWC)
        src = nhwc
    shape = c.init(f"{out}_shape", np.array(out_shape, np.int64))
    if len(out_shape) == 4:
        r = c.tmp(f"{out}_nhwc")
        c.node("Reshape", [src, shape], [r])
        c.node("Transpose", [r], [out], perm=NHWC_TO_NCHW)
    else:
        c.node("Reshape", [src, shape], [out])


@handles("DENSIFY")
def _densify_op(c: Converter, op: TflOp) -> None:
    # TFLite expands a sparse constant at run time; TflGraph has already expanded it, so the
    # output is the same constant (folded, like DEQUANTIZE of a constant).
    c.consts[op.outputs[0]] = c.const(op.inputs[0], "input", op)


@handles("DEPTH_TO_SPACE")
def _depth_to_space(c: Converter, op: TflOp) -> None:
    from tflite.DepthToSpaceOptions import DepthToSpaceOptions
    o = read_options(op, DepthToSpaceOptions, BuiltinOptions.DepthToSpaceOptions)
    # TF's depth_to_space (NHWC): output (h*b + i, w*b + j, c) = input (h, w, (i*b + j)*C + c),
    # which is ONNX DepthToSpace in "DCR" mode on the NCHW layout.
    c.node("DepthToSpace", [c.act(op.inputs[0], op)], [c.value(op.outputs[0])],
           blocksize=o.BlockSize(), mode="DCR")


@handles("CONCATENATION")
def _concatenation(c: Converter, op: TflOp) -> None:
    from tflite.ConcatenationOptions import ConcatenationOptions
    o = read_options(op, ConcatenationOptions, BuiltinOptions.ConcatenationOptions)
    if o.FusedActivationFunction() != ActivationFunctionType.NONE:
        # TFLite's own kernel refuses it (and the XNNPACK delegate ignores it): no meaning to copy.
        raise ConversionError(f"operator #{op.index} CONCATENATION: fused activation "
                              f"{o.FusedActivationFunction()} not supported")
    rank = len(c.shape(op.outputs[0]))
    axis = o.Axis() % rank
    if rank == 4:
        axis = NHWC_AXIS_IN_NCHW[axis]
    c.node("Concat", [c.operand(i, rank, op) for i in op.inputs], [c.value(op.outputs[0])],
           axis=axis)


# ---------------------------------------------------------------------------
# Whole-model conversion
# ---------------------------------------------------------------------------

def _onnx_shape(shape: tuple[int, ...]) -> list[int]:
    return [shape[i] for i in NHWC_TO_NCHW] if len(shape) == 4 else list(shape)


def convert_tflite(buf: bytes, input_names: list[str] | None = None,
                   output_names: list[str] | None = None, graph_name: str = "model",
                   doc_string: str = "", metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """Translate a float TFLite model to an ONNX ModelProto (opset 17, NCHW).

    `input_names` / `output_names` rename the graph inputs / outputs (in TFLite
    order); rank-4 inputs and outputs are NCHW.  The result is checked with
    onnx.checker and its inferred shapes are compared with the TFLite ones.
    """
    graph = TflGraph(buf)
    io = {}
    for tidx, names in ((graph.inputs, input_names), (graph.outputs, output_names)):
        for i, n in zip(tidx, names or []):
            io[i] = n
    conv = Converter(graph, io)
    for i in graph.inputs:
        if graph.tensors[i].dtype != np.float32:
            raise ConversionError(f"graph input {graph.tensors[i].name!r} is not float32")
    conv.run()

    def vinfo(idx: int) -> onnx.ValueInfoProto:
        t = graph.tensors[idx]
        return helper.make_tensor_value_info(
            conv.value(idx), helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)), _onnx_shape(t.shape))

    g = helper.make_graph(conv.nodes, graph_name, [vinfo(i) for i in graph.inputs],
                          [vinfo(i) for i in graph.outputs], conv.initializers, doc_string=doc_string)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=CONVERTER, producer_version=CONVERTER_VERSION,
                              doc_string=doc_string)
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata or {})
    onnx.checker.check_model(model, full_check=True)
    _check_shapes(model, conv, graph)
    return model


def _check_shapes(model: onnx.ModelProto, conv: Converter, graph: TflGraph) -> None:
    """Every TFLite activation must get, in ONNX, the shape TFLite declares (NCHW for rank 4).

    This catches padding / layout mistakes at conversion time.
    """
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for idx, name in conv.names.items():
        if name in shapes and shapes[name] != _onnx_shape(graph.tensors[idx].shape):
            raise ConversionError(f"tensor {graph.tensors[idx].name!r}: ONNX shape {shapes[name]}, "
                                  f"TFLite {list(graph.tensors[idx].shape)} (NCHW "
                                  f"{_onnx_shape(graph.tensors[idx].shape)})")


def model_metadata(buf: bytes, graph: "TflGraph", source: str, inputs: str,
                   outputs: str) -> dict[str, str]:
    """The ONNX metadata of a converted MediaPipe model: source, licence, converter, I/O."""
    return {
        "source": source,
        "source_sha256": sha256_bytes(buf),
        "source_description": graph.description,
        "license": LICENSE,
        "copyright": COPYRIGHT,
        "converter": f"{CONVERTER} v{CONVERTER_VERSION} (tflite -> onnx opset {OPSET})",
        "input": inputs,
        "output": outputs,
    }


def convert_selfie_model(tflite_path: Path, name: str) -> onnx.ModelProto:
    """Convert one MediaPipe selfie model with the project's interface (image -> mask)."""
    buf = tflite_path.read_bytes()
    graph = TflGraph(buf)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ConversionError(f"{tflite_path}: expected 1 input and 1 output")
    in_shape = graph.tensors[graph.inputs[0]].shape
    out_shape = graph.tensors[graph.outputs[0]].shape
    if len(in_shape) != 4 or in_shape[0] != 1 or in_shape[3] != 3 or out_shape != in_shape[:3] + (1,):
        raise ConversionError(f"{tflite_path}: unexpected I/O shapes {in_shape} -> {out_shape}")
    if graph.ops[-1].name != "LOGISTIC":
        raise ConversionError(f"{tflite_path}: last operator is {graph.ops[-1].name}, expected the "
                              "LOGISTIC that makes the output a probability")
    h, w = in_shape[1:3]
    source = f"PyPI wheel mediapipe=={MEDIAPIPE_VERSION}, {WHEEL_MODEL_DIR}/{name}.tflite"
    doc = (f"MediaPipe selfie segmentation ({name}, {h}x{w}) converted from TFLite to ONNX by "
           f"{CONVERTER}. Source: {source} (sha256 {sha256_bytes(buf)}). Input 'image': float32 "
           f"[1,3,{h},{w}] RGB in 0..1 (NCHW). Output 'mask': float32 [1,1,{h},{w}] person "
           f"probability in 0..1. {COPYRIGHT} Licensed under the Apache License, Version 2.0.")
    meta = model_metadata(buf, graph, source, f"image: float32 [1,3,{h},{w}] RGB 0..1 NCHW",
                          f"mask: float32 [1,1,{h},{w}] person probability 0..1")
    return convert_tflite(buf, ["image"], ["mask"], graph_name=name, doc_string=doc, metadata=meta)


def convert_pose_model(tflite_path: Path, name: str) -> onnx.ModelProto:
    """Convert MediaPipe Pose's landmark network with the project's interface: input `image`
    [1,3,256,256] RGB 0..1 (the region of interest, NCHW); outputs `landmarks` [1,195] (39 points
    × x, y, z, visibility, presence, x and y in input pixels), `presence` [1,1] (pose present,
    0..1) and `mask` [1,1,256,256] (person probability: the TFLite segmentation logits through
    a Sigmoid added here). The heatmap and world-landmark outputs are dropped, with the nodes
    that only feed them."""
    buf = tflite_path.read_bytes()
    graph = TflGraph(buf)
    names = ["landmarks", "presence", "segmentation_logits", "heatmap", "world_landmarks"]
    if len(graph.inputs) != 1 or len(graph.outputs) != len(names):
        raise ConversionError(f"{tflite_path}: expected 1 input and {len(names)} outputs")
    shapes = [graph.tensors[i].shape for i in graph.outputs]
    if graph.tensors[graph.inputs[0]].shape != (1, 256, 256, 3) or shapes[:3] != [
            (1, 195), (1, 1), (1, 256, 256, 1)]:
        raise ConversionError(f"{tflite_path}: unexpected I/O shapes {shapes}")
    source = f"PyPI wheel mediapipe=={MEDIAPIPE_VERSION}, {POSE_MODELS[name][0]}/{name}.tflite"
    doc = (f"MediaPipe Pose landmark network ({name}, BlazePose GHUM 3D) converted from TFLite to "
           f"ONNX by {CONVERTER}. Source: {source} (sha256 {sha256_bytes(buf)}). Input 'image': "
           "float32 [1,3,256,256] RGB in 0..1 (NCHW), the region of interest. Outputs "
           "'landmarks' [1,195], 'presence' [1,1], 'mask' [1,1,256,256] person probability. "
           f"{COPYRIGHT} Licensed under the Apache License, Version 2.0.")
    meta = model_metadata(
        buf, graph, source, "image: float32 [1,3,256,256] RGB 0..1 NCHW (the region of interest)",
        "landmarks [1,195], presence [1,1], mask [1,1,256,256] person probability")
    model = convert_tflite(buf, ["image"], names, graph_name=name, doc_string=doc, metadata=meta)
    g = model.graph
    g.node.append(helper.make_node("Sigmoid", ["segmentation_logits"], ["mask"], name="mask_sigmoid"))
    keep_outputs = [o for o in g.output if o.name in ("landmarks", "presence")]
    keep_outputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 256, 256]))
    del g.output[:]
    g.output.extend(keep_outputs)
    # Drop the nodes (and weights) that no kept output depends on.
    needed = {o.name for o in g.output}
    kept = []
    for node in reversed(list(g.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    del g.node[:]
    g.node.extend(reversed(kept))
    inits = [t for t in g.initializer if t.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.value_info[:]
    onnx.checker.check_model(model, full_check=True)
    return model


def convert_detector_model(tflite_path: Path, name: str) -> onnx.ModelProto:
    """Convert MediaPipe Pose's person detector with the project's interface: input `image`
    [1,3,224,224] RGB in -1..1 (the letterboxed frame, NCHW); outputs `boxes` [1,2254,12] (the
    raw regressors: per anchor x, y, w, h of the box, then x, y of 4 keypoints, in 224-pixel
    units relative to the anchor) and `scores` [1,2254,1] (raw logits, no sigmoid). Nothing is
    added or removed: decoding (anchors, sigmoid, NMS, letterbox removal) is the caller's, see
    models/pose_detection.md."""
    buf = tflite_path.read_bytes()
    graph = TflGraph(buf)
    if len(graph.inputs) != 1 or len(graph.outputs) != 2:
        raise ConversionError(f"{tflite_path}: expected 1 input and 2 outputs")
    if graph.tensors[graph.inputs[0]].shape != (1, 224, 224, 3):
        raise ConversionError(f"{tflite_path}: unexpected input shape "
                              f"{graph.tensors[graph.inputs[0]].shape}")
    by_shape = {graph.tensors[i].shape: k for k, i in enumerate(graph.outputs)}
    if set(by_shape) != {(1, 2254, 12), (1, 2254, 1)}:
        raise ConversionError(f"{tflite_path}: unexpected output shapes {list(by_shape)}")
    out_names = ["", ""]
    out_names[by_shape[(1, 2254, 12)]] = "boxes"
    out_names[by_shape[(1, 2254, 1)]] = "scores"
    source = f"PyPI wheel mediapipe=={MEDIAPIPE_VERSION}, {DETECTOR_MODELS[name][0]}/{name}.tflite"
    doc = (f"MediaPipe Pose person detector ({name}, BlazePose detector) converted from TFLite to "
           f"ONNX by {CONVERTER}. Source: {source} (sha256 {sha256_bytes(buf)}). Input 'image': "
           "float32 [1,3,224,224] RGB in -1..1 (NCHW), the letterboxed frame. Outputs 'boxes' "
           "[1,2254,12] raw box and keypoint regressors, 'scores' [1,2254,1] raw logits (SSD "
           f"anchors, decoding as MediaPipe's pose_detection_cpu graph). {COPYRIGHT} Licensed "
           "under the Apache License, Version 2.0.")
    meta = model_metadata(
        buf, graph, source, "image: float32 [1,3,224,224] RGB -1..1 NCHW (letterboxed frame)",
        "boxes [1,2254,12] raw regressors (x, y, w, h, 4 keypoints x, y); scores [1,2254,1] "
        "raw logits")
    model = convert_tflite(buf, ["image"], out_names, graph_name=name, doc_string=doc,
                           metadata=meta)
    g = model.graph
    outputs = sorted(g.output, key=lambda o: ["boxes", "scores"].index(o.name))
    del g.output[:]
    g.output.extend(outputs)
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------------------
# The person detector's decoding, in numpy: the reference for src/pose.rs and its fixture
# ---------------------------------------------------------------------------
# Options of MediaPipe 0.10.21's mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt
# (SsdAnchorsCalculator, TensorsToDetectionsCalculator, NonMaxSuppressionCalculator) and
# mediapipe/modules/pose_landmark/pose_detection_to_roi.pbtxt (AlignmentPointsRectsCalculator,
# RectTransformationCalculator).  Proto defaults that matter are spelled out.
DETECTOR_INPUT_SIZE = 224
DETECTOR_ANCHORS = {
    "num_layers": 5, "min_scale": 0.1484375, "max_scale": 0.75,
    "input_size_height": 224, "input_size_width": 224,
    "anchor_offset_x": 0.5, "anchor_offset_y": 0.5,
    "strides": [8, 16, 32, 32, 32], "aspect_ratios": [1.0],
    "fixed_anchor_size": True,
    "interpolated_scale_aspect_ratio": 1.0,     # proto default: one extra anchor per layer
    "reduce_boxes_in_lowest_layer": False,      # proto default
}
DETECTOR_DECODE = {
    "num_boxes": 2254, "num_coords": 12, "box_coord_offset": 0, "keypoint_coord_offset": 4,
    "num_keypoints": 4, "num_values_per_keypoint": 2,
    "reverse_output_order": True,               # box is x_center, y_center, w, h; keypoints x, y
    "x_scale": 224.0, "y_scale": 224.0, "w_scale": 224.0, "h_scale": 224.0,
    "apply_exponential_on_box_size": False,     # proto default
    "sigmoid_score": True, "score_clipping_thresh": 100.0, "min_score_thresh": 0.5,
}
DETECTOR_NMS = {"min_suppression_threshold": 0.3, "overlap_type": "INTERSECTION_OVER_UNION",
                "algorithm": "WEIGHTED", "max_num_detections": -1, "min_score_threshold": -1.0}
DETECTION_TO_ROI = {"rotation_vector_start_keypoint_index": 0,
                    "rotation_vector_end_keypoint_index": 1,
                    "rotation_vector_target_angle_degrees": 90.0,
                    "scale_x": 1.25, "scale_y": 1.25, "square_long": True}


def ssd_anchors(o: dict = DETECTOR_ANCHORS) -> np.ndarray:
    """[2254, 4] anchors (x_center, y_center, w, h), normalised to the 224x224 input, in the
    order of MediaPipe's SsdAnchorsCalculator (layers with equal strides share one grid; per
    cell the anchors of those layers in turn)."""
    if o["reduce_boxes_in_lowest_layer"]:
        raise NotImplementedError("reduce_boxes_in_lowest_layer")
    strides, n = o["strides"], len(o["strides"])

    def scale(i: int) -> float:
        return (o["min_scale"] + o["max_scale"]) / 2 if n == 1 else \
            o["min_scale"] + (o["max_scale"] - o["min_scale"]) * i / (n - 1)

    anchors, layer = [], 0
    while layer < o["num_layers"]:
        widths, heights = [], []
        last = layer
        while last < n and strides[last] == strides[layer]:
            s = scale(last)
            for ar in o["aspect_ratios"]:
                widths.append(s * np.sqrt(ar))
                heights.append(s / np.sqrt(ar))
            ar = o["interpolated_scale_aspect_ratio"]
            if ar > 0:
                s_next = 1.0 if last == n - 1 else scale(last + 1)
                widths.append(np.sqrt(s * s_next) * np.sqrt(ar))
                heights.append(np.sqrt(s * s_next) / np.sqrt(ar))
            last += 1
        fh = -(-o["input_size_height"] // strides[layer])
        fw = -(-o["input_size_width"] // strides[layer])
        for y in range(fh):
            for x in range(fw):
                for w, h in zip(widths, heights):
                    anchors.append(((x + o["anchor_offset_x"]) / fw,
                                    (y + o["anchor_offset_y"]) / fh,
                                    1.0 if o["fixed_anchor_size"] else w,
                                    1.0 if o["fixed_anchor_size"] else h))
        layer = last
    return np.array(anchors, np.float64)


def letterbox(rgb: np.ndarray, size: int = DETECTOR_INPUT_SIZE) -> tuple[np.ndarray, list[float]]:
    """The detector's input as MediaPipe's ImageToTensorCalculator makes it on the CPU
    (keep_aspect_ratio, BORDER_ZERO, float range -1..1, OpenCV warpPerspective, INTER_LINEAR):
    returns the [size, size, 3] float32 tensor and the letterbox padding [left, top, right,
    bottom] as fractions of the tensor.

    The frame (H x W, RGB8) is centred in a square of side L = max(W, H); tensor pixel (x, y)
    samples the frame at (x0 + x*L/size, y0 + y*L/size) with x0 = (W - L)/2, y0 = (H - L)/2
    (OpenCV maps the square's corners to the tensor's corners: no half-pixel shift), bilinearly
    with the coordinates rounded to 1/32 pixel, pixels outside the frame black, the result
    rounded to 8 bits and mapped to v*2/255 - 1."""
    h, w = rgb.shape[:2]
    roi_aspect = h / w                           # tensor aspect ratio is 1
    if 1.0 > roi_aspect:
        new_w, new_h, pad_x, pad_y = w, w, 0.0, (1.0 - roi_aspect) / 2
    else:
        new_w, new_h, pad_x, pad_y = h, h, (1.0 - 1.0 / roi_aspect) / 2, 0.0
    x0, y0 = w / 2 - new_w / 2, h / 2 - new_h / 2

    def taps(n_src: int, origin: float, step: float):
        q = np.rint((origin + np.arange(size) * step) * 32).astype(np.int64)   # 1/32 pixel
        i0, frac = q >> 5, q & 31
        # Index into the frame padded with one black pixel on each side (clipping any index
        # beyond the frame onto that black border).
        return np.clip(i0 + 1, 0, n_src + 1), np.clip(i0 + 2, 0, n_src + 1), 32 - frac, frac

    ya, yb, wya, wyb = taps(h, y0, new_h / size)
    xa, xb, wxa, wxb = taps(w, x0, new_w / size)
    src = np.zeros((h + 2, w + 2, 3), np.int64)
    src[1:-1, 1:-1] = rgb
    acc = ((src[ya][:, xa] * wxa[None, :, None] + src[ya][:, xb] * wxb[None, :, None])
           * wya[:, None, None]
           + (src[yb][:, xa] * wxa[None, :, None] + src[yb][:, xb] * wxb[None, :, None])
           * wyb[:, None, None])
    v = (acc + 512) >> 10                        # weights sum to 1024: round to 8 bits
    tensor = (v.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)).astype(np.float32)
    return tensor, [pad_x, pad_y, pad_x, pad_y]


def decode_boxes(boxes: np.ndarray, scores: np.ndarray, anchors: np.ndarray | None = None,
                 o: dict = DETECTOR_DECODE) -> list[dict]:
    """TensorsToDetectionsCalculator: raw `boxes` [1,2254,12] and `scores` [1,2254,1] to the
    detections whose sigmoid score is >= 0.5, in anchor order, coordinates normalised to the
    letterboxed 224x224 input.  Each: {anchor, score, xmin, ymin, width, height, keypoints
    [[x, y] x 4]}."""
    a = ssd_anchors() if anchors is None else anchors
    raw = np.asarray(boxes, np.float64).reshape(o["num_boxes"], o["num_coords"])
    logit = np.asarray(scores, np.float64).reshape(o["num_boxes"])
    ax, ay, aw, ah = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    b = o["box_coord_offset"]
    assert o["reverse_output_order"] and not o["apply_exponential_on_box_size"]
    xc = raw[:, b] / o["x_scale"] * aw + ax
    yc = raw[:, b + 1] / o["y_scale"] * ah + ay
    w = raw[:, b + 2] / o["w_scale"] * aw
    h = raw[:, b + 3] / o["h_scale"] * ah
    xmin, ymin, xmax, ymax = xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2
    k, nk = o["keypoint_coord_offset"], o["num_keypoints"]
    kx = raw[:, k:k + 2 * nk:2] / o["x_scale"] * aw[:, None] + ax[:, None]
    ky = raw[:, k + 1:k + 2 * nk:2] / o["y_scale"] * ah[:, None] + ay[:, None]
    clip = o["score_clipping_thresh"]
    score = 1.0 / (1.0 + np.exp(-np.clip(logit, -clip, clip)))
    out = []
    for i in range(o["num_boxes"]):
        width, height = xmax[i] - xmin[i], ymax[i] - ymin[i]
        if score[i] < o["min_score_thresh"] or not (width >= 0 and height >= 0):
            continue                             # below threshold, or negative / NaN size
        out.append({"anchor": i, "score": float(score[i]), "xmin": float(xmin[i]),
                    "ymin": float(ymin[i]), "width": float(width), "height": float(height),
                    "keypoints": np.stack([kx[i], ky[i]], axis=1)})
    return out


def _iou(a: dict, b: dict) -> float:
    """MediaPipe's OverlapSimilarity(INTERSECTION_OVER_UNION) of two relative boxes."""
    ax1, ay1, bx1, by1 = a["xmin"] + a["width"], a["ymin"] + a["height"], \
        b["xmin"] + b["width"], b["ymin"] + b["height"]
    if (a["width"] < 0 or a["height"] < 0 or b["width"] < 0 or b["height"] < 0
            or bx1 < a["xmin"] or ax1 < b["xmin"] or by1 < a["ymin"] or ay1 < b["ymin"]):
        return 0.0
    iw = min(ax1, bx1) - max(a["xmin"], b["xmin"])
    ih = min(ay1, by1) - max(a["ymin"], b["ymin"])
    inter = iw * ih
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(dets: list[dict], threshold: float = DETECTOR_NMS["min_suppression_threshold"]
                 ) -> list[dict]:
    """NonMaxSuppressionCalculator, algorithm WEIGHTED: take the best remaining detection, gather
    every remaining one (itself included) whose IoU with it is > threshold, and output the
    best one's score with the score-weighted mean of their box corners and keypoints."""
    remaining = sorted(range(len(dets)), key=lambda i: -dets[i]["score"])   # stable
    out = []
    while remaining:
        top = dets[remaining[0]]
        candidates = [i for i in remaining if _iou(dets[i], top) > threshold]
        rest = [i for i in remaining if _iou(dets[i], top) <= threshold]
        merged = dict(top, keypoints=top["keypoints"].copy(),
                      merged=[dets[i]["anchor"] for i in candidates])
        if candidates:
            s = np.array([dets[i]["score"] for i in candidates])
            total = s.sum()
            xmin = sum(dets[i]["xmin"] * dets[i]["score"] for i in candidates) / total
            ymin = sum(dets[i]["ymin"] * dets[i]["score"] for i in candidates) / total
            xmax = sum((dets[i]["xmin"] + dets[i]["width"]) * dets[i]["score"]
                       for i in candidates) / total
            ymax = sum((dets[i]["ymin"] + dets[i]["height"]) * dets[i]["score"]
                       for i in candidates) / total
            merged.update(xmin=xmin, ymin=ymin, width=xmax - xmin, height=ymax - ymin,
                          keypoints=sum(dets[i]["keypoints"] * dets[i]["score"]
                                        for i in candidates) / total)
        out.append(merged)
        if len(rest) == len(remaining):
            break
        remaining = rest
    return out


def remove_letterbox(det: dict, padding: list[float]) -> dict:
    """DetectionLetterboxRemovalCalculator: from the 224x224 input to the original frame."""
    left, top, right, bottom = padding
    sx, sy = 1.0 - left - right, 1.0 - top - bottom
    return dict(det, xmin=(det["xmin"] - left) / sx, ymin=(det["ymin"] - top) / sy,
                width=det["width"] / sx, height=det["height"] / sy,
                keypoints=(det["keypoints"] - [left, top]) / [sx, sy])


def detection_to_roi(det: dict, width: int, height: int, o: dict = DETECTION_TO_ROI) -> dict:
    """PoseDetectionToRoi: the landmark network's region from keypoints 0 (mid-hip centre) and 1
    (size / rotation point): centre at keypoint 0, rotation so that 0 -> 1 points up, a square
    of side 2 * |1 - 0| (pixels) * 1.25.  Normalised to the frame (width / height differ for
    a non-square frame); rotation in radians, in [-pi, pi)."""
    (x0, y0), (x1, y1) = (det["keypoints"][o["rotation_vector_start_keypoint_index"]],
                          det["keypoints"][o["rotation_vector_end_keypoint_index"]])
    px0, py0, px1, py1 = x0 * width, y0 * height, x1 * width, y1 * height
    size = 2.0 * np.hypot(px1 - px0, py1 - py0)
    angle = (np.radians(o["rotation_vector_target_angle_degrees"])
             - np.arctan2(-(py1 - py0), px1 - px0))
    rotation = angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi))
    assert o["square_long"]                      # width and height in pixels are equal already
    return {"x_center": float(x0), "y_center": float(y0),
            "width": float(size / width * o["scale_x"]),
            "height": float(size / height * o["scale_y"]),
            "rotation": float(rotation)}


def decode_pose_detections(boxes: np.ndarray, scores: np.ndarray, padding: list[float],
                           anchors: np.ndarray | None = None) -> list[dict]:
    """The whole decoding of MediaPipe's pose_detection_cpu graph after the network: anchors,
    sigmoid scores >= 0.5, weighted NMS, letterbox removal.  Best first; normalised to the frame."""
    return [remove_letterbox(d, padding)
            for d in weighted_nms(decode_boxes(boxes, scores, anchors))]


# The reference fixture for the Rust side: three frames made from scikit-image's astronaut.
FIXTURE_PATH = Path("tests/fixtures/pose_detection_reference.json")


def fixture_frames(astronaut: np.ndarray) -> list[tuple[dict, np.ndarray]]:
    """The fixture's frames, each with a recipe that rebuilds it exactly from the 512x512 RGB8
    astronaut: [(description, H x W x 3 uint8)]."""
    a = astronaut.astype(np.int64)
    half = ((a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2] + 2) // 4
            ).astype(np.uint8)
    wide = np.zeros((360, 640, 3), np.uint8)
    wide[80:80 + 256, 352:352 + 256] = half
    tall = np.zeros((640, 360, 3), np.uint8)
    tall[32:32 + 512, 0:360] = astronaut[:, 40:400]
    return [
        ({"name": "astronaut_512x512", "width": 512, "height": 512,
          "recipe": "the astronaut as is"}, astronaut.copy()),
        ({"name": "astronaut_half_in_640x360", "width": 640, "height": 360,
          "recipe": "black 640x360 frame; the astronaut halved to 256x256 by 2x2 box means "
                    "(each channel (a + b + c + d + 2) // 4 over pixels (2i..2i+1, 2j..2j+1)) "
                    "pasted with its top-left corner at x=352, y=80"}, wide),
        ({"name": "astronaut_crop_in_360x640", "width": 360, "height": 640,
          "recipe": "black 360x640 frame (width 360, height 640); the astronaut's columns "
                    "40..399 (all 512 rows) pasted with the top-left corner at x=0, y=32"}, tall),
    ]


def _f32(x) -> float:
    """The shortest decimal that reads back as the same float32 (exact for the Rust side)."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="0"))


def pose_detection_fixture(tflite_path: Path, onnx_path: Path, astronaut: np.ndarray
                           ) -> tuple[dict, dict[str, np.ndarray]]:
    """Reference detections for the fixture frames: the .tflite run by LiteRT on the letterboxed
    frame, decoded by decode_pose_detections.  Returns the fixture (JSON-ready) and the exact
    network inputs {file name: 224x224x3 uint8 v, the tensor being v*2/255 - 1}.  Per frame it
    also keeps the raw network output of every anchor that passes the score threshold (enough
    to redo the decoding exactly, independent of resampling)."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(tflite_path), num_threads=1)
    interp.allocate_tensors()
    by_shape = {tuple(d["shape"]): d["index"] for d in interp.get_output_details()}
    anchors = ssd_anchors()

    def r6(v) -> float:
        return round(float(v), 6)

    frames, inputs = [], {}
    for desc, rgb in fixture_frames(astronaut):
        tensor, padding = letterbox(rgb)
        v = np.rint((tensor + 1.0) * 127.5).astype(np.uint8)
        if not np.array_equal(v.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0),
                              tensor):
            raise AssertionError("letterbox tensor is not v*2/255 - 1 of 8-bit values")
        png = f"pose_detection_input_{desc['name']}.png"
        inputs[png] = v
        interp.set_tensor(interp.get_input_details()[0]["index"], tensor[None])
        interp.invoke()
        boxes = interp.get_tensor(by_shape[(1, 2254, 12)]).copy()
        scores = interp.get_tensor(by_shape[(1, 2254, 1)]).copy()
        dets = decode_pose_detections(boxes, scores, padding, anchors)
        passing = [d["anchor"] for d in decode_boxes(boxes, scores, anchors)]
        frames.append(dict(
            desc, rgb_sha256=sha256_bytes(np.ascontiguousarray(rgb).tobytes()),
            letterbox_padding={k: r6(p)
                               for k, p in zip(("left", "top", "right", "bottom"), padding)},
            input_png=str(FIXTURE_PATH.parent / png),
            input_rgb_sha256=sha256_bytes(v.tobytes()),
            candidates=[{"anchor": i, "logit": _f32(scores[0, i, 0]),
                         "raw": [_f32(x) for x in boxes[0, i]]} for i in passing],
            detections=[{
                "score": r6(d["score"]),
                "box": {"x_center": r6(d["xmin"] + d["width"] / 2),
                        "y_center": r6(d["ymin"] + d["height"] / 2),
                        "width": r6(d["width"]), "height": r6(d["height"])},
                "keypoints": [[r6(x), r6(y)] for x, y in d["keypoints"]],
                "merged_anchors": d["merged"],
                "roi": {k: r6(x) for k, x in
                        detection_to_roi(d, desc["width"], desc["height"]).items()},
            } for d in dets]))
    fixture = {
        "about": "MediaPipe Pose's person detector (models/pose_detection.onnx) on three frames "
                 "made from scikit-image's astronaut. Reference: LiteRT on the .tflite, then "
                 "decode_pose_detections in tools/mediapipe_to_onnx.py (the decoding of "
                 "MediaPipe 0.10.21's pose_detection_cpu graph; checked against MediaPipe's own "
                 "graph to 5e-7). Coordinates are fractions of the frame's width (x) and height "
                 "(y). Regenerate: .venv/bin/python tools/mediapipe_to_onnx.py --fixture",
        "model": "models/pose_detection.onnx", "model_sha256": sha256_bytes(onnx_path.read_bytes()),
        "tflite_sha256": sha256_bytes(tflite_path.read_bytes()),
        "source_image": "scikit-image data.astronaut() = skimage/data/astronaut.png in the venv "
                        "(.venv/lib/python3.*/site-packages/skimage/data/astronaut.png), 512x512 "
                        "RGB8; assets/astronaut.jpg is the same photograph JPEG-compressed, not "
                        "the same pixels",
        "source_image_rgb_sha256": sha256_bytes(np.ascontiguousarray(astronaut).tobytes()),
        "letterbox": " ".join(letterbox.__doc__.split("\n\n", 1)[1].split()),
        "anchors": dict(DETECTOR_ANCHORS, count=int(len(anchors)), check={
            str(i): [r6(x) for x in anchors[i, :2]]
            for i in (0, 1, 2, 1567, 1568, 1959, 1960, 2253)}),
        "decode": DETECTOR_DECODE, "nms": DETECTOR_NMS, "roi": DETECTION_TO_ROI,
        "fields": {
            "rgb_sha256": "sha256 of the frame's packed RGB8 bytes (row-major, H x W x 3)",
            "input_png": "the exact 224x224 network input of the frame (letterboxed as in "
                         "'letterbox'): 8-bit RGB v, image = v * 2 / 255 - 1 (NHWC -> NCHW)",
            "candidates": "every anchor with sigmoid(clip(logit, -100, 100)) >= 0.5 and a box of "
                          "non-negative size, in anchor order: index, raw logit (scores[0, a, 0]) "
                          "and the 12 raw regressors (boxes[0, a, :]), float32 values written "
                          "exactly; decoding these alone gives 'detections'",
            "detections": "after weighted NMS and letterbox removal, best first: score (sigmoid "
                          "of the best logit of the group), box centre and size, 4 keypoints [x, y]"
                          " (0 mid-hip centre, 1 full-body size/rotation point, 2 mid-shoulder "
                          "centre, 3 upper-body size/rotation point), the anchors merged into it "
                          "(best first), and the landmark network's region (pose_detection_to_roi; "
                          "width and height are fractions of the frame width and height, the "
                          "region being square in pixels; rotation clockwise in radians)",
        },
        "frames": frames,
    }
    return fixture, inputs


def write_pose_detection_fixture(tflite_path: Path, onnx_path: Path,
                                 json_path: Path = FIXTURE_PATH) -> None:
    """Write the fixture JSON and its input PNGs (next to it) from scikit-image's astronaut."""
    import json
    from PIL import Image
    from skimage import data as skdata
    fixture, inputs = pose_detection_fixture(tflite_path, onnx_path, skdata.astronaut())
    json_path.parent.mkdir(parents=True, exist_ok=True)
    for name, v in inputs.items():
        Image.fromarray(v).save(json_path.parent / name, format="PNG", optimize=True)
    json_path.write_text(json.dumps(fixture, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help="local mediapipe-0.10.21 wheel (skips pip download)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help="where the wheel and extracted .tflite files live (default %(default)s)")
    ap.add_argument("--out-dir", type=Path, default=Path("models"), help="default %(default)s")
    ap.add_argument("--fixture", action="store_true",
                    help=f"also write the detector's reference fixture {FIXTURE_PATH} and its "
                         "input PNGs (LiteRT + scikit-image)")
    args = ap.parse_args(argv)

    tflites = extract_tflite_models(args.wheel, args.cache)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, path in tflites.items():
        model = convert_selfie_model(path, name)
        dst = args.out_dir / f"{name}.onnx"
        onnx.save_model(model, dst)
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"{dst}: {len(model.graph.node)} nodes ({', '.join(ops)}), "
              f"{dst.stat().st_size} bytes")
    for name, path in extract_pose_model(args.wheel, args.cache).items():
        model = convert_pose_model(path, name)
        dst = args.out_dir / f"{name}.onnx"
        onnx.save_model(model, dst)
        print(f"{dst}: {len(model.graph.node)} nodes, {dst.stat().st_size} bytes")
    for name, path in extract_detector_model(args.wheel, args.cache).items():
        model = convert_detector_model(path, name)
        dst = args.out_dir / f"{name}.onnx"
        onnx.save_model(model, dst)
        print(f"{dst}: {len(model.graph.node)} nodes, {dst.stat().st_size} bytes")
        if args.fixture:
            write_pose_detection_fixture(path, dst)
            print(f"{FIXTURE_PATH}: reference detections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
