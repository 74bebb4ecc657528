//! The trimaps a sample comes with: DIM / GCA-style ones from the ground truth, or the
//! project's own trimap stage run on a degraded coarse mask (what inference sees).

use slimmatte::trimap::TrimapBuilder;
use slimmatte_measure::rng::Rng;

use super::alpha::{Ellipse, bilinear, smoothstep01};

/// The window `i − r ..= i + r` cut to `0..n`.
fn window(i: usize, r: usize, n: usize) -> (usize, usize) {
    (i.saturating_sub(r), (i + r).min(n - 1))
}

/// Separable square min (erode) or max (dilate) filter of radius r on a byte mask.
fn morph(mask: &[bool], s: usize, r: usize, dilate: bool) -> Vec<bool> {
    let mut tmp = vec![false; s * s];
    let mut out = vec![false; s * s];
    for y in 0..s {
        for x in 0..s {
            let (lo, hi) = window(x, r, s);
            let row = &mask[y * s + lo..=y * s + hi];
            tmp[y * s + x] = if dilate {
                row.iter().any(|&b| b)
            } else {
                row.iter().all(|&b| b)
            };
        }
    }
    for y in 0..s {
        let (lo, hi) = window(y, r, s);
        for x in 0..s {
            let mut acc = !dilate;
            for yy in lo..=hi {
                let b = tmp[yy * s + x];
                if dilate {
                    acc |= b;
                } else {
                    acc &= b;
                }
            }
            out[y * s + x] = acc;
        }
    }
    out
}

/// DIM / GCA training trimap: fg = alpha ≈ 1 eroded, bg = alpha ≈ 0 eroded, rest unknown.
pub fn gt_trimap(r: &mut Rng, alpha: &[f32], s: usize) -> Vec<u8> {
    let scale = s as f32 / 128.0;
    let rf = ((r.range(1.0, 10.0) * scale) as usize).max(1);
    let rb = ((r.range(1.0, 10.0) * scale) as usize).max(1);
    let fg: Vec<bool> = alpha.iter().map(|&a| a >= 0.999).collect();
    let bg: Vec<bool> = alpha.iter().map(|&a| a <= 0.001).collect();
    let fg = morph(&fg, s, rf, false);
    let bg = morph(&bg, s, rb, false);
    (0..s * s)
        .map(|i| {
            if fg[i] {
                255
            } else if bg[i] {
                0
            } else {
                128
            }
        })
        .collect()
}

/// The trimap the running pipeline would produce: a coarse, wrong-in-small-ways mask through
/// the project's own trimap stage.
pub fn pipeline_trimap(r: &mut Rng, alpha: &[f32], s: usize) -> Vec<u8> {
    // Coarse resolution: 640×360 → 256×144 is 2.5×; crops cover 2..4× downsampling.
    let f = r.range(2.0, 4.0);
    let cs = ((s as f32 / f).round() as usize).max(8);
    let mut coarse = vec![0.0f32; cs * cs];
    let cell = s as f32 / cs as f32;
    for cy in 0..cs {
        for cx in 0..cs {
            // Area average.
            let (x0, x1) = (
                (cx as f32 * cell) as usize,
                (((cx + 1) as f32 * cell) as usize).min(s),
            );
            let (y0, y1) = (
                (cy as f32 * cell) as usize,
                (((cy + 1) as f32 * cell) as usize).min(s),
            );
            let mut acc = 0.0;
            let mut n = 0;
            for y in y0..y1.max(y0 + 1) {
                for x in x0..x1.max(x0 + 1) {
                    acc += alpha[y.min(s - 1) * s + x.min(s - 1)];
                    n += 1;
                }
            }
            coarse[cy * cs + cx] = acc / n as f32;
        }
    }
    slimmatte::filter::box_blur_truncated(&mut coarse, cs, cs, r.below(2));
    // Segmentation nets are over-confident: sharpen, then blobs of misses / false positives.
    let gain = r.range(1.0, 3.0);
    for v in &mut coarse {
        *v = ((*v - 0.5) * gain + 0.5).clamp(0.0, 1.0);
    }
    for _ in 0..r.below(3) {
        let e = Ellipse::random(r, (0.0, cs as f32), (0.5, 3.0), 1.0);
        let miss = r.chance(0.6);
        for y in 0..cs {
            for x in 0..cs {
                let inside = smoothstep01(0.5 - e.dist(x as f32 + 0.5, y as f32 + 0.5));
                let v = &mut coarse[y * cs + x];
                *v = if miss {
                    *v * (1.0 - 0.8 * inside)
                } else {
                    v.max(0.85 * inside)
                };
            }
        }
    }
    // Small shift (the coarse net is not pixel-aligned) and upsampling to the crop.
    let (sx, sy) = (r.range(-1.0, 1.0), r.range(-1.0, 1.0));
    let mut mask = vec![0.0f32; s * s];
    for y in 0..s {
        for x in 0..s {
            let cx = (x as f32 + 0.5) / cell - 0.5 + sx;
            let cy = (y as f32 + 0.5) / cell - 0.5 + sy;
            mask[y * s + x] = bilinear(&coarse, cs, cs, cx, cy);
        }
    }
    let threshold = r.range(0.35, 0.65);
    // The runtime's band is 3 % of the frame's shorter side (~11 px at 360 p).
    let radius = r.range(4.0, 12.0) * s as f32 / 128.0;
    let mut out = vec![0u8; s * s];
    TrimapBuilder::new().build(&mask, s, s, threshold, radius, &mut out);
    out
}
