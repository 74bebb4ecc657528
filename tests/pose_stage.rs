//! The pose stage (`trimapgen pose=true`) on a real photograph of a person with the shipped
//! models: the detector finds her on the first frame, the landmark network's mask covers her
//! and not the wall, tracking follows, the cadence holds the mask between runs (and only a
//! confirmed one), a frame without a person runs the detector only, and a region that does not hold the whole body
//! is never mixed into the mask.

mod common;

use slimmatte::frame::{rgba_view, rgba_view_mut};
use slimmatte::pose::{PoseOutcome, PoseSegmenter, Tolerance};
use slimmatte::trimap::{AlphaOutput, TrimapGenerator, TrimapSettings};

const W: usize = 640;
const H: usize = 360;
/// The mask's resolution (the selfie network's).
const MW: usize = 256;
const MH: usize = 144;

fn pose() -> PoseSegmenter {
    PoseSegmenter::load(
        &slimmatte::paths::default_pose_model(),
        &slimmatte::paths::default_pose_detector_model(),
        2,
    )
    .unwrap()
}

fn run(p: &mut PoseSegmenter, frame: &[u8], interval: usize) -> PoseOutcome {
    let view = rgba_view(frame, W, H, W * 4).unwrap();
    p.update(&view, (MW, MH), interval).unwrap()
}

fn person(m: &[f32]) -> usize {
    m.iter().filter(|&&v| v > 0.5).count()
}

#[test]
fn detects_segments_and_tracks_the_astronaut_from_the_first_frame() {
    let frame = common::astronaut(W as u32, H as u32);
    let mut p = pose();
    assert!(p.tracked().is_none() && p.mask().is_none());
    assert_eq!(run(&mut p, &frame, 1), PoseOutcome::Found);
    let held = p.mask().expect("a confirmed pose holds its mask");
    let (mask, weight, reach) = (
        held.mask.to_vec(),
        held.weight.to_vec(),
        held.reach.to_vec(),
    );
    assert_eq!(
        (mask.len(), weight.len(), reach.len()),
        (MW * MH, MW * MH, MW * MH)
    );
    let at =
        |m: &[f32], x: f32, y: f32| m[(y * MH as f32) as usize * MW + (x * MW as f32) as usize];
    // Her face (x ≈ 0.45, y ≈ 0.17 of the stretched photo) and chest are person, inside the
    // region; the top-right wall and the rocket to the right are not.
    assert!(at(&mask, 0.45, 0.2) > 0.5, "face {}", at(&mask, 0.45, 0.2));
    assert!(at(&mask, 0.45, 0.8) > 0.5, "chest {}", at(&mask, 0.45, 0.8));
    assert!(
        at(&mask, 0.97, 0.05) < 0.1,
        "wall {}",
        at(&mask, 0.97, 0.05)
    );
    assert_eq!(at(&weight, 0.45, 0.2), 1.0);
    // The mask may add person on her face and chest (near her skeleton), and not everywhere
    // it has a say: the region reaches further than a body width from her bones.
    assert_eq!(at(&reach, 0.45, 0.2), 1.0);
    assert_eq!(at(&reach, 0.45, 0.8), 1.0);
    let out_of_reach = weight
        .iter()
        .zip(&reach)
        .filter(|(w, r)| **w == 1.0 && **r == 0.0)
        .count();
    assert!(out_of_reach > 0, "the whole region is within reach");
    assert!(reach.iter().all(|r| (0.0..=1.0).contains(r)));
    // Tracking: the next run uses the region placed by the landmarks, upright, covering her.
    let region = p.tracked().expect("tracked after a find");
    assert!(region.rotation.abs() < 0.3, "{region:?}");
    assert!(
        region.size > 200.0 && (0.0..W as f32).contains(&region.cx),
        "{region:?}"
    );
    assert_eq!(run(&mut p, &frame, 1), PoseOutcome::Found);
    let again = p.mask().unwrap().mask.to_vec();
    let both = mask
        .iter()
        .zip(&again)
        .filter(|(a, b)| **a > 0.5 && **b > 0.5)
        .count();
    let iou = both as f64 / (person(&mask) + person(&again) - both) as f64;
    assert!(
        iou > 0.9,
        "tracked mask against the detected one's: IoU {iou}"
    );
    p.reset();
    assert!(p.tracked().is_none() && p.mask().is_none());
}

#[test]
fn the_cadence_holds_the_mask_between_runs() {
    let frame = common::astronaut(W as u32, H as u32);
    let mut p = pose();
    let outcomes: Vec<_> = (0..5).map(|_| run(&mut p, &frame, 3)).collect();
    use PoseOutcome::{Found, Held};
    assert_eq!(outcomes, [Found, Held, Held, Found, Held]);
    assert!(p.mask().is_some(), "held frames keep the last mask");
    // A reset runs the path on the next frame whatever the cadence.
    p.reset();
    assert_eq!(run(&mut p, &frame, 3), Found);
    // A phase of 1 brings the second run one frame earlier, then every third frame again.
    p.reset();
    p.set_phase(1);
    let outcomes: Vec<_> = (0..6).map(|_| run(&mut p, &frame, 3)).collect();
    assert_eq!(outcomes, [Found, Held, Found, Held, Held, Found]);
}

#[test]
fn a_run_looks_for_the_person_where_the_caller_says_they_moved() {
    use PoseOutcome::{Found, Held};
    let frame = common::astronaut(W as u32, H as u32);
    let mut p = pose();
    assert_eq!(run(&mut p, &frame, 2), Found);
    // She has not moved: the next run confirms her in the region her landmarks placed.
    p.set_motion(0.0, 0.0);
    assert_eq!(run(&mut p, &frame, 2), Held);
    assert_eq!(run(&mut p, &frame, 2), Found);
    // Told she moved 300 px to the right, the run moves the tracked region there first; she
    // is not there, so the region is not confirmed.
    p.set_motion(300.0, 0.0);
    assert_eq!(run(&mut p, &frame, 2), Held);
    assert_ne!(run(&mut p, &frame, 2), Found);
}

/// Pastes the astronaut, `side` pixels square, into the 640×360 `frame` at `(x0, y0)`.
fn paste_person(frame: &mut [u8], x0: usize, y0: usize, side: usize) {
    let person = common::astronaut(side as u32, side as u32);
    for y in 0..side {
        let src = &person[y * side * 4..(y + 1) * side * 4];
        frame[((y0 + y) * W + x0) * 4..][..src.len()].copy_from_slice(src);
    }
}

/// A grey 640×360 frame with the astronaut pasted at `(x, y)`, `side` pixels square.
fn small_person(x0: usize, y0: usize, side: usize) -> Vec<u8> {
    let mut frame: Vec<u8> = (0..W * H).flat_map(|_| [128, 128, 128, 255]).collect();
    paste_person(&mut frame, x0, y0, side);
    frame
}

#[test]
fn a_person_too_small_for_the_whole_frame_is_found_closer() {
    use slimmatte::pose::PoseDetector;
    let detector_model = slimmatte::paths::default_pose_detector_model();
    let mut detector = PoseDetector::load(&detector_model, 2).unwrap();
    // The astronaut 80 px square at the right of a 640×360 frame: too small for the whole
    // frame's letterbox (2.9 frame pixels per detector pixel), found in the right-hand square.
    let (x0, y0, side) = (500.0, 200.0, 80.0);
    let frame = small_person(x0 as usize, y0 as usize, side as usize);
    let view = rgba_view(&frame, W, H, W * 4).unwrap();
    assert!(detector.detect(&view).unwrap().is_empty());
    let found = detector.detect_closer(&view).unwrap().to_vec();
    assert_eq!(found.len(), 1, "{found:?}");
    let (cx, cy) = found[0].centre;
    assert!(
        (x0..x0 + side).contains(&cx) && (y0..y0 + side).contains(&cy),
        "detection at ({cx}, {cy})"
    );
    // The pose stage looks closer on a first frame: she is not missed.
    let mut p = pose();
    assert_ne!(run(&mut p, &frame, 3), PoseOutcome::NoPerson);
}

#[test]
fn a_frame_without_a_person_finds_nothing() {
    let grey: Vec<u8> = (0..W * H).flat_map(|_| [128, 128, 128, 255]).collect();
    let mut p = pose();
    // Nobody held: the detector looks again on the next frame, then backs off one frame per
    // miss to the cadence (a person walking in is found at once; an empty room, or a face too
    // close for the whole-body detector, costs a detector run every third frame).
    use PoseOutcome::{Found, Held, NoPerson};
    let outcomes: Vec<_> = (0..9).map(|_| run(&mut p, &grey, 3)).collect();
    assert_eq!(
        outcomes,
        [
            NoPerson, NoPerson, Held, NoPerson, Held, Held, NoPerson, Held, Held
        ]
    );
    assert!(p.tracked().is_none() && p.mask().is_none());
    // Once she appears she is found on the next run, and then the cadence holds her mask.
    let frame = common::astronaut(W as u32, H as u32);
    let outcomes: Vec<_> = (0..4).map(|_| run(&mut p, &frame, 3)).collect();
    assert_eq!(outcomes, [Found, Held, Held, Found]);
}

/// A tolerance no real region meets: every region stays unconfirmed.
fn never() -> Tolerance {
    Tolerance {
        shift: 0.0,
        ..Tolerance::default()
    }
}

#[test]
fn an_unconfirmed_region_is_tracked_but_holds_no_mask() {
    let frame = common::astronaut(W as u32, H as u32);
    let mut p = pose();
    p.set_tolerance(never());
    // The detection frame tries twice (the detection's region, then the landmarks' one).
    assert_eq!(run(&mut p, &frame, 3), PoseOutcome::Unconfirmed);
    assert!(p.mask().is_none());
    assert!(p.tracked().is_some(), "the pose is still tracked");
    // An unsettled region is run again on the next frame, whatever the cadence.
    assert_eq!(run(&mut p, &frame, 3), PoseOutcome::Unconfirmed);
    // With the default tolerance the tracked region settles at once.
    p.set_tolerance(Tolerance::default());
    assert_eq!(run(&mut p, &frame, 1), PoseOutcome::Found);
}

/// The trimap of the astronaut's first frame with `pose` and the generator `g`.
fn trimap(g: &mut TrimapGenerator, pose: bool) -> Vec<u8> {
    let mut frame = common::astronaut(W as u32, H as u32);
    let settings = TrimapSettings {
        pose,
        pose_interval: 1,
        ..Default::default()
    };
    g.process(
        &mut rgba_view_mut(&mut frame, W, H, W * 4).unwrap(),
        &settings,
        AlphaOutput::Trimap,
    )
    .unwrap();
    frame.chunks_exact(4).map(|p| p[3]).collect()
}

fn generator(pose: bool) -> TrimapGenerator {
    let mut g = TrimapGenerator::load(&slimmatte::paths::default_segmentation_model(), 2).unwrap();
    if pose {
        g.load_default_pose(2).unwrap();
    }
    g
}

#[test]
fn an_unconfirmed_region_leaves_the_mask_to_the_selfie_network() {
    let selfie = trimap(&mut generator(false), false);
    // The network sees her, but its regions are never confirmed: the mask is the selfie
    // network's, pixel for pixel.
    let mut g = generator(true);
    g.pose_mut().unwrap().set_tolerance(never());
    let with_partial_region = trimap(&mut g, true);
    assert!(!g.pose_found());
    assert!(
        with_partial_region == selfie,
        "an unconfirmed pose region changed {} trimap pixels",
        selfie
            .iter()
            .zip(&with_partial_region)
            .filter(|(a, b)| a != b)
            .count()
    );
    // Confirmed, her pose mask is mixed in (the trimap changes).
    g.pose_mut().unwrap().set_tolerance(Tolerance::default());
    g.reset();
    let detected = trimap(&mut g, true);
    assert!(g.pose_found());
    assert!(detected.iter().all(|&a| matches!(a, 0 | 128 | 255)));
    assert_ne!(detected, selfie);
    // The face is person.
    assert_eq!(detected[(H * 17 / 100) * W + W * 45 / 100], 255);
}

#[test]
fn without_pose_the_pose_networks_do_not_run() {
    let mut g = generator(true);
    let plain = trimap(&mut g, false);
    assert!(!g.pose_found());
    assert!(g.pose_mut().unwrap().tracked().is_none());
    assert_eq!(plain, trimap(&mut generator(false), false));
}

/// The detector's decoding (anchors, boxes, keypoints, weighted NMS, letterbox removal) against
/// the reference computed over LiteRT's outputs and checked against MediaPipe's own detection
/// graph (`tools/mediapipe_to_onnx.py --fixture`), on the exact network inputs it recorded.
#[test]
fn detections_match_mediapipes_decoding() {
    use slimmatte::pose::PoseDetector;
    let text = std::fs::read_to_string(common::fixture("pose_detection_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut detector =
        PoseDetector::load(&slimmatte::paths::default_pose_detector_model(), 2).unwrap();
    let frames = reference["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 3);
    for f in frames {
        let (w, h) = (
            f["width"].as_u64().unwrap() as usize,
            f["height"].as_u64().unwrap() as usize,
        );
        let png =
            image::open(slimmatte::paths::project_root().join(f["input_png"].as_str().unwrap()))
                .unwrap()
                .to_rgb8();
        let n = 224 * 224;
        let mut input = vec![0.0f32; 3 * n];
        for (k, p) in png.pixels().enumerate() {
            for c in 0..3 {
                input[c * n + k] = p[c] as f32 * (2.0 / 255.0) - 1.0;
            }
        }
        let found = detector.detect_input(&input, (w, h)).unwrap();
        let expected = f["detections"].as_array().unwrap();
        assert_eq!(found.len(), expected.len(), "{}", f["name"]);
        for (d, e) in found.iter().zip(expected) {
            let close = |a: f32, b: &serde_json::Value, what: &str| {
                let b = b.as_f64().unwrap() as f32;
                assert!((a - b).abs() < 2e-3, "{} {what}: {a} vs {b}", f["name"]);
            };
            close(d.score, &e["score"], "score");
            close(d.centre.0 / w as f32, &e["box"]["x_center"], "box x");
            close(d.centre.1 / h as f32, &e["box"]["y_center"], "box y");
            close(d.size.0 / w as f32, &e["box"]["width"], "box width");
            close(d.size.1 / h as f32, &e["box"]["height"], "box height");
            for (k, kp) in d.keypoints.iter().enumerate() {
                close(kp.0 / w as f32, &e["keypoints"][k][0], "keypoint x");
                close(kp.1 / h as f32, &e["keypoints"][k][1], "keypoint y");
            }
            let roi = d.region(1.25);
            close(roi.rotation, &e["roi"]["rotation"], "region rotation");
            close(roi.size / w as f32, &e["roi"]["width"], "region width");
        }
    }
}

/// Where [`found_two_people`] pastes the astronaut (pixels): the two left edges, the top, the
/// side.
const LEFT: usize = 40;
const RIGHT: usize = 360;
const Y0: usize = 100;
const SIDE: usize = 240;

/// A grey 640×360 frame with the astronaut pasted twice (at [`LEFT`] and [`RIGHT`]) and a
/// pose segmenter that has run on it once, finding both people.
fn found_two_people() -> (PoseSegmenter, Vec<u8>) {
    let mut frame = small_person(LEFT, Y0, SIDE);
    paste_person(&mut frame, RIGHT, Y0, SIDE);
    let mut p = pose();
    assert_eq!(run(&mut p, &frame, 1), PoseOutcome::Found);
    assert_eq!(p.others(), 1, "the second person is segmented too");
    (p, frame)
}

#[test]
fn two_people_are_both_segmented_and_tracked() {
    let (left, right, y0, side) = (LEFT, RIGHT, Y0, SIDE);
    let (mut p, frame) = found_two_people();
    let at = |m: &[f32], x: usize, y: usize| m[(y * MH / H) * MW + x * MW / W];
    // Each face (about 45 % across and 20 % down the photo) is person in the mask, in reach,
    // and the grey between them is not.
    let face = |x0: usize| (x0 + side * 45 / 100, y0 + side * 22 / 100);
    let check = |p: &PoseSegmenter| {
        let held = p.mask().expect("a confirmed pose");
        for x0 in [left, right] {
            let (x, y) = face(x0);
            assert!(
                at(held.mask, x, y) > 0.5,
                "face at {x0}: {}",
                at(held.mask, x, y)
            );
            assert_eq!(at(held.reach, x, y), 1.0, "reach at {x0}");
        }
        assert!(
            at(held.mask, 330, 40) < 0.1,
            "grey gap: {}",
            at(held.mask, 330, 40)
        );
    };
    check(&p);
    // The next run tracks both.
    assert_eq!(run(&mut p, &frame, 1), PoseOutcome::Found);
    assert_eq!(p.others(), 1, "the second person is tracked");
    check(&p);
    // A reset forgets them.
    p.reset();
    assert_eq!(p.others(), 0);
}

#[test]
fn an_other_person_followed_by_the_tracked_region_is_dropped() {
    let (mut p, frame) = found_two_people();
    // Move the tracked region onto the other person: both would follow one person, so the
    // other is dropped and the tracked one is still found there.
    let mut region = p.tracked().expect("tracked");
    region.cx += if region.cx > W as f32 / 2.0 {
        -320.0
    } else {
        320.0
    };
    p.track(region);
    assert_eq!(run(&mut p, &frame, 1), PoseOutcome::Found);
    assert_eq!(p.others(), 0, "two regions on one person");
}
