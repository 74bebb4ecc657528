//! The band net (`slimmatte-train band`): the full-resolution student that makes the matte
//! from the closed-form refinement's coarse solution ([`slimmatte::band_net`]), made by
//! distillation-based channel pruning (Yoon, Cho, Park 2022) as the matting net was:
//!
//! 1. **data**: composites of the data engine at a runtime crop's size, solved by the
//!    project's refinement at its default settings, cut into the runtime's tiles
//!    ([`data`]);
//! 2. **teacher**: a wide band net trained on the exact alpha;
//! 3. **DCP stage 1**: a full-width copy of the teacher trained with the task loss, the
//!    teacher's alpha and features (distillation) and L1 on the BatchNorm γ;
//! 4. **prune** at the rate the latency budget allows (measured as the element runs it on the tile
//!    batch of a 640×360 frame), **stage 2**: the pruned net fine-tuned with the same
//!    distillation loss;
//! 5. **baselines at equal FLOPs**: Network Slimming (L1 on γ with the task loss only, pruned,
//!    fine-tuned on the task loss) and uniform pruning (the same fraction of every layer by
//!    filter L1 norm, fine-tuned on the task loss);
//! 6. **export** of all four to `models/band_*.onnx` with cards, and the comparison on the
//!    test composites with paired bootstrap intervals (`models/band_compare.md`).
//!
//! Every run checkpoints and resumes; a finished stage is loaded, not rerun.

pub mod data;
pub mod export;
pub mod net;
pub mod report;
pub mod train;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::data::Generator;
use data::BandSet;
use net::Widths;
use train::{RunCfg, Trained};

/// Settings of `slimmatte-train band`.
#[derive(Clone, Debug, Serialize)]
pub struct BandSettings {
    pub quick: bool,
    pub work: PathBuf,
    pub models: PathBuf,
    pub seed: u64,
    /// Side of the training composites (a runtime crop at 640×360: solved at half resolution).
    pub size: usize,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    pub teacher: Widths,
    pub steps_teacher: usize,
    pub steps_sparse: usize,
    pub steps_slim: usize,
    pub lr: f64,
    pub l1_gamma: f64,
    pub distill: f64,
    pub features: f64,
    /// Task-loss weights of the gradient and squared-error terms ([`train::task_loss`]).
    pub w_grad: f64,
    pub w_mse: f64,
    /// Budget of the net's run on [`BandSettings::budget_tiles`] tiles, ms, timed as the element
    /// runs it ([`report::net_latency`]): the stage with the net may cost 1.3× the classical
    /// one (5.5–6.3 ms at 640×360 on 2 cores), which leaves about 1.7 ms for the net, the more
    /// numerous tiles of real frames and their gathering. (Through ONNX Runtime no pruned net
    /// fitted it; on the band net's own kernel the shipped [8, 8, 8] takes about 0.9 ms and the
    /// next probe, [8, 16, 16], about 2.6 times its multiply–accumulates.)
    pub budget_ms: f64,
    /// Tiles of the budget's batch: what a 640×360 frame of the tuning sequences sends.
    pub budget_tiles: usize,
    pub threads: usize,
    /// Channel counts are rounded up to multiples of this.
    pub round: usize,
    /// Stop after this stage (`data`, `teacher`, `sparse`, or `all`).
    pub until: String,
    /// Temporal band nets: the previous frame's matte as a sixth pixel channel, trained on the
    /// current frames of moving pairs.
    pub temporal: bool,
    /// Fine-tuning seeds of every pruned net in the comparison.
    pub seeds: usize,
    /// Weight of the temporal-consistency loss of temporal runs ([`train::temporal_loss`]):
    /// the net's change between the two frames of a pair against the truth's, as dtSSD
    /// measures it; 0 = none (the shipped nets; results/band_net.md says what 1 did).
    pub w_temporal: f64,
    /// Share of a temporal set's pairs that move slowly ([`data::SLOW_SPEED`]); 0 for the
    /// shipped nets.
    pub slow_share: f32,
}

impl BandSettings {
    /// Pixel channels of the nets.
    pub fn channels(&self) -> usize {
        if self.temporal {
            slimmatte::band_net::TEMPORAL_CHANNELS
        } else {
            slimmatte::band_net::CHANNELS
        }
    }
}

impl BandSettings {
    /// How the data's pairs are made (`None`: single frames, not a temporal net).
    pub fn pairs(&self) -> Option<data::Pairs> {
        self.temporal.then_some(data::Pairs {
            partners: self.w_temporal > 0.0,
            slow_share: self.slow_share,
        })
    }

    pub fn full(work: PathBuf, models: PathBuf) -> Self {
        Self {
            quick: false,
            work,
            models,
            seed: 2022,
            size: 448,
            n_train: 900,
            n_val: 60,
            n_test: 120,
            teacher: Widths(vec![48, 48, 48]),
            steps_teacher: 4000,
            steps_sparse: 1500,
            steps_slim: 2500,
            lr: 2e-3,
            l1_gamma: 2e-4,
            distill: 1.0,
            features: 0.1,
            w_grad: 1.0,
            w_mse: 1.0,
            budget_ms: 1.1,
            budget_tiles: 56,
            threads: 2,
            round: 8,
            until: "all".into(),
            temporal: false,
            seeds: 2,
            w_temporal: 0.0,
            slow_share: 0.0,
        }
    }

    pub fn quick(work: PathBuf, models: PathBuf) -> Self {
        Self {
            quick: true,
            size: 192,
            n_train: 16,
            n_val: 4,
            n_test: 6,
            teacher: Widths(vec![16, 16, 16]),
            steps_teacher: 100,
            steps_sparse: 30,
            steps_slim: 30,
            seeds: 2,
            ..Self::full(work, models)
        }
    }
}

/// The three splits.
pub struct Splits {
    pub train: BandSet,
    pub val: BandSet,
    pub test: BandSet,
    pub seconds: f64,
}

/// Generates the splits (seed streams `seed·10 + 4/5/6`, beside the matting net's 1/2/3/7).
pub fn make_splits(g: &Generator, s: &BandSettings) -> Splits {
    let t = Instant::now();
    let split = |seed: u64, n: usize| BandSet::generate(g, seed, n, s.size, s.threads, s.pairs());
    let train = split(s.seed * 10 + 4, s.n_train);
    let val = split(s.seed * 10 + 5, s.n_val);
    let test = split(s.seed * 10 + 6, s.n_test);
    eprintln!(
        "band data: {} / {} / {} composites of {}² → {} / {} / {} tiles in {:.0} s",
        train.samples(),
        val.samples(),
        test.samples(),
        s.size,
        train.tiles(),
        val.tiles(),
        test.tiles(),
        t.elapsed().as_secs_f64()
    );
    Splits {
        train,
        val,
        test,
        seconds: t.elapsed().as_secs_f64(),
    }
}

/// The teacher: the wide band net on the task loss alone.
pub fn teacher(s: &BandSettings, d: &Splits) -> Result<Trained> {
    let (vs, net) = train::new_net(&s.teacher, s.channels());
    let cfg = task_run(s, "band_teacher", s.steps_teacher, s.seed);
    train::train(vs, net, None, &d.train, &d.val, &cfg, &s.work)
}

/// A run on the task loss alone (no teacher, no sparsity) at the full learning rate.
pub fn task_run(s: &BandSettings, name: &str, steps: usize, seed: u64) -> RunCfg {
    RunCfg {
        name: name.into(),
        steps,
        lr: s.lr,
        distill: 0.0,
        features: 0.0,
        l1_gamma: 0.0,
        w_grad: s.w_grad,
        w_mse: s.w_mse,
        w_temporal: s.w_temporal,
        seed,
    }
}

/// A full-width copy of `src` (weights copied).
pub fn copy_of(src: &Trained) -> (tch::nn::VarStore, net::BandNetT) {
    let keep: Vec<Vec<usize>> = src.net.widths.0.iter().map(|&c| (0..c).collect()).collect();
    train::pruned(&src.net, &keep)
}

/// A sparsity run from the teacher's weights: DCP (`distil` true: task + teacher's alpha and
/// features + L1 on γ) or Network Slimming (task + L1 on γ).
pub fn sparse(s: &BandSettings, d: &Splits, teacher: &Trained, distil: bool) -> Result<Trained> {
    let (vs, net) = copy_of(teacher);
    let cfg = RunCfg {
        name: if distil {
            "band_dcp_sparse"
        } else {
            "band_ns_sparse"
        }
        .into(),
        steps: s.steps_sparse,
        lr: s.lr * 0.5,
        distill: if distil { s.distill } else { 0.0 },
        features: if distil { s.features } else { 0.0 },
        l1_gamma: s.l1_gamma,
        w_grad: s.w_grad,
        w_mse: s.w_mse,
        w_temporal: s.w_temporal,
        seed: s.seed + if distil { 1 } else { 2 },
    };
    train::train(vs, net, Some(&teacher.net), &d.train, &d.val, &cfg, &s.work)
}

/// Fine-tunes a pruned net: with distillation from the teacher (DCP's stage 2) or the task loss
/// alone (the baselines).
pub fn fine_tune(
    s: &BandSettings,
    d: &Splits,
    name: &str,
    (vs, net): (tch::nn::VarStore, net::BandNetT),
    teacher: &Trained,
    distil: bool,
    seed: u64,
) -> Result<Trained> {
    let cfg = RunCfg {
        name: name.into(),
        steps: s.steps_slim,
        lr: s.lr * 0.5,
        distill: if distil { s.distill } else { 0.0 },
        features: 0.0,
        l1_gamma: 0.0,
        w_grad: s.w_grad,
        w_mse: s.w_mse,
        w_temporal: s.w_temporal,
        seed,
    };
    train::train(vs, net, Some(&teacher.net), &d.train, &d.val, &cfg, &s.work)
}

/// Runs the stages up to `s.until`.
pub fn run(s: &BandSettings) -> Result<()> {
    let t0 = Instant::now();
    let mut ps = if s.quick {
        crate::pipeline::Settings::quick(s.work.clone(), s.models.clone())
    } else {
        crate::pipeline::Settings::full(s.work.clone(), s.models.clone())
    };
    ps.seed = s.seed;
    let g = crate::pipeline::stages::generator(&ps)?;
    let d = make_splits(&g, s);
    drop(g);
    data::check(&d.val)?;
    let coarse = |set: &BandSet| set.coarse_sad.iter().sum::<f64>() / set.samples().max(1) as f64;
    eprintln!(
        "band data: mean SAD of the coarse matte: validation {:.3}, test {:.3}",
        coarse(&d.val),
        coarse(&d.test)
    );
    if s.until == "data" {
        return Ok(());
    }
    let teacher = teacher(s, &d)?;
    if s.quick {
        let (first, last) = teacher.curve.first_last(0.3);
        anyhow::ensure!(
            last < first,
            "quick band teacher: the training loss did not fall ({first:.4} → {last:.4})"
        );
    }
    if s.until == "teacher" {
        // The teacher alone, to look at (`slimmatte eval --band-model …`).
        let path = s.models.join("band_teacher.onnx");
        export::export(&teacher.net, &path, "band net teacher")?;
        report::check_parity(&teacher.net, &path, &d.val, s.threads)?;
        eprintln!("teacher exported to {}", path.display());
        return Ok(());
    }
    report::finish(s, &d, teacher, t0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slimmatte::band_net::{
        BandNet, TEMPORAL_CHANNELS, TILE_INPUT, TILE_MARGIN, TileBatch, cell_offset, gather_tiles,
    };
    use tch::Tensor;

    /// The runtime's band net (tiles gathered from a frame, ONNX Runtime, corrections added to
    /// the coarse matte) gives what the tch net gives on the same tiles.
    #[test]
    fn the_runtime_band_net_matches_the_tch_net_on_a_frame() {
        let g = crate::data::test_generator(3);
        let size = 96;
        let s = g.sample(crate::data::sample_seed(11, 0), size);
        let data::Staged { frame, coarse } = data::staged(&s, size);
        let view = frame.view();
        let (crop, coarse) = coarse.expect("the sample has an unknown band");
        // A temporal net with a non-zero head (a fresh one gives back the coarse matte).
        let (_vs, net) = train::new_net(&Widths(vec![8, 8, 8]), TEMPORAL_CHANNELS);
        tch::no_grad(|| {
            let mut w = net.head.ws.shallow_clone();
            w.copy_(&(Tensor::randn(w.size(), (tch::Kind::Float, tch::Device::Cpu)) * 0.1));
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("band.onnx");
        export::export(&net, &path, "test").unwrap();
        let mut runtime = BandNet::load(&path, 1).unwrap();
        assert!(runtime.is_temporal());
        let previous: Vec<u8> = (0..size * size).map(|i| (i * 7 % 256) as u8).collect();
        let mut alpha = coarse.clone();
        let tiles = runtime
            .refine(&view, crop, &mut alpha, Some(&previous))
            .unwrap();
        assert!(tiles > 0);
        // The same tiles through tch, pixel planes, written where the runtime writes.
        let mut batch = TileBatch::default();
        gather_tiles(
            &view,
            crop,
            &coarse,
            TEMPORAL_CHANNELS,
            Some(&previous),
            &mut batch,
        );
        let per = TEMPORAL_CHANNELS * TILE_INPUT * TILE_INPUT;
        let mut planes = vec![0.0f32; batch.len() * per];
        for (src, dst) in batch
            .input
            .chunks_exact(per)
            .zip(planes.chunks_exact_mut(per))
        {
            for k in 0..TEMPORAL_CHANNELS {
                for v in 0..TILE_INPUT {
                    for u in 0..TILE_INPUT {
                        dst[(k * TILE_INPUT + v) * TILE_INPUT + u] =
                            src[cell_offset(k, u, v, TEMPORAL_CHANNELS)];
                    }
                }
            }
        }
        let t = TILE_INPUT as i64;
        let x =
            Tensor::from_slice(&planes).view([batch.len() as i64, TEMPORAL_CHANNELS as i64, t, t]);
        let want =
            Vec::<f32>::try_from(&tch::no_grad(|| net.forward(&x, false)).flatten(0, -1)).unwrap();
        let (cx, cy, cw, ch) = crop;
        let mut checked = 0;
        for (k, &(tx, ty)) in batch.origins.iter().enumerate() {
            for y in ty.max(cy)..(ty + slimmatte::band_net::TILE).min(cy + ch) {
                for x in tx.max(cx)..(tx + slimmatte::band_net::TILE).min(cx + cw) {
                    if view[[y, x, 3]] == 128 {
                        let (u, v) = (x - tx + TILE_MARGIN, y - ty + TILE_MARGIN);
                        let w = want[(k * TILE_INPUT + v) * TILE_INPUT + u];
                        let got = alpha[(y - cy) * cw + (x - cx)];
                        assert!((w - got).abs() < 1e-4, "({x}, {y}): tch {w}, runtime {got}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "{checked} pixels compared");
        // The net changed the matte somewhere (the comparison is not coarse against coarse).
        assert!(alpha.iter().zip(&coarse).any(|(a, c)| (a - c).abs() > 1e-3));
    }
}
