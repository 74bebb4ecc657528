//! Matting-Laplacian refinement of the unknown band: closed-form matting (Levin, Lischinski,
//! Weiss 2008) solved in real time.
//!
//! Inside the crop around the unknown band the refinement minimises
//! `αᵀLα + Σᵢ wᵢ(αᵢ − α_net,ᵢ)²`, `wᵢ = λ + trust·(2α_net,ᵢ − 1)²`, over the unknown pixels: the
//! net's alpha is the warm start and, with `trust` > 0 (off by default), a soft target where
//! the net is sure of it (where it hesitates — fog around hair — the colour model decides).
//! The trimap's known foreground (1) and background (0) are hard constraints; `L` is the
//! matting Laplacian: in every `(2r+1)²` window, alpha is assumed to be an affine function of
//! colour, `α ≈ aᵀI + b`.
//! That assumption holds for hair, fur and leaves as a camera sees them, which is why the
//! classical solver keeps strands that a small network blurs into fog.
//!
//! Solver: conjugate gradient with a diagonal preconditioner (the number of windows covering a
//! pixel), warm-started from the net, with `L·p`
//! evaluated the way He, Sun and Tang do it ("Fast matting using large kernel matting Laplacian
//! matrices", CVPR 2010) — box sums of `p` and `I·p`, a 3×3 solve per window, box sums of the
//! resulting `a, b` — never forming `L`. Two things make it fit a frame budget:
//! - **Coarse to fine**: the problem is solved on a 2×-downsampled pyramid first (where a window
//!   covers 4× the area and an iteration costs ¼), and each solution, carried up by a guided
//!   filter, warm-starts the next level.
//! - **Only where it matters**: with `p` zero outside the unknown set `U`, every box sum is needed
//!   only on `U` dilated by `r` or `2r`, so all passes run over per-row spans of those sets
//!   (O(band area) per iteration, not O(crop area)). Horizontal box sums are running sums (their
//!   cost does not depend on `r`); vertical ones add `2r+1` rows of a span.
//!
//! Windows are clipped at the crop border (each clipped window's Laplacian is still symmetric
//! positive semi-definite, so CG applies unchanged). Buffers live in the solver and are reused
//! across frames and crop sizes: after warm-up nothing is allocated per frame.

mod boxsum;
mod laplacian;
mod pyramid;
#[cfg(target_arch = "x86_64")]
mod simd;
mod solver;
mod spans;
#[cfg(test)]
mod tests;

use ndarray::ArrayView3;

use crate::filter::GuidedUpsampler;
use crate::resize::BilinearAxis;
use laplacian::{Level, MaskScratch};

/// Default CG iterations at the finest solved level, which [`DEFAULT_REFINE_SIZE`] keeps at
/// most 256 px across: at 640×360 and above, 16 iterations there cost about one at full
/// resolution (results/refine_schedule.md).
pub const DEFAULT_REFINE_ITERATIONS: u32 = 16;
/// Default CG iterations of the pyramid level below the finest solved one; each level further
/// down runs twice as many ([`RefineSettings::coarse_iterations`]). The coarse levels carry the
/// solution across the band, and iterations there bought more than at the finest level
/// (results/refine_schedule.md).
pub const DEFAULT_REFINE_COARSE_ITERATIONS: u32 = 32;
/// Default window radius at full resolution (windows are `(2r+1)²`): with the pyramid doing
/// the long-range work, 3×3 windows matched 5×5 in less time (results/refine_curve.md).
pub const DEFAULT_REFINE_RADIUS: u32 = 1;
/// CG iterations of the quality preset ([`RefineSettings::quality`]): the fewest, in powers
/// of two, that reach pymatting's closed-form SAD on the tuning stills
/// (results/refine_curve.md).
pub const QUALITY_REFINE_ITERATIONS: u32 = 256;
/// Finest solved level of the quality preset: crops up to 512 px are solved at full
/// resolution.
pub const QUALITY_REFINE_SIZE: u32 = 512;
/// Window radius of the quality preset (Levin et al.'s 3×3 windows).
pub const QUALITY_REFINE_RADIUS: u32 = 1;
/// `ε` of the quality preset, Levin et al.'s and pymatting's: converged, the solver then
/// matches pymatting's closed-form matte, where 1e-6 converges to a smoother one
/// (results/refine_curve.md, results/refine_schedule.md).
pub const QUALITY_REFINE_EPSILON: f32 = 1e-7;
/// Default weight of the data term towards the net's alpha (0 = pure warm start).
pub const DEFAULT_REFINE_LAMBDA: f32 = 0.0;
/// Default number of pyramid levels (1 = full resolution only): 5 (down to 1/16) beat fewer
/// levels at the same iterations (results/refine_schedule.md).
pub const DEFAULT_REFINE_LEVELS: u32 = 5;
/// Default longest side of the finest solved level: larger crops are solved at the first
/// coarser pyramid level within it and brought to full resolution by guided upsampling, which
/// bounds the cost at any frame size; iterations spent there bought more than full-resolution
/// ones (results/refine_schedule.md).
pub const DEFAULT_REFINE_SIZE: u32 = 256;
/// The largest finest-level size at which the default pyramid (5 levels, no data term) still
/// makes the refined matte independent of the net ([`RefineSettings::uses_net`]): its coarsest
/// level is then at most 32 px across.
pub const NET_FREE_MAX_REFINE_SIZE: u32 = 512;
/// Default regularisation `ε` of the window covariance (colours in 0..1); Levin et al. use
/// 1e-7 ([`QUALITY_REFINE_EPSILON`]), a larger value smooths the matte and makes the few
/// real-time iterations better conditioned.
pub const DEFAULT_REFINE_EPSILON: f32 = 1e-6;
/// Range of `ε` accepted by the element and the CLI.
pub const MIN_REFINE_EPSILON: f32 = 1e-9;
/// Largest accepted `ε`.
pub const MAX_REFINE_EPSILON: f32 = 1.0;
/// Largest supported window radius.
pub const MAX_REFINE_RADIUS: u32 = 8;
/// Crops larger than this (2048², ≈ 150 bytes of solver state per pixel, ~630 MB) are not
/// refined: the net's matte is kept and the stage reports no refinement for that frame.
pub const MAX_REFINE_PIXELS: usize = 1 << 22;
/// Regularisation of the guided filter that carries a level's solution to the next finer one
/// (alpha and luma in 0..1).
const GUIDED_EPS: f32 = 1e-4;
/// Largest supported number of pyramid levels.
pub const MAX_REFINE_LEVELS: u32 = 5;
/// Default weight of the net's alpha where the net is sure (the data term weighs
/// `λ + trust·(2α_net − 1)²`): off, because on the real photo the net is confidently wrong
/// and trust keeps its errors, though 0.5 wins on synthetic data (results/refine_trust.md).
pub const DEFAULT_REFINE_TRUST: f32 = 0.0;
/// Largest accepted trust weight.
pub const MAX_REFINE_TRUST: f32 = 1000.0;

/// Which refinement runs after the matting net.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefineMethod {
    /// The net's matte as it is.
    None,
    /// Matting-Laplacian (closed-form) refinement warm-started from the net (the default).
    #[default]
    Laplacian,
}

/// Settings of the refinement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefineSettings {
    pub method: RefineMethod,
    /// CG iterations at the finest solved level (full resolution unless `size` caps it).
    pub iterations: u32,
    /// CG iterations of the level below the finest solved one, doubled at each level further
    /// down: the level `k` steps below the finest runs
    /// `max(coarse_iterations, 2·iterations) · 2^(k−1)`.
    pub coarse_iterations: u32,
    /// Window radius at full resolution; coarser levels use `⌈r/2⌉`.
    pub radius: u32,
    /// Weight of the data term towards the net's alpha, ≥ 0.
    pub lambda: f32,
    /// Pyramid levels, 1 ..= [`MAX_REFINE_LEVELS`].
    pub levels: u32,
    /// Covariance regularisation ε.
    pub epsilon: f32,
    /// Longest side, in pixels, of the finest level that is solved; larger crops are solved
    /// at the first pyramid level within it and upsampled (0 = always full resolution).
    pub size: u32,
    /// Weight of the net's alpha scaled by its certainty, 0 ..= [`MAX_REFINE_TRUST`]: each
    /// unknown pixel's data term weighs `lambda + trust·(2α − 1)²` (0 = off).
    pub trust: f32,
}

/// The shipped defaults: what the `slimmatte` element, `mattebin`, the CLI, `eval` and `bench`
/// run unless told otherwise.
impl Default for RefineSettings {
    fn default() -> Self {
        Self {
            method: RefineMethod::Laplacian,
            iterations: DEFAULT_REFINE_ITERATIONS,
            coarse_iterations: DEFAULT_REFINE_COARSE_ITERATIONS,
            radius: DEFAULT_REFINE_RADIUS,
            lambda: DEFAULT_REFINE_LAMBDA,
            levels: DEFAULT_REFINE_LEVELS,
            epsilon: DEFAULT_REFINE_EPSILON,
            size: DEFAULT_REFINE_SIZE,
            trust: DEFAULT_REFINE_TRUST,
        }
    }
}

impl RefineSettings {
    /// CG iterations of the level `below` steps under the finest solved one (0 = the finest).
    pub fn level_iterations(&self, below: usize) -> usize {
        if below == 0 {
            self.iterations as usize
        } else {
            let first = self
                .coarse_iterations
                .max(self.iterations.saturating_mul(2)) as usize;
            first.saturating_mul(1 << (below - 1))
        }
    }

    /// No refinement: the net's matte as it is.
    pub fn none() -> Self {
        Self {
            method: RefineMethod::None,
            ..Self::default()
        }
    }

    /// The quality preset: closer to a converged closed-form solve, for offline use. It never
    /// holds the net's alpha (trust 0, whatever the default): converged, the colour model beats
    /// the net (results/refine_trust.md).
    pub fn quality() -> Self {
        Self {
            method: RefineMethod::Laplacian,
            iterations: QUALITY_REFINE_ITERATIONS,
            coarse_iterations: 2 * QUALITY_REFINE_ITERATIONS,
            size: QUALITY_REFINE_SIZE,
            radius: QUALITY_REFINE_RADIUS,
            epsilon: QUALITY_REFINE_EPSILON,
            trust: 0.0,
            ..Self::default()
        }
    }

    /// Whether a refinement runs at all.
    pub fn enabled(&self) -> bool {
        self.method != RefineMethod::None && self.iterations > 0
    }

    /// Whether the refined matte can depend on the net's: always, except when a refinement
    /// runs with no data term (`lambda` and `trust` 0) on the full pyramid
    /// ([`MAX_REFINE_LEVELS`]) with the finest solved level capped at
    /// [`NET_FREE_MAX_REFINE_SIZE`] (so the coarsest level is at most 32 px across). Then the
    /// net is only the warm start of the coarsest level, whose CG (at least 16 steps on that
    /// small grid, [`level_iterations`](Self::level_iterations)) converges from any start,
    /// and every finer level starts from the coarser solution (a flat start and the net's
    /// give the same matte: results/refine_schedule.md). The matting stage then skips the net.
    pub fn uses_net(&self) -> bool {
        !self.enabled()
            || self.lambda > 0.0
            || self.trust > 0.0
            || self.levels < MAX_REFINE_LEVELS
            || self.size == 0
            || self.size > NET_FREE_MAX_REFINE_SIZE
    }
}

/// The solver's statistics: what one call of [`LaplacianSolver::refine`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SolveReport {
    /// Unknown pixels at full resolution.
    pub unknown: usize,
    /// Pyramid levels solved.
    pub levels: usize,
    /// Size (width, height) of the finest level solved (the crop's, unless `size` capped it;
    /// then the solution is brought to full resolution by guided upsampling).
    pub finest: (usize, usize),
    /// CG iterations run, all levels together.
    pub iterations: usize,
}

/// The refinement solver; keeps every buffer between calls.
#[derive(Debug, Default)]
pub struct LaplacianSolver {
    levels: Vec<Level>,
    guided: GuidedUpsampler,
    luma_lr: Vec<f32>,
    alpha_lr: Vec<f32>,
    xs: BilinearAxis,
    ys: BilinearAxis,
    row_scratch: Vec<u8>,
    /// The guided filter's coefficients interpolated at one row (`a`, then `b`).
    coef_rows: Vec<f32>,
    masks: MaskScratch,
    residuals: Vec<f64>,
}

impl LaplacianSolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Refines `alpha` (`w × h`, the net's matte on entry) for the RGBA `crop` whose alpha
    /// channel is the trimap. Known pixels of the trimap come out exactly 0 or 1, unknown ones
    /// in `[0, 1]`. Non-finite warm-start values are treated as 0.5.
    pub fn refine(
        &mut self,
        crop: &ArrayView3<'_, u8>,
        alpha: &mut [f32],
        settings: &RefineSettings,
    ) -> SolveReport {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { self.refine_avx2(crop, alpha, settings) };
        }
        self.refine_impl(crop, alpha, settings)
    }

    /// ‖r‖ of the CG solve of the finest solved level in the last call: the initial residual,
    /// then one value per iteration.
    pub fn residuals(&self) -> &[f64] {
        &self.residuals
    }
}
