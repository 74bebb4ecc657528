//! Command-line front end: builds GStreamer pipelines out of the project's elements.

pub mod bench;
pub mod eval;
pub mod output;
pub mod plugin;
pub mod refine_args;
pub mod refine_curve;
pub mod run;
pub mod soak;
