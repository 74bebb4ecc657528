//! The settings of a run: the full run that makes the shipped models and the quick CI run.

use std::path::PathBuf;

use serde::Serialize;
use slimmatte::matte::PAD_MULTIPLE;

use crate::data::BankSettings;
use crate::distill::{Plateau, TrainCfg};
use crate::nets::LEVELS;

/// Threads the latency budget is defined at (ONNX Runtime, each candidate in a pool of its
/// own) and libtorch trains with: a 2-core machine, the one this project is built on.
pub const BUDGET_THREADS: usize = 2;

/// Settings of a run of the pipeline.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub quick: bool,
    pub work: PathBuf,
    pub models: PathBuf,
    pub seed: u64,
    pub teacher_levels: [usize; LEVELS],
    pub crop: usize,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    pub test_size: usize,
    pub batch: usize,
    /// The teacher's most steps: it trains until validation plateaus (`teacher_plateau`).
    pub steps_teacher: usize,
    pub teacher_plateau: Plateau,
    pub teacher_eval_every: usize,
    /// The matte bank (real mattes pulled from the photographs, `data::bank`).
    pub bank: BankSettings,
    pub steps_prune: usize,
    pub steps_slim: usize,
    pub lr: f64,
    pub l1_enc: f64,
    pub l1_dec: f64,
    pub w_kd: f64,
    pub w_spkd: f64,
    /// Ablation: let stage 1 train the BN β (the paper freezes it at 0).
    pub stage1_train_beta: bool,
    pub budget_ms: f64,
    /// Width × height the budget is for (the net runs at the size padded to multiples of 16).
    pub at: (usize, usize),
    pub threads: usize,
    pub round: usize,
    pub search_iters: usize,
    /// Suffix of every output file name (a second operating point next to the shipped one).
    pub tag: String,
    /// Where the nets train: `cpu` or `cuda` (batches and the teacher cache live there too).
    pub device: String,
    /// The paper-faithful arm of the sparsity runs (`--faithful`, issue #14): stage 1 and
    /// Network Slimming's sparse run from random init instead of the teacher's convolutions,
    /// SPKD on the deepest encoder stage at weight 1, a constant learning rate and proximal L1
    /// steps so that sparsity finishes (γ exactly 0).
    pub faithful: bool,
}

impl Settings {
    /// The full run that produces the shipped models (~1 h on 2 cores).
    pub fn full(work: PathBuf, models: PathBuf) -> Self {
        Settings {
            quick: false,
            work,
            models,
            seed: 2022,
            teacher_levels: [32, 64, 128, 160],
            crop: 128,
            n_train: 6000,
            n_val: 200,
            n_test: 100,
            test_size: 256,
            batch: 8,
            steps_teacher: 12000,
            teacher_plateau: Plateau {
                min_steps: 4000,
                patience: 4,
                min_gain: 0.005,
            },
            teacher_eval_every: 250,
            bank: BankSettings {
                count: 1500,
                size: 192,
                seed: 0, // set from `seed` (seed·10 + 7) when the data is made
                iterations: 256,
            },
            steps_prune: 2400,
            steps_slim: 2400,
            lr: 2e-3,
            l1_enc: 1e-4,
            l1_dec: 1e-5,
            w_kd: 1.0,
            w_spkd: 0.5,
            stage1_train_beta: false,
            budget_ms: 10.0,
            at: (640, 360),
            threads: BUDGET_THREADS,
            round: 8,
            search_iters: 6,
            tag: String::new(),
            device: "cpu".into(),
            faithful: false,
        }
    }

    /// CI mode: every stage end to end on a tiny set in a few minutes.
    pub fn quick(work: PathBuf, models: PathBuf) -> Self {
        Settings {
            quick: true,
            teacher_levels: [16, 16, 32, 32],
            crop: 64,
            n_train: 96,
            n_val: 8,
            n_test: 8,
            test_size: 64,
            batch: 4,
            steps_teacher: 150,
            teacher_plateau: Plateau {
                min_steps: 100,
                patience: 2,
                min_gain: 0.005,
            },
            teacher_eval_every: 25,
            bank: BankSettings {
                count: 6,
                size: 64,
                seed: 0, // set from `seed` (seed·10 + 7) when the data is made
                iterations: 32,
            },
            steps_prune: 60,
            steps_slim: 60,
            search_iters: 2,
            ..Settings::full(work, models)
        }
    }

    /// The libtorch device of `device`; `cuda` without a usable GPU is an error that says why.
    pub fn tch_device(&self) -> anyhow::Result<tch::Device> {
        match self.device.as_str() {
            "cpu" => Ok(tch::Device::Cpu),
            "cuda" if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            "cuda" => anyhow::bail!(
                "--device cuda: no CUDA device is usable by this libtorch (scripts/setup_libtorch.sh \
                 assembles a CPU-only one; point LIBTORCH at a CUDA build of libtorch 2.13.0)"
            ),
            other => anyhow::bail!("--device must be cpu or cuda, not {other:?}"),
        }
    }

    /// The padded input size `(h, w)` of the budget resolution (multiples of the matting
    /// model's [`PAD_MULTIPLE`]).
    pub fn padded(&self) -> (usize, usize) {
        (
            self.at.1.div_ceil(PAD_MULTIPLE) * PAD_MULTIPLE,
            self.at.0.div_ceil(PAD_MULTIPLE) * PAD_MULTIPLE,
        )
    }

    /// The training settings of run `name`: `l1` adds the L1 term on γ, `teacher` the
    /// distillation terms; the seed is the master seed mixed with the name.
    pub fn cfg(&self, name: &str, steps: usize, l1: bool, teacher: bool) -> TrainCfg {
        TrainCfg {
            name: name.into(),
            steps,
            batch: self.batch,
            lr: self.lr,
            l1_enc: if l1 { self.l1_enc } else { 0.0 },
            l1_dec: if l1 { self.l1_dec } else { 0.0 },
            w_gt: 1.0,
            w_kd: if teacher { self.w_kd } else { 0.0 },
            w_spkd: match (teacher, self.faithful) {
                (false, _) => 0.0,
                (true, true) => 1.0,
                (true, false) => self.w_spkd,
            },
            eval_every: (steps / 10).max(1),
            ckpt_every: if self.quick { 0 } else { 250 },
            seed: self.seed ^ fxhash(name),
            plateau: None,
            proximal_l1: self.faithful && l1,
            constant_lr: self.faithful && l1,
            spkd_deepest_only: self.faithful,
            spkd_projection: false,
        }
    }
}

/// FNV-1a of `s` (the name of a run → its seed).
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_setting_is_checked_with_a_reason() {
        let mut s = Settings::quick("w".into(), "m".into());
        assert_eq!(s.tch_device().unwrap(), tch::Device::Cpu);
        s.device = "cuda".into();
        match s.tch_device() {
            Ok(d) => assert!(tch::Cuda::is_available() && d == tch::Device::Cuda(0)),
            Err(e) => assert!(e.to_string().contains("no CUDA device"), "{e}"),
        }
        s.device = "gpu".into();
        assert!(
            s.tch_device()
                .unwrap_err()
                .to_string()
                .contains("cpu or cuda")
        );
    }
}
