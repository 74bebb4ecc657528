//! Property-based tests (proptest) of the pre/post-processing kernels on random sizes and
//! contents: no panic, outputs in range, invariants hold.

use proptest::prelude::*;

use slimmatte::composite::{Background, Compositor};
use slimmatte::frame::{rgba_view, rgba_view_mut};
use slimmatte::resize::{PlaneResizer, RgbaToPlanar};
use slimmatte::trimap::{BACKGROUND, FOREGROUND, TrimapBuilder, UNKNOWN};

fn dims() -> impl Strategy<Value = (usize, usize)> {
    (1usize..48, 1usize..48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn trimap_classes_and_known_regions((w, h) in dims(), seed in any::<u64>(),
                                        threshold in 0.05f32..0.95, radius in 0.0f32..12.0) {
        let mask: Vec<f32> = (0..w * h)
            .map(|i| (((i as u64 ^ seed).wrapping_mul(0x9E3779B97F4A7C15) >> 40) % 1000) as f32 / 999.0)
            .collect();
        let mut out = vec![0u8; w * h];
        TrimapBuilder::new().build(&mask, w, h, threshold, radius, &mut out);
        for (t, m) in out.iter().zip(&mask) {
            prop_assert!(*t == BACKGROUND || *t == UNKNOWN || *t == FOREGROUND);
            // Definite classes always agree with the thresholded mask.
            if *t == FOREGROUND { prop_assert!(*m >= threshold); }
            if *t == BACKGROUND { prop_assert!(*m < threshold); }
        }
        if radius == 0.0 {
            prop_assert!(!out.contains(&UNKNOWN));
        }
    }

    #[test]
    fn plane_resize_stays_within_input_range((sw, sh) in dims(), (dw, dh) in dims(),
                                             seed in any::<u32>()) {
        let src: Vec<f32> = (0..sw * sh).map(|i| ((i as u32 ^ seed) % 97) as f32 / 96.0).collect();
        let (lo, hi) = src.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let mut dst = vec![0.0; dw * dh];
        PlaneResizer::new().run(&src, sw, sh, &mut dst, dw, dh);
        for v in &dst {
            prop_assert!(*v >= lo - 1e-4 && *v <= hi + 1e-4, "{v} outside [{lo}, {hi}]");
        }
    }

    #[test]
    fn rgba_resize_with_padding_stays_in_range((sw, sh) in dims(), (dw, dh) in dims(),
                                               pad in 0usize..9, seed in any::<u8>()) {
        let stride = sw * 4 + pad;
        let data: Vec<u8> = (0..stride * sh).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let view = rgba_view(&data, sw, sh, stride).unwrap();
        let mut out = vec![0.0; 4 * dw * dh];
        RgbaToPlanar::new().run_rgba(&view, dw, dh, 1.0 / 255.0, &mut out);
        prop_assert!(out.iter().all(|v| (-1e-4..=1.0 + 1e-4).contains(v)));
    }

    #[test]
    fn compositing_keeps_opaque_pixels_and_bounds((w, h) in dims(), seed in any::<u8>(),
                                                  mode in 0usize..3) {
        let mut data: Vec<u8> = (0..w * h * 4).map(|i| (i as u8).wrapping_mul(73) ^ seed).collect();
        // Every 3rd pixel fully opaque.
        for (i, px) in data.chunks_exact_mut(4).enumerate() {
            if i % 3 == 0 { px[3] = 255; }
        }
        let before = data.clone();
        let bg = match mode {
            0 => Background::Color([1, 2, 3]),
            1 => Background::Blur { sigma: 5.0 },
            _ => Background::Transparent,
        };
        let mut view = rgba_view_mut(&mut data, w, h, w * 4).unwrap();
        Compositor::new(bg).apply(&mut view);
        for (i, (a, b)) in data.chunks_exact(4).zip(before.chunks_exact(4)).enumerate() {
            if b[3] == 255 {
                prop_assert_eq!(&a[..3], &b[..3], "opaque pixel {} changed", i);
            }
            if mode == 2 {
                prop_assert_eq!(a, b);
            } else {
                prop_assert_eq!(a[3], 255);
                if b[3] == 0 && mode == 0 {
                    prop_assert_eq!(&a[..3], &[1u8, 2, 3][..]);
                }
            }
        }
    }
}

/// One matting stage for all cases (loading an ORT session per case would dominate).
fn refiner() -> std::sync::MutexGuard<'static, slimmatte::matte::MatteRefiner> {
    static REFINER: std::sync::LazyLock<std::sync::Mutex<slimmatte::matte::MatteRefiner>> =
        std::sync::LazyLock::new(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let path = root.join("tests/fixtures/luma_key_matte.onnx");
            let mut refiner = slimmatte::matte::MatteRefiner::load(&path, 1).unwrap();
            // The shipped band net, run when a case's settings ask for it.
            let band =
                slimmatte::band_net::BandNet::load(&root.join("models/band_student.onnx"), 1);
            refiner.set_band_net(Some(band.unwrap()));
            std::sync::Mutex::new(refiner)
        });
    REFINER.lock().unwrap_or_else(|e| e.into_inner())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn matting_keeps_known_regions_exact((w, h) in (1usize..70, 1usize..50), seed in any::<u64>(),
                                         working in 0u32..80, margin in 0u32..20,
                                         refine in any::<bool>(), levels in 1u32..6,
                                         radius in 1u32..4, iterations in 0u32..6,
                                         band_net in any::<bool>()) {
        let mut data: Vec<u8> = (0..w * h * 4)
            .map(|i| ((i as u64 ^ seed).wrapping_mul(0x9E3779B97F4A7C15) >> 56) as u8)
            .collect();
        for px in data.chunks_exact_mut(4) {
            px[3] = [0u8, 128, 255][(px[3] % 3) as usize];
        }
        let before = data.clone();
        let refine = if refine {
            slimmatte::refine::RefineSettings { levels, radius, iterations, ..Default::default() }
        } else {
            slimmatte::refine::RefineSettings::none()
        };
        let settings = slimmatte::matte::MatteSettings {
            working_size: working,
            margin,
            smoothing: 0.0,
            temporal: slimmatte::matte::DEFAULT_TEMPORAL,
            refine,
            band_net,
        };
        let mut r = refiner();
        r.reset();
        r.process(&mut rgba_view_mut(&mut data, w, h, w * 4).unwrap(), &settings).unwrap();
        for (a, b) in data.chunks_exact(4).zip(before.chunks_exact(4)) {
            prop_assert_eq!(&a[..3], &b[..3]);
            match b[3] {
                0 => prop_assert_eq!(a[3], 0),
                255 => prop_assert_eq!(a[3], 255),
                // The unknown band gets a matte, never the trimap's grey passed through by a
                // refinement that did nothing: any value is allowed, but it is written.
                _ => {}
            }
        }
    }
}
