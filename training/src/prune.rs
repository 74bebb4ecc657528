//! Channel selection: the paper's global |γ| threshold per encoder / decoder, uniform pruning,
//! FLOPs matching, and the latency-budget search with the project's own ONNX Runtime.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use tch::nn;

use crate::export;
use crate::nets::{Arch, BN_LAYERS, BnInit, Net, Part, enc_b};

/// Channels every layer keeps at least.
pub const MIN_KEEP: usize = 2;

/// `k` rounded up to a multiple of `round` (at most `c`). ONNX Runtime's blocked (NCHWc)
/// convolutions run channel counts that are multiples of 8/16 far faster than odd ones, so the
/// kept counts are rounded up for every method alike (`round` = 1 turns this off).
pub fn round_up(k: usize, round: usize, c: usize) -> usize {
    let r = round.max(1);
    (k.max(MIN_KEEP).div_ceil(r) * r).min(c)
}

/// Tied (skip-joined) layer pairs: their channels are kept or dropped together.
pub fn tied_pairs(arch: &Arch) -> Vec<(usize, usize)> {
    let t = arch.table();
    (0..crate::nets::LEVELS - 1)
        .map(|k| (enc_b(k), t[enc_b(k)].tied.expect("enc_b is tied")))
        .collect()
}

/// The `q` quantile (0..1) of `v` (linear interpolation).
pub fn quantile(v: &[f32], q: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let f = (pos - lo as f64) as f32;
    s[lo] * (1.0 - f) + s[hi] * f
}

/// The |γ| of the BatchNorm layers pooled per half: (encoder, decoder).
pub fn by_part(arch: &Arch, gammas: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let t = arch.table();
    let mut enc = Vec::new();
    let mut dec = Vec::new();
    for (i, g) in gammas.iter().enumerate().take(BN_LAYERS) {
        match t[i].part {
            Part::Encoder => enc.extend_from_slice(g),
            Part::Decoder => dec.extend_from_slice(g),
            Part::Head => {}
        }
    }
    (enc, dec)
}

/// Global thresholds at the `rate` quantile of |γ|, one for the encoder, one for the decoder.
pub fn thresholds(arch: &Arch, gammas: &[Vec<f32>], rate: f64) -> (f32, f32) {
    let (enc, dec) = by_part(arch, gammas);
    (quantile(&enc, rate), quantile(&dec, rate))
}

fn top_k(score: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let mut keep: Vec<usize> = idx.into_iter().take(k.min(score.len())).collect();
    keep.sort();
    keep
}

/// Per BatchNorm layer, the channels with the highest scores, as many as `count(scores)`
/// says; a tied pair is scored together by `pair(a, b)` and keeps the same channels.
fn select(
    arch: &Arch,
    pair: impl Fn(usize, usize) -> Vec<f32>,
    layer: impl Fn(usize) -> Vec<f32>,
    count: impl Fn(&[f32]) -> usize,
) -> Vec<Vec<usize>> {
    let mut keep: Vec<Option<Vec<usize>>> = vec![None; BN_LAYERS];
    for (a, b) in tied_pairs(arch) {
        let s = pair(a, b);
        let kept = top_k(&s, count(&s));
        keep[a] = Some(kept.clone());
        keep[b] = Some(kept);
    }
    for (i, slot) in keep.iter_mut().enumerate() {
        if slot.is_none() {
            let s = layer(i);
            *slot = Some(top_k(&s, count(&s)));
        }
    }
    keep.into_iter()
        .map(|k| k.expect("all layers selected"))
        .collect()
}

/// The paper's selection: keep channel c of a layer when |γ_c| is above its half's threshold;
/// a tied pair keeps c when either layer needs it. At least [`MIN_KEEP`] channels per layer.
pub fn select_by_gamma(
    arch: &Arch,
    gammas: &[Vec<f32>],
    rate: f64,
    round: usize,
) -> Vec<Vec<usize>> {
    let t = arch.table();
    let (te, td) = thresholds(arch, gammas, rate);
    let thr = |i: usize| if t[i].part == Part::Encoder { te } else { td };
    // Score relative to the layer's threshold: > 1 means kept.
    let score =
        |i: usize| -> Vec<f32> { gammas[i].iter().map(|&g| g / thr(i).max(1e-12)).collect() };
    select(
        arch,
        |a, b| {
            let (sa, sb) = (score(a), score(b));
            sa.iter().zip(&sb).map(|(x, y)| x.max(*y)).collect()
        },
        score,
        |s| round_up(s.iter().filter(|&&v| v > 1.0).count(), round, s.len()),
    )
}

/// The paper's selection at an exact prune rate and without rounding (issue #14's
/// comparisons): [`select_by_gamma`] with `round` = 1 on |γ| whose ties are broken by the
/// filter L1 norm `norms` (a proximal sparsity run leaves many |γ| at exactly 0; without a
/// tie-break the quantile threshold would then be 0 and prune every zero, whatever the rate).
pub fn select_at_rate(
    arch: &Arch,
    gammas: &[Vec<f32>],
    norms: &[Vec<f32>],
    rate: f64,
) -> Vec<Vec<usize>> {
    let max_norm = norms
        .iter()
        .flatten()
        .copied()
        .fold(0.0f32, f32::max)
        .max(1e-12);
    let max_gamma = gammas
        .iter()
        .flatten()
        .copied()
        .fold(0.0f32, f32::max)
        .max(1e-12);
    // The tie-break moves no |γ| past another one: it is below the spacing of distinct f32 |γ|
    // that matter (1e-6 of the largest |γ|).
    let eps = 1e-6 * max_gamma;
    let scores: Vec<Vec<f32>> = gammas
        .iter()
        .zip(norms)
        .map(|(g, n)| {
            g.iter()
                .zip(n)
                .map(|(&g, &n)| g.abs() + eps * n / max_norm)
                .collect()
        })
        .collect();
    select_by_gamma(arch, &scores, rate, 1)
}

/// The fraction of channels each layer kept, pooled: kept / total.
pub fn kept_fraction(arch: &Arch, keep: &[Vec<usize>]) -> f64 {
    let total: usize = arch.widths.iter().take(BN_LAYERS).sum();
    let kept: usize = keep.iter().map(Vec::len).sum();
    kept as f64 / total.max(1) as f64
}

/// Uniform pruning: every layer keeps the same fraction `frac` of its channels, chosen by an
/// importance per channel (summed over a tied pair).
pub fn select_uniform(
    arch: &Arch,
    importance: &[Vec<f32>],
    frac: f64,
    round: usize,
) -> Vec<Vec<usize>> {
    select(
        arch,
        |a, b| {
            importance[a]
                .iter()
                .zip(&importance[b])
                .map(|(x, y)| x + y)
                .collect()
        },
        |i| importance[i].clone(),
        |s| round_up((s.len() as f64 * frac).round() as usize, round, s.len()),
    )
}

/// The arch a selection leaves.
pub fn arch_of(keep: &[Vec<usize>]) -> Arch {
    Arch {
        widths: keep.iter().map(|k| k.len()).collect(),
        prev_input: false,
    }
}

/// Teacher channel index of every surviving channel of each encoder stage output (for the
/// channel-similarity distillation term).
pub fn chan_map(keep: &[Vec<usize>]) -> Vec<Vec<i64>> {
    (0..crate::nets::LEVELS)
        .map(|k| keep[enc_b(k)].iter().map(|&c| c as i64).collect())
        .collect()
}

/// The identity channel map of an arch (student as wide as the teacher).
pub fn identity_map(arch: &Arch) -> Vec<Vec<i64>> {
    (0..crate::nets::LEVELS)
        .map(|k| (0..arch.widths[enc_b(k)] as i64).collect())
        .collect()
}

/// Bisection on a monotone parameter `p ∈ [lo, hi]` so that `macs(p)` is as close as possible
/// to `target` (macs decreasing in p when `decreasing`).
pub fn match_macs(
    lo: f64,
    hi: f64,
    target: u64,
    decreasing: bool,
    macs: impl Fn(f64) -> u64,
) -> f64 {
    let (mut a, mut b) = (lo, hi);
    let mut best = (f64::MAX, lo);
    for _ in 0..30 {
        let m = 0.5 * (a + b);
        let v = macs(m);
        let err = (v as f64 - target as f64).abs();
        if err < best.0 {
            best = (err, m);
        }
        let too_big = v > target;
        if too_big == decreasing {
            a = m;
        } else {
            b = m;
        }
    }
    for p in [lo, hi] {
        let err = (macs(p) as f64 - target as f64).abs();
        if err < best.0 {
            best = (err, p);
        }
    }
    best.1
}

/// Median latency in ms of `arch` exported to ONNX and run by `slimmatte::model::Model` on a
/// `1×4×h×w` input with `threads` intra-op threads.
pub fn measure_latency(
    arch: &Arch,
    h: usize,
    w: usize,
    threads: usize,
    runs: usize,
    tmp: &Path,
) -> Result<f64> {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = Net::new(&vs.root(), arch, BnInit::STANDARD);
    let path = tmp.join(format!("latency_{}.onnx", std::process::id()));
    export::export(&net, &path, "latency probe")?;
    let r = measure_onnx_latency(&path, h, w, threads, runs);
    let _ = std::fs::remove_file(&path);
    r
}

/// Latency in ms of an ONNX matting model file (single-frame or temporal): the smallest of
/// five medians of `runs` runs.
pub fn measure_onnx_latency(
    path: &Path,
    h: usize,
    w: usize,
    threads: usize,
    runs: usize,
) -> Result<f64> {
    let mut model = slimmatte::model::Model::load(path, &slimmatte::matte::spec(), threads)
        .with_context(|| format!("loading {}", path.display()))?;
    // A temporal net also gets its previous matte (a fifth channel).
    let channels = if model.has_input(slimmatte::matte::PREV_INPUT_NAME) {
        5
    } else {
        4
    };
    let input: Vec<f32> = (0..channels * h * w)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let mut out = vec![0.0f32; h * w];
    for _ in 0..3 {
        export::run_onnx(&mut model, &input, h, w, &mut out)?;
    }
    // The machine is shared: the minimum of five medians is robust to bursts of other work.
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            export::run_onnx(&mut model, &input, h, w, &mut out)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        best = best.min(times[times.len() / 2]);
    }
    Ok(best)
}

/// One probe of the budget search.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Probe {
    pub rate: f64,
    pub macs: u64,
    pub params: u64,
    pub latency_ms: f64,
    pub fits: bool,
}

/// The prune rate whose student has the most FLOPs among those measured to meet `budget_ms` at
/// `h × w` with `threads` threads. Bisection over the rate with real measurements finds the
/// boundary; latency is not monotone in the rate near it (kept widths are rounded to multiples
/// of `round`, and ONNX Runtime's kernels are faster on some widths than on narrower ones), so
/// `scan` more rates on a grid below the bisection's answer are measured too. Returns the chosen
/// rate and all probes.
#[allow(clippy::too_many_arguments)]
pub fn search_budget(
    arch: &Arch,
    gammas: &[Vec<f32>],
    budget_ms: f64,
    h: usize,
    w: usize,
    threads: usize,
    tmp: &Path,
    iters: usize,
    scan: usize,
    round: usize,
) -> Result<(f64, Vec<Probe>)> {
    let mut probes: Vec<Probe> = Vec::new();
    // Rates that give a shape measured before are not measured again.
    let mut measured: Vec<(Vec<usize>, bool)> = Vec::new();
    let mut probe = |rate: f64, probes: &mut Vec<Probe>| -> Result<bool> {
        let a = arch_of(&select_by_gamma(arch, gammas, rate, round));
        if let Some((_, fits)) = measured.iter().find(|(w, _)| *w == a.widths) {
            return Ok(*fits);
        }
        let lat = measure_latency(&a, h, w, threads, 15, tmp)?;
        let fits = lat <= budget_ms;
        eprintln!(
            "budget: rate {rate:.3} → {:.1} MFLOPs, {:.3} ms {}",
            a.flops(h, w) as f64 / 1e6,
            lat,
            if fits { "fits" } else { "too slow" }
        );
        probes.push(Probe {
            rate,
            macs: a.macs(h, w),
            params: a.params(),
            latency_ms: lat,
            fits,
        });
        measured.push((a.widths, fits));
        Ok(fits)
    };
    let hi_rate = 0.97;
    if probe(0.0, &mut probes)? {
        return Ok((0.0, probes));
    }
    if !probe(hi_rate, &mut probes)? {
        eprintln!("budget: even rate {hi_rate} misses {budget_ms} ms; using it anyway");
        return Ok((hi_rate, probes));
    }
    let (mut lo, mut hi) = (0.0, hi_rate);
    for _ in 0..iters {
        let mid = 0.5 * (lo + hi);
        if probe(mid, &mut probes)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // Grid below the bisection's answer, down to a step of the last bisection interval × 4.
    let span = ((hi - lo) * 4.0).clamp(0.02, 0.15);
    for i in 1..=scan {
        let rate = hi - span * i as f64 / scan as f64;
        if rate > 0.0 {
            probe(rate, &mut probes)?;
        }
    }
    Ok((best_fitting(&probes).unwrap_or(hi), probes))
}

/// The rate of the fitting probe with the most MACs (the most capacity the budget allows).
pub fn best_fitting(probes: &[Probe]) -> Option<f64> {
    probes
        .iter()
        .filter(|p| p.fits)
        .max_by_key(|p| p.macs)
        .map(|p| p.rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_gammas(arch: &Arch) -> Vec<Vec<f32>> {
        arch.widths
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                (0..c)
                    .map(|j| ((i * 31 + j * 17) % 97) as f32 / 97.0)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn exact_rate_selection_keeps_its_share_when_most_gammas_are_exactly_zero() {
        let arch = Arch::from_levels([16, 32, 64, 64]);
        // 80 % of the |γ| at exactly 0, as a finished proximal sparsity run leaves them.
        let gammas: Vec<Vec<f32>> = fake_gammas(&arch)
            .into_iter()
            .map(|g| {
                g.iter()
                    .enumerate()
                    .map(|(j, &v)| if j % 5 == 0 { v + 0.1 } else { 0.0 })
                    .collect()
            })
            .collect();
        let norms = fake_gammas(&arch);
        // Without the tie-break the threshold is 0 and only the non-zero fifth survives.
        let plain = select_by_gamma(&arch, &gammas, 0.5, 1);
        assert!(kept_fraction(&arch, &plain) < 0.3);
        for rate in [0.5, 0.75] {
            let keep = select_at_rate(&arch, &gammas, &norms, rate);
            let f = kept_fraction(&arch, &keep);
            // Tied pairs keep a channel either layer needs, so a little more than 1 − rate.
            assert!(
                f >= 1.0 - rate - 0.02 && f <= 1.0 - rate + 0.15,
                "rate {rate}: kept {f}"
            );
            // Every non-zero channel ranks above every zero one.
            for (g, k) in gammas.iter().zip(&keep) {
                let nonzero = g.iter().filter(|&&v| v > 0.0).count();
                if k.len() >= nonzero {
                    assert!(
                        g.iter()
                            .enumerate()
                            .all(|(j, &v)| v == 0.0 || k.contains(&j))
                    );
                }
            }
        }
    }

    #[test]
    fn the_budget_goes_to_the_largest_fitting_student_even_when_latency_is_not_monotone() {
        let p = |rate: f64, macs: u64, latency_ms: f64| Probe {
            rate,
            macs,
            params: 0,
            latency_ms,
            fits: latency_ms <= 10.0,
        };
        // As measured here: 0.909 just misses, 0.940 (fewer MACs) is slower still, 0.955 fits;
        // the grid below then finds 0.92 fitting with more MACs than 0.955.
        let probes = [
            p(0.0, 2_880_000_000, 34.9),
            p(0.97, 196_000_000, 5.9),
            p(0.909, 527_000_000, 10.09),
            p(0.940, 421_000_000, 12.3),
            p(0.955, 218_000_000, 6.2),
            p(0.92, 480_000_000, 9.4),
            p(0.93, 450_000_000, 10.5),
        ];
        assert_eq!(best_fitting(&probes), Some(0.92));
        assert_eq!(best_fitting(&probes[..2]), Some(0.97));
        assert_eq!(best_fitting(&probes[..1]), None);
    }

    #[test]
    fn pruned_widths_are_consistent() {
        let arch = Arch::from_levels([8, 16, 24, 32]);
        let g = fake_gammas(&arch);
        for rate in [0.0, 0.3, 0.5, 0.8, 0.97] {
            let keep = select_by_gamma(&arch, &g, rate, 1);
            let a = arch_of(&keep);
            // table() asserts tied widths are equal and in/out widths chain.
            let t = a.table();
            for (x, y) in tied_pairs(&arch) {
                assert_eq!(keep[x], keep[y], "tied layers keep the same channels");
            }
            for (i, k) in keep.iter().enumerate() {
                assert!(k.len() >= MIN_KEEP && k.len() <= arch.widths[i]);
                assert!(k.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
                assert_eq!(t[i].cout, k.len());
            }
        }
        let m0 = arch_of(&select_by_gamma(&arch, &g, 0.2, 1)).macs(64, 64);
        let m1 = arch_of(&select_by_gamma(&arch, &g, 0.7, 1)).macs(64, 64);
        for rate in [0.1, 0.5, 0.9] {
            let a = arch_of(&select_by_gamma(&arch, &g, rate, 8));
            assert!(a.widths.iter().all(|&w| w % 8 == 0), "{:?}", a.widths);
        }
        assert!(m1 < m0, "higher rate, fewer MACs");
    }

    #[test]
    fn uniform_keeps_the_fraction() {
        let arch = Arch::from_levels([8, 16, 24, 32]);
        let g = fake_gammas(&arch);
        let keep = select_uniform(&arch, &g, 0.5, 1);
        let a = arch_of(&keep);
        assert_eq!(a, Arch::from_levels([4, 8, 12, 16]));
    }

    #[test]
    fn quantiles() {
        let v = [4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert!((quantile(&v, 0.125) - 1.5).abs() < 1e-6);
    }

    #[test]
    fn macs_matching() {
        let arch = Arch::from_levels([8, 16, 24, 32]);
        let g = fake_gammas(&arch);
        let target = arch.macs(64, 64) / 3;
        let f = match_macs(0.05, 1.0, target, false, |f| {
            arch_of(&select_uniform(&arch, &g, f, 1)).macs(64, 64)
        });
        let got = arch_of(&select_uniform(&arch, &g, f, 1)).macs(64, 64);
        assert!(
            (got as f64 / target as f64 - 1.0).abs() < 0.15,
            "{got} vs {target}"
        );
    }
}
