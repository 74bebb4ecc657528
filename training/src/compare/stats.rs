//! Paired comparisons of two methods on the same test images: the mean per-image difference
//! with a percentile bootstrap 95 % confidence interval (images resampled with replacement).

use serde::{Deserialize, Serialize};
use slimmatte_measure::rng::Rng;

/// A mean difference and its 95 % interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// Whether the interval lies wholly on one side of zero.
    pub fn excludes_zero(&self) -> bool {
        self.lo > 0.0 || self.hi < 0.0
    }
}

/// Mean of `v` (0 when empty).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation of `v` (0 with fewer than two values).
pub fn sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// The `q` quantile of sorted `v` (linear interpolation).
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Mean of `a[i] − b[i]` over the images with a percentile bootstrap 95 % interval from `reps`
/// resamples of the images (deterministic from `seed`). `a` and `b` must pair up image by image.
pub fn paired_bootstrap(a: &[f64], b: &[f64], reps: usize, seed: u64) -> Interval {
    assert_eq!(a.len(), b.len(), "paired samples must have the same images");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let m = mean(&d);
    if d.len() < 2 || reps == 0 {
        return Interval {
            mean: m,
            lo: m,
            hi: m,
        };
    }
    let mut rng = Rng::new(seed);
    let n = d.len();
    let mut means: Vec<f64> = (0..reps)
        .map(|_| (0..n).map(|_| d[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(|x, y| x.total_cmp(y));
    Interval {
        mean: m,
        lo: quantile_sorted(&means, 0.025),
        hi: quantile_sorted(&means, 0.975),
    }
}

/// Per-image means over several runs (seeds) of one method: `runs[s][i]` → mean over s.
pub fn mean_over_runs(runs: &[&[f64]]) -> Vec<f64> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| runs.iter().map(|r| r[i]).sum::<f64>() / runs.len() as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(n: usize, seed: u64, scale: f64) -> Vec<f64> {
        let mut r = Rng::new(seed);
        (0..n).map(|_| (r.f32() as f64 - 0.5) * scale).collect()
    }

    #[test]
    fn a_constant_shift_has_a_zero_width_interval_at_the_shift() {
        let b = noisy(300, 1, 2.0);
        let a: Vec<f64> = b.iter().map(|x| x + 0.25).collect();
        let i = paired_bootstrap(&a, &b, 500, 7);
        assert!((i.mean - 0.25).abs() < 1e-9);
        assert!((i.lo - 0.25).abs() < 1e-9 && (i.hi - 0.25).abs() < 1e-9);
        assert!(i.excludes_zero());
    }

    #[test]
    fn pure_noise_gives_an_interval_around_zero_and_a_real_gap_excludes_it() {
        let b = noisy(300, 2, 1.0);
        let e = noisy(300, 3, 1.0);
        // Difference = independent noise with sd ≈ 0.29: the mean is within ±0.04 of 0.
        let a: Vec<f64> = b.iter().zip(&e).map(|(x, y)| x + y).collect();
        let i = paired_bootstrap(&a, &b, 1000, 9);
        assert!(i.lo < i.mean && i.mean < i.hi);
        assert!(!i.excludes_zero(), "{i:?}");
        // Width ≈ 2 · 1.96 · 0.29 / √300 ≈ 0.066.
        assert!((0.04..0.1).contains(&(i.hi - i.lo)), "{i:?}");
        let shifted: Vec<f64> = a.iter().map(|x| x + 0.2).collect();
        assert!(paired_bootstrap(&shifted, &b, 1000, 9).excludes_zero());
    }

    #[test]
    fn means_over_runs_are_per_image() {
        let r1 = [1.0, 2.0, 3.0];
        let r2 = [3.0, 2.0, 1.0];
        assert_eq!(mean_over_runs(&[&r1, &r2]), vec![2.0, 2.0, 2.0]);
        assert!((sd(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
    }
}
