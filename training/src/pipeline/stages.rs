//! The training runs: the data splits, one resumable training stage, and the line-up of the
//! experiment (teacher → stage 1 → budget → stage 2 with two inits → the baselines).

use std::time::Instant;

use anyhow::{Context, Result};
use tch::nn;

use super::budget::{budget, cached_budget};
use super::settings::Settings;
use crate::data::{self, Dataset, Generator};
use crate::distill::{self, Curve, TeacherOutputs, TeacherRef, TrainCfg};
use crate::nets::{Arch, BnInit, Net};
use crate::prune::{self, Probe};

/// The data splits.
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    pub description: String,
    /// The first mattes of the bank the generator drew from (for the preview picture; the
    /// bank itself, ~0.9 GB at full size, is dropped with the generator).
    pub bank_preview: Vec<data::RealMatte>,
}

/// Bank mattes shown in `matte_bank.png`.
pub const BANK_PREVIEW: usize = 12;

/// The sample generator of the settings: the training photographs and the matte bank (made
/// and cached in the work folder when missing).
pub fn generator(s: &Settings) -> Result<Generator> {
    let textures = data::load_textures(&data::texture_dirs(), 512);
    // The bank is its own seed stream next to the splits' (seed·10 + 1/2/3).
    let bank_settings = data::BankSettings {
        seed: s.seed * 10 + 7,
        ..s.bank.clone()
    };
    let bank = data::bank::load_or_make(&s.work.join("matte_bank"), &textures, &bank_settings)?;
    Ok(Generator::new(textures).with_mattes(bank))
}

/// Generates the train / validation / test splits of the settings (separate seed streams).
pub fn make_data(s: &Settings) -> Result<Splits> {
    let t = Instant::now();
    let g = generator(s)?;
    let names: Vec<String> = g.textures.iter().map(|t| t.name.clone()).collect();
    let n_bank = g.mattes.len();
    let bank_preview = g.mattes.iter().take(BANK_PREVIEW).cloned().collect();
    let threads = 2;
    let train = Dataset::generate(&g, s.seed * 10 + 1, s.n_train, s.crop, threads);
    let val = Dataset::generate(&g, s.seed * 10 + 2, s.n_val, s.crop, threads);
    let test = Dataset::generate(&g, s.seed * 10 + 3, s.n_test, s.test_size, threads);
    let (tu, tp) = train.stats();
    let (su, sp) = test.stats();
    let description = format!(
        "Composites I = αF + (1−α)B with exact α (`training/src/data/`, sources in `training/DATA.md`): {:.0} % with α and F from the matte bank — {} mattes of {}×{} crops of real photographs pulled by closed-form matting (ε 1e-7, {} CG iterations, threshold trimaps along a colour axis) with multilevel foreground colours (Germer et al. 2020), random region, flip, colour jitter, procedural strands on 30 %; the rest procedural person-like / object alphas with soft edges, boundary wobble, holes, semi-transparent veils, thin semi-transparent hair-like strands and motion blur; F and B cropped (random scale, flip, colour jitter) from {} real photographs ({}, …) found in scikit-image's data folder and Debian opencv-doc's examples, minus everything `eval` uses (`slimmatte_measure::heldout`); Gaussian noise, 8-bit quantisation, JPEG q40–90 on 35 %. Trimaps: 50 % DIM/GCA-style (fg/bg of the ground truth eroded 1–10 px), 50 % the project's `TrimapBuilder` on a degraded coarse mask (2–4× area downsampling, blur, over-confidence, missed / false blobs, ±1 coarse-px shift, threshold 0.35–0.65, band radius 4–12 px per 128 px). Splits by seed: train seed {} ({} crops {}×{}, {:.0} % unknown, {:.0} % pipeline trimaps), validation seed {} ({} crops, used for the stage-2 init choice), test seed {} ({} images {}×{}, {:.0} % unknown, {:.0} % pipeline trimaps; never used for any choice). Generated in {:.1} s.",
        if n_bank > 0 {
            data::REAL_MATTE_FRACTION * 100.0
        } else {
            0.0
        },
        n_bank,
        s.bank.size,
        s.bank.size,
        s.bank.iterations,
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
        bank_preview,
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
pub(crate) fn finished(s: &Settings, name: &str) -> bool {
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
    let mut vs = nn::VarStore::new(s.tch_device()?);
    // The random init comes from the run's own seed, not from wherever libtorch's global
    // generator stands after the runs before it in this process.
    tch::manual_seed(cfg.seed as i64);
    let mut net = Net::new(&vs.root(), arch, init);
    // A learned projection for the SPKD channel term lives (and is saved) with the net.
    let projection = match teacher {
        Some(t) if cfg.spkd_projection => {
            Some(distill::spkd_projection(&vs.root(), arch, &t.net.arch))
        }
        _ => None,
    };
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
    let tref = teacher.map(|t| TeacherRef {
        net: t.net,
        chan_map: t.chan_map.clone(),
        outputs: t.outputs,
        projection: projection.as_ref().or(t.projection),
    });
    let curve = distill::train(
        &net,
        &mut vs,
        tref.as_ref(),
        &d.train,
        &d.val,
        &cfg,
        &s.work,
    )?;
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

/// Loads the teacher (trains it when missing), frozen.
pub(crate) fn teacher(s: &Settings, d: &Splits) -> Result<Trained> {
    let tarch = Arch::from_levels(s.teacher_levels);
    let mut cfg = s.cfg("teacher", s.steps_teacher, false, false);
    cfg.plateau = Some(s.teacher_plateau);
    cfg.eval_every = s.teacher_eval_every;
    let mut teacher = stage(s, d, cfg, &tarch, BnInit::STANDARD, Start::Scratch, None)?;
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

/// Where the full-width sparsity runs (stage 1, Network Slimming) start: the teacher's
/// convolutions, or random init in the paper-faithful arm (`--faithful`).
fn sparse_start<'a>(s: &Settings, teacher: &'a Net) -> Start<'a> {
    if s.faithful {
        Start::Scratch
    } else {
        Start::Convs(teacher)
    }
}

/// Loads the stage-1 net (sparse distillation; trains it when missing).
pub(super) fn stage1(
    s: &Settings,
    d: &Splits,
    teacher: &Net,
    outputs: Option<&TeacherOutputs>,
) -> Result<Trained> {
    let tref = TeacherRef {
        net: teacher,
        chan_map: prune::identity_map(&teacher.arch),
        outputs,
        projection: None,
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
        sparse_start(s, teacher),
        Some(&tref),
    )
}

/// The runs that start from the teacher's data but are no part of the shipped student: the
/// same-FLOPs baselines.
pub struct Baselines {
    /// Network Slimming: the full-width sparsity run and the pruned, fine-tuned net.
    pub netslim_sparse: Trained,
    pub netslim: Trained,
    pub netslim_arch: Arch,
    pub netslim_rate: f64,
    /// Uniform pruning of the teacher, fine-tuned.
    pub uniform: Trained,
    pub uniform_arch: Arch,
    /// The kept fraction per layer of uniform pruning.
    pub uniform_frac: f64,
    /// Unpruned small student: the uniform shape from scratch with the distillation loss.
    pub small: Trained,
}

/// Every trained net of the experiment and the choices made on the way.
pub struct Lineup {
    pub teacher: Trained,
    pub stage1: Trained,
    /// Stage 2 from the surviving stage-1 weights and from random init.
    pub stage2_inherit: Trained,
    pub stage2_scratch: Trained,
    /// The stage-2 validation SAD of the two inits.
    pub val_inherit: f64,
    pub val_scratch: f64,
    /// The prune rate the latency-budget search chose, and its probes.
    pub rate: f64,
    pub probes: Vec<Probe>,
    /// Stage-1 |γ| per BatchNorm layer.
    pub gammas: Vec<Vec<f32>>,
    pub student_arch: Arch,
    pub baselines: Baselines,
}

/// How the two stage-2 runs start.
const INHERIT: &str = "inherited surviving stage-1 weights";
const SCRATCH: &str = "random init";

/// Whether the stage-2 net started from the sparse net's weights is shipped: the lower
/// validation SAD, the inherited start winning a tie.
fn inherit_wins(val_inherit: f64, val_scratch: f64) -> bool {
    val_inherit <= val_scratch
}

impl Lineup {
    /// The two stage-2 nets and how they started: the shipped one first (the lower validation
    /// SAD; the inherited init wins a tie), then the other (a comparison row only).
    pub fn stage2_ranked(&self) -> [(&Trained, &'static str); 2] {
        let inherit = (&self.stage2_inherit, INHERIT);
        let scratch = (&self.stage2_scratch, SCRATCH);
        if inherit_wins(self.val_inherit, self.val_scratch) {
            [inherit, scratch]
        } else {
            [scratch, inherit]
        }
    }

    /// The shipped stage-2 net and how it started.
    pub fn best(&self) -> (&Trained, &'static str) {
        self.stage2_ranked()[0]
    }

    /// The other stage-2 net and how it started.
    pub fn other(&self) -> (&Trained, &'static str) {
        self.stage2_ranked()[1]
    }

    /// Every training curve, in the order of the plot legend.
    pub fn curves(&self) -> Vec<&Curve> {
        let b = &self.baselines;
        vec![
            &self.teacher.curve,
            &self.stage1.curve,
            &self.stage2_inherit.curve,
            &self.stage2_scratch.curve,
            &b.netslim_sparse.curve,
            &b.netslim.curve,
            &b.uniform.curve,
            &b.small.curve,
        ]
    }
}

/// A slim run: `steps_slim` steps from standard BatchNorm, distilled when `teacher` is given.
fn slim(
    s: &Settings,
    d: &Splits,
    name: &str,
    arch: &Arch,
    start: Start<'_>,
    teacher: Option<&TeacherRef<'_>>,
) -> Result<Trained> {
    let cfg = s.cfg(name, s.steps_slim, false, teacher.is_some());
    stage(s, d, cfg, arch, BnInit::STANDARD, start, teacher)
}

/// Trains (or loads) every net of the experiment, in order.
pub fn train_all(s: &Settings, d: &Splits) -> Result<Lineup> {
    let (h, w) = s.padded();
    // Teacher + stage 1 (sparse distillation from the teacher's convolutions: γ = 0.5,
    // β = 0 frozen, L1 on γ).
    let teacher = teacher(s, d)?;
    let distilled = [
        "stage1_sparse",
        "stage2_inherit",
        "stage2_scratch",
        "small_distill",
    ];
    let outputs = teacher_outputs(s, d, &teacher.net, &distilled);
    let stage1 = stage1(s, d, &teacher.net, outputs.as_ref())?;

    // Latency budget → prune rate → slim arch.
    let (rate, probes) = match cached_budget(s) {
        Some(b) => b,
        None => budget(s, &stage1.net)?,
    };
    let gammas = stage1.net.gammas();
    let keep = prune::select_by_gamma(&teacher.net.arch, &gammas, rate, s.round);
    let student_arch = prune::arch_of(&keep);
    let tref = TeacherRef {
        net: &teacher.net,
        chan_map: prune::chan_map(&keep),
        outputs: outputs.as_ref(),
        projection: None,
    };

    // Stage 2: the slim student with the same distillation loss, two inits.
    let from_stage1 = Start::Pruned(&stage1.net, &keep);
    let stage2_inherit = slim(
        s,
        d,
        "stage2_inherit",
        &student_arch,
        from_stage1,
        Some(&tref),
    )?;
    let stage2_scratch = slim(
        s,
        d,
        "stage2_scratch",
        &student_arch,
        Start::Scratch,
        Some(&tref),
    )?;
    let val_inherit = *stage2_inherit.curve.val_sad.last().unwrap_or(&f64::MAX);
    let val_scratch = *stage2_scratch.curve.val_sad.last().unwrap_or(&f64::MAX);
    eprintln!(
        "stage 2: validation SAD inherit {val_inherit:.3} vs scratch {val_scratch:.3} → {}",
        if inherit_wins(val_inherit, val_scratch) {
            INHERIT
        } else {
            SCRATCH
        }
    );
    let baselines = baselines(s, d, &teacher, outputs.as_ref(), student_arch.macs(h, w))?;
    Ok(Lineup {
        teacher,
        stage1,
        stage2_inherit,
        stage2_scratch,
        val_inherit,
        val_scratch,
        rate,
        probes,
        gammas,
        student_arch,
        baselines,
    })
}

/// The parameter in `range` (MACs `decreasing` in it) whose selection `select(p)` comes
/// closest to `target_macs` at the padded size, with that selection and its arch.
fn matched(
    s: &Settings,
    (lo, hi): (f64, f64),
    target_macs: u64,
    decreasing: bool,
    select: impl Fn(f64) -> Vec<Vec<usize>>,
) -> (f64, Vec<Vec<usize>>, Arch) {
    let (h, w) = s.padded();
    let p = prune::match_macs(lo, hi, target_macs, decreasing, |p| {
        prune::arch_of(&select(p)).macs(h, w)
    });
    let keep = select(p);
    let arch = prune::arch_of(&keep);
    (p, keep, arch)
}

/// The baselines, FLOPs matched to the student's `target_macs`.
fn baselines(
    s: &Settings,
    d: &Splits,
    teacher: &Trained,
    outputs: Option<&TeacherOutputs>,
    target_macs: u64,
) -> Result<Baselines> {
    let tarch = &teacher.net.arch;
    // Network Slimming (L1 on γ with the task loss only, no teacher; prune at the rate that
    // matches the student's FLOPs; fine-tune with the task loss). Like stage 1 and uniform
    // pruning it starts from the trained teacher's convolutions, so that every pruning method
    // prunes the same trained net and the comparison is about the method, not about how many
    // steps each lineage got.
    let ns_init = BnInit {
        gamma: 0.5,
        freeze_beta: false,
    };
    let ns_cfg = s.cfg("netslim_sparse", s.steps_prune, true, false);
    let start = sparse_start(s, &teacher.net);
    let netslim_sparse = stage(s, d, ns_cfg, tarch, ns_init, start, None)?;
    let ns_gam = netslim_sparse.net.gammas();
    let (netslim_rate, ns_keep, netslim_arch) = matched(s, (0.0, 0.97), target_macs, true, |r| {
        prune::select_by_gamma(tarch, &ns_gam, r, s.round)
    });
    let from_sparse = Start::Pruned(&netslim_sparse.net, &ns_keep);
    let netslim = slim(s, d, "netslim_finetune", &netslim_arch, from_sparse, None)?;

    // Uniform pruning of the teacher (same fraction per layer, filters by L1 norm),
    // fine-tuned with the task loss.
    let norms = teacher.net.filter_norms();
    let (uniform_frac, u_keep, uniform_arch) = matched(s, (0.02, 1.0), target_macs, false, |f| {
        prune::select_uniform(tarch, &norms, f, s.round)
    });
    let pruned_teacher = Start::Pruned(&teacher.net, &u_keep);
    let uniform = slim(
        s,
        d,
        "uniform_finetune",
        &uniform_arch,
        pruned_teacher,
        None,
    )?;

    // Unpruned small student: the uniform shape from scratch with the same distillation loss.
    let small_ref = TeacherRef {
        net: &teacher.net,
        chan_map: prune::chan_map(&u_keep),
        outputs,
        projection: None,
    };
    let small = slim(
        s,
        d,
        "small_distill",
        &uniform_arch,
        Start::Scratch,
        Some(&small_ref),
    )?;
    Ok(Baselines {
        netslim_sparse,
        netslim,
        netslim_arch,
        netslim_rate,
        uniform,
        uniform_arch,
        uniform_frac,
        small,
    })
}
