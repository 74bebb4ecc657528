//! `slimmatte` (matting element) and `mattebin` tests. The plumbing tests use the luma-key
//! fixture network (alpha = sigmoid(20·(luma − 0.5))) so the expected matte is known.

mod common;

use common::*;
use gst::prelude::*;

fn fixture_model() -> String {
    fixture("luma_key_matte.onnx")
}

/// A Harness around `slimmatte` with the luma-key fixture network and `props`.
fn harness(props: &[(&str, &str)]) -> gst_check::Harness {
    let model = fixture_model();
    element_harness("slimmatte", &[&[("model", model.as_str())], props].concat())
}

/// `w × 2` frame: columns alternate bright / dark; trimap: first quarter bg, last quarter fg,
/// the middle unknown.
fn frame(w: usize) -> (Vec<u8>, Vec<u8>) {
    let mut data = Vec::new();
    let mut trimap = Vec::new();
    for _y in 0..2 {
        for x in 0..w {
            let v = if x % 2 == 0 { 240 } else { 10 };
            let t = if x < w / 4 {
                0
            } else if x >= 3 * w / 4 {
                255
            } else {
                128
            };
            data.extend_from_slice(&[v, v, v, t]);
            trimap.push(t);
        }
    }
    (data, trimap)
}

#[test]
fn alpha_is_exact_in_known_regions_and_soft_net_output_in_the_band() {
    let mut h = harness(&[("working-size", "0"), ("refine", "none")]);
    h.set_src_caps(rgba_caps(64, 2));
    let (data, trimap) = frame(64);
    h.push(gst::Buffer::from_slice(data)).unwrap();
    let out = h.pull().unwrap();
    let map = out.map_readable().unwrap();
    for (i, (px, t)) in map.chunks_exact(4).zip(&trimap).enumerate() {
        match t {
            0 => assert_eq!(px[3], 0, "pixel {i}"),
            255 => assert_eq!(px[3], 255, "pixel {i}"),
            _ if px[0] == 240 => assert!(px[3] > 240, "bright unknown pixel {i}: {}", px[3]),
            _ => assert!(px[3] < 15, "dark unknown pixel {i}: {}", px[3]),
        }
    }
}

/// A horizontal colour ramp from dark (known background) to bright (known foreground): the
/// colour model says alpha is the same ramp, the luma-key net says a hard step. With
/// `refine=laplacian` run long enough and no trust in the net (`refine-trust=0`, the quality
/// preset's) the element outputs the ramp; with `refine=none` the step. (The band net is off:
/// this checks the solver.)
#[test]
fn refinement_turns_the_nets_step_into_the_colour_models_ramp() {
    let (w, h) = (64usize, 16usize);
    let mut data = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            let t = ((x as f32 - 16.0) / 32.0).clamp(0.0, 1.0);
            let v = (20.0 + t * 215.0).round() as u8;
            let tri = if x < 16 {
                0
            } else if x >= 48 {
                255
            } else {
                128
            };
            data.extend_from_slice(&[v, v, v, tri]);
        }
    }
    let run = |props: &[(&str, &str)]| {
        let mut hs = harness(props);
        hs.set_src_caps(rgba_caps(w as i32, h as i32));
        hs.push(gst::Buffer::from_slice(data.clone())).unwrap();
        alpha_of(&hs.pull().unwrap())
    };
    let net = run(&[("working-size", "0"), ("refine", "none")]);
    let refined = run(&[
        ("working-size", "0"),
        ("refine", "laplacian"),
        ("refine-iterations", "300"),
        ("refine-trust", "0"),
        ("band-net", "false"),
    ]);
    for y in [0, h / 2, h - 1] {
        for x in 0..w {
            let want = 255.0 * ((x as f32 - 16.0) / 32.0).clamp(0.0, 1.0);
            let (n, r) = (net[y * w + x] as f32, refined[y * w + x] as f32);
            assert!(
                (r - want).abs() <= 6.0,
                "refined ({x}, {y}): {r} want {want}"
            );
            if (20..28).contains(&x) {
                assert!(
                    (n - want).abs() > 30.0,
                    "the net alone is a step at x = {x}: {n}"
                );
            }
        }
    }
}

/// A `w × h` grey frame whose trimap is a person: foreground in the rectangle from `(x, y)`,
/// 20 × 12 pixels, an unknown ring 6 pixels wide around it, background elsewhere.
fn person(w: usize, h: usize, (x, y): (usize, usize)) -> Vec<u8> {
    let mut data = Vec::with_capacity(w * h * 4);
    for i in 0..w * h {
        let (px, py) = (i % w, i / w);
        let inside = |r: usize| px + r >= x && px < x + 20 + r && py + r >= y && py < y + 12 + r;
        let t = if inside(0) {
            255
        } else if inside(6) {
            128
        } else {
            0
        };
        data.extend_from_slice(&[90, 90, 90, t]);
    }
    data
}

/// With a temporal model (`prev_copy_matte`: alpha = prev_alpha) the band of the second frame
/// shows the first frame's matte at the same place; with `temporal` set to false while
/// playing, or after a flush, it shows the trimap (128).
#[test]
fn temporal_models_get_the_previous_matte_unless_off_or_flushed() {
    let (w, h) = (64usize, 40usize);
    let (first, second) = (person(w, h, (16, 10)), person(w, h, (24, 16)));
    let model = fixture("prev_copy_matte.onnx");
    // The second frame's band alphas, and the first frame's output.
    let run = |between: &dyn Fn(&mut gst_check::Harness)| {
        let mut hs = element_harness(
            "slimmatte",
            &[
                ("model", model.as_str()),
                ("working-size", "0"),
                ("refine", "none"),
            ],
        );
        hs.set_src_caps(rgba_caps(w as i32, h as i32));
        hs.push(gst::Buffer::from_slice(first.clone())).unwrap();
        let out1 = alpha_of(&hs.pull().unwrap());
        between(&mut hs);
        hs.push(gst::Buffer::from_slice(second.clone())).unwrap();
        let out2 = alpha_of(&hs.pull().unwrap());
        let band: Vec<(usize, u8)> = second
            .chunks_exact(4)
            .enumerate()
            .filter(|(_, p)| p[3] == 128)
            .map(|(i, _)| (i, out2[i]))
            .collect();
        (band, out1)
    };
    let (band, out1) = run(&|_| {});
    assert!(band.iter().all(|&(i, a)| a == out1[i]), "{band:?}");
    for v in [0, 128, 255] {
        assert!(band.iter().any(|&(_, a)| a == v), "no band pixel was {v}");
    }
    let (band, _) = run(&|hs| {
        hs.element().unwrap().set_property("temporal", false);
    });
    assert!(
        band.iter().all(|&(_, a)| a == 128),
        "temporal=false: {band:?}"
    );
    let (band, _) = run(&|hs| {
        assert!(hs.push_event(gst::event::FlushStart::new()));
        assert!(hs.push_event(gst::event::FlushStop::new(true)));
        hs.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
    });
    assert!(
        band.iter().all(|&(_, a)| a == 128),
        "after a flush: {band:?}"
    );
}

#[test]
fn grey_output_shows_the_matte() {
    let mut h = harness(&[("output", "grey")]);
    h.set_src_caps(rgba_caps(64, 2));
    h.push(gst::Buffer::from_slice(frame(64).0)).unwrap();
    let out = h.pull().unwrap();
    let map = out.map_readable().unwrap();
    assert!(
        map.chunks_exact(4)
            .all(|p| p[3] == 255 && p[0] == p[1] && p[1] == p[2])
    );
    assert_eq!(map[0], 0, "background pixel is black");
    assert_eq!(map[63 * 4], 255, "foreground pixel is white");
}

#[test]
fn output_follows_caps_changes() {
    let mut h = harness(&[]);
    for w in [64usize, 32, 96] {
        h.set_src_caps(rgba_caps(w as i32, 2));
        h.push(gst::Buffer::from_slice(frame(w).0)).unwrap();
        let out = h.pull().unwrap();
        assert_eq!(out.size(), w * 2 * 4);
    }
}

#[test]
fn eos_after_n_frames_yields_n_frames_through_the_whole_chain() {
    let n = buffers_until_eos(&format!(
        "videotestsrc num-buffers=9 pattern=ball ! video/x-raw,width=160,height=90 ! videoconvert \
         ! trimapgen ! slimmatte model={} ! bgreplace background=color",
        fixture_model()
    ));
    assert_eq!(n, 9);
}

#[test]
fn missing_model_posts_an_error_naming_the_file() {
    let msg = start_failure("slimmatte", &[("model", "/no/such/student.onnx")]);
    assert!(msg.contains("/no/such/student.onnx"), "{msg}");
}

#[test]
fn a_missing_or_mismatched_band_net_is_one_error_at_start() {
    let msg = start_failure("slimmatte", &[("band-model", "/no/such/band.onnx")]);
    assert!(
        msg.contains("band net") && msg.contains("/no/such/band.onnx"),
        "{msg}"
    );
    // The crop matting net is not a band net: other output.
    let student = repo_file("models/matting_student.onnx");
    let msg = start_failure("slimmatte", &[("band-model", student.to_str().unwrap())]);
    assert!(
        msg.contains("band net")
            && msg.contains("matting_student.onnx")
            && msg.contains("no output named 'residual'"),
        "{msg}"
    );
    // A band net made for another tile margin (the first band student: padded convolutions,
    // a 4-pixel margin) answers with cells that are not the tile's centre.
    let old = repo_file("tests/fixtures/band_margin4_padded.onnx");
    let msg = start_failure("slimmatte", &[("band-model", old.to_str().unwrap())]);
    assert!(
        msg.contains("band net")
            && msg.contains("band_margin4_padded.onnx")
            && msg.contains("'residual'")
            && msg.contains("unpadded convolutions"),
        "{msg}"
    );
    // A band net that takes one tile's size only (a fixed input width) cannot run the soft
    // tiles of a grid row as one input: refused at start, not on the first wide run.
    let fixed = repo_file("tests/fixtures/band_fixed_width.onnx");
    let msg = start_failure("slimmatte", &[("band-model", fixed.to_str().unwrap())]);
    assert!(
        msg.contains("band net")
            && msg.contains("band_fixed_width.onnx")
            && msg.contains("two tiles side by side")
            && msg.contains("fully convolutional"),
        "{msg}"
    );
    // band-net=false does not open it.
    let mut h = harness(&[("band-net", "false"), ("band-model", "/no/such/band.onnx")]);
    h.set_src_caps(rgba_caps(64, 2));
    let (data, _) = frame(64);
    h.push(gst::Buffer::from_slice(data)).unwrap();
    assert!(h.pull().is_ok());
}

#[test]
fn a_segmentation_model_is_refused_as_matting_model() {
    let seg = repo_file("models/selfie_segmentation_landscape.onnx");
    let msg = start_failure("slimmatte", &[("model", seg.to_str().unwrap())]);
    assert!(msg.contains("no input named 'input'"), "{msg}");
}

#[test]
fn mattebin_forwards_properties_and_runs_any_format() {
    init();
    let bin = gst::ElementFactory::make("mattebin")
        .property_from_str("background", "color")
        .property("color", 0x102030u32)
        .property("working-size", 256u32)
        .property("temporal", false)
        .property("refine-iterations", 7u32)
        .property("refine-coarse-iterations", 33u32)
        .property("refine-epsilon", 1e-7f64)
        .property("refine-trust", 2.5f64)
        .property_from_str("refine", "none")
        .build()
        .unwrap();
    let bin = bin.downcast::<gst::Bin>().unwrap();
    let matte = bin.by_name("matte").unwrap();
    assert_eq!(matte.property::<u32>("refine-iterations"), 7);
    assert_eq!(bin.property::<u32>("refine-iterations"), 7);
    assert_eq!(matte.property::<u32>("refine-coarse-iterations"), 33);
    assert_eq!(bin.property::<u32>("refine-coarse-iterations"), 33);
    assert_eq!(matte.property::<f64>("refine-epsilon"), 1e-7);
    assert_eq!(matte.property::<f64>("refine-trust"), 2.5);
    assert_eq!(
        bin.property::<f64>("refine-epsilon"),
        matte.property::<f64>("refine-epsilon")
    );
    assert_eq!(
        matte.property_value("refine").serialize().unwrap().as_str(),
        "none"
    );
    // Not set: the child's default comes through unchanged.
    assert_eq!(
        bin.property::<u32>("refine-levels"),
        slimmatte::refine::DEFAULT_REFINE_LEVELS
    );
    let bg = bin.by_name("background").unwrap();
    assert_eq!(bg.property::<u32>("color"), 0x102030);
    assert_eq!(
        bin.by_name("matte")
            .unwrap()
            .property::<u32>("working-size"),
        256
    );
    assert_eq!(bin.property::<u32>("color"), 0x102030);
    assert!(!matte.property::<bool>("temporal"));
    assert!(!bin.property::<bool>("temporal"));
    // The matte child takes its model from the child proxy.
    bin.by_name("matte")
        .unwrap()
        .set_property("model", fixture_model());
    let mut h = harness_for(bin.upcast_ref());
    h.set_src_caps_str("video/x-raw,format=I420,width=160,height=90,framerate=30/1");
    h.set_sink_caps_str("video/x-raw,format=RGBA");
    h.push(gst::Buffer::with_size(160 * 90 * 3 / 2).unwrap())
        .unwrap();
    let out = h.pull().unwrap();
    assert_eq!(out.size(), 160 * 90 * 4);
}

#[test]
fn shipped_student_gives_a_soft_matte_on_a_real_photo() {
    // trimapgen → slimmatte with the shipped models on the astronaut photograph.
    init();
    let mut h = gst_check::Harness::new_parse("trimapgen band-width=10 ! slimmatte");
    h.set_src_caps(rgba_caps(640, 360));
    h.push(astronaut_buffer(640, 360)).unwrap();
    let alpha = alpha_of(&h.pull().unwrap());
    // The same frame's trimap, for reference.
    let mut t = gst_check::Harness::new_parse("trimapgen band-width=10");
    t.set_src_caps(rgba_caps(640, 360));
    t.push(astronaut_buffer(640, 360)).unwrap();
    let trimap = alpha_of(&t.pull().unwrap());
    let mut soft = 0;
    let mut band = 0;
    for (a, t) in alpha.iter().zip(&trimap) {
        match t {
            0 => assert_eq!(*a, 0),
            255 => assert_eq!(*a, 255),
            _ => {
                band += 1;
                if *a > 10 && *a < 245 {
                    soft += 1;
                }
            }
        }
    }
    assert!(band > 1000, "a band exists ({band} px)");
    assert!(
        soft > band / 20,
        "the band gets soft values ({soft} of {band})"
    );
    let decided = alpha
        .iter()
        .zip(&trimap)
        .filter(|(a, t)| **t == 128 && (**a <= 10 || **a >= 245))
        .count();
    assert!(
        decided > band / 4,
        "and decides much of it ({decided} of {band})"
    );
}

/// A QoS event saying a frame reached the sink late makes the next `RELIEF_FRAMES` (15)
/// frames without the band net: exactly the `band-net=false` matte, counted in `late-frames`;
/// then the band net's matte again. Early reports, and `qos-fallback=false`, change nothing.
#[test]
fn a_late_report_makes_the_next_frames_without_the_band_net() {
    const RELIEF_FRAMES: usize = 15;
    init();
    let (w, h) = (320, 180);
    let mut t = gst_check::Harness::new_parse("trimapgen band-width=8 pose=false");
    t.set_src_caps(rgba_caps(w, h));
    t.push(astronaut_buffer(w as u32, h as u32)).unwrap();
    let trimapped = t.pull().unwrap();
    let trimap = alpha_of(&trimapped);
    // History off: every frame's matte depends on that frame alone.
    let matte_of = |props: &[(&str, &str)], qos_jitter: Option<i64>, frames: usize| {
        let mut hs = element_harness("slimmatte", &[&[("temporal", "false")], props].concat());
        hs.set_src_caps(rgba_caps(w, h));
        if let Some(jitter) = qos_jitter {
            let qos = gst::event::Qos::new(
                gst::QOSType::Underflow,
                1.0,
                jitter,
                gst::ClockTime::from_seconds(1),
            );
            hs.push_upstream_event(qos);
        }
        let outs: Vec<Vec<u8>> = (0..frames)
            .map(|_| {
                hs.push(trimapped.copy_deep().unwrap()).unwrap();
                alpha_of(&hs.pull().unwrap())
            })
            .collect();
        let late: u64 = hs.element().unwrap().property("late-frames");
        (outs, late)
    };
    let (band, _) = matte_of(&[], None, 1);
    let (classical, _) = matte_of(&[("band-net", "false")], None, 1);
    let differ = band[0]
        .iter()
        .zip(&classical[0])
        .zip(&trimap)
        .filter(|((a, b), t)| **t == 128 && a != b)
        .count();
    assert!(differ > 100, "the band net changes the matte ({differ} px)");

    let (outs, late) = matte_of(&[], Some(20_000_000), RELIEF_FRAMES + 2);
    assert_eq!(late, RELIEF_FRAMES as u64);
    for (k, out) in outs.iter().enumerate() {
        let want = if k < RELIEF_FRAMES {
            &classical[0]
        } else {
            &band[0]
        };
        assert!(out == want, "frame {k} after a late report");
    }
    let (outs, late) = matte_of(&[], Some(-20_000_000), 2);
    assert_eq!(late, 0, "an early frame is no reason");
    assert!(outs.iter().all(|o| *o == band[0]));
    let (outs, late) = matte_of(&[("qos-fallback", "false")], Some(20_000_000), 2);
    assert_eq!(late, 0, "qos-fallback=false");
    assert!(outs.iter().all(|o| *o == band[0]));
}

/// `trimapgen` counts the frames it makes with fewer pose runs after a late report, and only
/// while `pose` is on; `mattebin` sets `qos-fallback` on both stages and reads the matting
/// stage's count.
#[test]
fn trimapgen_and_mattebin_take_the_late_report_too() {
    init();
    let late_after_report = |pose: &str| {
        let mut hs = element_harness("trimapgen", &[("pose", pose)]);
        hs.set_src_caps(rgba_caps(160, 90));
        hs.push_upstream_event(gst::event::Qos::new(
            gst::QOSType::Underflow,
            1.0,
            5_000_000,
            gst::ClockTime::ZERO,
        ));
        for _ in 0..3 {
            hs.push(astronaut_buffer(160, 90)).unwrap();
            hs.pull().unwrap();
        }
        hs.element().unwrap().property::<u64>("late-frames")
    };
    assert_eq!(late_after_report("true"), 3);
    assert_eq!(late_after_report("false"), 0);

    let bin = gst::ElementFactory::make("mattebin")
        .property_from_str("qos-fallback", "false")
        .build()
        .unwrap();
    let bin = bin.downcast::<gst::Bin>().unwrap();
    for child in ["trimap", "matte"] {
        let e = bin.by_name(child).unwrap();
        assert!(!e.property::<bool>("qos-fallback"), "{child}");
    }
    assert_eq!(bin.property::<u64>("late-frames"), 0);
}
