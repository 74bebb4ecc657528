//! Command-line front end: builds GStreamer pipelines out of the project's elements.

pub mod output;
pub mod plugin;
pub mod run;
pub mod soak;
