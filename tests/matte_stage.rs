//! The matting stage's plumbing, with a fixture network whose output is known
//! (`luma_key_matte.onnx`: alpha = sigmoid(20·(luma − 0.5))): known regions stay exact, the
//! unknown band gets the network's output, crops, padding and scaling keep positions right.

mod common;

use slimmatte::frame::rgba_view_mut;
use slimmatte::matte::{MatteRefiner, MatteSettings};
use slimmatte::refine::RefineSettings;

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
        refine: RefineSettings::none(),
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
        refine: RefineSettings::none(),
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
                &MatteSettings {
                    refine: RefineSettings::none(),
                    ..MatteSettings::default()
                },
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
        refine: RefineSettings::none(),
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

/// With the refinement on (the default), the edge cases still give a valid matte: known pixels
/// exact, unknown ones in range, no panic — an empty band, a whole-frame band (no constraints at
/// all), tiny frames, and a 4096×2160 frame.
#[test]
fn refinement_handles_empty_whole_tiny_and_huge_bands() {
    let mut m = refiner();
    let settings = MatteSettings::default();
    assert!(settings.refine.enabled(), "the refinement is on by default");
    // Runs the stage on `data` (w × h) and checks colours unchanged, known alpha exact.
    let mut run = |data: &mut Vec<u8>, w: usize, h: usize| {
        let before = data.clone();
        let stats = m
            .process(&mut rgba_view_mut(data, w, h, w * 4).unwrap(), &settings)
            .unwrap();
        for (p, b) in data.chunks_exact(4).zip(before.chunks_exact(4)) {
            assert_eq!(&p[..3], &b[..3]);
            match b[3] {
                0 => assert_eq!(p[3], 0),
                255 => assert_eq!(p[3], 255),
                _ => {}
            }
        }
        stats
    };
    // Whole frame unknown: a left-dark/right-light frame, no constraint anywhere.
    for (w, h) in [(1, 1), (2, 1), (1, 3), (64, 36)] {
        let mut data: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let v = if i % w >= w / 2 { 230 } else { 20 };
                [v, v, v, 128]
            })
            .collect();
        let stats = run(&mut data, w, h);
        assert_eq!(stats.unknown, w * h);
        assert!(stats.refine.is_some(), "{w}×{h}: refined");
    }
    // Empty band: nothing to refine.
    let (w, h) = (40, 20);
    let mut data: Vec<u8> = (0..w * h)
        .flat_map(|i| [9, 9, 9, if i % w < 20 { 0 } else { 255 }])
        .collect();
    let before = data.clone();
    let stats = run(&mut data, w, h);
    assert_eq!(stats.refine, None);
    assert_eq!(data, before);
    // 4096×2160 with the usual three-band trimap: the refinement runs on the band's crop.
    let (w, h) = (4096, 2160);
    let mut data = frame(w, h);
    let stats = run(&mut data, w, h);
    // The band's crop (≈ 1400 × 2160) is refined, at a coarser level than the frame.
    let report = stats.refine.expect("refined");
    assert!(report.finest.0.max(report.finest.1) <= 640, "{report:?}");
    eprintln!(
        "{report:?} row0: {:?}",
        (w / 2 - 40..w / 2 + 40)
            .step_by(4)
            .map(|x| alpha(&data, w, x, 0))
            .collect::<Vec<_>>()
    );
    // The step edge (black | white) is where the matte steps, refined or not.
    for y in [0, h / 2, h - 1] {
        assert!(
            alpha(&data, w, w / 2 - 8, y) < 30,
            "left of the edge, row {y}"
        );
        assert!(
            alpha(&data, w, w / 2 + 8, y) > 225,
            "right of the edge, row {y}"
        );
    }
}

/// A network that outputs NaN is refused with an error before any refinement runs.
#[test]
fn nan_from_the_network_is_an_error_with_refinement_on() {
    let mut m = MatteRefiner::load(&common::fixture("nan_matte.onnx"), 1).unwrap();
    let (w, h) = (30, 12);
    let mut data = frame(w, h);
    let e = m
        .process(
            &mut rgba_view_mut(&mut data, w, h, w * 4).unwrap(),
            &MatteSettings::default(),
        )
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("nan"), "{e}");
}
