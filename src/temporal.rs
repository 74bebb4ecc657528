//! The coarse person mask over time.
//!
//! - **Uncertainty-aware mixing**: the previous frame's mask is mixed in only where the new mask
//!   is unsure, in proportion to its uncertainty `u(p) = 1 − (2p − 1)²` (1 at p = 0.5, 0 at 0
//!   and 1): `m = p + (m_prev − p) · ratio · u(p)`. Where the network is sure — the background a
//!   moving person has just left, a limb that moved — the new mask wins at once, so real motion
//!   leaves no trailing ghost; where it hesitates — hair, a hand against a busy background —
//!   the previous mask holds, so it does not flicker. A plain moving average mixes everywhere
//!   and lags (`smoothing` used to do that).
//! - **Where the mask cannot be trusted**: pixels whose mixed mask is unsure (0.2 … 0.8) or
//!   whose raw mask changed since the previous frame by more than [`CHANGE_THRESHOLD`], dilated
//!   by one mask pixel. The trimap puts them in the unknown band, so a chunk the mask bites out
//!   of the hair for a few frames reaches the matting net instead of being cut to background.
//! - A scene cut (mean absolute change of the mask above [`SCENE_CUT`]) drops the history.
//!
//! Everything runs at the segmentation network's resolution (256×144) on reused buffers.

/// The mixed mask is "unsure" between these probabilities (`u(p) > 0.64`).
pub const UNSURE_LOW: f32 = 0.2;
/// Upper end of the unsure range.
pub const UNSURE_HIGH: f32 = 0.8;
/// A raw-mask change larger than this since the previous frame marks a pixel untrusted.
pub const CHANGE_THRESHOLD: f32 = 0.3;
/// Mean absolute change of the raw mask above which a frame is a scene cut (history dropped).
pub const SCENE_CUT: f32 = 0.25;

/// Uncertainty of a mask probability: 1 at 0.5, 0 at 0 and 1.
#[inline]
pub fn uncertainty(p: f32) -> f32 {
    let d = 2.0 * p.clamp(0.0, 1.0) - 1.0;
    1.0 - d * d
}

/// The mask's temporal state; one per stream.
#[derive(Debug, Default)]
pub struct MaskHistory {
    mixed: Vec<f32>,
    /// The raw masks of the last update and of the one before (swapped, not copied).
    raw: Vec<f32>,
    previous_raw: Vec<f32>,
    /// Whether `previous_raw` belongs to the same shot as `raw` (no reset, no cut).
    compared: bool,
    size: (usize, usize),
    /// The untrusted map, computed on demand for the last update.
    untrusted: Vec<u8>,
    untrusted_valid: bool,
    scratch: Vec<u8>,
    scratch_f: Vec<f32>,
    has_history: bool,
    /// Whether the last update dropped the history at a scene cut.
    cut: bool,
}

impl MaskHistory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the history (flush, seek, caps change).
    pub fn reset(&mut self) {
        self.has_history = false;
    }

    /// Mixes the network's new mask `raw` (`width × height`, 0..1) into the history with
    /// weight `ratio` (0 = the new mask as it is, ..< 1). Returns the mixed mask.
    pub fn update(&mut self, raw: &[f32], width: usize, height: usize, ratio: f32) -> &[f32] {
        assert_eq!(raw.len(), width * height, "mask size");
        let ratio = ratio.clamp(0.0, 0.99);
        std::mem::swap(&mut self.raw, &mut self.previous_raw);
        self.raw.clear();
        self.raw.extend_from_slice(raw);
        let continuing = self.has_history && self.previous_raw.len() == raw.len();
        self.cut = continuing && mean_abs_diff(raw, &self.previous_raw) > SCENE_CUT;
        self.compared = continuing && !self.cut;
        if self.compared {
            for (m, &p) in self.mixed.iter_mut().zip(raw) {
                *m = p + (*m - p) * ratio * uncertainty(p);
            }
        } else {
            self.mixed.clear();
            self.mixed.extend_from_slice(raw);
        }
        self.size = (width, height);
        self.untrusted_valid = false;
        self.has_history = true;
        &self.mixed
    }

    /// Moves the mixed mask by `(dx, dy)` mask pixels (the motion since the last update), so
    /// the next update mixes each pixel with where it was; uncovered pixels take the value at
    /// the edge.
    pub fn shift(&mut self, (dx, dy): (isize, isize)) {
        let (w, h) = self.size;
        if (dx, dy) == (0, 0) || !self.has_history || self.mixed.len() != w * h {
            return;
        }
        self.scratch_f.clear();
        self.scratch_f.extend_from_slice(&self.mixed);
        for y in 0..h {
            let sy = (y as isize - dy).clamp(0, h as isize - 1) as usize;
            for x in 0..w {
                let sx = (x as isize - dx).clamp(0, w as isize - 1) as usize;
                self.mixed[y * w + x] = self.scratch_f[sy * w + sx];
            }
        }
    }

    /// The mixed mask of the last update.
    pub fn mask(&self) -> &[f32] {
        &self.mixed
    }

    /// 1 where the last update's mask is unsure or changed (dilated by one pixel), else 0;
    /// at the mask's resolution. Computed on the first call after an update (only the
    /// adaptive band needs it).
    pub fn untrusted(&mut self) -> &[u8] {
        if !self.untrusted_valid {
            let (raw, previous, compared) = (&self.raw, &self.previous_raw, self.compared);
            self.scratch.clear();
            self.scratch
                .extend(self.mixed.iter().enumerate().map(|(i, &m)| {
                    let unsure = (UNSURE_LOW..=UNSURE_HIGH).contains(&m);
                    let changed = compared && (raw[i] - previous[i]).abs() > CHANGE_THRESHOLD;
                    u8::from(unsure || changed)
                }));
            let (width, height) = self.size;
            dilate3(&self.scratch, width, height, &mut self.untrusted);
            self.untrusted_valid = true;
        }
        &self.untrusted
    }

    /// Whether the last update was a scene cut.
    pub fn was_cut(&self) -> bool {
        self.cut
    }
}

fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    let sum: f32 = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum();
    sum / a.len().max(1) as f32
}

/// 3×3 binary dilation of `src` into `dst`.
fn dilate3(src: &[u8], width: usize, height: usize, dst: &mut Vec<u8>) {
    dst.clear();
    dst.resize(src.len(), 0);
    for y in 0..height {
        let (y0, y1) = (y.saturating_sub(1), (y + 1).min(height - 1));
        for x in 0..width {
            let (x0, x1) = (x.saturating_sub(1), (x + 1).min(width - 1));
            let hit = (y0..=y1).any(|yy| src[yy * width + x0..=yy * width + x1].contains(&1));
            dst[y * width + x] = u8::from(hit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A soft disc (2-px ramp) of radius `r` centred at (`cx`, `cy`).
    fn disc(w: usize, h: usize, cx: f32, cy: f32, r: f32) -> Vec<f32> {
        let mut m = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                m[y * w + x] = ((r - d) / 2.0 + 0.5).clamp(0.0, 1.0);
            }
        }
        m
    }

    #[test]
    fn a_shift_moves_the_history_with_the_subject() {
        let (w, h) = (120, 60);
        let mut history = MaskHistory::new();
        // Without history there is nothing to move.
        history.shift((3, 0));
        history.update(&disc(w, h, 40.0, 30.0, 15.0), w, h, 0.7);
        history.shift((10, -2));
        let moved = disc(w, h, 50.0, 28.0, 15.0);
        let off = |m: &[f32]| -> f32 { m.iter().zip(&moved).map(|(a, b)| (a - b).abs()).sum() };
        let before_mixing = off(history.mask());
        assert!(
            before_mixing < 1e-4,
            "moved history differs from the moved disc by {before_mixing}"
        );
        // Mixed with the subject where it now is, the history stays on it.
        history.update(&moved, w, h, 0.7);
        let after_mixing = off(history.mask());
        assert!(after_mixing < 1e-4, "{after_mixing}");
    }

    #[test]
    fn uncertainty_peaks_at_one_half() {
        assert_eq!(uncertainty(0.5), 1.0);
        assert_eq!(uncertainty(0.0), 0.0);
        assert_eq!(uncertainty(1.0), 0.0);
        assert!(uncertainty(0.3) > uncertainty(0.1));
    }

    #[test]
    fn a_subject_moving_10_px_per_frame_leaves_no_ghost() {
        let (w, h) = (200, 60);
        let mut history = MaskHistory::new();
        let mut ema = Vec::new();
        let mut ghost_ours = 0;
        let mut ghost_ema = 0;
        for f in 0..12 {
            let cx = 30.0 + 10.0 * f as f32;
            let raw = disc(w, h, cx, 30.0, 20.0);
            let mixed = history.update(&raw, w, h, 0.9).to_vec();
            if ema.is_empty() {
                ema = raw.clone();
            } else {
                for (e, &p) in ema.iter_mut().zip(&raw) {
                    *e = 0.9 * *e + 0.1 * p;
                }
            }
            // Trailing ghost: pixels behind the disc (x < cx - r - 2) still above 0.5.
            let row = 30 * w;
            let behind = |m: &[f32]| {
                (0..w)
                    .filter(|&x| (x as f32) < cx - 22.0 && m[row + x] >= 0.5)
                    .count()
            };
            ghost_ours = ghost_ours.max(behind(&mixed));
            ghost_ema = ghost_ema.max(behind(&ema));
        }
        assert!(ghost_ours <= 2, "ghost {ghost_ours} px wide");
        assert!(
            ghost_ema > 10,
            "a plain moving average does lag ({ghost_ema} px)"
        );
    }

    #[test]
    fn an_unsure_dropout_is_held_and_marked_untrusted() {
        let (w, h) = (80, 40);
        let mut history = MaskHistory::new();
        let full = disc(w, h, 40.0, 20.0, 15.0);
        history.update(&full, w, h, 0.9);
        history.update(&full, w, h, 0.9);
        // The network hesitates on a chunk of the subject (p = 0.45 instead of 1).
        let mut bitten = full.clone();
        for y in 15..25 {
            for x in 45..55 {
                bitten[y * w + x] = 0.45;
            }
        }
        let mixed = history.update(&bitten, w, h, 0.9).to_vec();
        let i = 20 * w + 50;
        assert!(mixed[i] >= 0.5, "held: {}", mixed[i]);
        assert_eq!(
            history.untrusted()[i],
            1,
            "the chunk goes to the unknown band"
        );
        // A sure pixel far from the contour is trusted.
        assert_eq!(history.untrusted()[2 * w + 2], 0);
    }

    #[test]
    fn a_scene_cut_drops_the_history() {
        let (w, h) = (40, 20);
        let mut history = MaskHistory::new();
        history.update(&vec![1.0; w * h], w, h, 0.9);
        let out = history.update(&vec![0.5; w * h], w, h, 0.9).to_vec();
        assert!(history.was_cut());
        assert!(out.iter().all(|&v| v == 0.5));
    }

    #[test]
    fn ratio_zero_is_the_raw_mask() {
        let (w, h) = (30, 20);
        let mut history = MaskHistory::new();
        history.update(&disc(w, h, 10.0, 10.0, 6.0), w, h, 0.0);
        let raw = disc(w, h, 12.0, 10.0, 6.0);
        assert_eq!(history.update(&raw, w, h, 0.0), &raw[..]);
    }
}
