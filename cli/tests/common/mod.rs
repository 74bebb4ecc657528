//! Helpers shared by the command's end-to-end tests.
#![allow(dead_code)]

use std::path::Path;

use gst::prelude::*;

/// Every frame of a video file, decoded to packed RGBA (frames up to the first damage for a
/// damaged file).
pub fn decode(path: &Path) -> Vec<Vec<u8>> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        frames.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    frames
}
