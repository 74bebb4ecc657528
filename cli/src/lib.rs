//! The `slimmatte` command line: GStreamer pipelines built out of the project's elements
//! (registered statically from the plugin crate), and the evaluation and benchmark harnesses
//! with their data (the built-in clip, synthetic composites, the peers).

pub mod bench;
pub mod clip;
pub mod eval;
pub mod interrupt;
pub mod output;
pub mod peers;
pub mod people;
pub mod plot;
pub mod plugin;
pub mod refine_args;
pub mod refine_curve;
pub mod run;
pub mod sequence;
pub mod soak;

#[cfg(test)]
mod default_tests;
