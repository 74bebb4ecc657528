//! What measuring and training the matting pipeline need and the runtime does not: the
//! Composition-1k matte metrics ([`metrics`]), which data is held out from training
//! ([`heldout`]) and the deterministic random numbers that make the synthetic sets
//! reproducible ([`rng`]). Used by `slimmatte eval`/`bench` (`cli/`) and `training/`; the
//! runtime core (`slimmatte`) and the GStreamer plugin do not depend on it.

pub mod heldout;
pub mod metrics;
pub mod rng;
