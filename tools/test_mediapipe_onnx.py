"""Parity tests for tools/mediapipe_to_onnx.py.

Run with:  .venv/bin/python -m pytest tools/ -q

* The MediaPipe selfie models (square 256x256 and landscape 144x256) are run with
  LiteRT (`ai_edge_litert`, the reference) and with onnxruntime on real images
  from scikit-image; the masks must agree within 1e-3 everywhere.  Both a fresh
  conversion and the committed `models/*.onnx` are checked.
* MediaPipe Pose's landmark network and person detector likewise (fresh conversion and
  committed file; the detector on letterboxed images, its raw boxes and logits); the
  detector's reference fixture for the Rust side (tests/fixtures/pose_detection_reference.json)
  is recomputed and compared, and its raw candidates must decode to its detections.
* Small synthetic TFLite models, built here with the flatbuffer builders of the
  `tflite` package, exercise each supported operator in the configurations the
  selfie models do not use (odd sizes with SAME padding, PAD, MAX_POOL_2D,
  RESHAPE, MEAN without keep_dims, every RESIZE_BILINEAR mode, other strides of
  the custom transposed convolution, DEPTH_TO_SPACE, CONCATENATION, sparse
  weights behind DENSIFY, ...) against LiteRT.
* An unknown operator must be refused with an error naming it.

The .tflite files come from the mediapipe==0.10.21 wheel through the converter's
own `extract_tflite_models`.  Set SLIMMATTE_MEDIAPIPE_WHEEL to a local wheel to
avoid `pip download`; SLIMMATTE_WHEEL_CACHE overrides the cache directory.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image
from skimage import data as skdata

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mediapipe_to_onnx as m2o  # noqa: E402
from tflite.BuiltinOperator import BuiltinOperator as Op  # noqa: E402
from tflite.BuiltinOptions import BuiltinOptions as Opt  # noqa: E402
from tflite.TensorType import TensorType  # noqa: E402

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO / "models"
SIZES = {"selfie_segmentation": (256, 256), "selfie_segmentation_landscape": (144, 256)}
IMAGES = ["astronaut", "camera", "coffee", "chelsea"]
TOLERANCE = 1e-3


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def load_image(name: str, h: int, w: int) -> np.ndarray:
    """scikit-image sample resized (PIL bilinear) to h x w, RGB float32 in 0..1, HWC."""
    img = getattr(skdata, name)()
    if img.ndim == 2:                       # camera is greyscale
        img = np.stack([img] * 3, axis=-1)
    img = Image.fromarray(img).resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def run_tflite(model: bytes | Path, x_nhwc: np.ndarray) -> np.ndarray:
    """Run a single-input single-output .tflite with LiteRT (its default XNNPACK
    delegate provides MediaPipe's Convolution2DTransposeBias)."""
    if isinstance(model, Path):
        interp = Interpreter(model_path=str(model), num_threads=1)
    else:
        interp = Interpreter(model_content=model, num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x_nhwc)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def ort_session(model: onnx.ModelProto | Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    src = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def to_nchw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


# ---------------------------------------------------------------------------
# The real MediaPipe models
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tflite_paths() -> dict[str, Path]:
    wheel = os.environ.get("SLIMMATTE_MEDIAPIPE_WHEEL")
    cache = os.environ.get("SLIMMATTE_WHEEL_CACHE")
    try:
        return m2o.extract_tflite_models(wheel, cache)
    except subprocess.CalledProcessError as e:      # offline: pip download failed
        if os.environ.get("SLIMMATTE_REQUIRE_PARITY"):  # scripts/test.sh: never skip
            pytest.fail(f"cannot fetch mediapipe=={m2o.MEDIAPIPE_VERSION} wheel ({e})")
        pytest.skip(f"cannot fetch mediapipe=={m2o.MEDIAPIPE_VERSION} wheel ({e}); "
                    "set SLIMMATTE_MEDIAPIPE_WHEEL to a local copy")


@pytest.fixture(scope="module")
def fresh_models(tflite_paths) -> dict[str, onnx.ModelProto]:
    return {name: m2o.convert_selfie_model(p, name) for name, p in tflite_paths.items()}


@pytest.fixture(scope="module")
def reference_masks(tflite_paths) -> dict[tuple[str, str], np.ndarray]:
    """LiteRT masks, [H, W], for every (model, image)."""
    out = {}
    for name, (h, w) in SIZES.items():
        for img in IMAGES:
            x = load_image(img, h, w)[None]
            out[name, img] = run_tflite(tflite_paths[name], x)[0, :, :, 0]
    return out


def onnx_mask(session: ort.InferenceSession, img: str, h: int, w: int) -> np.ndarray:
    x = load_image(img, h, w).transpose(2, 0, 1)[None]
    return session.run(["mask"], {"image": x})[0][0, 0]


@pytest.mark.parametrize("which", ["fresh", "committed"])
def test_pose_landmark_parity_with_litert(which):
    """MediaPipe Pose's landmark network: landmarks, presence and the person mask (the
    TFLite logits through a sigmoid) agree with LiteRT on real images; the committed file is
    the converter's output."""
    wheel = os.environ.get("SLIMMATTE_MEDIAPIPE_WHEEL")
    cache = os.environ.get("SLIMMATTE_WHEEL_CACHE")
    try:
        (name, path), = m2o.extract_pose_model(wheel, cache).items()
    except subprocess.CalledProcessError as e:
        if os.environ.get("SLIMMATTE_REQUIRE_PARITY"):
            pytest.fail(f"cannot fetch mediapipe=={m2o.MEDIAPIPE_VERSION} wheel ({e})")
        pytest.skip(f"cannot fetch the mediapipe wheel ({e})")
    model = m2o.convert_pose_model(path, name) if which == "fresh" else MODELS_DIR / f"{name}.onnx"
    session = ort_session(model)
    assert [o.name for o in session.get_outputs()] == ["landmarks", "presence", "mask"]
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    for img in ["astronaut", "coffee"]:
        x = load_image(img, 256, 256)
        interp.set_tensor(interp.get_input_details()[0]["index"], x[None])
        interp.invoke()
        ref = {d["name"]: interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()}
        landmarks, presence, mask = session.run(None, {"image": x.transpose(2, 0, 1)[None]})
        # Landmarks are in input pixels (0..256): within 0.05 px.
        assert np.abs(landmarks - ref["Identity"]).max() < 0.05, img
        assert np.abs(presence - ref["Identity_1"]).max() < TOLERANCE, img
        logits = ref["Identity_2"][0, :, :, 0].astype(np.float64)
        ref_mask = 0.5 * (1.0 + np.tanh(0.5 * logits))         # sigmoid without overflow
        # A deeper network than the selfie ones: float32 summation order moves a few logits
        # near 0 by ~0.015 (probability 0.004); 1e-2 still catches any layout or padding slip.
        assert np.abs(mask[0, 0] - ref_mask).max() < 1e-2, img
        if img == "astronaut":
            # A person: found, and the mask covers her face (centre-top of the photo).
            assert presence.item() > 0.5
            assert mask[0, 0, 70:110, 110:150].mean() > 0.5


@pytest.fixture(scope="module")
def detector_tflite() -> Path:
    wheel = os.environ.get("SLIMMATTE_MEDIAPIPE_WHEEL")
    cache = os.environ.get("SLIMMATTE_WHEEL_CACHE")
    try:
        (_, path), = m2o.extract_detector_model(wheel, cache).items()
    except subprocess.CalledProcessError as e:
        if os.environ.get("SLIMMATTE_REQUIRE_PARITY"):
            pytest.fail(f"cannot fetch mediapipe=={m2o.MEDIAPIPE_VERSION} wheel ({e})")
        pytest.skip(f"cannot fetch the mediapipe wheel ({e})")
    return path


def detector_card() -> dict:
    return json.loads((MODELS_DIR / "pose_detection.json").read_text())


def litert_detector(path: Path, x_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [1,2254,12], scores [1,2254,1]) of the .tflite, told apart by shape."""
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x_nhwc)
    interp.invoke()
    out = {tuple(d["shape"]): interp.get_tensor(d["index"]).copy()
           for d in interp.get_output_details()}
    return out[(1, 2254, 12)], out[(1, 2254, 1)]


# Raw regressors are in 224-pixel units and reach several hundred: float32 summation order
# moves them by up to ~1.4e-3 (6e-6 of the frame).  Logits reach -440 and move by up to ~9e-4
# there, but by ~1e-5 near the 0.5 threshold (|logit| < 5): allow 1e-4 + 1e-5 * |logit|.
DETECTOR_BOX_TOLERANCE = 5e-3
DETECTOR_SCORE_TOLERANCE = (1e-4, 1e-5)          # absolute, relative to |logit|


@pytest.mark.parametrize("which", ["fresh", "committed"])
def test_pose_detection_parity_with_litert(which, detector_tflite):
    """MediaPipe Pose's person detector: raw boxes and logits agree with LiteRT on real images
    letterboxed to 224x224 as MediaPipe does; the astronaut is found; the converted file is the
    shipped one (sha256 of the card)."""
    card = detector_card()
    if which == "fresh":
        model = m2o.convert_detector_model(detector_tflite, "pose_detection")
        assert hashlib.sha256(model.SerializeToString()).hexdigest() == card["sha256"], \
            "fresh conversion differs from models/pose_detection.json's sha256"
        session = ort_session(model)
    else:
        path = MODELS_DIR / "pose_detection.onnx"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == card["sha256"]
        assert path.stat().st_size == card["bytes"]
        session = ort_session(path)
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["boxes", "scores"]
    for name in ["astronaut", "coffee"]:
        img = getattr(skdata, name)()
        x, padding = m2o.letterbox(img)
        ref_boxes, ref_scores = litert_detector(detector_tflite, x[None])
        boxes, scores = session.run(None, {"image": x.transpose(2, 0, 1)[None]})
        assert boxes.shape == ref_boxes.shape == (1, 2254, 12)
        assert scores.shape == ref_scores.shape == (1, 2254, 1)
        db, ds = float(np.abs(boxes - ref_boxes).max()), np.abs(scores - ref_scores)
        near = float(ds[np.abs(ref_scores) < 5].max(initial=0.0))
        print(f"{which} pose_detection {name} {img.shape[1]}x{img.shape[0]}: max |onnx - tflite| "
              f"boxes {db:.3g} (values up to {np.abs(ref_boxes).max():.0f}), logits "
              f"{ds.max():.3g} (values up to {np.abs(ref_scores).max():.0f}; {near:.3g} where "
              "|logit| < 5)")
        assert db < DETECTOR_BOX_TOLERANCE, name
        atol, rtol = DETECTOR_SCORE_TOLERANCE
        assert np.all(ds <= atol + rtol * np.abs(ref_scores)), name
        dets = m2o.decode_pose_detections(boxes, scores, padding)
        ref = m2o.decode_pose_detections(ref_boxes, ref_scores, padding)
        assert [d["merged"] for d in dets] == [d["merged"] for d in ref], name
        if name == "astronaut":
            # One person, her mid-shoulder point (keypoint 2) between her shoulders.
            assert len(dets) == 1 and dets[0]["score"] > 0.7
            sx, sy = dets[0]["keypoints"][2]
            assert 0.3 < sx < 0.5 and 0.4 < sy < 0.55, (sx, sy)


def _close(a, b, tol: float, where: str = "") -> None:
    """Recursive comparison of JSON-like values: numbers within tol, everything else equal."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], tol, f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, tol, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert abs(a - b) <= tol, f"{where}: {a} vs {b}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def _fixture_detections(dets: list[dict], frame: dict) -> list[dict]:
    """decode_pose_detections' output in the fixture's form (not rounded)."""
    return [{"score": d["score"],
             "box": {"x_center": d["xmin"] + d["width"] / 2,
                     "y_center": d["ymin"] + d["height"] / 2,
                     "width": d["width"], "height": d["height"]},
             "keypoints": [[float(x), float(y)] for x, y in d["keypoints"]],
             "merged_anchors": d["merged"],
             "roi": m2o.detection_to_roi(d, frame["width"], frame["height"])} for d in dets]


def test_pose_detection_reference_fixture(detector_tflite):
    """tests/fixtures/pose_detection_reference.json (the Rust decoder's reference) is what the
    converter's reference pipeline makes now; its candidates alone decode to its detections; its
    input PNGs are the letterboxed frames; the ONNX model on them gives the same detections."""
    path = REPO / m2o.FIXTURE_PATH
    fixture = json.loads(path.read_text())
    assert fixture["model_sha256"] == detector_card()["sha256"]
    assert fixture["tflite_sha256"] == m2o.DETECTOR_MODELS["pose_detection"][1]
    fresh, inputs = m2o.pose_detection_fixture(
        detector_tflite, MODELS_DIR / "pose_detection.onnx", skdata.astronaut())
    # LiteRT's raw numbers may move by a few ulp on another CPU: compare with tolerances.
    assert [f["name"] for f in fixture["frames"]] == [f["name"] for f in fresh["frames"]]
    for old, new in zip(fixture["frames"], fresh["frames"]):
        for key in ("candidates", "detections"):
            assert len(old[key]) == len(new[key]), (old["name"], key)
        assert [c["anchor"] for c in old["candidates"]] == [c["anchor"] for c in new["candidates"]]
        _close({k: v for k, v in old.items() if k != "candidates"},
               {k: v for k, v in new.items() if k != "candidates"}, 2e-5, old["name"])
        _close(old["candidates"], new["candidates"], 2e-3, old["name"] + ".candidates")
    _close({k: v for k, v in fixture.items() if k != "frames"},
           {k: v for k, v in fresh.items() if k != "frames"}, 0.0)
    assert sum(p.stat().st_size for p in path.parent.glob("pose_detection*")) < 200_000

    session = ort_session(MODELS_DIR / "pose_detection.onnx")
    anchors = m2o.ssd_anchors()
    for frame in fixture["frames"]:
        png = np.asarray(Image.open(REPO / frame["input_png"]).convert("RGB"))
        assert np.array_equal(png, inputs[Path(frame["input_png"]).name]), frame["name"]
        assert hashlib.sha256(png.tobytes()).hexdigest() == frame["input_rgb_sha256"]
        padding = [frame["letterbox_padding"][k] for k in ("left", "top", "right", "bottom")]
        # The candidates' raw values alone give the detections (what a decoder test needs).
        boxes = np.zeros((1, 2254, 12), np.float32)
        scores = np.full((1, 2254, 1), -100.0, np.float32)
        for c in frame["candidates"]:
            boxes[0, c["anchor"]] = c["raw"]
            scores[0, c["anchor"], 0] = c["logit"]
        got = _fixture_detections(m2o.decode_pose_detections(boxes, scores, padding, anchors),
                                  frame)
        _close(got, frame["detections"], 1e-6, frame["name"])
        # The converted model on the exact input.
        x = png.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
        b, s = session.run(None, {"image": x.transpose(2, 0, 1)[None].copy()})
        got = _fixture_detections(m2o.decode_pose_detections(b, s, padding, anchors), frame)
        _close(got, frame["detections"], 1e-4, frame["name"] + " (onnx)")
        assert len(frame["detections"]) == 1 and frame["detections"][0]["score"] > 0.7


@pytest.mark.parametrize("which", ["fresh", "committed"])
@pytest.mark.parametrize("name", list(SIZES))
def test_parity_with_litert(name, which, fresh_models, reference_masks):
    h, w = SIZES[name]
    if which == "fresh":
        session = ort_session(fresh_models[name])
    else:
        path = MODELS_DIR / f"{name}.onnx"
        if not path.is_file():
            pytest.skip(f"{path} not generated yet")
        session = ort_session(path)
    for img in IMAGES:
        ref = reference_masks[name, img]
        got = onnx_mask(session, img, h, w)
        assert got.shape == ref.shape == (h, w)
        diff = float(np.abs(got - ref).max())
        print(f"{which} {name} {img}: max |onnx - tflite| = {diff:.3g}")
        assert diff <= TOLERANCE, f"{name}/{img}: max abs diff {diff}"


def committed_or_skip(name: str) -> Path:
    path = MODELS_DIR / f"{name}.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not generated yet (run tools/mediapipe_to_onnx.py)")
    return path


F32 = onnx.TensorProto.FLOAT
# {model: (inputs, outputs, pinned .tflite sha256)}: the I/O the Rust runtime relies on.
INTERFACES = {
    **{name: ([("image", F32, [1, 3, h, w])], [("mask", F32, [1, 1, h, w])], m2o.MODELS[name])
       for name, (h, w) in SIZES.items()},
    "pose_landmark_full": ([("image", F32, [1, 3, 256, 256])],
                           [("landmarks", F32, [1, 195]), ("presence", F32, [1, 1]),
                            ("mask", F32, [1, 1, 256, 256])],
                           m2o.POSE_MODELS["pose_landmark_full"][1]),
    "pose_detection": ([("image", F32, [1, 3, 224, 224])],
                       [("boxes", F32, [1, 2254, 12]), ("scores", F32, [1, 2254, 1])],
                       m2o.DETECTOR_MODELS["pose_detection"][1]),
}


@pytest.mark.parametrize("name", list(INTERFACES))
def test_interface(name):
    """The exact I/O contract the Rust runtime relies on."""
    inputs, outputs, tflite_sha = INTERFACES[name]
    model = onnx.load(committed_or_skip(name))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]

    def io(vi):
        t = vi.type.tensor_type
        return vi.name, t.elem_type, [d.dim_value for d in t.shape.dim]

    assert [io(v) for v in model.graph.input] == inputs
    assert [io(v) for v in model.graph.output] == outputs
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["license"] == "Apache-2.0"
    assert f"mediapipe=={m2o.MEDIAPIPE_VERSION}" in meta["source"]
    assert meta["source_sha256"] == tflite_sha


@pytest.mark.parametrize("name", list(SIZES))
def test_mask_finds_the_astronaut(name):
    """On skimage's astronaut (512x512, person in the left-centre/lower part) the mask
    must be high on the face/torso and low on the wall between head and shuttle."""
    h, w = SIZES[name]
    mask = onnx_mask(ort_session(committed_or_skip(name)), "astronaut", h, w)

    def region(y0, y1, x0, x1):       # fractions of the image height / width
        return float(mask[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)].mean())

    person = region(0.12, 0.75, 0.30, 0.55)     # face (rows ~60-180) down to the torso
    wall = region(0.00, 0.12, 0.60, 0.75)       # plain backdrop, top right of the head
    print(f"{name}: person {person:.3f}, wall {wall:.3f}")
    assert person > 0.8
    assert wall < 0.1
    assert mask.min() >= 0.0 and mask.max() <= 1.0


# ---------------------------------------------------------------------------
# Synthetic TFLite models, one feature at a time
# ---------------------------------------------------------------------------

_DTYPES = {np.float32: TensorType.FLOAT32, np.float16: TensorType.FLOAT16,
           np.int32: TensorType.INT32}


class TflBuilder:
    """Builds a one-subgraph .tflite from tensors and operators (schema version 3)."""

    def __init__(self):
        self.tensors: list[tuple[str, tuple, type, np.ndarray | None]] = []
        self.sparsity: dict[int, list] = {}      # tensor index -> per-dimension metadata
        self.ops: list[dict] = []

    def tensor(self, shape, dtype=np.float32, data=None, name=None) -> int:
        if data is not None:
            data = np.asarray(data, dtype=dtype).reshape(shape)
        self.tensors.append((name or f"t{len(self.tensors)}", tuple(shape), dtype, data))
        return len(self.tensors) - 1

    def sparse_weights(self, array, formats, index_types) -> int:
        """fp16 constant stored sparse (TFLite's TACO encoding, traversal order = dimension
        order) + DENSIFY + DEQUANTIZE, like the pose detector's pruned weights.  formats[d] is
        "dense" or "csr"; index_types[d] the SparseIndexVector type (1 int32, 2 uint16, 3 uint8)
        of a CSR dimension's segments and indices."""
        dense = np.asarray(array, np.float32).astype(np.float16)
        rank = dense.ndim
        segments = {d: [0] for d in range(rank) if formats[d] == "csr"}
        indices = {d: [] for d in segments}
        values = []

        def walk(prefix, level):
            if level == rank:
                values.append(dense[prefix])
                return
            for i in range(dense.shape[level]):
                if formats[level] == "csr":
                    if not np.any(dense[prefix + (i,)] != 0):
                        continue                 # an all-zero sub-block is not stored
                    indices[level].append(i)
                walk(prefix + (i,), level + 1)
            if formats[level] == "csr":
                segments[level].append(len(indices[level]))

        walk((), 0)
        q = self.tensor((len(values),), np.float16, np.array(values, np.float16))
        names = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}
        self.sparsity[q] = [("dense", n) if formats[d] == "dense" else
                            ("csr", names[index_types[d]], index_types[d], segments[d], indices[d])
                            for d, n in enumerate(dense.shape)]
        self.tensors[q] = (self.tensors[q][0], dense.shape, np.float16, self.tensors[q][3])
        d = self.tensor(dense.shape, np.float16)
        self.op(Op.DENSIFY, [q], [d])
        out = self.tensor(dense.shape)
        self.op(Op.DEQUANTIZE, [d], [out])
        return out

    def weights(self, array) -> int:
        """fp16 constant + DEQUANTIZE, like the MediaPipe models store their weights."""
        array = np.asarray(array, np.float32)
        q = self.tensor(array.shape, np.float16, array.astype(np.float16))
        out = self.tensor(array.shape)
        self.op(Op.DEQUANTIZE, [q], [out])
        return out

    def op(self, code, inputs, outputs, options=None, custom_code=None, custom_options=b""):
        """options: (BuiltinOptions type, table name, {field: value}) or None."""
        self.ops.append(dict(code=code, inputs=inputs, outputs=outputs, options=options,
                             custom_code=custom_code, custom_options=custom_options))

    # -- flatbuffer encoding ----------------------------------------------------
    @staticmethod
    def _table(b, name, **fields):
        mod = importlib.import_module(f"tflite.{name}")
        getattr(mod, f"{name}Start")(b)
        for field, value in fields.items():
            getattr(mod, f"{name}Add{field}")(b, value)
        return getattr(mod, f"{name}End")(b)

    def _sparsity(self, b, dims):
        metas = []
        for dim in dims:
            if dim[0] == "dense":
                metas.append(self._table(b, "DimensionMetadata", Format=0, DenseSize=dim[1]))
                continue
            _, table, kind, segments, indices = dim
            dtype = {"Int32Vector": np.int32, "Uint16Vector": np.uint16,
                     "Uint8Vector": np.uint8}[table]
            seg = self._table(b, table, Values=b.CreateNumpyVector(np.array(segments, dtype)))
            idx = self._table(b, table, Values=b.CreateNumpyVector(np.array(indices, dtype)))
            metas.append(self._table(b, "DimensionMetadata", Format=1, ArraySegmentsType=kind,
                                     ArraySegments=seg, ArrayIndicesType=kind,
                                     ArrayIndices=idx))
        order = b.CreateNumpyVector(np.arange(len(dims), dtype=np.int32))
        return self._table(b, "SparsityParameters", TraversalOrder=order,
                           DimMetadata=self._offsets(b, metas))

    @staticmethod
    def _offsets(b, offs):
        b.StartVector(4, len(offs), 4)
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    @staticmethod
    def _bytes(b, data: bytes, alignment=16):
        b.StartVector(1, len(data), alignment)
        b.head -= len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        return b.EndVector()

    def build(self, inputs, outputs) -> bytes:
        b = flatbuffers.Builder(1024)
        buffers = [self._table(b, "Buffer")]              # buffer 0: empty
        tensors = []
        for index, (name, shape, dtype, data) in enumerate(self.tensors):
            buf = 0
            if data is not None:
                vec = self._bytes(b, np.ascontiguousarray(data).tobytes())
                buffers.append(self._table(b, "Buffer", Data=vec))
                buf = len(buffers) - 1
            name_off = b.CreateString(name)
            shape_off = b.CreateNumpyVector(np.array(shape, np.int32))
            fields = dict(Shape=shape_off, Type=_DTYPES[dtype], Buffer=buf, Name=name_off)
            if index in self.sparsity:
                fields["Sparsity"] = self._sparsity(b, self.sparsity[index])
            tensors.append(self._table(b, "Tensor", **fields))
        codes, code_index, ops = [], {}, []
        for o in self.ops:
            key = (o["code"], o["custom_code"])
            if key not in code_index:
                fields = dict(DeprecatedBuiltinCode=min(o["code"], 127), BuiltinCode=o["code"],
                              Version=1)
                if o["custom_code"]:
                    fields["CustomCode"] = b.CreateString(o["custom_code"])
                code_index[key] = len(codes)
                codes.append(self._table(b, "OperatorCode", **fields))
            fields = dict(OpcodeIndex=code_index[key],
                          Inputs=b.CreateNumpyVector(np.array(o["inputs"], np.int32)),
                          Outputs=b.CreateNumpyVector(np.array(o["outputs"], np.int32)))
            if o["options"] is not None:
                otype, oname, ofields = o["options"]
                fields["BuiltinOptionsType"] = otype
                fields["BuiltinOptions"] = self._table(b, oname, **ofields)
            if o["custom_options"]:
                fields["CustomOptions"] = self._bytes(b, o["custom_options"], 4)
            ops.append(self._table(b, "Operator", **fields))
        subgraph = self._table(
            b, "SubGraph", Tensors=self._offsets(b, tensors),
            Inputs=b.CreateNumpyVector(np.array(inputs, np.int32)),
            Outputs=b.CreateNumpyVector(np.array(outputs, np.int32)),
            Operators=self._offsets(b, ops), Name=b.CreateString("main"))
        model = self._table(b, "Model", Version=3, OperatorCodes=self._offsets(b, codes),
                            Subgraphs=self._offsets(b, [subgraph]),
                            Buffers=self._offsets(b, buffers),
                            Description=b.CreateString("synthetic test model"))
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())


def conv_opts(padding, stride=(1, 1), act=0, dilation=(1, 1)):
    return (Opt.Conv2DOptions, "Conv2DOptions",
            dict(Padding=padding, StrideH=stride[0], StrideW=stride[1],
                 FusedActivationFunction=act, DilationHFactor=dilation[0],
                 DilationWFactor=dilation[1]))


def pool_opts(padding, k, stride, act=0):
    return (Opt.Pool2DOptions, "Pool2DOptions",
            dict(Padding=padding, FilterHeight=k[0], FilterWidth=k[1], StrideH=stride[0],
                 StrideW=stride[1], FusedActivationFunction=act))


SAME, VALID = 0, 1          # tflite.Padding
RELU, RELU6 = 1, 3          # tflite.ActivationFunctionType
RNG = np.random.default_rng(1234)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def case_conv(in_shape, k, cout, padding, stride, act, dilation=(1, 1)):
    t = TflBuilder()
    x = t.tensor(in_shape)
    w = t.weights(rand(cout, k[0], k[1], in_shape[3], scale=0.3))
    bias = t.weights(rand(cout))
    out_hw = [(-(-n // s) if padding == SAME else (n - (kk - 1) * d - 1) // s + 1)
              for n, kk, s, d in zip(in_shape[1:3], k, stride, dilation)]
    y = t.tensor((1, *out_hw, cout))
    t.op(Op.CONV_2D, [x, w, bias], [y], conv_opts(padding, stride, act, dilation))
    return t.build([x], [y]), in_shape


def case_depthwise(in_shape, k, mult, padding, stride, act):
    t = TflBuilder()
    c = in_shape[3]
    x = t.tensor(in_shape)
    w = t.weights(rand(1, k[0], k[1], c * mult, scale=0.3))
    bias = t.weights(rand(c * mult))
    out_hw = [(-(-n // s) if padding == SAME else (n - kk) // s + 1)
              for n, kk, s in zip(in_shape[1:3], k, stride)]
    y = t.tensor((1, *out_hw, c * mult))
    t.op(Op.DEPTHWISE_CONV_2D, [x, w, bias], [y],
         (Opt.DepthwiseConv2DOptions, "DepthwiseConv2DOptions",
          dict(Padding=padding, StrideH=stride[0], StrideW=stride[1], DepthMultiplier=mult,
               FusedActivationFunction=act, DilationHFactor=1, DilationWFactor=1)))
    return t.build([x], [y]), in_shape


def case_pool(code, in_shape, k, stride, padding):
    t = TflBuilder()
    x = t.tensor(in_shape)
    out_hw = [(-(-n // s) if padding == SAME else (n - kk) // s + 1)
              for n, kk, s in zip(in_shape[1:3], k, stride)]
    y = t.tensor((1, *out_hw, in_shape[3]))
    t.op(code, [x], [y], pool_opts(padding, k, stride))
    return t.build([x], [y]), in_shape


def case_mean(in_shape, axes, keep):
    t = TflBuilder()
    x = t.tensor(in_shape)
    ax = t.tensor((len(axes),), np.int32, axes)
    out_shape = [1 if i in axes else n for i, n in enumerate(in_shape)]
    if not keep:
        out_shape = [n for i, n in enumerate(in_shape) if i not in axes]
    y = t.tensor(out_shape)
    t.op(Op.MEAN, [x, ax], [y], (Opt.ReducerOptions, "ReducerOptions", dict(KeepDims=keep)))
    return t.build([x], [y]), in_shape


def case_resize(in_shape, size, align, half):
    t = TflBuilder()
    x = t.tensor(in_shape)
    s = t.tensor((2,), np.int32, size)
    y = t.tensor((1, *size, in_shape[3]))
    t.op(Op.RESIZE_BILINEAR, [x, s], [y],
         (Opt.ResizeBilinearOptions, "ResizeBilinearOptions",
          dict(AlignCorners=align, HalfPixelCenters=half)))
    return t.build([x], [y]), in_shape


def case_pad(in_shape, pads):
    t = TflBuilder()
    x = t.tensor(in_shape)
    p = t.tensor((len(in_shape), 2), np.int32, pads)
    y = t.tensor([n + a + b for n, (a, b) in zip(in_shape, pads)])
    t.op(Op.PAD, [x, p], [y], (Opt.PadOptions, "PadOptions", {}))
    return t.build([x], [y]), in_shape


def case_reshape(in_shape, out_shape):
    # RESHAPE, then a LOGISTIC so that the reshaped tensor also feeds another op.
    t = TflBuilder()
    x = t.tensor(in_shape)
    s = t.tensor((len(out_shape),), np.int32, out_shape)
    r = t.tensor(out_shape)
    y = t.tensor(out_shape)
    t.op(Op.RESHAPE, [x, s], [r], (Opt.ReshapeOptions, "ReshapeOptions", {}))
    t.op(Op.LOGISTIC, [r], [y])
    return t.build([x], [y]), in_shape


def case_elementwise():
    # Squeeze-excite style block: HARD_SWISH, global AVERAGE_POOL_2D, MUL by the
    # pooled [1,1,1,C] tensor, ADD of a [C] constant with a fused RELU, RELU, LOGISTIC.
    t = TflBuilder()
    shape = (1, 6, 10, 4)
    x = t.tensor(shape)
    hs = t.tensor(shape)
    t.op(Op.HARD_SWISH, [x], [hs])
    pooled = t.tensor((1, 1, 1, 4))
    t.op(Op.AVERAGE_POOL_2D, [hs], [pooled], pool_opts(VALID, (6, 10), (1, 1)))
    gate = t.tensor((1, 1, 1, 4))
    t.op(Op.LOGISTIC, [pooled], [gate])
    mul = t.tensor(shape)
    t.op(Op.MUL, [hs, gate], [mul], (Opt.MulOptions, "MulOptions", dict(FusedActivationFunction=0)))
    c = t.tensor((4,), np.float32, rand(4))
    add = t.tensor(shape)
    t.op(Op.ADD, [c, mul], [add], (Opt.AddOptions, "AddOptions", dict(FusedActivationFunction=RELU)))
    neg = t.tensor(shape)
    t.op(Op.ADD, [add, t.tensor((1, 1, 1, 1), np.float32, [-0.5])], [neg],
         (Opt.AddOptions, "AddOptions", dict(FusedActivationFunction=0)))
    y = t.tensor(shape)
    t.op(Op.RELU, [neg], [y])
    return t.build([x], [y]), shape


def case_transpose_conv(in_shape, k, cout, stride_hw, padding_c, out_hw):
    """MediaPipe's Convolution2DTransposeBias; padding_c is the C enum (1 SAME, 2 VALID)."""
    t = TflBuilder()
    x = t.tensor(in_shape)
    w = t.weights(rand(cout, k[0], k[1], in_shape[3], scale=0.5))
    bias = t.weights(rand(cout))
    y = t.tensor((1, *out_hw, cout))
    # C struct {int32 padding; int32 stride_width; int32 stride_height}
    opts = struct.pack("<3i", padding_c, stride_hw[1], stride_hw[0])
    t.op(Op.CUSTOM, [x, w, bias], [y], custom_code="Convolution2DTransposeBias",
         custom_options=opts)
    return t.build([x], [y]), in_shape


def case_depth_to_space(in_shape, block):
    t = TflBuilder()
    x = t.tensor(in_shape)
    n, h, w, c = in_shape
    y = t.tensor((n, h * block, w * block, c // (block * block)))
    t.op(Op.DEPTH_TO_SPACE, [x], [y],
         (Opt.DepthToSpaceOptions, "DepthToSpaceOptions", dict(BlockSize=block)))
    return t.build([x], [y]), in_shape


def case_concat_channels(act=0):
    # Rank 4 on the channel axis (given as -1), the second input computed.
    t = TflBuilder()
    shape = (1, 5, 6, 3)
    x = t.tensor(shape)
    r = t.tensor((1, 5, 6, 2))
    t.op(Op.CONV_2D, [x, t.weights(rand(2, 1, 1, 3)), t.weights(rand(2))], [r], conv_opts(SAME))
    y = t.tensor((1, 5, 6, 5))
    t.op(Op.CONCATENATION, [x, r], [y], (Opt.ConcatenationOptions, "ConcatenationOptions",
                                          dict(Axis=-1, FusedActivationFunction=act)))
    return t.build([x], [y]), shape


def case_concat_rank3():
    # The detector's head: per-scale [1, N_i, C] tensors (made by RESHAPE) joined on axis 1.
    t = TflBuilder()
    shape = (1, 4, 4, 6)
    x = t.tensor(shape)
    parts = []
    for k, (h, w) in enumerate([(4, 4), (2, 2)]):
        src = x
        if k:
            src = t.tensor((1, 2, 2, 6))
            t.op(Op.MAX_POOL_2D, [x], [src], pool_opts(VALID, (2, 2), (2, 2)))
        s = t.tensor((3,), np.int32, [1, h * w * 2, 3])
        r = t.tensor((1, h * w * 2, 3))
        t.op(Op.RESHAPE, [src, s], [r], (Opt.ReshapeOptions, "ReshapeOptions", {}))
        parts.append(r)
    y = t.tensor((1, 40, 3))
    t.op(Op.CONCATENATION, parts, [y], (Opt.ConcatenationOptions, "ConcatenationOptions",
                                        dict(Axis=1, FusedActivationFunction=0)))
    return t.build([x], [y]), shape


def case_sparse_conv(k, formats, index_types):
    """CONV_2D whose fp16 weights are stored sparse (DENSIFY), with zero rows / blocks."""
    t = TflBuilder()
    shape = (1, 6, 7, 9)
    w = rand(8, k, k, 9, scale=0.3)
    w[RNG.random(w.shape) < 0.6] = 0.0
    w[3] = 0.0                                   # an output channel with no weights at all
    w[5, :, :, 2:7] = 0.0
    x = t.tensor(shape)
    y = t.tensor((1, 6, 7, 8))
    t.op(Op.CONV_2D, [x, t.sparse_weights(w, formats, index_types), t.weights(rand(8))], [y],
         conv_opts(SAME))
    return t.build([x], [y]), shape


SYNTHETIC_CASES = {
    # SAME with stride 2: an even size gets asymmetric padding (the extra pixel at the
    # end, as in the selfie models), an odd one symmetric padding.
    "conv_same_s2_relu6": lambda: case_conv((1, 8, 9, 3), (3, 3), 5, SAME, (2, 2), RELU6),
    "conv_same_k5_s2x1_relu": lambda: case_conv((1, 8, 11, 4), (5, 3), 6, SAME, (2, 1), RELU),
    "conv_valid_dilated": lambda: case_conv((1, 10, 9, 2), (3, 3), 3, VALID, (1, 1), 0, (2, 2)),
    "conv_1x1": lambda: case_conv((1, 5, 6, 8), (1, 1), 4, SAME, (1, 1), 0),
    "depthwise_same_s2_mult2_relu": lambda: case_depthwise((1, 10, 7, 3), (3, 3), 2, SAME, (2, 2), RELU),
    "depthwise_k5_same": lambda: case_depthwise((1, 8, 8, 4), (5, 5), 1, SAME, (1, 1), 0),
    "avgpool_same_s2": lambda: case_pool(Op.AVERAGE_POOL_2D, (1, 8, 9, 3), (3, 3), (2, 2), SAME),
    "avgpool_valid_2x2": lambda: case_pool(Op.AVERAGE_POOL_2D, (1, 8, 6, 2), (2, 2), (2, 2), VALID),
    "maxpool_same_s2": lambda: case_pool(Op.MAX_POOL_2D, (1, 8, 9, 3), (3, 3), (2, 2), SAME),
    "maxpool_valid": lambda: case_pool(Op.MAX_POOL_2D, (1, 8, 8, 2), (2, 2), (2, 2), VALID),
    "mean_hw_keep": lambda: case_mean((1, 6, 10, 4), [1, 2], True),
    "mean_hw_drop": lambda: case_mean((1, 6, 10, 4), [1, 2], False),
    "mean_c_drop": lambda: case_mean((1, 6, 10, 4), [3], False),
    "resize_half_pixel": lambda: case_resize((1, 5, 7, 3), (11, 13), False, True),
    "resize_align_corners": lambda: case_resize((1, 5, 7, 3), (11, 13), True, False),
    "resize_asymmetric": lambda: case_resize((1, 5, 7, 3), (11, 13), False, False),
    "resize_half_pixel_x2": lambda: case_resize((1, 9, 16, 2), (18, 32), False, True),
    "pad": lambda: case_pad((1, 5, 6, 3), [[0, 0], [1, 2], [3, 0], [0, 1]]),
    "reshape_4d_to_4d": lambda: case_reshape((1, 4, 6, 8), (1, 6, 4, 8)),
    "reshape_4d_to_2d": lambda: case_reshape((1, 4, 6, 8), (1, 192)),
    "elementwise_se_block": case_elementwise,
    "transpose_conv_k2_s2_same": lambda: case_transpose_conv((1, 6, 8, 5), (2, 2), 1, (2, 2), 1, (12, 16)),
    "transpose_conv_k3_s2_same": lambda: case_transpose_conv((1, 6, 8, 4), (3, 3), 3, (2, 2), 1, (12, 16)),
    "transpose_conv_k4_s2_same": lambda: case_transpose_conv((1, 6, 8, 4), (4, 4), 2, (2, 2), 1, (12, 16)),
    # Different strides per axis: checks that the options are {padding, stride_w, stride_h}.
    "transpose_conv_k3_s1x2_same": lambda: case_transpose_conv((1, 6, 8, 4), (3, 3), 2, (1, 2), 1, (6, 16)),
    "transpose_conv_k3_s2_valid": lambda: case_transpose_conv((1, 5, 7, 4), (3, 3), 2, (2, 2), 2, (11, 15)),
    # The pose detector's operators: DEPTH_TO_SPACE, CONCATENATION, sparse weights (DENSIFY).
    "depth_to_space_b2": lambda: case_depth_to_space((1, 3, 5, 12), 2),
    "concat_channels": case_concat_channels,
    "concat_rank3_axis1": case_concat_rank3,
    # As in the detector: 1x1 filters, the input-channel dimension CSR with uint8 indices.
    "sparse_conv_1x1_csr_last": lambda: case_sparse_conv(1, ["dense"] * 3 + ["csr"], [0, 0, 0, 3]),
    "sparse_conv_3x3_csr_two_levels": lambda: case_sparse_conv(
        3, ["csr", "dense", "dense", "csr"], [1, 0, 0, 2]),
}


@pytest.mark.parametrize("case", list(SYNTHETIC_CASES))
def test_synthetic_op_parity(case):
    buf, in_shape = SYNTHETIC_CASES[case]()
    x = rand(*in_shape)
    ref = run_tflite(buf, x)
    model = m2o.convert_tflite(buf, ["x"], ["y"])
    got = ort_session(model).run(["y"], {"x": to_nchw(x)})[0]
    assert got.shape == to_nchw(ref).shape
    np.testing.assert_allclose(got, to_nchw(ref), rtol=0, atol=1e-4, err_msg=case)


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------

def test_unknown_op_code_is_refused():
    t = TflBuilder()
    x, y = t.tensor((1, 4, 4, 1)), t.tensor((1, 4, 4, 1))
    t.op(Op.RELU, [x], [y])
    conv = m2o.Converter(m2o.TflGraph(t.build([x], [y])))
    fake = m2o.TflOp(index=7, code=9999, custom_code="", inputs=[x], outputs=[y])
    with pytest.raises(m2o.UnsupportedOpError, match=r"#7 <unknown builtin operator code 9999>"):
        m2o.translate_op(conv, fake)
    custom = m2o.TflOp(index=3, code=Op.CUSTOM, custom_code="FancyOp", inputs=[x], outputs=[y])
    with pytest.raises(m2o.UnsupportedOpError, match="CUSTOM:FancyOp"):
        m2o.translate_op(conv, custom)


def test_unsupported_builtin_in_model_is_refused():
    t = TflBuilder()
    x, y = t.tensor((1, 4, 4, 2)), t.tensor((1, 4, 4, 2))
    t.op(Op.TANH, [x], [y])
    with pytest.raises(m2o.UnsupportedOpError, match=r"operator #0 TANH .*not supported"):
        m2o.convert_tflite(t.build([x], [y]))


def test_concatenation_with_fused_activation_is_refused():
    # TFLite's kernel rejects it and XNNPACK ignores it: nothing well-defined to translate.
    buf, _ = case_concat_channels(act=RELU6)
    with pytest.raises(m2o.ConversionError, match="CONCATENATION: fused activation"):
        m2o.convert_tflite(buf)


def test_malformed_transpose_conv_options_are_refused():
    buf, _ = case_transpose_conv((1, 4, 4, 2), (2, 2), 1, (2, 2), 1, (8, 8))
    graph = m2o.TflGraph(buf)
    graph.ops[-1].custom_options = graph.ops[-1].custom_options[:8]
    conv = m2o.Converter(graph)
    with pytest.raises(m2o.ConversionError, match="12 bytes"):
        conv.run()
