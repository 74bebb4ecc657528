//! MediaPipe's BlazePose person detector (`pose_detection.tflite` from the `mediapipe` wheel,
//! converted by `tools/mediapipe_to_onnx.py convert_detector_model`): finds every person in
//! the whole frame and gives, for each, the two points MediaPipe's pose graph turns into the
//! landmark network's region (the hips' centre and a point that fixes the body's size and
//! direction).
//!
//! The decoding follows `mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt`: the frame
//! letterboxed into 224×224 with values in [−1, 1]; 2254 SSD anchors (five layers at strides
//! 8, 16, 32, 32, 32, two anchors per layer and cell, fixed size); per anchor 12 regressors —
//! box centre and size, then four keypoints — in input pixels relative to the anchor's centre;
//! the score a logit clipped to ±100; weighted non-maximum suppression at IoU 0.3.

use std::path::Path;

use super::region::{Region, load_region};
use crate::frame::RgbaView;
use crate::model::{Dim, Model, ModelError, ModelSpec, TensorSpec};

/// Side of the detector's square input, in pixels.
pub const DETECTOR_INPUT: usize = 224;
/// Anchors of the detector's SSD head.
pub const ANCHORS: usize = 2254;
/// Regressors per anchor: box centre x, y, width, height, then keypoints 0..3 as x, y.
const COORDS: usize = 12;
/// Score at and above which a detection counts (after the sigmoid).
pub const DETECTION_THRESHOLD: f32 = 0.5;
/// Detections overlapping more than this (IoU) are merged (MediaPipe's weighted NMS).
const NMS_IOU: f32 = 0.3;
/// Logits are clipped to ±this before the sigmoid (`score_clipping_thresh`).
const SCORE_CLIP: f32 = 100.0;
/// Squares along a frame's long side that [`PoseDetector::detect_closer`] looks in.
pub const ZOOM_SQUARES: usize = 3;

/// The input and outputs of the converted detector.
pub fn spec() -> ModelSpec {
    let n = DETECTOR_INPUT as i64;
    ModelSpec {
        input: TensorSpec::new(
            "image",
            &[Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(n), Dim::Fixed(n)],
        ),
        extra_inputs: Vec::new(),
        output: TensorSpec::new(
            "boxes",
            &[
                Dim::Fixed(1),
                Dim::Fixed(ANCHORS as i64),
                Dim::Fixed(COORDS as i64),
            ],
        ),
        extra_outputs: vec![TensorSpec::new(
            "scores",
            &[Dim::Fixed(1), Dim::Fixed(ANCHORS as i64), Dim::Fixed(1)],
        )],
    }
}

/// The anchors' centres in input units (0..1), in the order of the network's outputs
/// (MediaPipe's `SsdAnchorsCalculator` with `fixed_anchor_size`: every anchor is 1×1).
pub fn anchors() -> Vec<(f32, f32)> {
    // (stride, anchors per cell): layers of equal stride share a grid, two anchors per layer
    // (aspect ratio 1 and the interpolated scale).
    let mut out = Vec::with_capacity(ANCHORS);
    for (stride, per_cell) in [(8, 2), (16, 2), (32, 6)] {
        let cells = DETECTOR_INPUT.div_ceil(stride);
        for y in 0..cells {
            for x in 0..cells {
                let centre = (
                    (x as f32 + 0.5) / cells as f32,
                    (y as f32 + 0.5) / cells as f32,
                );
                out.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    out
}

/// One person found in a frame, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Probability that this is a person (0..1).
    pub score: f32,
    /// The box's centre and size as the detector's axis-aligned square input sees it
    /// (frame pixels; the box is the face's, as in MediaPipe).
    pub centre: (f32, f32),
    pub size: (f32, f32),
    /// Keypoint 0: the hips' centre; 1: the full body's size and rotation point; 2: the
    /// shoulders' centre; 3: the upper body's size and rotation point.
    pub keypoints: [(f32, f32); 4],
}

impl Detection {
    /// The landmark network's region for this person (MediaPipe's `pose_detection_to_roi`).
    pub fn region(&self, margin: f32) -> Region {
        Region::aligned(self.keypoints[0], self.keypoints[1], margin)
    }

    fn iou(&self, other: &Detection) -> f32 {
        let span = |d: &Detection, axis: usize| {
            let (c, s) = if axis == 0 {
                (d.centre.0, d.size.0)
            } else {
                (d.centre.1, d.size.1)
            };
            (c - s / 2.0, c + s / 2.0)
        };
        let mut inter = 1.0;
        for axis in 0..2 {
            let (a0, a1) = span(self, axis);
            let (b0, b1) = span(other, axis);
            inter *= (a1.min(b1) - a0.max(b0)).max(0.0);
        }
        let union = self.size.0 * self.size.1 + other.size.0 * other.size.1 - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// Runs the detector on whole frames; buffers are reused.
#[derive(Debug)]
pub struct PoseDetector {
    model: Model,
    anchors: Vec<(f32, f32)>,
    input: Vec<f32>,
    boxes: Vec<f32>,
    scores: Vec<f32>,
    /// Candidates above the threshold, then what weighted NMS leaves of them.
    candidates: Vec<Detection>,
    detections: Vec<Detection>,
}

impl PoseDetector {
    /// Loads and checks the detector at `path` with `threads` intra-op threads (0 = the
    /// process-wide pool).
    pub fn load(path: &Path, threads: usize) -> Result<Self, ModelError> {
        let n = DETECTOR_INPUT * DETECTOR_INPUT;
        Ok(Self {
            model: Model::load(path, &spec(), threads)?,
            anchors: anchors(),
            input: vec![0.0; 3 * n],
            boxes: vec![0.0; ANCHORS * COORDS],
            scores: vec![0.0; ANCHORS],
            candidates: Vec::new(),
            detections: Vec::new(),
        })
    }

    pub fn model_path(&self) -> &Path {
        self.model.path()
    }

    /// Finds the people in `frame`, best first, in frame pixels.
    pub fn detect(&mut self, frame: &RgbaView<'_>) -> Result<&[Detection], ModelError> {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        self.candidates.clear();
        self.look(frame, &Region::letterbox(width, height))?;
        weighted_nms(&mut self.candidates, &mut self.detections);
        Ok(&self.detections)
    }

    /// [`detect`](Self::detect), and when that finds nobody in a frame wider (or taller) than
    /// square, also in [`ZOOM_SQUARES`] squares of the frame's short side, at its two ends and
    /// in its middle: there the detector sees people about 1.8× larger at 16:9, so people too
    /// small for the whole frame's 224×224 letterbox are found. Four detector runs instead of
    /// one; the pose stage uses it on the first frame after a reset (a still, a stream's
    /// start), where nobody is tracked yet.
    pub fn detect_closer(&mut self, frame: &RgbaView<'_>) -> Result<&[Detection], ModelError> {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        if !self.detect(frame)?.is_empty() || width == height {
            return Ok(&self.detections);
        }
        let side = width.min(height) as f32;
        let long = width.max(height) as f32;
        for k in 0..ZOOM_SQUARES {
            let along = side / 2.0 + (long - side) * k as f32 / (ZOOM_SQUARES - 1) as f32;
            let (cx, cy) = if width > height {
                (along, side / 2.0)
            } else {
                (side / 2.0, along)
            };
            let square = Region {
                cx,
                cy,
                size: side,
                rotation: 0.0,
            };
            self.look(frame, &square)?;
        }
        weighted_nms(&mut self.candidates, &mut self.detections);
        Ok(&self.detections)
    }

    /// Finds the people in a `width × height` frame already letterboxed into the detector's
    /// input `input` (planar RGB, 3 × 224 × 224, values −1..1), best first, in frame pixels.
    ///
    /// # Panics
    /// If `input` is not 3 × 224 × 224 values.
    pub fn detect_input(
        &mut self,
        input: &[f32],
        (width, height): (usize, usize),
    ) -> Result<&[Detection], ModelError> {
        self.input.copy_from_slice(input);
        self.candidates.clear();
        self.run_and_decode(&Region::letterbox(width, height))?;
        weighted_nms(&mut self.candidates, &mut self.detections);
        Ok(&self.detections)
    }

    /// Runs the detector on `region` of `frame` (resampled to its square input), adding its
    /// candidates in frame pixels to `self.candidates`.
    fn look(&mut self, frame: &RgbaView<'_>, region: &Region) -> Result<(), ModelError> {
        let scale = (2.0 / 255.0, -1.0);
        load_region(frame, region, DETECTOR_INPUT, scale, &mut self.input);
        self.run_and_decode(region)
    }

    /// Runs the network on `self.input` (`letterbox`, a region of the frame, resampled) and
    /// adds its candidates, in frame pixels, to `self.candidates`.
    fn run_and_decode(&mut self, letterbox: &Region) -> Result<(), ModelError> {
        let n = DETECTOR_INPUT;
        let mut outputs: [&mut [f32]; 2] = [&mut self.boxes, &mut self.scores];
        self.model
            .run_outputs(&self.input, &[1, 3, n, n], &mut outputs)?;
        let map = letterbox.mapping(n);
        let px = n as f32;
        for (k, (&logit, &(ax, ay))) in self.scores.iter().zip(&self.anchors).enumerate() {
            let score = 1.0 / (1.0 + (-logit.clamp(-SCORE_CLIP, SCORE_CLIP)).exp());
            let r = &self.boxes[k * COORDS..(k + 1) * COORDS];
            if score < DETECTION_THRESHOLD || r[2] < 0.0 || r[3] < 0.0 {
                continue;
            }
            // Input pixels of a regressed point: its offset from the anchor's centre.
            let point = |i: usize| map.frame_point(r[i] + ax * px, r[i + 1] + ay * px);
            let scale = letterbox.size / px;
            self.candidates.push(Detection {
                score,
                centre: point(0),
                size: (r[2] * scale, r[3] * scale),
                keypoints: [point(4), point(6), point(8), point(10)],
            });
        }
        Ok(())
    }
}

/// MediaPipe's weighted non-maximum suppression: the best remaining detection absorbs every
/// other one overlapping it by more than [`NMS_IOU`]; its box and keypoints become the
/// score-weighted mean of the group, its score stays. `candidates` is consumed.
fn weighted_nms(candidates: &mut Vec<Detection>, out: &mut Vec<Detection>) {
    out.clear();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    while let Some(&best) = candidates.first() {
        let mut total = 0.0;
        let mut merged = Detection {
            score: best.score,
            centre: (0.0, 0.0),
            size: (0.0, 0.0),
            keypoints: [(0.0, 0.0); 4],
        };
        let add = |acc: &mut (f32, f32), p: (f32, f32), w: f32| {
            acc.0 += p.0 * w;
            acc.1 += p.1 * w;
        };
        candidates.retain(|d| {
            if best.iou(d) <= NMS_IOU {
                return true;
            }
            total += d.score;
            add(&mut merged.centre, d.centre, d.score);
            add(&mut merged.size, d.size, d.score);
            for (m, &k) in merged.keypoints.iter_mut().zip(&d.keypoints) {
                add(m, k, d.score);
            }
            false
        });
        let norm = |p: &mut (f32, f32)| {
            p.0 /= total;
            p.1 /= total;
        };
        norm(&mut merged.centre);
        norm(&mut merged.size);
        merged.keypoints.iter_mut().for_each(norm);
        out.push(merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_match_the_ssd_layout() {
        let a = anchors();
        assert_eq!(a.len(), ANCHORS);
        // The first two share the first 8-pixel cell; the last six the last 32-pixel cell.
        assert_eq!(a[0], (0.5 / 28.0, 0.5 / 28.0));
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], (1.5 / 28.0, 0.5 / 28.0));
        assert_eq!(a[28 * 28 * 2], (0.5 / 14.0, 0.5 / 14.0));
        assert_eq!(a[ANCHORS - 1], (6.5 / 7.0, 6.5 / 7.0));
        assert_eq!(a[ANCHORS - 6], a[ANCHORS - 1]);
    }

    fn det(score: f32, cx: f32, kp: f32) -> Detection {
        Detection {
            score,
            centre: (cx, 50.0),
            size: (20.0, 20.0),
            keypoints: [(kp, kp); 4],
        }
    }

    #[test]
    fn weighted_nms_merges_overlaps_and_keeps_apart() {
        // Two overlapping boxes (IoU 0.67) and one far away.
        let mut c = vec![
            det(0.6, 54.0, 10.0),
            det(0.9, 50.0, 0.0),
            det(0.7, 200.0, 5.0),
        ];
        let mut out = Vec::new();
        weighted_nms(&mut c, &mut out);
        assert_eq!(out.len(), 2);
        assert!(c.is_empty());
        // Best first, its score kept, its box and keypoints the score-weighted mean.
        assert_eq!(out[0].score, 0.9);
        assert!((out[0].centre.0 - (0.9 * 50.0 + 0.6 * 54.0) / 1.5).abs() < 1e-4);
        assert!((out[0].keypoints[2].0 - 0.6 * 10.0 / 1.5).abs() < 1e-4);
        assert_eq!(out[1], det(0.7, 200.0, 5.0));
    }

    #[test]
    fn detection_region_is_the_aligned_square() {
        let mut d = det(0.9, 0.0, 0.0);
        d.keypoints[0] = (300.0, 250.0);
        d.keypoints[1] = (300.0, 150.0);
        let r = d.region(1.25);
        assert_eq!((r.cx, r.cy), (300.0, 250.0));
        assert!((r.size - 250.0).abs() < 1e-3 && r.rotation.abs() < 1e-6);
    }
}
