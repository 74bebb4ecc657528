//! Real-time foreground colour estimation: the blur-fusion estimator of Forte and Pitié,
//! "Approximate Fast Foreground Colour Estimation" (ICIP 2021).
//!
//! Where the matte is soft (hair, motion blur, the band the refinement solved) a frame's colour
//! is `I = α·F + (1−α)·B`: it still holds the old background, which a plain composite
//! `α·I + (1−α)·B'` carries over as a halo of the old background's colour. Blur fusion takes
//! the local means of the foreground and background colours around each pixel,
//!
//! ```text
//! F̂ = blur(w_F·I) / blur(w_F),   B̂ = blur(w_B·I) / blur(w_B),
//! ```
//!
//! and moves `F̂` by the part of `I` they do not explain:
//! `F = F̂ + α·(I − α·F̂ − (1−α)·B̂)`, clamped to the colour range. Forte and Pitié weight the
//! means by `w_F = α`, `w_B = 1 − α` and run a second, fine pass to undo the bias the mixed
//! pixels give them; a real-time matte is mostly 0 and 1 with a band of soft pixels, so here
//! the means take only the pure pixels (`w_F = [α = 1]`, `w_B = [α = 0]`), which are unbiased
//! in one pass (flat colours come back exactly, tested); the fine 3 × 3 pass is kept, as it
//! carries a thin strand's own colour (on the tuning stills the colour error with the true
//! alpha was 15.5 levels without it, 9.8 with it, 14.8 for the frame's colour). The means are
//! taken at reduced resolution (sampled block averages, then a box blur), so a frame costs a
//! scan of its alpha, a few passes over small planes and two over its soft pixels; only
//! pixels with `0 < α < 1` change.

use ndarray::Axis;

use crate::filter::box_blur;
use crate::frame::{RgbaViewMut, for_each_row, for_each_row_mut};
use crate::resize::BilinearAxis;

/// Shorter side, in pixels, of the planes the local means are taken on (the frame is averaged
/// down by the integer factor that comes closest without going under it).
const MEANS_SHORT_SIDE: usize = 45;
/// Radius of the local means as a fraction of the frame's shorter side, 32 px at 360 lines:
/// twice Forte and Pitié's first-pass window (90 × 90 px on about 1000 px), because the means
/// here take only pure pixels and the window must reach past a soft band to them (at half this
/// radius an 8 px ramp at 120 lines fell back to the observed colour; tested).
const MEANS_RADIUS_FRACTION: f32 = 0.09;
/// Below this local share of foreground (or of background) the mean colour is not defined
/// and the observed colour stands in for it.
const MIN_SHARE: f32 = 1e-3;

/// Number of planes of local sums: w_F, w_F·R, w_F·G, w_F·B, then the same for w_B.
const PLANES: usize = 8;

/// The blur-fusion estimator with its buffers, kept between frames (no allocation once the
/// frame size is stable).
#[derive(Debug, Default)]
pub struct BlurFusion {
    /// The local sums at reduced resolution, `PLANES` planes of `sw × sh`.
    means: Vec<f32>,
    /// The same, blurred and interleaved (`PLANES` values per small pixel) for the bilinear
    /// lookups of the first pass.
    packed: Vec<[f32; PLANES]>,
    /// Block sums of one row of blocks, packed `PLANES` per block.
    row_sums: Vec<u32>,
    scratch: Vec<f32>,
    /// The soft pixels' indices, in row order.
    soft: Vec<u32>,
    /// Per pixel, the first pass's `F₁` and `B₁` (RGB bytes each); written and read at soft
    /// pixels only, so it is never cleared.
    fb: Vec<[u8; 6]>,
    /// The second pass's colours, written once every window has been read.
    result: Vec<[u8; 3]>,
    xs: BilinearAxis,
    ys: BilinearAxis,
}

impl BlurFusion {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the colour of every pixel with `0 < α < 255` by its estimated foreground
    /// colour; other pixels are left as they are. Returns the number of pixels changed.
    pub fn apply(&mut self, frame: &mut RgbaViewMut<'_>) -> usize {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        self.find_soft(frame);
        if self.soft.is_empty() {
            return 0;
        }
        let short = width.min(height);
        let k = (short / MEANS_SHORT_SIDE).max(1);
        let (sw, sh) = (width.div_ceil(k), height.div_ceil(k));
        self.block_sums(frame, k, sw, sh);
        let radius = ((MEANS_RADIUS_FRACTION * short as f32 / k as f32).round() as usize).max(1);
        for plane in self.means.chunks_exact_mut(sw * sh) {
            box_blur(plane, sw, sh, radius, &mut self.scratch);
        }
        self.packed.resize(sw * sh, [0.0; PLANES]);
        for (i, v) in self.packed.iter_mut().enumerate() {
            *v = std::array::from_fn(|p| self.means[p * sw * sh + i]);
        }
        self.xs.ensure(sw, width);
        self.ys.ensure(sh, height);
        self.coarse_pass(frame, sw);
        self.fine_pass(frame);
        self.soft.len()
    }

    /// Block means of `w_F`, `w_F·I`, `w_B`, `w_B·I` over `k × k` blocks (clipped at the
    /// frame's edges) into `self.means`, plane by plane. A block is sampled every `k/2`-th
    /// pixel and row (4 samples of an 8 × 8 block): the means span dozens of blocks, so the
    /// samples give the same local colours at a cost that does not grow with the frame.
    fn block_sums(&mut self, frame: &RgbaViewMut<'_>, k: usize, sw: usize, sh: usize) {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        let step = (k / 2).max(1);
        let plane = sw * sh;
        self.means.resize(PLANES * plane, 0.0);
        self.row_sums.resize(PLANES * sw, 0);
        for by in 0..sh {
            self.row_sums.fill(0);
            let mut n_rows = 0;
            for y in (by * k..((by + 1) * k).min(height)).step_by(step) {
                n_rows += 1;
                let row = frame.index_axis(Axis(0), y);
                let row = row.to_slice().expect("RGBA rows are contiguous");
                for (bx, sums) in self.row_sums.chunks_exact_mut(PLANES).enumerate() {
                    let mut s = [0u32; PLANES];
                    for x in (bx * k..((bx + 1) * k).min(width)).step_by(step) {
                        let px = &row[4 * x..4 * x + 4];
                        let (wf, wb) = (u32::from(px[3] == 255), u32::from(px[3] == 0));
                        let (r, g, b) = (px[0] as u32, px[1] as u32, px[2] as u32);
                        s[0] += wf;
                        s[1] += wf * r;
                        s[2] += wf * g;
                        s[3] += wf * b;
                        s[4] += wb;
                        s[5] += wb * r;
                        s[6] += wb * g;
                        s[7] += wb * b;
                    }
                    for (acc, v) in sums.iter_mut().zip(s) {
                        *acc += v;
                    }
                }
            }
            for (bx, sums) in self.row_sums.chunks_exact(PLANES).enumerate() {
                let cols = k.min(width - bx * k).div_ceil(step);
                let inv_n = 1.0 / (n_rows * cols) as f32;
                for (p, &v) in sums.iter().enumerate() {
                    self.means[p * plane + by * sw + bx] = v as f32 * inv_n;
                }
            }
        }
    }

    /// The soft pixels' indices (`0 < α < 255`) into `self.soft`, in row order. Groups of 16
    /// pixels are tested at once on their alpha bytes (`(α + 1) & 0xFE` is zero only for 0
    /// and 255), so the hard runs that make up most of a matte cost one test per group.
    fn find_soft(&mut self, frame: &RgbaViewMut<'_>) {
        let width = frame.shape()[1];
        let soft = &mut self.soft;
        soft.clear();
        let is_soft = |p: &[u8]| (p[3] as u32 + 1) & 0xFE;
        for_each_row(&frame.view(), |y, row| {
            for (g, group) in row.chunks(64).enumerate() {
                if group.chunks_exact(4).fold(0, |acc, p| acc | is_soft(p)) == 0 {
                    continue;
                }
                for (i, p) in group.chunks_exact(4).enumerate() {
                    if is_soft(p) != 0 {
                        soft.push((y * width + 16 * g + i) as u32);
                    }
                }
            }
        });
    }

    /// First pass: `F₁`, `B₁` of every soft pixel from the blurred planes, into `self.fb`
    /// (rounded to bytes); the frame is not changed.
    fn coarse_pass(&mut self, frame: &RgbaViewMut<'_>, sw: usize) {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        self.fb.resize(width * height, [0; 6]);
        let (packed, xs, ys, fb) = (&self.packed, &self.xs, &self.ys, &mut self.fb);
        let mut rows = RowCache::new(frame);
        for &k in &self.soft {
            let k = k as usize;
            let (x, y) = (k % width, k / width);
            let px = &rows.row(y)[4 * x..4 * x + 4];
            let ((x0, x1, wx), (y0, y1, wy)) = (xs.at(x), ys.at(y));
            let (a00, a01) = (&packed[y0 * sw + x0], &packed[y0 * sw + x1]);
            let (a10, a11) = (&packed[y1 * sw + x0], &packed[y1 * sw + x1]);
            let m: [f32; PLANES] = std::array::from_fn(|p| {
                let top = a00[p] + wx * (a01[p] - a00[p]);
                let bottom = a10[p] + wx * (a11[p] - a10[p]);
                top + wy * (bottom - top)
            });
            let (share_f, share_b) = (m[0], m[4]);
            let a = px[3] as f32 * (1.0 / 255.0);
            for c in 0..3 {
                let i = px[c] as f32;
                let mean = |share: f32, plane: usize| {
                    if share > MIN_SHARE {
                        m[plane] / share
                    } else {
                        i
                    }
                };
                let (f_mean, b_mean) = (mean(share_f, 1 + c), mean(share_b, 5 + c));
                fb[k][c] = to_byte(unmix(i, a, f_mean, b_mean));
                fb[k][3 + c] = to_byte(b_mean);
            }
        }
    }

    /// Second pass (Forte and Pitié's fine one): at every soft pixel, the means of `α·F₁` and
    /// `(1−α)·B₁` over its 3 × 3 window (a hard pixel's `F₁` or `B₁` is its colour), then the
    /// same correction; writes the result into the frame.
    fn fine_pass(&mut self, frame: &mut RgbaViewMut<'_>) {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        let mut rows = RowCache::new(frame);
        self.result.clear();
        for &k in &self.soft {
            let (x, y) = (k as usize % width, k as usize / width);
            let (mut wf, mut wb) = (0.0f32, 0.0f32);
            let (mut sf, mut sb) = ([0.0f32; 3], [0.0f32; 3]);
            for qy in y.saturating_sub(1)..(y + 2).min(height) {
                let line = rows.row(qy);
                let fb_line = &self.fb[qy * width..(qy + 1) * width];
                for qx in x.saturating_sub(1)..(x + 2).min(width) {
                    let p = &line[4 * qx..4 * qx + 4];
                    let a = p[3] as f32 * (1.0 / 255.0);
                    // A hard pixel's F₁ or B₁ is its colour (the other gets weight 0).
                    let fb = &fb_line[qx];
                    let hard = p[3] == 0 || p[3] == 255;
                    wf += a;
                    wb += 1.0 - a;
                    for c in 0..3 {
                        let (f, b) = if hard {
                            (p[c], p[c])
                        } else {
                            (fb[c], fb[3 + c])
                        };
                        sf[c] += a * f as f32;
                        sb[c] += (1.0 - a) * b as f32;
                    }
                }
            }
            let p = &rows.row(y)[4 * x..4 * x + 4];
            let a = p[3] as f32 * (1.0 / 255.0);
            // A soft pixel counts in its own window, so both weights are positive.
            let mut out = [0u8; 3];
            for c in 0..3 {
                out[c] = to_byte(unmix(p[c] as f32, a, sf[c] / wf, sb[c] / wb));
            }
            self.result.push(out);
        }
        // The soft pixels are in row order: one walk down the rows writes them.
        let mut next = self.soft.iter().zip(&self.result).peekable();
        for_each_row_mut(frame, |y, line| {
            while let Some((&k, out)) = next.next_if(|(k, _)| **k as usize / width == y) {
                let x = k as usize % width;
                line[4 * x..4 * x + 3].copy_from_slice(out);
            }
        });
    }
}

/// Row slices of a frame, the last few kept: the soft pixels come in row order and read the
/// rows around them.
struct RowCache<'a> {
    frame: ndarray::ArrayView3<'a, u8>,
    rows: [(usize, &'a [u8]); 3],
}

impl<'a> RowCache<'a> {
    fn new(frame: &'a RgbaViewMut<'_>) -> Self {
        Self {
            frame: frame.view(),
            rows: [(usize::MAX, &[]); 3],
        }
    }

    /// Row `y` of the frame.
    #[inline]
    fn row(&mut self, y: usize) -> &'a [u8] {
        let frame = self.frame;
        let slot = y % 3;
        if self.rows[slot].0 != y {
            let row = frame.index_axis_move(Axis(0), y);
            self.rows[slot] = (y, row.to_slice().expect("RGBA rows are contiguous"));
        }
        self.rows[slot].1
    }
}

/// A colour value rounded to a byte, clamped to the colour range.
#[inline]
fn to_byte(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// `F = F̂ + α·(I − α·F̂ − (1−α)·B̂)`: the mean foreground colour moved by the part of the
/// observed colour that the two means do not explain.
#[inline]
fn unmix(i: f32, a: f32, f_mean: f32, b_mean: f32) -> f32 {
    f_mean + a * (i - a * f_mean - (1.0 - a) * b_mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::rgba_view_mut;

    /// A frame `I = α·F + (1−α)·B` with a soft vertical edge between a flat foreground colour
    /// (left) and a flat background colour (right).
    fn soft_edge(w: usize, h: usize, f: [u8; 3], b: [u8; 3]) -> (Vec<u8>, Vec<f32>) {
        let mut data = Vec::with_capacity(w * h * 4);
        let mut alpha = Vec::with_capacity(w * h);
        for _y in 0..h {
            for x in 0..w {
                let a = (1.0 - (x as f32 - w as f32 / 2.0) / 8.0).clamp(0.0, 1.0);
                let a8 = (a * 255.0 + 0.5) as u8;
                let a = a8 as f32 / 255.0;
                for c in 0..3 {
                    data.push((a * f[c] as f32 + (1.0 - a) * b[c] as f32 + 0.5) as u8);
                }
                data.push(a8);
                alpha.push(a);
            }
        }
        (data, alpha)
    }

    #[test]
    fn recovers_flat_foreground_colour_at_a_soft_edge() {
        let (w, h) = (200, 120);
        let (f, b) = ([200u8, 40, 30], [20u8, 220, 60]);
        let (mut data, alpha) = soft_edge(w, h, f, b);
        let before = data.clone();
        let changed = BlurFusion::new().apply(&mut rgba_view_mut(&mut data, w, h, w * 4).unwrap());
        let soft = alpha.iter().filter(|&&a| a > 0.0 && a < 1.0).count();
        assert_eq!(changed, soft);
        let (mut err_observed, mut err_estimated) = (0.0f32, 0.0f32);
        for (i, &a) in alpha.iter().enumerate() {
            let (px, old) = (&data[4 * i..4 * i + 4], &before[4 * i..4 * i + 4]);
            if a == 0.0 || a == 1.0 {
                assert_eq!(px, old, "pixel {i} with hard alpha changed");
                continue;
            }
            assert_eq!(px[3], old[3], "alpha kept");
            for c in 0..3 {
                err_observed += a * (old[c] as f32 - f[c] as f32).abs();
                err_estimated += a * (px[c] as f32 - f[c] as f32).abs();
                assert!(
                    (px[c] as f32 - f[c] as f32).abs() <= 1.0,
                    "pixel {i} channel {c}: {} vs {}",
                    px[c],
                    f[c]
                );
            }
        }
        assert!(
            err_estimated * 20.0 < err_observed,
            "{err_estimated} vs {err_observed}"
        );
    }

    /// Rows padded to a longer stride (as GStreamer lays out video) give the same colours.
    #[test]
    fn padded_rows_give_the_same_result() {
        let (w, h) = (120, 70);
        let (packed, _) = soft_edge(w, h, [200, 40, 30], [20, 220, 60]);
        let stride = w * 4 + 24;
        let mut padded = vec![77u8; stride * h];
        for y in 0..h {
            padded[y * stride..y * stride + w * 4]
                .copy_from_slice(&packed[y * w * 4..(y + 1) * w * 4]);
        }
        let mut packed_out = packed.clone();
        let mut fusion = BlurFusion::new();
        let n = fusion.apply(&mut rgba_view_mut(&mut packed_out, w, h, w * 4).unwrap());
        let m = fusion.apply(&mut rgba_view_mut(&mut padded, w, h, stride).unwrap());
        assert_eq!(n, m);
        assert!(n > 0);
        for y in 0..h {
            assert_eq!(
                &padded[y * stride..y * stride + w * 4],
                &packed_out[y * w * 4..(y + 1) * w * 4],
                "row {y}"
            );
            assert!(
                padded[y * stride + w * 4..(y + 1) * stride]
                    .iter()
                    .all(|&b| b == 77)
            );
        }
    }

    #[test]
    fn hard_mattes_are_left_alone() {
        let (w, h) = (64, 40);
        let mut data: Vec<u8> = (0..w * h * 4)
            .map(|i| {
                if i % 4 == 3 {
                    if i % 7 < 3 { 0 } else { 255 }
                } else {
                    (i * 31) as u8
                }
            })
            .collect();
        let before = data.clone();
        let changed = BlurFusion::new().apply(&mut rgba_view_mut(&mut data, w, h, w * 4).unwrap());
        assert_eq!(changed, 0);
        assert_eq!(data, before);
    }
}
