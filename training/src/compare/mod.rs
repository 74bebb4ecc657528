//! Issue #14: distillation-based channel pruning (DCP) against Network Slimming (NS) at equal
//! prune rate and at equal FLOPs, in two arms (the paper-faithful one and the pipeline's
//! teacher-init one), with controls that separate the channel choice from the loss, several
//! seeds, and paired per-image bootstrap intervals on the test split (`slimmatte-train compare`).
//!
//! Every fine-tune gets the same number of steps. Results are cached per run in
//! `<work>/compare/`, so an interrupted comparison resumes where it stopped.

pub mod report;
pub mod stats;

use std::cell::OnceCell;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn;

use crate::data::Dataset;
use crate::distill::{self, TeacherOutputs, TeacherRef};
use crate::nets::{Arch, BnInit, Net};
use crate::pipeline::Settings;
use crate::pipeline::stages::{self, Splits, Start, Trained};
use crate::prune;

/// The official DCP code's total L1 shrinkage of an encoder γ over stage 1 (Σ lr·λ: ≈ 517k
/// iterations × lr 0.01 × λ 1e-4); the decoder's is a tenth. The faithful arm's proximal λ is
/// scaled so that its own steps × lr spend the same budget (at the paper's λ and this scale's
/// steps the shrinkage would total 5e-4 and no γ would reach 0).
pub const PAPER_L1_BUDGET_ENC: f64 = 517_000.0 * 0.01 * 1e-4;
pub const PAPER_L1_BUDGET_DEC: f64 = PAPER_L1_BUDGET_ENC / 10.0;

/// |γ| below this fraction of the run's initial γ (0.5) counts as pruned away by sparsity.
pub const NEAR_ZERO: f32 = 0.01;

/// The two arms of the sparsity runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Arm {
    /// The paper / official code: sparse runs and stage 2 from random init, deepest-stage SPKD
    /// at weight 1 (through a learned projection in stage 2), constant lr, proximal L1.
    Faithful,
    /// The pipeline's: sparse runs from the teacher's convolutions, stage 2 inherits the
    /// surviving weights, SPKD on all four stages at 0.5 over the surviving channel indices.
    TeacherInit,
}

impl Arm {
    pub fn key(self) -> &'static str {
        match self {
            Arm::Faithful => "faithful",
            Arm::TeacherInit => "teacher_init",
        }
    }
}

/// Whose channels a pruned shape keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// DCP: |γ| of the sparse distillation run at the prune rate.
    Dcp,
    /// Network Slimming: |γ| of the task-loss sparse run at the same prune rate.
    NetSlim,
    /// Network Slimming at the prune rate whose FLOPs match DCP's shape.
    NetSlimEqualFlops,
}

impl Shape {
    pub fn key(self) -> &'static str {
        match self {
            Shape::Dcp => "dcp",
            Shape::NetSlim => "ns",
            Shape::NetSlimEqualFlops => "ns_eqflops",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Shape::Dcp => "DCP channels",
            Shape::NetSlim => "NS channels",
            Shape::NetSlimEqualFlops => "NS channels at DCP's FLOPs",
        }
    }
}

/// The fine-tuning loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// Task + the teacher's alpha + SPKD (DCP's stage 2).
    Distill,
    /// Task loss only (Network Slimming's fine-tune).
    Task,
}

impl Loss {
    pub fn key(self) -> &'static str {
        match self {
            Loss::Distill => "distill",
            Loss::Task => "task",
        }
    }
}

/// The cells fine-tuned at every arm × rate, in priority order: the method, Network Slimming
/// as published, the two controls, Network Slimming at equal FLOPs.
pub const CELLS: [(Shape, Loss); 5] = [
    (Shape::Dcp, Loss::Distill),
    (Shape::NetSlim, Loss::Task),
    (Shape::NetSlim, Loss::Distill),
    (Shape::Dcp, Loss::Task),
    (Shape::NetSlimEqualFlops, Loss::Task),
];

/// What the comparison runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub arms: Vec<Arm>,
    pub rates: Vec<f64>,
    pub seeds: usize,
    /// Steps of every fine-tune (equal for all cells).
    pub steps: usize,
    /// Steps of the faithful arm's sparse runs (the teacher-init arm reuses the pipeline's).
    pub sparse_steps: usize,
    /// Test images (the pipeline's test seed stream; its first images are the pipeline's).
    pub n_test: usize,
    pub bootstrap: usize,
    /// Report the cached cells only: train nothing, skip cells that are not finished.
    #[serde(default)]
    pub report_only: bool,
}

impl Plan {
    pub fn full(s: &Settings) -> Plan {
        Plan {
            arms: vec![Arm::Faithful, Arm::TeacherInit],
            rates: vec![0.5, 0.75],
            seeds: 3,
            steps: 400,
            // Two thirds of the pipeline's sparse runs: the faithful arm's proximal λ is scaled to
            // spend the paper's whole L1 budget within them.
            sparse_steps: s.steps_prune * 2 / 3,
            n_test: 300,
            bootstrap: 2000,
            report_only: false,
        }
    }

    pub fn quick() -> Plan {
        Plan {
            arms: vec![Arm::Faithful, Arm::TeacherInit],
            rates: vec![0.5],
            seeds: 2,
            steps: 12,
            sparse_steps: 16,
            n_test: 8,
            bootstrap: 200,
            report_only: false,
        }
    }
}

/// One sparse (full-width, L1 on γ) run of an arm and what its |γ| look like.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SparseRun {
    pub arm: Arm,
    /// "DCP" or "NS".
    pub method: String,
    pub name: String,
    pub steps: usize,
    pub l1_enc: f64,
    pub l1_dec: f64,
    pub proximal: bool,
    pub val_sad: f64,
    /// Fraction of |γ| below [`NEAR_ZERO`], encoder / decoder.
    pub near_zero_enc: f64,
    pub near_zero_dec: f64,
    /// Whether the tallest of 20 |γ| histogram bins is the one at 0 (sparsity finished).
    pub mode_at_zero: bool,
}

/// A pruned shape's validation SAD right after pruning, before any fine-tuning.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrunedCheck {
    pub arm: Arm,
    pub rate: f64,
    pub criterion: String,
    pub kept: f64,
    pub macs: u64,
    /// The unpruned source net's validation SAD and the pruned copy's.
    pub val_before: f64,
    pub val_pruned: f64,
}

/// One fine-tune and its per-image test SAD.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub name: String,
    pub arm: Arm,
    pub rate: f64,
    pub shape: Shape,
    pub loss: Loss,
    pub seed: usize,
    pub widths: Vec<usize>,
    pub macs: u64,
    pub params: u64,
    pub kept: f64,
    pub val_sad: f64,
    pub test_sad: Vec<f64>,
    pub seconds: f64,
    /// The steps the cell really trained (a finished run is loaded whatever the plan says).
    #[serde(default)]
    pub steps: usize,
}

/// Everything the report needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    pub plan: Plan,
    pub sparse: Vec<SparseRun>,
    pub pruned: Vec<PrunedCheck>,
    pub runs: Vec<RunResult>,
    /// The shapes (kept widths) per arm, rate and shape.
    pub shapes: Vec<(Arm, f64, Shape, Vec<usize>)>,
    pub test_images: usize,
    pub test_size: usize,
    pub seconds: f64,
}

/// Fractions of |γ| below [`NEAR_ZERO`] (encoder, decoder) and whether the histogram's mode
/// is its first bin.
pub fn sparsity(arch: &Arch, gammas: &[Vec<f32>]) -> (f64, f64, bool) {
    let (enc, dec) = prune::by_part(arch, gammas);
    let frac =
        |v: &[f32]| v.iter().filter(|&&g| g < NEAR_ZERO).count() as f64 / v.len().max(1) as f64;
    let all: Vec<f32> = enc.iter().chain(&dec).copied().collect();
    let max = all.iter().copied().fold(0.0f32, f32::max).max(1e-12);
    let mut bins = [0usize; 20];
    for g in &all {
        bins[((g / max * 20.0) as usize).min(19)] += 1;
    }
    let mode_at_zero = bins.iter().skip(1).all(|&b| b <= bins[0]);
    (frac(&enc), frac(&dec), mode_at_zero)
}

/// The teacher's outputs on the training split, computed the first time a distillation run
/// has to train (a comparison resumed with every run finished never computes them).
struct LazyOutputs<'a> {
    teacher: &'a Net,
    train: &'a Dataset,
    cell: OnceCell<TeacherOutputs>,
}

impl LazyOutputs<'_> {
    fn get(&self) -> &TeacherOutputs {
        self.cell.get_or_init(|| {
            let t = Instant::now();
            let o = TeacherOutputs::compute(self.teacher, self.train, 32);
            eprintln!(
                "teacher outputs cached in {:.0} s",
                t.elapsed().as_secs_f64()
            );
            o
        })
    }
}

/// The work folder of the comparison's own runs.
fn compare_settings(s: &Settings, arm: Arm, plan: &Plan) -> Settings {
    let mut c = s.clone();
    c.work = s.work.join("compare");
    c.faithful = arm == Arm::Faithful;
    c.steps_prune = plan.sparse_steps;
    c
}

/// The settings (work folder) and names of an arm's two sparse runs, DCP's first.
fn sparse_names(s: &Settings, plan: &Plan, arm: Arm) -> (Settings, [&'static str; 2]) {
    match arm {
        // The pipeline's own sparse runs, in its work folder.
        Arm::TeacherInit => (s.clone(), ["stage1_sparse", "netslim_sparse"]),
        Arm::Faithful => (
            compare_settings(s, arm, plan),
            ["faithful_dcp_sparse", "faithful_ns_sparse"],
        ),
    }
}

/// The two sparse runs of an arm: (DCP, NS) with their descriptions.
fn sparse_runs(
    s: &Settings,
    d: &Splits,
    plan: &Plan,
    arm: Arm,
    teacher: &Net,
    outputs: &LazyOutputs<'_>,
) -> Result<[(Trained, SparseRun); 2]> {
    let tarch = &teacher.arch;
    let ns_init = BnInit {
        gamma: 0.5,
        freeze_beta: false,
    };
    let (cs, names) = sparse_names(s, plan, arm);
    let start = match arm {
        Arm::TeacherInit => Start::Convs(teacher),
        Arm::Faithful => Start::Scratch,
    };
    let mut out = Vec::new();
    for (method, name, init, distilled) in [
        ("DCP", names[0], BnInit::PRUNING, true),
        ("NS", names[1], ns_init, false),
    ] {
        let mut cfg = cs.cfg(name, cs.steps_prune, true, distilled);
        if arm == Arm::Faithful {
            cfg.l1_enc = PAPER_L1_BUDGET_ENC / (cfg.steps as f64 * cfg.lr);
            cfg.l1_dec = PAPER_L1_BUDGET_DEC / (cfg.steps as f64 * cfg.lr);
        }
        let tref = (distilled && !stages::finished(&cs, name)).then(|| TeacherRef {
            net: teacher,
            chan_map: prune::identity_map(tarch),
            outputs: Some(outputs.get()),
            projection: None,
        });
        let t = stages::stage(&cs, d, cfg, tarch, init, start, tref.as_ref())?;
        let (near_zero_enc, near_zero_dec, mode_at_zero) = sparsity(tarch, &t.net.gammas());
        let info = SparseRun {
            arm,
            method: method.into(),
            name: name.into(),
            steps: t.cfg.steps,
            l1_enc: t.cfg.l1_enc,
            l1_dec: t.cfg.l1_dec,
            proximal: t.cfg.proximal_l1,
            val_sad: *t.curve.val_sad.last().unwrap_or(&f64::NAN),
            near_zero_enc,
            near_zero_dec,
            mode_at_zero,
        };
        out.push((t, info));
    }
    // The |γ| histograms of the arm's DCP run, with the thresholds of the lowest rate.
    let gammas = out[0].0.net.gammas();
    let (enc, dec) = prune::by_part(tarch, &gammas);
    let rate = plan.rates.first().copied().unwrap_or(0.5);
    let (te, td) = prune::thresholds(tarch, &gammas, rate);
    let plots = s.models.join("plots");
    std::fs::create_dir_all(&plots)?;
    crate::plots::gamma_histogram(
        &enc,
        &dec,
        te,
        td,
        &plots.join(format!("compare_gamma_{}.png", arm.key())),
    )?;
    let ns = out.pop().expect("two runs");
    let dcp = out.pop().expect("two runs");
    Ok([dcp, ns])
}

/// Validation SAD of `src` pruned to `keep`, before any fine-tuning.
fn pruned_val_sad(src: &Net, keep: &[Vec<usize>], val: &Dataset) -> f64 {
    let vs = nn::VarStore::new(src.device());
    let mut net = Net::new(&vs.root(), &prune::arch_of(keep), BnInit::STANDARD);
    net.copy_from_pruned(src, keep);
    distill::evaluate_sad(&net, val, 8)
}

/// The shapes of one arm at one rate, and the pruned-before-fine-tuning checks.
struct RateShapes {
    keeps: Vec<(Shape, Vec<Vec<usize>>)>,
    checks: Vec<PrunedCheck>,
}

#[allow(clippy::too_many_arguments)]
fn shapes_at(
    s: &Settings,
    d: &Splits,
    arm: Arm,
    rate: f64,
    teacher: &Net,
    teacher_val: f64,
    dcp: &(Trained, SparseRun),
    ns: &(Trained, SparseRun),
) -> RateShapes {
    let tarch = &teacher.arch;
    let (h, w) = s.padded();
    let (dg, dn) = (dcp.0.net.gammas(), dcp.0.net.filter_norms());
    let (ng, nn_) = (ns.0.net.gammas(), ns.0.net.filter_norms());
    let k_dcp = prune::select_at_rate(tarch, &dg, &dn, rate);
    let k_ns = prune::select_at_rate(tarch, &ng, &nn_, rate);
    let target = prune::arch_of(&k_dcp).macs(h, w);
    let eq_rate = prune::match_macs(0.0, 0.99, target, true, |r| {
        prune::arch_of(&prune::select_at_rate(tarch, &ng, &nn_, r)).macs(h, w)
    });
    let k_eq = prune::select_at_rate(tarch, &ng, &nn_, eq_rate);
    let norms = teacher.filter_norms();
    let k_uni = prune::select_uniform(tarch, &norms, 1.0 - rate, 1);
    let check = |criterion: String, src: &Net, before: f64, keep: &[Vec<usize>]| PrunedCheck {
        arm,
        rate,
        criterion,
        kept: prune::kept_fraction(tarch, keep),
        macs: prune::arch_of(keep).macs(h, w),
        val_before: before,
        val_pruned: pruned_val_sad(src, keep, &d.val),
    };
    let checks = vec![
        check(
            "DCP |γ| (sparse distillation)".into(),
            &dcp.0.net,
            dcp.1.val_sad,
            &k_dcp,
        ),
        check(
            "Network Slimming |γ|".into(),
            &ns.0.net,
            ns.1.val_sad,
            &k_ns,
        ),
        check(
            format!("Network Slimming |γ| at DCP's FLOPs (rate {eq_rate:.3})"),
            &ns.0.net,
            ns.1.val_sad,
            &k_eq,
        ),
        check(
            "uniform, teacher filter L1 norm".into(),
            teacher,
            teacher_val,
            &k_uni,
        ),
    ];
    RateShapes {
        keeps: vec![
            (Shape::Dcp, k_dcp),
            (Shape::NetSlim, k_ns),
            (Shape::NetSlimEqualFlops, k_eq),
        ],
        checks,
    }
}

/// The steps a finished run trained, from its saved settings.
fn trained_steps(s: &Settings, name: &str) -> Option<usize> {
    let j = std::fs::read_to_string(s.work.join(format!("{name}.cfg.json"))).ok()?;
    serde_json::from_str::<distill::TrainCfg>(&j)
        .ok()
        .map(|c| c.steps)
}

fn rate_key(rate: f64) -> String {
    format!("r{:03}", (rate * 100.0).round() as usize)
}

/// One fine-tune: trains (or loads) it and scores it on the test split; cached as JSON. `None`
/// when the plan only reports and the cell has no cached result.
#[allow(clippy::too_many_arguments)]
fn fine_tune(
    s: &Settings,
    d: &Splits,
    plan: &Plan,
    arm: Arm,
    rate: f64,
    (shape, loss): (Shape, Loss),
    seed: usize,
    keep: &[Vec<usize>],
    sparse: &Net,
    teacher: &Net,
    outputs: &LazyOutputs<'_>,
) -> Result<Option<RunResult>> {
    let cs = compare_settings(s, arm, plan);
    let name = format!(
        "{}_{}_{}_{}_s{seed}",
        arm.key(),
        rate_key(rate),
        shape.key(),
        loss.key()
    );
    let cache = cs.work.join(format!("{name}.result.json"));
    if let Ok(j) = std::fs::read_to_string(&cache)
        && let Ok(mut r) = serde_json::from_str::<RunResult>(&j)
        && r.test_sad.len() == d.test.len()
    {
        if r.steps == 0 {
            r.steps = trained_steps(&cs, &name).unwrap_or(0);
        }
        return Ok(Some(r));
    }
    if plan.report_only {
        return Ok(None);
    }
    let arch = prune::arch_of(keep);
    let distilled = loss == Loss::Distill;
    let mut cfg = cs.cfg(&name, plan.steps, false, distilled);
    // The paper's stage 2 starts from random init, so its channel term goes through a learned
    // projection; the teacher-init arm inherits the surviving weights and their indices.
    let start = match arm {
        Arm::Faithful => Start::Scratch,
        Arm::TeacherInit => Start::Pruned(sparse, keep),
    };
    cfg.spkd_projection = arm == Arm::Faithful && distilled;
    let tref = (distilled && !stages::finished(&cs, &name)).then(|| TeacherRef {
        net: teacher,
        chan_map: prune::chan_map(keep),
        outputs: Some(outputs.get()),
        projection: None,
    });
    let t0 = Instant::now();
    let t = stages::stage(&cs, d, cfg, &arch, BnInit::STANDARD, start, tref.as_ref())?;
    let (h, w) = s.padded();
    let r = RunResult {
        name,
        arm,
        rate,
        shape,
        loss,
        seed,
        widths: arch.widths.clone(),
        macs: arch.macs(h, w),
        params: arch.params(),
        kept: prune::kept_fraction(&teacher.arch, keep),
        val_sad: *t.curve.val_sad.last().unwrap_or(&f64::NAN),
        test_sad: distill::per_image_sad(&t.net, &d.test, 8),
        seconds: t.curve.seconds.max(t0.elapsed().as_secs_f64()),
        steps: t.cfg.steps,
    };
    std::fs::write(&cache, serde_json::to_string(&r)?)?;
    Ok(Some(r))
}

/// Runs (or resumes) the whole comparison and writes its report into `s.models`.
pub fn run(s: &Settings, plan: &Plan) -> Result<Comparison> {
    let t0 = Instant::now();
    let mut s = s.clone();
    s.n_test = plan.n_test;
    std::fs::create_dir_all(s.work.join("compare"))?;
    let d = stages::make_data(&s)?;
    let teacher = stages::teacher(&s, &d)?;
    let outputs = LazyOutputs {
        teacher: &teacher.net,
        train: &d.train,
        cell: OnceCell::new(),
    };
    let mut cmp = Comparison {
        plan: plan.clone(),
        sparse: Vec::new(),
        pruned: Vec::new(),
        runs: Vec::new(),
        shapes: Vec::new(),
        test_images: d.test.len(),
        test_size: d.test.size,
        seconds: 0.0,
    };
    // Per arm: its sparse runs, and per rate the shapes and the before-fine-tuning checks.
    let teacher_val = distill::evaluate_sad(&teacher.net, &d.val, 8);
    let mut arms = Vec::new();
    for &arm in &plan.arms {
        let (cs, names) = sparse_names(&s, plan, arm);
        if plan.report_only && !names.iter().all(|n| stages::finished(&cs, n)) {
            eprintln!(
                "{}: sparse runs unfinished, left out of the report",
                arm.key()
            );
            continue;
        }
        let [dcp, ns] = sparse_runs(&s, &d, plan, arm, &teacher.net, &outputs)?;
        cmp.sparse.push(dcp.1.clone());
        cmp.sparse.push(ns.1.clone());
        let mut per_rate = Vec::new();
        for &rate in &plan.rates {
            let rs = shapes_at(&s, &d, arm, rate, &teacher.net, teacher_val, &dcp, &ns);
            for (shape, keep) in &rs.keeps {
                cmp.shapes
                    .push((arm, rate, *shape, keep.iter().map(Vec::len).collect()));
            }
            cmp.pruned.extend(rs.checks);
            per_rate.push((rate, rs.keeps));
        }
        arms.push((arm, dcp.0, ns.0, per_rate));
    }
    // Seed-major, so that an interrupted comparison has every cell at the first seeds.
    for seed in 0..plan.seeds {
        for (arm, dcp, ns, per_rate) in &arms {
            for (rate, keeps) in per_rate {
                for cell in CELLS {
                    let keep = &keeps.iter().find(|(sh, _)| *sh == cell.0).expect("shape").1;
                    let sparse = if cell.0 == Shape::Dcp {
                        &dcp.net
                    } else {
                        &ns.net
                    };
                    let r = fine_tune(
                        &s,
                        &d,
                        plan,
                        *arm,
                        *rate,
                        cell,
                        seed,
                        keep,
                        sparse,
                        &teacher.net,
                        &outputs,
                    )?;
                    cmp.runs.extend(r);
                }
            }
        }
        cmp.seconds = t0.elapsed().as_secs_f64();
        report::write(&s, &cmp)?;
    }
    Ok(cmp)
}
