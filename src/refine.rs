//! Matting-Laplacian refinement of the unknown band: closed-form matting (Levin, Lischinski,
//! Weiss 2008) solved in real time.
//!
//! The matting net's alpha is only a warm start. Inside the crop around the unknown band the
//! refinement minimises `αᵀLα + λ‖α − α_net‖²` over the unknown pixels, with the trimap's known
//! foreground (1) and background (0) as hard constraints, where `L` is the matting Laplacian: in
//! every `(2r+1)²` window, alpha is assumed to be an affine function of colour, `α ≈ aᵀI + b`.
//! That assumption holds for hair, fur and leaves as a camera sees them, which is why the
//! classical solver keeps strands that a small network blurs into fog.
//!
//! Solver: Jacobi-preconditioned conjugate gradient, warm-started from the net, with `L·p`
//! evaluated the way He, Sun and Tang do it ("Fast matting using large kernel matting Laplacian
//! matrices", CVPR 2010) — box sums of `p` and `I·p`, a 3×3 solve per window, box sums of the
//! resulting `a, b` — never forming `L`. Two things make it fit a frame budget:
//! - **Coarse to fine**: the problem is solved on a 2×-downsampled pyramid first (where a window
//!   covers 4× the area and an iteration costs ¼), and each solution warm-starts the next level.
//! - **Only where it matters**: with `p` zero outside the unknown set `U`, every box sum is needed
//!   only on `U` dilated by `r` or `2r`, so all passes run over per-row spans of those sets
//!   (O(band area) per iteration, not O(crop area)). Horizontal box sums are running sums (their
//!   cost does not depend on `r`); vertical ones add `2r+1` rows of a span.
//!
//! Windows are clipped at the crop border (each clipped window's Laplacian is still symmetric
//! positive semi-definite, so CG applies unchanged). Buffers live in the solver and are reused
//! across frames and crop sizes: after warm-up nothing is allocated per frame.

use ndarray::ArrayView3;

use crate::trimap::{KNOWN_BG, KNOWN_FG};

/// Default CG iterations at full resolution (coarser levels run 2× as many per level down).
pub const DEFAULT_REFINE_ITERATIONS: u32 = 4;
/// Default window radius at full resolution (windows are `(2r+1)²`).
pub const DEFAULT_REFINE_RADIUS: u32 = 2;
/// Default weight of the data term towards the net's alpha (0 = pure warm start).
pub const DEFAULT_REFINE_LAMBDA: f32 = 0.0;
/// Default number of pyramid levels (1 = full resolution only).
pub const DEFAULT_REFINE_LEVELS: u32 = 3;
/// Regularisation `ε` of the window covariance (colours in 0..1), as in Levin et al.
pub const DEFAULT_REFINE_EPSILON: f32 = 1e-6;
/// Largest supported window radius.
pub const MAX_REFINE_RADIUS: u32 = 8;
/// Largest supported number of pyramid levels.
pub const MAX_REFINE_LEVELS: u32 = 5;

/// Which refinement runs after the matting net.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefineMethod {
    /// The net's matte as it is.
    #[default]
    None,
    /// Matting-Laplacian (closed-form) refinement warm-started from the net.
    Laplacian,
}

/// Settings of the refinement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefineSettings {
    pub method: RefineMethod,
    /// CG iterations at full resolution; pyramid level `l` runs `iterations · 2^l`.
    pub iterations: u32,
    /// Window radius at full resolution; coarser levels use `⌈r/2⌉`.
    pub radius: u32,
    /// Weight of the data term towards the net's alpha, ≥ 0.
    pub lambda: f32,
    /// Pyramid levels, 1 ..= [`MAX_REFINE_LEVELS`].
    pub levels: u32,
    /// Covariance regularisation ε.
    pub epsilon: f32,
}

impl Default for RefineSettings {
    fn default() -> Self {
        Self {
            method: RefineMethod::None,
            iterations: DEFAULT_REFINE_ITERATIONS,
            radius: DEFAULT_REFINE_RADIUS,
            lambda: DEFAULT_REFINE_LAMBDA,
            levels: DEFAULT_REFINE_LEVELS,
            epsilon: DEFAULT_REFINE_EPSILON,
        }
    }
}

impl RefineSettings {
    /// The Laplacian refinement with the default parameters.
    pub fn laplacian() -> Self {
        Self {
            method: RefineMethod::Laplacian,
            ..Self::default()
        }
    }

    /// Whether a refinement runs at all.
    pub fn enabled(&self) -> bool {
        self.method != RefineMethod::None && self.iterations > 0
    }
}

/// What one call of [`LaplacianSolver::refine`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RefineReport {
    /// Unknown pixels at full resolution.
    pub unknown: usize,
    /// Pyramid levels solved.
    pub levels: usize,
    /// CG iterations run, all levels together.
    pub iterations: usize,
}

/// Per-row spans `[x0, x1)` of a pixel set.
#[derive(Debug, Default)]
struct Spans {
    row_start: Vec<usize>,
    spans: Vec<(usize, usize)>,
}

impl Spans {
    fn from_mask(&mut self, mask: &[u8], w: usize, h: usize) {
        self.row_start.clear();
        self.spans.clear();
        for y in 0..h {
            self.row_start.push(self.spans.len());
            let row = &mask[y * w..(y + 1) * w];
            let mut x = 0;
            while x < w {
                if row[x] != 0 {
                    let x0 = x;
                    while x < w && row[x] != 0 {
                        x += 1;
                    }
                    self.spans.push((x0, x));
                } else {
                    x += 1;
                }
            }
        }
        self.row_start.push(self.spans.len());
    }

    #[inline]
    fn row(&self, y: usize) -> &[(usize, usize)] {
        &self.spans[self.row_start[y]..self.row_start[y + 1]]
    }
}

/// Dilates a 0/1 mask by `rx` horizontally and `ry` vertically (a rectangle), in `out`.
#[allow(clippy::too_many_arguments)]
fn dilate(
    mask: &[u8],
    w: usize,
    h: usize,
    rx: usize,
    ry: usize,
    tmp: &mut Vec<u8>,
    counts: &mut Vec<u32>,
    out: &mut Vec<u8>,
) {
    tmp.clear();
    tmp.resize(w * h, 0);
    out.clear();
    out.resize(w * h, 0);
    for y in 0..h {
        let src = &mask[y * w..(y + 1) * w];
        let dst = &mut tmp[y * w..(y + 1) * w];
        // Count of set pixels in [x - rx, x + rx].
        let mut count: usize = src[..(rx + 1).min(w)].iter().map(|&v| v as usize).sum();
        for x in 0..w {
            dst[x] = (count > 0) as u8;
            if x + rx + 1 < w {
                count += src[x + rx + 1] as usize;
            }
            if x >= rx {
                count -= src[x - rx] as usize;
            }
        }
    }
    counts.clear();
    counts.resize(w, 0);
    for y in 0..=ry.min(h - 1) {
        for (c, &v) in counts.iter_mut().zip(&tmp[y * w..(y + 1) * w]) {
            *c += v as u32;
        }
    }
    for y in 0..h {
        for (o, &c) in out[y * w..(y + 1) * w].iter_mut().zip(counts.iter()) {
            *o = (c > 0) as u8;
        }
        if y + ry + 1 < h {
            let add = &tmp[(y + ry + 1) * w..(y + ry + 2) * w];
            for (c, &v) in counts.iter_mut().zip(add) {
                *c += v as u32;
            }
        }
        if y >= ry {
            let sub = &tmp[(y - ry) * w..(y - ry + 1) * w];
            for (c, &v) in counts.iter_mut().zip(sub) {
                *c -= v as u32;
            }
        }
    }
}

/// Number of positions of `[i - r, i + r]` inside `[0, n)`.
#[inline]
fn clipped_count(i: usize, r: usize, n: usize) -> usize {
    (i + r).min(n - 1) + 1 - i.saturating_sub(r)
}

/// Horizontal running box sums of the `N` channels that `f(x)` yields, over the spans of one
/// row; windows are clipped at `[0, w)`.
#[inline]
fn hpass<const N: usize>(
    w: usize,
    r: usize,
    spans: &[(usize, usize)],
    f: impl Fn(usize) -> [f64; N],
    out: &mut [[f64; N]],
) {
    for &(x0, x1) in spans {
        let mut s = [0.0; N];
        for x in x0.saturating_sub(r)..=(x0 + r).min(w - 1) {
            let v = f(x);
            for c in 0..N {
                s[c] += v[c];
            }
        }
        for x in x0..x1 {
            out[x] = s;
            if x + r + 1 < w {
                let v = f(x + r + 1);
                for c in 0..N {
                    s[c] += v[c];
                }
            }
            if x >= r {
                let v = f(x - r);
                for c in 0..N {
                    s[c] -= v[c];
                }
            }
        }
    }
}

/// Vertical box sums at the spans of row `y`: adds rows `y - r ..= y + r` of `src` (clipped at
/// `[0, h)`) into `out` (a row).
#[inline]
fn vpass<const N: usize>(
    w: usize,
    h: usize,
    r: usize,
    y: usize,
    spans: &[(usize, usize)],
    src: &[[f64; N]],
    out: &mut [[f64; N]],
) {
    for &(x0, x1) in spans {
        out[x0..x1].fill([0.0; N]);
        for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
            let s = &src[yy * w + x0..yy * w + x1];
            for (o, v) in out[x0..x1].iter_mut().zip(s) {
                for c in 0..N {
                    o[c] += v[c];
                }
            }
        }
    }
}

/// One level of the pyramid with everything its CG solve needs.
#[derive(Debug, Default)]
struct Level {
    w: usize,
    h: usize,
    radius: usize,
    /// Colour, centred on the crop's mean (the Laplacian is invariant to a global shift).
    img: Vec<[f64; 3]>,
    /// 1 where the pixel is a hard constraint.
    known: Vec<u8>,
    /// The solution, warm start on entry.
    x: Vec<f64>,
    /// The data term's target (the net's alpha).
    prior: Vec<f64>,
    unknown: usize,
    /// `U`, `U ⊕ (0, r)`, `U ⊕ (r, r)`, `U ⊕ (r, 2r)` as (horizontal, vertical) dilations.
    u: Spans,
    v: Spans,
    d1: Spans,
    wide: Spans,
    /// Per window on `d1`: mean colour and the inverse of `Σ + ε/n·Id` (xx, xy, xz, yy, yz, zz).
    mean: Vec<[f64; 3]>,
    inv: Vec<[f64; 6]>,
    /// Jacobi preconditioner `diag(L)` on `U`.
    diag: Vec<f64>,
    r: Vec<f64>,
    z: Vec<f64>,
    d: Vec<f64>,
    q: Vec<f64>,
    /// Per window on `d1`: `a` (3) and `b` of the current product.
    ab: Vec<[f64; 4]>,
    h4: Vec<[f64; 4]>,
    row4: Vec<[f64; 4]>,
}

#[inline]
fn sym_mul(m: &[f64; 6], v: [f64; 3]) -> [f64; 3] {
    [
        m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
        m[1] * v[0] + m[3] * v[1] + m[4] * v[2],
        m[2] * v[0] + m[4] * v[1] + m[5] * v[2],
    ]
}

/// Inverse of the symmetric 3×3 matrix (xx, xy, xz, yy, yz, zz).
fn sym_inverse(m: [f64; 6]) -> [f64; 6] {
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
    fn ensure(&mut self, w: usize, h: usize) {
        self.w = w;
        self.h = h;
        let n = w * h;
        self.img.resize(n, [0.0; 3]);
        self.known.resize(n, 0);
        self.x.resize(n, 0.0);
        self.prior.resize(n, 0.0);
        self.mean.resize(n, [0.0; 3]);
        self.inv.resize(n, [0.0; 6]);
        self.diag.resize(n, 0.0);
        self.r.resize(n, 0.0);
        self.z.resize(n, 0.0);
        self.d.resize(n, 0.0);
        self.q.resize(n, 0.0);
        self.ab.resize(n, [0.0; 4]);
        self.h4.resize(n, [0.0; 4]);
        self.row4.resize(w, [0.0; 4]);
    }

    /// Builds the span sets from `known` and the per-window statistics and preconditioner.
    fn prepare(&mut self, radius: usize, epsilon: f64, masks: &mut MaskScratch) {
        let (w, h, r) = (self.w, self.h, radius);
        self.radius = r;
        masks.unknown.clear();
        masks
            .unknown
            .extend(self.known.iter().map(|&k| (k == 0) as u8));
        self.unknown = masks.unknown.iter().filter(|&&u| u != 0).count();
        self.u.from_mask(&masks.unknown, w, h);
        dilate(
            &masks.unknown,
            w,
            h,
            0,
            r,
            &mut masks.tmp,
            &mut masks.counts,
            &mut masks.out,
        );
        self.v.from_mask(&masks.out, w, h);
        dilate(
            &masks.unknown,
            w,
            h,
            r,
            r,
            &mut masks.tmp,
            &mut masks.counts,
            &mut masks.out,
        );
        self.d1.from_mask(&masks.out, w, h);
        dilate(
            &masks.unknown,
            w,
            h,
            r,
            2 * r,
            &mut masks.tmp,
            &mut masks.counts,
            &mut masks.out,
        );
        self.wide.from_mask(&masks.out, w, h);
        // The CG direction must be zero outside U.
        self.d.fill(0.0);

        // Window statistics on d1: box sums of I and I·Iᵀ (9 channels), horizontal over `wide`.
        let mut h9 = std::mem::take(&mut masks.h9);
        let mut row9 = std::mem::take(&mut masks.row9);
        h9.resize(w * h, [0.0; 9]);
        row9.resize(w, [0.0; 9]);
        let img = &self.img;
        for y in 0..h {
            let line = &img[y * w..(y + 1) * w];
            hpass(
                w,
                r,
                self.wide.row(y),
                |x| {
                    let [a, b, c] = line[x];
                    [a, b, c, a * a, a * b, a * c, b * b, b * c, c * c]
                },
                &mut h9[y * w..(y + 1) * w],
            );
        }
        for y in 0..h {
            vpass(w, h, r, y, self.d1.row(y), &h9, &mut row9);
            let cy = clipped_count(y, r, h);
            for &(x0, x1) in self.d1.row(y) {
                for x in x0..x1 {
                    let n = (clipped_count(x, r, w) * cy) as f64;
                    let s = row9[x];
                    let m = [s[0] / n, s[1] / n, s[2] / n];
                    let e = epsilon / n;
                    let cov = [
                        s[3] / n - m[0] * m[0] + e,
                        s[4] / n - m[0] * m[1],
                        s[5] / n - m[0] * m[2],
                        s[6] / n - m[1] * m[1] + e,
                        s[7] / n - m[1] * m[2],
                        s[8] / n - m[2] * m[2] + e,
                    ];
                    self.mean[y * w + x] = m;
                    self.inv[y * w + x] = sym_inverse(cov);
                }
            }
        }
        masks.h9 = h9;
        masks.row9 = row9;

        // diag(L)_i = Σ_{k∋i} 1 − (1 + (I_i − μ_k)ᵀ Δ_k⁻¹ (I_i − μ_k)) / n_k, expanded into box
        // sums of per-window terms: 1/n + μᵀΔ⁻¹μ/n (1), Δ⁻¹/n (6), Δ⁻¹μ/n (3).
        let mut h10 = std::mem::take(&mut masks.h10);
        let mut row10 = std::mem::take(&mut masks.row10);
        h10.resize(w * h, [0.0; 10]);
        row10.resize(w, [0.0; 10]);
        for y in 0..h {
            let cy = clipped_count(y, r, h);
            let (mean, inv) = (
                &self.mean[y * w..(y + 1) * w],
                &self.inv[y * w..(y + 1) * w],
            );
            hpass(
                w,
                r,
                self.v.row(y),
                |x| {
                    let n = (clipped_count(x, r, w) * cy) as f64;
                    let (m, d) = (mean[x], &inv[x]);
                    let dm = sym_mul(d, m);
                    let mdm = m[0] * dm[0] + m[1] * dm[1] + m[2] * dm[2];
                    [
                        (1.0 + mdm) / n,
                        d[0] / n,
                        d[1] / n,
                        d[2] / n,
                        d[3] / n,
                        d[4] / n,
                        d[5] / n,
                        dm[0] / n,
                        dm[1] / n,
                        dm[2] / n,
                    ]
                },
                &mut h10[y * w..(y + 1) * w],
            );
        }
        for y in 0..h {
            vpass(w, h, r, y, self.u.row(y), &h10, &mut row10);
            let cy = clipped_count(y, r, h);
            for &(x0, x1) in self.u.row(y) {
                for x in x0..x1 {
                    let s = row10[x];
                    let i = self.img[y * w + x];
                    let di = sym_mul(&[s[1], s[2], s[3], s[4], s[5], s[6]], i);
                    let idi = i[0] * di[0] + i[1] * di[1] + i[2] * di[2];
                    let iv = i[0] * s[7] + i[1] * s[8] + i[2] * s[9];
                    let n = (clipped_count(x, r, w) * cy) as f64;
                    // Positive for any window set; guard against round-off in flat regions.
                    self.diag[y * w + x] = (n - s[0] - idi + 2.0 * iv).max(1e-6);
                }
            }
        }
        masks.h10 = h10;
        masks.row10 = row10;
    }

    /// `q = (L p)` on `U`. `p` must hold its true values wherever a window touching `U` reads it
    /// (the CG direction is zero outside `U`; the full alpha is valid everywhere).
    fn apply(&mut self, p_is_x: bool) {
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
            ab,
            h4,
            row4,
            ..
        } = self;
        let (w, h, r) = (*w, *h, *r);
        let p = if p_is_x { &*x } else { &*d };
        // Pass 1: box sums of p and I·p over `wide` → a, b on d1.
        for y in 0..h {
            let (pl, il) = (&p[y * w..(y + 1) * w], &img[y * w..(y + 1) * w]);
            hpass(
                w,
                r,
                wide.row(y),
                |x| {
                    let (v, i) = (pl[x], il[x]);
                    [v, i[0] * v, i[1] * v, i[2] * v]
                },
                &mut h4[y * w..(y + 1) * w],
            );
        }
        for y in 0..h {
            vpass(w, h, r, y, d1.row(y), h4, row4);
            let cy = clipped_count(y, r, h);
            for &(x0, x1) in d1.row(y) {
                for x in x0..x1 {
                    let k = y * w + x;
                    let n = (clipped_count(x, r, w) * cy) as f64;
                    let s = row4[x];
                    let mp = s[0] / n;
                    let m = mean[k];
                    let cov = [
                        s[1] / n - m[0] * mp,
                        s[2] / n - m[1] * mp,
                        s[3] / n - m[2] * mp,
                    ];
                    let a = sym_mul(&inv[k], cov);
                    let b = mp - a[0] * m[0] - a[1] * m[1] - a[2] * m[2];
                    ab[k] = [a[0], a[1], a[2], b];
                }
            }
        }
        // Pass 2: box sums of a, b over `v` (reads d1) → (Lp)_i = n_i p_i − Aᵀ I_i − B on U.
        for y in 0..h {
            let abl = &ab[y * w..(y + 1) * w];
            hpass(w, r, v.row(y), |x| abl[x], &mut h4[y * w..(y + 1) * w]);
        }
        for y in 0..h {
            vpass(w, h, r, y, u.row(y), h4, row4);
            let cy = clipped_count(y, r, h);
            for &(x0, x1) in u.row(y) {
                for x in x0..x1 {
                    let k = y * w + x;
                    let n = (clipped_count(x, r, w) * cy) as f64;
                    let s = row4[x];
                    let i = img[k];
                    q[k] = n * p[k] - s[0] * i[0] - s[1] * i[1] - s[2] * i[2] - s[3];
                }
            }
        }
    }

    /// Sum over U of `f(k)`.
    fn sum_u(&self, mut f: impl FnMut(usize) -> f64) -> f64 {
        let mut s = 0.0;
        for y in 0..self.h {
            for &(x0, x1) in self.u.row(y) {
                for k in y * self.w + x0..y * self.w + x1 {
                    s += f(k);
                }
            }
        }
        s
    }

    /// Jacobi-preconditioned CG from the current `x`; pushes ‖r‖ per iteration (first: initial).
    fn solve(&mut self, iterations: usize, lambda: f64, residuals: &mut Vec<f64>) -> usize {
        if self.unknown == 0 {
            return 0;
        }
        self.apply(true);
        let w = self.w;
        for y in 0..self.h {
            for &(x0, x1) in self.u.row(y) {
                for k in y * w + x0..y * w + x1 {
                    self.r[k] = lambda * (self.prior[k] - self.x[k]) - self.q[k];
                    self.z[k] = self.r[k] / (self.diag[k] + lambda);
                    self.d[k] = self.z[k];
                }
            }
        }
        let mut rz = self.sum_u(|k| self.r[k] * self.z[k]);
        residuals.push(self.sum_u(|k| self.r[k] * self.r[k]).sqrt());
        let mut done = 0;
        for _ in 0..iterations {
            if rz <= 1e-30 {
                break;
            }
            self.apply(false);
            let dq = self.sum_u(|k| {
                let q = self.q[k] + lambda * self.d[k];
                self.d[k] * q
            });
            if dq <= 1e-30 || !dq.is_finite() {
                break;
            }
            let step = rz / dq;
            let mut rz_new = 0.0;
            let mut rr = 0.0;
            for y in 0..self.h {
                for &(x0, x1) in self.u.row(y) {
                    for k in y * w + x0..y * w + x1 {
                        let d = self.d[k];
                        self.x[k] += step * d;
                        self.r[k] -= step * (self.q[k] + lambda * d);
                        self.z[k] = self.r[k] / (self.diag[k] + lambda);
                        rz_new += self.r[k] * self.z[k];
                        rr += self.r[k] * self.r[k];
                    }
                }
            }
            let beta = rz_new / rz;
            rz = rz_new;
            for y in 0..self.h {
                for &(x0, x1) in self.u.row(y) {
                    for k in y * w + x0..y * w + x1 {
                        self.d[k] = self.z[k] + beta * self.d[k];
                    }
                }
            }
            residuals.push(rr.sqrt());
            done += 1;
        }
        done
    }
}

#[derive(Debug, Default)]
struct MaskScratch {
    unknown: Vec<u8>,
    tmp: Vec<u8>,
    counts: Vec<u32>,
    out: Vec<u8>,
    h9: Vec<[f64; 9]>,
    row9: Vec<[f64; 9]>,
    h10: Vec<[f64; 10]>,
    row10: Vec<[f64; 10]>,
}

/// The refinement solver; keeps every buffer between calls.
#[derive(Debug, Default)]
pub struct LaplacianSolver {
    levels: Vec<Level>,
    masks: MaskScratch,
    residuals: Vec<f64>,
}

impl LaplacianSolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Refines `alpha` (`w × h`, the net's matte on entry) for the RGBA `crop` whose alpha
    /// channel is the trimap. Known pixels of the trimap come out exactly 0 or 1, unknown ones
    /// in `[0, 1]`. Non-finite warm-start values are treated as 0.5.
    pub fn refine(
        &mut self,
        crop: &ArrayView3<'_, u8>,
        alpha: &mut [f32],
        settings: &RefineSettings,
    ) -> RefineReport {
        let (h, w) = (crop.shape()[0], crop.shape()[1]);
        assert_eq!(alpha.len(), w * h, "alpha is not the crop's size");
        self.residuals.clear();
        let mut report = RefineReport::default();
        if w == 0 || h == 0 {
            return report;
        }
        let levels = settings.levels.clamp(1, MAX_REFINE_LEVELS) as usize;
        let radius = settings.radius.clamp(1, MAX_REFINE_RADIUS) as usize;
        let lambda = settings.lambda.max(0.0) as f64;
        let epsilon = (settings.epsilon as f64).max(1e-12);
        if self.levels.len() < levels {
            self.levels.resize_with(levels, Level::default);
        }

        // Level 0 from the crop.
        {
            let l0 = &mut self.levels[0];
            l0.ensure(w, h);
            let mut mean = [0.0f64; 3];
            for (y, row) in crop.outer_iter().enumerate() {
                for (x, px) in row.outer_iter().enumerate() {
                    let k = y * w + x;
                    let c = [
                        px[0] as f64 / 255.0,
                        px[1] as f64 / 255.0,
                        px[2] as f64 / 255.0,
                    ];
                    l0.img[k] = c;
                    for i in 0..3 {
                        mean[i] += c[i];
                    }
                    let t = px[3];
                    let a = alpha[k];
                    if t <= KNOWN_BG {
                        l0.known[k] = 1;
                        l0.x[k] = 0.0;
                    } else if t >= KNOWN_FG {
                        l0.known[k] = 1;
                        l0.x[k] = 1.0;
                    } else {
                        l0.known[k] = 0;
                        l0.x[k] = if a.is_finite() {
                            a.clamp(0.0, 1.0) as f64
                        } else {
                            0.5
                        };
                    }
                    l0.prior[k] = l0.x[k];
                }
            }
            let inv = 1.0 / (w * h) as f64;
            for c in &mut l0.img {
                for i in 0..3 {
                    c[i] -= mean[i] * inv;
                }
            }
        }
        let mut used = 1;
        while used < levels {
            let (fine, coarse) = self.levels.split_at_mut(used);
            let fine = &fine[used - 1];
            if fine.w < 8 || fine.h < 8 {
                break;
            }
            downsample(fine, &mut coarse[0]);
            used += 1;
        }
        report.levels = used;
        report.unknown = self.levels[0].known.iter().filter(|&&k| k == 0).count();
        if report.unknown == 0 {
            write_back(&self.levels[0], alpha);
            return report;
        }

        for l in (0..used).rev() {
            let level_radius = if l == 0 { radius } else { radius.div_ceil(2) };
            let iters = (settings.iterations as usize) << l;
            self.levels[l].prepare(level_radius, epsilon, &mut self.masks);
            if l == 0 {
                self.residuals.clear();
            }
            report.iterations += self.levels[l].solve(iters, lambda, &mut self.residuals);
            if l > 0 {
                let (fine, coarse) = self.levels.split_at_mut(l);
                upsample_into(&coarse[0], &mut fine[l - 1]);
            }
        }
        write_back(&self.levels[0], alpha);
        report
    }

    /// ‖r‖ of the full-resolution CG solve of the last call: the initial residual, then one
    /// value per iteration.
    pub fn residuals(&self) -> &[f64] {
        &self.residuals
    }
}

fn write_back(level: &Level, alpha: &mut [f32]) {
    for ((o, &x), &k) in alpha.iter_mut().zip(&level.x).zip(&level.known) {
        *o = if k != 0 {
            x as f32
        } else {
            let v = x as f32;
            if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.5
            }
        };
    }
}

/// 2×2 box downsampling of colour, warm start and prior; a coarse pixel is a known constraint
/// only if all its children are known with the same value.
fn downsample(fine: &Level, coarse: &mut Level) {
    let (fw, fh) = (fine.w, fine.h);
    let (cw, ch) = (fw.div_ceil(2), fh.div_ceil(2));
    coarse.ensure(cw, ch);
    for cy in 0..ch {
        for cx in 0..cw {
            let mut img = [0.0; 3];
            let (mut x, mut prior, mut n) = (0.0, 0.0, 0.0);
            let (mut known, mut value, mut mixed) = (true, None, false);
            for fy in 2 * cy..(2 * cy + 2).min(fh) {
                for fx in 2 * cx..(2 * cx + 2).min(fw) {
                    let k = fy * fw + fx;
                    for i in 0..3 {
                        img[i] += fine.img[k][i];
                    }
                    x += fine.x[k];
                    prior += fine.prior[k];
                    n += 1.0;
                    if fine.known[k] == 0 {
                        known = false;
                    } else {
                        match value {
                            None => value = Some(fine.x[k]),
                            Some(v) if v != fine.x[k] => mixed = true,
                            _ => {}
                        }
                    }
                }
            }
            let k = cy * cw + cx;
            coarse.img[k] = [img[0] / n, img[1] / n, img[2] / n];
            coarse.known[k] = (known && !mixed) as u8;
            coarse.x[k] = x / n;
            coarse.prior[k] = prior / n;
        }
    }
}

/// Bilinear upsampling of the coarse solution into the fine level's unknown pixels.
fn upsample_into(coarse: &Level, fine: &mut Level) {
    let (cw, ch) = (coarse.w, coarse.h);
    let (fw, fh) = (fine.w, fine.h);
    for fy in 0..fh {
        let sy = ((fy as f64 + 0.5) * 0.5 - 0.5).clamp(0.0, (ch - 1) as f64);
        let y0 = sy.floor() as usize;
        let y1 = (y0 + 1).min(ch - 1);
        let ty = sy - y0 as f64;
        for fx in 0..fw {
            let k = fy * fw + fx;
            if fine.known[k] != 0 {
                continue;
            }
            let sx = ((fx as f64 + 0.5) * 0.5 - 0.5).clamp(0.0, (cw - 1) as f64);
            let x0 = sx.floor() as usize;
            let x1 = (x0 + 1).min(cw - 1);
            let tx = sx - x0 as f64;
            let top = coarse.x[y0 * cw + x0] * (1.0 - tx) + coarse.x[y0 * cw + x1] * tx;
            let bot = coarse.x[y1 * cw + x0] * (1.0 - tx) + coarse.x[y1 * cw + x1] * tx;
            fine.x[k] = (top * (1.0 - ty) + bot * ty).clamp(0.0, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// An RGBA crop whose colour is `α·F + (1 − α)·B` with constant F and B (so alpha is an
    /// exact affine function of colour in every window), trimap known where α is 0 or 1.
    fn linear_model_scene(w: usize, h: usize) -> (Array3<u8>, Vec<f32>) {
        // 8-bit colours, so known pixels project to exactly 0 and 1.
        let (f, b) = (
            [230.0 / 255.0, 191.0 / 255.0, 51.0 / 255.0],
            [25.0 / 255.0, 76.0 / 255.0, 217.0 / 255.0],
        );
        let mut crop = Array3::<u8>::zeros((h, w, 4));
        let mut truth = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32, y as f32);
                let field = 0.5 + 0.9 * (xf / 7.0 + yf / 11.0).sin() * (yf / 5.0).cos();
                let a = field.clamp(0.0, 1.0);
                // Quantised like a camera would: α then follows from the 8-bit colour.
                let mut c = [0u8; 3];
                for i in 0..3 {
                    c[i] = ((a * f[i] + (1.0 - a) * b[i]) * 255.0).round() as u8;
                }
                // Recover the exact α of the quantised colour (least squares along F − B).
                let (mut num, mut den) = (0.0f32, 0.0f32);
                for i in 0..3 {
                    let d = f[i] - b[i];
                    num += (c[i] as f32 / 255.0 - b[i]) * d;
                    den += d * d;
                }
                let a = num / den;
                truth[y * w + x] = a;
                let t = if field <= 0.0 {
                    0
                } else if field >= 1.0 {
                    255
                } else {
                    128
                };
                crop[[y, x, 0]] = c[0];
                crop[[y, x, 1]] = c[1];
                crop[[y, x, 2]] = c[2];
                crop[[y, x, 3]] = t;
            }
        }
        (crop, truth)
    }

    #[test]
    fn recovers_alpha_that_is_linear_in_colour() {
        let (w, h) = (96, 80);
        let (crop, truth) = linear_model_scene(w, h);
        let mut alpha = vec![0.5f32; w * h];
        let settings = RefineSettings {
            iterations: 600,
            radius: 1,
            levels: 3,
            epsilon: 1e-9,
            ..RefineSettings::laplacian()
        };
        let mut solver = LaplacianSolver::new();
        let report = solver.refine(&crop.view(), &mut alpha, &settings);
        assert!(report.unknown > w * h / 4, "scene has an unknown band");
        let worst = alpha
            .iter()
            .zip(&truth)
            .map(|(a, t)| (a - t).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "max |α − truth| = {worst}");
    }

    #[test]
    fn larger_windows_also_recover_the_linear_model() {
        let (w, h) = (96, 80);
        let (crop, truth) = linear_model_scene(w, h);
        let mut alpha = vec![0.5f32; w * h];
        let settings = RefineSettings {
            iterations: 300,
            radius: 3,
            levels: 2,
            epsilon: 1e-9,
            ..RefineSettings::laplacian()
        };
        LaplacianSolver::new().refine(&crop.view(), &mut alpha, &settings);
        let worst = alpha
            .iter()
            .zip(&truth)
            .map(|(a, t)| (a - t).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "max |α − truth| = {worst}");
    }

    fn noisy_scene(w: usize, h: usize, seed: u64) -> Array3<u8> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let mut crop = Array3::<u8>::zeros((h, w, 4));
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        for y in 0..h {
            for x in 0..w {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                let rad = w.min(h) as f32 / 3.0;
                for c in 0..3 {
                    crop[[y, x, c]] = (next() % 256) as u8;
                }
                crop[[y, x, 3]] = if d < rad - 4.0 {
                    255
                } else if d > rad + 4.0 {
                    0
                } else {
                    128
                };
            }
        }
        crop
    }

    #[test]
    fn residual_falls_and_known_pixels_never_change() {
        let (w, h) = (64, 48);
        let crop = noisy_scene(w, h, 7);
        let mut alpha: Vec<f32> = (0..w * h).map(|i| (i % 7) as f32 / 6.0).collect();
        alpha[5] = f32::NAN;
        alpha[w * h / 2 + w / 2] = f32::NAN;
        let settings = RefineSettings {
            iterations: 60,
            levels: 1,
            ..RefineSettings::laplacian()
        };
        let mut solver = LaplacianSolver::new();
        solver.refine(&crop.view(), &mut alpha, &settings);
        let res = solver.residuals();
        assert!(res.len() > 40, "initial residual plus one per iteration");
        let last = res[res.len() - 1];
        assert!(last < 1e-3 * res[0], "residual {} → {last}", res[0]);
        for k in [10, 20, 40] {
            assert!(res[k] < res[k / 2], "residual at {k} not below {}", k / 2);
        }
        for (i, a) in alpha.iter().enumerate() {
            let t = crop[[i / w, i % w, 3]];
            match t {
                0 => assert_eq!(*a, 0.0),
                255 => assert_eq!(*a, 1.0),
                _ => assert!((0.0..=1.0).contains(a), "unknown alpha {a}"),
            }
        }
    }

    #[test]
    fn data_term_pulls_towards_the_net() {
        let (w, h) = (64, 48);
        let crop = noisy_scene(w, h, 3);
        let net: Vec<f32> = (0..w * h)
            .map(|i| ((i * 37) % 101) as f32 / 100.0)
            .collect();
        let dist = |lambda: f32| {
            let mut alpha = net.clone();
            let settings = RefineSettings {
                iterations: 80,
                lambda,
                ..RefineSettings::laplacian()
            };
            LaplacianSolver::new().refine(&crop.view(), &mut alpha, &settings);
            alpha
                .iter()
                .zip(&net)
                .enumerate()
                .filter(|(i, _)| crop[[i / w, i % w, 3]] == 128)
                .map(|(_, (a, n))| (a - n).abs() as f64)
                .sum::<f64>()
        };
        let (free, some, held) = (dist(0.0), dist(10.0), dist(1000.0));
        assert!(
            some < free && held < 0.2 * some,
            "moved {free} > {some} > {held}"
        );
    }

    #[test]
    fn degenerate_crops_do_not_panic() {
        let mut solver = LaplacianSolver::new();
        let settings = RefineSettings::laplacian();
        for (w, h, t) in [
            (1, 1, 128u8),
            (1, 1, 255),
            (3, 1, 128),
            (1, 5, 128),
            (2, 2, 0),
            (17, 9, 128),
        ] {
            let mut crop = Array3::<u8>::zeros((h, w, 4));
            crop.slice_mut(ndarray::s![.., .., 3]).fill(t);
            let mut alpha = vec![0.3f32; w * h];
            solver.refine(&crop.view(), &mut alpha, &settings);
            for a in &alpha {
                assert!(a.is_finite() && (0.0..=1.0).contains(a), "{w}×{h}: {a}");
            }
            if t == 255 {
                assert!(alpha.iter().all(|&a| a == 1.0));
            }
        }
        // Buffers are reused across sizes: a big crop after small ones and back.
        let crop = noisy_scene(200, 120, 1);
        let mut alpha = vec![0.5f32; 200 * 120];
        solver.refine(&crop.view(), &mut alpha, &settings);
        let crop = noisy_scene(30, 20, 2);
        let mut alpha = vec![0.5f32; 30 * 20];
        solver.refine(&crop.view(), &mut alpha, &settings);
        assert!(alpha.iter().all(|a| a.is_finite()));
    }

    /// `L·p` written out window by window (Levin et al. eq. 12 with clipped windows).
    fn brute_force_product(level: &Level, p: &[f64], r: usize, eps: f64) -> Vec<f64> {
        let (w, h) = (level.w, level.h);
        let mut out = vec![0.0; w * h];
        for ky in 0..h {
            for kx in 0..w {
                let ys = ky.saturating_sub(r)..=(ky + r).min(h - 1);
                let xs = kx.saturating_sub(r)..=(kx + r).min(w - 1);
                let pix: Vec<usize> = ys
                    .flat_map(|y| xs.clone().map(move |x| y * w + x))
                    .collect();
                let n = pix.len() as f64;
                let mut m = [0.0; 3];
                for &i in &pix {
                    for c in 0..3 {
                        m[c] += level.img[i][c] / n;
                    }
                }
                let mut cov = [0.0; 6];
                for &i in &pix {
                    let d = [
                        level.img[i][0] - m[0],
                        level.img[i][1] - m[1],
                        level.img[i][2] - m[2],
                    ];
                    let prods = [
                        d[0] * d[0],
                        d[0] * d[1],
                        d[0] * d[2],
                        d[1] * d[1],
                        d[1] * d[2],
                        d[2] * d[2],
                    ];
                    for c in 0..6 {
                        cov[c] += prods[c] / n;
                    }
                }
                for c in [0, 3, 5] {
                    cov[c] += eps / n;
                }
                let inv = sym_inverse(cov);
                for &i in &pix {
                    let di = [
                        level.img[i][0] - m[0],
                        level.img[i][1] - m[1],
                        level.img[i][2] - m[2],
                    ];
                    let g = sym_mul(&inv, di);
                    for &j in &pix {
                        let dj = [
                            level.img[j][0] - m[0],
                            level.img[j][1] - m[1],
                            level.img[j][2] - m[2],
                        ];
                        let l = (i == j) as u8 as f64
                            - (1.0 + g[0] * dj[0] + g[1] * dj[1] + g[2] * dj[2]) / n;
                        out[i] += l * p[j];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn box_filter_product_equals_the_laplacian() {
        let (w, h) = (23, 17);
        let crop = noisy_scene(w, h, 11);
        for r in [1, 2, 3] {
            let mut solver = LaplacianSolver::new();
            let mut alpha: Vec<f32> = (0..w * h).map(|i| ((i * 13) % 17) as f32 / 16.0).collect();
            let settings = RefineSettings {
                iterations: 0,
                levels: 1,
                radius: r as u32,
                epsilon: 1e-4,
                ..RefineSettings::laplacian()
            };
            solver.refine(&crop.view(), &mut alpha, &settings);
            let level = &mut solver.levels[0];
            level.prepare(r, 1e-4, &mut solver.masks);
            // A dense p (like the full alpha) and one that is zero outside U (a CG direction).
            let dense: Vec<f64> = (0..w * h).map(|i| ((i * 7) % 11) as f64 / 10.0).collect();
            let sparse: Vec<f64> = dense
                .iter()
                .zip(&level.known)
                .map(|(&v, &k)| if k == 0 { v } else { 0.0 })
                .collect();
            for (name, p) in [("dense", &dense), ("sparse", &sparse)] {
                let expect = brute_force_product(level, p, r, 1e-4);
                let is_x = name == "dense";
                if is_x {
                    level.x.copy_from_slice(p);
                } else {
                    level.d.copy_from_slice(p);
                }
                level.apply(is_x);
                for i in 0..w * h {
                    if level.known[i] == 0 {
                        let tol = 1e-6 * expect[i].abs().max(1.0);
                        assert!(
                            (level.q[i] - expect[i]).abs() < tol,
                            "r={r} {name} pixel {i}: {} vs {}",
                            level.q[i],
                            expect[i]
                        );
                    }
                }
                // The preconditioner is the diagonal of the same matrix.
                if !is_x {
                    let mut e = vec![0.0; w * h];
                    let i = (0..w * h).find(|&i| level.known[i] == 0).unwrap();
                    e[i] = 1.0;
                    let col = brute_force_product(level, &e, r, 1e-4);
                    assert!((level.diag[i] - col[i]).abs() < 1e-6 * col[i].abs().max(1.0));
                }
            }
        }
    }

    #[test]
    fn dilation_is_a_rectangle() {
        let (w, h) = (9, 7);
        let mut mask = vec![0u8; w * h];
        mask[3 * w + 4] = 1;
        let (mut tmp, mut counts, mut out) = (Vec::new(), Vec::new(), Vec::new());
        dilate(&mask, w, h, 2, 1, &mut tmp, &mut counts, &mut out);
        for y in 0..h {
            for x in 0..w {
                let inside = (2..=6).contains(&x) && (2..=4).contains(&y);
                assert_eq!(out[y * w + x] != 0, inside, "({x}, {y})");
            }
        }
    }
}
