//! The temporal student: the shipped single-frame student with the previous frame's matte as a
//! fifth input channel, fine-tuned on pairs of consecutive frames ([`crate::data::sequence`]).
//!
//! It starts from the shipped student's weights with the new channel's first-conv weights at
//! zero (so it starts out computing exactly what the student computes, checked), and is
//! fine-tuned on the current frame with the task loss plus the teacher's alpha (the
//! single-frame teacher on the current frame, cached once: without it the fine-tuned net drifts
//! from what distillation taught the student about real photographs). A control run fine-tunes the
//! single-frame student on the same frames for the same steps without the previous matte, so
//! the table separates "more training" from "the previous matte". The previous matte of a
//! training pair is the ground truth of the previous frame degraded like a net's output, the
//! single-frame student's own output on the previous frame (what the runtime will feed), or the
//! current trimap (what the runtime feeds after a reset).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use slimmatte::matte::{self, PAD_MULTIPLE, PREV_INPUT_NAME};
use tch::nn;

use crate::card::{Errors, ModelCard, Row};
use crate::data::sequence::{Pair, PrevSource, finish_prev};
use crate::data::{Dataset, par_generate, sample_seed};
use crate::distill::{self, Curve, TeacherOutputs, TeacherRef, TrainCfg, evaluate_sad};
use crate::nets::{Arch, BnInit, IN_CHANNELS, Net, enc_a};
use crate::pipeline::ship::{interface, latency_runs, parity, test_errors};
use crate::pipeline::{Settings, stages};
use crate::prune::measure_onnx_latency;
use crate::{export, plots};

/// Fine-tuning steps of the temporal run and of its control (full runs).
pub const STEPS: usize = 6000;

/// File stem of the exported temporal student.
pub const STEM: &str = "matting_student_temporal";

/// The shipped student as the card in `models/` describes it: its widths and the run (in the
/// work folder) whose weights it is.
#[derive(Deserialize)]
struct StudentCard {
    widths: Vec<(String, usize)>,
    training: Vec<TrainCfg>,
}

/// Loads the shipped single-frame student (`models/matting_student.json` + its run's weights
/// in the work folder).
fn load_student(s: &Settings) -> Result<(nn::VarStore, Net, String)> {
    let card_path = s.models.join(format!("matting_student{}.json", s.tag));
    let card: StudentCard = serde_json::from_str(
        &std::fs::read_to_string(&card_path)
            .with_context(|| format!("reading {}", card_path.display()))?,
    )
    .with_context(|| format!("parsing {}", card_path.display()))?;
    let arch = Arch {
        widths: card
            .widths
            .iter()
            .filter(|(n, _)| n != "head")
            .map(|(_, w)| *w)
            .collect(),
        prev_input: false,
    };
    let run = card
        .training
        .last()
        .context("the card lists no run")?
        .name
        .clone();
    let weights = s.work.join(format!("{run}.safetensors"));
    if !weights.exists() {
        bail!(
            "{} is missing: the temporal student starts from the shipped student's weights; run `slimmatte-train all` with this work folder first",
            weights.display()
        );
    }
    let mut vs = nn::VarStore::new(s.tch_device()?);
    let net = Net::new(&vs.root(), &arch, BnInit::STANDARD);
    vs.load(&weights)
        .with_context(|| format!("loading {}", weights.display()))?;
    vs.freeze();
    Ok((vs, net, run))
}

/// The pairs of one split with every previous matte filled in (the `Own` ones by `student`).
fn pairs(g: &crate::data::Generator, seed: u64, n: usize, size: usize, student: &Net) -> Vec<Pair> {
    let mut pairs = par_generate(n, 2, |i| g.pair(sample_seed(seed, i), size));
    let own: Vec<usize> = (0..n)
        .filter(|&i| pairs[i].source == PrevSource::Own)
        .collect();
    tch::no_grad(|| {
        for chunk in own.chunks(16) {
            let prev = Dataset {
                size,
                samples: chunk.iter().map(|&i| pairs[i].previous.clone()).collect(),
                seed,
            };
            let idx: Vec<usize> = (0..chunk.len()).collect();
            let (x, _, _) = prev.batch(&idx, &vec![false; chunk.len()]);
            let p = student.forward(&x.to_device(student.device()), false).alpha;
            let p = Vec::<f32>::try_from(&p.to_device(tch::Device::Cpu).flatten(0, -1))
                .expect("prediction");
            for (j, &i) in chunk.iter().enumerate() {
                let a = &p[j * size * size..(j + 1) * size * size];
                pairs[i].current.prev = Some(finish_prev(a, &pairs[i].previous.trimap));
            }
        }
    });
    pairs
}

/// The current frames of `pairs` as a split, with (temporal) or without (control) their
/// previous mattes.
fn split(pairs: &[Pair], size: usize, seed: u64, with_prev: bool) -> Dataset {
    Dataset {
        size,
        samples: pairs
            .iter()
            .map(|p| {
                let mut c = p.current.clone();
                if !with_prev {
                    c.prev = None;
                }
                c
            })
            .collect(),
        seed,
    }
}

/// Loads the trained teacher of the work folder (frozen).
fn load_teacher(s: &Settings) -> Result<(nn::VarStore, Net)> {
    let weights = s.work.join("teacher.safetensors");
    if !weights.exists() {
        bail!(
            "{} is missing: run `slimmatte-train all` with this work folder first",
            weights.display()
        );
    }
    let mut vs = nn::VarStore::new(s.tch_device()?);
    let net = Net::new(
        &vs.root(),
        &Arch::from_levels(s.teacher_levels),
        BnInit::STANDARD,
    );
    vs.load(&weights)
        .with_context(|| format!("loading {}", weights.display()))?;
    vs.freeze();
    Ok((vs, net))
}

/// Trains (or loads when finished) one fine-tuning run starting from `init`.
fn fine_tune(
    s: &Settings,
    cfg: TrainCfg,
    arch: &Arch,
    init: impl FnOnce(&mut Net),
    teacher: &TeacherRef<'_>,
    train: &Dataset,
    val: &Dataset,
) -> Result<(nn::VarStore, Net, Curve)> {
    let mut vs = nn::VarStore::new(s.tch_device()?);
    let mut net = Net::new(&vs.root(), arch, BnInit::STANDARD);
    let fin = s.work.join(format!("{}.safetensors", cfg.name));
    let cpath = s.work.join(format!("{}.curve.json", cfg.name));
    if stages::finished(s, &cfg.name) {
        vs.load(&fin)?;
        let curve = serde_json::from_str(&std::fs::read_to_string(&cpath)?)?;
        eprintln!("[{}] done before, loaded {}", cfg.name, fin.display());
        return Ok((vs, net, curve));
    }
    init(&mut net);
    let curve = distill::train(&net, &mut vs, Some(teacher), train, val, &cfg, &s.work)?;
    vs.save(&fin)?;
    std::fs::write(&cpath, serde_json::to_string(&curve)?)?;
    Ok((vs, net, curve))
}

/// Validation SAD of the pairs whose previous matte came from `source`.
fn sad_by_source(net: &Net, val: &Dataset, pairs: &[Pair], source: PrevSource) -> Option<f64> {
    let idx: Vec<usize> = (0..pairs.len())
        .filter(|&i| pairs[i].source == source)
        .collect();
    if idx.is_empty() {
        return None;
    }
    let sub = Dataset {
        size: val.size,
        samples: idx.iter().map(|&i| val.samples[i].clone()).collect(),
        seed: val.seed,
    };
    Some(evaluate_sad(net, &sub, 8))
}

/// A SAD that may be missing (no pairs of that kind) for the tables.
fn sad_text(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

/// The pairs of the three splits and their current frames with (temporal) and without
/// (control) the previous matte.
struct TemporalData {
    train: Dataset,
    val: Dataset,
    test: Dataset,
    train_c: Dataset,
    val_c: Dataset,
    test_c: Dataset,
    test_pairs: Vec<Pair>,
    /// Train, validation and test seeds.
    seeds: [u64; 3],
}

impl TemporalData {
    fn make(s: &Settings, student: &Net) -> Result<Self> {
        let t0 = Instant::now();
        let g = stages::generator(s)?;
        let (n_train, n_val, n_test) = (s.n_train, s.n_val.max(16), s.n_test.max(8));
        let seeds = [s.seed * 10 + 4, s.seed * 10 + 5, s.seed * 10 + 6];
        let train_pairs = pairs(&g, seeds[0], n_train, s.crop, student);
        let val_pairs = pairs(&g, seeds[1], n_val, s.crop, student);
        let test_pairs = pairs(&g, seeds[2], n_test, s.test_size, student);
        eprintln!(
            "temporal data: {n_train} / {n_val} / {n_test} pairs in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        Ok(Self {
            train: split(&train_pairs, s.crop, seeds[0], true),
            val: split(&val_pairs, s.crop, seeds[1], true),
            test: split(&test_pairs, s.test_size, seeds[2], true),
            train_c: split(&train_pairs, s.crop, seeds[0], false),
            val_c: split(&val_pairs, s.crop, seeds[1], false),
            test_c: split(&test_pairs, s.test_size, seeds[2], false),
            test_pairs,
            seeds,
        })
    }

    /// What the card and the results say about the data.
    fn describe(&self, s: &Settings) -> String {
        use crate::data::sequence::{FAILURE_SHARE, PREV_SHARES};
        let [train_seed, val_seed, test_seed] = self.seeds;
        format!(
            "Pairs of consecutive frames (`training/src/data/sequence.rs`) from the same generator as the student's data (real-matte bank + procedural alphas over real photographs): the foreground moved between the frames by a similarity transform about the centre (translation σ 3 % of the side, a fifth of the pairs fast moves up to ±15 %; rotation σ 0.04 rad; scale σ 3 %; subjects enter and leave the canvas), the background panned by up to ±3 % on half of them; each frame its own noise, JPEG and trimap; a simulated person-mask failure (1–2 chunks of the subject or of the background next to it turned unknown) in {:.0} % of the current trimaps. Previous matte: the current trimap (reset) {:.0} %, the previous frame's truth degraded like a net's output (box blur 0–2 px, gain/offset, a wrong chunk on 30 %; known regions exact) {:.0} %, the shipped student's own output on the previous frame {:.0} %. Train seed {train_seed} ({} pairs of {c}×{c}), validation seed {val_seed} ({}), test seed {test_seed} ({} pairs of {t}×{t}, never used for a choice).",
            FAILURE_SHARE * 100.0,
            PREV_SHARES[0] * 100.0,
            PREV_SHARES[1] * 100.0,
            PREV_SHARES[2] * 100.0,
            self.train.len(),
            self.val.len(),
            self.test.len(),
            c = s.crop,
            t = s.test_size,
        )
    }
}

/// Fails unless a temporal copy of `student` computes what the student computes; returns that
/// validation SAD.
fn check_start(s: &Settings, student: &Net, d: &TemporalData) -> Result<f64> {
    let vs = nn::VarStore::new(s.tch_device()?);
    let mut start = Net::new(&vs.root(), &student.arch.temporal(), BnInit::STANDARD);
    start.copy_from_single_frame(student);
    let (a, b) = (
        evaluate_sad(&start, &d.val, 8),
        evaluate_sad(student, &d.val_c, 8),
    );
    if (a - b).abs() > 1e-3 * b.max(1.0) {
        bail!("the temporal net does not start as the student: val SAD {a} vs {b}");
    }
    eprintln!("[temporal] starts at the student's val SAD {b:.4}");
    Ok(b)
}

/// Fails unless training reached the new input (the previous-matte weights of the first conv
/// left zero) with a finite loss, and — in a full run — improved on the starting validation SAD.
fn check_trained(s: &Settings, temporal: &Run, start_sad: f64) -> Result<()> {
    let prev_weights = temporal.net.convs[enc_a(0)]
        .ws
        .narrow(1, IN_CHANNELS as i64, 1)
        .abs()
        .max()
        .double_value(&[]);
    if prev_weights <= 1e-6 {
        bail!("the temporal run never used the previous matte (its weights are {prev_weights:e})");
    }
    let loss = temporal.curve.loss.last().copied().unwrap_or(f64::NAN);
    if !loss.is_finite() {
        bail!("the temporal run's loss is {loss}");
    }
    let end = temporal.curve.val_sad.last().copied().unwrap_or(f64::NAN);
    if !s.quick && end.partial_cmp(&start_sad) != Some(std::cmp::Ordering::Less) {
        bail!("the temporal run did not improve on the student: val SAD {start_sad:.4} → {end:.4}");
    }
    eprintln!(
        "[temporal] previous-matte weights up to {prev_weights:.3}, val SAD {start_sad:.4} → {end:.4}"
    );
    Ok(())
}

/// A finished fine-tuning run.
struct Run {
    _vs: nn::VarStore,
    net: Net,
    curve: Curve,
    cfg: TrainCfg,
}

/// The temporal run and its single-frame control: same data, steps, lr and teacher.
fn train_runs(s: &Settings, steps: usize, student: &Net, d: &TemporalData) -> Result<[Run; 2]> {
    // The teacher's alpha on every current frame (both mirror states), shared by both runs;
    // not needed when both are finished in the work folder.
    let (_teacher_vs, teacher_net) = load_teacher(s)?;
    let cache = if stages::finished(s, "temporal") && stages::finished(s, "temporal_control") {
        None
    } else {
        let t_cache = Instant::now();
        let cache = TeacherOutputs::compute_alpha(&teacher_net, &d.train_c, 16);
        eprintln!(
            "[temporal] teacher alpha cached in {:.1} s",
            t_cache.elapsed().as_secs_f64()
        );
        Some(cache)
    };
    let teacher = TeacherRef {
        net: &teacher_net,
        chan_map: Vec::new(),
        outputs: cache.as_ref(),
        projection: None,
    };
    let mut cfg = s.cfg("temporal", steps, false, true);
    cfg.lr = s.lr * 0.25;
    // Alpha distillation only: the SPKD term needs the pruned student's channel map.
    cfg.w_spkd = 0.0;
    let control_cfg = TrainCfg {
        name: "temporal_control".into(),
        seed: cfg.seed ^ 1,
        ..cfg.clone()
    };
    let (vs, net, curve) = fine_tune(
        s,
        cfg.clone(),
        &student.arch.temporal(),
        |n| n.copy_from_single_frame(student),
        &teacher,
        &d.train,
        &d.val,
    )?;
    let (cvs, control, control_curve) = fine_tune(
        s,
        control_cfg.clone(),
        &student.arch,
        |n| {
            n.copy_convs_from(student);
            n.copy_bns_from(student);
        },
        &teacher,
        &d.train_c,
        &d.val_c,
    )?;
    Ok([
        Run {
            _vs: vs,
            net,
            curve,
            cfg,
        },
        Run {
            _vs: cvs,
            net: control,
            curve: control_curve,
            cfg: control_cfg,
        },
    ])
}

/// What the temporal run measured, for its card and results table.
struct Report {
    stem: String,
    method: &'static str,
    student_run: String,
    /// Student, control, temporal.
    rows: Vec<Row>,
    /// Test SAD by source of the previous matte: (source, temporal, control).
    by_source: Vec<(PrevSource, Option<f64>, Option<f64>)>,
    data: String,
    latency_ms: f64,
    parity: f64,
}

impl Report {
    fn card(&self, s: &Settings, d: &TemporalData, temporal: &Run, control: &Run) -> ModelCard {
        let (h, w) = s.padded();
        let arch = &temporal.net.arch;
        let (stem, test_seed) = (&self.stem, d.seeds[2]);
        let spec = matte::spec();
        ModelCard {
            name: stem.clone(),
            file: format!("{stem}.onnx"),
            role: "temporal matting net (the previous frame's matte as a second input); the runtime's default".into(),
            method: self.method.into(),
            architecture: format!("the shipped student's (`matting_student{}.onnx`, run `{}`) with a Concat of `input` and `prev_alpha` before the first conv (5 input channels); BatchNorm folded; opset 13; dynamic height/width (multiples of {PAD_MULTIPLE}).", s.tag, self.student_run),
            input: format!("{}: RGB 0..1 in channels 0..2, trimap in channel 3 (0 / 0.5 / 1); `{PREV_INPUT_NAME}` float32 [1, 1, H, W]: the previous frame's output matte 0..1 on the same grid, or a copy of the trimap channel when there is no history (first frame, reset, scene cut)", interface(&spec.input)),
            output: format!("{} in 0..1 (sigmoid inside); meaningful in the unknown region", interface(&spec.output)),
            widths: arch.describe(),
            params: arch.params(),
            flops_640x368: arch.flops(h, w),
            flops_note: "2 × multiply–accumulates of the convs".into(),
            latency_ms_640x368: self.latency_ms,
            latency_threads: s.threads,
            latency_note: format!("smallest of five medians of {} runs after 3 warm-ups, this 2-core machine (shared with other work)", latency_runs(s)),
            test: self.rows[2].test,
            test_description: format!("the current frames of {} test pairs of {}×{} (seed {test_seed}) with their previous mattes; SAD = Σ|α̂−α|/1000 and Grad, Conn /1000 over the unknown region, MSE = mean over it", d.test.len(), d.test.size, d.test.size),
            onnx_vs_tch_max_abs_diff: self.parity,
            training: vec![temporal.cfg.clone()],
            training_seconds: temporal.curve.seconds,
            seed: s.seed,
            data: self.data.clone(),
            notes: self
                .by_source
                .iter()
                .map(|(src, t, c)| format!("test SAD of the pairs whose previous matte is {src:?}: temporal {}, control {}", sad_text(*t), sad_text(*c)))
                .chain([format!("control run `{}`: same data (without the previous matte), steps, lr, schedule and teacher", control.cfg.name)])
                .collect(),
        }
    }

    fn markdown(
        &self,
        s: &Settings,
        d: &TemporalData,
        temporal: &Run,
        control: &Run,
        seconds: f64,
    ) -> String {
        let (h, w) = s.padded();
        let mut md = format!(
            "# Temporal student ({})\n\nTest split: {} pairs (seed {}), current frame, Composition-1k units; latency at {w}×{h}, {} threads.\n\n",
            if s.quick { "quick run" } else { "full run" },
            d.test.len(),
            d.seeds[2],
            s.threads
        );
        md += &crate::card::table(&self.rows);
        md += "\n\n| previous matte | temporal SAD | control SAD |\n|---|---:|---:|\n";
        for (src, t, c) in &self.by_source {
            md += &format!("| {src:?} | {} | {} |\n", sad_text(*t), sad_text(*c));
        }
        md += &format!(
            "\n{}\n\nTraining: {} s temporal, {} s control; whole command {seconds:.0} s.\n",
            self.data,
            temporal.curve.seconds.round(),
            control.curve.seconds.round(),
        );
        md
    }
}

/// Trains, checks and exports the temporal student; writes its card, plot and results table.
pub fn run(s: &Settings, steps: usize) -> Result<()> {
    let t0 = Instant::now();
    let (_student_vs, student, student_run) = load_student(s)?;
    let d = TemporalData::make(s, &student)?;
    let start_sad = check_start(s, &student, &d)?;
    let [temporal, control] = train_runs(s, steps, &student, &d)?;
    let (net, arch) = (&temporal.net, &temporal.net.arch);

    // Export and check.
    let stem = format!("{STEM}{}", s.tag);
    let path = s.models.join(format!("{stem}.onnx"));
    let method = "the shipped student + the previous frame's matte as a fifth input channel, fine-tuned on moving pairs with simulated mask failures (task loss + the teacher's alpha)";
    export::export(
        net,
        &path,
        &format!("slimmatte temporal matting net: {method}"),
    )?;
    let parity = parity(net, &path, &d.test, s.threads)?;
    if parity > 1e-3 {
        bail!(
            "ONNX and tch disagree by {parity:.2e} on {}",
            path.display()
        );
    }
    let (h, w) = s.padded();
    let latency_ms = measure_onnx_latency(&path, h, w, s.threads, latency_runs(s))?;
    let errors = |n: &Net, d: &Dataset| -> Errors { test_errors(n, d) };
    let rows = vec![
        Row {
            model: "`matting_student.onnx` (single frame, as shipped)".into(),
            method: "no previous matte".into(),
            params: student.arch.params(),
            flops: student.arch.flops(h, w),
            latency_ms: f64::NAN,
            test: errors(&student, &d.test_c),
        },
        Row {
            model: "(control, not exported)".into(),
            method: format!("single frame, fine-tuned {steps} more steps on the same frames"),
            params: control.net.arch.params(),
            flops: control.net.arch.flops(h, w),
            latency_ms: f64::NAN,
            test: errors(&control.net, &d.test_c),
        },
        Row {
            model: format!("`{stem}.onnx`"),
            method: "previous matte as input, same steps".into(),
            params: arch.params(),
            flops: arch.flops(h, w),
            latency_ms,
            test: errors(net, &d.test),
        },
    ];
    let by_source: Vec<(PrevSource, Option<f64>, Option<f64>)> =
        [PrevSource::Reset, PrevSource::Truth, PrevSource::Own]
            .into_iter()
            .map(|src| {
                (
                    src,
                    sad_by_source(net, &d.test, &d.test_pairs, src),
                    sad_by_source(&control.net, &d.test_c, &d.test_pairs, src),
                )
            })
            .collect();
    let plot_dir = s.models.join("plots");
    std::fs::create_dir_all(&plot_dir)?;
    plots::curves(
        &[&temporal.curve, &control.curve],
        &plot_dir.join(format!("{stem}_curves.png")),
    )?;
    let report = Report {
        stem: stem.clone(),
        method,
        student_run,
        rows,
        by_source,
        data: d.describe(s),
        latency_ms,
        parity,
    };
    report.card(s, &d, &temporal, &control).write(&s.models)?;
    let md = report.markdown(s, &d, &temporal, &control, t0.elapsed().as_secs_f64());
    std::fs::write(s.models.join(format!("{stem}_results.md")), &md)?;
    println!("{md}");

    check_trained(s, &temporal, start_sad)
}
