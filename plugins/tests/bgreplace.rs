//! `bgreplace` element tests with the gstreamer-check Harness.

mod common;

use common::*;
use gst::prelude::*;

fn harness(props: &[(&str, &str)]) -> gst_check::Harness {
    element_harness("bgreplace", props)
}

/// A 4×1 frame: white pixels with alpha 255, 128, 0 and 51.
fn frame() -> gst::Buffer {
    gst::Buffer::from_slice(vec![
        200, 100, 50, 255, 200, 100, 50, 128, 200, 100, 50, 0, 200, 100, 50, 51,
    ])
}

#[test]
fn color_background_blends_by_alpha() {
    let mut h = harness(&[("background", "color"), ("color", "0x0000ff")]);
    h.set_src_caps(rgba_caps(4, 1));
    h.push(frame()).unwrap();
    let out = h.pull().unwrap();
    let px = out.map_readable().unwrap().to_vec();
    assert_eq!(&px[0..4], &[200, 100, 50, 255]);
    assert_eq!(&px[4..8], &[100, 50, 152, 255]); // round((200·128)/255), …, round((50·128+255·127)/255)
    assert_eq!(&px[8..12], &[0, 0, 255, 255]);
    assert_eq!(&px[12..16], &[40, 20, 214, 255]);
}

#[test]
fn transparent_keeps_the_matte() {
    let mut h = harness(&[("background", "transparent")]);
    h.set_src_caps(rgba_caps(4, 1));
    h.push(frame()).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(
        out.map_readable().unwrap().to_vec(),
        frame().map_readable().unwrap().to_vec()
    );
}

#[test]
fn property_change_while_playing_takes_effect() {
    let mut h = harness(&[("background", "color"), ("color", "0xff0000")]);
    h.set_src_caps(rgba_caps(4, 1));
    h.push(frame()).unwrap();
    assert_eq!(
        &h.pull().unwrap().map_readable().unwrap()[8..12],
        &[255, 0, 0, 255]
    );
    h.element().unwrap().set_property("color", 0x00FF00u32);
    h.push(frame()).unwrap();
    assert_eq!(
        &h.pull().unwrap().map_readable().unwrap()[8..12],
        &[0, 255, 0, 255]
    );
}

#[test]
fn image_background_shows_the_picture() {
    let img = repo_file("assets/hubble_deep_field.jpg");
    let mut h = harness(&[
        ("background", "image"),
        ("image-location", img.to_str().unwrap()),
    ]);
    h.set_src_caps(rgba_caps(64, 36));
    // Fully transparent frame: the output is the picture, which is mostly dark sky.
    h.push(gst::Buffer::from_slice(
        [255u8, 255, 255, 0].repeat(64 * 36),
    ))
    .unwrap();
    let out = h.pull().unwrap();
    let map = out.map_readable().unwrap();
    let mean: f64 = map
        .chunks_exact(4)
        .map(|p| p[0] as f64 + p[1] as f64 + p[2] as f64)
        .sum::<f64>()
        / (64.0 * 36.0 * 3.0);
    assert!(
        mean < 100.0,
        "picture shown instead of white frame: mean {mean}"
    );
    assert!(map.chunks_exact(4).all(|p| p[3] == 255));
}

#[test]
fn missing_image_posts_an_error() {
    let msg = start_failure(
        "bgreplace",
        &[
            ("background", "image"),
            ("image-location", "/no/such/background.png"),
        ],
    );
    assert!(msg.contains("/no/such/background.png"), "{msg}");
}

#[test]
fn image_mode_without_location_posts_an_error() {
    let msg = start_failure("bgreplace", &[("background", "image")]);
    assert!(msg.contains("image-location"), "{msg}");
}

/// A 160×90 frame: a red foreground (alpha 255, left) fading over 8 px into a blue background
/// (alpha 0), the soft pixels' colours mixing the two as a camera sees them.
fn soft_edge() -> gst::Buffer {
    let mut data = Vec::new();
    for _ in 0..90 {
        for x in 0..160i32 {
            let a = ((88 - x) * 32).clamp(0, 255) as u8;
            let af = a as f32 / 255.0;
            let mix = |f: f32, b: f32| (af * f + (1.0 - af) * b + 0.5) as u8;
            data.extend_from_slice(&[mix(220.0, 10.0), mix(30.0, 20.0), mix(20.0, 230.0), a]);
        }
    }
    gst::Buffer::from_slice(data)
}

#[test]
fn estimate_foreground_takes_the_old_background_out_of_soft_pixels() {
    let over_black = |estimate: &str| {
        let mut h = harness(&[
            ("background", "color"),
            ("color", "0x000000"),
            ("estimate-foreground", estimate),
        ]);
        h.set_src_caps(rgba_caps(160, 90));
        h.push(soft_edge()).unwrap();
        h.pull().unwrap().map_readable().unwrap().to_vec()
    };
    let (observed, estimated) = (over_black("false"), over_black("true"));
    let input = soft_edge().map_readable().unwrap().to_vec();
    // Over black a soft pixel should show α·F, and F has almost no blue: the rest of the blue
    // is the old background's.
    let (mut blue_observed, mut blue_estimated) = (0u32, 0u32);
    for ((o, e), i) in observed
        .chunks_exact(4)
        .zip(estimated.chunks_exact(4))
        .zip(input.chunks_exact(4))
    {
        if i[3] == 0 || i[3] == 255 {
            assert_eq!(o, e, "a hard pixel differs");
        } else {
            let want = (i[3] as f32 / 255.0 * 20.0) as u32;
            blue_observed += (o[2] as u32).saturating_sub(want);
            blue_estimated += (e[2] as u32).saturating_sub(want);
        }
    }
    assert!(blue_observed > 90 * 200, "observed {blue_observed}");
    assert!(
        blue_estimated * 20 < blue_observed,
        "estimated {blue_estimated} vs {blue_observed}"
    );
}

#[test]
fn estimate_foreground_follows_caps_changes() {
    let mut h = harness(&[("background", "color"), ("estimate-foreground", "true")]);
    for (w, ht) in [(160usize, 90usize), (48, 20), (200, 120), (1, 1)] {
        // A soft ramp across the frame: every column's alpha differs.
        let mut data = Vec::with_capacity(w * ht * 4);
        for _ in 0..ht {
            for x in 0..w {
                let a = (255 * x / w.max(2)) as u8;
                data.extend_from_slice(&[200, 60, 30, a]);
            }
        }
        h.set_src_caps(rgba_caps(w as i32, ht as i32));
        h.push(gst::Buffer::from_slice(data)).unwrap();
        let out = h.pull().unwrap();
        assert_eq!(out.size(), w * ht * 4, "{w}×{ht}");
        let map = out.map_readable().unwrap();
        assert!(
            map.chunks_exact(4).all(|p| p[3] == 255),
            "{w}×{ht}: not opaque"
        );
    }
}
