//! A second person segmenter: MediaPipe Pose (BlazePose GHUM 3D "full"), which segments the
//! person inside a region of interest that follows the body.
//!
//! The selfie network sees the whole frame at 256×144 and sometimes misses a person outright
//! (a light-haired head over fur, a person over a busy picture). The pose landmark network
//! sees a 256×256 crop centred on the body, rotated upright, and is trained on whole people:
//! it finds them where the selfie network does not (`results/pose_segmentation.md`).
//! `trimapgen pose=true` mixes the two masks ([`crate::trimap::TrimapGenerator`]).
//!
//! How the region is found follows MediaPipe's pose graph:
//! - **Detection** ([`detector`]): on the first frame, after a reset and whenever the person
//!   is lost, the BlazePose detector looks at the whole frame; the best detection's hips'
//!   centre and scale point give the region. On the first frame after a reset, when the
//!   whole frame shows nobody, it also looks closer, at three squares of the frame's short
//!   side ([`PoseDetector::detect_closer`]: four runs, once); later, a frame with nobody in
//!   it costs one detector run.
//! - **Tracking**: the landmarks of one frame place the next frame's region (points 33 and
//!   34: a square `2·|p34 − p33|·1.25` wide centred on the hips, turned so the body stands
//!   upright). Between runs the caller says how far the person has moved
//!   ([`PoseSegmenter::set_motion`]; the trimap stage's appearance tracker), and the next run
//!   moves the region by as much first.
//! - **Confirmation**: a region's mask is used only when the landmarks say the body lies
//!   inside it and the region they place agrees with the one the network ran on
//!   ([`confirms`]). An unconfirmed region (part of a body, a person moving fast) is tracked
//!   but not mixed; on a detection frame the network runs a second time on the region its
//!   landmarks placed, so a still picture gets a settled region in one frame.
//! - **Abstaining**: the mask comes with a weight plane, 1 inside the region and 0 outside
//!   it (feathered over [`FEATHER`] input pixels): outside its region the pose network has no
//!   opinion and the selfie mask alone decides. Inside it, the mask may add person only near
//!   the skeleton its landmarks draw ([`PoseMask::reach`]: fully within [`REACH_IN`] body
//!   widths of a bone, nothing beyond [`REACH_OUT`]); it may take person away anywhere in it.
//! - **Cadence**: while a confirmed pose is held the pose path runs every `interval`-th frame
//!   ([`PoseSegmenter::update`]); between runs its last confirmed mask is held (the trimap
//!   stage moves it with the person). Without one (nobody detected, or a region not settled)
//!   it runs again on the next frame, then backs off to every `interval`-th frame.
//!
//! **Several people**: when the detector runs, the landmark network also segments up to
//! [`MAX_PEOPLE`] − 1 other people it found (each region confirmed as above, with a second run
//! on the region their landmarks place), and tracks them on every later pose run; one whose
//! region stops being confirmed, or comes to follow the tracked person, is dropped until the
//! detector runs again (the tracked person lost, a reset). Their masks join the tracked
//! person's, each pixel taking the largest mask, weight and reach, so a video call with two
//! people gets both even where the selfie network sees neither (grey pictures, a person seen
//! from behind). Each of them costs one more landmark run per pose run.

pub mod detector;
pub mod region;

use std::path::Path;

pub use detector::{Detection, PoseDetector};
pub use region::Region;

use crate::frame::RgbaView;
use crate::model::{Dim, Model, ModelError, ModelSpec, TensorSpec};
use region::{load_region, sample_zero_outside};

/// Side of the landmark network's square input, in pixels.
pub const POSE_INPUT: usize = 256;
/// Landmarks the network outputs (33 body points and 6 auxiliary ones), 5 values each.
const LANDMARKS: usize = 39;
/// The body's landmarks (the auxiliary ones after them place regions).
const BODY_LANDMARKS: usize = 33;
/// Presence at and above which the network has found a pose in its region.
pub const PRESENCE_THRESHOLD: f32 = 0.5;
/// The region is this much larger than twice the hips-to-scale-point distance (MediaPipe's
/// `RectTransformationCalculator` scale, for detections and landmarks alike).
const REGION_SCALE: f32 = 1.25;
/// Smallest region, in frame pixels, that is tracked; a smaller one is detected again.
const MIN_REGION: f32 = 16.0;
/// The landmarks that place the next frame's region: the hips' centre and the scale point.
const CENTRE_POINT: usize = 33;
const SCALE_POINT: usize = 34;
/// When a region counts as confirmed ([`confirms`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// How far (fraction of the input's side) a body landmark may lie outside the region for
    /// the region to still count as covering the body.
    pub body_margin: f32,
    /// How far (fraction of the region's size) the region the landmarks place may be from
    /// the one the network ran on.
    pub shift: f32,
    /// How much (ratio) their sizes may differ.
    pub scale: f32,
    /// How much (radians) it may be turned against it.
    pub turn: f32,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            body_margin: 0.1,
            shift: 0.25,
            scale: 1.4,
            turn: 0.35,
        }
    }
}
/// Width, in input pixels of the landmark network, over which the pose mask's weight fades
/// to 0 at its region's edge.
pub const FEATHER: f32 = 8.0;

/// How far from the pose's skeleton its mask may add person that the selfie mask did not
/// see, in body widths ([`body_width`]): fully within [`REACH_IN`], fading to nothing at
/// [`REACH_OUT`]. Beyond that the pose network's mask is not about the body it found (on a
/// tuning sequence it painted a spoon beside the person for a few frames), so there it
/// only takes away, as inside its whole region (`results/pose_segmentation.md`).
pub const REACH_IN: f32 = 0.6;
/// See [`REACH_IN`].
pub const REACH_OUT: f32 = 1.0;

/// The bones of BlazePose's 33 body landmarks the reach is measured from: the head (nose,
/// ears), neck to shoulders, arms to the index fingers, the torso with its diagonals (so its
/// inside is near a bone), legs to the toes.
const SKELETON: [(usize, usize); 25] = [
    (0, 7),
    (0, 8),
    (7, 8),
    (0, 11),
    (0, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 19),
    (12, 14),
    (14, 16),
    (16, 20),
    (11, 23),
    (12, 24),
    (11, 24),
    (12, 23),
    (23, 24),
    (23, 25),
    (25, 27),
    (27, 31),
    (24, 26),
    (26, 28),
    (28, 32),
    (27, 29),
    (28, 30),
];

/// The body's width in input pixels, from its landmarks: the shoulders' distance, or half
/// the shoulders-to-hips distance when that is larger (a body seen from the side).
fn body_width(landmarks: &[f32]) -> f32 {
    let p = |k: usize| (landmarks[5 * k], landmarks[5 * k + 1]);
    let mid = |a: (f32, f32), b: (f32, f32)| ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
    let dist = |a: (f32, f32), b: (f32, f32)| (a.0 - b.0).hypot(a.1 - b.1);
    let shoulders = dist(p(11), p(12));
    let torso = dist(mid(p(11), p(12)), mid(p(23), p(24)));
    shoulders.max(0.5 * torso)
}

/// Squared distance from `(u, v)` to the segment `a`–`b`.
fn segment_distance2((u, v): (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((u - a.0) * dx + (v - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (u - a.0 - t * dx, v - a.1 - t * dy);
    ex * ex + ey * ey
}

/// The input and outputs of the converted landmark network (`tools/mediapipe_to_onnx.py`).
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

/// The next frame's region from the landmarks the network gave in `region` (MediaPipe's
/// `pose_landmarks_to_roi`).
fn next_region(region: &Region, landmarks: &[f32]) -> Region {
    let map = region.mapping(POSE_INPUT);
    let point = |k: usize| map.frame_point(landmarks[5 * k], landmarks[5 * k + 1]);
    Region::aligned(point(CENTRE_POINT), point(SCALE_POINT), REGION_SCALE)
}

/// Whether the network's result in `region` can be trusted: every body landmark lies inside
/// the region (within `tol.body_margin`) and the region the landmarks place (`next`) agrees
/// with `region` (centres, sizes and turns within `tol`). A region holding only part of a
/// body fails when the landmarks run out of it or place the next region elsewhere.
pub fn confirms(region: &Region, landmarks: &[f32], next: &Region, tol: &Tolerance) -> bool {
    let n = POSE_INPUT as f32;
    let (lo, hi) = (-tol.body_margin * n, (1.0 + tol.body_margin) * n);
    let inside = landmarks[..BODY_LANDMARKS * 5]
        .chunks_exact(5)
        .all(|p| (lo..=hi).contains(&p[0]) && (lo..=hi).contains(&p[1]));
    let shift = (next.cx - region.cx).hypot(next.cy - region.cy);
    let ratio = next.size / region.size;
    let turn = (next.rotation - region.rotation).sin_cos();
    inside
        && shift <= tol.shift * region.size
        && (1.0 / tol.scale..=tol.scale).contains(&ratio)
        && turn.0.atan2(turn.1).abs() <= tol.turn
}

/// What the last [`PoseSegmenter::update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoseOutcome {
    /// Not this frame's turn (`interval`): the last result is held.
    Held,
    /// No person: nothing detected, or the landmark network saw no pose in its region.
    NoPerson,
    /// A pose in a region that does not cover it yet: tracked, not mixed.
    Unconfirmed,
    /// A confirmed pose: its mask is mixed.
    Found,
}

/// Most people the pose path segments: the tracked one and the others the detector found on
/// the same frame.
pub const MAX_PEOPLE: usize = 3;

/// A person besides the tracked one, found by the detector on the same frame and segmented
/// on every pose run while their region stays confirmed.
#[derive(Debug)]
struct Other {
    /// The region the next run uses (placed by the last run's landmarks).
    tracked: Region,
    /// The region of the last confirmed run, and its mask and landmarks.
    region: Region,
    region_mask: Vec<f32>,
    landmarks: Vec<f32>,
}

/// A confirmed pose's mask in frame space, at the caller's mask resolution.
#[derive(Debug, Clone, Copy)]
pub struct PoseMask<'a> {
    /// The network's person probability, 0 outside its region.
    pub mask: &'a [f32],
    /// Its say: 1 inside the region the network ran on, fading to 0 at the region's edge
    /// ([`FEATHER`]); outside it the network has no opinion.
    pub weight: &'a [f32],
    /// How far it may add person: 1 near the skeleton its landmarks draw, fading to 0 from
    /// [`REACH_IN`] to [`REACH_OUT`] body widths away.
    pub reach: &'a [f32],
}

/// Runs the detector and the landmark network on frames, tracking the person's region;
/// buffers are reused.
#[derive(Debug)]
pub struct PoseSegmenter {
    model: Model,
    detector: PoseDetector,
    /// The region resampled, planar RGB 0..1, 3 × 256 × 256.
    input: Vec<f32>,
    /// The network's person mask over its region, 256 × 256.
    region_mask: Vec<f32>,
    landmarks: Vec<f32>,
    presence: [f32; 1],
    /// The region of the next run while a pose is tracked.
    tracked: Option<Region>,
    /// Frames since the pose path last ran (`None`: not since the last reset).
    since_run: Option<usize>,
    /// Shifts the cadence after the first run ([`set_phase`](Self::set_phase)).
    phase: usize,
    /// The last confirmed mask and its weight in frame space at the caller's resolution.
    mask: Vec<f32>,
    weight: Vec<f32>,
    mask_size: (usize, usize),
    /// The other people found with the tracked one (at most [`MAX_PEOPLE`] − 1).
    others: Vec<Other>,
    /// How near the skeleton each pixel is (1 within [`REACH_IN`] body widths, 0 beyond
    /// [`REACH_OUT`]).
    reach: Vec<f32>,
    /// Whether `mask`, `weight` and `reach` hold a confirmed pose.
    holds: bool,
    /// Runs in a row that ended without a confirmed pose (nobody detected, or a region not
    /// settled yet): the next run comes that many frames later, at most `interval`.
    misses: usize,
    /// How far (frame pixels) the person has moved since the last confirmed run, as the
    /// caller tracks it ([`set_motion`](Self::set_motion)).
    motion: (f32, f32),
    /// The region of the last confirmed run (the network's mask in `region_mask` is over it).
    confirmed_region: Region,
    tolerance: Tolerance,
}

impl PoseSegmenter {
    /// Loads and checks the landmark network at `landmark` and the detector at `detector`
    /// with `threads` intra-op threads each (0 = the process-wide pool).
    pub fn load(landmark: &Path, detector: &Path, threads: usize) -> Result<Self, ModelError> {
        let n = POSE_INPUT * POSE_INPUT;
        Ok(Self {
            model: Model::load(landmark, &spec(), threads)?,
            detector: PoseDetector::load(detector, threads)?,
            input: vec![0.0; 3 * n],
            region_mask: vec![0.0; n],
            landmarks: vec![0.0; LANDMARKS * 5],
            presence: [0.0],
            tracked: None,
            since_run: None,
            phase: 0,
            mask: Vec::new(),
            weight: Vec::new(),
            reach: Vec::new(),
            others: Vec::new(),
            mask_size: (0, 0),
            holds: false,
            misses: 0,
            motion: (0.0, 0.0),
            confirmed_region: Region::letterbox(1, 1),
            tolerance: Tolerance::default(),
        })
    }

    pub fn model_path(&self) -> &Path {
        self.model.path()
    }

    pub fn detector_path(&self) -> &Path {
        self.detector.model_path()
    }

    /// Forgets the tracked region and the held mask (flush, seek, caps change): the next
    /// frame runs the detector.
    pub fn reset(&mut self) {
        self.others.clear();
        self.tracked = None;
        self.since_run = None;
        self.holds = false;
        self.misses = 0;
    }

    /// The region the next run will use while a pose is tracked.
    pub fn tracked(&self) -> Option<Region> {
        self.tracked
    }

    /// Sets when a region counts as confirmed (default [`Tolerance::default`]).
    pub fn set_tolerance(&mut self, tolerance: Tolerance) {
        self.tolerance = tolerance;
    }

    /// Tracks `region` from the next run on, as if the last frame's landmarks had placed it.
    pub fn track(&mut self, region: Region) {
        self.tracked = Some(region);
    }

    /// The held pose mask, its weight and its reach (`mw × mh` each, as last passed to
    /// [`update`](Self::update)) when the last run confirmed a pose.
    pub fn mask(&self) -> Option<PoseMask<'_>> {
        self.holds.then_some(PoseMask {
            mask: &self.mask,
            weight: &self.weight,
            reach: &self.reach,
        })
    }

    /// Tells the segmenter how far (frame pixels) the person has moved since its last
    /// confirmed run: when the next run tracks the region the landmarks placed then, the
    /// region is moved by as much first, so the network sees the person where they are now.
    pub fn set_motion(&mut self, dx: f32, dy: f32) {
        self.motion = (dx, dy);
    }

    /// Shifts the cadence by `phase` frames after the first run: the second run comes
    /// `interval − phase % interval` frames after the first instead of `interval`. Streams that
    /// start together (several pipelines on one machine) then run their pose networks on
    /// different frames instead of all on the same ones.
    pub fn set_phase(&mut self, phase: usize) {
        self.phase = phase;
    }

    /// Runs the pose path on `frame` when it is its turn — every `interval`-th frame
    /// (`interval` ≥ 1) while a confirmed pose is held; without one (nobody detected, or a
    /// region not settled yet) the next frame after a first miss, then backing off by one
    /// frame per miss up to `interval` (the detector misses a person on single frames, and
    /// waiting `interval` frames after each miss left the first frames of a stream without
    /// the pose mask, while a face close to a webcam, which the whole-body detector never
    /// finds, must not cost a detector run on every frame); always on the first frame after
    /// a reset or a change of `mw × mh` — and otherwise holds the last result.
    pub fn update(
        &mut self,
        frame: &RgbaView<'_>,
        (mw, mh): (usize, usize),
        interval: usize,
    ) -> Result<PoseOutcome, ModelError> {
        let interval = interval.max(1);
        let wait = match self.misses {
            0 => interval,
            m => m.min(interval),
        };
        if let Some(k) = self.since_run
            && k + 1 < wait
            && self.mask_size == (mw, mh)
        {
            self.since_run = Some(k + 1);
            return Ok(PoseOutcome::Held);
        }
        let first = self.since_run.is_none() || self.mask_size != (mw, mh);
        self.since_run = Some(if first { self.phase % interval } else { 0 });
        self.mask_size = (mw, mh);
        // The landmarks of the last confirmed run placed the tracked region; the person has
        // moved since.
        if self.holds
            && !first
            && let Some(region) = &mut self.tracked
        {
            region.cx += self.motion.0;
            region.cy += self.motion.1;
        }
        self.holds = false;
        let outcome = self.run(frame, first)?;
        if outcome == PoseOutcome::Found {
            self.misses = 0;
            self.holds = true;
            self.write_mask(frame, (mw, mh));
        } else {
            self.misses += 1;
        }
        Ok(outcome)
    }

    /// One run of the pose path: the region (tracked, or detected), the landmark network in it,
    /// its confirmation, and the next region. On success the network's region and mask stay
    /// in `confirmed_region` / `region_mask`.
    fn run(&mut self, frame: &RgbaView<'_>, first: bool) -> Result<PoseOutcome, ModelError> {
        // The others run first: the tracked person's mask and landmarks stay in
        // `region_mask` / `landmarks` for `write_mask`.
        let (mut region, detected) = match self.tracked {
            Some(r) => {
                self.track_others(frame)?;
                (r, false)
            }
            None => {
                // Nobody is tracked yet on a first frame: look closer, once.
                let detections = if first {
                    self.detector.detect_closer(frame)?
                } else {
                    self.detector.detect(frame)?
                };
                let mut found = [None; MAX_PEOPLE];
                for (f, d) in found.iter_mut().zip(detections) {
                    *f = Some(*d);
                }
                self.others.clear();
                match found[0] {
                    Some(d) => {
                        for other in found[1..].iter().flatten() {
                            self.find_other(frame, other.region(REGION_SCALE))?;
                        }
                        (d.region(REGION_SCALE), true)
                    }
                    None => return Ok(PoseOutcome::NoPerson),
                }
            }
        };
        // A detection gets a second run on the region its landmarks place.
        for attempt in 0..if detected { 2 } else { 1 } {
            if !region.is_valid(MIN_REGION) {
                self.tracked = None;
                return Ok(PoseOutcome::NoPerson);
            }
            let Some((next, confirmed)) = self.look(frame, &region)? else {
                self.tracked = None;
                return Ok(PoseOutcome::NoPerson);
            };
            self.tracked = next.is_valid(MIN_REGION).then_some(next);
            if confirmed {
                self.confirmed_region = region;
                return Ok(PoseOutcome::Found);
            }
            if attempt == 0 && detected {
                region = next;
            }
        }
        Ok(PoseOutcome::Unconfirmed)
    }

    /// Runs the landmark network for a person the detector found besides the tracked one, in
    /// `region` and, as for the tracked one, again in the region its landmarks place; keeps
    /// them when a region is confirmed.
    fn find_other(&mut self, frame: &RgbaView<'_>, mut region: Region) -> Result<(), ModelError> {
        for _ in 0..2 {
            if !region.is_valid(MIN_REGION) {
                return Ok(());
            }
            let Some((next, confirmed)) = self.look(frame, &region)? else {
                return Ok(());
            };
            if confirmed {
                self.others.push(Other {
                    tracked: next,
                    region,
                    region_mask: self.region_mask.clone(),
                    landmarks: self.landmarks.clone(),
                });
                return Ok(());
            }
            region = next;
        }
        Ok(())
    }

    /// Runs the landmark network for each other person in the region their last run placed;
    /// one whose region is no longer confirmed (gone, or moved too fast) is dropped until the
    /// detector runs again.
    fn track_others(&mut self, frame: &RgbaView<'_>) -> Result<(), ModelError> {
        let mut others = std::mem::take(&mut self.others);
        let mut kept = 0;
        for k in 0..others.len() {
            let region = others[k].tracked;
            if !region.is_valid(MIN_REGION) || self.tracks_the_same(&region) {
                continue;
            }
            let Some((next, true)) = self.look(frame, &region)? else {
                continue;
            };
            let other = &mut others[k];
            other.tracked = next;
            other.region = region;
            other.region_mask.copy_from_slice(&self.region_mask);
            other.landmarks.copy_from_slice(&self.landmarks);
            others.swap(kept, k);
            kept += 1;
        }
        others.truncate(kept);
        self.others = others;
        Ok(())
    }

    /// One landmark run in `region`: `None` when the network finds no pose there, else the
    /// region its landmarks place next and whether they confirm `region` ([`confirms`]). The
    /// network's mask and landmarks stay in `region_mask` / `landmarks`.
    fn look(
        &mut self,
        frame: &RgbaView<'_>,
        region: &Region,
    ) -> Result<Option<(Region, bool)>, ModelError> {
        self.landmarks_in(frame, region)?;
        if self.presence[0] < PRESENCE_THRESHOLD {
            return Ok(None);
        }
        let next = next_region(region, &self.landmarks);
        let confirmed = confirms(region, &self.landmarks, &next, &self.tolerance);
        Ok(Some((next, confirmed)))
    }

    /// Whether `region` has converged on the tracked person's region (centres within the
    /// confirmation's shift tolerance): the two follow one person, and the other is dropped.
    fn tracks_the_same(&self, region: &Region) -> bool {
        self.tracked.is_some_and(|t| {
            (t.cx - region.cx).hypot(t.cy - region.cy) <= self.tolerance.shift * t.size
        })
    }

    /// Runs the landmark network on `region` of `frame`.
    fn landmarks_in(&mut self, frame: &RgbaView<'_>, region: &Region) -> Result<(), ModelError> {
        let n = POSE_INPUT;
        load_region(frame, region, n, (1.0 / 255.0, 0.0), &mut self.input);
        let mut outputs: [&mut [f32]; 3] = [
            &mut self.region_mask,
            &mut self.landmarks,
            &mut self.presence,
        ];
        self.model
            .run_outputs(&self.input, &[1, 3, n, n], &mut outputs)
    }

    /// Maps the network's mask over `confirmed_region` into frame space at `mw × mh`, with
    /// its weight (1 inside the region, fading to 0 over [`FEATHER`] input pixels at its edge)
    /// and its reach (how near the skeleton of the landmarks, [`REACH_IN`] / [`REACH_OUT`]);
    /// then the other people's, each pixel taking the largest of every person's values.
    fn write_mask(&mut self, frame: &RgbaView<'_>, (mw, mh): (usize, usize)) {
        let size = (frame.shape()[1], frame.shape()[0]);
        self.mask.resize(mw * mh, 0.0);
        self.weight.resize(mw * mh, 0.0);
        self.reach.resize(mw * mh, 0.0);
        let mut planes = Planes {
            mask: &mut self.mask,
            weight: &mut self.weight,
            reach: &mut self.reach,
            size: (mw, mh),
        };
        let tracked = Person {
            region: self.confirmed_region,
            region_mask: &self.region_mask,
            landmarks: &self.landmarks,
        };
        paint(&mut planes, size, &tracked, false);
        for o in &self.others {
            let other = Person {
                region: o.region,
                region_mask: &o.region_mask,
                landmarks: &o.landmarks,
            };
            paint(&mut planes, size, &other, true);
        }
    }

    /// How many other people (besides the tracked one) the last run segmented.
    pub fn others(&self) -> usize {
        self.others.len()
    }
}

/// The pose mask's planes at the caller's resolution `size`.
struct Planes<'a> {
    mask: &'a mut [f32],
    weight: &'a mut [f32],
    reach: &'a mut [f32],
    size: (usize, usize),
}

/// One person's confirmed run: the region, the network's mask over it and its landmarks.
struct Person<'a> {
    region: Region,
    region_mask: &'a [f32],
    landmarks: &'a [f32],
}

/// Writes `person`'s mask, weight and reach into `planes` (frame `width × height`), or with
/// `merge` keeps at each pixel the larger of what is there and `person`'s.
fn paint(
    planes: &mut Planes<'_>,
    (width, height): (usize, usize),
    person: &Person<'_>,
    merge: bool,
) {
    let n = POSE_INPUT;
    let (mw, mh) = planes.size;
    let (sx, sy) = (width as f32 / mw as f32, height as f32 / mh as f32);
    let map = person.region.mapping(n);
    let lm = person.landmarks;
    let bones = SKELETON.map(|(a, b)| ((lm[5 * a], lm[5 * a + 1]), (lm[5 * b], lm[5 * b + 1])));
    let body = body_width(lm).max(1.0);
    let (near, far) = (REACH_IN * body, REACH_OUT * body);
    let rows = planes
        .mask
        .chunks_exact_mut(mw)
        .zip(planes.weight.chunks_exact_mut(mw))
        .zip(planes.reach.chunks_exact_mut(mw))
        .take(mh);
    for (j, ((mrow, wrow), rrow)) in rows.enumerate() {
        let cells = mrow.iter_mut().zip(wrow.iter_mut()).zip(rrow.iter_mut());
        for (i, ((m, w), r)) in cells.enumerate() {
            let (u, v) = map.input_point((i as f32 + 0.5) * sx, (j as f32 + 0.5) * sy);
            let mask = sample_zero_outside(person.region_mask, n, n, u, v);
            let edge = u.min(v).min(n as f32 - u).min(n as f32 - v);
            let weight = (edge / FEATHER).clamp(0.0, 1.0);
            // The reach matters only where the mask has a say and something to add.
            let reach = if weight > 0.0 && mask > 0.01 {
                let d2 = bones
                    .iter()
                    .map(|&(a, b)| segment_distance2((u, v), a, b))
                    .fold(f32::INFINITY, f32::min);
                ((far - d2.sqrt()) / (far - near).max(1e-3)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            if merge {
                *m = m.max(mask);
                *w = w.max(weight);
                *r = r.max(reach);
            } else {
                (*m, *w, *r) = (mask, weight, reach);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Landmarks (input pixels) of a body standing upright in the middle of the region, the
    /// hips' centre at (128, 160) and the scale point `reach` above it.
    fn upright(reach: f32) -> Vec<f32> {
        let mut lm = vec![0.0; LANDMARKS * 5];
        for (k, p) in lm.chunks_exact_mut(5).enumerate().take(BODY_LANDMARKS) {
            p[0] = 100.0 + k as f32;
            p[1] = 40.0 + 5.0 * k as f32;
        }
        lm[5 * CENTRE_POINT] = 128.0;
        lm[5 * CENTRE_POINT + 1] = 160.0;
        lm[5 * SCALE_POINT] = 128.0;
        lm[5 * SCALE_POINT + 1] = 160.0 - reach;
        lm
    }

    #[test]
    fn reach_is_measured_from_the_bones_in_body_widths() {
        // Distance to a segment: perpendicular inside it, to the nearer end outside it.
        assert_eq!(
            segment_distance2((0.0, 5.0), (-10.0, 0.0), (10.0, 0.0)),
            25.0
        );
        assert_eq!(
            segment_distance2((13.0, 4.0), (-10.0, 0.0), (10.0, 0.0)),
            25.0
        );
        assert_eq!(segment_distance2((3.0, 4.0), (0.0, 0.0), (0.0, 0.0)), 25.0);
        // Upright body: shoulders 5 px apart, 60 px above the hips: half the torso wins.
        let lm = upright(100.0);
        let torso = (111.5f32 - 123.5).hypot(97.5 - 157.5);
        assert!(
            (body_width(&lm) - 0.5 * torso).abs() < 1e-3,
            "{}",
            body_width(&lm)
        );
        // Shoulders wider than half the torso: they win.
        let mut wide = lm.clone();
        wide[5 * 12] = 111.0 + 50.0;
        wide[5 * 12 + 1] = 95.0;
        assert!(
            (body_width(&wide) - 50.0).abs() < 1e-3,
            "{}",
            body_width(&wide)
        );
    }

    #[test]
    fn next_region_follows_the_hips_and_scale_point() {
        // Input pixels are frame pixels here (size 256 at rotation 0, centred at 128, 128).
        let r = Region {
            cx: 128.0,
            cy: 128.0,
            size: 256.0,
            rotation: 0.0,
        };
        let next = next_region(&r, &upright(100.0));
        assert!((next.cx - 128.0).abs() < 1e-3 && (next.cy - 160.0).abs() < 1e-3);
        assert!((next.size - 250.0).abs() < 1e-3 && next.rotation.abs() < 1e-6);
    }

    #[test]
    fn confirmation_needs_the_body_inside_and_a_settled_region() {
        let r = Region {
            cx: 128.0,
            cy: 128.0,
            size: 256.0,
            rotation: 0.0,
        };
        let tol = Tolerance::default();
        let lm = upright(100.0);
        assert!(confirms(&r, &lm, &next_region(&r, &lm), &tol));
        // A hand far out of the region: the body runs out of it.
        let mut out = lm.clone();
        out[5 * 16 + 1] = 256.0 * 1.3;
        assert!(!confirms(&r, &out, &next_region(&r, &out), &tol));
        // Landmarks that place a region twice as large (the region held part of the body).
        let big = upright(210.0);
        assert!(!confirms(&r, &big, &next_region(&r, &big), &tol));
        // Or turned.
        let mut turned = r;
        turned.rotation = 0.6;
        assert!(!confirms(&turned, &lm, &next_region(&r, &lm), &tol));
        // Or far away.
        let mut moved = r;
        moved.cx += 0.3 * 256.0;
        assert!(!confirms(&r, &lm, &next_region(&moved, &lm), &tol));
    }
}
