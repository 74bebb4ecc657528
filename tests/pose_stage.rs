//! The pose network's person segmentation (`trimapgen pose=true`) on a real photograph of a
//! person with the shipped model: the region search finds her, the mask covers her and not
//! the wall, tracking follows, a frame without a person finds nothing, and reset searches
//! again.

mod common;

use slimmatte::frame::{rgba_view, rgba_view_mut};
use slimmatte::pose::{PoseSegmenter, search_regions};
use slimmatte::trimap::{AlphaOutput, TrimapGenerator, TrimapSettings};

const W: usize = 640;
const H: usize = 360;
/// The mask's resolution (the selfie network's).
const MW: usize = 256;
const MH: usize = 144;

fn pose() -> PoseSegmenter {
    PoseSegmenter::load(&slimmatte::paths::default_pose_model(), 2).unwrap()
}

/// Runs `p` on `frame` until it finds a pose, at most one search round; returns the mask and
/// the frames it took.
fn find(p: &mut PoseSegmenter, frame: &[u8]) -> Option<(Vec<f32>, usize)> {
    let view = rgba_view(frame, W, H, W * 4).unwrap();
    for k in 1..=search_regions(W, H).len() {
        if let Some(mask) = p.run(&view, (MW, MH)).unwrap() {
            return Some((mask.to_vec(), k));
        }
    }
    None
}

#[test]
fn finds_tracks_and_segments_the_astronaut() {
    let frame = common::astronaut(W as u32, H as u32);
    let mut p = pose();
    assert!(p.tracked().is_none());
    let (mask, frames) = find(&mut p, &frame).expect("the astronaut is found");
    assert!(frames <= 6, "found after {frames} search frames");
    assert_eq!(mask.len(), MW * MH);
    let at = |x: f32, y: f32| mask[(y * MH as f32) as usize * MW + (x * MW as f32) as usize];
    // Her face (x ≈ 0.45, y ≈ 0.17 of the stretched photo) and chest are person; the top-right
    // wall and the rocket to the right are not.
    assert!(at(0.45, 0.2) > 0.5, "face {}", at(0.45, 0.2));
    assert!(at(0.45, 0.8) > 0.5, "chest {}", at(0.45, 0.8));
    assert!(at(0.97, 0.05) < 0.1, "wall {}", at(0.97, 0.05));
    // Tracking: the next frame uses the region placed by the landmarks, upright, covering her.
    let region = p.tracked().expect("tracked after a find");
    assert!(region.rotation.abs() < 0.3, "{region:?}");
    assert!(
        region.size > 200.0 && (0.0..W as f32).contains(&region.cx),
        "{region:?}"
    );
    let view = rgba_view(&frame, W, H, W * 4).unwrap();
    let again = p
        .run(&view, (MW, MH))
        .unwrap()
        .expect("still found")
        .to_vec();
    let person = |m: &[f32]| m.iter().filter(|&&v| v > 0.5).count();
    let both = mask
        .iter()
        .zip(&again)
        .filter(|(a, b)| **a > 0.5 && **b > 0.5)
        .count();
    let iou = both as f64 / (person(&mask) + person(&again) - both) as f64;
    // The search region's mask is coarser than the tracked one's (measured: IoU 0.85).
    assert!(iou > 0.75, "tracked mask against the search's: IoU {iou}");
    let at = |x: f32, y: f32| again[(y * MH as f32) as usize * MW + (x * MW as f32) as usize];
    assert!(at(0.45, 0.2) > 0.5 && at(0.45, 0.8) > 0.5 && at(0.97, 0.05) < 0.1);
    p.reset();
    assert!(p.tracked().is_none());
}

#[test]
fn a_frame_without_a_person_finds_nothing() {
    let grey: Vec<u8> = (0..W * H).flat_map(|_| [128, 128, 128, 255]).collect();
    let mut p = pose();
    assert!(find(&mut p, &grey).is_none());
    assert!(p.tracked().is_none());
}

#[test]
fn trimap_with_pose_keeps_the_classes_and_reports_the_find() {
    let mut g = TrimapGenerator::load(&slimmatte::paths::default_segmentation_model(), 2).unwrap();
    g.load_pose(&slimmatte::paths::default_pose_model(), 2)
        .unwrap();
    let settings = TrimapSettings {
        pose: true,
        ..Default::default()
    };
    let mut found = false;
    for _ in 0..search_regions(W, H).len() {
        let mut frame = common::astronaut(W as u32, H as u32);
        g.process(
            &mut rgba_view_mut(&mut frame, W, H, W * 4).unwrap(),
            &settings,
            AlphaOutput::Trimap,
        )
        .unwrap();
        assert!(frame.chunks_exact(4).all(|p| matches!(p[3], 0 | 128 | 255)));
        if g.pose_found() {
            found = true;
            // The face is person.
            assert_eq!(frame[((H * 17 / 100) * W + W * 45 / 100) * 4 + 3], 255);
            break;
        }
    }
    assert!(
        found,
        "the pose network found the astronaut within one search round"
    );
    // With `pose` false the network is not run.
    let mut frame = common::astronaut(W as u32, H as u32);
    g.process(
        &mut rgba_view_mut(&mut frame, W, H, W * 4).unwrap(),
        &TrimapSettings {
            pose: false,
            ..Default::default()
        },
        AlphaOutput::Trimap,
    )
    .unwrap();
    assert!(!g.pose_found());
}
