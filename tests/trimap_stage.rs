//! The trimap stage on a real photograph of a person with the shipped segmentation model.

mod common;

use slimmatte::frame::{rgba_view, rgba_view_mut};
use slimmatte::trimap::{
    AlphaOutput, BACKGROUND, BandWidth, FOREGROUND, TrimapGenerator, TrimapSettings, UNKNOWN,
};

const W: usize = 640;
const H: usize = 360;

fn generator() -> TrimapGenerator {
    TrimapGenerator::load(&slimmatte::paths::default_segmentation_model(), 2).unwrap()
}

/// The colour channels of an RGBA frame.
fn rgb(frame: &[u8]) -> Vec<u8> {
    frame
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

fn alpha_at(frame: &[u8], x: usize, y: usize) -> u8 {
    frame[(y * W + x) * 4 + 3]
}

#[test]
fn trimap_of_the_astronaut_has_person_band_and_background() {
    let mut frame = common::astronaut(W as u32, H as u32);
    let rgb_before = rgb(&frame);
    let mut g = generator();
    let settings = TrimapSettings {
        band: BandWidth::Pixels(8),
        ..Default::default()
    };
    let mut view = rgba_view_mut(&mut frame, W, H, W * 4).unwrap();
    g.process(&mut view, &settings, AlphaOutput::Trimap)
        .unwrap();

    let alpha: Vec<u8> = frame.chunks_exact(4).map(|p| p[3]).collect();
    assert!(alpha.iter().all(|&a| a == 0 || a == 128 || a == 255));
    let frac = |v: u8| alpha.iter().filter(|&&a| a == v).count() as f64 / alpha.len() as f64;
    assert!(
        frac(FOREGROUND) > 0.2,
        "person covers a good part: {}",
        frac(FOREGROUND)
    );
    assert!(
        frac(BACKGROUND) > 0.05,
        "some background: {}",
        frac(BACKGROUND)
    );
    assert!(
        frac(UNKNOWN) > 0.01 && frac(UNKNOWN) < 0.2,
        "a band: {}",
        frac(UNKNOWN)
    );
    // The face (stretched photo: x ≈ 0.45·W, y ≈ 0.17·H) is person; the top-right wall is not.
    assert_eq!(alpha_at(&frame, W * 45 / 100, H * 17 / 100), FOREGROUND);
    assert_eq!(alpha_at(&frame, W - 10, 10), BACKGROUND);
    // Colours pass through untouched.
    assert_eq!(rgb_before, rgb(&frame));
}

#[test]
fn mask_output_is_soft_and_agrees_with_the_trimap() {
    let mut g = generator();
    let settings = TrimapSettings::default();
    let mut mask_frame = common::astronaut(W as u32, H as u32);
    let mut trimap_frame = mask_frame.clone();
    g.process(
        &mut rgba_view_mut(&mut mask_frame, W, H, W * 4).unwrap(),
        &settings,
        AlphaOutput::Mask,
    )
    .unwrap();
    g.reset();
    g.process(
        &mut rgba_view_mut(&mut trimap_frame, W, H, W * 4).unwrap(),
        &settings,
        AlphaOutput::Trimap,
    )
    .unwrap();
    let soft = mask_frame
        .chunks_exact(4)
        .filter(|p| p[3] > 10 && p[3] < 245)
        .count();
    assert!(soft > 100, "the mask has soft edges ({soft} soft pixels)");
    // The trimap is thresholded at 320×180 (finer than the 256×144 network): definite classes
    // agree with the full-resolution mask except for specks a few pixels wide.
    let disagree = mask_frame
        .chunks_exact(4)
        .zip(trimap_frame.chunks_exact(4))
        .filter(|(m, t)| match t[3] {
            FOREGROUND => m[3] < 127,
            BACKGROUND => m[3] > 128,
            _ => false,
        })
        .count();
    assert!(disagree <= W * H / 1000, "{disagree} pixels disagree");
}

#[test]
fn padded_strides_give_the_same_result() {
    let packed = common::astronaut(W as u32, H as u32);
    let stride = W * 4 + 64;
    let mut padded = vec![7u8; stride * H];
    for y in 0..H {
        padded[y * stride..y * stride + W * 4].copy_from_slice(&packed[y * W * 4..(y + 1) * W * 4]);
    }
    let mut packed = packed;
    let mut g = generator();
    let s = TrimapSettings::default();
    g.process(
        &mut rgba_view_mut(&mut packed, W, H, W * 4).unwrap(),
        &s,
        AlphaOutput::Trimap,
    )
    .unwrap();
    g.reset();
    g.process(
        &mut rgba_view_mut(&mut padded, W, H, stride).unwrap(),
        &s,
        AlphaOutput::Trimap,
    )
    .unwrap();
    for y in 0..H {
        assert_eq!(
            &padded[y * stride..y * stride + W * 4],
            &packed[y * W * 4..(y + 1) * W * 4]
        );
        assert!(
            padded[y * stride + W * 4..(y + 1) * stride]
                .iter()
                .all(|&b| b == 7),
            "padding untouched"
        );
    }
}

#[test]
fn a_confident_change_is_followed_at_once_even_with_smoothing() {
    // Person frame, then an all-black frame: the network is sure there is nobody, so the
    // uncertainty-aware mixing (and the scene-cut reset) follows at once — no ghost of the
    // person, whatever the smoothing. (Holding an unsure mask: src/temporal.rs unit tests.)
    let person = common::astronaut(W as u32, H as u32);
    let black = vec![0u8; W * H * 4];
    let mean_mask = |g: &mut TrimapGenerator, smoothing: f32| {
        g.reset();
        g.coarse_mask(&rgba_view(&person, W, H, W * 4).unwrap(), smoothing)
            .unwrap();
        let m = g
            .coarse_mask(&rgba_view(&black, W, H, W * 4).unwrap(), smoothing)
            .unwrap();
        m.iter().sum::<f32>() / m.len() as f32
    };
    let mut g = generator();
    let without = mean_mask(&mut g, 0.0);
    let with = mean_mask(&mut g, 0.8);
    g.reset();
    let first = g
        .coarse_mask(&rgba_view(&person, W, H, W * 4).unwrap(), 0.0)
        .unwrap();
    let person_mean = first.iter().sum::<f32>() / first.len() as f32;
    assert!(
        without < 0.2 * person_mean,
        "black frame has no person: {without}"
    );
    assert!(
        with < 0.2 * person_mean,
        "no ghost with smoothing 0.8: {with} vs {person_mean}"
    );
}

#[test]
fn large_frames_get_the_same_trimap_as_their_half_size() {
    // 1280×720 is computed at 640×360 and enlarged: classes stay exact and the class
    // proportions match those of the half-size frame with a half-size band.
    let fractions = |w: usize, h: usize, band: u32| {
        let mut frame = common::astronaut(w as u32, h as u32);
        let mut g = generator();
        let settings = TrimapSettings {
            band: BandWidth::Pixels(band),
            ..Default::default()
        };
        g.process(
            &mut rgba_view_mut(&mut frame, w, h, w * 4).unwrap(),
            &settings,
            AlphaOutput::Trimap,
        )
        .unwrap();
        let alpha: Vec<u8> = frame.chunks_exact(4).map(|p| p[3]).collect();
        assert!(alpha.iter().all(|&a| a == 0 || a == 128 || a == 255));
        let n = alpha.len() as f64;
        [0u8, 128, 255].map(|v| alpha.iter().filter(|&&a| a == v).count() as f64 / n)
    };
    let small = fractions(640, 360, 8);
    let large = fractions(1280, 720, 16);
    for (s, l) in small.iter().zip(&large) {
        assert!((s - l).abs() < 0.01, "{small:?} vs {large:?}");
    }
}

#[test]
fn the_flip_average_mask_of_a_mirrored_frame_is_the_mirrored_mask() {
    // With flip-average the mask of the mirrored frame is the mirror of the frame's mask (up to
    // resampling rounding); the network alone is not left–right symmetric, which is what the
    // average removes.
    let frame = common::astronaut(W as u32, H as u32);
    let mirrored: Vec<u8> = frame
        .chunks_exact(W * 4)
        .flat_map(|row| {
            row.chunks_exact(4)
                .rev()
                .flatten()
                .copied()
                .collect::<Vec<u8>>()
        })
        .collect();
    let mask = |data: &[u8], flip_average: bool| {
        let mut g = generator();
        let settings = TrimapSettings {
            smoothing: 0.0,
            flip_average,
            ..Default::default()
        };
        let mut data = data.to_vec();
        g.process(
            &mut rgba_view_mut(&mut data, W, H, W * 4).unwrap(),
            &settings,
            AlphaOutput::Mask,
        )
        .unwrap();
        data.chunks_exact(4).map(|p| p[3]).collect::<Vec<u8>>()
    };
    // Largest |mask(mirrored)(x) − mask(frame)(W − 1 − x)| and the mean.
    let asymmetry = |flip_average: bool| {
        let (a, b) = (mask(&frame, flip_average), mask(&mirrored, flip_average));
        let mut worst = 0u8;
        let mut sum = 0u64;
        for y in 0..H {
            for x in 0..W {
                let d = a[y * W + x].abs_diff(b[y * W + (W - 1 - x)]);
                worst = worst.max(d);
                sum += d as u64;
            }
        }
        (worst, sum as f64 / (W * H) as f64)
    };
    let (worst_on, mean_on) = asymmetry(true);
    let (worst_off, mean_off) = asymmetry(false);
    assert!(worst_on <= 3, "flip-average asymmetry up to {worst_on}");
    assert!(
        mean_off > 4.0 * mean_on.max(0.01),
        "the single run is not more asymmetric: {mean_off} vs {mean_on} ({worst_off} vs {worst_on})"
    );
}

/// A `mw × mh` mask that is 1 on the middle half of the frame in both directions.
fn box_mask(mw: usize, mh: usize) -> Vec<f32> {
    (0..mw * mh)
        .map(|i| {
            let (x, y) = (i % mw, i / mw);
            f32::from(x >= mw / 4 && x < 3 * mw / 4 && y >= mh / 4 && y < 3 * mh / 4)
        })
        .collect()
}

#[test]
fn a_given_mask_gets_the_same_band_at_any_resolution() {
    let mut g = generator();
    let settings = TrimapSettings {
        band: BandWidth::Pixels(8),
        band_bias: 0.0,
        ..Default::default()
    };
    let mut frame = common::astronaut(W as u32, H as u32);
    let rgb_before = rgb(&frame);
    // First the network's mask (history at 256×144), then given masks of two sizes: a size
    // change must not mix in the other resolution's history.
    g.process(
        &mut rgba_view_mut(&mut frame, W, H, W * 4).unwrap(),
        &settings,
        AlphaOutput::Trimap,
    )
    .unwrap();
    for (mw, mh) in [(256, 144), (128, 72)] {
        g.process_with_mask(
            &mut rgba_view_mut(&mut frame, W, H, W * 4).unwrap(),
            &box_mask(mw, mh),
            (mw, mh),
            &settings,
            AlphaOutput::Trimap,
        );
        // The box spans x 160..480, y 90..270 of the frame.
        assert_eq!(alpha_at(&frame, W / 2, H / 2), FOREGROUND, "{mw}×{mh}");
        assert_eq!(alpha_at(&frame, 10, 10), BACKGROUND, "{mw}×{mh}");
        assert_eq!(alpha_at(&frame, 160, H / 2), UNKNOWN, "{mw}×{mh}");
        assert_eq!(alpha_at(&frame, W / 2, 90), UNKNOWN, "{mw}×{mh}");
        assert_eq!(alpha_at(&frame, 140, H / 2), BACKGROUND, "{mw}×{mh}");
        assert_eq!(alpha_at(&frame, 180, H / 2), FOREGROUND, "{mw}×{mh}");
    }
    assert_eq!(rgb_before, rgb(&frame));
}

#[test]
#[should_panic(expected = "mask is not")]
fn a_given_mask_of_the_wrong_size_is_refused() {
    let mut frame = common::astronaut(W as u32, H as u32);
    generator().process_with_mask(
        &mut rgba_view_mut(&mut frame, W, H, W * 4).unwrap(),
        &[0.0; 10],
        (256, 144),
        &TrimapSettings::default(),
        AlphaOutput::Trimap,
    );
}
