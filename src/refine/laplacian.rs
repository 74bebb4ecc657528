//! One pyramid level: window statistics and the box-filter matting-Laplacian product `L·p`.

use super::boxsum::{clipped_count, hpass, ring_row, vpass};
use super::spans::Spans;

/// One level of the pyramid with everything its CG solve needs.
#[derive(Debug, Default)]
pub(super) struct Level {
    pub(super) w: usize,
    pub(super) h: usize,
    radius: usize,
    /// Colour, centred on the crop's mean (the Laplacian is invariant to a global shift).
    pub(super) img: Vec<[f32; 3]>,
    /// 1 where the pixel is a hard constraint.
    pub(super) known: Vec<u8>,
    /// The solution, warm start on entry.
    pub(super) x: Vec<f64>,
    /// The data term's target (the net's alpha).
    pub(super) prior: Vec<f64>,
    /// The data term's weight per pixel: `λ + trust·(2α_net − 1)²` (averaged on coarse levels).
    pub(super) weight: Vec<f64>,
    /// Whether the level has a data term: without one, `prior` and `weight` are not filled
    /// and the solve reads zeros instead.
    pub(super) data_term: bool,
    /// Zeros, a row long: the weights and prior of a level without a data term.
    pub(super) zeros: Vec<f64>,
    pub(super) unknown: usize,
    /// `U`, `U ⊕ (0, r)`, `U ⊕ (r, r)`, `U ⊕ (r, 2r)` as (horizontal, vertical) dilations.
    u: Spans,
    /// `U`'s spans as index ranges into the planes.
    pub(super) u_ranges: Vec<std::ops::Range<usize>>,
    /// Clipped window extent per column / row, and its reciprocal.
    count_x: Vec<f64>,
    count_y: Vec<f64>,
    inv_count_x: Vec<f64>,
    inv_count_y: Vec<f64>,
    v: Spans,
    d1: Spans,
    wide: Spans,
    /// Per window on `d1`: mean colour and the inverse of `Σ + ε/n·Id` (xx, xy, xz, yy, yz, zz).
    /// Kept in f64: where the colours of a window lie on a line (the colour-line model's very
    /// case) the inverse has eigenvalues up to n/ε, and f32 rounding of it visibly moves the
    /// solution (measured: 0.017 alpha error on an exactly linear scene vs < 1e-3).
    mean: Vec<[f64; 3]>,
    inv: Vec<[f64; 6]>,
    /// Diagonal preconditioner on `U`: the number of windows covering the pixel. (Measured:
    /// the exact Jacobi diagonal of `L` gave the same SAD after the same iterations, at 40 %
    /// more set-up time per frame, so the cheap one is used.)
    pub(super) diag: Vec<f64>,
    pub(super) r: Vec<f64>,
    pub(super) z: Vec<f64>,
    pub(super) d: Vec<f64>,
    pub(super) q: Vec<f64>,
    /// Row buffers of the fused passes: box sums of the first pass (`2r + 1` rows), `a, b` of
    /// the current row, box sums of the second pass (`2r + 1` rows), a vertical-sum row.
    ring1: Vec<[f64; 4]>,
    ab: Vec<[f64; 4]>,
    ring2: Vec<[f64; 4]>,
    row4: Vec<[f64; 4]>,
    vals: Vec<[f64; 4]>,
}

#[inline(always)]
pub(super) fn sym_mul(m: &[f64; 6], v: [f64; 3]) -> [f64; 3] {
    [
        m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
        m[1] * v[0] + m[3] * v[1] + m[4] * v[2],
        m[2] * v[0] + m[4] * v[1] + m[5] * v[2],
    ]
}

/// Inverse of the symmetric 3×3 matrix (xx, xy, xz, yy, yz, zz).
#[inline(always)]
pub(super) fn sym_inverse(m: [f64; 6]) -> [f64; 6] {
    let [a, b, c, d, e, f] = m;
    let c00 = d * f - e * e;
    let c01 = c * e - b * f;
    let c02 = b * e - c * d;
    let det = a * c00 + b * c01 + c * c02;
    let inv = if det.abs() > 1e-300 { 1.0 / det } else { 0.0 };
    [
        c00 * inv,
        c01 * inv,
        c02 * inv,
        (a * f - c * c) * inv,
        (b * c - a * e) * inv,
        (a * d - b * b) * inv,
    ]
}

impl Level {
    pub(super) fn ensure(&mut self, w: usize, h: usize) {
        self.w = w;
        self.h = h;
        let n = w * h;
        self.img.resize(n, [0.0; 3]);
        self.known.resize(n, 0);
        self.x.resize(n, 0.0);
        self.prior.resize(n, 0.0);
        self.weight.resize(n, 0.0);
        self.mean.resize(n, [0.0; 3]);
        self.inv.resize(n, [0.0; 6]);
        self.diag.resize(n, 0.0);
        self.r.resize(n, 0.0);
        self.z.resize(n, 0.0);
        self.d.resize(n, 0.0);
        self.q.resize(n, 0.0);
        self.zeros.resize(w, 0.0);
        self.ab.resize(w, [0.0; 4]);
        self.row4.resize(w, [0.0; 4]);
        self.vals.resize(w, [0.0; 4]);
    }

    /// Builds the span sets from `known` and the per-window statistics and preconditioner.
    #[inline(always)]
    pub(super) fn prepare(&mut self, radius: usize, epsilon: f64, masks: &mut MaskScratch) {
        let (w, h, r) = (self.w, self.h, radius);
        self.radius = r;
        for (counts, inv, len) in [
            (&mut self.count_x, &mut self.inv_count_x, w),
            (&mut self.count_y, &mut self.inv_count_y, h),
        ] {
            counts.clear();
            counts.extend((0..len).map(|i| clipped_count(i, r, len) as f64));
            inv.clear();
            inv.extend(counts.iter().map(|c| 1.0 / c));
        }
        self.build_spans(masks);
        // The CG direction must be zero outside U wherever a pass reads it: the horizontal
        // box sums read it on `wide`'s spans widened by r.
        for y in 0..h {
            for &(x0, x1) in self.wide.row(y) {
                self.d[y * w + x0.saturating_sub(r)..y * w + (x1 + r).min(w)].fill(0.0);
            }
        }

        let rows = 2 * r + 1;
        self.ring1.resize(rows * w, [0.0; 4]);
        self.ring2.resize(rows * w, [0.0; 4]);
        self.window_statistics(epsilon, masks);
        self.preconditioner();
    }

    /// `U` (its size, spans and index ranges) and its dilations `v`, `d1` and `wide` at the
    /// level's radius, from `known`.
    #[inline(always)]
    fn build_spans(&mut self, masks: &mut MaskScratch) {
        let (w, h, r) = (self.w, self.h, self.radius);
        self.u.set_from_unknown(&self.known, w, h);
        self.unknown = self.u.pixels();
        self.u_ranges.clear();
        for y in 0..h {
            self.u_ranges
                .extend(self.u.row(y).iter().map(|&(x0, x1)| y * w + x0..y * w + x1));
        }
        let scratch = &mut masks.gathered;
        self.v.set_dilated(&self.u, w, 0, r, scratch);
        self.d1.set_dilated(&self.u, w, r, r, scratch);
        self.wide.set_dilated(&self.u, w, r, 2 * r, scratch);
    }

    /// Per-window mean colour and inverse regularised covariance (`mean`, `inv`) on `d1`.
    #[inline(always)]
    fn window_statistics(&mut self, epsilon: f64, masks: &mut MaskScratch) {
        let (w, h, r) = (self.w, self.h, self.radius);
        let rows = 2 * r + 1;
        // Window statistics on d1: box sums of I and I·Iᵀ (9 channels), horizontal over `wide`
        // into a ring of rows, vertical at d1 once the rows below are in.
        masks.ring9.resize(rows * w, [0.0; 9]);
        masks.row9.resize(w, [0.0; 9]);
        masks.vals9.resize(w, [0.0; 9]);
        for t in 0..h + r {
            if t < h {
                let line = &self.img[t * w..(t + 1) * w];
                hpass(
                    w,
                    r,
                    self.wide.row(t),
                    |x| {
                        let [a, b, c] = line[x].map(f64::from);
                        [a, b, c, a * a, a * b, a * c, b * b, b * c, c * c]
                    },
                    &mut masks.vals9,
                    ring_row(&mut masks.ring9, w, r, t),
                );
            }
            let Some(y) = t.checked_sub(r) else { continue };
            vpass(w, h, r, y, self.d1.row(y), &masks.ring9, &mut masks.row9);
            let icy = self.inv_count_y[y];
            for &(x0, x1) in self.d1.row(y) {
                let (k0, k1) = (y * w + x0, y * w + x1);
                for (((m_out, inv_out), s), &icx) in self.mean[k0..k1]
                    .iter_mut()
                    .zip(&mut self.inv[k0..k1])
                    .zip(&masks.row9[x0..x1])
                    .zip(&self.inv_count_x[x0..x1])
                {
                    let inv_n = icx * icy;
                    let m = [s[0] * inv_n, s[1] * inv_n, s[2] * inv_n];
                    let e = epsilon * inv_n;
                    let cov = [
                        s[3] * inv_n - m[0] * m[0] + e,
                        s[4] * inv_n - m[0] * m[1],
                        s[5] * inv_n - m[0] * m[2],
                        s[6] * inv_n - m[1] * m[1] + e,
                        s[7] * inv_n - m[1] * m[2],
                        s[8] * inv_n - m[2] * m[2] + e,
                    ];
                    *m_out = m;
                    *inv_out = sym_inverse(cov);
                }
            }
        }
    }

    /// The diagonal preconditioner on `U`: the number of windows covering each pixel.
    #[inline(always)]
    fn preconditioner(&mut self) {
        let (w, h) = (self.w, self.h);
        for y in 0..h {
            let cy = self.count_y[y];
            for &(x0, x1) in self.u.row(y) {
                let (k0, k1) = (y * w + x0, y * w + x1);
                for (d, &cx) in self.diag[k0..k1].iter_mut().zip(&self.count_x[x0..x1]) {
                    *d = cx * cy;
                }
            }
        }
    }

    /// `q = (L p)` on `U`. `p` must hold its true values wherever a window touching `U` reads it
    /// (the CG direction is zero outside `U`; the full alpha is valid everywhere).
    #[inline(always)]
    pub(super) fn apply(&mut self, p_is_x: bool) {
        let Level {
            w,
            h,
            radius: r,
            img,
            x,
            d,
            u,
            v,
            d1,
            wide,
            mean,
            inv,
            q,
            ring1,
            ab,
            ring2,
            row4,
            vals,
            count_x,
            count_y,
            inv_count_x,
            inv_count_y,
            ..
        } = self;
        let (w, h, r) = (*w, *h, *r);
        let p = if p_is_x { &*x } else { &*d };
        // One sweep down the rows, three stages apart by r rows each: (1) box sums of p and I·p
        // along row t over `wide`; (2) at row t − r their vertical sums over d1 give a, b per
        // window, box-summed along the row over `v`; (3) at row t − 2r the vertical sums of those
        // give (Lp)_i = n_i p_i − Aᵀ I_i − B on U.
        for t in 0..h + 2 * r {
            if t < h {
                let (pl, il) = (&p[t * w..(t + 1) * w], &img[t * w..(t + 1) * w]);
                hpass(
                    w,
                    r,
                    wide.row(t),
                    |x| {
                        let (v, i) = (pl[x], il[x].map(f64::from));
                        [v, i[0] * v, i[1] * v, i[2] * v]
                    },
                    vals,
                    ring_row(ring1, w, r, t),
                );
            }
            if let Some(y) = t.checked_sub(r).filter(|&y| y < h) {
                vpass(w, h, r, y, d1.row(y), ring1, row4);
                let icy = inv_count_y[y];
                for &(x0, x1) in d1.row(y) {
                    let (k0, k1) = (y * w + x0, y * w + x1);
                    for ((((out, s), m), dinv), &icx) in ab[x0..x1]
                        .iter_mut()
                        .zip(&row4[x0..x1])
                        .zip(&mean[k0..k1])
                        .zip(&inv[k0..k1])
                        .zip(&inv_count_x[x0..x1])
                    {
                        let inv_n = icx * icy;
                        let mp = s[0] * inv_n;
                        let cov = [
                            s[1] * inv_n - m[0] * mp,
                            s[2] * inv_n - m[1] * mp,
                            s[3] * inv_n - m[2] * mp,
                        ];
                        let a = sym_mul(dinv, cov);
                        let b = mp - a[0] * m[0] - a[1] * m[1] - a[2] * m[2];
                        *out = [a[0], a[1], a[2], b];
                    }
                }
                let abl = &*ab;
                hpass(w, r, v.row(y), |x| abl[x], vals, ring_row(ring2, w, r, y));
            }
            if let Some(y) = t.checked_sub(2 * r).filter(|&y| y < h) {
                vpass(w, h, r, y, u.row(y), ring2, row4);
                let cy = count_y[y];
                for &(x0, x1) in u.row(y) {
                    let (k0, k1) = (y * w + x0, y * w + x1);
                    for ((((out, s), i), &pv), &cx) in q[k0..k1]
                        .iter_mut()
                        .zip(&row4[x0..x1])
                        .zip(&img[k0..k1])
                        .zip(&p[k0..k1])
                        .zip(&count_x[x0..x1])
                    {
                        let i = i.map(f64::from);
                        *out = cx * cy * pv - s[0] * i[0] - s[1] * i[1] - s[2] * i[2] - s[3];
                    }
                }
            }
        }
    }
}

/// Scratch of [`Level::prepare`], shared by all levels: the spans a dilation gathers and the
/// rows of the window statistics.
#[derive(Debug, Default)]
pub(super) struct MaskScratch {
    /// One row's spans gathered for a dilation.
    gathered: Vec<(usize, usize)>,
    ring9: Vec<[f64; 9]>,
    row9: Vec<[f64; 9]>,
    vals9: Vec<[f64; 9]>,
}
