//! The AVX2 + FMA build of the refinement.

use ndarray::ArrayView3;

use super::{LaplacianSolver, RefineSettings, SolveReport};

impl LaplacianSolver {
    /// [`refine`](Self::refine) compiled for AVX2 + FMA: the same code, with the hot loops
    /// (inlined into this function) vectorised 4 × f64 wide instead of SSE2's 2. Measured on
    /// the built-in clip at 640×360: quality preset 31 vs 41 ms, default 6.5 vs 7.5 ms.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn refine_avx2(
        &mut self,
        crop: &ArrayView3<'_, u8>,
        alpha: &mut [f32],
        settings: &RefineSettings,
    ) -> SolveReport {
        self.refine_impl(crop, alpha, settings)
    }
}
