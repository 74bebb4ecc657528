//! Real `gst-launch-1.0` pipelines with the built plugin: file → trimapgen → bgreplace →
//! encoder → file, checked by decoding the result.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use gst::prelude::*;

fn gst_launch(description: &str) {
    let args: Vec<&str> = description.split_whitespace().collect();
    let out = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(&args)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .expect("gst-launch-1.0 runs");
    assert!(
        out.status.success(),
        "gst-launch-1.0 {description} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Decodes a video file and returns its frames as RGBA (width, height, data).
fn decode(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    init();
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
        let caps = sample.caps().unwrap();
        let info = gst_video::VideoInfo::from_caps(caps).unwrap();
        let buf = sample.buffer().unwrap();
        frames.push((
            info.width(),
            info.height(),
            buf.map_readable().unwrap().to_vec(),
        ));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    frames
}

const SOURCE: &str = "filesrc location=ASTRONAUT ! jpegdec ! imagefreeze num-buffers=12 \
    ! videoconvert ! videoscale ! video/x-raw,format=RGBA,width=320,height=180,framerate=30/1";

fn source() -> String {
    SOURCE.replace(
        "ASTRONAUT",
        repo_file("assets/astronaut.jpg").to_str().unwrap(),
    )
}

#[test]
fn png_sequence_keeps_a_varying_alpha() {
    let dir = tempfile::tempdir().unwrap();
    gst_launch(&format!(
        "{} ! trimapgen output=mask ! bgreplace background=transparent ! pngenc ! multifilesink location={}/f%03d.png",
        source(),
        dir.path().display()
    ));
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 12, "one PNG per frame");
    for f in [&files[0], &files[11]] {
        let img = image::open(f).unwrap().to_rgba8();
        let alpha: Vec<u8> = img.pixels().map(|p| p[3]).collect();
        let (lo, hi) = (alpha.iter().min().unwrap(), alpha.iter().max().unwrap());
        assert!(
            *lo < 10 && *hi > 245,
            "alpha spans background and person in {}",
            f.display()
        );
        let mean = alpha.iter().map(|&a| a as f64).sum::<f64>() / alpha.len() as f64;
        assert!(
            mean > 60.0 && mean < 240.0,
            "person covers part of the frame: {mean}"
        );
    }
}

#[test]
fn mp4_with_colour_background_has_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("out.mp4");
    gst_launch(&format!(
        "{} ! trimapgen output=mask ! bgreplace background=color color=0x0000ff ! videoconvert \
         ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location={}",
        source(),
        mp4.display()
    ));
    let frames = decode(&mp4);
    assert_eq!(frames.len(), 12);
    let (w, _h, data) = &frames[6];
    let px = |x: u32, y: u32| {
        let i = ((y * w + x) * 4) as usize;
        [data[i], data[i + 1], data[i + 2]]
    };
    // Top-right corner is studio wall in the photo: now blue. The face keeps skin colours.
    let corner = px(310, 8);
    assert!(
        corner[2] > 200 && corner[0] < 60 && corner[1] < 60,
        "corner {corner:?}"
    );
    let face = px(144, 30);
    assert!(
        face[0] > 120 && face[0] > face[2] + 20,
        "face keeps its colour, not blue: {face:?}"
    );
}

#[test]
fn trimap_output_through_videoconvert_to_png() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("trimap.png");
    gst_launch(&format!(
        "{} ! trimapgen band-width=5 ! videoconvert ! pngenc snapshot=true ! filesink location={}",
        source(),
        png.display()
    ));
    let img = image::open(&png).unwrap().to_rgba8();
    let classes: std::collections::BTreeSet<u8> = img.pixels().map(|p| p[3]).collect();
    assert_eq!(classes, [0u8, 128, 255].into_iter().collect());
}
