//! The trimap stage on frames: the selfie network (and MediaPipe Pose) segment the person, the
//! masks are mixed, smoothed over time, upsampled, and turned into the trimap by the band
//! builder.

use std::path::Path;

use crate::frame::{RgbaView, RgbaViewMut, write_alpha};
use crate::model::ModelError;
use crate::pose::{PoseOutcome, PoseSegmenter};
use crate::resize::PlaneResizer;
use crate::segment::PersonSegmenter;
use crate::temporal::MaskHistory;

use super::{
    AlphaOutput, DEFAULT_FLIP_AVERAGE, MAX_BAND_BIAS, POSE_REMOVE_WEIGHT, POSE_WEIGHT,
    TrimapBuilder, TrimapSettings, UNKNOWN,
};

/// The selfie mask `selfie` mixed with the pose mask `pose` of weight `weight` (0..1): it adds
/// person only as far as its `reach` (0..1) allows, and takes it away anywhere in its region.
fn fuse(selfie: f32, pose: f32, weight: f32, reach: f32) -> f32 {
    let k = if pose > selfie {
        POSE_WEIGHT * reach
    } else {
        POSE_REMOVE_WEIGHT
    };
    selfie + weight * k * (pose - selfie)
}

/// The trimap stage on frames: segmentation, temporal smoothing, upsampling, trimap.
#[derive(Debug)]
pub struct TrimapGenerator {
    segmenter: PersonSegmenter,
    history: MaskHistory,
    /// The untrusted pixels at the trimap's resolution.
    untrusted: Vec<u8>,
    upsampler: PlaneResizer,
    mask: Vec<f32>,
    builder: TrimapBuilder,
    /// The trimap at reduced resolution (large frames).
    small: Vec<u8>,
    nearest: NearestUpsampler,
    alpha: Vec<u8>,
    /// Resolution of the mask in `history` (the network's, or a given mask's).
    mask_size: (usize, usize),
    /// The pose network, once loaded ([`load_pose`](Self::load_pose)).
    pose: Option<PoseSegmenter>,
    /// The selfie and pose masks averaged, at the selfie network's resolution.
    fused: Vec<f32>,
    /// Whether the pose network found a person in the last frame.
    pose_found: bool,
    /// Follows the person between pose runs: a held pose mask is moved by as much as the
    /// person's pixels have moved since it was made ([`PersonTracker`]).
    tracker: PersonTracker,
    /// Follows the person from frame to frame: the mask history is moved with them before
    /// the new mask is mixed in, so it mixes each pixel with where the person was.
    motion: PersonTracker,
    /// The segmenter's input as luma (`mw × mh`).
    luma: Vec<f32>,
}

impl TrimapGenerator {
    /// Loads the segmentation model at `model` with `threads` intra-op threads.
    pub fn load(model: &Path, threads: usize) -> Result<Self, ModelError> {
        Ok(Self::new(PersonSegmenter::load(model, threads)?))
    }

    pub fn new(mut segmenter: PersonSegmenter) -> Self {
        segmenter.set_flip_average(DEFAULT_FLIP_AVERAGE);
        Self {
            segmenter,
            history: MaskHistory::new(),
            untrusted: Vec::new(),
            upsampler: PlaneResizer::new(),
            mask: Vec::new(),
            builder: TrimapBuilder::new(),
            small: Vec::new(),
            nearest: NearestUpsampler::default(),
            alpha: Vec::new(),
            mask_size: (0, 0),
            pose: None,
            fused: Vec::new(),
            pose_found: false,
            tracker: PersonTracker::default(),
            motion: PersonTracker::default(),
            luma: Vec::new(),
        }
    }

    /// Loads the pose landmark network and the person detector ([`crate::pose`]) for
    /// [`TrimapSettings::pose`].
    pub fn load_pose(
        &mut self,
        landmark: &Path,
        detector: &Path,
        threads: usize,
    ) -> Result<(), ModelError> {
        self.pose = Some(PoseSegmenter::load(landmark, detector, threads)?);
        Ok(())
    }

    /// Loads the shipped pose models ([`crate::paths::default_pose_model`],
    /// [`crate::paths::default_pose_detector_model`]).
    pub fn load_default_pose(&mut self, threads: usize) -> Result<(), ModelError> {
        self.load_pose(
            &crate::paths::default_pose_model(),
            &crate::paths::default_pose_detector_model(),
            threads,
        )
    }

    /// Whether the last frame's mask was mixed with a confirmed pose mask.
    pub fn pose_found(&self) -> bool {
        self.pose_found
    }

    /// Shifts the pose networks' cadence ([`PoseSegmenter::set_phase`]); call it after
    /// [`load_pose`](Self::load_pose) (without the pose networks it does nothing).
    pub fn set_pose_phase(&mut self, phase: usize) {
        if let Some(p) = &mut self.pose {
            p.set_phase(phase);
        }
    }

    /// The pose segmenter, once loaded.
    pub fn pose_mut(&mut self) -> Option<&mut PoseSegmenter> {
        self.pose.as_mut()
    }

    pub fn segmenter(&self) -> &PersonSegmenter {
        &self.segmenter
    }

    /// Forgets the temporal history (after a seek, a flush or a caps change).
    pub fn reset(&mut self) {
        self.history.reset();
        self.motion.clear();
        self.tracker.clear();
        if let Some(p) = &mut self.pose {
            p.reset();
        }
    }

    /// Runs the network and the uncertainty-aware temporal mixing, the history moved with the
    /// person first ([`PersonTracker`]); the mask stays at the network's resolution in
    /// `self.history`.
    /// With `pose` (and the pose networks loaded), the selfie mask is mixed with the pose
    /// network's where that confirms a person ([`fuse`], with the pose mask's weight plane: 0
    /// outside its region, where the selfie mask alone decides). A pose mask held between
    /// runs (`pose_interval` > 1) is moved by as much as the person has moved since it was
    /// made ([`PersonTracker`]), and so is the region the next run looks in.
    fn smoothed_mask(
        &mut self,
        frame: &RgbaView<'_>,
        smoothing: f32,
        pose: Option<usize>,
    ) -> Result<(), ModelError> {
        let (mw, mh) = self.segmenter.resolution();
        self.segmenter.run(frame)?;
        luma_plane(self.segmenter.input(), &mut self.luma);
        let raw = self.segmenter.mask();
        let mut shift = (0, 0);
        let mut anchored = false;
        let body = match (self.pose.as_mut(), pose) {
            (Some(p), Some(interval)) => {
                let since_anchor = self.tracker.shift(&self.luma, mw, mh);
                let (width, height) = (frame.shape()[1] as f32, frame.shape()[0] as f32);
                p.set_motion(
                    since_anchor.0 as f32 * width / mw as f32,
                    since_anchor.1 as f32 * height / mh as f32,
                );
                if p.update(frame, (mw, mh), interval)? == PoseOutcome::Held {
                    shift = since_anchor;
                } else {
                    anchored = true;
                }
                p.mask()
            }
            _ => None,
        };
        self.pose_found = body.is_some();
        let mask = match body {
            Some(body) => {
                self.fused.clear();
                self.fused.extend(raw.iter().enumerate().map(|(k, &s)| {
                    let (x, y) = ((k % mw) as isize - shift.0, (k / mw) as isize - shift.1);
                    if x < 0 || y < 0 || x >= mw as isize || y >= mh as isize {
                        return s;
                    }
                    let j = y as usize * mw + x as usize;
                    fuse(s, body.mask[j], body.weight[j], body.reach[j])
                }));
                if anchored {
                    self.tracker.anchor(&self.luma, &self.fused, (mw, mh));
                }
                &self.fused
            }
            None => raw,
        };
        let moved = self.motion.shift(&self.luma, mw, mh);
        self.history.shift(moved);
        self.history.update(mask, mw, mh, smoothing);
        self.motion
            .anchor(&self.luma, self.history.mask(), (mw, mh));
        self.mask_size = (mw, mh);
        Ok(())
    }

    /// Marks the untrusted pixels of the mask ([`MaskHistory::untrusted`]) unknown in the
    /// `tw × th` trimap `trimap`.
    fn widen_band(&mut self, trimap_is_small: bool, tw: usize, th: usize) {
        let (mw, mh) = self.mask_size;
        self.untrusted.resize(tw * th, 0);
        self.nearest.run(
            self.history.untrusted(),
            mw,
            mh,
            &mut self.untrusted,
            tw,
            th,
        );
        let trimap = if trimap_is_small {
            &mut self.small
        } else {
            &mut self.alpha
        };
        for (t, &u) in trimap.iter_mut().zip(&self.untrusted) {
            if u != 0 {
                *t = UNKNOWN;
            }
        }
    }

    /// Upsamples the smoothed mask to `width × height` into `self.mask`.
    fn upsample_mask(&mut self, width: usize, height: usize) {
        let (mw, mh) = self.mask_size;
        self.mask.resize(width * height, 0.0);
        self.upsampler
            .run(self.history.mask(), mw, mh, &mut self.mask, width, height);
    }

    /// Computes the (smoothed) coarse person mask of `frame` at the frame's resolution.
    pub fn coarse_mask(
        &mut self,
        frame: &RgbaView<'_>,
        smoothing: f32,
    ) -> Result<&[f32], ModelError> {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        self.smoothed_mask(frame, smoothing, None)?;
        self.upsample_mask(width, height);
        Ok(&self.mask)
    }

    /// Runs the stage on `frame` and writes the trimap (or the soft mask) into its alpha.
    ///
    /// Above [`TRIMAP_MAX_SHORT_SIDE`] the trimap is computed at a reduced resolution and
    /// enlarged by nearest neighbour: the classes stay exact 0/128/255 and the band is wide
    /// there, so its outline moving by a pixel or two costs nothing, while the distance
    /// transform's cost drops with the square of the factor (4× at 360p, 36× at 1080p).
    pub fn process(
        &mut self,
        frame: &mut RgbaViewMut<'_>,
        settings: &TrimapSettings,
        output: AlphaOutput,
    ) -> Result<(), ModelError> {
        self.segmenter.set_flip_average(settings.flip_average);
        let pose = settings.pose.then_some(settings.pose_interval);
        self.smoothed_mask(&frame.view(), settings.smoothing, pose)?;
        self.write_output(frame, settings, output);
        Ok(())
    }

    /// [`process`](Self::process) with a person mask given instead of the network's: `mask`
    /// (`mw × mh`, probabilities 0..1, any resolution) goes through the same temporal mixing,
    /// upsampling and band as the network's would. `eval` feeds it the ground truth reduced
    /// to the network's resolution (the `oracle-mask` rows: what the pipeline makes of a
    /// perfect segmenter).
    ///
    /// # Panics
    /// If `mask` is not `mw × mh` or either is 0.
    pub fn process_with_mask(
        &mut self,
        frame: &mut RgbaViewMut<'_>,
        mask: &[f32],
        (mw, mh): (usize, usize),
        settings: &TrimapSettings,
        output: AlphaOutput,
    ) {
        assert!(
            mw > 0 && mh > 0 && mask.len() == mw * mh,
            "mask is not {mw}×{mh}"
        );
        self.history.update(mask, mw, mh, settings.smoothing);
        self.mask_size = (mw, mh);
        self.write_output(frame, settings, output);
    }

    /// The stage's output from the mask in `history` (the trimap, or the soft mask) into
    /// `frame`'s alpha.
    fn write_output(
        &mut self,
        frame: &mut RgbaViewMut<'_>,
        settings: &TrimapSettings,
        output: AlphaOutput,
    ) {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        self.alpha.resize(width * height, 0);
        match output {
            AlphaOutput::Mask => {
                self.upsample_mask(width, height);
                for (a, &m) in self.alpha.iter_mut().zip(&self.mask) {
                    *a = (m.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
                }
            }
            AlphaOutput::Trimap => {
                let scale = (TRIMAP_MAX_SHORT_SIDE as f32 / width.min(height) as f32).min(1.0);
                let tw = ((width as f32 * scale).round() as usize).max(1);
                let th = ((height as f32 * scale).round() as usize).max(1);
                self.upsample_mask(tw, th);
                let radius = settings.band.radius_px(width, height) * tw as f32 / width as f32;
                let bias = settings.band_bias.clamp(-MAX_BAND_BIAS, MAX_BAND_BIAS);
                let radii = (radius * (1.0 + bias), radius * (1.0 - bias));
                if (tw, th) == (width, height) {
                    self.builder.build_biased(
                        &self.mask,
                        width,
                        height,
                        settings.threshold,
                        radii,
                        &mut self.alpha,
                    );
                    if settings.adaptive_band {
                        self.widen_band(false, tw, th);
                    }
                } else {
                    self.small.resize(tw * th, 0);
                    self.builder.build_biased(
                        &self.mask,
                        tw,
                        th,
                        settings.threshold,
                        radii,
                        &mut self.small,
                    );
                    if settings.adaptive_band {
                        self.widen_band(true, tw, th);
                    }
                    self.nearest
                        .run(&self.small, tw, th, &mut self.alpha, width, height);
                }
            }
        }
        write_alpha(frame, &self.alpha);
    }
}

/// Frames whose shorter side is above this get their trimap computed at reduced resolution.
/// The mask comes from a 256×144 network, so thresholding it finer than this adds no
/// information; the unknown band's outline only moves by a pixel or two.
pub const TRIMAP_MAX_SHORT_SIDE: usize = 180;

/// Nearest-neighbour enlargement of byte planes, keeping its column table between frames.
#[derive(Debug, Default)]
struct NearestUpsampler {
    /// Source column of each destination column, for `(sw, dw)`.
    cols: Vec<u32>,
    size: (usize, usize),
}

impl NearestUpsampler {
    /// Enlarges the `sw × sh` plane `src` to `dw × dh` into `dst`. A destination row whose
    /// source row is the previous one's is a copy of it.
    fn run(&mut self, src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize) {
        if self.size != (sw, dw) {
            self.cols.clear();
            self.cols
                .extend((0..dw).map(|x| ((x * 2 + 1) * sw / (2 * dw)).min(sw - 1) as u32));
            self.size = (sw, dw);
        }
        let mut previous = usize::MAX;
        for y in 0..dh {
            let sy = ((y * 2 + 1) * sh / (2 * dh)).min(sh - 1);
            if sy == previous {
                dst.copy_within((y - 1) * dw..y * dw, y * dw);
                continue;
            }
            previous = sy;
            let src_row = &src[sy * sw..(sy + 1) * sw];
            for (v, &c) in dst[y * dw..(y + 1) * dw].iter_mut().zip(&self.cols) {
                *v = src_row[c as usize];
            }
        }
    }
}

/// The planar RGB image `rgb` (`3 × n`, 0..1) as luma into `luma` (`n`).
fn luma_plane(rgb: &[f32], luma: &mut Vec<f32>) {
    let n = rgb.len() / 3;
    let (r, rest) = rgb.split_at(n);
    let (g, b) = rest.split_at(n);
    luma.clear();
    luma.extend(
        r.iter()
            .zip(g)
            .zip(b)
            .map(|((&r, &g), &b)| 0.299 * r + 0.587 * g + 0.114 * b),
    );
}

/// Follows the person between pose runs by their appearance: the person's pixels of the frame
/// the pose mask was made on (the template) are matched against later frames, so a held pose
/// mask moves with the person even where the selfie mask has lost them (it sees nobody over
/// some busy pictures, which is when the pose mask matters most).
#[derive(Debug, Default)]
struct PersonTracker {
    /// The template: position and luma of every other person pixel of the anchor frame, on
    /// every other row.
    template: Vec<(u16, u16, f32)>,
    /// The template's bounding box: `[x0, x1, y0, y1]`, inclusive.
    bounds: [isize; 4],
    /// The anchor's size.
    size: (usize, usize),
}

/// How far (mask pixels, each way) [`PersonTracker::shift`] searches.
const TRACK_REACH: isize = 12;
/// The cost of a template pixel moved out of the frame (a luma difference).
const TRACK_OUTSIDE: f32 = 0.5;

impl PersonTracker {
    /// Forgets the template: [`shift`](Self::shift) gives (0, 0) until the next anchor.
    fn clear(&mut self) {
        self.template.clear();
        self.size = (0, 0);
    }

    /// Makes the template from the `w × h` frame's luma `luma` and its person mask `person`
    /// (> 0.5).
    fn anchor(&mut self, luma: &[f32], person: &[f32], (w, h): (usize, usize)) {
        debug_assert!(luma.len() == w * h && person.len() == w * h);
        debug_assert!(w <= usize::from(u16::MAX) && h <= usize::from(u16::MAX));
        self.size = (w, h);
        self.template.clear();
        self.bounds = [isize::MAX, isize::MIN, isize::MAX, isize::MIN];
        for y in (0..h).step_by(2) {
            for x in (0..w).step_by(2) {
                let k = y * w + x;
                if person[k] > 0.5 {
                    self.template.push((x as u16, y as u16, luma[k]));
                    let b = &mut self.bounds;
                    (b[0], b[1]) = (b[0].min(x as isize), b[1].max(x as isize));
                    (b[2], b[3]) = (b[2].min(y as isize), b[3].max(y as isize));
                }
            }
        }
    }

    /// The sum of absolute luma differences between the template moved by `(dx, dy)` and the
    /// `w × h` plane `luma`, over every `step`-th template pixel.
    fn cost(
        &self,
        luma: &[f32],
        (w, h): (usize, usize),
        (dx, dy): (isize, isize),
        step: usize,
    ) -> f32 {
        let [x0, x1, y0, y1] = self.bounds;
        let inside = x0 + dx >= 0 && y0 + dy >= 0 && x1 + dx < w as isize && y1 + dy < h as isize;
        let points = self.template.iter().step_by(step);
        if inside {
            // The whole template stays in the frame: no bounds to check.
            let offset = dy * w as isize + dx;
            return points
                .map(|&(x, y, v)| {
                    let k = (usize::from(y) * w + usize::from(x)) as isize + offset;
                    (luma[k as usize] - v).abs()
                })
                .sum();
        }
        points
            .map(|&(x, y, v)| {
                let (x, y) = (x as isize + dx, y as isize + dy);
                if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                    TRACK_OUTSIDE
                } else {
                    (luma[y as usize * w + x as usize] - v).abs()
                }
            })
            .sum()
    }

    /// The integer shift `d` (mask pixels) that best maps the template onto the `w × h` luma
    /// plane `luma` (`luma(x + d) ≈ template(x)`), by the least absolute difference: every 2
    /// pixels from −[`TRACK_REACH`] to [`TRACK_REACH`] on every 4th template pixel, then ±1
    /// around the best on all of them (about 0.2 ms for a person filling a third of a
    /// 256×144 mask). (0, 0) without a template of that size.
    fn shift(&self, luma: &[f32], w: usize, h: usize) -> (isize, isize) {
        if self.size != (w, h) || self.template.is_empty() {
            return (0, 0);
        }
        let mut best = ((0isize, 0isize), self.cost(luma, (w, h), (0, 0), 4));
        for dy in (-TRACK_REACH..=TRACK_REACH).step_by(2) {
            for dx in (-TRACK_REACH..=TRACK_REACH).step_by(2) {
                let c = self.cost(luma, (w, h), (dx, dy), 4);
                if c < best.1 {
                    best = ((dx, dy), c);
                }
            }
        }
        let (cx, cy) = best.0;
        let mut fine = ((cx, cy), self.cost(luma, (w, h), (cx, cy), 1));
        for dy in cy - 1..=cy + 1 {
            for dx in cx - 1..=cx + 1 {
                let c = self.cost(luma, (w, h), (dx, dy), 1);
                if c < fine.1 {
                    fine = ((dx, dy), c);
                }
            }
        }
        fine.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic texture (hashed pixel noise, 0..1).
    fn noise(x: isize, y: isize, seed: u32) -> f32 {
        let mut v =
            (x as u32).wrapping_mul(73_856_093) ^ (y as u32).wrapping_mul(19_349_663) ^ seed;
        v ^= v >> 13;
        v = v.wrapping_mul(0x5bd1_e995);
        v ^= v >> 15;
        (v & 0xffff) as f32 / 65_535.0
    }

    #[test]
    fn the_tracker_follows_the_person_over_a_busy_background() {
        let (w, h) = (256usize, 144usize);
        let inside = |x: isize, y: isize, cx: isize, cy: isize| {
            ((x - cx) as f32 / 30.0).powi(2) + ((y - cy) as f32 / 45.0).powi(2) < 1.0
        };
        // A textured person at (cx, cy) over a static textured background: the person's own
        // texture moves with them, the background's does not.
        let scene = |cx: isize, cy: isize| -> (Vec<f32>, Vec<f32>) {
            let mut luma = vec![0.0; w * h];
            let mut person = vec![0.0; w * h];
            for y in 0..h as isize {
                for x in 0..w as isize {
                    let k = y as usize * w + x as usize;
                    if inside(x, y, cx, cy) {
                        luma[k] = 0.3 + 0.4 * noise(x - cx, y - cy, 1);
                        person[k] = 1.0;
                    } else {
                        luma[k] = noise(x, y, 2);
                    }
                }
            }
            (luma, person)
        };
        let mut tracker = PersonTracker::default();
        assert_eq!(
            tracker.shift(&scene(120, 80).0, w, h),
            (0, 0),
            "no template"
        );
        let (luma, person) = scene(120, 80);
        tracker.anchor(&luma, &person, (w, h));
        for (dx, dy) in [(0isize, 0isize), (5, -3), (-11, 7), (1, 1), (12, -12)] {
            // Only the image moves: the person mask passed later plays no part.
            let (after, _) = scene(120 + dx, 80 + dy);
            assert_eq!(tracker.shift(&after, w, h), (dx, dy));
        }
        // Another size has no template.
        assert_eq!(tracker.shift(&luma[..128 * 72], 128, 72), (0, 0));
    }

    #[test]
    fn the_pose_mask_adds_person_only_within_its_reach() {
        // More person than the selfie mask: added with POSE_WEIGHT where in reach, not at all
        // out of it (a flash of the pose mask far from the body).
        let added = fuse(0.1, 0.9, 1.0, 1.0);
        assert!((added - (0.1 + POSE_WEIGHT * 0.8)).abs() < 1e-6, "{added}");
        assert_eq!(fuse(0.1, 0.9, 1.0, 0.0), 0.1);
        let half = fuse(0.1, 0.9, 1.0, 0.5);
        assert!(half > 0.1 && half < added, "{half}");
        // Less person: taken away anywhere in the region, whatever the reach.
        let removed = fuse(0.9, 0.1, 1.0, 0.0);
        assert!(
            (removed - (0.9 - POSE_REMOVE_WEIGHT * 0.8)).abs() < 1e-6,
            "{removed}"
        );
        assert_eq!(fuse(0.9, 0.1, 1.0, 1.0), removed);
        // Outside the region (weight 0) the selfie mask alone decides.
        assert_eq!(fuse(0.1, 0.9, 0.0, 1.0), 0.1);
        assert_eq!(fuse(0.9, 0.1, 0.0, 1.0), 0.9);
    }

    #[test]
    fn luma_is_the_weighted_sum_of_the_planes() {
        let rgb = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let mut luma = Vec::new();
        luma_plane(&rgb, &mut luma);
        assert_eq!(luma.len(), 2);
        assert!((luma[0] - 0.299).abs() < 1e-6 && (luma[1] - 0.587).abs() < 1e-6);
    }

    #[test]
    fn nearest_upsample_keeps_values_and_positions() {
        let src = [0u8, 128, 255, 7];
        let mut dst = vec![0u8; 4 * 6];
        // One upsampler for all sizes: its column table follows the size.
        let mut up = NearestUpsampler::default();
        up.run(&src, 2, 2, &mut dst, 4, 6);
        for y in 0..6 {
            let want = if y < 3 {
                [0, 0, 128, 128]
            } else {
                [255, 255, 7, 7]
            };
            assert_eq!(&dst[4 * y..4 * y + 4], &want, "row {y}");
        }
        let mut same = vec![0u8; 4];
        up.run(&src, 2, 2, &mut same, 2, 2);
        assert_eq!(same, src);
        let mut wide = vec![0u8; 3];
        up.run(&src, 2, 2, &mut wide, 3, 1);
        assert_eq!(wide, [255, 7, 7]);
    }
}
