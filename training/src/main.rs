//! `slimmatte-train`: the training / pruning / export pipeline. See `training/README.md`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use slimmatte_training::band;
use slimmatte_training::pipeline::{self, Settings};

#[derive(Parser)]
#[command(
    name = "slimmatte-train",
    about = "Distillation-based channel pruning of the slimmatte matting net (tch), ONNX export"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// Work folder: datasets are regenerated, trained nets / checkpoints live here (resumable).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Where the ONNX models, cards, results.md and plots go.
    #[arg(long)]
    models: Option<PathBuf>,
    /// Tiny CI run of every stage (a few minutes).
    #[arg(long)]
    quick: bool,
    /// Latency budget of the shipped student, ms.
    #[arg(long, default_value_t = 10.0)]
    budget_ms: f64,
    /// Frame size of the budget, WIDTHxHEIGHT (padded to multiples of 16 for the net).
    #[arg(long, default_value = "640x360")]
    at: String,
    /// ONNX Runtime / libtorch threads (the latency budget is defined at 2: a 2-core machine).
    #[arg(long, default_value_t = slimmatte_training::pipeline::settings::BUDGET_THREADS)]
    threads: usize,
    /// Master seed.
    #[arg(long, default_value_t = 2022)]
    seed: u64,
    /// Scale every training run's steps by this factor.
    #[arg(long, default_value_t = 1.0)]
    steps_scale: f64,
    /// Suffix of the output file names, e.g. `_10ms` → models/matting_student_10ms.onnx.
    #[arg(long, default_value = "")]
    tag: String,
    /// Override the teacher's steps.
    #[arg(long)]
    steps_teacher: Option<usize>,
    /// Override the steps of the full-width sparsity runs (stage 1, Network Slimming).
    #[arg(long)]
    steps_prune: Option<usize>,
    /// Override the steps of the slim runs (stage 2, fine-tuning, small student).
    #[arg(long)]
    steps_slim: Option<usize>,
    /// Override the number of training crops.
    #[arg(long)]
    n_train: Option<usize>,
    /// Override the weight of the alpha loss vs the teacher's output.
    #[arg(long)]
    w_kd: Option<f64>,
    /// Override the weight of the SPKD feature-similarity loss.
    #[arg(long)]
    w_spkd: Option<f64>,
    /// The paper-faithful arm of the sparsity runs (issue #14): random-init stage 1 and
    /// Network Slimming, deepest-stage SPKD at weight 1, constant lr, proximal L1 steps.
    /// Use its own --work folder.
    #[arg(long)]
    faithful: bool,
    /// Where the nets train: cpu or cuda (batches and the teacher cache go there too).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// Ablation: stage 1 trains the BatchNorm β instead of keeping it frozen at 0 (the paper's
    /// choice, the default).
    #[arg(long)]
    stage1_train_beta: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything: data, teacher, stage 1, budget search, stage 2, baselines, export, cards, plots.
    All(Common),
    /// `all --quick` into a temporary folder, failing unless the loss falls and ONNX matches tch.
    Quick(Common),
    /// Only the data: the matte bank (cached in the work folder) and the splits, with preview
    /// pictures in `<models>/plots/` (data_samples.png, matte_bank.png).
    Data(Common),
    /// Only the latency-budget search (trains teacher / stage 1 first when the work folder lacks them).
    Budget(Common),
    /// The temporal student (the previous frame's matte as a second input), fine-tuned from the
    /// shipped student on moving pairs, with a single-frame control run; needs the student's
    /// run in the work folder (`all` first). `--steps-slim` overrides its 6,000 steps.
    Temporal(Common),
    /// Issue #14: DCP vs Network Slimming at equal prune rate and equal FLOPs, in the
    /// paper-faithful and the teacher-init arm, with controls, seeds and paired bootstrap
    /// intervals (models/compare.md and a block of models/results.md); needs the teacher and the
    /// pipeline's sparse runs in the work folder (`all` first). Resumable.
    Compare(CompareArgs),
    /// The band net (issue #28): the full-resolution student that makes the matte from the
    /// closed-form refinement's coarse solution. Data, teacher, DCP, budget search, stage 2,
    /// Network Slimming and uniform baselines at equal FLOPs, export of models/band_*.onnx,
    /// models/band_compare.md. Resumable.
    Band(BandArgs),
}

#[derive(Args, Clone)]
struct BandArgs {
    #[command(flatten)]
    common: Common,
    /// Stop after this stage: data, teacher, sparse or all.
    #[arg(long, default_value = "all", value_parser = ["data", "teacher", "sparse", "all"])]
    until: String,
    /// Budget of the band net on the tiles of a 640×360 frame, ms.
    #[arg(long)]
    band_budget_ms: Option<f64>,
    /// Hidden widths of the band teacher, comma-separated (three layers; default 48,48,48).
    #[arg(long, value_delimiter = ',')]
    band_teacher_widths: Option<Vec<usize>>,
    /// Temporal band nets: the previous frame's matte as a sixth pixel channel.
    #[arg(long)]
    temporal: bool,
    /// Weight of the temporal-consistency loss of temporal band nets (the net's change from
    /// the previous frame against the truth's, the net's own output fed as the previous
    /// matte); 0 = none, as the shipped nets were trained.
    #[arg(long)]
    w_temporal: Option<f64>,
    /// Share of a temporal band net's training pairs that move slowly (0.15 of the data
    /// engine's moves); 0 as the shipped nets were trained.
    #[arg(long)]
    slow_share: Option<f32>,
}

#[derive(Args, Clone)]
struct CompareArgs {
    #[command(flatten)]
    common: Common,
    /// Arms to run.
    #[arg(long, value_delimiter = ',')]
    arms: Option<Vec<slimmatte_training::compare::Arm>>,
    /// Prune rates (comma-separated).
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<f64>>,
    /// Seeds per cell.
    #[arg(long)]
    seeds: Option<usize>,
    /// Fine-tuning steps of every cell.
    #[arg(long)]
    compare_steps: Option<usize>,
    /// Steps of the faithful arm's sparse runs.
    #[arg(long)]
    sparse_steps: Option<usize>,
    /// Test images.
    #[arg(long)]
    n_test: Option<usize>,
    /// Write the report from the cached cells only (trains nothing; unfinished cells are left
    /// out of the tables).
    #[arg(long)]
    report_only: bool,
}

fn parse_at(s: &str) -> Result<(usize, usize)> {
    let Some((w, h)) = s.split_once(['x', 'X']) else {
        bail!("--at must look like 640x360, got '{s}'");
    };
    Ok((w.trim().parse()?, h.trim().parse()?))
}

fn settings(c: &Common, quick: bool) -> Result<Settings> {
    let root = slimmatte::paths::project_root();
    let tmp_root = std::env::temp_dir().join(format!("slimmatte-quick-{}", std::process::id()));
    // A folder given on the command line, else a temporary one (quick) or the project's.
    let folder = |given: &Option<PathBuf>, temporary: &str, project: &str| {
        given.clone().unwrap_or_else(|| {
            if quick {
                tmp_root.join(temporary)
            } else {
                root.join(project)
            }
        })
    };
    let work = folder(&c.work, "work", "target/slimmatte-train/full");
    let models = folder(&c.models, "models", "models");
    let mut s = if quick {
        Settings::quick(work, models)
    } else {
        Settings::full(work, models)
    };
    s.budget_ms = c.budget_ms;
    s.at = parse_at(&c.at)?;
    s.threads = c.threads.max(1);
    s.seed = c.seed;
    s.tag = c.tag.clone();
    let sc = |n: usize| ((n as f64 * c.steps_scale).round() as usize).max(1);
    s.steps_teacher = sc(s.steps_teacher);
    s.steps_prune = sc(s.steps_prune);
    s.steps_slim = sc(s.steps_slim);
    s.steps_teacher = c.steps_teacher.unwrap_or(s.steps_teacher);
    s.steps_prune = c.steps_prune.unwrap_or(s.steps_prune);
    s.steps_slim = c.steps_slim.unwrap_or(s.steps_slim);
    s.n_train = c.n_train.unwrap_or(s.n_train);
    s.w_kd = c.w_kd.unwrap_or(s.w_kd);
    s.w_spkd = c.w_spkd.unwrap_or(s.w_spkd);
    s.stage1_train_beta = c.stage1_train_beta;
    s.device = c.device.clone();
    s.faithful = c.faithful;
    s.tch_device()?;
    Ok(s)
}

/// The band pipeline's settings from its command line.
fn band_settings(b: &BandArgs) -> Result<band::BandSettings> {
    let c = &b.common;
    let s = settings(c, c.quick)?;
    let mut bs = if s.quick {
        band::BandSettings::quick(s.work.clone(), s.models.clone())
    } else {
        band::BandSettings::full(s.work.clone(), s.models.clone())
    };
    bs.seed = s.seed;
    bs.threads = s.threads;
    bs.until = b.until.clone();
    bs.temporal = b.temporal;
    bs.w_temporal = b.w_temporal.unwrap_or(bs.w_temporal);
    bs.slow_share = b.slow_share.unwrap_or(bs.slow_share);
    let sc = |n: usize| ((n as f64 * c.steps_scale).round() as usize).max(1);
    bs.steps_teacher = c.steps_teacher.unwrap_or(sc(bs.steps_teacher));
    bs.steps_sparse = c.steps_prune.unwrap_or(sc(bs.steps_sparse));
    bs.steps_slim = c.steps_slim.unwrap_or(sc(bs.steps_slim));
    bs.n_train = c.n_train.unwrap_or(bs.n_train);
    bs.budget_ms = b.band_budget_ms.unwrap_or(bs.budget_ms);
    if let Some(w) = &b.band_teacher_widths {
        anyhow::ensure!(
            w.len() == band::net::HIDDEN && w.iter().all(|&c| c > 0),
            "--band-teacher-widths: {} positive widths, one per hidden layer (got {w:?})",
            band::net::HIDDEN
        );
        bs.teacher = band::net::Widths(w.clone());
    }
    Ok(bs)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let t = Instant::now();
    match cli.cmd {
        Cmd::All(c) => {
            let s = settings(&c, c.quick)?;
            tch::set_num_threads(s.threads as i32);
            let o = pipeline::run_all(&s)?;
            if s.quick {
                pipeline::check_quick(&o)?;
            }
            println!("{}", slimmatte_training::card::table(&o.rows));
            println!("models, cards and results in {}", s.models.display());
        }
        Cmd::Quick(c) => {
            let s = settings(&c, true)?;
            tch::set_num_threads(s.threads as i32);
            let o = pipeline::run_all(&s)?;
            println!("{}", slimmatte_training::card::table(&o.rows));
            pipeline::check_quick(&o)?;
            // The temporal student from the quick student (fails unless its loss falls and
            // its ONNX file matches tch).
            slimmatte_training::temporal::run(&s, s.steps_slim)?;
            // The seed-method comparison on the quick nets (fails on any error).
            slimmatte_training::compare::run(&s, &slimmatte_training::compare::Plan::quick())?;
            // The band net's whole pipeline, temporal as shipped (fails unless the teacher's
            // loss falls and every ONNX file matches tch).
            // The temporal-consistency loss and slow pairs too (not the shipped recipe), so
            // every path of the band trainer runs.
            band::run(&band::BandSettings {
                temporal: true,
                w_temporal: 1.0,
                slow_share: 0.5,
                ..band::BandSettings::quick(s.work.join("band"), s.models.clone())
            })?;
            println!(
                "quick mode OK in {:.0} s (outputs in {})",
                t.elapsed().as_secs_f64(),
                s.models.display()
            );
        }
        Cmd::Band(b) => {
            // libtorch's OpenMP threads must not spin between training steps while ONNX
            // Runtime times the budget's candidates on the same cores.
            if std::env::var_os("OMP_WAIT_POLICY").is_none() {
                // SAFETY: no other thread runs yet.
                unsafe { std::env::set_var("OMP_WAIT_POLICY", "PASSIVE") };
            }
            let bs = band_settings(&b)?;
            tch::set_num_threads(bs.threads as i32);
            band::run(&bs)?;
            println!("band nets in {}", bs.models.display());
        }
        Cmd::Data(c) => {
            let s = settings(&c, c.quick)?;
            let d = pipeline::make_data(&s)?;
            pipeline::save_previews(&s, &d)?;
            println!("{}", d.description);
            println!("previews in {}", s.models.join("plots").display());
        }
        Cmd::Budget(c) => {
            let s = settings(&c, c.quick)?;
            tch::set_num_threads(s.threads as i32);
            pipeline::run_budget(&s)?;
        }
        Cmd::Compare(a) => {
            let s = settings(&a.common, a.common.quick)?;
            tch::set_num_threads(s.threads as i32);
            let mut plan = if s.quick {
                slimmatte_training::compare::Plan::quick()
            } else {
                slimmatte_training::compare::Plan::full(&s)
            };
            plan.arms = a.arms.unwrap_or(plan.arms);
            plan.rates = a.rates.unwrap_or(plan.rates);
            plan.seeds = a.seeds.unwrap_or(plan.seeds);
            plan.steps = a.compare_steps.unwrap_or(plan.steps);
            plan.sparse_steps = a.sparse_steps.unwrap_or(plan.sparse_steps);
            plan.n_test = a.n_test.unwrap_or(plan.n_test);
            plan.report_only = a.report_only;
            if plan.rates.iter().any(|r| !(0.0..1.0).contains(r)) {
                bail!("--rates must lie in [0, 1), got {:?}", plan.rates);
            }
            let c = slimmatte_training::compare::run(&s, &plan)?;
            println!(
                "{}",
                slimmatte_training::compare::report::reading(
                    &c,
                    &slimmatte_training::compare::report::diffs(&c)
                )
            );
            println!("report in {}", s.models.join("compare.md").display());
        }
        Cmd::Temporal(c) => {
            let s = settings(&c, c.quick)?;
            tch::set_num_threads(s.threads as i32);
            // Its own step count unless given: the slim runs' in quick mode.
            let steps = match (c.steps_slim, s.quick) {
                (Some(n), _) => n,
                (None, true) => s.steps_slim,
                (None, false) => slimmatte_training::temporal::STEPS,
            };
            slimmatte_training::temporal::run(&s, steps)?;
        }
    }
    eprintln!("done in {:.1} min", t.elapsed().as_secs_f64() / 60.0);
    Ok(())
}
