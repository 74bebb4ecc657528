//! The matting stage's plumbing, with a fixture network whose output is known
//! (`luma_key_matte.onnx`: alpha = sigmoid(20·(luma − 0.5))): known regions stay exact, the
//! unknown band gets the network's output, crops, padding and scaling keep positions right.

mod common;

use slimmatte::frame::rgba_view_mut;
use slimmatte::matte::{MatteRefiner, MatteSettings};

fn refiner() -> MatteRefiner {
    MatteRefiner::load(&common::fixture("luma_key_matte.onnx"), 1).unwrap()
}

/// A `w × h` frame: left half black, right half white; trimap bg on the left third, fg on the
/// right third, unknown in the middle third.
fn frame(w: usize, h: usize) -> Vec<u8> {
    let mut data = vec![0u8; w * h * 4];
    for y in 0..h {
        for x in 0..w {
            let v = if x >= w / 2 { 255 } else { 0 };
            let t = if x < w / 3 {
                0
            } else if x >= 2 * w / 3 {
                255
            } else {
                128
            };
            data[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&[v, v, v, t]);
        }
    }
    data
}

fn alpha(data: &[u8], w: usize, x: usize, y: usize) -> u8 {
    data[(y * w + x) * 4 + 3]
}

#[test]
fn unknown_band_gets_the_network_output_and_known_stays_exact() {
    let (w, h) = (90, 40);
    let mut data = frame(w, h);
    let before = data.clone();
    let settings = MatteSettings {
        working_size: 0,
        ..Default::default()
    };
    let stats = refiner()
        .process(
            &mut rgba_view_mut(&mut data, w, h, w * 4).unwrap(),
            &settings,
        )
        .unwrap();
    assert_eq!(stats.unknown, 30 * h);
    assert_eq!(
        stats.working,
        (stats.crop.unwrap().2, stats.crop.unwrap().3)
    );
    for y in 0..h {
        for x in 0..w {
            let a = alpha(&data, w, x, y);
            match alpha(&before, w, x, y) {
                0 => assert_eq!(a, 0, "bg stays 0 at ({x},{y})"),
                255 => assert_eq!(a, 255, "fg stays 255 at ({x},{y})"),
                _ if x >= w / 2 => assert!(a > 250, "white unknown pixel → 1, got {a}"),
                _ => assert!(a < 5, "black unknown pixel → 0, got {a}"),
            }
        }
    }
    // Colours untouched.
    let rgb = |d: &[u8]| {
        d.chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect::<Vec<_>>()
    };
    assert_eq!(rgb(&data), rgb(&before));
}

#[test]
fn scaled_working_resolution_keeps_the_edge_in_place() {
    // 300×120 frame, working size 64: the network sees ~1/5 of the pixels; the guided
    // upsampling must put the matte edge back at the image edge (x = 150).
    let (w, h) = (300, 120);
    let mut data = frame(w, h);
    let settings = MatteSettings {
        working_size: 64,
        margin: 8,
        smoothing: 0.0,
    };
    let stats = refiner()
        .process(
            &mut rgba_view_mut(&mut data, w, h, w * 4).unwrap(),
            &settings,
        )
        .unwrap();
    let (lw, lh) = stats.working;
    assert!(lw <= 64 && lh <= 64, "working size {lw}×{lh}");
    for y in [5, 60, 115] {
        assert!(alpha(&data, w, 146, y) < 30, "left of the edge at y={y}");
        assert!(alpha(&data, w, 154, y) > 225, "right of the edge at y={y}");
    }
}

#[test]
fn odd_sizes_and_padding_work() {
    for (w, h) in [(37, 23), (17, 5), (3, 3)] {
        let mut data = frame(w, h);
        let before = data.clone();
        let stats = refiner()
            .process(
                &mut rgba_view_mut(&mut data, w, h, w * 4).unwrap(),
                &MatteSettings::default(),
            )
            .unwrap();
        assert!(stats.unknown > 0, "{w}×{h}");
        for (p, b) in data.chunks_exact(4).zip(before.chunks_exact(4)) {
            let want = match b[3] {
                0 => 0,
                255 => 255,
                _ if p[0] == 255 => 255, // white pixel: sigmoid(10) ≈ 1
                _ => 0,
            };
            assert!(
                (p[3] as i32 - want).abs() <= 2,
                "{w}×{h}: alpha {} want {want}",
                p[3]
            );
        }
    }
}

#[test]
fn no_unknown_region_skips_the_network() {
    let (w, h) = (40, 20);
    let mut data = vec![0u8; w * h * 4];
    for (i, px) in data.chunks_exact_mut(4).enumerate() {
        px[3] = if i % w < 20 { 3 } else { 250 }; // near-known values snap to 0 / 255
    }
    let stats = refiner()
        .process(
            &mut rgba_view_mut(&mut data, w, h, w * 4).unwrap(),
            &MatteSettings::default(),
        )
        .unwrap();
    assert_eq!(stats.unknown, 0);
    assert_eq!(stats.crop, None);
    assert!(data.chunks_exact(4).all(|p| p[3] == 0 || p[3] == 255));
}

#[test]
fn temporal_smoothing_blends_with_the_previous_matte() {
    let (w, h) = (60, 10);
    let mut m = refiner();
    let settings = MatteSettings {
        working_size: 0,
        margin: 0,
        smoothing: 0.5,
    };
    // Frame 1: all white, unknown everywhere → alpha ≈ 255.
    let mut white = [255u8, 255, 255, 128].repeat(w * h);
    m.process(
        &mut rgba_view_mut(&mut white, w, h, w * 4).unwrap(),
        &settings,
    )
    .unwrap();
    // Frame 2: all black → the network says 0; with smoothing 0.5 the matte is ≈ 128.
    let mut black = [0u8, 0, 0, 128].repeat(w * h);
    m.process(
        &mut rgba_view_mut(&mut black, w, h, w * 4).unwrap(),
        &settings,
    )
    .unwrap();
    assert!(black.chunks_exact(4).all(|p| (120..=136).contains(&p[3])));
    // After a reset there is no history.
    m.reset();
    let mut black = [0u8, 0, 0, 128].repeat(w * h);
    m.process(
        &mut rgba_view_mut(&mut black, w, h, w * 4).unwrap(),
        &settings,
    )
    .unwrap();
    assert!(black.chunks_exact(4).all(|p| p[3] < 5));
}

#[test]
fn the_student_contract_is_checked() {
    // The segmentation model is not a matting model: refused with the reason.
    let e = MatteRefiner::load(&slimmatte::paths::default_segmentation_model(), 1).unwrap_err();
    assert!(e.to_string().contains("no input named 'input'"), "{e}");
}
