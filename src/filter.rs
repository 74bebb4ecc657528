//! Image filters on f32 planes: box (running-sum) blur and the fast guided filter used to
//! upsample a low-resolution matte along the full-resolution image's edges.

use crate::resize::{BilinearAxis, PlaneResizer, sample_bilinear};

/// Rec. 601 luma, the guide of the guided filters (any scale: 0..1, 0..255, or centred).
#[inline]
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// In-place box blur of one plane with edge clamping (horizontal then vertical pass). The
/// vertical pass keeps one running sum per column and walks rows in order, so memory is read
/// sequentially.
pub fn box_blur(plane: &mut [f32], width: usize, height: usize, radius: usize, tmp: &mut Vec<f32>) {
    assert_eq!(plane.len(), width * height, "plane size");
    if radius == 1 {
        box_blur3(plane, width, height, tmp);
    } else {
        box_blur_running(plane, width, height, radius, tmp);
    }
}

/// [`box_blur`] with running sums: its cost does not depend on the radius.
fn box_blur_running(
    plane: &mut [f32],
    width: usize,
    height: usize,
    radius: usize,
    tmp: &mut Vec<f32>,
) {
    let norm = 1.0 / (2 * radius + 1) as f32;
    tmp.resize(width * height + width, 0.0);
    let (copy, sums) = tmp.split_at_mut(width * height);
    for (row, line) in plane
        .chunks_exact_mut(width)
        .zip(copy.chunks_exact_mut(width))
    {
        line.copy_from_slice(row);
        blur_line(line, radius, norm, |x, v| row[x] = v);
    }
    copy.copy_from_slice(plane);
    let r = radius as isize;
    let row_at = |y: isize| {
        let y = y.clamp(0, height as isize - 1) as usize;
        &copy[y * width..(y + 1) * width]
    };
    sums.fill(0.0);
    for k in -r..=r {
        for (s, v) in sums.iter_mut().zip(row_at(k)) {
            *s += v;
        }
    }
    for (y, out) in plane.chunks_exact_mut(width).enumerate() {
        for (o, s) in out.iter_mut().zip(sums.iter()) {
            *o = s * norm;
        }
        let (add, sub) = (row_at(y as isize + r + 1), row_at(y as isize - r));
        for ((s, a), b) in sums.iter_mut().zip(add).zip(sub) {
            *s += a - b;
        }
    }
}

/// In-place box blur of a `w × h` plane whose window is cut at the plane's edges: an edge
/// pixel is the mean of the pixels of its window that lie inside the plane (horizontal then
/// vertical pass, direct sums).
///
/// The other edge policy of [`box_blur`], which clamps (the edge pixel is repeated to fill the
/// window, so it weighs more: at radius 1 a corner is (4a + 2b + 2c + d) / 9 there,
/// (a + b + c + d) / 4 here) and uses running sums. The training data generator uses this one;
/// its samples, and so the shipped models, depend on its exact output.
pub fn box_blur_truncated(v: &mut [f32], w: usize, h: usize, r: usize) {
    assert_eq!(v.len(), w * h, "plane size");
    if r == 0 || v.is_empty() {
        return;
    }
    let window = |i: usize, n: usize| (i.saturating_sub(r), (i + r).min(n - 1));
    let mut tmp = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (lo, hi) = window(x, w);
            let s: f32 = v[y * w + lo..=y * w + hi].iter().sum();
            tmp[y * w + x] = s / (hi - lo + 1) as f32;
        }
    }
    for y in 0..h {
        let (lo, hi) = window(y, h);
        for x in 0..w {
            let mut s = 0.0;
            for yy in lo..=hi {
                s += tmp[yy * w + x];
            }
            v[y * w + x] = s / (hi - lo + 1) as f32;
        }
    }
}

/// [`box_blur`] at radius 1 (the guided filter's): direct three-tap sums over whole rows, which
/// the compiler vectorises, instead of running sums (a serial chain of additions per row).
fn box_blur3(plane: &mut [f32], width: usize, height: usize, tmp: &mut Vec<f32>) {
    if plane.is_empty() {
        return;
    }
    let norm = 1.0 / 3.0;
    tmp.resize(width * height, 0.0);
    for (row, out) in plane.chunks_exact(width).zip(tmp.chunks_exact_mut(width)) {
        let last = width - 1;
        if width == 1 {
            out[0] = (row[0] + row[0] + row[0]) * norm;
            continue;
        }
        out[0] = (row[0] + row[0] + row[1]) * norm;
        for (((o, &l), &c), &r) in out[1..last]
            .iter_mut()
            .zip(&row[..last - 1])
            .zip(&row[1..last])
            .zip(&row[2..])
        {
            *o = (l + c + r) * norm;
        }
        out[last] = (row[last - 1] + row[last] + row[last]) * norm;
    }
    for (y, out) in plane.chunks_exact_mut(width).enumerate() {
        let row = |y: usize| &tmp[y * width..(y + 1) * width];
        let (up, mid, down) = (
            row(y.saturating_sub(1)),
            row(y),
            row((y + 1).min(height - 1)),
        );
        for (((o, &u), &m), &d) in out.iter_mut().zip(up).zip(mid).zip(down) {
            *o = (u + m + d) * norm;
        }
    }
}

/// Running-sum box filter of `line` with clamped edges; calls `put(i, value)` per sample.
#[inline]
fn blur_line(line: &[f32], radius: usize, norm: f32, mut put: impl FnMut(usize, f32)) {
    let n = line.len();
    let at = |i: isize| line[i.clamp(0, n as isize - 1) as usize];
    let r = radius as isize;
    let mut sum: f32 = (-r..=r).map(at).sum();
    for i in 0..n as isize {
        put(i as usize, sum * norm);
        sum += at(i + r + 1) - at(i - r);
    }
}

/// Edge-aware upsampling of a low-resolution alpha matte (He & Sun, "Fast Guided Filter",
/// 2015): the local linear model `α ≈ a·I + b` is fitted at low resolution against the
/// low-resolution luma `I`, the coefficients are upsampled bilinearly and applied to the
/// full-resolution luma, so matte edges follow the image's edges (hair) instead of being blurry.
#[derive(Debug, Default)]
pub struct GuidedUpsampler {
    mean_i: Vec<f32>,
    mean_p: Vec<f32>,
    corr_ip: Vec<f32>,
    var_i: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    tmp: Vec<f32>,
    up: PlaneResizer,
    a_hr: Vec<f32>,
    b_hr: Vec<f32>,
}

impl GuidedUpsampler {
    pub fn new() -> Self {
        Self::default()
    }

    /// `guide_lr`/`alpha_lr`: `lw × lh` planes; `guide_hr`: `hw × hh`; writes `out` (`hw × hh`).
    /// `radius` is the box radius at low resolution, `eps` the regularisation (alpha and
    /// guide in 0..1, so ~1e-4..1e-2).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        guide_lr: &[f32],
        alpha_lr: &[f32],
        lw: usize,
        lh: usize,
        guide_hr: &[f32],
        hw: usize,
        hh: usize,
        radius: usize,
        eps: f32,
        out: &mut [f32],
    ) {
        assert_eq!(guide_hr.len(), hw * hh);
        assert_eq!(out.len(), hw * hh);
        self.coefficients(guide_lr, alpha_lr, lw, lh, radius, eps);
        self.a_hr.resize(hw * hh, 0.0);
        self.b_hr.resize(hw * hh, 0.0);
        self.up.run(&self.a, lw, lh, &mut self.a_hr, hw, hh);
        self.up.run(&self.b, lw, lh, &mut self.b_hr, hw, hh);
        for (((o, &a), &b), &g) in out.iter_mut().zip(&self.a_hr).zip(&self.b_hr).zip(guide_hr) {
            *o = (a * g + b).clamp(0.0, 1.0);
        }
    }

    /// Fits the local linear model at low resolution: afterwards [`a`](Self::a) and
    /// [`b`](Self::b) (`lw × lh`, box-averaged) give `α ≈ a·I + b`. Callers that need the
    /// matte at only some full-resolution pixels sample them there (bilinearly) themselves.
    pub fn coefficients(
        &mut self,
        guide_lr: &[f32],
        alpha_lr: &[f32],
        lw: usize,
        lh: usize,
        radius: usize,
        eps: f32,
    ) {
        let n = lw * lh;
        assert_eq!(guide_lr.len(), n);
        assert_eq!(alpha_lr.len(), n);
        for v in [
            &mut self.mean_i,
            &mut self.mean_p,
            &mut self.corr_ip,
            &mut self.var_i,
            &mut self.a,
            &mut self.b,
        ] {
            v.resize(n, 0.0);
        }
        self.mean_i.copy_from_slice(guide_lr);
        self.mean_p.copy_from_slice(alpha_lr);
        for i in 0..n {
            self.corr_ip[i] = guide_lr[i] * alpha_lr[i];
            self.var_i[i] = guide_lr[i] * guide_lr[i];
        }
        for plane in [
            &mut self.mean_i,
            &mut self.mean_p,
            &mut self.corr_ip,
            &mut self.var_i,
        ] {
            box_blur(plane, lw, lh, radius, &mut self.tmp);
        }
        for i in 0..n {
            let mi = self.mean_i[i];
            let var = (self.var_i[i] - mi * mi).max(0.0);
            let cov = self.corr_ip[i] - mi * self.mean_p[i];
            let a = cov / (var + eps);
            self.a[i] = a;
            self.b[i] = self.mean_p[i] - a * mi;
        }
        box_blur(&mut self.a, lw, lh, radius, &mut self.tmp);
        box_blur(&mut self.b, lw, lh, radius, &mut self.tmp);
    }

    /// The slope plane of the last [`coefficients`](Self::coefficients) call.
    pub fn a(&self) -> &[f32] {
        &self.a
    }

    /// The offset plane of the last [`coefficients`](Self::coefficients) call.
    pub fn b(&self) -> &[f32] {
        &self.b
    }

    /// The coefficients of the last [`coefficients`](Self::coefficients) call (`lw` wide)
    /// interpolated vertically at high-resolution row `y` into `a` and `b` (`lw` values each):
    /// with [`matte_in_row`](Self::matte_in_row), a whole row costs one vertical interpolation
    /// per low-resolution column instead of two bilinear samples per pixel.
    pub fn rows_at(&self, lw: usize, ys: &BilinearAxis, y: usize, a: &mut [f32], b: &mut [f32]) {
        let (y0, y1, wy) = ys.at(y);
        for (plane, out) in [(&self.a, a), (&self.b, b)] {
            let (r0, r1) = (
                &plane[y0 * lw..(y0 + 1) * lw],
                &plane[y1 * lw..(y1 + 1) * lw],
            );
            for ((o, &t), &u) in out.iter_mut().zip(r0).zip(r1) {
                *o = t + wy * (u - t);
            }
        }
    }

    /// The matte at column `x` of the row whose coefficients [`rows_at`](Self::rows_at) gave,
    /// for the guide value `guide`, clamped to 0..1.
    #[inline(always)]
    pub fn matte_in_row(a: &[f32], b: &[f32], xs: &BilinearAxis, x: usize, guide: f32) -> f32 {
        let (x0, x1, wx) = xs.at(x);
        let a = a[x0] + wx * (a[x1] - a[x0]);
        let b = b[x0] + wx * (b[x1] - b[x0]);
        (a * guide + b).clamp(0.0, 1.0)
    }

    /// The matte at one high-resolution pixel `(x, y)` whose guide value is `guide`: the
    /// coefficients of the last [`coefficients`](Self::coefficients) call (`lw` wide) sampled
    /// bilinearly through the axes `xs`, `ys` (low → high resolution), clamped to 0..1.
    #[inline]
    pub fn matte_at(
        &self,
        lw: usize,
        xs: &BilinearAxis,
        ys: &BilinearAxis,
        x: usize,
        y: usize,
        guide: f32,
    ) -> f32 {
        let a = sample_bilinear(&self.a, lw, xs, ys, x, y);
        let b = sample_bilinear(&self.b, lw, xs, ys, x, y);
        (a * guide + b).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_box_blur_averages_only_inside_pixels() {
        // 2×2 plane, radius 1: every pixel's window is the whole plane.
        let mut v = vec![1.0, 2.0, 3.0, 6.0];
        box_blur_truncated(&mut v, 2, 2, 1);
        assert!(v.iter().all(|&x| (x - 3.0).abs() < 1e-6), "{v:?}");
        // The clamping blur weighs the repeated edge pixels: the corner differs.
        let mut c = vec![1.0, 2.0, 3.0, 6.0];
        box_blur(&mut c, 2, 2, 1, &mut Vec::new());
        assert!((c[0] - 3.0).abs() > 0.1, "{c:?}");
        // Radius 0 is the identity.
        let mut id = vec![1.0, 2.0, 3.0, 6.0];
        box_blur_truncated(&mut id, 2, 2, 0);
        assert_eq!(id, [1.0, 2.0, 3.0, 6.0]);
    }

    #[test]
    fn radius_one_blur_matches_the_running_sums() {
        for (w, h) in [(1, 1), (1, 5), (6, 1), (2, 2), (17, 9), (64, 33)] {
            let plane: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 23) as f32 / 7.0).collect();
            let (mut fast, mut slow, mut tmp) = (plane.clone(), plane.clone(), Vec::new());
            box_blur(&mut fast, w, h, 1, &mut tmp);
            box_blur_running(&mut slow, w, h, 1, &mut tmp);
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                assert!((a - b).abs() < 1e-5, "{w}×{h} pixel {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn box_blur_preserves_the_mean() {
        let (w, h) = (17, 9);
        let mut p: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 19) as f32).collect();
        let mut tmp = Vec::new();
        let before: f32 = p.iter().sum::<f32>() / p.len() as f32;
        box_blur(&mut p, w, h, 2, &mut tmp);
        let after: f32 = p.iter().sum::<f32>() / p.len() as f32;
        // Edge clamping changes the mean slightly; the bulk must stay.
        assert!((before - after).abs() < 0.5, "{before} vs {after}");
        let var = |v: &[f32], m: f32| v.iter().map(|x| (x - m).powi(2)).sum::<f32>();
        let orig: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 19) as f32).collect();
        assert!(var(&p, after) < var(&orig, before) / 4.0);
    }

    #[test]
    fn guided_upsampling_follows_the_guide_edge() {
        // The full-resolution guide has a sharp edge at x = 37 (not on the low-res grid);
        // the matte is the guide itself at low resolution. Bilinear upsampling would smear
        // the edge over several pixels; the guided filter puts it back where the guide is.
        let (hw, hh, f) = (96, 8, 8);
        let (lw, lh) = (hw / f, hh / f);
        let guide_hr: Vec<f32> = (0..hw * hh)
            .map(|i| if i % hw >= 37 { 1.0 } else { 0.0 })
            .collect();
        let mut guide_lr = vec![0.0; lw * lh];
        PlaneResizer::new().run(&guide_hr, hw, hh, &mut guide_lr, lw, lh);
        let alpha_lr = guide_lr.clone();
        let mut out = vec![0.0; hw * hh];
        GuidedUpsampler::new().run(
            &guide_lr, &alpha_lr, lw, lh, &guide_hr, hw, hh, 1, 1e-4, &mut out,
        );
        let row = &out[..hw];
        assert!(
            row[35] < 0.1 && row[39] > 0.9,
            "edge kept sharp: {:?}",
            &row[30..44]
        );
        let mut bilinear = vec![0.0; hw * hh];
        PlaneResizer::new().run(&alpha_lr, lw, lh, &mut bilinear, hw, hh);
        let soft = |r: &[f32]| r.iter().filter(|&&v| v > 0.05 && v < 0.95).count();
        assert!(
            soft(row) < soft(&bilinear[..hw]) / 2,
            "sharper than bilinear"
        );
    }

    #[test]
    fn guided_upsampling_of_a_flat_matte_is_flat() {
        let (lw, lh, hw, hh) = (10, 6, 40, 24);
        let guide_lr: Vec<f32> = (0..lw * lh).map(|i| (i % 7) as f32 / 7.0).collect();
        let guide_hr: Vec<f32> = (0..hw * hh).map(|i| (i % 5) as f32 / 5.0).collect();
        let mut out = vec![0.0; hw * hh];
        GuidedUpsampler::new().run(
            &guide_lr,
            &vec![0.7; lw * lh],
            lw,
            lh,
            &guide_hr,
            hw,
            hh,
            2,
            1e-3,
            &mut out,
        );
        assert!(out.iter().all(|v| (v - 0.7).abs() < 1e-3));
    }
}
