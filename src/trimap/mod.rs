//! The trimap generator: coarse person mask → foreground / unknown / background.
//!
//! The mask is thresholded; every pixel closer than the band radius to the thresholded contour
//! becomes unknown (an exact Euclidean distance transform, so the band is round, not blocky),
//! the rest is definite foreground or background. The band can reach further on one side of
//! the contour than on the other ([`TrimapSettings::band_bias`]; by default further out). An
//! exponential moving average of the mask stops frame-to-frame flicker.
//!
//! The parts: the trimap encoding and the stage's settings (here), the band builder ([`band`]:
//! mask → trimap, an exact Euclidean distance transform) and the stage that runs the person
//! segmenters on frames ([`stage`]: selfie network, MediaPipe Pose, temporal mixing).

mod band;
mod stage;

pub use band::TrimapBuilder;
pub use stage::{TRIMAP_MAX_SHORT_SIDE, TrimapGenerator};

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
/// mask where the new one is unsure; the previous mask is first moved with the person (the
/// trimap stage's frame-to-frame tracker). Chosen on the tuning sequences (moving 100–103,
/// 640×360, whole pipeline with the band net, `pose-interval=3`), dtSSD / whole-image SAD per
/// frame: 0.5 without moving the history 6.78 / 2.31; moved, 0.5 → 6.43 / 1.97, 0.7 →
/// 6.20 / 1.95, 0.85 → 6.18 / 2.07 (`results/pose_segmentation.md`).
pub const DEFAULT_SMOOTHING: f32 = 0.7;

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
/// outside) and its reach (1 near the skeleton of its landmarks, 0 a body width away:
/// [`crate::pose::PoseMask::reach`]).
pub const POSE_WEIGHT: f32 = 0.7;

/// Weight of the pose network's mask where it finds less person than the selfie network: the
/// pose network mostly fixes the selfie network's misses (heads, limbs, a person over a busy
/// picture), and takes away less readily. Chosen with [`POSE_WEIGHT`] on the tuning data
/// (`results/pose_segmentation.md`).
pub const POSE_REMOVE_WEIGHT: f32 = 0.35;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_fraction_scales_with_the_short_side() {
        assert_eq!(BandWidth::Fraction(0.05).radius_px(640, 360), 18.0);
        assert_eq!(BandWidth::Fraction(0.05).radius_px(360, 1280), 18.0);
        assert_eq!(BandWidth::Pixels(9).radius_px(640, 360), 9.0);
    }
}
