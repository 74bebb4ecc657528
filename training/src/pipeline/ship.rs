//! Shipping a trained net: ONNX export, parity with tch, latency, test errors and its model
//! card; the five model files of a run and the rows of the results table.

use std::path::Path;

use anyhow::Result;
use slimmatte::matte::{self, PAD_MULTIPLE};
use slimmatte::model::{Dim, TensorSpec};
use slimmatte_measure::metrics::MatteErrors;
use slimmatte_measure::rng::Rng;
use tch::{Kind, Tensor};

use super::settings::Settings;
use super::stages::{Lineup, Splits, Trained};
use crate::card::{Errors, ModelCard, Row};
use crate::data::Dataset;
use crate::export;
use crate::nets::Net;
use crate::prune;

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

/// Max |ONNX Runtime − tch| over two test images and a non-square random input (single-frame
/// or temporal nets alike).
pub fn parity(net: &Net, onnx: &Path, test: &Dataset, threads: usize) -> Result<f64> {
    let mut model = slimmatte::model::Model::load(onnx, &matte::spec(), threads)?;
    let mut inputs: Vec<(Vec<f32>, usize, usize)> = test
        .samples
        .iter()
        .take(2)
        .map(|smp| (smp.input_chw(), smp.size, smp.size))
        .collect();
    let mut r = Rng::new(99);
    let (h, w) = (96, 160);
    let c = net.arch.in_channels();
    inputs.push(((0..c * h * w).map(|_| r.f32()).collect(), h, w));
    let mut worst = 0.0f64;
    for (x, h, w) in inputs {
        let mut out = vec![0.0f32; h * w];
        export::run_onnx(&mut model, &x, h, w, &mut out)?;
        let t = tch::no_grad(|| {
            net.forward(
                &Tensor::from_slice(&x)
                    .view([1, c as i64, h as i64, w as i64])
                    .to_device(net.device()),
                false,
            )
            .alpha
            .to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
        });
        let t = Vec::<f32>::try_from(&t.flatten(0, -1))?;
        for (a, b) in out.iter().zip(&t) {
            worst = worst.max((a - b).abs() as f64);
        }
    }
    Ok(worst)
}

/// A net to ship and what its model card says besides the measurements.
struct Release<'a> {
    /// File stem without the run's tag.
    name: &'static str,
    role: &'static str,
    method: String,
    /// The runs that made the net, in order; the last one is the shipped net.
    lineage: Vec<&'a Trained>,
    notes: Vec<String>,
    /// Latency already measured for this net (the student choice times every candidate; the
    /// card then reports that measurement instead of a second, noisier one).
    latency_ms: Option<f64>,
}

impl<'a> Release<'a> {
    fn new(
        name: &'static str,
        role: &'static str,
        method: impl Into<String>,
        lineage: &[&'a Trained],
        notes: Vec<String>,
    ) -> Self {
        Self {
            name,
            role,
            method: method.into(),
            lineage: lineage.to_vec(),
            notes,
            latency_ms: None,
        }
    }

    fn timed(self, latency_ms: f64) -> Self {
        Self {
            latency_ms: Some(latency_ms),
            ..self
        }
    }

    fn net(&self) -> &'a Net {
        &self.lineage.last().expect("a release has a run").net
    }
}

/// What shipping measured.
struct Shipped {
    row: Row,
    parity: f64,
}

/// Measurements of an exported net.
struct Measured {
    parity: f64,
    latency_ms: f64,
    test: Errors,
}

/// The runs of the latency measurement (each of five repeats takes their median).
pub(crate) fn latency_runs(s: &Settings) -> usize {
    if s.quick { 10 } else { 30 }
}

/// Exports, checks, times and evaluates one net and writes its model card.
fn ship(s: &Settings, d: &Splits, r: &Release<'_>) -> Result<Shipped> {
    let stem = format!("{}{}", r.name, s.tag);
    let net = r.net();
    let path = s.models.join(format!("{stem}.onnx"));
    export::export(net, &path, &format!("slimmatte matting net: {}", r.method))?;
    let parity = parity(net, &path, &d.test, s.threads)?;
    let (h, w) = s.padded();
    let latency_ms = match r.latency_ms {
        Some(ms) => ms,
        None => prune::measure_onnx_latency(&path, h, w, s.threads, latency_runs(s))?,
    };
    let test = test_errors(net, &d.test);
    let m = Measured {
        parity,
        latency_ms,
        test,
    };
    let card = model_card(s, d, r, &stem, &m);
    card.write(&s.models)?;
    eprintln!(
        "[{stem}] {:.3} GFLOPs, {:.2} ms, SAD {:.3} MSE {:.5} Grad {:.3} Conn {:.3}, parity {:.1e}",
        card.flops_640x368 as f64 / 1e9,
        latency_ms,
        test.sad,
        test.mse,
        test.grad,
        test.conn,
        parity
    );
    Ok(Shipped {
        row: Row {
            model: format!("`{stem}.onnx`"),
            method: r.method.clone(),
            params: card.params,
            flops: card.flops_640x368,
            latency_ms,
            test,
        },
        parity,
    })
}

/// A tensor of the core's matting-model contract as the cards write it: `` `input` float32
/// [1, 4, H, W] `` (the free axes by their letter).
pub(crate) fn interface(t: &TensorSpec) -> String {
    let dims: Vec<String> = t
        .dims
        .iter()
        .zip(["N", "C", "H", "W"])
        .map(|(d, axis)| match d {
            Dim::Fixed(v) => v.to_string(),
            Dim::Any => axis.to_string(),
        })
        .collect();
    format!("`{}` float32 [{}]", t.name, dims.join(", "))
}

fn model_card(s: &Settings, d: &Splits, r: &Release<'_>, stem: &str, m: &Measured) -> ModelCard {
    let (h, w) = s.padded();
    let arch = &r.net().arch;
    let spec = matte::spec();
    ModelCard {
        name: stem.into(),
        file: format!("{stem}.onnx"),
        role: r.role.into(),
        method: r.method.clone(),
        architecture: "DIM-style encoder–decoder (`training/src/nets.rs`): 4 encoder stages of two 3×3 conv+BN+ReLU (the first conv stride 2, then 2×2 max-pool between stages), a mirrored decoder whose 3×3 conv+BN+ReLU outputs are nearest-upsampled and added to the encoder skips, a 3×3 head to 4 channels, 2× pixel shuffle, sigmoid. BatchNorm folded into the convs in the ONNX file; opset 13; dynamic height/width (multiples of 16).".into(),
        input: format!("{}: RGB 0..1 in channels 0..2, trimap in channel 3 (0 background, 0.5 unknown, 1 foreground); H, W multiples of {PAD_MULTIPLE}", interface(&spec.input)),
        output: format!("{} in 0..1 (sigmoid inside); meaningful in the unknown region", interface(&spec.output)),
        widths: arch.describe(),
        params: arch.params(),
        flops_640x368: arch.flops(h, w),
        flops_note: "2 × multiply–accumulates of the convs".into(),
        latency_ms_640x368: m.latency_ms,
        latency_threads: s.threads,
        latency_note: format!("smallest of five medians of {} runs after 3 warm-ups, this 2-core machine (shared with other work)", latency_runs(s)),
        test: m.test,
        test_description: format!(
            "{} synthetic test composites of {}×{} (seed {}), mean per image; SAD = Σ|α̂−α|/1000 and Grad, Conn /1000 over the unknown region, MSE = mean over the unknown region; the net's output is used in the unknown region, the trimap elsewhere.",
            d.test.len(),
            d.test.size,
            d.test.size,
            d.test.seed
        ),
        onnx_vs_tch_max_abs_diff: m.parity,
        training: r.lineage.iter().map(|t| t.cfg.clone()).collect(),
        training_seconds: r.lineage.iter().map(|t| t.curve.seconds).sum(),
        seed: s.seed,
        data: d.description.clone(),
        notes: r.notes.clone(),
    }
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

/// What the model files of a run add up to: the rows of the results table (with the other
/// stage-2 init as a row of its own, not exported) and the largest ONNX vs tch difference.
pub struct ShippedRun {
    pub rows: Vec<Row>,
    pub max_parity: f64,
}

/// Ships the teacher, the student and the three baselines, in that order.
pub fn ship_all(s: &Settings, d: &Splits, nets: &Lineup) -> Result<ShippedRun> {
    let t = &nets.teacher;
    let teacher = Release::new(
        "matting_teacher",
        "teacher (distillation source; too slow for the real-time budget)",
        "teacher, task loss only",
        &[t],
        vec![],
    );
    let mut shipped = vec![ship(s, d, &teacher)?];
    keep_one_teacher(s, &mut shipped[0].row)?;
    let choice = choose_student(s, nets)?;
    for r in releases(s, nets, &choice) {
        shipped.push(ship(s, d, &r)?);
    }
    // The other stage-2 init, for the comparison row (not exported as a model file).
    let (other, other_name) = nets.other();
    let other_errors = test_errors(&other.net, &d.test);
    let (h, w) = s.padded();
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
    Ok(ShippedRun { rows, max_parity })
}

/// A net that could ship as the student: how it was made, its validation SAD and its measured
/// latency at the budget's size.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub method: String,
    pub val_sad: f64,
    pub latency_ms: f64,
}

/// The candidate with the lowest validation SAD among those whose latency fits `budget_ms` (the
/// earlier one on a tie); `None` when none fits.
pub fn best_under_budget(candidates: &[Candidate], budget_ms: f64) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.latency_ms <= budget_ms)
        .min_by(|(i, a), (j, b)| a.val_sad.total_cmp(&b.val_sad).then(i.cmp(j)))
        .map(|(i, _)| i)
}

/// Which net ships as `matting_student`, whichever method made it.
pub struct StudentChoice {
    /// Index into `candidates`: 0 the DCP student, 1 Network Slimming, 2 uniform, 3 small.
    pub winner: usize,
    /// Whether the winner was measured within the budget (else none was, and the budget
    /// search's own pick ships).
    pub fits: bool,
    pub candidates: Vec<Candidate>,
}

impl StudentChoice {
    /// The card's note: every candidate, and why the winner ships.
    fn note(&self, budget_ms: f64) -> String {
        let list: Vec<String> = self
            .candidates
            .iter()
            .map(|c| {
                format!(
                    "{} (val SAD {:.3}, {:.2} ms{})",
                    c.method,
                    c.val_sad,
                    c.latency_ms,
                    if c.latency_ms <= budget_ms {
                        ""
                    } else {
                        ", over budget"
                    }
                )
            })
            .collect();
        let why = if self.fits {
            format!(
                "the lowest validation SAD among the nets measured within the {budget_ms} ms budget (every method competes; the test split plays no part)"
            )
        } else {
            let lowest = best_under_budget(&self.candidates, f64::INFINITY);
            format!(
                "no candidate was measured within the {budget_ms} ms budget in this run, though the latency-budget search had measured the student's shape within it (timings vary on a shared machine), so the budget search's pick ships{}",
                if lowest == Some(self.winner) {
                    "; it also has the lowest validation SAD of all candidates"
                } else {
                    ""
                }
            )
        };
        format!(
            "shipped as the student: {}, {why}. Candidates: {}",
            self.candidates[self.winner].method,
            list.join("; ")
        )
    }
}

/// The methods of the candidates, in [`StudentChoice`] order.
const CANDIDATE_METHODS: [&str; 4] = [
    "distillation-based channel pruning",
    "Network Slimming",
    "uniform pruning",
    "unpruned small student",
];

/// Times every net that could ship as the student and picks the best under the budget (the DCP
/// student, the budget search's own pick, when none fits).
fn choose_student(s: &Settings, nets: &Lineup) -> Result<StudentChoice> {
    let (h, w) = s.padded();
    let b = &nets.baselines;
    let runs = [nets.best().0, &b.netslim, &b.uniform, &b.small];
    let mut candidates = Vec::new();
    // Nets of the same shape run the same graph (the DCP student and Network Slimming often
    // share widths): each shape is timed once and its nets share that timing.
    let mut timed: Vec<(&[usize], f64)> = Vec::new();
    let probe = s
        .work
        .join(format!("candidate_{}.onnx", std::process::id()));
    for (method, t) in CANDIDATE_METHODS.iter().zip(runs) {
        let widths = t.net.arch.widths.as_slice();
        let latency_ms = match timed.iter().find(|(w, _)| *w == widths) {
            Some(&(_, ms)) => ms,
            None => {
                // The trained net's own export, timed as the card reports it.
                export::export(&t.net, &probe, "student candidate")?;
                let latency = prune::measure_onnx_latency(&probe, h, w, s.threads, latency_runs(s));
                let _ = std::fs::remove_file(&probe);
                let ms = latency?;
                timed.push((widths, ms));
                ms
            }
        };
        candidates.push(Candidate {
            method: (*method).into(),
            val_sad: *t.curve.val_sad.last().unwrap_or(&f64::MAX),
            latency_ms,
        });
    }
    let best = best_under_budget(&candidates, s.budget_ms);
    Ok(StudentChoice {
        winner: best.unwrap_or(0),
        fits: best.is_some(),
        candidates,
    })
}

/// The student and the baselines, with their notes.
fn releases<'a>(s: &Settings, nets: &'a Lineup, choice: &StudentChoice) -> [Release<'a>; 4] {
    const BASELINE: &str = "baseline (not used by the runtime)";
    let spkd_note = "SPKD = MSE of spatial (positions × positions, features average-pooled to ≤16×16) and channel (channels × channels) cosine-similarity matrices, summed over all 4 encoder stages; for a pruned student the teacher's channel matrix is restricted to the surviving channel indices".to_string();
    let round_note = format!(
        "kept channel counts are rounded up to multiples of {} for every method (ONNX Runtime's blocked convolutions are much faster on such widths)",
        s.round
    );
    let (t, b) = (&nets.teacher, &nets.baselines);
    let (best, best_name) = nets.best();
    let (rate, v_init, v_scratch) = (nets.rate, nets.val_inherit, nets.val_scratch);
    let dcp_method =
        format!("distillation-based channel pruning (Yoon et al. 2022), stage 2 from {best_name}");
    let uniform_method =
        "uniform channel pruning of the teacher (filter L1 norm), fine-tuned, task loss";
    let netslim_method = "Network Slimming (L1 on γ, task loss only), pruned, fine-tuned";
    let small_method =
        "unpruned small student (uniform shape, random init), same distillation loss";
    // Every candidate was timed for the choice: the cards report those measurements.
    let lat = |i: usize| choice.candidates[i].latency_ms;
    // The student's file holds the winner of the choice, whichever method made it.
    let (student_method, student_lineage): (String, Vec<&Trained>) = match choice.winner {
        1 => (netslim_method.into(), vec![&b.netslim_sparse, &b.netslim]),
        2 => (uniform_method.into(), vec![t, &b.uniform]),
        3 => (small_method.into(), vec![&b.small]),
        _ => (dcp_method, vec![t, &nets.stage1, best]),
    };
    [
        Release::new(
            "matting_student",
            "shipped real-time matting net (runtime default)",
            student_method,
            &student_lineage,
            vec![
                choice.note(s.budget_ms),
                format!(
                    "prune rate {rate:.3} chosen by the latency-budget search ({} ms at {}×{}, {} threads) on the DCP stage-1 |γ|; the baselines are FLOPs-matched to that shape",
                    s.budget_ms, s.at.0, s.at.1, s.threads
                ),
                format!(
                    "DCP stage 2 validation SAD: inherited weights {v_init:.3}, random init {v_scratch:.3}"
                ),
                spkd_note.clone(),
                round_note.clone(),
            ],
        )
        .timed(lat(choice.winner)),
        Release::new(
            "matting_uniform",
            BASELINE,
            uniform_method,
            &[t, &b.uniform],
            vec![
                format!(
                    "kept fraction per layer {:.3}, FLOPs matched to the student",
                    b.uniform_frac
                ),
                round_note.clone(),
            ],
        )
        .timed(lat(2)),
        Release::new(
            "matting_netslim",
            BASELINE,
            netslim_method,
            &[&b.netslim_sparse, &b.netslim],
            vec![
                format!(
                    "prune rate {:.3} (global |γ| threshold per encoder/decoder), FLOPs matched to the student",
                    b.netslim_rate
                ),
                round_note,
            ],
        )
        .timed(lat(1)),
        Release::new(
            "matting_small",
            BASELINE,
            small_method,
            &[&b.small],
            vec![spkd_note],
        )
        .timed(lat(3)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_student_is_the_best_validation_net_under_the_budget_whichever_method_made_it() {
        let c = |val_sad: f64, latency_ms: f64| Candidate {
            method: String::new(),
            val_sad,
            latency_ms,
        };
        // Network Slimming wins on validation under the budget; the uniform net is better
        // still but too slow.
        let cands = [c(0.95, 9.8), c(0.90, 10.0), c(0.80, 11.5), c(1.2, 9.0)];
        assert_eq!(best_under_budget(&cands, 10.0), Some(1));
        // With a wider budget the uniform net ships.
        assert_eq!(best_under_budget(&cands, 12.0), Some(2));
        // A tie goes to the earlier candidate (the DCP student first).
        assert_eq!(
            best_under_budget(&[c(0.9, 9.0), c(0.9, 8.0)], 10.0),
            Some(0)
        );
        assert_eq!(best_under_budget(&cands, 5.0), None);
    }

    #[test]
    fn cards_describe_the_cores_matting_contract() {
        let spec = matte::spec();
        assert_eq!(interface(&spec.input), "`input` float32 [1, 4, H, W]");
        assert_eq!(interface(&spec.output), "`alpha` float32 [1, 1, H, W]");
    }
}
