//! Foreground and background colour estimation from an alpha matte: the multilevel method of
//! Germer, Uelwer, Conrad and Harmeling, "Fast multi-level foreground estimation" (ICPR 2020),
//! the algorithm behind pymatting's `estimate_foreground_ml`.
//!
//! A matte alone is not enough to cut a subject out cleanly: at soft edges (hair, motion blur)
//! the observed colour `I = α·F + (1−α)·B` still contains the old background, which shows as a
//! halo when composited over a new one. This module recovers `F` and `B` per pixel by minimising
//!
//! ```text
//! Σ_p (α_p F_p + (1−α_p) B_p − I_p)²  +  Σ_{p~q} w_pq (‖F_p − F_q‖² + ‖B_p − B_q‖²),
//! w_pq = regularization + gradient_weight · |α_p − α_q|
//! ```
//!
//! over 4-neighbours, coarse to fine: the image and matte are resized (nearest neighbour) to
//! `n_levels + 1` sizes growing geometrically from 1×1 to full resolution, and on each level a
//! few Gauss-Seidel sweeps solve, for every pixel in turn, the 2×2 system of that pixel's
//! `F`, `B` with its neighbours held fixed. The result of one level, upsampled, starts the next,
//! so colour propagates across large unknown regions in a handful of sweeps.
//!
//! Results match pymatting 1.1.14 (same level sizes, same initialisation, same sweep order and
//! clamping) to within 1e-6 per value; see the parity tests. Meant for offline use (data
//! preparation): single-threaded, about 8 ms per 256×256 image, about as fast as pymatting's
//! numba version. For video frames, [`fusion`] has the real-time estimator the compositor uses.

pub mod fusion;

pub use fusion::BlurFusion;

/// Parameters of [`estimate_foreground`]. The defaults are pymatting's, so results are
/// comparable with `estimate_foreground_ml(image, alpha)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForegroundSettings {
    /// Base weight `ε` of the smoothness term between neighbours (pymatting's
    /// `regularization`, default 1e-5). Must be positive: it keeps every per-pixel system
    /// solvable where α is flat; larger values give smoother, flatter colours.
    pub regularization: f32,
    /// Extra smoothness weight per unit of alpha difference between neighbours (pymatting's
    /// `gradient_weight`, default 1.0). Colour propagates mostly across matte edges, where the
    /// observation alone cannot separate `F` from `B`; larger values smooth more there.
    pub gradient_weight: f32,
    /// Side length at or below which a level counts as small (both width and height, as in
    /// pymatting; default 32). Small levels are cheap, so they get more sweeps.
    pub small_size: usize,
    /// Gauss-Seidel sweeps on each small level (default 10): these levels settle the colours
    /// that the large levels only refine.
    pub small_iterations: usize,
    /// Gauss-Seidel sweeps on each larger level (default 2), which dominate the run time.
    pub big_iterations: usize,
}

impl Default for ForegroundSettings {
    /// pymatting's defaults: regularization 1e-5, gradient weight 1, small size 32, 10 small
    /// and 2 big iterations.
    fn default() -> Self {
        Self {
            regularization: 1e-5,
            gradient_weight: 1.0,
            small_size: 32,
            small_iterations: 10,
            big_iterations: 2,
        }
    }
}

/// Estimates the foreground and background colours of every pixel given the matte, so that
/// `α·F + (1−α)·B ≈ image` with `F`, `B` spatially smooth (see the module docs).
///
/// `image` is `width × height` RGB, interleaved row-major (HWC), with values in `0..=1`;
/// `alpha` is `width × height` values in `0..=1`. Returns `(foreground, background)` in the
/// layout of `image`, every value clamped to `0..=1`. `F` is meaningful where α > 0 and `B`
/// where α < 1; elsewhere they are smooth extrapolations.
///
/// # Panics
///
/// If `width` or `height` is zero, if `image.len() != width * height * 3` or
/// `alpha.len() != width * height`, or if `settings.regularization` is not positive and finite
/// or `settings.gradient_weight` is negative or not finite.
pub fn estimate_foreground(
    image: &[f32],
    alpha: &[f32],
    width: usize,
    height: usize,
    settings: &ForegroundSettings,
) -> (Vec<f32>, Vec<f32>) {
    assert!(
        width > 0 && height > 0,
        "estimate_foreground: image size {width}x{height} is empty"
    );
    let pixels = width
        .checked_mul(height)
        .filter(|n| n.checked_mul(3).is_some())
        .unwrap_or_else(|| panic!("estimate_foreground: image size {width}x{height} overflows"));
    assert_eq!(
        image.len(),
        pixels * 3,
        "estimate_foreground: image has {} values, expected {width}x{height}x3 = {}",
        image.len(),
        pixels * 3
    );
    assert_eq!(
        alpha.len(),
        pixels,
        "estimate_foreground: alpha has {} values, expected {width}x{height} = {pixels}",
        alpha.len()
    );
    assert!(
        settings.regularization.is_finite() && settings.regularization > 0.0,
        "estimate_foreground: regularization must be positive and finite, got {}",
        settings.regularization
    );
    assert!(
        settings.gradient_weight.is_finite() && settings.gradient_weight >= 0.0,
        "estimate_foreground: gradient_weight must be non-negative and finite, got {}",
        settings.gradient_weight
    );

    // The 1×1 start: mean colour of the (nearly) opaque pixels for F and of the (nearly)
    // transparent ones for B, divided by `count + 1e-5` as pymatting does (so an empty set
    // gives black rather than NaN).
    let (mut fg, mut bg) = (vec![0.0f32; 3], vec![0.0f32; 3]);
    {
        let (mut f_sum, mut b_sum) = ([0.0f64; 3], [0.0f64; 3]);
        let (mut f_count, mut b_count) = (0usize, 0usize);
        for (&a, rgb) in alpha.iter().zip(image.chunks_exact(3)) {
            if a > 0.9 {
                f_count += 1;
                f_sum
                    .iter_mut()
                    .zip(rgb)
                    .for_each(|(s, &v)| *s += f64::from(v));
            }
            if a < 0.1 {
                b_count += 1;
                b_sum
                    .iter_mut()
                    .zip(rgb)
                    .for_each(|(s, &v)| *s += f64::from(v));
            }
        }
        for c in 0..3 {
            fg[c] = (f_sum[c] / (f_count as f64 + 1e-5)) as f32;
            bg[c] = (b_sum[c] / (b_count as f64 + 1e-5)) as f32;
        }
    }
    let (mut prev_w, mut prev_h) = (1, 1);

    let n_levels = level_count(width.max(height));
    for level in 0..=n_levels {
        let w = level_size(width, level, n_levels);
        let h = level_size(height, level, n_levels);

        // Level buffers, allocated once per level: the inputs resized from full resolution,
        // F and B carried up from the previous level.
        let level_image = resize_nearest(image, width, height, w, h, 3);
        let level_alpha = resize_nearest(alpha, width, height, w, h, 1);
        fg = resize_nearest(&fg, prev_w, prev_h, w, h, 3);
        bg = resize_nearest(&bg, prev_w, prev_h, w, h, 3);

        let iterations = if w <= settings.small_size && h <= settings.small_size {
            settings.small_iterations
        } else {
            settings.big_iterations
        };
        for _ in 0..iterations {
            sweep(&level_image, &level_alpha, &mut fg, &mut bg, w, h, settings);
        }
        (prev_w, prev_h) = (w, h);
    }
    (fg, bg)
}

/// Number of levels above 1×1: `ceil(log2(max_side))`, computed exactly on integers.
fn level_count(max_side: usize) -> usize {
    (usize::BITS - (max_side - 1).leading_zeros()) as usize
}

/// Side of `level` out of `n_levels` for a full side `full`: `round(full^(level / n_levels))`
/// in f64 with ties to even, as Python's `round` in pymatting (at least 1; the full size when
/// there is only the one level).
fn level_size(full: usize, level: usize, n_levels: usize) -> usize {
    if n_levels == 0 {
        return full;
    }
    let size = (full as f64).powf(level as f64 / n_levels as f64);
    (size.round_ties_even() as usize).clamp(1, full)
}

/// Nearest-neighbour resize of an interleaved `channels`-channel image, with pymatting's
/// sampling `src_x = dst_x * src_w / dst_w` (integer division).
fn resize_nearest(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    channels: usize,
) -> Vec<f32> {
    if (src_w, src_h) == (dst_w, dst_h) {
        return src.to_vec();
    }
    let mut dst = Vec::with_capacity(dst_w * dst_h * channels);
    for y in 0..dst_h {
        let sy = (y * src_h / dst_h).min(src_h - 1);
        let row = &src[sy * src_w * channels..(sy + 1) * src_w * channels];
        for x in 0..dst_w {
            let sx = (x * src_w / dst_w).min(src_w - 1);
            dst.extend_from_slice(&row[sx * channels..(sx + 1) * channels]);
        }
    }
    dst
}

/// One Gauss-Seidel sweep over a level in row-major order, updating `fg` and `bg` in place
/// (so later pixels already see their updated left and upper neighbours, as in pymatting).
///
/// Per pixel `p` with `a = α_p`, neighbours `q` (left, right, up, down, clamped at the border,
/// so a border pixel counts itself) and weights `w_q`, the normal equations are, per channel,
///
/// ```text
/// [a² + Σw    a(1−a)    ] [F]   [a·I     + Σ w_q F_q]
/// [a(1−a)     (1−a)²+Σw ] [B] = [(1−a)·I + Σ w_q B_q]
/// ```
///
/// solved in f64 (the determinant cancels the `a²(1−a)²` terms, leaving `Σw`-sized values)
/// and clamped to `0..=1`.
fn sweep(
    image: &[f32],
    alpha: &[f32],
    fg: &mut [f32],
    bg: &mut [f32],
    w: usize,
    h: usize,
    settings: &ForegroundSettings,
) {
    let (regularization, gradient_weight) = (settings.regularization, settings.gradient_weight);
    for y in 0..h {
        let up = y.saturating_sub(1);
        let down = (y + 1).min(h - 1);
        for x in 0..w {
            let p = y * w + x;
            let neighbours = [
                p - x + x.saturating_sub(1),
                p - x + (x + 1).min(w - 1),
                up * w + x,
                down * w + x,
            ];
            let a0 = alpha[p];
            let a = f64::from(a0);
            let (mut a00, a01, mut a11) = (a * a, a * (1.0 - a), (1.0 - a) * (1.0 - a));
            let pixel = &image[3 * p..3 * p + 3];
            let mut rhs_f = [0.0f64; 3];
            let mut rhs_b = [0.0f64; 3];
            for c in 0..3 {
                rhs_f[c] = a * f64::from(pixel[c]);
                rhs_b[c] = (1.0 - a) * f64::from(pixel[c]);
            }
            for q in neighbours {
                let weight = f64::from(regularization + gradient_weight * (a0 - alpha[q]).abs());
                a00 += weight;
                a11 += weight;
                for c in 0..3 {
                    rhs_f[c] += weight * f64::from(fg[3 * q + c]);
                    rhs_b[c] += weight * f64::from(bg[3 * q + c]);
                }
            }
            let inv_det = 1.0 / (a00 * a11 - a01 * a01);
            let (b00, b01, b11) = (inv_det * a11, -inv_det * a01, inv_det * a00);
            for c in 0..3 {
                fg[3 * p + c] = (b00 * rhs_f[c] + b01 * rhs_b[c]).clamp(0.0, 1.0) as f32;
                bg[3 * p + c] = (b01 * rhs_f[c] + b11 * rhs_b[c]).clamp(0.0, 1.0) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smooth parity scene at `w`×`h`, computed in f64 and rounded to f32 (the same
    /// formula as the Python snippet at [`PYMATTING_SMOOTH`]): smooth F and B, an off-centre
    /// elliptical matte with a soft ramp, `I = αF + (1−α)B`.
    fn smooth_scene(w: usize, h: usize) -> (Vec<f32>, Vec<f32>, usize, usize) {
        let (mut image, mut alpha) = (Vec::new(), Vec::new());
        let (wf, hf) = (w as f64, h as f64);
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f64, y as f64);
                let (u, v) = (xf / (wf - 1.0), yf / (hf - 1.0));
                let f = [
                    0.2 + 0.6 * u,
                    0.8 - 0.5 * v,
                    0.5 + 0.3 * (2.0 * std::f64::consts::PI * (u + v)).sin(),
                ];
                let b = [0.1 + 0.3 * v, 0.3 + 0.4 * u * v, 0.9 - 0.6 * u];
                let r = (((xf - 0.48 * wf) / (0.3125 * wf)).powi(2)
                    + ((yf - 0.47 * hf) / (0.29 * hf)).powi(2))
                .sqrt();
                let a = ((1.15 - r) / 0.3).clamp(0.0, 1.0);
                alpha.push(a as f32);
                for c in 0..3 {
                    image.push((a * f[c] + (1.0 - a) * b[c]) as f32);
                }
            }
        }
        (image, alpha, w, h)
    }

    /// Reference values from pymatting 1.1.14 on [`smooth_scene`] at 64×48, default settings
    /// (rows: x, y, F, B):
    ///
    /// ```python
    /// import numpy as np
    /// from pymatting import estimate_foreground_ml
    /// def scene(W, H):
    ///     y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    ///     u, v = x / (W - 1), y / (H - 1)
    ///     F = np.stack([0.2 + 0.6*u, 0.8 - 0.5*v, 0.5 + 0.3*np.sin(2*np.pi*(u + v))], -1)
    ///     B = np.stack([0.1 + 0.3*v, 0.3 + 0.4*u*v, 0.9 - 0.6*u], -1)
    ///     r = np.sqrt(((x - 0.48*W)/(0.3125*W))**2 + ((y - 0.47*H)/(0.29*H))**2)
    ///     a = np.clip((1.15 - r)/0.3, 0.0, 1.0)
    ///     I = a[..., None]*F + (1 - a[..., None])*B
    ///     return I.astype(np.float32), a.astype(np.float32)
    /// Fe, Be = estimate_foreground_ml(*scene(64, 48), return_background=True)
    /// ```
    const PYMATTING_SMOOTH: [(usize, usize, [f32; 3], [f32; 3]); 14] = [
        (
            0,
            0,
            [0.409771, 0.619606, 0.302121],
            [0.100000, 0.300000, 0.900000],
        ),
        (
            63,
            47,
            [0.608091, 0.493521, 0.750189],
            [0.400000, 0.700000, 0.300000],
        ),
        (
            63,
            0,
            [0.596152, 0.631055, 0.488664],
            [0.100000, 0.300000, 0.300000],
        ),
        (
            0,
            47,
            [0.379843, 0.507412, 0.360242],
            [0.400000, 0.300000, 0.900000],
        ),
        (
            30,
            22,
            [0.485714, 0.565957, 0.397095],
            [0.206161, 0.363344, 0.642260],
        ),
        (
            12,
            22,
            [0.328040, 0.575531, 0.238670],
            [0.208582, 0.315515, 0.816376],
        ),
        (
            48,
            30,
            [0.639834, 0.490000, 0.744000],
            [0.304463, 0.488683, 0.392874],
        ),
        (
            22,
            10,
            [0.414092, 0.680912, 0.334355],
            [0.157130, 0.337706, 0.732379],
        ),
        (
            40,
            34,
            [0.575394, 0.442047, 0.753928],
            [0.330622, 0.481934, 0.481705],
        ),
        (
            31,
            36,
            [0.486446, 0.426411, 0.788686],
            [0.344226, 0.440098, 0.622079],
        ),
        (
            50,
            15,
            [0.644747, 0.637564, 0.612860],
            [0.200182, 0.400926, 0.437974],
        ),
        (
            5,
            40,
            [0.370450, 0.508934, 0.339205],
            [0.355319, 0.327018, 0.852381],
        ),
        (
            20,
            30,
            [0.390476, 0.480851, 0.417676],
            [0.299696, 0.364402, 0.760609],
        ),
        (
            44,
            9,
            [0.608666, 0.663459, 0.422481],
            [0.157967, 0.354144, 0.480358],
        ),
    ];

    /// pymatting on [`smooth_scene`] at 96×12 (`scene(96, 12)` above). Its level 50×8 has
    /// an area below `small_size²` but a side above `small_size`: pymatting (and this
    /// module) treat it as big, 2 sweeps; counting it as small changes F by up to 0.11.
    const PYMATTING_WIDE: [(usize, usize, [f32; 3], [f32; 3]); 10] = [
        (
            0,
            0,
            [0.361250, 0.555071, 0.283341],
            [0.100000, 0.300000, 0.900000],
        ),
        (
            95,
            11,
            [0.639993, 0.552086, 0.712279],
            [0.400000, 0.700000, 0.300000],
        ),
        (
            47,
            5,
            [0.496842, 0.572727, 0.406010],
            [0.197503, 0.370037, 0.616498],
        ),
        (
            20,
            6,
            [0.328442, 0.528462, 0.207853],
            [0.252662, 0.331091, 0.794624],
        ),
        (
            75,
            4,
            [0.656085, 0.571777, 0.744090],
            [0.211516, 0.421631, 0.431840],
        ),
        (
            60,
            9,
            [0.571801, 0.440082, 0.739108],
            [0.355973, 0.498309, 0.485067],
        ),
        (
            33,
            2,
            [0.405546, 0.653955, 0.283460],
            [0.149446, 0.326181, 0.704259],
        ),
        (
            88,
            7,
            [0.644817, 0.551327, 0.721975],
            [0.290909, 0.535789, 0.344211],
        ),
        (
            12,
            10,
            [0.339836, 0.547079, 0.250968],
            [0.372727, 0.345933, 0.824210],
        ),
        (
            70,
            1,
            [0.622486, 0.610223, 0.620139],
            [0.127273, 0.326794, 0.457895],
        ),
    ];

    /// Second parity scene, 40×30, exact in f32 (integer formulas): opaque except a
    /// transparent 10×10 hole (x 26..36, y 5..15) and a bottom band (y ≥ 20) of striped
    /// alpha `(x mod 7) / 6`; the image is a saturated 0/1 pattern per channel that is no
    /// composite of smooth layers, so clamping is active and the unobservable B inside the
    /// opaque area depends on the mean-colour initialisation.
    fn saturated_scene() -> (Vec<f32>, Vec<f32>, usize, usize) {
        let (w, h) = (40usize, 30usize);
        let (mut image, mut alpha) = (Vec::new(), Vec::new());
        for y in 0..h {
            for x in 0..w {
                let a = if y >= 20 {
                    (x % 7) as f32 / 6.0
                } else if (5..15).contains(&y) && (26..36).contains(&x) {
                    0.0
                } else {
                    1.0
                };
                alpha.push(a);
                for c in 0..3 {
                    let on = (x * (c + 1) + y * (3 - c)) % 5 < 2;
                    image.push(if on { 1.0 } else { 0.0 });
                }
            }
        }
        (image, alpha, w, h)
    }

    /// pymatting 1.1.14 on [`saturated_scene`], default settings, as for [`PYMATTING_SMOOTH`]
    /// with the scene built by
    ///
    /// ```python
    /// W, H = 40, 30
    /// y, x = np.mgrid[0:H, 0:W]
    /// a = np.ones((H, W)); a[5:15, 26:36] = 0.0; a[20:, :] = (x[20:, :] % 7) / 6.0
    /// I = np.stack([((x*(c+1) + y*(3-c)) % 5 < 2).astype(float) for c in range(3)], -1)
    /// ```
    const PYMATTING_SATURATED: [(usize, usize, [f32; 3], [f32; 3]); 10] = [
        (
            0,
            0,
            [0.999990, 0.999980, 0.999990],
            [0.489708, 0.304081, 0.320711],
        ),
        (
            39,
            29,
            [0.978667, 1.000000, 1.000000],
            [0.916040, 0.419181, 0.527280],
        ),
        (
            30,
            9,
            [0.432080, 0.649087, 0.363823],
            [0.000020, 0.000040, 0.000020],
        ),
        (
            20,
            10,
            [0.999970, 0.999960, 0.999970],
            [0.196081, 0.323075, 0.379510],
        ),
        (
            5,
            3,
            [0.000020, 0.999960, 0.000020],
            [0.448964, 0.291988, 0.324523],
        ),
        (
            10,
            22,
            [0.768173, 0.170978, 0.398203],
            [0.818264, 0.159606, 0.000000],
        ),
        (
            13,
            25,
            [0.006525, 0.646567, 0.240157],
            [0.425820, 0.473554, 0.451022],
        ),
        (
            33,
            27,
            [0.106365, 0.942325, 0.769542],
            [0.047707, 0.127998, 0.570628],
        ),
        (
            25,
            14,
            [0.125201, 0.000206, 0.062453],
            [0.000025, 0.342651, 0.333995],
        ),
        (
            36,
            5,
            [0.671687, 0.000021, 0.140540],
            [0.567105, 0.555528, 0.567127],
        ),
    ];

    /// Runs the default settings on a scene and compares with a pymatting table, to 2e-3
    /// (the observed difference is below 1e-6).
    fn assert_matches_pymatting(
        (image, alpha, w, h): (Vec<f32>, Vec<f32>, usize, usize),
        table: &[(usize, usize, [f32; 3], [f32; 3])],
    ) {
        let (fg, bg) = estimate_foreground(&image, &alpha, w, h, &ForegroundSettings::default());
        let mut max_err = 0.0f32;
        for &(x, y, f_ref, b_ref) in table {
            let p = 3 * (y * w + x);
            for c in 0..3 {
                max_err = max_err
                    .max((fg[p + c] - f_ref[c]).abs())
                    .max((bg[p + c] - b_ref[c]).abs());
            }
            assert!(
                (0..3)
                    .all(|c| (fg[p + c] - f_ref[c]).abs() < 2e-3
                        && (bg[p + c] - b_ref[c]).abs() < 2e-3),
                "({x}, {y}): F {:?} B {:?}, pymatting F {f_ref:?} B {b_ref:?}",
                &fg[p..p + 3],
                &bg[p..p + 3]
            );
        }
        eprintln!("{w}x{h}: max |rust - pymatting| over the table: {max_err:e}");
    }

    #[test]
    fn matches_pymatting_on_smooth_layers() {
        assert_matches_pymatting(smooth_scene(64, 48), &PYMATTING_SMOOTH);
    }

    #[test]
    fn matches_pymatting_on_a_wide_image() {
        assert_matches_pymatting(smooth_scene(96, 12), &PYMATTING_WIDE);
    }

    #[test]
    fn matches_pymatting_on_saturated_pattern() {
        assert_matches_pymatting(saturated_scene(), &PYMATTING_SATURATED);
    }

    #[test]
    fn level_sizes_follow_pymatting_rounding() {
        // `[round(n ** (i / ceil(log2(n)))) for i in range(ceil(log2(n)) + 1)]` in Python.
        for (n, want) in [
            (48, &[1, 2, 4, 7, 13, 25, 48][..]),
            (64, &[1, 2, 4, 8, 16, 32, 64]),
            (256, &[1, 2, 4, 8, 16, 32, 64, 128, 256]),
            (100, &[1, 2, 4, 7, 14, 27, 52, 100]),
            (37, &[1, 2, 3, 6, 11, 20, 37]),
            (7, &[1, 2, 4, 7]),
            (5, &[1, 2, 3, 5]),
            (3, &[1, 2, 3]),
        ] {
            let levels = level_count(n);
            let got: Vec<usize> = (0..=levels).map(|i| level_size(n, i, levels)).collect();
            assert_eq!(got, want, "side {n}");
        }
        // The shorter side follows the longer side's level count (20 with the 6 levels of 37).
        let got: Vec<usize> = (0..=6).map(|i| level_size(20, i, 6)).collect();
        assert_eq!(got, [1, 2, 3, 4, 7, 12, 20]);
    }

    #[test]
    fn recovers_piecewise_constant_layers_through_a_soft_edge() {
        // A disc of foreground with an 8-pixel-wide alpha ramp; F is red left of x = 24 and
        // blue right of it, B is yellow above y = 20 and grey below, so both layers have edges
        // running through the ramp. Measured: F error 0.0146, B error 0.0043, recomposition
        // mean 1.4e-4 / max 0.026 (pymatting gives the same). For contrast, ignoring the
        // alpha-gradient weights (gradient_weight 0) gives F 0.064 / B 0.019, and taking
        // F = B = I gives F 0.18 / B 0.055.
        let (w, h) = (48usize, 40usize);
        let f_of = |x: usize| {
            if x < 24 {
                [0.9, 0.15, 0.1]
            } else {
                [0.1, 0.2, 0.85]
            }
        };
        let b_of = |y: usize| {
            if y < 20 {
                [0.95, 0.9, 0.2]
            } else {
                [0.4, 0.4, 0.4]
            }
        };
        let (mut image, mut alpha, mut f_true, mut b_true) = (vec![], vec![], vec![], vec![]);
        for y in 0..h {
            for x in 0..w {
                let r = ((x as f32 - 23.5).powi(2) + (y as f32 - 19.5).powi(2)).sqrt();
                let a = ((15.0 - r) / 8.0).clamp(0.0, 1.0);
                let (f, b) = (f_of(x), b_of(y));
                alpha.push(a);
                for c in 0..3 {
                    image.push(a * f[c] + (1.0 - a) * b[c]);
                }
                f_true.extend(f);
                b_true.extend(b);
            }
        }
        let (fg, bg) = estimate_foreground(&image, &alpha, w, h, &ForegroundSettings::default());

        let (mut f_err, mut f_n, mut b_err, mut b_n) = (0.0, 0, 0.0, 0);
        let (mut comp_sum, mut comp_max) = (0.0, 0.0f32);
        for (p, &a) in alpha.iter().enumerate() {
            for c in 0..3 {
                let i = 3 * p + c;
                if a > 0.05 {
                    f_err += (fg[i] - f_true[i]).abs();
                    f_n += 1;
                }
                if a < 0.95 {
                    b_err += (bg[i] - b_true[i]).abs();
                    b_n += 1;
                }
                let comp = (a * fg[i] + (1.0 - a) * bg[i] - image[i]).abs();
                comp_sum += comp;
                comp_max = comp_max.max(comp);
            }
        }
        let (f_err, b_err) = (f_err / f_n as f32, b_err / b_n as f32);
        let comp_mean = comp_sum / image.len() as f32;
        eprintln!(
            "mean |F error| {f_err:e}, mean |B error| {b_err:e}, \
             recomposition mean {comp_mean:e} max {comp_max:e}"
        );
        assert!(f_err < 0.02, "mean foreground error {f_err}");
        assert!(b_err < 0.01, "mean background error {b_err}");
        assert!(comp_mean < 1e-3, "mean recomposition error {comp_mean}");
        assert!(comp_max < 0.05, "max recomposition error {comp_max}");
    }

    #[test]
    fn odd_and_tiny_sizes_stay_in_range() {
        for (w, h) in [(1, 1), (1, 7), (7, 1), (5, 3), (2, 2), (33, 5), (3, 70)] {
            let n = w * h;
            // Deterministic pseudo-random values with some exact 0 and 1 alphas.
            let hash = |i: usize| ((i.wrapping_mul(2_654_435_761) >> 7) % 1000) as f32 / 999.0;
            let image: Vec<f32> = (0..3 * n).map(|i| hash(i + 17)).collect();
            let alpha: Vec<f32> = (0..n)
                .map(|i| ((hash(i) - 0.25) * 2.0).clamp(0.0, 1.0))
                .collect();
            let (fg, bg) =
                estimate_foreground(&image, &alpha, w, h, &ForegroundSettings::default());
            assert_eq!((fg.len(), bg.len()), (3 * n, 3 * n), "{w}x{h}");
            assert!(
                fg.iter().chain(&bg).all(|v| (0.0..=1.0).contains(v)),
                "{w}x{h}: values out of 0..=1: F {fg:?} B {bg:?}"
            );
        }
        // A single opaque pixel: its F is its colour.
        let (fg, _) = estimate_foreground(&[0.2, 0.5, 0.7], &[1.0], 1, 1, &Default::default());
        assert!(
            fg.iter()
                .zip([0.2, 0.5, 0.7])
                .all(|(a, b)| (a - b).abs() < 1e-4),
            "{fg:?}"
        );
    }

    #[test]
    fn defaults_are_pymattings() {
        let s = ForegroundSettings::default();
        assert_eq!(
            (s.regularization, s.gradient_weight, s.small_size),
            (1e-5, 1.0, 32)
        );
        assert_eq!((s.small_iterations, s.big_iterations), (10, 2));
    }

    #[test]
    #[should_panic(expected = "alpha has 5 values")]
    fn rejects_mismatched_alpha() {
        estimate_foreground(&[0.0; 18], &[0.0; 5], 3, 2, &ForegroundSettings::default());
    }

    #[test]
    #[should_panic(expected = "image has 17 values")]
    fn rejects_mismatched_image() {
        estimate_foreground(&[0.0; 17], &[0.0; 6], 3, 2, &ForegroundSettings::default());
    }

    #[test]
    #[should_panic(expected = "is empty")]
    fn rejects_empty_size() {
        estimate_foreground(&[], &[], 0, 4, &ForegroundSettings::default());
    }
}
