//! Command-line front end: builds GStreamer pipelines out of the project's elements.

pub mod demo;
pub mod output;
pub mod plugin;
