//! One training run of a band net: Adam with a cosine learning rate, Charbonnier loss on the
//! unknown pixels the runtime writes (with, on temporal sets, the temporal-consistency loss
//! against each tile's previous-frame partner), optional distillation from a teacher's alpha and
//! features, optional L1 on the BatchNorm γ (the sparsity of DCP and Network Slimming),
//! validation SAD on the validation composites, resumable checkpoints.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use slimmatte_measure::rng::Rng;
use tch::{Device, Kind, nn, nn::OptimizerConfig};

use super::data::{BandSet, PLANE, per_sample_sad};
use super::net::{BandNetT, Widths};
use slimmatte::band_net::PREV_CHANNEL;
use tch::Tensor;

use crate::distill::{Curve, charbonnier, progress_bar};

/// Tiles per batch.
pub const BATCH: usize = 48;
/// Steps between validations (and checkpoints).
pub const VALIDATE_EVERY: usize = 250;

/// What one run optimises.
#[derive(Clone, Debug)]
pub struct RunCfg {
    pub name: String,
    pub steps: usize,
    pub lr: f64,
    /// Weight of the Charbonnier loss towards the teacher's alpha (0 = no distillation).
    pub distill: f64,
    /// Weight of the feature term towards the teacher's hidden features (needs equal widths:
    /// the sparsity run), mean squared error.
    pub features: f64,
    /// Weight of Σ|γ| (0 = no sparsity).
    pub l1_gamma: f64,
    /// Task loss: weights of the gradient term and of the squared error next to the
    /// Charbonnier term ([`task_loss`]).
    pub w_grad: f64,
    pub w_mse: f64,
    /// Weight of the temporal-consistency loss on sets with partners ([`temporal_loss`]).
    pub w_temporal: f64,
    pub seed: u64,
}

/// A trained net and its curve.
pub struct Trained {
    pub vs: nn::VarStore,
    pub net: BandNetT,
    pub curve: Curve,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    step: usize,
    steps: Vec<usize>,
    loss: Vec<f64>,
    val_steps: Vec<usize>,
    val_sad: Vec<f64>,
    seconds: f64,
    done: bool,
}

/// A net of `widths` with `channels` pixel channels in a fresh VarStore.
pub fn new_net(widths: &Widths, channels: usize) -> (nn::VarStore, BandNetT) {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = BandNetT::new(&vs.root(), widths, channels);
    (vs, net)
}

/// The net's alpha on every tile of `set` (`tiles × PLANE`), eval mode.
pub fn predict(net: &BandNetT, set: &BandSet) -> Vec<f32> {
    let mut out = Vec::with_capacity(set.tiles() * PLANE);
    tch::no_grad(|| {
        let idx: Vec<usize> = (0..set.tiles()).collect();
        for chunk in idx.chunks(256) {
            let (x, _, _) = set.batch(chunk, &vec![false; chunk.len()]);
            let a = net.forward(&x, false).flatten(0, -1);
            out.extend(Vec::<f32>::try_from(&a).expect("alpha to vec"));
        }
    });
    out
}

/// Mean per-composite SAD of the net on `set`.
pub fn mean_sad(net: &BandNetT, set: &BandSet) -> f64 {
    let sad = per_sample_sad(set, &predict(net, set));
    sad.iter().sum::<f64>() / sad.len().max(1) as f64
}

fn paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.ot")),
        dir.join(format!("{name}.json")),
    )
}

/// Trains `net` (weights in `vs`, already initialised) on `train` per `cfg`, validating on
/// `val`; checkpoints to `dir/<name>.ot|json` every [`VALIDATE_EVERY`] steps and resumes from
/// them; a finished run is loaded, not rerun.
pub fn train(
    mut vs: nn::VarStore,
    net: BandNetT,
    teacher: Option<&BandNetT>,
    train: &BandSet,
    val: &BandSet,
    cfg: &RunCfg,
    dir: &Path,
) -> Result<Trained> {
    std::fs::create_dir_all(dir)?;
    let (ot, js) = paths(dir, &cfg.name);
    let mut ck = Checkpoint {
        step: 0,
        steps: Vec::new(),
        loss: Vec::new(),
        val_steps: Vec::new(),
        val_sad: Vec::new(),
        seconds: 0.0,
        done: false,
    };
    if let Ok(text) = std::fs::read_to_string(&js)
        && let Ok(saved) = serde_json::from_str::<Checkpoint>(&text)
        && ot.exists()
    {
        vs.load(&ot)
            .with_context(|| format!("loading {}", ot.display()))?;
        ck = saved;
    }
    let curve = |ck: &Checkpoint| Curve {
        name: cfg.name.clone(),
        steps: ck.steps.clone(),
        loss: ck.loss.clone(),
        task_loss: ck.loss.clone(),
        val_steps: ck.val_steps.clone(),
        val_sad: ck.val_sad.clone(),
        seconds: ck.seconds,
    };
    if ck.done {
        eprintln!("{}: finished earlier ({} steps), loaded", cfg.name, ck.step);
        let c = curve(&ck);
        return Ok(Trained { vs, net, curve: c });
    }
    let mut opt = nn::Adam::default().build(&vs, cfg.lr)?;
    let mut rng = Rng::new(cfg.seed ^ (ck.step as u64).wrapping_mul(0x9E37_79B9));
    let bar = progress_bar(cfg.steps as u64, &cfg.name);
    bar.set_position(ck.step as u64);
    let start = Instant::now();
    let base_seconds = ck.seconds;
    let mut ema = ck.loss.last().copied().unwrap_or(0.0);
    let n = train.tiles();
    while ck.step < cfg.steps {
        let t = ck.step as f64 / cfg.steps as f64;
        opt.set_lr(cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()));
        let idx: Vec<usize> = (0..BATCH).map(|_| rng.below(n)).collect();
        let flips: Vec<bool> = (0..BATCH).map(|_| rng.below(2) == 1).collect();
        let (loss, task) = step_loss(&net, teacher, train, cfg, &idx, &flips);
        opt.backward_step(&loss);
        let l = task.double_value(&[]);
        ema = if ck.step == 0 {
            l
        } else {
            0.98 * ema + 0.02 * l
        };
        ck.step += 1;
        bar.inc(1);
        if ck.step.is_multiple_of(25) {
            ck.steps.push(ck.step);
            ck.loss.push(ema);
        }
        if ck.step.is_multiple_of(VALIDATE_EVERY) || ck.step == cfg.steps {
            let sad = mean_sad(&net, val);
            ck.val_steps.push(ck.step);
            ck.val_sad.push(sad);
            bar.set_message(format!("val SAD {sad:.3}"));
            ck.seconds = base_seconds + start.elapsed().as_secs_f64();
            ck.done = ck.step == cfg.steps;
            vs.save(&ot)
                .with_context(|| format!("saving {}", ot.display()))?;
            std::fs::write(&js, serde_json::to_string(&ck)?)?;
            if !std::io::stderr().is_terminal() {
                eprintln!(
                    "{}: step {}/{} loss {ema:.4} val SAD {sad:.3}",
                    cfg.name, ck.step, cfg.steps
                );
            }
        }
    }
    bar.finish();
    let c = curve(&ck);
    Ok(Trained { vs, net, curve: c })
}

/// The loss of one training step on tiles `idx` of `train` (`flips` mirrors them), with the
/// task loss alone as the second value (what the curve shows).
fn step_loss(
    net: &BandNetT,
    teacher: Option<&BandNetT>,
    train: &BandSet,
    cfg: &RunCfg,
    idx: &[usize],
    flips: &[bool],
) -> (Tensor, Tensor) {
    let (mut x, target, mask) = train.batch(idx, flips);
    // With partners, the previous frames go through the net first: their matte is what the
    // runtime feeds the current frames whose previous matte is the net's own.
    let partners = (cfg.w_temporal > 0.0 && train.has_partners()).then(|| {
        let (xp, tp) = train.partner_batch(idx, flips);
        let alpha_p = net.forward(&xp, true);
        let own: Vec<f32> = idx.iter().map(|&i| train.own[i] as u8 as f32).collect();
        let own = Tensor::from_slice(&own).view([idx.len() as i64, 1, 1, 1]);
        x = with_previous(&x, &previous_matte(&alpha_p.detach(), &xp), &own);
        (xp, tp, alpha_p)
    });
    let (alpha, feats) = net.forward_features(&x, true);
    let task = task_loss(&alpha, &target, &mask, cfg.w_grad, cfg.w_mse);
    let mut loss = task.shallow_clone();
    if let Some((xp, tp, alpha_p)) = &partners {
        loss += temporal_loss(&alpha, &target, alpha_p, xp, tp, &mask) * cfg.w_temporal;
    }
    if let Some(teacher) = teacher {
        let (ta, tf) = tch::no_grad(|| teacher.forward_features(&x, false));
        if cfg.distill > 0.0 {
            loss += charbonnier(&alpha, &ta, &mask) * cfg.distill;
        }
        if cfg.features > 0.0 {
            for (s, t) in feats.iter().zip(&tf) {
                loss += (s - t).square().mean(Kind::Float) * cfg.features;
            }
        }
    }
    if cfg.l1_gamma > 0.0 {
        loss += net.gamma_l1() * cfg.l1_gamma;
    }
    (loss, task)
}

/// Horizontal and vertical differences of `a` `[B, 1, H, W]` and the mask of pixel pairs that
/// are both in `mask`.
fn gradients(a: &Tensor, mask: &Tensor) -> [(Tensor, Tensor); 2] {
    let (h, w) = (a.size()[2], a.size()[3]);
    let dx = a.narrow(3, 1, w - 1) - a.narrow(3, 0, w - 1);
    let mx = mask.narrow(3, 1, w - 1) * mask.narrow(3, 0, w - 1);
    let dy = a.narrow(2, 1, h - 1) - a.narrow(2, 0, h - 1);
    let my = mask.narrow(2, 1, h - 1) * mask.narrow(2, 0, h - 1);
    [(dx, mx), (dy, my)]
}

/// The task loss on the pixels of `mask`: Charbonnier, plus `w_grad` × the Charbonnier loss of
/// the horizontal and vertical differences (the matte's edges and strands, as in deep image
/// matting's gradient losses), plus `w_mse` × the squared error (large errors cost more).
pub fn task_loss(pred: &Tensor, target: &Tensor, mask: &Tensor, w_grad: f64, w_mse: f64) -> Tensor {
    let mut loss = charbonnier(pred, target, mask);
    if w_grad > 0.0 {
        let p = gradients(pred, mask);
        let t = gradients(target, mask);
        for ((pd, m), (td, _)) in p.iter().zip(&t) {
            loss += charbonnier(pd, td, m) * w_grad;
        }
    }
    if w_mse > 0.0 {
        let se = (pred - target).square() * mask;
        loss += se.sum(Kind::Float) / (mask.sum(Kind::Float) + 1.0) * w_mse;
    }
    loss
}

/// The temporal-consistency loss (dtSSD's error as a Charbonnier loss): on the pixels of
/// `mask`, the change of the matte from the previous frame to the current one against the
/// truth's change. `alpha` / `target` are the current tiles' net output and truth; `alpha_p`
/// the net's output on the partners `xp` (the previous frame at the same places), whose truth
/// is `tp`. Where the previous frame's trimap knew a pixel, the runtime wrote the trimap's
/// 0 / 1 there, not the net's output, so that is the previous value.
pub fn temporal_loss(
    alpha: &Tensor,
    target: &Tensor,
    alpha_p: &Tensor,
    xp: &Tensor,
    tp: &Tensor,
    mask: &Tensor,
) -> Tensor {
    let change = (alpha - previous_matte(alpha_p, xp)) - (target - tp);
    charbonnier(&change, &change.zeros_like(), mask)
}

/// The matte the runtime leaves on the partners' frame: the net's output `alpha_p` where the
/// partners' trimap (`xp`'s channel 3) is unknown, the trimap's 0 / 1 where it is known.
pub fn previous_matte(alpha_p: &Tensor, xp: &Tensor) -> Tensor {
    let trimap_p = xp.narrow(1, 3, 1);
    let unknown_p = trimap_p.eq(0.5).to_kind(Kind::Float);
    alpha_p * &unknown_p + trimap_p * (1.0 - &unknown_p)
}

/// `x` with the previous-matte channel replaced by `previous` on the tiles where `own`
/// (`[B, 1, 1, 1]`, 0 / 1) is 1.
pub fn with_previous(x: &Tensor, previous: &Tensor, own: &Tensor) -> Tensor {
    let prev = x.narrow(1, PREV_CHANNEL as i64, 1);
    let prev = previous * own + prev * (1.0 - own);
    Tensor::cat(&[&x.narrow(1, 0, PREV_CHANNEL as i64), &prev], 1)
}

/// Keeps the `keep[i]` most important channels of each hidden layer by `scores`.
pub fn top_channels(scores: &[Vec<f32>], counts: &[usize]) -> Vec<Vec<usize>> {
    scores
        .iter()
        .zip(counts)
        .map(|(s, &k)| {
            let mut idx: Vec<usize> = (0..s.len()).collect();
            idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            let mut kept: Vec<usize> = idx.into_iter().take(k.clamp(1, s.len())).collect();
            kept.sort_unstable();
            kept
        })
        .collect()
}

/// Channel counts after a global |γ| threshold at `rate` (the fraction pruned over all hidden
/// channels), each rounded up to a multiple of `round` (at least `round`).
pub fn counts_at_rate(gammas: &[Vec<f32>], rate: f64, round: usize) -> Vec<usize> {
    let mut all: Vec<f32> = gammas.iter().flatten().copied().collect();
    all.sort_by(f32::total_cmp);
    let cut = ((all.len() as f64 * rate).floor() as usize).min(all.len() - 1);
    let threshold = all[cut];
    gammas
        .iter()
        .map(|g| {
            let kept = g.iter().filter(|&&v| v >= threshold).count();
            kept.div_ceil(round).max(1) * round
        })
        .map(|c| c.min(gammas[0].len().max(1)))
        .collect()
}

/// A net of the kept channels of `src`, weights copied.
pub fn pruned(src: &BandNetT, keep: &[Vec<usize>]) -> (nn::VarStore, BandNetT) {
    let widths = Widths(keep.iter().map(Vec::len).collect());
    let (vs, net) = new_net(&widths, src.channels);
    src.copy_pruned_into(&net, keep);
    (vs, net)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The temporal loss is the error of the matte's change: none when the net's change is
    /// the truth's (even if both frames are wrong by the same amount), some when the net
    /// changes where the truth does not; where the previous frame's trimap knew a pixel, the
    /// trimap's value is the previous matte, whatever the net said there.
    #[test]
    fn the_temporal_loss_is_the_error_of_the_change() {
        let shape = [1i64, 1, 2, 2];
        let t = |v: [f32; 4]| Tensor::from_slice(&v).view(shape);
        // Partner input: 6 channels, the trimap (channel 3) unknown but for pixel 3 (known
        // foreground).
        let mut xp = vec![0.0f32; 6 * 4];
        xp[12..16].copy_from_slice(&[0.5, 0.5, 0.5, 1.0]);
        let xp = Tensor::from_slice(&xp).view([1, 6, 2, 2]);
        let mask = t([1.0, 1.0, 1.0, 0.0]);
        let target = t([0.2, 0.4, 0.6, 1.0]);
        let tp = t([0.1, 0.4, 0.9, 1.0]);
        // Both frames off by +0.1: the change is right.
        let alpha = t([0.3, 0.5, 0.7, 1.0]);
        let alpha_p = t([0.2, 0.5, 1.0, 0.0]);
        let none = temporal_loss(&alpha, &target, &alpha_p, &xp, &tp, &mask).double_value(&[]);
        assert!(none < 1e-3, "consistent errors cost nothing: {none}");
        // The net flickers at pixel 1 (the truth holds still there).
        let flicker = t([0.3, 0.9, 0.7, 1.0]);
        let some = temporal_loss(&flicker, &target, &alpha_p, &xp, &tp, &mask).double_value(&[]);
        assert!(
            (some - 0.4 / 4.0).abs() < 1e-3,
            "one pixel changed by 0.4: {some}"
        );
        // Pixel 3: known in the previous frame, so its previous value is 1, not the net's 0;
        // with the mask on there, a current 1 is no change.
        let all = t([0.0, 0.0, 0.0, 1.0]);
        let known = temporal_loss(&alpha, &target, &alpha_p, &xp, &tp, &all).double_value(&[]);
        assert!(
            known < 1e-3,
            "a known previous pixel is the trimap's value: {known}"
        );
    }

    /// Only the previous-matte channel of the `own` tiles takes the given matte.
    #[test]
    fn with_previous_replaces_the_previous_matte_of_own_tiles_only() {
        let x = Tensor::arange(2 * 6 * 4, (Kind::Float, tch::Device::Cpu)).view([2, 6, 2, 2]);
        let previous = Tensor::full([2, 1, 2, 2], -1.0, (Kind::Float, tch::Device::Cpu));
        let own = Tensor::from_slice(&[1.0f32, 0.0]).view([2, 1, 1, 1]);
        let y = with_previous(&x, &previous, &own);
        assert_eq!(y.size(), x.size());
        let diff = Vec::<f32>::try_from((&y - &x).abs().flatten(0, -1)).unwrap();
        for (i, d) in diff.iter().enumerate() {
            let (tile, channel) = (i / 24, i / 4 % 6);
            let replaced = tile == 0 && channel == PREV_CHANNEL;
            assert_eq!(
                *d > 0.0,
                replaced,
                "value {i} (tile {tile}, channel {channel})"
            );
        }
        let got = Vec::<f32>::try_from(y.get(0).get(PREV_CHANNEL as i64).flatten(0, -1)).unwrap();
        assert_eq!(got, vec![-1.0; 4]);
    }
}
