//! Alpha-matte quality metrics with the Composition-1k conventions of Deep Image Matting
//! (Xu et al. 2017; the MATLAB evaluation code released with it).
//!
//! All functions take the predicted alpha, the ground-truth alpha (both `width × height`, values
//! 0..1, row-major) and the trimap (0 background, 128 unknown, 255 foreground). Every error is
//! summed (or averaged, for MSE) over the **unknown** pixels of the trimap only:
//!
//! - SAD  = Σ|α̂ − α| / 1000
//! - MSE  = Σ(α̂ − α)² / #unknown
//! - Grad = Σ(‖∇α̂‖ − ‖∇α‖)² / 1000, gradients by Gaussian-derivative filters with σ = 1.4
//!   (`gaussgradient` of the reference code: normalised kernel, replicate borders)
//! - Conn = Σ|φ(α̂) − φ(α)| / 1000 with threshold step 0.1 and 4-connectivity
//!   (`compute_connectivity_error`)

/// Trimap value of the unknown region.
pub const UNKNOWN: u8 = 128;

/// All four errors of one image.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MatteErrors {
    pub sad: f64,
    pub mse: f64,
    pub grad: f64,
    pub conn: f64,
}

impl MatteErrors {
    /// Computes SAD, MSE, Grad and Conn of one image.
    pub fn compute(pred: &[f32], gt: &[f32], trimap: &[u8], width: usize, height: usize) -> Self {
        Self {
            sad: sad(pred, gt, trimap),
            mse: mse(pred, gt, trimap),
            grad: grad(pred, gt, trimap, width, height),
            conn: conn(pred, gt, trimap, width, height),
        }
    }

    /// The mean of several images' errors (Composition-1k reports the mean over the test set).
    pub fn mean(all: &[MatteErrors]) -> Self {
        let n = all.len().max(1) as f64;
        let mut m = Self::default();
        for e in all {
            m.sad += e.sad / n;
            m.mse += e.mse / n;
            m.grad += e.grad / n;
            m.conn += e.conn / n;
        }
        m
    }
}

fn check(pred: &[f32], gt: &[f32], trimap: &[u8]) {
    assert_eq!(
        pred.len(),
        gt.len(),
        "prediction and ground truth sizes differ"
    );
    assert_eq!(
        pred.len(),
        trimap.len(),
        "prediction and trimap sizes differ"
    );
}

/// Sum of absolute differences over the unknown region, divided by 1000.
pub fn sad(pred: &[f32], gt: &[f32], trimap: &[u8]) -> f64 {
    check(pred, gt, trimap);
    let mut s = 0.0f64;
    for ((&p, &g), &t) in pred.iter().zip(gt).zip(trimap) {
        if t == UNKNOWN {
            s += (p as f64 - g as f64).abs();
        }
    }
    s / 1000.0
}

/// Mean squared error over the unknown region (0 when there is no unknown pixel).
pub fn mse(pred: &[f32], gt: &[f32], trimap: &[u8]) -> f64 {
    check(pred, gt, trimap);
    let mut s = 0.0f64;
    let mut n = 0usize;
    for ((&p, &g), &t) in pred.iter().zip(gt).zip(trimap) {
        if t == UNKNOWN {
            let d = p as f64 - g as f64;
            s += d * d;
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// The x-derivative kernel of the reference `gaussgradient(IM, sigma)`:
/// `hx(i, j) = gauss(i - h, σ) · dgauss(j - h, σ)`, normalised to unit L2 norm.
/// Returns (kernel, half size); `kernel[i * size + j]`, i = row.
pub fn gauss_gradient_kernel(sigma: f64) -> (Vec<f64>, usize) {
    let epsilon = 1e-2f64;
    let half = (sigma
        * (-2.0 * ((2.0 * std::f64::consts::PI).sqrt() * sigma * epsilon).ln()).sqrt())
    .ceil() as usize;
    let size = 2 * half + 1;
    let gauss = |x: f64| {
        (-x * x / (2.0 * sigma * sigma)).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt())
    };
    let dgauss = |x: f64| -x * gauss(x) / (sigma * sigma);
    let mut k = vec![0.0f64; size * size];
    for i in 0..size {
        for j in 0..size {
            let u1 = i as f64 - half as f64;
            let u2 = j as f64 - half as f64;
            k[i * size + j] = gauss(u1) * dgauss(u2);
        }
    }
    let norm = k.iter().map(|v| v * v).sum::<f64>().sqrt();
    for v in &mut k {
        *v /= norm;
    }
    (k, half)
}

/// Gradient magnitude of `img` with the Gaussian-derivative filters (true convolution,
/// replicate borders, like `imfilter(IM, h, 'replicate', 'conv')`).
pub fn gradient_magnitude(img: &[f32], width: usize, height: usize, sigma: f64) -> Vec<f64> {
    let (kx, half) = gauss_gradient_kernel(sigma);
    let size = 2 * half + 1;
    let at = |y: isize, x: isize| -> f64 {
        let yy = y.clamp(0, height as isize - 1) as usize;
        let xx = x.clamp(0, width as isize - 1) as usize;
        img[yy * width + xx] as f64
    };
    let mut out = vec![0.0f64; width * height];
    for y in 0..height {
        for x in 0..width {
            let mut gx = 0.0;
            let mut gy = 0.0;
            // Convolution: out(y, x) = Σ k(i, j) · img(y + half - i, x + half - j).
            for i in 0..size {
                for j in 0..size {
                    let v = at(
                        y as isize + half as isize - i as isize,
                        x as isize + half as isize - j as isize,
                    );
                    gx += kx[i * size + j] * v;
                    // hy = hx' (transpose).
                    gy += kx[j * size + i] * v;
                }
            }
            out[y * width + x] = (gx * gx + gy * gy).sqrt();
        }
    }
    out
}

/// Gradient error over the unknown region, divided by 1000.
pub fn grad(pred: &[f32], gt: &[f32], trimap: &[u8], width: usize, height: usize) -> f64 {
    check(pred, gt, trimap);
    assert_eq!(pred.len(), width * height, "size");
    let pm = gradient_magnitude(pred, width, height, 1.4);
    let gm = gradient_magnitude(gt, width, height, 1.4);
    let mut s = 0.0;
    for i in 0..pred.len() {
        if trimap[i] == UNKNOWN {
            let d = pm[i] - gm[i];
            s += d * d;
        }
    }
    s / 1000.0
}

/// Pixels of the largest 4-connected component of `mask` (first found wins a tie, like
/// MATLAB's `max`). Empty when `mask` has no set pixel.
fn largest_component(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    let mut label = vec![0u32; mask.len()];
    let mut best_label = 0u32;
    let mut best_size = 0usize;
    let mut next = 0u32;
    let mut stack = Vec::new();
    // MATLAB scans column-major; scan the same way so ties resolve identically.
    for x in 0..width {
        for y in 0..height {
            let start = y * width + x;
            if !mask[start] || label[start] != 0 {
                continue;
            }
            next += 1;
            let mut size = 0usize;
            label[start] = next;
            stack.push(start);
            while let Some(p) = stack.pop() {
                size += 1;
                let (py, px) = (p / width, p % width);
                let mut visit = |q: usize| {
                    if mask[q] && label[q] == 0 {
                        label[q] = next;
                        stack.push(q);
                    }
                };
                if px > 0 {
                    visit(p - 1);
                }
                if px + 1 < width {
                    visit(p + 1);
                }
                if py > 0 {
                    visit(p - width);
                }
                if py + 1 < height {
                    visit(p + width);
                }
            }
            if size > best_size {
                best_size = size;
                best_label = next;
            }
        }
    }
    label.iter().map(|&l| l != 0 && l == best_label).collect()
}

/// Connectivity error over the unknown region (threshold step 0.1), divided by 1000.
pub fn conn(pred: &[f32], gt: &[f32], trimap: &[u8], width: usize, height: usize) -> f64 {
    check(pred, gt, trimap);
    assert_eq!(pred.len(), width * height, "size");
    let step = 0.1f64;
    let steps: Vec<f64> = (0..=10).map(|i| i as f64 * step).collect();
    let mut l_map = vec![-1.0f64; pred.len()];
    let mut both = vec![false; pred.len()];
    for ii in 1..steps.len() {
        let t = steps[ii];
        for i in 0..pred.len() {
            both[i] = pred[i] as f64 >= t && gt[i] as f64 >= t;
        }
        let omega = largest_component(&both, width, height);
        for i in 0..pred.len() {
            if l_map[i] == -1.0 && !omega[i] {
                l_map[i] = steps[ii - 1];
            }
        }
    }
    let mut s = 0.0;
    for i in 0..pred.len() {
        let l = if l_map[i] == -1.0 { 1.0 } else { l_map[i] };
        let pd = pred[i] as f64 - l;
        let gd = gt[i] as f64 - l;
        let pphi = 1.0 - if pd >= 0.15 { pd } else { 0.0 };
        let gphi = 1.0 - if gd >= 0.15 { gd } else { 0.0 };
        if trimap[i] == UNKNOWN {
            s += (pphi - gphi).abs();
        }
    }
    s / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: u8 = UNKNOWN;

    #[test]
    fn sad_and_mse_count_only_unknown_pixels() {
        let pred = [0.0, 0.5, 1.0, 0.25];
        let gt = [1.0, 0.0, 1.0, 0.75];
        let tri = [0, U, U, U];
        // |0.5| + 0 + |0.5| = 1.0 → /1000
        assert!((sad(&pred, &gt, &tri) - 0.001).abs() < 1e-12);
        // (0.25 + 0 + 0.25) / 3
        assert!((mse(&pred, &gt, &tri) - 0.5 / 3.0).abs() < 1e-12);
        assert_eq!(mse(&pred, &gt, &[0, 0, 255, 255]), 0.0);
    }

    #[test]
    fn gauss_kernel_matches_reference_shape() {
        let (k, half) = gauss_gradient_kernel(1.4);
        // halfsize = ceil(1.4 · sqrt(-2 ln(sqrt(2π)·1.4·0.01))) = ceil(1.4 · 2.5883) = ceil(3.62) = 4
        assert_eq!(half, 4);
        let size = 2 * half + 1;
        let norm: f64 = k.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-12);
        // Odd in x (columns), even in y (rows), zero in the centre column.
        for i in 0..size {
            assert!(k[i * size + half].abs() < 1e-15);
            for j in 0..size {
                assert!((k[i * size + j] + k[i * size + (size - 1 - j)]).abs() < 1e-15);
                assert!((k[i * size + j] - k[(size - 1 - i) * size + j]).abs() < 1e-15);
            }
        }
        // Negative for positive column offset (dgauss(u) = -u·g(u)/σ²).
        assert!(k[half * size + half + 1] < 0.0);
    }

    #[test]
    fn grad_of_identical_or_constant_images() {
        let w = 7;
        let h = 6;
        let a: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 / w as f32).collect();
        let tri = vec![U; w * h];
        assert_eq!(grad(&a, &a, &tri, w, h), 0.0);
        // Constant images have zero gradient, so comparing a ramp with a constant gives the
        // ramp's squared gradient magnitude; with replicate borders the interior gradient of a
        // linear ramp of slope s is s · Σ_j |j|·|k| ... simply check the exact value against a
        // direct evaluation of the definition.
        let c = vec![0.5f32; w * h];
        let gm = gradient_magnitude(&a, w, h, 1.4);
        let expect: f64 = gm.iter().map(|v| v * v).sum::<f64>() / 1000.0;
        assert!((grad(&a, &c, &tri, w, h) - expect).abs() < 1e-12);
        assert!(
            gradient_magnitude(&c, w, h, 1.4)
                .iter()
                .all(|v| v.abs() < 1e-12)
        );
    }

    #[test]
    fn grad_of_a_linear_ramp_interior() {
        // Away from the borders, the x-gradient of f(x) = x is -Σ_ij k(i,j)·(j - half)
        // (convolution flips the kernel), a constant.
        let (k, half) = gauss_gradient_kernel(1.4);
        let size = 2 * half + 1;
        let mut expect = 0.0;
        for i in 0..size {
            for j in 0..size {
                expect += k[i * size + j] * (half as f64 - j as f64);
            }
        }
        let w = 2 * size + 1;
        let h = 2 * size + 1;
        let img: Vec<f32> = (0..w * h).map(|i| (i % w) as f32).collect();
        let gm = gradient_magnitude(&img, w, h, 1.4);
        let centre = (h / 2) * w + w / 2;
        assert!(
            (gm[centre] - expect.abs()).abs() < 1e-9,
            "{} vs {}",
            gm[centre],
            expect
        );
    }

    #[test]
    fn conn_hand_computed() {
        // 1×3 image. gt = [1, 1, 0]; pred = [1, 0, 0].
        // For every threshold t in 0.1..1, pred≥t & gt≥t = [1,0,0]; the largest component is
        // pixel 0. Pixels 1 and 2 are outside omega at the first step → l = 0.0 there.
        // Pixel 0 is always inside → l = -1 → 1.
        // phi: pixel 0: d = 1 - 1 = 0 → phi 1 for both. Pixel 1: pred d = 0 → phi 1;
        // gt d = 1 ≥ 0.15 → phi 0 → |1 - 0| = 1. Pixel 2: both 0 → 1.
        let pred = [1.0, 0.0, 0.0];
        let gt = [1.0, 1.0, 0.0];
        let tri = [U, U, U];
        assert!((conn(&pred, &gt, &tri, 3, 1) - 0.001).abs() < 1e-12);
        // Only the unknown pixel 1 counts; the same value.
        assert!((conn(&pred, &gt, &[0, U, 255], 3, 1) - 0.001).abs() < 1e-12);
        assert_eq!(conn(&gt, &gt, &tri, 3, 1), 0.0);
    }

    #[test]
    fn conn_partial_level() {
        // 1×2: gt = [0.55, 0.55], pred = [0.55, 0.35]; both ≥ t for t ≤ 0.3 on both pixels
        // (one component of 2); at t = 0.4 only pixel 0 → pixel 1 leaves omega: l = 0.3.
        // Pixel 0 leaves at t = 0.6: l = 0.5.
        // Pixel 0: d = 0.05 < 0.15 → phi 1 for both. Pixel 1: pred d = 0.05 → 1;
        // gt d = 0.25 → 0.75 → |1 - 0.75| = 0.25.
        let pred = [0.55, 0.35];
        let gt = [0.55, 0.55];
        let tri = [U, U];
        assert!((conn(&pred, &gt, &tri, 2, 1) - 0.00025).abs() < 1e-9);
    }

    #[test]
    fn largest_component_is_4_connected() {
        // Diagonal pixels are not 4-connected.
        let m = [true, false, false, true];
        let c = largest_component(&m, 2, 2);
        assert_eq!(c.iter().filter(|&&b| b).count(), 1);
        let m = [true, true, false, true];
        let c = largest_component(&m, 2, 2);
        assert_eq!(c, vec![true, true, false, true]);
    }

    #[test]
    fn mean_of_errors() {
        let a = MatteErrors {
            sad: 1.0,
            mse: 0.1,
            grad: 2.0,
            conn: 3.0,
        };
        let b = MatteErrors {
            sad: 3.0,
            mse: 0.3,
            grad: 4.0,
            conn: 5.0,
        };
        let m = MatteErrors::mean(&[a, b]);
        assert!((m.sad - 2.0).abs() < 1e-12 && (m.mse - 0.2).abs() < 1e-12);
        assert!((m.grad - 3.0).abs() < 1e-12 && (m.conn - 4.0).abs() < 1e-12);
    }
}
