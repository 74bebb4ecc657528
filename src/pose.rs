//! A second person segmenter: MediaPipe Pose's landmark network (BlazePose GHUM 3D, "full"),
//! which segments the person inside a region of interest that follows the body.
//!
//! The selfie network sees the whole frame at 256×144 and sometimes misses a person outright
//! (a light-haired head over fur, a person over a busy picture). The pose network sees a
//! 256×256 crop centred on the body, rotated upright, and is trained on whole people: it
//! finds them where the selfie network does not (tuning sequences, mask IoU with the truth:
//! 0.92 against 0.75; `results/pose_segmentation.md`). `trimapgen pose=true` averages the two
//! masks ([`crate::trimap::TrimapGenerator`]).
//!
//! The region follows MediaPipe's pose graph: from the landmarks of the previous frame (points
//! 33 and 34, the hips' centre and a point that fixes the body's scale and direction), a square
//! `2·|p34 − p33|·1.25` wide centred on the hips and turned so the body stands upright. Where
//! MediaPipe runs a person detector to find the first region, this searches: while no pose is
//! tracked, each frame tries the next of a few fixed regions over the frame
//! ([`search_regions`]) until the network reports a pose (presence ≥ 0.5), then tracks it. So
//! every frame costs one run of the network, tracked or not (in the GStreamer pipeline on 2
//! cores the trimap stage takes about 13 ms instead of 4 at 640×360).

use std::path::Path;

use crate::frame::RgbaView;
use crate::model::{Dim, Model, ModelError, ModelSpec, TensorSpec};

/// Side of the network's square input, in pixels.
pub const POSE_INPUT: usize = 256;
/// Landmarks the network outputs (33 body points and 6 auxiliary ones), 5 values each.
const LANDMARKS: usize = 39;
/// Presence at and above which the network has found a pose in its region.
pub const PRESENCE_THRESHOLD: f32 = 0.5;
/// The region is this much larger than twice the hips-to-scale-point distance (MediaPipe's
/// `RectTransformationCalculator` scale).
const REGION_SCALE: f32 = 1.25;
/// Smallest region, in frame pixels, that is tracked; a smaller one is searched for again.
const MIN_REGION: f32 = 16.0;
/// The landmarks that place the next frame's region: the hips' centre and the scale point.
const CENTRE_POINT: usize = 33;
const SCALE_POINT: usize = 34;

/// The input and outputs of the converted network (`tools/mediapipe_to_onnx.py`).
pub fn spec() -> ModelSpec {
    let n = POSE_INPUT as i64;
    ModelSpec {
        input: TensorSpec::new(
            "image",
            &[Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(n), Dim::Fixed(n)],
        ),
        extra_inputs: Vec::new(),
        output: TensorSpec::new(
            "mask",
            &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(n), Dim::Fixed(n)],
        ),
        extra_outputs: vec![
            TensorSpec::new(
                "landmarks",
                &[Dim::Fixed(1), Dim::Fixed(LANDMARKS as i64 * 5)],
            ),
            TensorSpec::new("presence", &[Dim::Fixed(1), Dim::Fixed(1)]),
        ],
    }
}

/// A square region of the frame, `size` pixels wide, centred on (`cx`, `cy`) and turned by
/// `rotation` radians; the network's input is this region resampled to 256×256.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub cx: f32,
    pub cy: f32,
    pub size: f32,
    pub rotation: f32,
}

/// A region's mapping between the network's input and the frame, with the rotation's sine
/// and cosine computed once (it is applied to every pixel of the input and of the mask).
#[derive(Debug, Clone, Copy)]
struct Mapping {
    region: Region,
    sin: f32,
    cos: f32,
}

impl Mapping {
    /// Frame coordinates of the point (`u`, `v`) of the network's input (pixels, 0..256).
    fn frame_point(&self, u: f32, v: f32) -> (f32, f32) {
        let (r, s, c) = (&self.region, self.sin, self.cos);
        let (du, dv) = (
            (u / POSE_INPUT as f32 - 0.5) * r.size,
            (v / POSE_INPUT as f32 - 0.5) * r.size,
        );
        (r.cx + du * c - dv * s, r.cy + du * s + dv * c)
    }

    /// The network's input coordinates (pixels, 0..256) of the frame point (`x`, `y`).
    fn input_point(&self, x: f32, y: f32) -> (f32, f32) {
        let (r, s, c) = (&self.region, self.sin, self.cos);
        let (dx, dy) = (x - r.cx, y - r.cy);
        let scale = POSE_INPUT as f32 / r.size;
        (
            (dx * c + dy * s) * scale + POSE_INPUT as f32 / 2.0,
            (-dx * s + dy * c) * scale + POSE_INPUT as f32 / 2.0,
        )
    }
}

impl Region {
    fn mapping(self) -> Mapping {
        let (sin, cos) = self.rotation.sin_cos();
        Mapping {
            region: self,
            sin,
            cos,
        }
    }

    /// The next frame's region from this region's landmarks (MediaPipe's
    /// `pose_landmarks_to_roi`): centred on the hips' centre, `2·|scale − centre|·1.25` wide,
    /// turned so that the scale point is straight above the centre.
    fn next_from_landmarks(self, landmarks: &[f32]) -> Region {
        let map = self.mapping();
        let point = |k: usize| map.frame_point(landmarks[5 * k], landmarks[5 * k + 1]);
        let (hx, hy) = point(CENTRE_POINT);
        let (sx, sy) = point(SCALE_POINT);
        let size = 2.0 * (sx - hx).hypot(sy - hy) * REGION_SCALE;
        let angle = std::f32::consts::FRAC_PI_2 - (-(sy - hy)).atan2(sx - hx);
        let tau = std::f32::consts::TAU;
        let rotation = angle - tau * ((angle + std::f32::consts::PI) / tau).floor();
        Region {
            cx: hx,
            cy: hy,
            size,
            rotation,
        }
    }
}

/// The regions tried, one per frame, while no pose is tracked in a `width × height` frame:
/// squares as wide as the frame's long side and ¾ of it, centred at a quarter, half and three
/// quarters of the width, at half the height and at the bottom edge (the hips of a person
/// framed from the chest up are below the frame).
pub fn search_regions(width: usize, height: usize) -> Vec<Region> {
    let (w, h) = (width as f32, height as f32);
    let long = w.max(h);
    let mut regions = Vec::new();
    for size in [long, 0.75 * long] {
        for cy in [h, 0.5 * h] {
            for cx in [0.5 * w, 0.25 * w, 0.75 * w] {
                regions.push(Region {
                    cx,
                    cy,
                    size,
                    rotation: 0.0,
                });
            }
        }
    }
    regions
}

/// The taps of a bilinear sample at (`x`, `y`) of a `w × h` grid (pixel centres at `i + 0.5`)
/// that fall inside it: `tap(column, row, horizontal weight, vertical weight)` for each; the
/// taps outside count as zero.
#[inline(always)]
fn bilinear_taps(x: f32, y: f32, w: usize, h: usize, mut tap: impl FnMut(usize, usize, f32, f32)) {
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (ax, ay) = (fx - x0, fy - y0);
    for (dy, wy) in [(0, 1.0 - ay), (1, ay)] {
        for (dx, wx) in [(0, 1.0 - ax), (1, ax)] {
            let (xi, yi) = (x0 as i64 + dx, y0 as i64 + dy);
            if xi >= 0 && yi >= 0 && (xi as usize) < w && (yi as usize) < h {
                tap(xi as usize, yi as usize, wx, wy);
            }
        }
    }
}

/// Bilinear sample of the `w × h` plane `plane` at (`x`, `y`) (pixel centres at `i + 0.5`),
/// zero outside it.
fn sample_zero_outside(plane: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let mut v = 0.0;
    bilinear_taps(x, y, w, h, |xi, yi, wx, wy| {
        v += plane[yi * w + xi] * wx * wy
    });
    v
}

/// Runs the pose network on frames, tracking the person's region; buffers are reused.
#[derive(Debug)]
pub struct PoseSegmenter {
    model: Model,
    /// The region resampled, planar RGB 0..1, 3 × 256 × 256.
    input: Vec<f32>,
    /// The network's person mask over its region, 256 × 256.
    region_mask: Vec<f32>,
    landmarks: Vec<f32>,
    presence: [f32; 1],
    /// The region of the next frame while a pose is tracked.
    tracked: Option<Region>,
    /// The search regions of the last frame size, and the next one to try while none is
    /// tracked.
    search: Vec<Region>,
    search_size: (usize, usize),
    next_search: usize,
    /// The mask in frame space at the caller's resolution.
    mask: Vec<f32>,
}

impl PoseSegmenter {
    /// Loads and checks the network at `path` with `threads` intra-op threads (0 = the
    /// process-wide pool).
    pub fn load(path: &Path, threads: usize) -> Result<Self, ModelError> {
        let n = POSE_INPUT * POSE_INPUT;
        Ok(Self {
            model: Model::load(path, &spec(), threads)?,
            input: vec![0.0; 3 * n],
            region_mask: vec![0.0; n],
            landmarks: vec![0.0; LANDMARKS * 5],
            presence: [0.0],
            tracked: None,
            search: Vec::new(),
            search_size: (0, 0),
            next_search: 0,
            mask: Vec::new(),
        })
    }

    pub fn model_path(&self) -> &Path {
        self.model.path()
    }

    /// Forgets the tracked region (flush, seek, caps change): the next frame searches again.
    pub fn reset(&mut self) {
        self.tracked = None;
        self.next_search = 0;
    }

    /// The region the next frame will use while a pose is tracked.
    pub fn tracked(&self) -> Option<Region> {
        self.tracked
    }

    /// Runs the network on `frame` in the tracked region (or the next search region) and
    /// returns the person mask over the whole frame at `mw × mh` (0 outside the region), or
    /// `None` if the network found no pose there.
    pub fn run(
        &mut self,
        frame: &RgbaView<'_>,
        (mw, mh): (usize, usize),
    ) -> Result<Option<&[f32]>, ModelError> {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        let region = match self.tracked {
            Some(r) => r,
            None => {
                if self.search_size != (width, height) {
                    self.search = search_regions(width, height);
                    self.search_size = (width, height);
                }
                let r = self.search[self.next_search % self.search.len()];
                self.next_search = (self.next_search + 1) % self.search.len();
                r
            }
        };
        self.load_region(frame, &region);
        let n = POSE_INPUT;
        let mut outputs: [&mut [f32]; 3] = [
            &mut self.region_mask,
            &mut self.landmarks,
            &mut self.presence,
        ];
        self.model
            .run_outputs(&self.input, &[1, 3, n, n], &mut outputs)?;
        if self.presence[0] < PRESENCE_THRESHOLD {
            self.tracked = None;
            return Ok(None);
        }
        // A degenerate next region (landmarks on top of each other) is a lost pose: search.
        let next = region.next_from_landmarks(&self.landmarks);
        self.tracked = (next.size.is_finite() && next.size >= MIN_REGION).then_some(next);
        self.next_search = 0;
        self.mask.resize(mw * mh, 0.0);
        let (sx, sy) = (width as f32 / mw as f32, height as f32 / mh as f32);
        let map = region.mapping();
        for (j, row) in self.mask.chunks_exact_mut(mw).enumerate() {
            for (i, m) in row.iter_mut().enumerate() {
                let (u, v) = map.input_point((i as f32 + 0.5) * sx, (j as f32 + 0.5) * sy);
                *m = sample_zero_outside(&self.region_mask, n, n, u, v);
            }
        }
        Ok(Some(&self.mask))
    }

    /// Resamples `region` of `frame` (bilinear, black outside the frame) into `input`.
    fn load_region(&mut self, frame: &RgbaView<'_>, region: &Region) {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        let n = POSE_INPUT;
        let plane = n * n;
        let map = region.mapping();
        for v in 0..n {
            for u in 0..n {
                let (x, y) = map.frame_point(u as f32 + 0.5, v as f32 + 0.5);
                let mut rgb = [0.0f32; 3];
                bilinear_taps(x, y, width, height, |xi, yi, wx, wy| {
                    for (c, acc) in rgb.iter_mut().enumerate() {
                        *acc += frame[[yi, xi, c]] as f32 * wx * wy;
                    }
                });
                let k = v * n + u;
                for (c, value) in rgb.iter().enumerate() {
                    self.input[c * plane + k] = value * (1.0 / 255.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_maps_there_and_back() {
        let r = Region {
            cx: 300.0,
            cy: 200.0,
            size: 400.0,
            rotation: 0.3,
        };
        let map = r.mapping();
        let (x, y) = map.frame_point(40.0, 200.0);
        let (u, v) = map.input_point(x, y);
        assert!(
            (u - 40.0).abs() < 1e-3 && (v - 200.0).abs() < 1e-3,
            "{u} {v}"
        );
        // The input's centre is the region's centre; its corners are `size/√2` away.
        assert_eq!(map.frame_point(128.0, 128.0), (300.0, 200.0));
        let (cx, cy) = map.frame_point(0.0, 0.0);
        let d = (cx - 300.0).hypot(cy - 200.0);
        assert!((d - 400.0 / 2f32.sqrt()).abs() < 1e-2, "{d}");
    }

    #[test]
    fn next_region_stands_the_body_upright_around_the_hips() {
        let r = Region {
            cx: 320.0,
            cy: 180.0,
            size: 256.0,
            rotation: 0.0,
        };
        // Input pixels are frame pixels here (size 256 at rotation 0, offset 192, 52).
        let mut lm = vec![0.0; LANDMARKS * 5];
        // Hips' centre at input (128, 200), scale point 100 px straight above it.
        lm[5 * CENTRE_POINT] = 128.0;
        lm[5 * CENTRE_POINT + 1] = 200.0;
        lm[5 * SCALE_POINT] = 128.0;
        lm[5 * SCALE_POINT + 1] = 100.0;
        let next = r.next_from_landmarks(&lm);
        assert!((next.cx - 320.0).abs() < 1e-3 && (next.cy - 252.0).abs() < 1e-3);
        assert!((next.size - 250.0).abs() < 1e-3, "{}", next.size);
        assert!(next.rotation.abs() < 1e-6, "{}", next.rotation);
        // The scale point to the right of the hips: the body lies on its side, turned by 90°.
        lm[5 * SCALE_POINT] = 228.0;
        lm[5 * SCALE_POINT + 1] = 200.0;
        let turned = r.next_from_landmarks(&lm);
        assert!(
            (turned.rotation - std::f32::consts::FRAC_PI_2).abs() < 1e-5,
            "{}",
            turned.rotation
        );
    }

    #[test]
    fn search_covers_the_frame_and_sampling_is_zero_outside() {
        let regions = search_regions(640, 360);
        assert_eq!(regions.len(), 12);
        assert!(regions.iter().all(|r| r.size >= 480.0 && r.rotation == 0.0));
        assert!(regions.iter().any(|r| r.cx < 200.0) && regions.iter().any(|r| r.cx > 440.0));
        let plane = vec![1.0; 4];
        assert_eq!(sample_zero_outside(&plane, 2, 2, 1.0, 1.0), 1.0);
        assert_eq!(sample_zero_outside(&plane, 2, 2, -3.0, 1.0), 0.0);
        assert!((sample_zero_outside(&plane, 2, 2, 0.0, 1.0) - 0.5).abs() < 1e-6);
    }
}
