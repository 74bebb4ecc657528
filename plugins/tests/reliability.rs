//! Reliability of the elements: bad frames and sizes, bad models at run time, out-of-range
//! properties, flushes, repeated state changes, many instances, concurrent pipelines and QoS.

mod common;

use common::*;
use gst::glib;
use gst::prelude::*;

/// The full chain with the luma-key fixture as matting net, as one Harness (via a bin).
fn chain_harness() -> gst_check::Harness {
    init();
    gst_check::Harness::new_parse(&format!(
        "trimapgen ! slimmatte model={} ! bgreplace background=color",
        fixture("luma_key_matte.onnx")
    ))
}

#[test]
fn odd_and_extreme_sizes_pass_through_the_chain() {
    for (w, h) in [(1, 1), (3, 5), (2, 2), (17, 1), (1, 17), (4096, 2160)] {
        let mut h_ = chain_harness();
        h_.set_src_caps(rgba_caps(w, h));
        let data: Vec<u8> = (0..(w * h * 4) as usize)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        h_.push(gst::Buffer::from_slice(data)).unwrap();
        let out = h_.pull().unwrap();
        assert_eq!(out.size(), (w * h * 4) as usize, "{w}×{h}");
        let map = out.map_readable().unwrap();
        assert!(
            map.chunks_exact(4).all(|p| p[3] == 255),
            "{w}×{h}: opaque output"
        );
    }
}

#[test]
fn uniform_and_noise_frames_are_handled() {
    let (w, h) = (160usize, 90usize);
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("black", [0u8, 0, 0, 255].repeat(w * h)),
        ("white", [255u8, 255, 255, 255].repeat(w * h)),
        (
            "noise",
            (0..w * h * 4)
                .map(|i| ((i as u64).wrapping_mul(6364136223846793005) >> 56) as u8)
                .collect(),
        ),
    ];
    for (name, data) in frames {
        init();
        let tg = gst::ElementFactory::make("trimapgen").build().unwrap();
        let mut h_ = harness_for(&tg);
        h_.set_src_caps(rgba_caps(w as i32, h as i32));
        h_.push(gst::Buffer::from_slice(data)).unwrap();
        let alpha = alpha_of(&h_.pull().unwrap());
        assert!(
            alpha.iter().all(|&a| a == 0 || a == 128 || a == 255),
            "{name}: a valid trimap"
        );
    }
}

#[test]
fn trimaps_without_unknown_or_foreground_stay_exact() {
    init();
    let m = gst::ElementFactory::make("slimmatte")
        .property("model", fixture("luma_key_matte.onnx"))
        .build()
        .unwrap();
    let mut h = harness_for(&m);
    h.set_src_caps(rgba_caps(8, 2));
    for trimap in [[0u8; 16], [255u8; 16]] {
        let data: Vec<u8> = trimap.iter().flat_map(|&t| [200, 10, 10, t]).collect();
        h.push(gst::Buffer::from_slice(data.clone())).unwrap();
        let out = h.pull().unwrap();
        assert_eq!(out.map_readable().unwrap().as_slice(), data.as_slice());
    }
}

/// Plays `element model=<fixture>` on a few test frames and checks that it ends with an error
/// naming NaN and the model file.
fn assert_nan_model_error(element: &str, model: &str) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,width=64,height=36 ! videoconvert \
         ! video/x-raw,format=RGBA ! {element} model={} ! fakesink",
        fixture(model)
    ))
    .unwrap();
    let msg = play_until_error_or_eos(&pipeline);
    match msg.view() {
        gst::MessageView::Error(e) => {
            let text = format!("{} {:?}", e.error(), e.debug());
            assert!(text.contains("NaN") && text.contains(model), "{text}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn nan_model_output_posts_an_error_instead_of_garbage() {
    // The NaN model has fixed 256×144 input: the warm-up in start() already catches it.
    assert_nan_model_error("trimapgen", "nan_output.onnx");
}

/// The default refinement does not use the matting net's output, so frames would never run
/// it; `start()` runs it once anyway, so a NaN-producing model is still an error at once.
#[test]
fn nan_matting_model_is_an_error_even_when_the_defaults_skip_the_net() {
    assert_nan_model_error("slimmatte", "nan_matte.onnx");
}

#[test]
fn properties_declare_the_ranges_glib_enforces() {
    init();
    let doubles = [
        ("trimapgen", "band-fraction", 0.9),
        ("trimapgen", "threshold", 1.5),
        ("trimapgen", "smoothing", -0.1),
        ("bgreplace", "blur-sigma", 0.0),
        ("slimmatte", "smoothing", 0.99),
    ];
    for (factory, name, bad) in doubles {
        let p = element(factory, &[]).find_property(name).unwrap();
        let p = p.downcast_ref::<glib::ParamSpecDouble>().unwrap();
        assert!(
            bad < p.minimum() || bad > p.maximum(),
            "{factory}.{name} accepts {bad}"
        );
    }
    let uints = [
        ("bgreplace", "color", 0x1_000_000u32),
        ("slimmatte", "working-size", 100_000),
        ("trimapgen", "band-width", 10_000),
    ];
    for (factory, name, bad) in uints {
        let p = element(factory, &[]).find_property(name).unwrap();
        let p = p.downcast_ref::<glib::ParamSpecUInt>().unwrap();
        assert!(bad > p.maximum(), "{factory}.{name} accepts {bad}");
    }
}

#[test]
fn gst_launch_warns_about_an_out_of_range_value_and_keeps_the_default() {
    let out = std::process::Command::new("gst-launch-1.0")
        .args([
            "videotestsrc",
            "num-buffers=2",
            "!",
            "videoconvert",
            "!",
            "trimapgen",
            "threshold=3.0",
            "!",
            "fakesink",
        ])
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("threshold") && stderr.contains("out of range"),
        "{stderr}"
    );
}

#[test]
fn buffers_without_timestamps_are_processed() {
    let mut h = chain_harness();
    h.set_src_caps(rgba_caps(64, 36));
    for _ in 0..3 {
        let buf = astronaut_buffer(64, 36);
        assert!(buf.pts().is_none());
        h.push(buf).unwrap();
        assert_eq!(h.pull().unwrap().size(), 64 * 36 * 4);
    }
}

#[test]
fn flush_resets_and_streaming_continues() {
    let mut h = chain_harness();
    h.set_src_caps(rgba_caps(64, 36));
    h.push(astronaut_buffer(64, 36)).unwrap();
    h.pull().unwrap();
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    h.push(astronaut_buffer(64, 36)).unwrap();
    assert_eq!(h.pull().unwrap().size(), 64 * 36 * 4);
    assert!(h.push_event(gst::event::Eos::new()));
}

#[test]
fn repeated_state_changes_and_many_instances() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=4 ! video/x-raw,width=96,height=54 ! videoconvert \
         ! trimapgen ! slimmatte model={m} ! bgreplace ! fakesink \
         videotestsrc num-buffers=4 ! video/x-raw,width=64,height=64 ! videoconvert \
         ! trimapgen output=mask ! bgreplace background=color ! fakesink",
        m = fixture("luma_key_matte.onnx")
    ))
    .unwrap();
    let bus = pipeline.bus().unwrap();
    for round in 0..5 {
        pipeline.set_state(gst::State::Playing).unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(20),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("finishes");
        assert!(
            matches!(msg.view(), gst::MessageView::Eos(_)),
            "round {round}: {msg:?}"
        );
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

#[test]
fn concurrent_pipelines_in_threads() {
    init();
    let m = fixture("luma_key_matte.onnx");
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let m = m.clone();
            std::thread::spawn(move || {
                let mut h = gst_check::Harness::new_parse(&format!(
                    "trimapgen ! slimmatte model={m} ! bgreplace background=color color={}",
                    i * 1000
                ));
                h.set_src_caps(rgba_caps(80, 45));
                for _ in 0..10 {
                    h.push(astronaut_buffer(80, 45)).unwrap();
                    assert_eq!(h.pull().unwrap().size(), 80 * 45 * 4);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("no panic in any pipeline");
    }
}

/// Pushes buffers at 30 fps timestamps after telling the element (with a QoS event) that
/// downstream is 1 s late; returns how many came out.
fn frames_out_when_late(qos: bool) -> usize {
    init();
    let tg = gst::ElementFactory::make("trimapgen")
        .property("qos", qos)
        .build()
        .unwrap();
    let mut h = harness_for(&tg);
    h.set_src_caps(rgba_caps(64, 36));
    let frame = gst::ClockTime::from_nseconds(33_333_333);
    let push = |h: &mut gst_check::Harness, i: u64| {
        let mut buf = astronaut_buffer(64, 36);
        let b = buf.get_mut().unwrap();
        b.set_pts(frame * i);
        b.set_duration(frame);
        h.push(buf).unwrap();
    };
    push(&mut h, 0);
    // Downstream reports the frame at 0 s arrived 1 s late.
    h.push_upstream_event(gst::event::Qos::new(
        gst::QOSType::Overflow,
        0.5,
        gst::ClockTimeDiff::from(1_000_000_000i64),
        gst::ClockTime::ZERO,
    ));
    for i in 1..6 {
        push(&mut h, i); // pts 33..166 ms: all before the 1 s earliest time
    }
    h.buffers_in_queue() as usize
}

#[test]
fn qos_drops_late_frames_unless_disabled() {
    let with_qos = frames_out_when_late(true);
    let without = frames_out_when_late(false);
    assert_eq!(without, 6, "qos=false never drops");
    assert_eq!(with_qos, 1, "the 5 late frames are dropped with qos=true");
}
