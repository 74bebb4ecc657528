//! Losses and the training loop: task loss (Charbonnier on the unknown region), distillation
//! from a teacher (alpha + SPKD spatial / channel similarity of every encoder stage) and the L1
//! subgradient on BatchNorm γ. Checkpoints let a long run resume.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use slimmatte_measure::rng::Rng;
use tch::{Kind, Tensor, nn, nn::OptimizerConfig};

use crate::data::Dataset;
use crate::nets::Net;

/// Batches assembled ahead of the training loop.
const PREFETCH: usize = 4;

/// One training batch with the draw that made it (the teacher cache is indexed by it).
struct Batch {
    idx: Vec<usize>,
    flips: Vec<bool>,
    x: Tensor,
    a: Tensor,
    u: Tensor,
}

/// Settings of one training run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainCfg {
    pub name: String,
    pub steps: usize,
    pub batch: usize,
    /// Adam learning rate, cosine-decayed to 5 % at the end (or see `plateau`).
    pub lr: f64,
    /// L1 subgradient weight on encoder / decoder BN γ (0 = none).
    pub l1_enc: f64,
    pub l1_dec: f64,
    /// Alpha loss vs ground truth.
    pub w_gt: f64,
    /// Alpha loss vs the teacher's output (only with a teacher).
    pub w_kd: f64,
    /// SPKD feature distillation (only with a teacher).
    pub w_spkd: f64,
    pub eval_every: usize,
    pub ckpt_every: usize,
    pub seed: u64,
    /// Train to a plateau instead of a fixed cosine schedule: `steps` is then the most, the
    /// learning rate is constant and halved when validation stalls, and the run stops once
    /// validation has not improved over the last fifth of its steps ([`Plateau`]).
    #[serde(default)]
    pub plateau: Option<Plateau>,
    /// Sparsity by a proximal L1 step after each Adam step (γ ← sign(γ)·max(|γ| − lr·λ, 0),
    /// which drives unimportant γ to exactly 0) instead of the L1 subgradient in the loss.
    #[serde(default)]
    pub proximal_l1: bool,
    /// Constant learning rate (the paper's stage 1) instead of the cosine schedule.
    #[serde(default)]
    pub constant_lr: bool,
    /// SPKD on the deepest encoder stage only (what the official DCP code computes) instead of
    /// all four.
    #[serde(default)]
    pub spkd_deepest_only: bool,
    /// Compare the deepest encoder stage through a learned 1×1 projection of the student's
    /// channels to the teacher's width (the official DCP code's stage 2 from random init,
    /// where student channel k has no relation to teacher channel k) instead of restricting
    /// the teacher to the surviving channel indices. The projection trains with the net and is
    /// no part of the exported model.
    #[serde(default)]
    pub spkd_projection: bool,
}

/// Train-to-plateau rule (the teacher's): a pure function of the validation history, so a run
/// resumed from a checkpoint takes the same decisions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    /// Never stop before this many steps.
    pub min_steps: usize,
    /// Consecutive validations without a gain of at least `min_gain` that halve the lr.
    pub patience: usize,
    /// Relative improvement that counts as a gain (0.005 = 0.5 %).
    pub min_gain: f64,
}

/// What the plateau rule says after the validations `(steps, sad)` so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauState {
    /// Multiplier of the base learning rate (halved at every stall).
    pub lr_factor: f64,
    /// Whether the run has plateaued: no gain over the last 20 % of its steps (and at least
    /// `min_steps` done).
    pub done: bool,
}

impl Plateau {
    pub fn state(&self, val_steps: &[usize], val_sad: &[f64]) -> PlateauState {
        let gain = |best: f64, v: f64| v < best * (1.0 - self.min_gain);
        let mut best = f64::INFINITY;
        let mut stalled = 0;
        let mut lr_factor = 1.0;
        for &v in val_sad {
            if gain(best, v) {
                best = v;
                stalled = 0;
            } else {
                stalled += 1;
                if stalled >= self.patience {
                    lr_factor *= 0.5;
                    stalled = 0;
                }
            }
            best = best.min(v);
        }
        let done = match val_steps.last() {
            Some(&last) if last >= self.min_steps => {
                let cut = last - last / 5;
                let before = val_steps
                    .iter()
                    .zip(val_sad)
                    .filter(|&(&st, _)| st <= cut)
                    .map(|(_, &v)| v)
                    .fold(f64::INFINITY, f64::min);
                let after = val_steps
                    .iter()
                    .zip(val_sad)
                    .filter(|&(&st, _)| st > cut)
                    .map(|(_, &v)| v)
                    .fold(f64::INFINITY, f64::min);
                before.is_finite() && !gain(before, after)
            }
            _ => false,
        };
        PlateauState { lr_factor, done }
    }
}

/// A frozen teacher and, per encoder stage, the teacher channel each student channel is compared
/// with in the channel-similarity term (identity for a same-width student; the surviving
/// channel indices for a pruned one).
pub struct TeacherRef<'a> {
    pub net: &'a Net,
    pub chan_map: Vec<Vec<i64>>,
    /// The teacher's outputs on the training split, computed once (else a forward per step).
    pub outputs: Option<&'a TeacherOutputs>,
    /// The learned projection of the student's deepest encoder features to the teacher's
    /// width (`TrainCfg::spkd_projection`); that stage's channel term then compares all of the
    /// teacher's channels.
    pub projection: Option<&'a nn::Conv2D>,
}

/// The frozen teacher's alpha and SPKD features (already pooled to ≤16×16, which is all SPKD
/// looks at) for every training sample in both mirror states. The teacher's forward pass is the
/// costliest part of a distillation step; computing it once and sharing it between stage 1,
/// both stage-2 runs and the small student gives the same losses (up to float rounding, ~1e-6:
/// convolutions pick their kernels by batch size) at a fraction of the time.
pub struct TeacherOutputs {
    alpha: Tensor,
    features: Vec<Tensor>,
    samples: usize,
}

impl TeacherOutputs {
    pub fn compute(net: &Net, data: &Dataset, batch: usize) -> TeacherOutputs {
        Self::cache(net, data, batch, true)
    }

    /// The frozen teacher's alpha only (no SPKD features, for runs without the SPKD term), for
    /// every sample of `data` in both mirror states; `data` must be single-frame (4 channels).
    pub fn compute_alpha(net: &Net, data: &Dataset, batch: usize) -> TeacherOutputs {
        Self::cache(net, data, batch, false)
    }

    /// The teacher's alpha (and, with `features`, its pooled SPKD features) for every sample
    /// of `data` in both mirror states: row 2i = sample i as stored, row 2i + 1 mirrored.
    fn cache(net: &Net, data: &Dataset, batch: usize, features: bool) -> TeacherOutputs {
        let n = data.len();
        let mut alphas = Vec::new();
        let mut feats: Vec<Vec<Tensor>> = Vec::new();
        tch::no_grad(|| {
            let rows: Vec<(usize, bool)> = (0..n).flat_map(|i| [(i, false), (i, true)]).collect();
            for chunk in rows.chunks(batch.max(1)) {
                let idx: Vec<usize> = chunk.iter().map(|r| r.0).collect();
                let flips: Vec<bool> = chunk.iter().map(|r| r.1).collect();
                let (x, _, _) = data.batch(&idx, &flips);
                let out = net.forward(&x.to_device(net.device()), false);
                alphas.push(out.alpha);
                if !features {
                    continue;
                }
                for (k, f) in out.features.iter().enumerate() {
                    if feats.len() <= k {
                        feats.push(Vec::new());
                    }
                    feats[k].push(pooled(f));
                }
            }
        });
        TeacherOutputs {
            alpha: Tensor::cat(&alphas, 0),
            features: feats.iter().map(|f| Tensor::cat(f, 0)).collect(),
            samples: n,
        }
    }

    /// The cached outputs of a batch made by `Dataset::batch(idx, flips)` of the same split.
    pub fn gather(&self, idx: &[usize], flips: &[bool]) -> (Tensor, Vec<Tensor>) {
        let rows: Vec<i64> = idx
            .iter()
            .zip(flips)
            .map(|(&i, &f)| {
                assert!(i < self.samples, "sample {i} outside the cached split");
                2 * i as i64 + f as i64
            })
            .collect();
        let rows = Tensor::from_slice(&rows).to_device(self.alpha.device());
        (
            self.alpha.index_select(0, &rows),
            self.features
                .iter()
                .map(|f| f.index_select(0, &rows))
                .collect(),
        )
    }
}

/// Loss and validation history of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Curve {
    pub name: String,
    pub steps: Vec<usize>,
    pub loss: Vec<f64>,
    pub task_loss: Vec<f64>,
    pub val_steps: Vec<usize>,
    pub val_sad: Vec<f64>,
    pub seconds: f64,
}

impl Curve {
    /// Mean training loss over the first / last `frac` of the logged points.
    pub fn first_last(&self, frac: f64) -> (f64, f64) {
        let n = self.task_loss.len();
        if n == 0 {
            return (f64::NAN, f64::NAN);
        }
        let k = ((n as f64 * frac).ceil() as usize).clamp(1, n);
        let first = self.task_loss[..k].iter().sum::<f64>() / k as f64;
        let last = self.task_loss[n - k..].iter().sum::<f64>() / k as f64;
        (first, last)
    }
}

/// Charbonnier loss over the unknown region, mean per unknown pixel.
pub fn charbonnier(pred: &Tensor, target: &Tensor, unknown: &Tensor) -> Tensor {
    let d = ((pred - target).square() + 1e-6).sqrt() * unknown;
    d.sum(Kind::Float) / (unknown.sum(Kind::Float) + 1.0)
}

fn pooled(f: &Tensor) -> Tensor {
    let h = f.size()[2];
    if h > 16 {
        f.adaptive_avg_pool2d([16, 16])
    } else {
        f.shallow_clone()
    }
}

/// Spatial similarity (positions × positions) and channel similarity (channels × channels),
/// cosine, of a feature map (pooled to at most 16×16; an already pooled map stays as it is).
fn similarities(f: &Tensor) -> (Tensor, Tensor) {
    let p = pooled(f);
    let (b, c) = (p.size()[0], p.size()[1]);
    let x = p.view([b, c, -1]);
    let xs = &x / (x.norm_scalaropt_dim(2.0, [1i64].as_slice(), true) + 1e-8);
    let spatial = xs.transpose(1, 2).matmul(&xs);
    let xc = &x / (x.norm_scalaropt_dim(2.0, [2i64].as_slice(), true) + 1e-8);
    let channel = xc.matmul(&xc.transpose(1, 2));
    (spatial, channel)
}

/// SPKD over the encoder stages (all, or the deepest only): MSE of spatial and channel
/// similarity matrices, summed.
#[allow(clippy::assign_op_pattern)]
pub fn spkd(
    student: &[Tensor],
    teacher: &[Tensor],
    chan_map: &[Vec<i64>],
    deepest_only: bool,
    projection: Option<&nn::Conv2D>,
) -> Tensor {
    let device = student.first().map_or(tch::Device::Cpu, |s| s.device());
    let mut total = Tensor::zeros([], (Kind::Float, device));
    let first = if deepest_only {
        student.len().saturating_sub(1)
    } else {
        0
    };
    let deepest = student.len().saturating_sub(1);
    for (k, (s, t)) in student.iter().zip(teacher).enumerate().skip(first) {
        let (s, t) = match projection {
            Some(p) if k == deepest => (s.apply(p), t.shallow_clone()),
            _ => {
                let idx = Tensor::from_slice(&chan_map[k]).to_device(t.device());
                (s.shallow_clone(), t.index_select(1, &idx))
            }
        };
        let (ss, sc) = similarities(&s);
        let (ts, tc) = similarities(&t);
        total = total + (ss - ts).square().mean(Kind::Float) + (sc - tc).square().mean(Kind::Float);
    }
    total
}

/// The learned 1×1 projection of a student's deepest encoder features to the teacher's width
/// (`TrainCfg::spkd_projection`), under `vs / "spkd_projection"`.
pub fn spkd_projection(
    vs: &nn::Path,
    student: &crate::nets::Arch,
    teacher: &crate::nets::Arch,
) -> nn::Conv2D {
    let deepest = crate::nets::enc_b(crate::nets::LEVELS - 1);
    nn::conv2d(
        vs / "spkd_projection",
        student.widths[deepest] as i64,
        teacher.widths[deepest] as i64,
        1,
        nn::ConvConfig {
            bias: false,
            ..Default::default()
        },
    )
}

fn cosine_lr(base: f64, step: usize, steps: usize) -> f64 {
    let t = step as f64 / steps.max(1) as f64;
    let min = base * 0.05;
    min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Mean per-image SAD (Composition-1k units) of `net` on `data`, predicting only the unknown
/// region (known pixels come from the trimap, as the runtime does).
pub fn evaluate_sad(net: &Net, data: &Dataset, batch: usize) -> f64 {
    let sads = per_image_sad(net, data, batch);
    sads.iter().sum::<f64>() / sads.len().max(1) as f64
}

/// SAD (Composition-1k units) of `net` on every image of `data`, in order, alpha predicted in
/// the unknown region only (the rest comes from the trimap, as at runtime).
pub fn per_image_sad(net: &Net, data: &Dataset, batch: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(data.len());
    tch::no_grad(|| {
        let idx: Vec<usize> = (0..data.len()).collect();
        for chunk in idx.chunks(batch.max(1)) {
            let (x, a, u) = data.batch(chunk, &vec![false; chunk.len()]);
            let d = net.device();
            let (x, a, u) = (x.to_device(d), a.to_device(d), u.to_device(d));
            let p = net.forward(&x, false).alpha;
            let sad =
                ((p - a).abs() * u).sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Double)
                    / 1000.0;
            out.extend(Vec::<f64>::try_from(&sad.to_device(tch::Device::Cpu)).expect("sad"));
        }
    });
    out
}

/// The checkpoint files of a run, `{dir}/{name}.ckpt.safetensors` and `.ckpt.json`.
struct Checkpoint {
    weights: PathBuf,
    meta: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CkptMeta {
    step: usize,
    curve: Curve,
}

impl Checkpoint {
    fn new(dir: &Path, name: &str) -> Self {
        Self {
            weights: dir.join(format!("{name}.ckpt.safetensors")),
            meta: dir.join(format!("{name}.ckpt.json")),
        }
    }

    /// Loads the checkpoint into `vs` when there is one: the step to go on from and the curve
    /// so far (step 0 and an empty curve without one).
    fn resume(&self, vs: &mut nn::VarStore, name: &str) -> Result<(usize, Curve)> {
        if !(self.weights.exists() && self.meta.exists()) {
            let curve = Curve {
                name: name.to_string(),
                ..Default::default()
            };
            return Ok((0, curve));
        }
        let meta: CkptMeta = serde_json::from_str(&std::fs::read_to_string(&self.meta)?)?;
        vs.load(&self.weights)
            .with_context(|| format!("loading checkpoint {}", self.weights.display()))?;
        eprintln!("[{name}] resuming from step {}", meta.step);
        Ok((meta.step, meta.curve))
    }

    fn save(&self, vs: &nn::VarStore, step: usize, curve: Curve) -> Result<()> {
        vs.save(&self.weights)?;
        std::fs::write(
            &self.meta,
            serde_json::to_string(&CkptMeta { step, curve })?,
        )?;
        Ok(())
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.weights);
        let _ = std::fs::remove_file(&self.meta);
    }
}

/// The training crate's progress bar: `prefix [=====>   ] pos/len message ETA`.
pub fn progress_bar(len: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("progress template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// The training loop's bookkeeping: loss EMAs, the curve, validation, the progress bar and
/// the log lines (when stderr is not a terminal).
struct Log<'a> {
    cfg: &'a TrainCfg,
    curve: Curve,
    ema: f64,
    ema_task: f64,
    bar: ProgressBar,
    tty: bool,
    log_every: usize,
    t0: Instant,
    base_seconds: f64,
}

impl<'a> Log<'a> {
    fn new(cfg: &'a TrainCfg, curve: Curve, start: usize) -> Self {
        let bar = progress_bar(cfg.steps as u64, &cfg.name);
        bar.set_position(start as u64);
        Self {
            cfg,
            base_seconds: curve.seconds,
            curve,
            ema: f64::NAN,
            ema_task: f64::NAN,
            bar,
            tty: std::io::stderr().is_terminal(),
            log_every: (cfg.steps / 20).max(1),
            t0: Instant::now(),
        }
    }

    /// Records step `step` (total loss `lv`, task loss `tv`); validates `net` on `val` when due.
    fn step(&mut self, step: usize, lv: f64, tv: f64, net: &Net, val: &Dataset) {
        let cfg = self.cfg;
        let ema = |e: f64, v: f64| if e.is_nan() { v } else { 0.95 * e + 0.05 * v };
        self.ema = ema(self.ema, lv);
        self.ema_task = ema(self.ema_task, tv);
        let (ema, ema_task) = (self.ema, self.ema_task);
        let last = step + 1 == cfg.steps;
        let curve = &mut self.curve;
        if step.is_multiple_of(10) || last {
            curve.steps.push(step);
            curve.loss.push(ema);
            curve.task_loss.push(ema_task);
        }
        self.bar
            .set_message(format!("loss {ema:.4} task {ema_task:.4}"));
        self.bar.inc(1);
        if (step + 1).is_multiple_of(cfg.eval_every.max(1)) || last {
            let sad = evaluate_sad(net, val, 8);
            curve.val_steps.push(step + 1);
            curve.val_sad.push(sad);
        }
        if !self.tty && ((step + 1).is_multiple_of(self.log_every) || last) {
            eprintln!(
                "[{}] step {}/{} loss {ema:.4} task {ema_task:.4} val SAD {:.3} ({:.1}s)",
                cfg.name,
                step + 1,
                cfg.steps,
                curve.val_sad.last().copied().unwrap_or(f64::NAN),
                self.t0.elapsed().as_secs_f64()
            );
        }
    }

    /// The curve so far with the training time up to now.
    fn snapshot(&self) -> Curve {
        let mut c = self.curve.clone();
        c.seconds = self.base_seconds + self.t0.elapsed().as_secs_f64();
        c
    }

    fn finish(self) -> Curve {
        self.bar.finish_and_clear();
        self.snapshot()
    }
}

impl Batch {
    /// The batch's tensors on `device` (a no-op on the CPU).
    fn on(self, device: tch::Device) -> Batch {
        Batch {
            x: self.x.to_device(device),
            a: self.a.to_device(device),
            u: self.u.to_device(device),
            ..self
        }
    }
}

/// Draws the batches of steps `steps` from `rng` and sends them until the receiver hangs up.
fn produce(
    tx: &crossbeam_channel::Sender<Batch>,
    mut rng: Rng,
    train: &Dataset,
    steps: std::ops::Range<usize>,
    batch: usize,
) {
    for _ in steps {
        let idx: Vec<usize> = (0..batch).map(|_| rng.below(train.len())).collect();
        let flips: Vec<bool> = (0..batch).map(|_| rng.chance(0.5)).collect();
        let (x, a, u) = train.batch(&idx, &flips);
        if tx
            .send(Batch {
                idx,
                flips,
                x,
                a,
                u,
            })
            .is_err()
        {
            return; // the training loop ended early (error)
        }
    }
}

/// The loss of one batch and its task part: alpha vs ground truth, plus (with a teacher)
/// alpha vs the teacher and SPKD, plus the L1 terms on γ.
#[allow(clippy::assign_op_pattern)]
fn losses(
    net: &Net,
    teacher: Option<&TeacherRef<'_>>,
    cfg: &TrainCfg,
    b: &Batch,
) -> (Tensor, Tensor) {
    let out = net.forward(&b.x, true);
    let task = charbonnier(&out.alpha, &b.a, &b.u);
    let mut loss = &task * cfg.w_gt;
    if let Some(t) = teacher {
        let (t_alpha, t_features) = match t.outputs {
            Some(o) => o.gather(&b.idx, &b.flips),
            None => {
                let o = tch::no_grad(|| t.net.forward(&b.x, false));
                (o.alpha, o.features)
            }
        };
        loss = loss + charbonnier(&out.alpha, &t_alpha, &b.u) * cfg.w_kd;
        if cfg.w_spkd > 0.0 {
            let sp = spkd(
                &out.features,
                &t_features,
                &t.chan_map,
                cfg.spkd_deepest_only,
                t.projection,
            );
            loss = loss + sp * cfg.w_spkd;
        }
    }
    if (cfg.l1_enc > 0.0 || cfg.l1_dec > 0.0) && !cfg.proximal_l1 {
        let (enc, dec) = net.gamma_tensors();
        for g in enc {
            loss = loss + g.abs().sum(Kind::Float) * cfg.l1_enc;
        }
        for g in dec {
            loss = loss + g.abs().sum(Kind::Float) * cfg.l1_dec;
        }
    }
    (loss, task)
}

/// The proximal step of the L1 penalty on every BatchNorm γ after an optimizer step with
/// learning rate `lr`: soft thresholding by `lr·λ` (λ per encoder / decoder).
fn proximal_l1_step(net: &Net, lr: f64, cfg: &TrainCfg) {
    let (enc, dec) = net.gamma_tensors();
    tch::no_grad(|| {
        for (gammas, l1) in [(enc, cfg.l1_enc), (dec, cfg.l1_dec)] {
            let t = lr * l1;
            for g in gammas {
                let shrunk = g.sign() * (g.abs() - t).clamp_min(0.0);
                g.shallow_clone().copy_(&shrunk);
            }
        }
    });
}

/// Trains `net` (whose variables live in `vs`) on `train`; validation SAD on `val`.
/// Resumes from `{dir}/{name}.ckpt.*` when present and checkpoints every `ckpt_every` steps.
pub fn train(
    net: &Net,
    vs: &mut nn::VarStore,
    teacher: Option<&TeacherRef<'_>>,
    train: &Dataset,
    val: &Dataset,
    cfg: &TrainCfg,
    dir: &Path,
) -> Result<Curve> {
    std::fs::create_dir_all(dir)?;
    let ckpt = Checkpoint::new(dir, &cfg.name);
    let (start, curve) = ckpt.resume(vs, &cfg.name)?;
    let mut opt = nn::Adam::default().build(vs, cfg.lr)?;
    let rng = Rng::new(cfg.seed ^ 0xA5A5_0000 ^ start as u64);
    let mut log = Log::new(cfg, curve, start);
    // Batches are drawn and assembled on a producer thread and handed over through a bounded
    // channel, so that the next batch is ready when the optimizer step ends (back-pressure:
    // at most PREFETCH batches wait). The draw order is the same as without the thread.
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(PREFETCH);
        let (steps, batch) = (start..cfg.steps, cfg.batch);
        scope.spawn(move || produce(&tx, rng, train, steps, batch));
        let plateau_state = |c: &Curve| cfg.plateau.map(|p| p.state(&c.val_steps, &c.val_sad));
        let mut plateau = plateau_state(&log.curve);
        for step in start..cfg.steps {
            if plateau.is_some_and(|p| p.done) {
                eprintln!(
                    "[{}] plateau after {step} steps: no validation gain over the last 20 %",
                    cfg.name
                );
                break;
            }
            let lr = match plateau {
                Some(p) => cfg.lr * p.lr_factor,
                None if cfg.constant_lr => cfg.lr,
                None => cosine_lr(cfg.lr, step, cfg.steps),
            };
            opt.set_lr(lr);
            let b = rx
                .recv()
                .context("the batch producer thread stopped")?
                .on(net.device());
            let (loss, task) = losses(net, teacher, cfg, &b);
            opt.backward_step(&loss);
            if cfg.proximal_l1 {
                proximal_l1_step(net, lr, cfg);
            }
            log.step(
                step,
                loss.double_value(&[]),
                task.double_value(&[]),
                net,
                val,
            );
            plateau = plateau_state(&log.curve);
            let last = step + 1 == cfg.steps || plateau.is_some_and(|p| p.done);
            if cfg.ckpt_every > 0 && (step + 1) % cfg.ckpt_every == 0 && !last {
                ckpt.save(vs, step + 1, log.snapshot())?;
            }
        }
        Ok(())
    })?;
    let curve = log.finish();
    ckpt.remove();
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Generator, procedural_texture};
    use crate::nets::{Arch, BnInit};

    #[test]
    fn proximal_l1_step_soft_thresholds_gammas_to_exact_zeros() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = Net::new(
            &vs.root(),
            &Arch::from_levels([8, 8, 8, 8]),
            BnInit::PRUNING,
        );
        let (enc, _) = net.gamma_tensors();
        // Encoder γ: a spread of values around the threshold 0.5 · 1.0 = 0.5.
        tch::no_grad(|| {
            let v: Vec<f32> = (0..8).map(|i| -0.8 + 0.2 * i as f32).collect();
            enc[0].shallow_clone().copy_(&Tensor::from_slice(&v));
        });
        let cfg = TrainCfg {
            name: "t".into(),
            steps: 1,
            batch: 1,
            lr: 0.5,
            l1_enc: 1.0,
            l1_dec: 0.0,
            w_gt: 1.0,
            w_kd: 0.0,
            w_spkd: 0.0,
            eval_every: 1,
            ckpt_every: 0,
            seed: 0,
            plateau: None,
            proximal_l1: true,
            constant_lr: true,
            spkd_deepest_only: false,
            spkd_projection: false,
        };
        proximal_l1_step(&net, cfg.lr, &cfg);
        let (enc, dec) = net.gamma_tensors();
        let g = Vec::<f32>::try_from(enc[0]).unwrap();
        let want = [-0.3, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
        // The decoder's λ is 0: untouched (γ = 0.5 from the pruning init).
        let d = Vec::<f32>::try_from(dec[0]).unwrap();
        assert!(d.iter().all(|&x| (x - 0.5).abs() < 1e-7));
    }

    #[test]
    fn plateau_halves_the_lr_on_stalls_and_stops_only_without_gain_in_the_last_fifth() {
        let p = Plateau {
            min_steps: 400,
            patience: 2,
            min_gain: 0.01,
        };
        let steps: Vec<usize> = (1..=10).map(|k| k * 100).collect();
        // Still improving at the end: no stop, lr untouched.
        let falling: Vec<f64> = (0..10).map(|k| 1.0 - 0.05 * k as f64).collect();
        let st = p.state(&steps, &falling);
        assert_eq!(st.lr_factor, 1.0);
        assert!(!st.done);
        // Best at step 500, then flat: two stalls → one halving; the last 20 % (steps > 800)
        // gained nothing → done.
        let flat = [1.0, 0.9, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6];
        let st = p.state(&steps, &flat);
        assert_eq!(
            st.lr_factor, 0.25,
            "stalls at 600+700 and 800+900 halve twice"
        );
        assert!(st.done);
        // The same history before min_steps is not done.
        assert!(!p.state(&steps[..3], &flat[..3]).done);
        // A late gain of more than 1 % keeps it going.
        let mut late = flat;
        late[9] = 0.55;
        assert!(!p.state(&steps, &late).done);
        // A resumed run sees the same state from the same history.
        assert_eq!(p.state(&steps, &flat), p.state(&steps, &flat));
    }

    #[test]
    fn the_spkd_projection_compares_all_teacher_channels_and_learns() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let student = Arch::from_levels([4, 4, 8, 6]);
        let teacher = Arch::from_levels([8, 8, 16, 16]);
        let proj = spkd_projection(&vs.root(), &student, &teacher);
        assert_eq!(proj.ws.size(), [16, 6, 1, 1]);
        let s_feat = Tensor::rand([2, 6, 8, 8], (Kind::Float, tch::Device::Cpu));
        let t_feat = Tensor::rand([2, 16, 8, 8], (Kind::Float, tch::Device::Cpu));
        // Deepest stage only: one pair of maps; the channel map would pick 6 of the 16 teacher
        // channels, the projection compares all of them.
        let map = vec![(0..6).collect::<Vec<i64>>()];
        let with = spkd(
            std::slice::from_ref(&s_feat),
            std::slice::from_ref(&t_feat),
            &map,
            true,
            Some(&proj),
        );
        let without = spkd(
            std::slice::from_ref(&s_feat),
            std::slice::from_ref(&t_feat),
            &map,
            true,
            None,
        );
        assert!(with.double_value(&[]).is_finite());
        assert!((with.double_value(&[]) - without.double_value(&[])).abs() > 1e-6);
        // The loss reaches the projection's weights.
        with.backward();
        let g = proj.ws.grad().abs().sum(Kind::Float).double_value(&[]);
        assert!(g > 0.0, "no gradient into the projection");
    }

    #[test]
    fn cached_teacher_outputs_equal_a_fresh_forward_pass() {
        let mut r = Rng::new(7);
        let g = Generator::new((0..3).map(|i| procedural_texture(&mut r, i)).collect());
        let data = Dataset::generate(&g, 3, 5, 64, 1);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = Net::new(
            &vs.root(),
            &Arch::from_levels([8, 8, 16, 16]),
            BnInit::STANDARD,
        );
        // Batch 3 so that the cache is built from several chunks, one of them partial.
        let cache = TeacherOutputs::compute(&net, &data, 3);
        let idx = [4, 0, 2, 4];
        let flips = [true, false, true, false];
        let (alpha, features) = cache.gather(&idx, &flips);
        let (x, _, _) = data.batch(&idx, &flips);
        let fresh = tch::no_grad(|| net.forward(&x, false));
        let max_diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        let d = max_diff(&alpha, &fresh.alpha);
        assert!(d < 1e-5, "alpha differs by {d}");
        assert_eq!(features.len(), fresh.features.len());
        for (c, f) in features.iter().zip(&fresh.features) {
            assert!(c.size()[2] <= 16);
            let d = max_diff(c, &pooled(f));
            assert!(d < 1e-5, "features differ by {d}");
        }
        // The SPKD term is the same whether the teacher side is pooled first or not.
        let map = crate::prune::identity_map(&net.arch);
        let student: Vec<Tensor> = fresh.features.iter().map(|f| f * 0.5 + 0.1).collect();
        let a = spkd(&student, &features, &map, false, None).double_value(&[]);
        let b = spkd(&student, &fresh.features, &map, false, None).double_value(&[]);
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        // Mirrored rows differ from the unmirrored ones (the cache keeps both states).
        let (a0, _) = cache.gather(&[1], &[false]);
        let (a1, _) = cache.gather(&[1], &[true]);
        assert!(max_diff(&a0, &a1) > 0.0);
    }
}
