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
