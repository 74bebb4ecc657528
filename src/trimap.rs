//! The trimap generator: coarse person mask → foreground / unknown / background.
//!
//! The mask is thresholded; every pixel closer than the band radius to the thresholded contour
//! becomes unknown (an exact Euclidean distance transform, so the band is round, not blocky),
//! the rest is definite foreground or background. The band can reach further on one side of
//! the contour than on the other ([`TrimapSettings::band_bias`]; by default further out). An
//! exponential moving average of the mask stops frame-to-frame flicker.

use std::path::Path;

use crate::frame::{RgbaView, RgbaViewMut, write_alpha};
use crate::model::ModelError;
use crate::pose::{PoseOutcome, PoseSegmenter};
use crate::resize::PlaneResizer;
use crate::segment::PersonSegmenter;
use crate::temporal::MaskHistory;

/// Trimap value of definite background.
pub const BACKGROUND: u8 = 0;
/// Trimap value of the unknown band.
pub const UNKNOWN: u8 = 128;
/// Trimap value of definite foreground.
pub const FOREGROUND: u8 = 255;
/// An incoming trimap value at or below this is definite background (downstream stages read
/// trimaps that went through scaling or compression, so not only the exact three values).
pub const KNOWN_BG: u8 = 10;
/// An incoming trimap value at or above this is definite foreground.
pub const KNOWN_FG: u8 = 245;

/// The alpha an incoming trimap value fixes: `Some(0.0)` for background, `Some(1.0)` for
/// foreground, `None` for the unknown band.
#[inline]
pub fn known_alpha(t: u8) -> Option<f32> {
    if t <= KNOWN_BG {
        Some(0.0)
    } else if t >= KNOWN_FG {
        Some(1.0)
    } else {
        None
    }
}

/// Radius of the unknown band around the mask contour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BandWidth {
    /// In pixels of the frame.
    Pixels(u32),
    /// As a fraction of the frame's shorter side (resolution independent).
    Fraction(f32),
}

impl BandWidth {
    /// The radius in pixels for a `width × height` frame.
    pub fn radius_px(self, width: usize, height: usize) -> f32 {
        match self {
            BandWidth::Pixels(p) => p as f32,
            BandWidth::Fraction(f) => f.max(0.0) * width.min(height) as f32,
        }
    }
}

/// Default [`TrimapSettings::threshold`] (the `trimapgen` element's `threshold`).
pub const DEFAULT_THRESHOLD: f32 = 0.5;
/// Default band radius as a fraction of the frame's shorter side (`trimapgen`'s
/// `band-fraction`; its `band-width` is 0 by default, which selects this).
pub const DEFAULT_BAND_FRACTION: f32 = 0.03;
/// Default [`TrimapSettings::band_bias`] (`trimapgen`'s `band-bias`): the band reaches
/// `r·(1 + bias)` outside the thresholded mask and `r·(1 − bias)` inside it. A person mask
/// misses hair and soft edges outside its contour far more than it swallows background inside
/// it, and inside the contour a wide band only gives the colour model room to eat into the
/// person. Chosen on the tuning data (stills 10000+, sequences 100–103, 640×360, default
/// refinement; results/band_bias.md): 0 → full-pipeline stills SAD 3.74, sequences dtSSD 7.83 /
/// SAD 6.11; 0.25 → 3.43, 7.83 / 5.84; 0.5 → 3.14, 7.93 / 5.75 (dtSSD lower on two of the
/// four sequences, higher on the one where the mask misses the person and on one other);
/// 0.75 → 3.38, 8.07 / 5.97. On the built-in clip's hair 0.5 also leaves less of the
/// wall's grey in the matte.
pub const DEFAULT_BAND_BIAS: f32 = 0.5;
/// Largest accepted |band bias| (1 would leave no band on one side).
pub const MAX_BAND_BIAS: f32 = 0.9;

/// Default [`TrimapSettings::smoothing`] (`trimapgen`'s `smoothing`): the weight of the previous
/// mask where the new one is unsure. Chosen on the tuning sequences (moving 100–103, 640×360,
/// shipped student, whole pipeline, `cli/examples`-style probe): 0 → dtSSD 9.92 / whole-image
/// SAD 6.31 per frame, 0.25 → 9.01 / 6.12, 0.5 → 8.43 / 6.04, 0.9 → 8.35 / 6.21.
pub const DEFAULT_SMOOTHING: f32 = 0.5;

/// Whether the band widens where the mask is unsure or changed. Off by default: on the tuning
/// sequences (moving 100–103, 640×360, shipped student, smoothing 0.5) the 66 % wider band,
/// which the current matting net fills worse, raised both dtSSD (8.90 vs 8.43) and
/// whole-image SAD (6.55 vs 6.04 per frame); it is for nets that win back a wide band.
pub const DEFAULT_ADAPTIVE_BAND: bool = false;

/// Whether the mask is averaged with the mirrored frame's mask (two segmentation runs per
/// frame). On by default: on the tuning sequences (moving 100–103, 640×360, temporal student,
/// shipped defaults otherwise) it lowered dtSSD on all four (mean 8.43 → 8.07) and whole-image
/// SAD on the three where the person mask works (mean 3.34 → 3.22 per frame; on the fourth,
/// where the mask misses the person, SAD rose 14.2 → 15.8); cost: one more run of the
/// 256×144 network (about 1–2 ms on 2 cores).
pub const DEFAULT_FLIP_AVERAGE: bool = true;

/// Default [`TrimapSettings::pose`] (`trimapgen`'s `pose`): on. MediaPipe Pose's person
/// segmentation mixed into the selfie mask where it confirms a person
/// (`results/pose_segmentation.md`).
pub const DEFAULT_POSE: bool = true;

/// Default [`TrimapSettings::pose_interval`] (`trimapgen`'s `pose-interval`): the pose path
/// runs every this many frames and its mask is held in between
/// (`results/pose_segmentation.md`).
pub const DEFAULT_POSE_INTERVAL: usize = 3;

/// Weight of the pose network's mask where it finds more person than the selfie network
/// ([`TrimapSettings::pose`]), times the pose mask's weight plane (1 inside its region, 0
/// outside).
pub const POSE_WEIGHT: f32 = 0.7;

/// Weight of the pose network's mask where it finds less person than the selfie network: the
/// pose network mostly fixes the selfie network's misses (heads, limbs, a person over a busy
/// picture), and takes away less readily. Chosen with [`POSE_WEIGHT`] on the tuning data
/// (`results/pose_segmentation.md`).
pub const POSE_REMOVE_WEIGHT: f32 = 0.35;

/// The selfie mask `selfie` mixed with the pose mask `pose` of weight `weight` (0..1).
fn fuse(selfie: f32, pose: f32, weight: f32) -> f32 {
    let k = if pose > selfie {
        POSE_WEIGHT
    } else {
        POSE_REMOVE_WEIGHT
    };
    selfie + weight * k * (pose - selfie)
}

/// Settings of the trimap stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrimapSettings {
    /// Mask probability at and above which a pixel is person.
    pub threshold: f32,
    /// Radius of the unknown band.
    pub band: BandWidth,
    /// Shifts the band outwards (> 0) or inwards (< 0) at equal total width: it reaches
    /// `radius·(1 + bias)` outside the mask's contour and `radius·(1 − bias)` inside it;
    /// clamped to ±[`MAX_BAND_BIAS`].
    pub band_bias: f32,
    /// Weight of the previous frame's mask where the new mask is unsure, 0 (off) ..< 1
    /// (uncertainty-aware mixing, [`crate::temporal`]).
    pub smoothing: f32,
    /// Also put in the unknown band the pixels where the mask is unsure or changed since the
    /// previous frame ([`crate::temporal::MaskHistory::untrusted`]).
    pub adaptive_band: bool,
    /// Average the mask with the mirrored frame's ([`PersonSegmenter::set_flip_average`]).
    pub flip_average: bool,
    /// Average the selfie mask with MediaPipe Pose's person segmentation where the pose
    /// network finds a person ([`crate::pose`]; needs [`TrimapGenerator::load_pose`]).
    pub pose: bool,
    /// Run the pose path every this many frames (≥ 1), holding its mask in between.
    pub pose_interval: usize,
}

impl Default for TrimapSettings {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            band: BandWidth::Fraction(DEFAULT_BAND_FRACTION),
            band_bias: DEFAULT_BAND_BIAS,
            smoothing: DEFAULT_SMOOTHING,
            adaptive_band: DEFAULT_ADAPTIVE_BAND,
            flip_average: DEFAULT_FLIP_AVERAGE,
            pose: DEFAULT_POSE,
            pose_interval: DEFAULT_POSE_INTERVAL,
        }
    }
}

/// What the trimap stage writes into the alpha channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlphaOutput {
    /// 0 background, 128 unknown, 255 foreground.
    #[default]
    Trimap,
    /// The soft coarse mask itself, 0..255.
    Mask,
}

/// Turns a mask into a trimap, keeping its scratch buffers between frames.
#[derive(Debug, Default)]
pub struct TrimapBuilder {
    /// Squared distance to the nearest contour pixel.
    dist: Vec<f32>,
    /// Row scratch of the distance transform.
    line: Vec<f32>,
    /// Per column: rows since the last contour pixel of the column sweeps.
    gap: Vec<f32>,
    vertices: Vec<usize>,
    bounds: Vec<f32>,
}

const FAR: f32 = 1.0e20;

impl TrimapBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the trimap of `mask` (`width × height`, values 0..1) into `out`.
    ///
    /// A pixel is on the contour when it and a 4-neighbour fall on different sides of
    /// `threshold`; pixels whose distance to the nearest contour pixel is below `radius`
    /// are [`UNKNOWN`], the rest [`FOREGROUND`] or [`BACKGROUND`]. `radius` 0 gives a binary
    /// mask.
    pub fn build(
        &mut self,
        mask: &[f32],
        width: usize,
        height: usize,
        threshold: f32,
        radius: f32,
        out: &mut [u8],
    ) {
        self.build_biased(mask, width, height, threshold, (radius, radius), out);
    }

    /// [`build`](Self::build) with different radii on the two sides of the contour:
    /// `(outside, inside)`: background pixels closer than `outside` to the contour and
    /// foreground pixels closer than `inside` become [`UNKNOWN`].
    pub fn build_biased(
        &mut self,
        mask: &[f32],
        width: usize,
        height: usize,
        threshold: f32,
        (outside, inside): (f32, f32),
        out: &mut [u8],
    ) {
        assert_eq!(mask.len(), width * height, "mask size");
        assert_eq!(out.len(), width * height, "trimap size");
        for (o, &m) in out.iter_mut().zip(mask) {
            *o = if m >= threshold {
                FOREGROUND
            } else {
                BACKGROUND
            };
        }
        let (outside, inside) = (outside.max(0.0), inside.max(0.0));
        if outside <= 0.0 && inside <= 0.0 {
            return;
        }
        self.contour_distance(out, width, height, outside.max(inside));
        let (out2, in2) = (outside * outside, inside * inside);
        for (o, &d) in out.iter_mut().zip(&self.dist) {
            let r2 = if *o == FOREGROUND { in2 } else { out2 };
            if d < r2 {
                *o = UNKNOWN;
            }
        }
    }

    /// Squared Euclidean distance from each pixel to the nearest contour pixel of `binary`:
    /// exact where it is below `limit²`, at least `limit²` elsewhere (the band needs no more).
    fn contour_distance(&mut self, binary: &[u8], width: usize, height: usize, limit: f32) {
        self.dist.clear();
        self.dist.resize(width * height, FAR);
        // Row by row, with no branch in the inner loops, so the compiler vectorises them.
        let mut any = false;
        for y in 0..height {
            let row = &binary[y * width..(y + 1) * width];
            // Outside the frame a neighbour counts as equal (no contour at the border).
            let up = if y > 0 {
                &binary[(y - 1) * width..y * width]
            } else {
                row
            };
            let down = if y + 1 < height {
                &binary[(y + 1) * width..(y + 2) * width]
            } else {
                row
            };
            let dist = &mut self.dist[y * width..(y + 1) * width];
            for x in 0..width {
                let v = row[x];
                let edge = (row[x.saturating_sub(1)] != v)
                    | (row[(x + 1).min(width - 1)] != v)
                    | (up[x] != v)
                    | (down[x] != v);
                dist[x] = if edge { 0.0 } else { FAR };
                any |= edge;
            }
        }
        if !any {
            return;
        }
        // Columns: exact 1-D distance to the nearest contour pixel by two sweeps, each walking
        // the rows in order with one running gap per column (infinite before the first contour
        // pixel, which leaves the pixel empty for the row pass).
        self.gap.clear();
        self.gap.resize(width, f32::INFINITY);
        for row in self.dist.chunks_exact_mut(width) {
            for (d, g) in row.iter_mut().zip(&mut self.gap) {
                let on = *d == 0.0;
                *g = if on { 0.0 } else { *g + 1.0 };
                *d = if on { 0.0 } else { (*g * *g).min(FAR) };
            }
        }
        self.gap.fill(f32::INFINITY);
        for row in self.dist.chunks_exact_mut(width).rev() {
            for (d, g) in row.iter_mut().zip(&mut self.gap) {
                let on = *d == 0.0;
                *g = if on { 0.0 } else { *g + 1.0 };
                *d = d.min(*g * *g);
            }
        }
        self.line.resize(width, 0.0);
        let reach = limit.max(0.0).ceil() as usize;
        if reach <= MAX_WINDOW_REACH {
            // Rows, for a band of a few pixels: the minimum of `column distance + dx²` over
            // |dx| ≤ ⌈limit⌉, whole rows at a time (vectorised). A true distance below limit²
            // comes from such a dx, so it is found exactly; anything else stays ≥ limit².
            for row in self.dist.chunks_exact_mut(width) {
                self.line.copy_from_slice(row);
                for dx in 1..=reach.min(width - 1) {
                    let dd = (dx * dx) as f32;
                    for (o, &v) in row[..width - dx].iter_mut().zip(&self.line[dx..]) {
                        *o = o.min(v + dd);
                    }
                    for (o, &v) in row[dx..].iter_mut().zip(&self.line[..width - dx]) {
                        *o = o.min(v + dd);
                    }
                }
            }
            return;
        }
        // Rows: lower envelope of parabolas (Felzenszwalb & Huttenlocher 2012).
        self.vertices.resize(width, 0);
        self.bounds.resize(width + 1, 0.0);
        for y in 0..height {
            let row = &mut self.dist[y * width..(y + 1) * width];
            self.line.copy_from_slice(row);
            distance_1d(&self.line, &mut self.vertices, &mut self.bounds, row);
        }
    }
}

/// Up to this band radius (in pixels of the trimap's grid) the row pass of the distance
/// transform is a windowed minimum (`2·reach + 1` vectorised passes over each row); above it,
/// the exact lower envelope of parabolas, whose cost does not depend on the radius.
const MAX_WINDOW_REACH: usize = 24;

/// 1-D squared distance transform of the sampled function `f` into `out`; samples at or
/// above `FAR` are empty and contribute no parabola.
fn distance_1d(f: &[f32], v: &mut [usize], z: &mut [f32], out: &mut [f32]) {
    let mut k: Option<usize> = None;
    for (q, &fq) in f.iter().enumerate() {
        if fq >= FAR {
            continue;
        }
        let Some(mut kk) = k else {
            k = Some(0);
            v[0] = q;
            z[0] = f32::NEG_INFINITY;
            z[1] = f32::INFINITY;
            continue;
        };
        loop {
            let p = v[kk];
            let s = ((fq + (q * q) as f32) - (f[p] + (p * p) as f32)) / (2.0 * (q - p) as f32);
            // z[0] is -inf, so this stops at the first vertex at the latest.
            if s <= z[kk] {
                kk -= 1;
                continue;
            }
            kk += 1;
            v[kk] = q;
            z[kk] = s;
            z[kk + 1] = f32::INFINITY;
            break;
        }
        k = Some(kk);
    }
    if k.is_none() {
        return; // no finite sample in this line: leave it as it is
    }
    let mut kk = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[kk + 1] < q as f32 {
            kk += 1;
        }
        let d = q as f32 - v[kk] as f32;
        *o = d * d + f[v[kk]];
    }
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
    /// The selfie mask when the pose path last ran: a held pose mask is moved by as much as
    /// the selfie mask has moved since ([`match_shift`]).
    anchor_mask: Vec<f32>,
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
            anchor_mask: Vec::new(),
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
        if let Some(p) = &mut self.pose {
            p.reset();
        }
    }

    /// Runs the network and the uncertainty-aware temporal mixing; the mask stays at the
    /// network's resolution in `self.history`.
    /// With `pose` (and the pose networks loaded), the selfie mask is mixed with the pose
    /// network's where that confirms a person ([`fuse`], with the pose mask's weight plane: 0
    /// outside its region, where the selfie mask alone decides). A pose mask held between
    /// runs (`pose_interval` > 1) is moved by as much as the selfie mask has moved since it
    /// was made ([`match_shift`]).
    fn smoothed_mask(
        &mut self,
        frame: &RgbaView<'_>,
        smoothing: f32,
        pose: Option<usize>,
    ) -> Result<(), ModelError> {
        let (mw, mh) = self.segmenter.resolution();
        let raw = self.segmenter.run(frame)?;
        let mut shift = (0, 0);
        let body = match (self.pose.as_mut(), pose) {
            (Some(p), Some(interval)) => {
                if p.update(frame, (mw, mh), interval)? == PoseOutcome::Held {
                    if self.anchor_mask.len() == raw.len() {
                        shift = match_shift(&self.anchor_mask, raw, mw, mh);
                    }
                } else {
                    self.anchor_mask.clear();
                    self.anchor_mask.extend_from_slice(raw);
                }
                p.mask()
            }
            _ => None,
        };
        self.pose_found = body.is_some();
        let mask = match body {
            Some((body, weight)) => {
                self.fused.clear();
                self.fused.extend(raw.iter().enumerate().map(|(k, &s)| {
                    let (x, y) = ((k % mw) as isize - shift.0, (k / mw) as isize - shift.1);
                    if x < 0 || y < 0 || x >= mw as isize || y >= mh as isize {
                        return s;
                    }
                    let j = y as usize * mw + x as usize;
                    fuse(s, body[j], weight[j])
                }));
                &self.fused
            }
            None => raw,
        };
        self.history.update(mask, mw, mh, smoothing);
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

/// The integer shift `d` (mask pixels) that best maps `before` onto `after`
/// (`after(x) ≈ before(x − d)`), by the least absolute difference: every 2 pixels from −12 to
/// 12 on every 4th pixel, then ±2 around the best on every 2nd (about 0.6 M operations on a
/// 256×144 mask). Moves a held pose mask with the person (tuning sequences at
/// `pose-interval=3`: dtSSD 7.01 against 7.99 with the selfie mask's centroid and 9.40 not
/// moved; `results/pose_segmentation.md`).
fn match_shift(before: &[f32], after: &[f32], w: usize, h: usize) -> (isize, isize) {
    let cost = |dx: isize, dy: isize, step: usize| {
        let mut c = 0.0f32;
        for y in (0..h).step_by(step) {
            let sy = y as isize - dy;
            for x in (0..w).step_by(step) {
                let sx = x as isize - dx;
                let b = if sx < 0 || sy < 0 || sx >= w as isize || sy >= h as isize {
                    0.0
                } else {
                    before[sy as usize * w + sx as usize]
                };
                c += (after[y * w + x] - b).abs();
            }
        }
        c
    };
    let mut best = ((0isize, 0isize), cost(0, 0, 4));
    for dy in (-12..=12).step_by(2) {
        for dx in (-12..=12).step_by(2) {
            let c = cost(dx, dy, 4);
            if c < best.1 {
                best = ((dx, dy), c);
            }
        }
    }
    let (cx, cy) = best.0;
    let mut fine = ((cx, cy), cost(cx, cy, 2));
    for dy in cy - 2..=cy + 2 {
        for dx in cx - 2..=cx + 2 {
            let c = cost(dx, dy, 2);
            if c < fine.1 {
                fine = ((dx, dy), c);
            }
        }
    }
    fine.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn match_shift_finds_how_far_the_mask_moved() {
        let (w, h) = (256, 144);
        let blob = |cx: f32, cy: f32| -> Vec<f32> {
            (0..w * h)
                .map(|k| {
                    let (x, y) = ((k % w) as f32, (k / w) as f32);
                    let inside = ((x - cx) / 30.0).powi(2) + ((y - cy) / 45.0).powi(2) < 1.0;
                    if inside { 1.0 } else { 0.0 }
                })
                .collect()
        };
        let before = blob(120.0, 80.0);
        for (dx, dy) in [(0isize, 0isize), (5, -3), (-11, 7), (1, 1)] {
            let after = blob(120.0 + dx as f32, 80.0 + dy as f32);
            assert_eq!(super::match_shift(&before, &after, w, h), (dx, dy));
        }
    }

    use super::*;

    /// A disc of radius `r` centred in a `w × h` mask (1 inside, 0 outside).
    fn disc(w: usize, h: usize, r: f32) -> Vec<f32> {
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
                if ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() < r {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn count(t: &[u8], v: u8) -> usize {
        t.iter().filter(|&&x| x == v).count()
    }

    #[test]
    fn classes_are_only_the_three_values() {
        let (w, h) = (80, 60);
        let mask: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 / w as f32).collect();
        let mut out = vec![7u8; w * h];
        TrimapBuilder::new().build(&mask, w, h, 0.5, 4.0, &mut out);
        assert!(out.iter().all(|&v| v == 0 || v == 128 || v == 255));
        assert!(count(&out, FOREGROUND) > 0 && count(&out, BACKGROUND) > 0);
    }

    /// An 80×30 mask with a vertical edge at x = 40 (foreground to the right): its contour
    /// pixels are x = 39 and 40.
    const EDGE: (usize, usize) = (80, 30);

    fn vertical_edge() -> Vec<f32> {
        let (w, h) = EDGE;
        (0..w * h)
            .map(|i| if i % w >= 40 { 1.0 } else { 0.0 })
            .collect()
    }

    /// Asserts that the trimap of [`vertical_edge`] is unknown exactly on the columns `band`.
    fn assert_edge_band(out: &[u8], band: std::ops::RangeInclusive<usize>) {
        let (w, h) = EDGE;
        for y in 0..h {
            for x in 0..w {
                let want = if band.contains(&x) {
                    UNKNOWN
                } else if x >= 40 {
                    FOREGROUND
                } else {
                    BACKGROUND
                };
                assert_eq!(out[y * w + x], want, "pixel ({x},{y})");
            }
        }
    }

    #[test]
    fn band_has_the_requested_width() {
        // With radius 5 the unknown band covers x in 35..=44 on every row, nothing else.
        let (w, h) = EDGE;
        let mut out = vec![0u8; w * h];
        TrimapBuilder::new().build(&vertical_edge(), w, h, 0.5, 5.0, &mut out);
        assert_edge_band(&out, 35..=44);
    }

    #[test]
    fn biased_band_reaches_its_own_radius_on_each_side() {
        // 8 px outside and 2 px inside: the background side x = 32..=39 (the contour pixel 39
        // and 7 more), the foreground side x = 40..=41 (the contour pixel 40 and 1 more).
        let (w, h) = EDGE;
        let mask = vertical_edge();
        let mut out = vec![0u8; w * h];
        TrimapBuilder::new().build_biased(&mask, w, h, 0.5, (8.0, 2.0), &mut out);
        assert_edge_band(&out, 32..=41);
        // Only an inside band, and none at all.
        TrimapBuilder::new().build_biased(&mask, w, h, 0.5, (0.0, 3.0), &mut out);
        let unknown: Vec<usize> = (0..w).filter(|&x| out[x] == UNKNOWN).collect();
        assert_eq!(unknown, [40, 41, 42]);
        TrimapBuilder::new().build_biased(&mask, w, h, 0.5, (0.0, 0.0), &mut out);
        assert_eq!(count(&out, UNKNOWN), 0);
    }

    #[test]
    fn band_is_round_around_a_disc() {
        // Distance is Euclidean: the unknown ring around a disc of radius 20 with band 6 lies
        // between radii ~14 and ~26 in every direction, diagonals included.
        let (w, h) = (100, 100);
        let mask = disc(w, h, 20.0);
        let mut out = vec![0u8; w * h];
        TrimapBuilder::new().build(&mask, w, h, 0.5, 6.0, &mut out);
        for (i, &v) in out.iter().enumerate() {
            let (x, y) = ((i % w) as f32 + 0.5 - 50.0, (i / w) as f32 + 0.5 - 50.0);
            let r = (x * x + y * y).sqrt();
            if r < 13.0 {
                assert_eq!(v, FOREGROUND, "r={r}");
            } else if (15.5..24.5).contains(&r) {
                assert_eq!(v, UNKNOWN, "r={r}");
            } else if r > 27.0 {
                assert_eq!(v, BACKGROUND, "r={r}");
            }
        }
    }

    #[test]
    fn wider_band_only_grows_the_unknown_region() {
        let (w, h) = (64, 48);
        let mask = disc(w, h, 15.0);
        let mut b = TrimapBuilder::new();
        let mut prev = vec![0u8; w * h];
        b.build(&mask, w, h, 0.5, 0.0, &mut prev);
        assert_eq!(count(&prev, UNKNOWN), 0, "radius 0 is a binary mask");
        for r in [1.0, 2.0, 4.0, 8.0, 30.0] {
            let mut cur = vec![0u8; w * h];
            b.build(&mask, w, h, 0.5, r, &mut cur);
            for (p, c) in prev.iter().zip(&cur) {
                if *p == UNKNOWN {
                    assert_eq!(*c, UNKNOWN, "radius {r} shrank the band");
                }
                if *c != UNKNOWN {
                    assert_eq!(p, c, "definite pixels never change class");
                }
            }
            assert!(count(&cur, UNKNOWN) > count(&prev, UNKNOWN));
            prev = cur;
        }
    }

    #[test]
    fn higher_threshold_never_adds_foreground() {
        let (w, h) = (64, 48);
        let mask: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let mut b = TrimapBuilder::new();
        let mut lo = vec![0u8; w * h];
        let mut hi = vec![0u8; w * h];
        b.build(&mask, w, h, 0.3, 0.0, &mut lo);
        b.build(&mask, w, h, 0.7, 0.0, &mut hi);
        for (l, h) in lo.iter().zip(&hi) {
            if *h == FOREGROUND {
                assert_eq!(*l, FOREGROUND);
            }
        }
        assert!(count(&hi, FOREGROUND) < count(&lo, FOREGROUND));
    }

    #[test]
    fn uniform_masks_have_no_unknown_region() {
        let (w, h) = (20, 10);
        let mut out = vec![0u8; w * h];
        let mut b = TrimapBuilder::new();
        b.build(&vec![1.0; w * h], w, h, 0.5, 5.0, &mut out);
        assert!(out.iter().all(|&v| v == FOREGROUND));
        b.build(&vec![0.0; w * h], w, h, 0.5, 5.0, &mut out);
        assert!(out.iter().all(|&v| v == BACKGROUND));
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

    #[test]
    fn band_fraction_scales_with_the_short_side() {
        assert_eq!(BandWidth::Fraction(0.05).radius_px(640, 360), 18.0);
        assert_eq!(BandWidth::Fraction(0.05).radius_px(360, 1280), 18.0);
        assert_eq!(BandWidth::Pixels(9).radius_px(640, 360), 9.0);
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let (w, h) = (23, 17);
        let mask: Vec<f32> = (0..w * h)
            .map(|i| {
                if (i * 31 + i / w * 7) % 11 < 3 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let mut bin = vec![0u8; w * h];
        let mut b = TrimapBuilder::new();
        b.build(&mask, w, h, 0.5, 0.0, &mut bin);
        // Exact everywhere through the parabola envelope; exact below the limit, and at least
        // the limit above it, through the windowed row pass.
        for limit in [100.0, 0.5, 1.0, 2.5, 4.0, 7.0] {
            assert_eq!(limit > MAX_WINDOW_REACH as f32, limit == 100.0);
            b.contour_distance(&bin, w, h, limit);
            let contour: Vec<(usize, usize)> = (0..w * h)
                .filter(|&i| b.dist[i] == 0.0)
                .map(|i| (i % w, i / w))
                .collect();
            let l2 = limit * limit;
            for i in 0..w * h {
                let (x, y) = (i % w, i / w);
                let want = contour
                    .iter()
                    .map(|&(cx, cy)| {
                        let (dx, dy) = (cx as f32 - x as f32, cy as f32 - y as f32);
                        dx * dx + dy * dy
                    })
                    .fold(f32::INFINITY, f32::min);
                if want < l2 {
                    assert_eq!(b.dist[i], want, "pixel ({x},{y}), limit {limit}");
                } else {
                    assert!(
                        b.dist[i] >= l2,
                        "pixel ({x},{y}), limit {limit}: {}",
                        b.dist[i]
                    );
                }
            }
        }
    }
}
