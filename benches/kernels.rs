//! Micro-benchmarks of the pre/post-processing kernels that run on every frame, with
//! throughput in (output) pixels per second: resizing, the trimap band (TrimapBuilder's
//! threshold + exact distance transform, the erode/dilate of the pipeline), the guided
//! upsampler, the band net's tile gathering, the whole band net on its own kernel and through
//! ONNX Runtime, and compositing.
//!
//! `cargo bench --bench kernels` (HTML-free: criterion's default features are off).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use slimmatte::band_net::{BandNet, TEMPORAL_CHANNELS, TileBatch, band_crop, gather_tiles};
use slimmatte::composite::{Background, Compositor, DEFAULT_BLUR_SIGMA, DEFAULT_COLOR, rgb};
use slimmatte::filter::GuidedUpsampler;
use slimmatte::frame::{rgba_view, rgba_view_mut};
use slimmatte::matte::DEFAULT_WORKING_SIZE;
use slimmatte::resize::{PlaneResizer, RgbaToPlanar};
use slimmatte::trimap::{DEFAULT_BAND_FRACTION, DEFAULT_THRESHOLD, TrimapBuilder};

const SIZES: [(usize, usize); 3] = [(640, 360), (1280, 720), (1920, 1080)];

fn frame(w: usize, h: usize) -> Vec<u8> {
    (0..w * h * 4)
        .map(|i| ((i * 2654435761usize) >> 7) as u8)
        .collect()
}

/// A soft disc: a person-sized blob whose contour the trimap band follows.
fn mask(w: usize, h: usize) -> Vec<f32> {
    let (cx, cy, r) = (w as f32 / 2.0, h as f32 * 0.6, h as f32 * 0.4);
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            (1.0 - (((x - cx).powi(2) + (y - cy).powi(2)).sqrt() - r) / 8.0).clamp(0.0, 1.0)
        })
        .collect()
}

fn resize(c: &mut Criterion) {
    let mut g = c.benchmark_group("resize");
    for (w, h) in SIZES {
        let data = frame(w, h);
        let view = rgba_view(&data, w, h, w * 4).unwrap();
        let mut out = vec![0.0f32; 3 * 256 * 144];
        let mut r = RgbaToPlanar::new();
        g.throughput(Throughput::Elements((w * h) as u64));
        g.bench_function(BenchmarkId::new("rgba_to_planar_to_256x144", w), |b| {
            b.iter(|| r.run(black_box(&view), 256, 144, 1.0 / 255.0, &mut out))
        });
        let small = vec![0.5f32; 256 * 144];
        let mut up = vec![0.0f32; w * h];
        let mut p = PlaneResizer::new();
        g.bench_function(BenchmarkId::new("plane_256x144_up_to", w), |b| {
            b.iter(|| p.run(black_box(&small), 256, 144, &mut up, w, h))
        });
    }
    g.finish();
}

fn trimap(c: &mut Criterion) {
    let mut g = c.benchmark_group("trimap_band");
    for (w, h) in SIZES {
        let m = mask(w, h);
        let mut out = vec![0u8; w * h];
        let mut b = TrimapBuilder::new();
        let radius = DEFAULT_BAND_FRACTION * h as f32;
        g.throughput(Throughput::Elements((w * h) as u64));
        g.bench_function(BenchmarkId::new("build", w), |bn| {
            bn.iter(|| b.build(black_box(&m), w, h, DEFAULT_THRESHOLD, radius, &mut out))
        });
    }
    g.finish();
}

fn guided(c: &mut Criterion) {
    let mut g = c.benchmark_group("guided_upsample");
    for (w, h) in SIZES {
        // The matting stage's default: the crop's long side brought down to 512.
        let s = DEFAULT_WORKING_SIZE as f32 / w.max(h) as f32;
        let (lw, lh) = ((w as f32 * s) as usize, (h as f32 * s) as usize);
        let guide_lr: Vec<f32> = (0..lw * lh).map(|i| (i % 97) as f32 / 97.0).collect();
        let alpha_lr: Vec<f32> = (0..lw * lh).map(|i| (i % 89) as f32 / 89.0).collect();
        let guide_hr: Vec<f32> = (0..w * h).map(|i| (i % 101) as f32 / 101.0).collect();
        let mut out = vec![0.0f32; w * h];
        let mut up = GuidedUpsampler::new();
        g.throughput(Throughput::Elements((w * h) as u64));
        g.bench_function(BenchmarkId::new("from_512", w), |b| {
            b.iter(|| {
                up.run(
                    black_box(&guide_lr),
                    &alpha_lr,
                    lw,
                    lh,
                    &guide_hr,
                    w,
                    h,
                    1,
                    1e-3,
                    &mut out,
                )
            })
        });
    }
    g.finish();
}

/// A person-sized disc's frame with the trimap in alpha, its band crop, a coarse matte on the
/// crop (the trimap's 0 / 1, a ramp across the band) and a previous matte.
struct DiscBand {
    data: Vec<u8>,
    crop: (usize, usize, usize, usize),
    coarse: Vec<f32>,
    previous: Vec<u8>,
}

fn disc_band(w: usize, h: usize) -> DiscBand {
    let m = mask(w, h);
    let mut trimap = vec![0u8; w * h];
    TrimapBuilder::new().build(
        &m,
        w,
        h,
        DEFAULT_THRESHOLD,
        DEFAULT_BAND_FRACTION * h as f32,
        &mut trimap,
    );
    let mut data = frame(w, h);
    for (px, &t) in data.chunks_exact_mut(4).zip(&trimap) {
        px[3] = t;
    }
    let view = rgba_view(&data, w, h, w * 4).unwrap();
    let (crop, _) = band_crop(&view, 16).expect("the disc has a band");
    let (cx, cy, cw, ch) = crop;
    let coarse: Vec<f32> = (0..cw * ch)
        .map(|i| match trimap[(cy + i / cw) * w + cx + i % cw] {
            0 => 0.0,
            255 => 1.0,
            t => t as f32 / 255.0,
        })
        .collect();
    let previous: Vec<u8> = m.iter().map(|&a| (a * 255.0) as u8).collect();
    DiscBand {
        data,
        crop,
        coarse,
        previous,
    }
}

/// The band net's input for one frame: every soft tile of a person-sized disc's band, temporal
/// channels with a previous matte (the default net's), as the matting stage gathers it.
fn band_gather(c: &mut Criterion) {
    let mut g = c.benchmark_group("band_gather");
    for (w, h) in SIZES {
        let band = disc_band(w, h);
        let view = rgba_view(&band.data, w, h, w * 4).unwrap();
        let mut batch = TileBatch::default();
        g.throughput(Throughput::Elements((w * h) as u64));
        g.bench_function(BenchmarkId::new("temporal", w), |b| {
            b.iter(|| {
                gather_tiles(
                    black_box(&view),
                    band.crop,
                    &band.coarse,
                    TEMPORAL_CHANNELS,
                    Some(&band.previous),
                    &mut batch,
                )
            })
        });
    }
    g.finish();
}

/// The whole band net on that frame (the shipped student: gathering, the network, the
/// corrections), on its own kernel and through ONNX Runtime (2 threads).
fn band_net(c: &mut Criterion) {
    let model = slimmatte::paths::project_root()
        .join("models")
        .join(slimmatte::paths::BAND_MODEL);
    let mut g = c.benchmark_group("band_net");
    for (w, h) in SIZES {
        let band = disc_band(w, h);
        let view = rgba_view(&band.data, w, h, w * 4).unwrap();
        for engine in ["own_kernel", "onnx_runtime"] {
            let mut net = BandNet::load(&model, 2).expect("the shipped band net loads");
            if engine == "onnx_runtime" {
                net.use_onnx_runtime();
            } else {
                assert!(net.use_own_kernel());
            }
            let mut alpha = band.coarse.clone();
            g.throughput(Throughput::Elements((w * h) as u64));
            g.bench_function(BenchmarkId::new(engine, w), |b| {
                b.iter(|| {
                    alpha.copy_from_slice(&band.coarse);
                    net.refine(
                        black_box(&view),
                        band.crop,
                        &mut alpha,
                        Some(&band.previous),
                    )
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn composite(c: &mut Criterion) {
    let mut g = c.benchmark_group("composite");
    for (w, h) in SIZES {
        // A matte's alpha: the soft disc (mostly 0 and 255, an 8 px ramp), as the matting stage
        // hands it on.
        let mut src = frame(w, h);
        for (px, m) in src.chunks_exact_mut(4).zip(mask(w, h)) {
            px[3] = (m * 255.0 + 0.5) as u8;
        }
        let mut data = src.clone();
        g.throughput(Throughput::Elements((w * h) as u64));
        for (name, bg, estimate) in [
            ("color", Background::Color(rgb(DEFAULT_COLOR)), false),
            ("color_fg", Background::Color(rgb(DEFAULT_COLOR)), true),
            (
                "blur",
                Background::Blur {
                    sigma: DEFAULT_BLUR_SIGMA,
                },
                false,
            ),
        ] {
            let mut comp = Compositor::new(bg);
            comp.set_estimate_foreground(estimate);
            g.bench_function(BenchmarkId::new(name, w), |b| {
                b.iter(|| {
                    data.copy_from_slice(&src);
                    let mut view = rgba_view_mut(&mut data, w, h, w * 4).unwrap();
                    comp.apply(&mut view);
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = kernels;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = resize, trimap, guided, band_gather, band_net, composite
}
criterion_main!(kernels);
