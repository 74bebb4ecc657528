//! The whole experiment: data → teacher → stage 1 (sparse distillation) → latency-budget search
//! → stage 2 (slim student, two inits) → baselines (uniform pruning, Network Slimming, unpruned
//! small student) → ONNX export + parity + latency → model cards, results table, plots.
//!
//! Every trained net is saved in the work folder as `{name}.safetensors` + `{name}.curve.json`;
//! a rerun skips finished stages and resumes an interrupted one from its checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use slimmatte::metrics::MatteErrors;
use tch::{Device, Kind, Tensor, nn};

use crate::card::{self, Errors, ModelCard, Row};
use crate::data::{self, Dataset, Generator};
use crate::distill::{self, Curve, TeacherOutputs, TeacherRef, TrainCfg};
use crate::export;
use crate::nets::{Arch, BnInit, LEVELS, Net};
use crate::plots;
use crate::prune::{self, Probe};

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
    pub steps_teacher: usize,
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
}

impl Settings {
    /// The full run that produces the shipped models (~1 h on 2 cores).
    pub fn full(work: PathBuf, models: PathBuf) -> Self {
        Settings {
            quick: false,
            work,
            models,
            seed: 2022,
            teacher_levels: [24, 48, 96, 128],
            crop: 128,
            n_train: 6000,
            n_val: 48,
            n_test: 100,
            test_size: 256,
            batch: 8,
            steps_teacher: 4800,
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
            threads: 2,
            round: 8,
            search_iters: 6,
            tag: String::new(),
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
            steps_prune: 60,
            steps_slim: 60,
            search_iters: 2,
            ..Settings::full(work, models)
        }
    }

    /// The padded input size `(h, w)` of the budget resolution.
    pub fn padded(&self) -> (usize, usize) {
        (self.at.1.div_ceil(16) * 16, self.at.0.div_ceil(16) * 16)
    }

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
            w_spkd: if teacher { self.w_spkd } else { 0.0 },
            eval_every: (steps / 10).max(1),
            ckpt_every: if self.quick { 0 } else { 250 },
            seed: self.seed ^ fxhash(name),
        }
    }
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The data splits.
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    pub description: String,
}

pub fn make_data(s: &Settings) -> Result<Splits> {
    let t = Instant::now();
    let dirs = data::texture_dirs();
    let textures = data::load_textures(&dirs, 512);
    let names: Vec<String> = textures.iter().map(|t| t.name.clone()).collect();
    let g = Generator::new(textures);
    let threads = 2;
    let train = Dataset::generate(&g, s.seed * 10 + 1, s.n_train, s.crop, threads);
    let val = Dataset::generate(&g, s.seed * 10 + 2, s.n_val, s.crop, threads);
    let test = Dataset::generate(&g, s.seed * 10 + 3, s.n_test, s.test_size, threads);
    let (tu, tp) = train.stats();
    let (su, sp) = test.stats();
    let description = format!(
        "Synthetic composites I = αF + (1−α)B with exact α (`training/src/data.rs`): procedural person-like / object alphas with soft edges, boundary wobble, holes, semi-transparent veils, thin semi-transparent hair-like strands and motion blur; F and B cropped (random scale, flip, colour jitter) from {} real photographs ({}, …) found in scikit-image's data folder and Debian opencv-doc's examples; Gaussian noise, 8-bit quantisation, JPEG q40–90 on 35 %. Trimaps: 50 % DIM/GCA-style (fg/bg of the ground truth eroded 1–10 px), 50 % the project's `TrimapBuilder` on a degraded coarse mask (2–4× area downsampling, blur, over-confidence, missed / false blobs, ±1 coarse-px shift, threshold 0.35–0.65, band radius 4–12 px per 128 px). Splits by seed: train seed {} ({} crops {}×{}, {:.0} % unknown, {:.0} % pipeline trimaps), validation seed {} ({} crops, used for the stage-2 init choice), test seed {} ({} images {}×{}, {:.0} % unknown, {:.0} % pipeline trimaps; never used for any choice). Generated in {:.1} s.",
        names.len(),
        names.iter().take(6).cloned().collect::<Vec<_>>().join(", "),
        s.seed * 10 + 1,
        s.n_train,
        s.crop,
        s.crop,
        tu * 100.0,
        tp * 100.0,
        s.seed * 10 + 2,
        s.n_val,
        s.seed * 10 + 3,
        s.n_test,
        s.test_size,
        s.test_size,
        su * 100.0,
        sp * 100.0,
        t.elapsed().as_secs_f64()
    );
    eprintln!(
        "data: {} textures, {} train / {} val / {} test in {:.1}s",
        names.len(),
        train.len(),
        val.len(),
        test.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(Splits {
        train,
        val,
        test,
        description,
    })
}

/// A trained net with its variables and history.
pub struct Trained {
    pub vs: nn::VarStore,
    pub net: Net,
    pub curve: Curve,
    pub cfg: TrainCfg,
}

/// Where a net's starting weights come from.
#[derive(Clone, Copy)]
pub enum Start<'a> {
    /// Fresh initialisation.
    Scratch,
    /// The surviving channels `keep` of a wider trained net, BatchNorm included.
    Pruned(&'a Net, &'a [Vec<usize>]),
    /// A trained net of the same shape, convolutions only; BatchNorm starts as the `BnInit`
    /// says (the sparsity runs reset γ to 0.5 and β to 0, so that |γ| ranks channels from an
    /// even start, as in the paper).
    Convs(&'a Net),
}

/// Whether the run `name` is finished in the work folder (its weights and curve are saved).
fn finished(s: &Settings, name: &str) -> bool {
    s.work.join(format!("{name}.safetensors")).exists()
        && s.work.join(format!("{name}.curve.json")).exists()
}

/// Trains (or loads, when already finished in `work`) one net.
#[allow(clippy::too_many_arguments)]
pub fn stage(
    s: &Settings,
    d: &Splits,
    cfg: TrainCfg,
    arch: &Arch,
    init: BnInit,
    start: Start<'_>,
    teacher: Option<&TeacherRef<'_>>,
) -> Result<Trained> {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let mut net = Net::new(&vs.root(), arch, init);
    let fin = s.work.join(format!("{}.safetensors", cfg.name));
    let cpath = s.work.join(format!("{}.curve.json", cfg.name));
    let cfg_path = s.work.join(format!("{}.cfg.json", cfg.name));
    if finished(s, &cfg.name) {
        vs.load(&fin)
            .with_context(|| format!("loading {}", fin.display()))?;
        let curve: Curve = serde_json::from_str(&std::fs::read_to_string(&cpath)?)?;
        // The settings it was really trained with (a rerun may ask for other step counts).
        let cfg = match std::fs::read_to_string(&cfg_path) {
            Ok(j) => serde_json::from_str(&j)?,
            Err(_) => TrainCfg {
                steps: curve.steps.last().map(|s| s + 1).unwrap_or(cfg.steps),
                ..cfg
            },
        };
        eprintln!("[{}] done before, loaded {}", cfg.name, fin.display());
        return Ok(Trained {
            vs,
            net,
            curve,
            cfg,
        });
    }
    match start {
        Start::Scratch => {}
        Start::Pruned(src, keep) => net.copy_from_pruned(src, keep),
        Start::Convs(src) => net.copy_convs_from(src),
    }
    eprintln!(
        "[{}] training {} steps, {:.3} GFLOPs@640x368, {} params",
        cfg.name,
        cfg.steps,
        arch.flops(368, 640) as f64 / 1e9,
        arch.params()
    );
    let curve = distill::train(&net, &mut vs, teacher, &d.train, &d.val, &cfg, &s.work)?;
    vs.save(&fin)?;
    std::fs::write(&cpath, serde_json::to_string(&curve)?)?;
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg)?)?;
    Ok(Trained {
        vs,
        net,
        curve,
        cfg,
    })
}

/// Test-split errors of `net` (alpha predicted in the unknown region, trimap elsewhere).
pub fn test_errors(net: &Net, test: &Dataset) -> Errors {
    let s = test.size;
    let mut all = Vec::new();
    tch::no_grad(|| {
        let idx: Vec<usize> = (0..test.len()).collect();
        for chunk in idx.chunks(4) {
            let (x, _, _) = test.batch(chunk, &vec![false; chunk.len()]);
            let p = net.forward(&x, false).alpha;
            let p = Vec::<f32>::try_from(&p.flatten(0, -1)).expect("pred");
            for (j, &i) in chunk.iter().enumerate() {
                let smp = &test.samples[i];
                let pred: Vec<f32> = (0..s * s)
                    .map(|k| match smp.trimap[k] {
                        0 => 0.0,
                        255 => 1.0,
                        _ => p[j * s * s + k],
                    })
                    .collect();
                all.push(MatteErrors::compute(&pred, &smp.alpha, &smp.trimap, s, s));
            }
        }
    });
    MatteErrors::mean(&all).into()
}

/// Max |ONNX Runtime − tch| over two test images and a non-square random input.
pub fn parity(net: &Net, onnx: &Path, test: &Dataset, threads: usize) -> Result<f64> {
    let mut model = slimmatte::model::Model::load(onnx, &export::model_spec(), threads)?;
    let mut inputs: Vec<(Vec<f32>, usize, usize)> = test
        .samples
        .iter()
        .take(2)
        .map(|smp| (smp.input_chw(), smp.size, smp.size))
        .collect();
    let mut r = data::Rng::new(99);
    let (h, w) = (96, 160);
    inputs.push(((0..4 * h * w).map(|_| r.f32()).collect(), h, w));
    let mut worst = 0.0f64;
    for (x, h, w) in inputs {
        let mut out = vec![0.0f32; h * w];
        model.run(&x, &[1, 4, h, w], &mut out)?;
        let t = tch::no_grad(|| {
            net.forward(
                &Tensor::from_slice(&x).view([1, 4, h as i64, w as i64]),
                false,
            )
            .alpha
            .to_kind(Kind::Float)
        });
        let t = Vec::<f32>::try_from(&t.flatten(0, -1))?;
        for (a, b) in out.iter().zip(&t) {
            worst = worst.max((a - b).abs() as f64);
        }
    }
    Ok(worst)
}

struct Shipped {
    row: Row,
    parity: f64,
}

#[allow(clippy::too_many_arguments)]
fn ship(
    s: &Settings,
    d: &Splits,
    file_stem: &str,
    role: &str,
    method: &str,
    t: &Trained,
    runs: Vec<TrainCfg>,
    seconds: f64,
    notes: Vec<String>,
) -> Result<Shipped> {
    let path = s.models.join(format!("{file_stem}.onnx"));
    export::export(&t.net, &path, &format!("slimmatte matting net: {method}"))?;
    let parity = parity(&t.net, &path, &d.test, s.threads)?;
    let (h, w) = s.padded();
    let lat = prune::measure_onnx_latency(&path, h, w, s.threads, if s.quick { 10 } else { 30 })?;
    let test = test_errors(&t.net, &d.test);
    let arch = &t.net.arch;
    let card = ModelCard {
        name: file_stem.into(),
        file: format!("{file_stem}.onnx"),
        role: role.into(),
        method: method.into(),
        architecture: "DIM-style encoder–decoder (`training/src/nets.rs`): 4 encoder stages of two 3×3 conv+BN+ReLU (the first conv stride 2, then 2×2 max-pool between stages), a mirrored decoder whose 3×3 conv+BN+ReLU outputs are nearest-upsampled and added to the encoder skips, a 3×3 head to 4 channels, 2× pixel shuffle, sigmoid. BatchNorm folded into the convs in the ONNX file; opset 13; dynamic height/width (multiples of 16).".into(),
        input: "`input` float32 [1, 4, H, W]: RGB 0..1 in channels 0..2, trimap in channel 3 (0 background, 0.5 unknown, 1 foreground); H, W multiples of 16".into(),
        output: "`alpha` float32 [1, 1, H, W] in 0..1 (sigmoid inside); meaningful in the unknown region".into(),
        widths: arch.describe(),
        params: arch.params(),
        flops_640x368: arch.flops(h, w),
        flops_note: "2 × multiply–accumulates of the convs".into(),
        latency_ms_640x368: lat,
        latency_threads: s.threads,
        latency_note: format!("smallest of five medians of {} runs after 3 warm-ups, this 2-core machine (shared with other work)", if s.quick { 10 } else { 30 }),
        test,
        test_description: format!(
            "{} synthetic test composites of {}×{} (seed {}), mean per image; SAD = Σ|α̂−α|/1000 and Grad, Conn /1000 over the unknown region, MSE = mean over the unknown region; the net's output is used in the unknown region, the trimap elsewhere.",
            d.test.len(),
            d.test.size,
            d.test.size,
            d.test.seed
        ),
        onnx_vs_tch_max_abs_diff: parity,
        training: runs,
        training_seconds: seconds,
        seed: s.seed,
        data: d.description.clone(),
        notes,
    };
    card.write(&s.models)?;
    eprintln!(
        "[{file_stem}] {:.3} GFLOPs, {:.2} ms, SAD {:.3} MSE {:.5} Grad {:.3} Conn {:.3}, parity {:.1e}",
        card.flops_640x368 as f64 / 1e9,
        lat,
        test.sad,
        test.mse,
        test.grad,
        test.conn,
        parity
    );
    Ok(Shipped {
        row: Row {
            model: format!("`{file_stem}.onnx`"),
            method: method.into(),
            params: card.params,
            flops: card.flops_640x368,
            latency_ms: lat,
            test,
        },
        parity,
    })
}

/// A tagged run (a second operating point) that reuses the shipped teacher exports the very same
/// file: keep one copy, `matting_teacher.onnx`, and point the results row at it.
fn keep_one_teacher(s: &Settings, row: &mut Row) -> Result<()> {
    if s.tag.is_empty() {
        return Ok(());
    }
    let shared = s.models.join("matting_teacher.onnx");
    let tagged = s.models.join(format!("matting_teacher{}.onnx", s.tag));
    if shared.exists() && std::fs::read(&shared)? == std::fs::read(&tagged)? {
        for ext in ["onnx", "json", "md"] {
            std::fs::remove_file(tagged.with_extension(ext))?;
        }
        row.model = "`matting_teacher.onnx`".into();
    }
    Ok(())
}

/// What the `all` run reports back.
pub struct Outcome {
    pub rows: Vec<Row>,
    pub max_parity: f64,
    pub teacher_loss_first_last: (f64, f64),
}

/// Loads the teacher (trains it when missing), frozen.
fn teacher(s: &Settings, d: &Splits) -> Result<Trained> {
    let tarch = Arch::from_levels(s.teacher_levels);
    let mut teacher = stage(
        s,
        d,
        s.cfg("teacher", s.steps_teacher, false, false),
        &tarch,
        BnInit::STANDARD,
        Start::Scratch,
        None,
    )?;
    teacher.vs.freeze();
    Ok(teacher)
}

/// The teacher's outputs on the training split when one of the `runs` (distillation runs)
/// still has to be trained; `None` when all of them are finished in the work folder.
pub fn teacher_outputs(
    s: &Settings,
    d: &Splits,
    teacher: &Net,
    runs: &[&str],
) -> Option<TeacherOutputs> {
    if runs.iter().all(|r| finished(s, r)) {
        return None;
    }
    let t = Instant::now();
    let o = TeacherOutputs::compute(teacher, &d.train, 32);
    eprintln!(
        "teacher outputs for {} training samples × 2 mirror states in {:.1}s",
        d.train.len(),
        t.elapsed().as_secs_f64()
    );
    Some(o)
}

/// Loads the stage-1 net (sparse distillation; trains it when missing).
fn stage1(
    s: &Settings,
    d: &Splits,
    teacher: &Net,
    outputs: Option<&TeacherOutputs>,
) -> Result<Trained> {
    let tref = TeacherRef {
        net: teacher,
        chan_map: prune::identity_map(&teacher.arch),
        outputs,
    };
    stage(
        s,
        d,
        s.cfg("stage1_sparse", s.steps_prune, true, true),
        &teacher.arch,
        BnInit {
            freeze_beta: !s.stage1_train_beta,
            ..BnInit::PRUNING
        },
        Start::Convs(teacher),
        Some(&tref),
    )
}

/// The budget result of an earlier search in the work folder, when it was for the same budget.
/// A full rerun reuses it, so the trained slim nets keep matching their arch; the `budget`
/// command always measures afresh (then delete the stage-2 / baseline nets of the work folder).
pub fn cached_budget(s: &Settings) -> Option<(f64, Vec<Probe>)> {
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.work.join("budget.json")).ok()?).ok()?;
    let same = j["budget_ms"].as_f64()? == s.budget_ms
        && j["at"][0].as_u64()? as usize == s.at.0
        && j["at"][1].as_u64()? as usize == s.at.1
        && j["threads"].as_u64()? as usize == s.threads;
    if !same {
        return None;
    }
    let probes: Vec<Probe> = serde_json::from_value(j["probes"].clone()).ok()?;
    let rate = j["rate"].as_f64()?;
    eprintln!("budget: reusing the earlier search in budget.json (rate {rate:.3})");
    Some((rate, probes))
}

/// The budget search on the stage-1 γ; writes `budget.json` in the work folder.
pub fn budget(s: &Settings, stage1: &Net) -> Result<(f64, Vec<Probe>)> {
    let (h, w) = s.padded();
    let gam = stage1.gammas();
    let (rate, probes) = prune::search_budget(
        &stage1.arch,
        &gam,
        s.budget_ms,
        h,
        w,
        s.threads,
        &s.work,
        s.search_iters,
        2 * s.search_iters,
        s.round,
    )?;
    let arch = prune::arch_of(&prune::select_by_gamma(&stage1.arch, &gam, rate, s.round));
    #[derive(Serialize)]
    struct Budget<'a> {
        budget_ms: f64,
        at: (usize, usize),
        padded_hw: (usize, usize),
        threads: usize,
        rate: f64,
        widths: Vec<(String, usize)>,
        probes: &'a [Probe],
    }
    std::fs::write(
        s.work.join("budget.json"),
        serde_json::to_string_pretty(&Budget {
            budget_ms: s.budget_ms,
            at: s.at,
            padded_hw: (h, w),
            threads: s.threads,
            rate,
            widths: arch.describe(),
            probes: &probes,
        })?,
    )?;
    let fits = probes.iter().any(|p| p.rate == rate && p.fits);
    eprintln!(
        "budget: prune rate {rate:.3} {} {} ms at {}x{} ({} threads)",
        if fits {
            "meets"
        } else {
            "is the smallest student and still misses"
        },
        s.budget_ms,
        s.at.0,
        s.at.1,
        s.threads
    );
    Ok((rate, probes))
}

/// Stand-alone `budget` command: needs the teacher and stage 1 (trains them when missing).
pub fn run_budget(s: &Settings) -> Result<()> {
    std::fs::create_dir_all(&s.work)?;
    let d = make_data(s)?;
    let teacher = teacher(s, &d)?;
    let outputs = teacher_outputs(s, &d, &teacher.net, &["stage1_sparse"]);
    let stage1 = stage1(s, &d, &teacher.net, outputs.as_ref())?;
    let (rate, probes) = budget(s, &stage1.net)?;
    println!(
        "| prune rate | GFLOPs | params | latency ms | fits {} ms |\n|---|---|---|---|---|",
        s.budget_ms
    );
    for p in &probes {
        println!(
            "| {:.3} | {:.3} | {} | {:.2} | {} |",
            p.rate,
            2.0 * p.macs as f64 / 1e9,
            p.params,
            p.latency_ms,
            if p.fits { "yes" } else { "no" }
        );
    }
    println!("chosen prune rate: {rate:.3}");
    Ok(())
}

/// The whole pipeline.
pub fn run_all(s: &Settings) -> Result<Outcome> {
    let t_all = Instant::now();
    std::fs::create_dir_all(&s.work)?;
    std::fs::create_dir_all(&s.models)?;
    std::fs::write(
        s.work.join("settings.json"),
        serde_json::to_string_pretty(s)?,
    )?;
    let d = make_data(s)?;
    if !s.quick {
        let refs: Vec<&data::Sample> = d.train.samples.iter().take(6).collect();
        let _ = std::fs::create_dir_all(s.models.join("plots"));
        data::save_preview(&refs, &s.models.join("plots/data_samples.png"))?;
    }
    let (h, w) = s.padded();

    // Teacher + stage 1 (sparse distillation from the teacher's convolutions: γ = 0.5,
    // β = 0 frozen, L1 on γ).
    let teacher = teacher(s, &d)?;
    let outputs = teacher_outputs(
        s,
        &d,
        &teacher.net,
        &[
            "stage1_sparse",
            "stage2_inherit",
            "stage2_scratch",
            "small_distill",
        ],
    );
    let stage1 = stage1(s, &d, &teacher.net, outputs.as_ref())?;
    let tarch = teacher.net.arch.clone();

    // Latency budget → prune rate → slim arch.
    let (rate, probes) = match cached_budget(s) {
        Some(b) => b,
        None => budget(s, &stage1.net)?,
    };
    let gam = stage1.net.gammas();
    let keep = prune::select_by_gamma(&tarch, &gam, rate, s.round);
    let sarch = prune::arch_of(&keep);
    let target_macs = sarch.macs(h, w);
    let tref = TeacherRef {
        net: &teacher.net,
        chan_map: prune::chan_map(&keep),
        outputs: outputs.as_ref(),
    };

    // Stage 2: the slim student with the same distillation loss, two inits.
    let s2_init = stage(
        s,
        &d,
        s.cfg("stage2_inherit", s.steps_slim, false, true),
        &sarch,
        BnInit::STANDARD,
        Start::Pruned(&stage1.net, &keep),
        Some(&tref),
    )?;
    let s2_scratch = stage(
        s,
        &d,
        s.cfg("stage2_scratch", s.steps_slim, false, true),
        &sarch,
        BnInit::STANDARD,
        Start::Scratch,
        Some(&tref),
    )?;
    let v_init = *s2_init.curve.val_sad.last().unwrap_or(&f64::MAX);
    let v_scratch = *s2_scratch.curve.val_sad.last().unwrap_or(&f64::MAX);
    let (best, other, best_name, other_name) = if v_init <= v_scratch {
        (
            &s2_init,
            &s2_scratch,
            "inherited surviving stage-1 weights",
            "random init",
        )
    } else {
        (
            &s2_scratch,
            &s2_init,
            "random init",
            "inherited surviving stage-1 weights",
        )
    };
    eprintln!(
        "stage 2: validation SAD inherit {v_init:.3} vs scratch {v_scratch:.3} → {best_name}"
    );

    // Baseline: Network Slimming (L1 on γ with the task loss only, no teacher; prune at the
    // rate that matches the student's FLOPs; fine-tune with the task loss). Like stage 1 and
    // uniform pruning it starts from the trained teacher's convolutions, so that every pruning
    // method prunes the same trained net and the comparison is about the method, not about
    // how many steps each lineage got.
    let ns_init = BnInit {
        gamma: 0.5,
        freeze_beta: false,
    };
    let ns_sparse = stage(
        s,
        &d,
        s.cfg("netslim_sparse", s.steps_prune, true, false),
        &tarch,
        ns_init,
        Start::Convs(&teacher.net),
        None,
    )?;
    let ns_gam = ns_sparse.net.gammas();
    let ns_rate = prune::match_macs(0.0, 0.97, target_macs, true, |r| {
        prune::arch_of(&prune::select_by_gamma(&tarch, &ns_gam, r, s.round)).macs(h, w)
    });
    let ns_keep = prune::select_by_gamma(&tarch, &ns_gam, ns_rate, s.round);
    let ns_arch = prune::arch_of(&ns_keep);
    let ns_ft = stage(
        s,
        &d,
        s.cfg("netslim_finetune", s.steps_slim, false, false),
        &ns_arch,
        BnInit::STANDARD,
        Start::Pruned(&ns_sparse.net, &ns_keep),
        None,
    )?;

    // Baseline: uniform pruning of the teacher (same fraction per layer, filters by L1 norm),
    // fine-tuned with the task loss.
    let norms = teacher.net.filter_norms();
    let frac = prune::match_macs(0.02, 1.0, target_macs, false, |f| {
        prune::arch_of(&prune::select_uniform(&tarch, &norms, f, s.round)).macs(h, w)
    });
    let u_keep = prune::select_uniform(&tarch, &norms, frac, s.round);
    let u_arch = prune::arch_of(&u_keep);
    let uniform = stage(
        s,
        &d,
        s.cfg("uniform_finetune", s.steps_slim, false, false),
        &u_arch,
        BnInit::STANDARD,
        Start::Pruned(&teacher.net, &u_keep),
        None,
    )?;

    // Unpruned small student: the uniform shape from scratch with the same distillation loss.
    let small_ref = TeacherRef {
        net: &teacher.net,
        chan_map: prune::chan_map(&u_keep),
        outputs: outputs.as_ref(),
    };
    let small = stage(
        s,
        &d,
        s.cfg("small_distill", s.steps_slim, false, true),
        &u_arch,
        BnInit::STANDARD,
        Start::Scratch,
        Some(&small_ref),
    )?;

    // Export, parity, latency, test metrics, cards.
    let spkd_note = "SPKD = MSE of spatial (positions × positions, features average-pooled to ≤16×16) and channel (channels × channels) cosine-similarity matrices, summed over all 4 encoder stages; for a pruned student the teacher's channel matrix is restricted to the surviving channel indices".to_string();
    let round_note = format!(
        "kept channel counts are rounded up to multiples of {} for every method (ONNX Runtime's blocked convolutions are much faster on such widths)",
        s.round
    );
    let mut shipped = Vec::new();
    shipped.push(ship(
        s,
        &d,
        &format!("matting_teacher{}", s.tag),
        "teacher (distillation source; too slow for the real-time budget)",
        "teacher, task loss only",
        &teacher,
        vec![teacher.cfg.clone()],
        teacher.curve.seconds,
        vec![],
    )?);
    keep_one_teacher(s, &mut shipped[0].row)?;
    let student_seconds = teacher.curve.seconds + stage1.curve.seconds + best.curve.seconds;
    shipped.push(ship(
        s,
        &d,
        &format!("matting_student{}", s.tag),
        "shipped real-time matting net (runtime default)",
        &format!("distillation-based channel pruning (Yoon et al. 2022), stage 2 from {best_name}"),
        best,
        vec![teacher.cfg.clone(), stage1.cfg.clone(), best.cfg.clone()],
        student_seconds,
        vec![
            format!("prune rate {rate:.3} chosen by the latency-budget search ({} ms at {}×{}, {} threads)", s.budget_ms, s.at.0, s.at.1, s.threads),
            format!("stage 2 validation SAD: inherited weights {v_init:.3}, random init {v_scratch:.3}"),
            spkd_note.clone(),
            round_note.clone(),
        ],
    )?);
    shipped.push(ship(
        s,
        &d,
        &format!("matting_uniform{}", s.tag),
        "baseline (not used by the runtime)",
        "uniform channel pruning of the teacher (filter L1 norm), fine-tuned, task loss",
        &uniform,
        vec![teacher.cfg.clone(), uniform.cfg.clone()],
        teacher.curve.seconds + uniform.curve.seconds,
        vec![
            format!("kept fraction per layer {frac:.3}, FLOPs matched to the student"),
            round_note.clone(),
        ],
    )?);
    shipped.push(ship(
        s,
        &d,
        &format!("matting_netslim{}", s.tag),
        "baseline (not used by the runtime)",
        "Network Slimming (L1 on γ, task loss only), pruned, fine-tuned",
        &ns_ft,
        vec![ns_sparse.cfg.clone(), ns_ft.cfg.clone()],
        ns_sparse.curve.seconds + ns_ft.curve.seconds,
        vec![format!("prune rate {ns_rate:.3} (global |γ| threshold per encoder/decoder), FLOPs matched to the student"), round_note.clone()],
    )?);
    shipped.push(ship(
        s,
        &d,
        &format!("matting_small{}", s.tag),
        "baseline (not used by the runtime)",
        "unpruned small student (uniform shape, random init), same distillation loss",
        &small,
        vec![small.cfg.clone()],
        small.curve.seconds,
        vec![spkd_note.clone()],
    )?);
    // The other stage-2 init, for the comparison row (not exported as a model file).
    let other_errors = test_errors(&other.net, &d.test);

    let mut rows: Vec<Row> = shipped.iter().map(|x| x.row.clone()).collect();
    rows.insert(
        2,
        Row {
            model: "(stage 2 variant, not exported)".into(),
            method: format!("distillation-based pruning, stage 2 from {other_name}"),
            params: other.net.arch.params(),
            flops: other.net.arch.flops(h, w),
            latency_ms: rows[1].latency_ms,
            test: other_errors,
        },
    );
    let max_parity = shipped.iter().map(|x| x.parity).fold(0.0, f64::max);

    // Plots.
    let pdir = s.models.join("plots");
    std::fs::create_dir_all(&pdir)?;
    let curves: Vec<&Curve> = vec![
        &teacher.curve,
        &stage1.curve,
        &s2_init.curve,
        &s2_scratch.curve,
        &ns_sparse.curve,
        &ns_ft.curve,
        &uniform.curve,
        &small.curve,
    ];
    plots::curves(&curves, &pdir.join(format!("training_curves{}.png", s.tag)))?;
    let (te, td) = prune::thresholds(&tarch, &gam, rate);
    let table = tarch.table();
    let mut ge = Vec::new();
    let mut gd = Vec::new();
    for (i, g) in gam.iter().enumerate() {
        if table[i].part == crate::nets::Part::Encoder {
            ge.extend_from_slice(g);
        } else {
            gd.extend_from_slice(g);
        }
    }
    plots::gamma_histogram(
        &ge,
        &gd,
        te,
        td,
        &pdir.join(format!("gamma_histogram{}.png", s.tag)),
    )?;
    let names: Vec<String> = tarch
        .describe()
        .into_iter()
        .map(|(n, _)| n)
        .take(crate::nets::BN_LAYERS)
        .collect();
    plots::kept_channels(
        &names,
        &[
            ("teacher".into(), tarch.widths.clone()),
            ("distill-pruned (ours)".into(), sarch.widths.clone()),
            ("Network Slimming".into(), ns_arch.widths.clone()),
            ("uniform".into(), u_arch.widths.clone()),
        ],
        &pdir.join(format!("kept_channels{}.png", s.tag)),
    )?;

    // Results.
    let md = results_markdown(
        s,
        &d,
        &rows,
        &probes,
        rate,
        v_init,
        v_scratch,
        best_name,
        t_all.elapsed().as_secs_f64(),
    );
    std::fs::write(s.models.join(format!("results{}.md", s.tag)), md)?;
    let teacher_loss_first_last = teacher.curve.first_last(0.1);
    Ok(Outcome {
        rows,
        max_parity,
        teacher_loss_first_last,
    })
}

#[allow(clippy::too_many_arguments)]
fn results_markdown(
    s: &Settings,
    d: &Splits,
    rows: &[Row],
    probes: &[Probe],
    rate: f64,
    v_init: f64,
    v_scratch: f64,
    best_name: &str,
    seconds: f64,
) -> String {
    let teacher = &rows[0];
    let student = &rows[1];
    let find = |prefix: &str| rows.iter().find(|r| r.model.contains(prefix));
    let mut m = String::new();
    m += "# Distillation-based channel pruning — results\n\n";
    m += &format!(
        "Reproduce: `scripts/train.sh` (one command; {:.0} min wall-clock for this run on a shared 2-core CPU). Test split: {} synthetic composites of {}×{}, seed {}, never used for any choice. FLOPs = 2 × conv MACs at 640×368 (640×360 padded to a multiple of 16); latency = median ONNX Runtime time through `slimmatte::model::Model` at 640×368 with {} threads on this machine.\n\n",
        seconds / 60.0,
        d.test.len(),
        d.test.size,
        d.test.size,
        d.test.seed,
        s.threads
    );
    m += &card::table(rows);
    m += "\n## The claims, checked\n\n";
    let sad_ratio = student.test.sad / teacher.test.sad.max(1e-12);
    let flops_ratio = teacher.flops as f64 / student.flops.max(1) as f64;
    m += &format!(
        "- Student vs teacher: SAD {:.3} vs {:.3} ({:+.1} %), FLOPs {:.1}× fewer, latency {:.2} ms vs {:.2} ms. Target (SAD within ~15 % at ≥ 4× fewer FLOPs): **{}**.\n",
        student.test.sad,
        teacher.test.sad,
        (sad_ratio - 1.0) * 100.0,
        flops_ratio,
        student.latency_ms,
        teacher.latency_ms,
        if sad_ratio <= 1.15 && flops_ratio >= 4.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    for (label, key) in [
        ("uniform pruning", "uniform"),
        ("Network Slimming", "netslim"),
        ("unpruned small student", "small"),
    ] {
        if let Some(r) = find(key) {
            m += &format!(
                "- Student vs {label} ({:.3} vs {:.3} GFLOPs): SAD {:.3} vs {:.3}, MSE {:.5} vs {:.5} → **{}**.\n",
                student.flops as f64 / 1e9,
                r.flops as f64 / 1e9,
                student.test.sad,
                r.test.sad,
                student.test.mse,
                r.test.mse,
                if student.test.sad < r.test.sad {
                    "student better"
                } else {
                    "student NOT better"
                }
            );
        }
    }
    m += &format!(
        "- Stage 2 init (chosen on the validation split): inherited surviving weights val SAD {v_init:.3}, random init {v_scratch:.3} → shipped: {best_name}.\n"
    );
    m += &format!(
        "\n## Latency-budget search\n\nBudget {} ms at {}×{} ({} threads); bisection over the prune rate on the stage-1 |γ|, then a grid below the bisection's answer (latency is not monotone in the rate there); each probe exported to ONNX and timed; the fitting probe with the most FLOPs wins. Chosen rate: **{rate:.3}**.\n\n| prune rate | GFLOPs | params | latency ms | fits |\n|---|---:|---:|---:|---|\n",
        s.budget_ms, s.at.0, s.at.1, s.threads
    );
    for p in probes {
        m += &format!(
            "| {:.3} | {:.3} | {} | {:.2} | {} |\n",
            p.rate,
            2.0 * p.macs as f64 / 1e9,
            p.params,
            p.latency_ms,
            if p.fits { "yes" } else { "no" }
        );
    }
    m += &format!(
        "\n## Plots\n\n![training curves](plots/training_curves{t}.png)\n\n![|γ| histogram](plots/gamma_histogram{t}.png)\n\n![kept channels](plots/kept_channels{t}.png)\n\n![data samples: composite, trimap, alpha](plots/data_samples.png)\n",
        t = s.tag
    );
    m += &format!("\n## Data\n\n{}\n", d.description);
    m += &format!(
        "\n## Settings\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(s).unwrap_or_default()
    );
    m
}

/// Quick-mode checks: the loss falls and every exported model matches tch.
pub fn check_quick(o: &Outcome) -> Result<()> {
    let (first, last) = o.teacher_loss_first_last;
    eprintln!(
        "quick: teacher task loss {first:.4} → {last:.4}; max ONNX/tch diff {:.2e}",
        o.max_parity
    );
    if last.is_nan() || last >= first {
        bail!("the training loss did not fall ({first:.4} → {last:.4})");
    }
    if o.max_parity.is_nan() || o.max_parity > 1e-4 {
        bail!(
            "ONNX output differs from tch by {:.2e} (> 1e-4)",
            o.max_parity
        );
    }
    Ok(())
}
