//! `trimapgen` element tests with the gstreamer-check Harness and the shipped model.

mod common;

use common::*;
use gst::prelude::*;

fn harness(props: &[(&str, &str)]) -> gst_check::Harness {
    element_harness("trimapgen", props)
}

#[test]
fn writes_a_trimap_into_alpha() {
    let mut h = harness(&[("band-width", "6")]);
    h.set_src_caps(rgba_caps(640, 360));
    let input = astronaut_buffer(640, 360);
    let rgb_in = rgb_of(&input);
    h.push(input).unwrap();
    let out = h.pull().unwrap();
    let alpha = alpha_of(&out);
    assert_eq!(alpha.len(), 640 * 360, "output keeps the frame size");
    assert!(alpha.iter().all(|&a| a == 0 || a == 128 || a == 255));
    for v in [0u8, 128, 255] {
        assert!(
            alpha.iter().filter(|&&a| a == v).count() > 640 * 360 / 100,
            "class {v} present"
        );
    }
    assert_eq!(rgb_in, rgb_of(&out), "colour passes through");
}

#[test]
fn mask_output_is_soft() {
    let mut h = harness(&[("output", "mask")]);
    h.set_src_caps(rgba_caps(320, 180));
    h.push(astronaut_buffer(320, 180)).unwrap();
    let alpha = alpha_of(&h.pull().unwrap());
    let soft = alpha
        .iter()
        .filter(|&&a| a > 5 && a < 250 && a != 128)
        .count();
    assert!(soft > 50, "soft mask values: {soft}");
    assert!(alpha.iter().any(|&a| a >= 250) && alpha.iter().any(|&a| a <= 5));
}

#[test]
fn wider_band_property_gives_more_unknown() {
    let unknown = |band: &str| {
        let mut h = harness(&[("band-width", band), ("smoothing", "0")]);
        h.set_src_caps(rgba_caps(320, 180));
        h.push(astronaut_buffer(320, 180)).unwrap();
        alpha_of(&h.pull().unwrap())
            .iter()
            .filter(|&&a| a == 128)
            .count()
    };
    let (narrow, wide) = (unknown("3"), unknown("12"));
    assert!(wide > narrow * 2, "band 12 ({wide}) vs band 3 ({narrow})");
}

#[test]
fn caps_change_mid_stream_follows_the_new_size() {
    let mut h = harness(&[]);
    h.set_src_caps(rgba_caps(320, 180));
    h.push(astronaut_buffer(320, 180)).unwrap();
    assert_eq!(h.pull().unwrap().size(), 320 * 180 * 4);
    h.set_src_caps(rgba_caps(160, 120));
    h.push(astronaut_buffer(160, 120)).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(out.size(), 160 * 120 * 4);
    let alpha = alpha_of(&out);
    assert!(alpha.contains(&255) && alpha.contains(&0));
}

#[test]
fn eos_after_n_frames_yields_n_frames() {
    let n = buffers_until_eos(
        "videotestsrc num-buffers=7 pattern=ball ! video/x-raw,width=160,height=90 ! videoconvert ! trimapgen",
    );
    assert_eq!(n, 7);
}

#[test]
fn latency_query_reports_processing_time() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! videoconvert ! trimapgen name=t ! fakesink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    pipeline.state(gst::ClockTime::from_seconds(10)).0.unwrap();
    let t = pipeline.by_name("t").unwrap();
    let mut q = gst::query::Latency::new();
    assert!(
        t.static_pad("src").unwrap().query(&mut q),
        "latency query answered"
    );
    let (live, min, _max) = q.result();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(live);
    // videotestsrc live reports one frame (33 ms) of its own; trimapgen adds its measured
    // processing time on top, which is more than zero.
    assert!(
        min > gst::ClockTime::from_nseconds(33_333_334),
        "min latency {min}"
    );
}

#[test]
fn missing_model_posts_an_error_naming_the_file() {
    let msg = start_failure("trimapgen", &[("model", "/no/such/segmenter.onnx")]);
    assert!(
        msg.contains("/no/such/segmenter.onnx") && msg.contains("does not exist"),
        "{msg}"
    );
}

#[test]
fn wrong_model_shape_posts_an_error() {
    let msg = start_failure("trimapgen", &[("model", &fixture("wrong_shape.onnx"))]);
    assert!(
        msg.contains("wrong_shape.onnx") && msg.contains("[1, 2, 64, 64]"),
        "{msg}"
    );
}

#[test]
fn non_rgba_caps_are_refused() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=1 ! video/x-raw,format=I420 ! trimapgen ! fakesink",
    );
    // Either parse-time linking fails or negotiation fails at run time.
    if let Ok(p) = pipeline {
        let msg = play_until_error_or_eos(&p);
        assert!(
            matches!(msg.view(), gst::MessageView::Error(_)),
            "I420 must not be accepted"
        );
    }
}
