//! The lag test of the temporal matting net: a subject moving 10 px per frame leaves no
//! trailing ghost wider than 2 px. The trimap of every frame is the truth's (known inside and
//! outside, a ±10 px unknown band around the edge), so the band behind the subject is exactly
//! where last frame's matte still shows it: a net that copied its previous matte would leave a
//! 10 px ghost there (checked with `prev_copy_matte.onnx`, alpha = prev_alpha).

mod common;

use std::path::Path;

use slimmatte::frame::rgba_view_mut;
use slimmatte::matte::{MatteRefiner, MatteSettings};
use slimmatte::refine::{RefineMethod, RefineSettings};

/// The net's matte alone (no classical refinement, which would hide what the net does), at
/// full resolution.
fn net_alone() -> MatteSettings {
    MatteSettings {
        working_size: 0,
        refine: RefineSettings {
            method: RefineMethod::None,
            ..RefineSettings::default()
        },
        ..MatteSettings::default()
    }
}

const W: usize = 320;
const H: usize = 180;
const STEP: usize = 10;
const BAND: f32 = 10.0;
const RADIUS: f32 = 45.0;

/// Frame `t`: a disc textured with the astronaut photo (the texture moves with it) over a
/// grey-blue gradient, centre moving right by `STEP` px per frame; alpha = trimap of the truth.
/// Returns the frame and the true alpha (0..1).
fn frame(t: usize, photo: &[u8]) -> (Vec<u8>, Vec<f32>) {
    let (cx, cy) = (70.0 + (t * STEP) as f32, H as f32 / 2.0);
    let mut data = vec![0u8; W * H * 4];
    let mut truth = vec![0.0f32; W * H];
    for y in 0..H {
        for x in 0..W {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() - RADIUS;
            let a = (0.5 - d).clamp(0.0, 1.0);
            // Texture coordinates relative to the disc.
            let (u, v) = (
                (x as f32 - cx + RADIUS) as isize + 40,
                (y as f32 - cy + RADIUS) as isize + 20,
            );
            let (u, v) = (
                u.clamp(0, W as isize - 1) as usize,
                v.clamp(0, H as isize - 1) as usize,
            );
            let fg = &photo[(v * W + u) * 4..(v * W + u) * 4 + 3];
            let bg = [
                60.0 + 80.0 * x as f32 / W as f32,
                90.0,
                140.0 + 60.0 * y as f32 / H as f32,
            ];
            let px = &mut data[(y * W + x) * 4..(y * W + x) * 4 + 4];
            for c in 0..3 {
                px[c] = (a * fg[c] as f32 + (1.0 - a) * bg[c]).round() as u8;
            }
            px[3] = if d < -BAND {
                255
            } else if d > BAND {
                0
            } else {
                128
            };
            truth[y * W + x] = a;
        }
    }
    (data, truth)
}

/// The widest trailing ghost after `frames` frames: on each row through the disc's middle
/// half, the run of pixels left of the true trailing edge (truth 0) whose matte is 0.5 or more,
/// counted from the edge. Also the fraction of the unknown band's subject pixels (truth > 0.5)
/// that the matte covers (≥ 0.5): a matte that dropped the subject would have no ghost either.
fn widest_ghost(model: &Path, frames: usize, settings: &MatteSettings) -> (usize, f64) {
    let photo = common::astronaut(W as u32, H as u32);
    let mut refiner = MatteRefiner::load(model, 1).unwrap();
    assert!(refiner.is_temporal(), "{} is not temporal", model.display());
    let mut widest = 0;
    let (mut covered, mut subject) = (0usize, 0usize);
    for t in 0..frames {
        let (mut data, truth) = frame(t, &photo);
        let band: Vec<bool> = data.chunks_exact(4).map(|p| p[3] == 128).collect();
        refiner
            .process(
                &mut rgba_view_mut(&mut data, W, H, W * 4).unwrap(),
                settings,
            )
            .unwrap();
        if t < 2 {
            continue; // the history has to build up first
        }
        for (i, (&b, &a)) in band.iter().zip(&truth).enumerate() {
            if b && a > 0.5 {
                subject += 1;
                covered += (data[i * 4 + 3] >= 128) as usize;
            }
        }
        let cy = H / 2;
        let r = RADIUS as usize;
        for y in cy - r / 2..cy + r / 2 {
            let row = &truth[y * W..(y + 1) * W];
            // The trailing edge: the first pixel of the row with truth > 0.
            let Some(edge) = row.iter().position(|&a| a > 0.0) else {
                continue;
            };
            let ghost = (0..edge)
                .rev()
                .take_while(|&x| data[(y * W + x) * 4 + 3] >= 128)
                .count();
            widest = widest.max(ghost);
        }
    }
    (widest, covered as f64 / subject.max(1) as f64)
}

#[test]
fn a_net_that_copies_its_previous_matte_is_caught_as_a_ghost() {
    let (ghost, _) = widest_ghost(&common::fixture("prev_copy_matte.onnx"), 6, &net_alone());
    assert!(
        ghost >= STEP - 1,
        "copying the previous matte trails by {ghost} px"
    );
}

#[test]
fn the_shipped_temporal_net_leaves_no_trailing_ghost_wider_than_2_px() {
    // The default matting model is the temporal student.
    let model = slimmatte::paths::default_matting_model();
    for (what, settings) in [
        ("the net alone", net_alone()),
        ("the stage as shipped", MatteSettings::default()),
    ] {
        let (ghost, covered) = widest_ghost(&model, 12, &settings);
        assert!(ghost <= 2, "{what} trails by {ghost} px at {STEP} px/frame");
        assert!(
            covered > 0.9,
            "{what} covers {covered:.2} of the subject in the band"
        );
    }
}
