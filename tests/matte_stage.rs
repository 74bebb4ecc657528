//! The matting stage's plumbing, with a fixture network whose output is known
//! (`luma_key_matte.onnx`: alpha = sigmoid(20·(luma − 0.5))): known regions stay exact, the
//! unknown band gets the network's output, crops, padding and scaling keep positions right.
//! Temporal models with `prev_copy_matte.onnx` (alpha = prev_alpha): the matte shows what the
//! stage fed as history — the previous matte at the same place, or the trimap without one.

mod common;

use slimmatte::frame::rgba_view_mut;
use slimmatte::matte::{MatteRefiner, MatteSettings, RefineStats, SCENE_CUT_LUMA};
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
        ..Default::default()
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
        ..Default::default()
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

/// A network that outputs NaN is refused with an error before any refinement runs (a
/// refinement that uses the net: trust > 0).
#[test]
fn nan_from_the_network_is_an_error_with_refinement_on() {
    let mut m = MatteRefiner::load(&common::fixture("nan_matte.onnx"), 1).unwrap();
    let (w, h) = (30, 12);
    let mut data = frame(w, h);
    let settings = MatteSettings {
        refine: RefineSettings {
            trust: 0.5,
            ..RefineSettings::default()
        },
        ..MatteSettings::default()
    };
    let e = m
        .process(
            &mut rgba_view_mut(&mut data, w, h, w * 4).unwrap(),
            &settings,
        )
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("nan"), "{e}");
}

/// The temporal fixture: its matte is the `prev_alpha` it was fed.
fn prev_copy() -> MatteRefiner {
    let m = MatteRefiner::load(&common::fixture("prev_copy_matte.onnx"), 1).unwrap();
    assert!(m.is_temporal(), "prev_copy_matte has a prev_alpha input");
    m
}

/// Full resolution, no refinement: the stage writes the network's output exactly.
fn exact() -> MatteSettings {
    MatteSettings {
        working_size: 0,
        refine: RefineSettings::none(),
        ..Default::default()
    }
}

/// A `w × h` frame of uniform `grey` whose trimap is a person: foreground in the rectangle
/// `fg` (x0, y0, x1, y1), an unknown ring `ring` pixels wide around it, background elsewhere.
fn person(w: usize, h: usize, fg: (usize, usize, usize, usize), ring: usize, grey: u8) -> Vec<u8> {
    let (x0, y0, x1, y1) = fg;
    let mut data = vec![0u8; w * h * 4];
    for (i, px) in data.chunks_exact_mut(4).enumerate() {
        let (x, y) = (i % w, i / w);
        let inside = |r: usize| x + r >= x0 && x < x1 + r && y + r >= y0 && y < y1 + r;
        let t = if inside(0) {
            255
        } else if inside(ring) {
            128
        } else {
            0
        };
        px.copy_from_slice(&[grey, grey, grey, t]);
    }
    data
}

/// Runs the stage on `data` (`w × h`) in place.
fn run(
    m: &mut MatteRefiner,
    data: &mut [u8],
    w: usize,
    h: usize,
    s: &MatteSettings,
) -> RefineStats {
    m.process(&mut rgba_view_mut(data, w, h, w * 4).unwrap(), s)
        .unwrap()
}

/// The alpha of every pixel whose trimap (`before`) is unknown, by pixel index.
fn unknown_alphas(before: &[u8], after: &[u8]) -> Vec<(usize, u8)> {
    before
        .chunks_exact(4)
        .zip(after.chunks_exact(4))
        .enumerate()
        .filter(|(_, (b, _))| b[3] != 0 && b[3] != 255)
        .map(|(i, (_, a))| (i, a[3]))
        .collect()
}

/// Checks that known pixels are exact and every unknown one is 128: the network was fed the
/// trimap (0.5 in the band), not a previous matte.
fn assert_trimap_fed(before: &[u8], after: &[u8], what: &str) {
    for (i, (b, a)) in before
        .chunks_exact(4)
        .zip(after.chunks_exact(4))
        .enumerate()
    {
        let want = match b[3] {
            0 => 0,
            255 => 255,
            _ => 128,
        };
        assert_eq!(a[3], want, "{what}: pixel {i} (trimap {})", b[3]);
    }
}

const W: usize = 96;
const H: usize = 64;
/// The person of the first frame, and the same person moved right and down by (10, 6).
const FG1: (usize, usize, usize, usize) = (30, 20, 60, 44);
const FG2: (usize, usize, usize, usize) = (40, 26, 70, 50);
const RING: usize = 8;

#[test]
fn a_temporal_model_gets_the_trimap_on_the_first_frame() {
    let mut m = prev_copy();
    let mut data = person(W, H, FG1, RING, 90);
    let before = data.clone();
    let stats = run(&mut m, &mut data, W, H, &exact());
    assert!(!stats.history && !stats.scene_cut, "{stats:?}");
    assert!(stats.unknown > 0);
    assert_trimap_fed(&before, &data, "first frame");
}

#[test]
fn without_history_a_temporal_model_runs_a_second_pass_on_its_own_matte() {
    // prev_mix_matte: alpha = (prev + red) / 2. Without history the stage feeds the trimap
    // (0.5 in the band), then the first pass's matte: ((0.5 + r) / 2 + r) / 2 = 0.125 + 0.75 r.
    // With `temporal` off it stops after the first pass: 0.25 + 0.5 r.
    let red = 200u8;
    let r = red as f32 / 255.0;
    let band = |settings: &MatteSettings| {
        let mut m = MatteRefiner::load(&common::fixture("prev_mix_matte.onnx"), 1).unwrap();
        let mut data = person(W, H, FG1, RING, 90);
        for px in data.chunks_exact_mut(4) {
            px[0] = red;
        }
        let before = data.clone();
        let stats = run(&mut m, &mut data, W, H, settings);
        assert!(!stats.history);
        let alphas = unknown_alphas(&before, &data);
        assert!(!alphas.is_empty());
        let first = alphas[0].1;
        assert!(alphas.iter().all(|&(_, a)| a == first), "uniform band");
        first
    };
    let two_passes = ((0.125 + 0.75 * r) * 255.0).round() as u8;
    let one_pass = ((0.25 + 0.5 * r) * 255.0).round() as u8;
    assert_ne!(two_passes, one_pass);
    assert_eq!(band(&exact()), two_passes);
    let off = MatteSettings {
        temporal: false,
        ..exact()
    };
    assert_eq!(band(&off), one_pass);
}

#[test]
fn a_temporal_model_gets_the_previous_matte_at_the_same_place() {
    let mut m = prev_copy();
    let mut first = person(W, H, FG1, RING, 90);
    let s1 = run(&mut m, &mut first, W, H, &exact());
    // The person moved: another crop, and band pixels that were known last frame.
    let mut second = person(W, H, FG2, RING, 90);
    let before = second.clone();
    let s2 = run(&mut m, &mut second, W, H, &exact());
    assert!(s2.history && !s2.scene_cut, "{s2:?}");
    assert_ne!(s1.crop, s2.crop, "the crop moved");
    let band = unknown_alphas(&before, &second);
    for &(i, a) in &band {
        assert_eq!(
            a,
            first[i * 4 + 3],
            "({}, {}): the previous frame's matte at the same place",
            i % W,
            i / W
        );
    }
    // The band covers last frame's background, band and foreground.
    for v in [0, 128, 255] {
        assert!(band.iter().any(|&(_, a)| a == v), "no band pixel was {v}");
    }
    // Known pixels stay exact.
    for (b, a) in before.chunks_exact(4).zip(second.chunks_exact(4)) {
        if b[3] == 0 || b[3] == 255 {
            assert_eq!(a[3], b[3]);
        }
    }
    // And the history goes on: the third frame sees the second's matte.
    let mut third = person(W, H, FG1, RING, 90);
    let before = third.clone();
    assert!(run(&mut m, &mut third, W, H, &exact()).history);
    for (i, a) in unknown_alphas(&before, &third) {
        assert_eq!(a, second[i * 4 + 3], "third frame, pixel {i}");
    }
}

/// Scaled to the working size, the previous matte goes through the same crop and scaling as
/// the picture, and comes back through the guided upsampling: away from the matte's edges the
/// band shows the previous frame's value at the same place.
#[test]
fn scaled_crops_get_the_previous_matte_at_the_same_place() {
    let (w, h, ring) = (400, 300, 64);
    let settings = MatteSettings {
        working_size: 64,
        ..exact()
    };
    let mut m = prev_copy();
    let mut first = person(w, h, (130, 100, 270, 200), ring, 90);
    let before1 = first.clone();
    let s1 = run(&mut m, &mut first, w, h, &settings);
    let (cw, ch) = (s1.crop.unwrap().2, s1.crop.unwrap().3);
    assert!(s1.working.0 < cw && s1.working.1 < ch, "scaled: {s1:?}");
    // `alpha` is within `tol` of `want` at every pixel whose neighbours within `r` (in x and
    // y) all had `want` in `reference`, give or take 1 (the band's 128/255 round either way
    // after the resampling): away from the edges of the reference matte.
    let r = 20;
    let uniform = |reference: &[u8], x: usize, y: usize| -> Option<u8> {
        let v = reference[(y * w + x) * 4 + 3];
        let (xa, xb) = (x.checked_sub(r)?, (x + r).min(w - 1));
        let (ya, yb) = (y.checked_sub(r)?, (y + r).min(h - 1));
        (ya..=yb)
            .all(|yy| (xa..=xb).all(|xx| reference[(yy * w + xx) * 4 + 3].abs_diff(v) <= 1))
            .then_some(v)
    };
    // First frame: the trimap, 128 in the middle of the band.
    let mut checked = 0;
    for (i, a) in unknown_alphas(&before1, &first) {
        if uniform(&before1, i % w, i / w).is_some() {
            assert!(a.abs_diff(128) <= 2, "first frame, pixel {i}: {a}");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} pixels checked");
    // Second frame: the person moved by (48, 36); the band shows the first frame's matte.
    let mut second = person(w, h, (178, 136, 318, 236), ring, 90);
    let before2 = second.clone();
    let s2 = run(&mut m, &mut second, w, h, &settings);
    assert!(s2.history, "{s2:?}");
    let mut seen = [0usize; 3];
    for (i, a) in unknown_alphas(&before2, &second) {
        if let Some(want) = uniform(&first, i % w, i / w) {
            assert!(
                a.abs_diff(want) <= 3,
                "({}, {}): {a}, the previous matte was {want}",
                i % w,
                i / w
            );
            seen[[0u8, 128, 255]
                .iter()
                .position(|&v| v.abs_diff(want) <= 1)
                .unwrap()] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n > 50), "checked per value: {seen:?}");
    // Where the previous matte steps from the band's 128 to the foreground's 255 (between x
    // 129 and 130, and between y 99 and 100), the new one steps at the same place: a shifted
    // or mis-scaled resampling would move the step.
    let step = |alphas: &mut dyn Iterator<Item = (usize, u8)>| -> f32 {
        let mut last = (0, 0u8);
        for (pos, a) in alphas {
            if a as f32 >= 191.5 {
                let t = (191.5 - last.1 as f32) / (a as f32 - last.1 as f32);
                return last.0 as f32 + t * (pos - last.0) as f32;
            }
            last = (pos, a);
        }
        panic!("no step");
    };
    let at = |x: usize, y: usize| second[(y * w + x) * 4 + 3];
    for y in [150, 170, 190] {
        let x = step(&mut (114..178).map(|x| (x, at(x, y))));
        assert!(
            (x - 129.5).abs() <= 1.5,
            "row {y}: step at x = {x}, want 129.5"
        );
    }
    for x in [200, 225, 250] {
        let y = step(&mut (72..136).map(|y| (y, at(x, y))));
        assert!(
            (y - 99.5).abs() <= 1.5,
            "column {x}: step at y = {y}, want 99.5"
        );
    }
}

/// The history is dropped — the band gets the trimap again — after a reset, on a scene cut,
/// when the frame size changes and with `temporal` off.
#[test]
fn a_temporal_model_gets_the_trimap_without_usable_history() {
    // Two frames of the moving person (the second `second`) after `between` ran on the
    // refiner and the settings: the second frame's stats, input and output.
    let two_frames = |between: &dyn Fn(&mut MatteRefiner, &mut MatteSettings),
                      (w, h, grey): (usize, usize, u8)| {
        let mut m = prev_copy();
        let mut settings = exact();
        run(&mut m, &mut person(W, H, FG1, RING, 90), W, H, &settings);
        between(&mut m, &mut settings);
        let mut second = person(w, h, FG2, RING, grey);
        let before = second.clone();
        let stats = run(&mut m, &mut second, w, h, &settings);
        (stats, before, second)
    };
    // Control: nothing in between, the history is used (the band is not all 128).
    let (stats, before, after) = two_frames(&|_, _| {}, (W, H, 90));
    assert!(stats.history);
    assert!(
        unknown_alphas(&before, &after)
            .iter()
            .any(|&(_, a)| a != 128)
    );

    let (stats, before, after) = two_frames(&|m, _| m.reset(), (W, H, 90));
    assert!(!stats.history, "{stats:?}");
    assert_trimap_fed(&before, &after, "after reset()");

    let (stats, before, after) = two_frames(&|_, s| s.temporal = false, (W, H, 90));
    assert!(!stats.history, "{stats:?}");
    assert_trimap_fed(&before, &after, "temporal off");

    let (stats, before, after) = two_frames(&|_, _| {}, (W + 16, H, 90));
    assert!(!stats.history, "{stats:?}");
    assert_trimap_fed(&before, &after, "new frame size");

    // A scene cut: the picture changed by more than SCENE_CUT_LUMA on average.
    let cut = (90.0 + 255.0 * SCENE_CUT_LUMA).ceil() as u8 + 2;
    let (stats, before, after) = two_frames(&|_, _| {}, (W, H, cut));
    assert!(stats.scene_cut && !stats.history, "{stats:?}");
    assert_trimap_fed(&before, &after, "scene cut");
    // A change below the threshold (lighting, noise) keeps the history.
    let small = (90.0 + 255.0 * SCENE_CUT_LUMA).floor() as u8 - 2;
    let (stats, _, _) = two_frames(&|_, _| {}, (W, H, small));
    assert!(stats.history && !stats.scene_cut, "{stats:?}");
}

/// After a scene cut the new frame is the reference: the next frame has its history again.
#[test]
fn history_resumes_after_a_scene_cut_and_without_a_band() {
    let mut m = prev_copy();
    let s = exact();
    run(&mut m, &mut person(W, H, FG1, RING, 90), W, H, &s);
    assert!(run(&mut m, &mut person(W, H, FG1, RING, 230), W, H, &s).scene_cut);
    // A frame without a band (all background) is still a previous matte.
    let mut empty = person(W, H, FG1, RING, 230);
    for px in empty.chunks_exact_mut(4) {
        px[3] = 0;
    }
    let stats = run(&mut m, &mut empty, W, H, &s);
    assert_eq!(stats.unknown, 0);
    assert!(!stats.scene_cut);
    let mut next = person(W, H, FG2, RING, 230);
    let before = next.clone();
    let stats = run(&mut m, &mut next, W, H, &s);
    assert!(stats.history && !stats.scene_cut, "{stats:?}");
    // Every band pixel gets the empty frame's matte: 0.
    for (i, a) in unknown_alphas(&before, &next) {
        assert_eq!(a, 0, "pixel {i}");
    }
}

#[test]
fn single_input_models_still_load_and_are_not_temporal() {
    let single = slimmatte::paths::models_dir().join(slimmatte::paths::SINGLE_FRAME_MATTING_MODEL);
    let student = MatteRefiner::load(&single, 1).unwrap();
    assert!(!student.is_temporal());
    // The default model is the temporal student.
    let default = MatteRefiner::load(&slimmatte::paths::default_matting_model(), 1).unwrap();
    assert!(default.is_temporal());
    assert!(!refiner().is_temporal());
    // Their stats never claim a history.
    let mut m = refiner();
    for _ in 0..2 {
        let (w, h) = (40, 12);
        let stats = run(&mut m, &mut frame(w, h), w, h, &exact());
        assert!(!stats.history && !stats.scene_cut);
    }
}

#[test]
fn a_wrong_prev_alpha_is_refused_at_load() {
    let e = MatteRefiner::load(&common::fixture("prev_wrong_shape.onnx"), 1).unwrap_err();
    let msg = e.to_string();
    for part in [
        "prev_wrong_shape.onnx",
        "'prev_alpha'",
        "[1, 2, ?, ?]",
        "[1, 1, *, *]",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
}

/// With the default refinement (no data term, full pyramid) the result cannot depend on the
/// net, so the stage does not run it; a run that does (a vanishing data term forces it, with
/// the luma-key fixture's hard step as a very different start) gives the same matte.
#[test]
fn default_refinement_skips_the_net_and_loses_nothing() {
    let (w, h) = (160usize, 90usize);
    let mut data = common::astronaut(w as u32, h as u32);
    for (i, px) in data.chunks_exact_mut(4).enumerate() {
        let (x, y) = ((i % w) as f32 - 80.0, (i / w) as f32 - 50.0);
        let r = (x * x + y * y).sqrt();
        px[3] = if r < 25.0 {
            255
        } else if r < 40.0 {
            128
        } else {
            0
        };
    }
    let before = data.clone();
    let defaults = MatteSettings::default();
    assert!(!defaults.refine.uses_net());
    let mut skipped = before.clone();
    let stats = run(&mut refiner(), &mut skipped, w, h, &defaults);
    assert!(!stats.net_ran && stats.refine.is_some(), "{stats:?}");
    let forced = MatteSettings {
        refine: RefineSettings {
            lambda: 1e-9,
            ..RefineSettings::default()
        },
        ..MatteSettings::default()
    };
    let mut with_net = before.clone();
    let stats = run(&mut refiner(), &mut with_net, w, h, &forced);
    assert!(stats.net_ran && stats.refine.is_some(), "{stats:?}");
    let a = unknown_alphas(&before, &skipped);
    let mean = mean_abs_diff(&a, &unknown_alphas(&before, &with_net));
    assert!(mean < 0.5, "mean |Δα| {mean} of 255");
    // And the net's own matte is very different: the refinement, not the start, decides.
    let mut net_alone = before.clone();
    let none = MatteSettings {
        refine: RefineSettings::none(),
        ..MatteSettings::default()
    };
    assert!(run(&mut refiner(), &mut net_alone, w, h, &none).net_ran);
    let apart = mean_abs_diff(&a, &unknown_alphas(&before, &net_alone));
    assert!(apart > 10.0 * mean.max(0.1), "net alone {apart} vs {mean}");
}

/// Mean |Δα| (of 255) between two [`unknown_alphas`] lists of the same pixels.
fn mean_abs_diff(a: &[(usize, u8)], b: &[(usize, u8)]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.1 as f64 - y.1 as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}

/// The band net runs after the refinement on the soft tiles, only when loaded and on
/// (`band_net`); off, the stage gives exactly the classical matte; known pixels stay exact.
#[test]
fn the_band_net_runs_on_soft_tiles_only_when_loaded_and_on() {
    let (w, h) = (160, 96);
    // A soft ramp across the unknown band, so the refinement leaves soft values there.
    let mut data = vec![0u8; w * h * 4];
    for y in 0..h {
        for x in 0..w {
            let t = if x < 40 {
                0
            } else if x >= 120 {
                255
            } else {
                128
            };
            let v = ((x as f32 - 40.0) / 80.0 * 255.0).clamp(0.0, 255.0) as u8;
            data[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&[v, v / 2, 255 - v, t]);
        }
    }
    let run = |band: Option<bool>| -> (Vec<u8>, RefineStats) {
        let mut r = refiner();
        let settings = MatteSettings {
            band_net: band.unwrap_or(true),
            ..MatteSettings::default()
        };
        if band.is_some() {
            let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models")
                .join(slimmatte::paths::BAND_MODEL);
            r.set_band_net(Some(slimmatte::band_net::BandNet::load(&model, 1).unwrap()));
        }
        let mut d = data.clone();
        let stats = r
            .process(&mut rgba_view_mut(&mut d, w, h, w * 4).unwrap(), &settings)
            .unwrap();
        (d, stats)
    };
    let (classical, s0) = run(None);
    let (off, s1) = run(Some(false));
    let (on, s2) = run(Some(true));
    assert_eq!(s0.band_tiles, None);
    assert_eq!(s1.band_tiles, None);
    assert_eq!(off, classical, "band-net=false is the classical matte");
    let tiles = s2.band_tiles.expect("the band net ran");
    // The band spans x 40..120 (three 32-px tile columns from x 32) and every row.
    assert!((6..=12).contains(&tiles), "{tiles} tiles");
    let mut changed = 0;
    for (i, (a, b)) in on
        .chunks_exact(4)
        .zip(classical.chunks_exact(4))
        .enumerate()
    {
        let t = data[i * 4 + 3];
        if t != 128 {
            assert_eq!(a[3], t, "known pixel {i} changed");
        } else if a[3] != b[3] {
            changed += 1;
        }
    }
    assert!(changed > 0, "the band net changed no unknown pixel");
}
