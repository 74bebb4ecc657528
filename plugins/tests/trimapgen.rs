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

/// The astronaut shifted right by `dx` pixels (edge column repeated): the same scene, moved.
fn shifted_astronaut(w: u32, h: u32, dx: usize) -> gst::Buffer {
    let src = astronaut_buffer(w, h);
    let map = src.map_readable().unwrap();
    let (w, h) = (w as usize, h as usize);
    let mut out = vec![0u8; w * h * 4];
    for y in 0..h {
        for x in 0..w {
            let sx = x.saturating_sub(dx);
            out[(y * w + x) * 4..][..4].copy_from_slice(&map[(y * w + sx) * 4..][..4]);
        }
    }
    gst::Buffer::from_mut_slice(out)
}

/// The soft mask `trimapgen` (smoothing 0.9) puts out for `frames` pushed in order, the last
/// one's; `between` runs on the harness before the last frame.
fn last_mask(
    frames: &[(i32, i32, gst::Buffer)],
    between: impl FnOnce(&mut gst_check::Harness),
) -> Vec<u8> {
    let mut h = harness(&[("output", "mask"), ("smoothing", "0.9")]);
    let mut between = Some(between);
    let mut last = Vec::new();
    for (i, (w, hh, buf)) in frames.iter().enumerate() {
        if i + 1 == frames.len()
            && let Some(f) = between.take()
        {
            f(&mut h);
        }
        h.set_src_caps(rgba_caps(*w, *hh));
        h.push(buf.clone()).unwrap();
        last = alpha_of(&h.pull().unwrap());
    }
    last
}

#[test]
fn flush_and_caps_changes_reset_the_mask_history() {
    init();
    let a = (320, 180, astronaut_buffer(320, 180));
    let b = (320, 180, shifted_astronaut(320, 180, 12));
    let fresh = last_mask(std::slice::from_ref(&b), |_| {});
    let continued = last_mask(&[a.clone(), b.clone()], |_| {});
    assert_ne!(
        fresh, continued,
        "the history is used (else this test proves nothing)"
    );
    let flushed = last_mask(&[a.clone(), b.clone()], |h| {
        assert!(h.push_event(gst::event::FlushStart::new()));
        assert!(h.push_event(gst::event::FlushStop::new(true)));
        let segment = gst::FormattedSegment::<gst::ClockTime>::new();
        assert!(h.push_event(gst::event::Segment::new(&segment)));
    });
    assert_eq!(flushed, fresh, "a flush drops the history");
    // A caps change (new size) drops it too.
    let b2 = (328, 184, shifted_astronaut(328, 184, 12));
    let fresh2 = last_mask(std::slice::from_ref(&b2), |_| {});
    let resized = last_mask(&[a, b2], |_| {});
    assert_eq!(resized, fresh2, "a caps change drops the history");
}

#[test]
fn band_bias_moves_the_band_across_the_contour() {
    // The same mask and band width: with bias +0.6 the band takes pixels the band-free trimap
    // calls background (outside the contour) and leaves more of its foreground alone; -0.6
    // the other way round.
    let trimap = |props: &[(&str, &str)]| {
        let mut h = harness(props);
        h.set_src_caps(rgba_caps(320, 180));
        h.push(astronaut_buffer(320, 180)).unwrap();
        alpha_of(&h.pull().unwrap())
    };
    let binary = trimap(&[("band-width", "0"), ("band-fraction", "0")]);
    let shares = |bias: &str| {
        let t = trimap(&[("band-width", "8"), ("band-bias", bias)]);
        let (mut outside, mut inside) = (0usize, 0usize);
        for (&b, &v) in binary.iter().zip(&t) {
            if v == 128 {
                if b == 0 {
                    outside += 1;
                } else {
                    inside += 1;
                }
            }
        }
        (outside, inside)
    };
    let (out_pos, in_pos) = shares("0.6");
    let (out_neg, in_neg) = shares("-0.6");
    assert!(
        out_pos > 2 * in_pos,
        "bias 0.6: {out_pos} outside, {in_pos} inside"
    );
    assert!(
        in_neg > 2 * out_neg,
        "bias -0.6: {out_neg} outside, {in_neg} inside"
    );
}

#[test]
fn pose_runs_with_the_shipped_model_and_a_missing_one_is_an_error() {
    let mut h = harness(&[("pose", "true")]);
    h.set_src_caps(rgba_caps(640, 360));
    h.push(astronaut_buffer(640, 360)).unwrap();
    let alpha = alpha_of(&h.pull().unwrap());
    assert!(alpha.iter().all(|&a| a == 0 || a == 128 || a == 255));
    let msg = start_failure(
        "trimapgen",
        &[("pose", "true"), ("pose-model", "/no/such/pose.onnx")],
    );
    assert!(
        msg.contains("pose model") && msg.contains("/no/such/pose.onnx"),
        "{msg}"
    );
    // A detector that is not a detector (the landmark model: other input size and outputs)
    // is one clear error at start.
    let pose_model = slimmatte::paths::default_pose_model();
    let msg = start_failure(
        "trimapgen",
        &[
            ("pose", "true"),
            ("pose-detector-model", pose_model.to_str().unwrap()),
        ],
    );
    assert!(
        msg.contains("pose model") && msg.contains("pose_landmark_full.onnx"),
        "{msg}"
    );
    // With pose=false the pose model is not even opened.
    let mut h = harness(&[("pose", "false"), ("pose-model", "/no/such/pose.onnx")]);
    h.set_src_caps(rgba_caps(64, 36));
    h.push(astronaut_buffer(64, 36)).unwrap();
    assert!(h.pull().is_ok());
}
