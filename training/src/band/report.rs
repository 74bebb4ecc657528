//! After the teacher: DCP's sparsity run, the latency-budget search, stage 2, the two
//! baselines at equal FLOPs, export of every net with its card, and the comparison on the test
//! composites (`models/band_compare.md`, `models/band_compare.json`, curves in
//! `models/plots/band_curves.png`).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use slimmatte::band_net::{self, BandNet, CELL_OUTPUTS, CELLS, OUT_CELLS};
use slimmatte::model::Model;

use super::data::per_sample_sad;
use super::net::{BandNetT, Widths};
use super::train::{self, Trained, counts_at_rate, predict, top_channels};
use super::{BandSettings, Splits, fine_tune, sparse};
use crate::compare::stats::paired_bootstrap;

/// Time of one run of the exported `net` on a batch of `tiles` tiles, ms, as the `slimmatte`
/// element runs it ([`BandNet::run_tiles`]: on the band net's own kernel or through ONNX
/// Runtime, whichever [`BandNet::load`] found faster for this net).
pub fn net_latency(net: &BandNetT, tiles: usize, threads: usize, dir: &Path) -> Result<f64> {
    let path = dir.join(format!("probe_{}.onnx", std::process::id()));
    super::export::export(net, &path, "latency probe")?;
    let loaded = BandNet::load(&path, threads);
    let _ = std::fs::remove_file(&path);
    let mut model = loaded?;
    let cell_channels = net.channels * 4;
    let per = cell_channels * CELLS * CELLS;
    let input: Vec<f32> = (0..tiles * per).map(|i| (i % 97) as f32 / 97.0).collect();
    let mut out = vec![0.0f32; tiles * CELL_OUTPUTS * OUT_CELLS * OUT_CELLS];
    for _ in 0..5 {
        model.run_tiles(&input, tiles, &mut out)?;
    }
    // The smallest of three medians of 15 runs: contention on a shared 2-core machine only
    // ever adds time.
    let mut medians = Vec::new();
    for _ in 0..3 {
        let mut times: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                model
                    .run_tiles(&input, tiles, &mut out)
                    .map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        medians.push(times[times.len() / 2]);
    }
    Ok(medians.into_iter().fold(f64::INFINITY, f64::min))
}

/// One probed prune rate of the budget search.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub rate: f64,
    pub widths: Vec<usize>,
    pub macs_per_pixel: f64,
    pub ms: f64,
}

/// The lowest prune rate (most channels) whose net fits the budget, from a grid of rates
/// (each pruned net exported and timed); the probes for the card.
pub fn search_budget(s: &BandSettings, sparse: &Trained) -> Result<(f64, Vec<Probe>)> {
    let gammas = sparse.net.gammas();
    let mut probes = Vec::new();
    let mut seen: Vec<Vec<usize>> = Vec::new();
    for k in 0..=18 {
        let rate = k as f64 * 0.05;
        let counts = counts_at_rate(&gammas, rate, s.round);
        if seen.contains(&counts) {
            continue;
        }
        seen.push(counts.clone());
        let (_vs, net) = train::pruned(&sparse.net, &top_channels(&gammas, &counts));
        let ms = net_latency(&net, s.budget_tiles, s.threads, &s.work)?;
        eprintln!(
            "budget: rate {rate:.2} widths {counts:?} → {ms:.2} ms on {} tiles",
            s.budget_tiles
        );
        probes.push(Probe {
            rate,
            widths: counts,
            macs_per_pixel: net.widths.macs_per_pixel(net.channels),
            ms,
        });
    }
    let chosen = probes
        .iter()
        .find(|p| p.ms <= s.budget_ms)
        .or(probes.last())
        .map(|p| p.rate)
        .unwrap_or(0.5);
    Ok((chosen, probes))
}

/// Widths with about `macs` multiply–accumulates per pixel, every layer the same fraction of
/// the teacher's (uniform pruning), rounded to `round`.
fn uniform_widths(teacher: &Widths, macs: f64, round: usize, channels: usize) -> Widths {
    let mut best = teacher.clone();
    for f in (1..=100).rev() {
        let w = Widths(
            teacher
                .0
                .iter()
                .map(|&c| {
                    ((c as f64 * f as f64 / 100.0).round() as usize)
                        .div_ceil(round)
                        .max(1)
                        * round
                })
                .map(|c| c.min(teacher.0[0]))
                .collect(),
        );
        if w.macs_per_pixel(channels) <= macs * 1.02 {
            return w;
        }
        best = w;
    }
    best
}

/// Network Slimming's counts with the MACs closest to `macs` (a global |γ| threshold).
fn ns_counts(gammas: &[Vec<f32>], macs: f64, round: usize, channels: usize) -> Vec<usize> {
    let mut best = (f64::MAX, vec![]);
    for k in 0..=200 {
        let counts = counts_at_rate(gammas, k as f64 / 200.0, round);
        let m = Widths(counts.clone()).macs_per_pixel(channels);
        if (m - macs).abs() < best.0 {
            best = ((m - macs).abs(), counts);
        }
    }
    best.1
}

/// One exported net's row.
#[derive(Clone, Debug, Serialize)]
pub struct NetRow {
    pub name: String,
    pub method: String,
    pub widths: Vec<usize>,
    pub macs_per_pixel: f64,
    pub ms_budget_batch: f64,
    pub val_sad: f64,
    pub test_sad: f64,
    pub test_sad_coarse: f64,
    /// Paired test SAD difference against the DCP student: mean and 95 % bootstrap interval.
    pub vs_student: Option<(f64, f64, f64)>,
    pub train_seconds: f64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Everything after the teacher.
pub fn finish(s: &BandSettings, d: &Splits, teacher: Trained, t0: Instant) -> Result<()> {
    let dcp_sparse = sparse(s, d, &teacher, true)?;
    if s.until == "sparse" {
        return Ok(());
    }
    let (rate, probes) = search_budget(s, &dcp_sparse)?;
    let gammas = dcp_sparse.net.gammas();
    let counts = counts_at_rate(&gammas, rate, s.round);
    let ch = s.channels();
    let macs = Widths(counts.clone()).macs_per_pixel(ch);
    let ns_sparse = sparse(s, d, &teacher, false)?;
    let ns_g = ns_sparse.net.gammas();
    let ns_c = ns_counts(&ns_g, macs, s.round, ch);
    let uw = uniform_widths(&teacher.net.widths, macs, s.round, ch);
    // The three pruned nets at equal FLOPs, each fine-tuned from its pruned weights: DCP's with
    // distillation, the baselines on the task loss.
    let inits = [
        PrunedInit {
            name: "band_student",
            src: &dcp_sparse.net,
            keep: top_channels(&gammas, &counts),
            distil: true,
            seed: 3,
        },
        PrunedInit {
            name: "band_netslim",
            src: &ns_sparse.net,
            keep: top_channels(&ns_g, &ns_c),
            distil: false,
            seed: 4,
        },
        PrunedInit {
            name: "band_uniform",
            src: &teacher.net,
            keep: top_channels(&teacher.net.filter_norms(), &uw.0),
            distil: false,
            seed: 5,
        },
    ];
    let mut pruned_nets = Vec::new();
    for init in &inits {
        pruned_nets.push(fine_tune(
            s,
            d,
            init.name,
            train::pruned(init.src, &init.keep),
            &teacher,
            init.distil,
            s.seed + init.seed,
        )?);
    }
    let [student, netslim, uniform] =
        <[Trained; 3]>::try_from(pruned_nets).map_err(|_| anyhow::anyhow!("three pruned nets"))?;
    // Seeds: every pruned net's fine-tuning again from the same pruned weights with other seeds
    // (the sparsity runs and the teacher are shared), for the comparison's spread.
    let per_seed = seed_runs(s, d, &teacher, &inits, [&student, &netslim, &uniform])?;
    let ablation = coarse_ablation(s, d, &student.net.widths)?;
    let rows = export_all(
        s,
        d,
        [
            (
                "band_student",
                "DCP: distillation + L1 on γ, pruned at the latency budget, fine-tuned with distillation",
                &student,
            ),
            ("band_teacher", "teacher (unpruned, task loss)", &teacher),
            (
                "band_netslim",
                "Network Slimming at the student's FLOPs (task loss)",
                &netslim,
            ),
            (
                "band_uniform",
                "uniform pruning (filter L1 norm) at the student's FLOPs (task loss)",
                &uniform,
            ),
        ],
    )?;
    let total = t0.elapsed().as_secs_f64();
    write_report(
        s,
        d,
        &Outcome {
            rows: &rows,
            probes: &probes,
            rate,
            total,
            ablation: &ablation,
            per_seed: &per_seed,
        },
    )?;
    let curves = [
        &teacher.curve,
        &dcp_sparse.curve,
        &student.curve,
        &ns_sparse.curve,
        &netslim.curve,
        &uniform.curve,
    ];
    std::fs::create_dir_all(s.models.join("plots"))?;
    crate::plots::curves(&curves, &s.models.join("plots/band_curves.png"))?;
    Ok(())
}

/// Exports the four nets (the student first) with their cards; their rows for the report.
fn export_all(
    s: &BandSettings,
    d: &Splits,
    nets: [(&str, &str, &Trained); 4],
) -> Result<Vec<NetRow>> {
    let ch = s.channels();
    let coarse_test = per_sample_sad(&d.test, &super::data::coarse_of(&d.test));
    let student_test = per_sample_sad(&d.test, &predict(&nets[0].2.net, &d.test));
    let mut rows = Vec::new();
    for (name, method, t) in nets {
        let test = per_sample_sad(&d.test, &predict(&t.net, &d.test));
        let vs_student = (name != "band_student").then(|| {
            let i = paired_bootstrap(&test, &student_test, 2000, s.seed);
            (i.mean, i.lo, i.hi)
        });
        rows.push(NetRow {
            name: name.into(),
            method: method.into(),
            widths: t.net.widths.0.clone(),
            macs_per_pixel: t.net.widths.macs_per_pixel(ch),
            ms_budget_batch: net_latency(&t.net, s.budget_tiles, s.threads, &s.work)?,
            val_sad: t.curve.val_sad.last().copied().unwrap_or(f64::NAN),
            test_sad: mean(&test),
            test_sad_coarse: mean(&coarse_test),
            vs_student,
            train_seconds: t.curve.seconds,
        });
        let path = s.models.join(format!("{name}.onnx"));
        super::export::export(&t.net, &path, method)?;
        let parity = check_parity(&t.net, &path, &d.val, s.threads)
            .with_context(|| format!("ONNX parity of {}", path.display()))?;
        write_card(
            s,
            d,
            (name, method, t),
            rows.last().expect("pushed"),
            parity,
        )?;
    }
    Ok(rows)
}

/// One pruned net of the comparison: where its fine-tuning starts.
struct PrunedInit<'a> {
    name: &'static str,
    src: &'a BandNetT,
    keep: Vec<Vec<usize>>,
    distil: bool,
    seed: u64,
}

/// Per-composite test SAD of each pruned net for every seed (the first run, then
/// `s.seeds − 1` more fine-tunings from the same pruned weights).
fn seed_runs(
    s: &BandSettings,
    d: &Splits,
    teacher: &Trained,
    inits: &[PrunedInit<'_>],
    firsts: [&Trained; 3],
) -> Result<Vec<(String, Vec<Vec<f64>>)>> {
    let mut per_seed = Vec::new();
    for (init, first) in inits.iter().zip(firsts) {
        let mut runs = vec![per_sample_sad(&d.test, &predict(&first.net, &d.test))];
        for extra in 1..s.seeds {
            let t = fine_tune(
                s,
                d,
                &format!("{}_seed{extra}", init.name),
                train::pruned(init.src, &init.keep),
                teacher,
                init.distil,
                s.seed + init.seed + 1000 * extra as u64,
            )?;
            runs.push(per_sample_sad(&d.test, &predict(&t.net, &d.test)));
        }
        per_seed.push((init.name.to_string(), runs));
    }
    Ok(per_seed)
}

/// The coarse-input ablation (test split only, nothing exported): the student's widths trained
/// from scratch on the task loss, with and without the coarse alpha as input. Returns (run,
/// test SAD, validation SAD).
fn coarse_ablation(
    s: &BandSettings,
    d: &Splits,
    widths: &Widths,
) -> Result<Vec<(String, f64, f64)>> {
    let mut ablation = Vec::new();
    for coarse_input in [true, false] {
        let (vs, mut net) = train::new_net(widths, s.channels());
        net.coarse_input = coarse_input;
        let name = if coarse_input {
            "band_scratch"
        } else {
            "band_scratch_no_coarse"
        };
        let cfg = super::task_run(s, name, s.steps_slim, s.seed + 6);
        let t = train::train(vs, net, None, &d.train, &d.val, &cfg, &s.work)?;
        let test = per_sample_sad(&d.test, &predict(&t.net, &d.test));
        ablation.push((
            cfg.name,
            mean(&test),
            t.curve.val_sad.last().copied().unwrap_or(f64::NAN),
        ));
    }
    Ok(ablation)
}

/// Writes the model card of an exported net.
fn write_card(
    s: &BandSettings,
    d: &Splits,
    (name, method, t): (&str, &str, &Trained),
    row: &NetRow,
    parity: f32,
) -> Result<()> {
    let ch = s.channels();
    let runs = RunSummary {
        runs: history(s, name),
    };
    BandCard {
        name,
        file: format!("{name}.onnx"),
        role: if name == "band_student" {
            "shipped band net (the `slimmatte` element's default `band-model`)"
        } else {
            "comparison net; swap it in with `band-model`"
        },
        method,
        input: format!(
            "`{}` float32 [N, {}, C, C]: 2×2 cells of {}×{}-pixel tiles (C = {}); channel \
             (i·2 + j)·K + k = channel k (R, G, B 0..1, trimap 0 / 0.5 / 1, coarse alpha \
             0..1{}) of tile pixel (2y + i, 2x + j), K = {}",
            band_net::INPUT_NAME,
            ch * 4,
            band_net::TILE_INPUT,
            band_net::TILE_INPUT,
            CELLS,
            if s.temporal {
                ", the previous frame's matte 0..1 as the stage wrote it, or the coarse \
                 alpha again without history"
            } else {
                ""
            },
            ch
        ),
        output: format!(
            "`{}` float32 [N, {}, C − {}, C − {}]: the cells of the tile's {}×{} centre (the \
             convolutions are unpadded); channel i·2 + j = the correction added to the coarse \
             alpha of centre pixel (2y + i, 2x + j); the runtime clamps the sum to 0..1 and \
             writes it at the unknown pixels",
            band_net::OUTPUT_NAME,
            CELL_OUTPUTS,
            CELLS - OUT_CELLS,
            CELLS - OUT_CELLS,
            band_net::TILE,
            band_net::TILE
        ),
        architecture: format!(
            "`training/src/band/net.rs`: conv0 1×1 + BN + ReLU, conv1 3×3 dilation {} + BN + \
             ReLU, conv2 3×3 dilation {} + BN + ReLU, head 3×3 (bias) on 2×2 cells, all \
             unpadded; receptive field {} cells ({} pixels) around a cell, the tiles' margin; \
             BatchNorm folded in the ONNX file, opset 13, dynamic N and C",
            super::net::DILATIONS[1],
            super::net::DILATIONS[2],
            super::net::FIELD_CELLS,
            band_net::TILE_MARGIN
        ),
        widths: &row.widths,
        params: t
            .vs
            .trainable_variables()
            .iter()
            .map(|v| v.numel() as i64)
            .sum(),
        macs_per_pixel: row.macs_per_pixel,
        latency_ms: row.ms_budget_batch,
        latency_note: format!(
            "for a batch of {} tiles (what a 640×360 frame of a person sends), {} threads, as \
             the element runs it (`slimmatte::band_net::BandNet::run_tiles`: the band net's own \
             kernel or ONNX Runtime, whichever is faster for this net), smallest of three medians \
             of 15 runs on this 2-core machine",
            s.budget_tiles, s.threads
        ),
        val_sad: row.val_sad,
        test_sad: row.test_sad,
        test_sad_coarse: row.test_sad_coarse,
        test_sad_minus_student: row.vs_student,
        onnx_vs_tch_max_abs_diff: parity,
        training: &runs,
        training_seconds: row.train_seconds,
        seed: s.seed,
        data: data_description(s, d),
    }
    .write(&s.models)?;
    Ok(())
}

/// Fails unless the ONNX file gives the tch net's corrections (to 1e-4) on the first
/// validation tiles; returns the largest difference.
pub fn check_parity(
    net: &BandNetT,
    path: &Path,
    val: &super::data::BandSet,
    threads: usize,
) -> Result<f32> {
    let n = val.tiles().min(8);
    anyhow::ensure!(n > 0, "no validation tiles");
    let idx: Vec<usize> = (0..n).collect();
    let (x, _, _) = val.batch(&idx, &vec![false; n]);
    let cells = super::net::space_to_depth(&x);
    // The ONNX net has no padding: it answers for the tile's centre cells only.
    let (m, out) = ((CELLS - OUT_CELLS) as i64 / 2, OUT_CELLS as i64);
    let want = tch::no_grad(|| net.cells(&cells, false).0)
        .narrow(2, m, out)
        .narrow(3, m, out)
        .contiguous();
    let want = Vec::<f32>::try_from(&want.flatten(0, -1))?;
    let input = Vec::<f32>::try_from(&cells.flatten(0, -1))?;
    let mut model = Model::load(path, &band_net::spec(), threads)?;
    let mut got = vec![0.0f32; want.len()];
    model.run(&input, &[n, net.channels * 4, CELLS, CELLS], &mut got)?;
    let worst = want
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    anyhow::ensure!(worst < 1e-4, "ONNX differs from tch by {worst}");
    Ok(worst)
}

/// A band net's model card (`models/<name>.json` and `.md`).
#[derive(Serialize)]
struct BandCard<'a> {
    name: &'a str,
    file: String,
    role: &'a str,
    method: &'a str,
    input: String,
    output: String,
    architecture: String,
    widths: &'a [usize],
    params: i64,
    macs_per_pixel: f64,
    latency_ms: f64,
    latency_note: String,
    val_sad: f64,
    test_sad: f64,
    test_sad_coarse: f64,
    test_sad_minus_student: Option<(f64, f64, f64)>,
    onnx_vs_tch_max_abs_diff: f32,
    training: &'a RunSummary,
    training_seconds: f64,
    seed: u64,
    data: String,
}

/// What a card says about a net's training runs.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub runs: Vec<String>,
}

impl BandCard<'_> {
    fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{}.json", self.name)),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        let mut md = format!(
            "# {} — model card\n\n**File:** `{}`  \n**Role:** {}  \n**Method:** {}\n\n",
            self.name, self.file, self.role, self.method
        );
        md += &format!(
            "## Interface\n\n- input: {}\n- output: {}\n\n## Architecture\n\n{}\n\n",
            self.input, self.output, self.architecture
        );
        md += &format!(
            "- hidden widths: {:?}\n- parameters (BatchNorm folded): {}\n- multiply–accumulates per \
             full-resolution pixel of a tile: {:.0}\n- latency: **{:.2} ms** {}\n- ONNX vs tch max abs \
             difference: {:.2e}\n\n",
            self.widths,
            self.params,
            self.macs_per_pixel,
            self.latency_ms,
            self.latency_note,
            self.onnx_vs_tch_max_abs_diff
        );
        md += &format!(
            "## Errors\n\nSAD ÷1000 over the unknown pixels, mean per composite (the coarse matte where \
             no tile runs):\n\n| split | this net | coarse matte alone |\n|---|---:|---:|\n| validation \
             | {:.3} | – |\n| test | {:.3} | {:.3} |\n\n",
            self.val_sad, self.test_sad, self.test_sad_coarse
        );
        if let Some((m, lo, hi)) = self.test_sad_minus_student {
            md += &format!(
                "Test SAD minus the shipped student's, paired per composite: {m:+.3} (95 % \
                 bootstrap interval {lo:+.3} … {hi:+.3}).\n\n"
            );
        }
        md += "## Training\n\n";
        for r in &self.training.runs {
            md += &format!("- {r}\n");
        }
        md += &format!(
            "\nIts last run took {:.0} s on this machine (the whole `slimmatte-train band`: \
             `band_compare.md`), seed {}.\n\n## Data\n\n{}\n",
            self.training_seconds, self.seed, self.data
        );
        std::fs::write(dir.join(format!("{}.md", self.name)), md)?;
        Ok(())
    }
}

/// The training runs behind a net, in order, for its card.
fn history(s: &BandSettings, name: &str) -> Vec<String> {
    let teacher = format!(
        "teacher: widths {:?}, {} steps, Adam lr {} cosine, batch {} tiles, task loss = \
         Charbonnier + {} × Charbonnier of the horizontal and vertical differences + {} × squared \
         error, on the unknown pixels the runtime writes (tile centres), random horizontal \
         flips{}",
        s.teacher.0,
        s.steps_teacher,
        s.lr,
        train::BATCH,
        s.w_grad,
        s.w_mse,
        if s.temporal {
            "; tiles of the current frames of moving pairs with the previous matte"
        } else {
            ""
        }
    );
    let dcp = format!(
        "DCP stage 1: full-width copy of the teacher, {} steps, lr {}, loss = task + {} × \
         Charbonnier to the teacher's alpha + {} × MSE to its hidden features + {} × Σ|γ|",
        s.steps_sparse,
        s.lr * 0.5,
        s.distill,
        s.features,
        s.l1_gamma
    );
    let budget = format!(
        "pruned by a global |γ| threshold at the lowest rate whose net runs {} tiles within {} \
         ms (each candidate exported and timed), channels rounded up to multiples of {}",
        s.budget_tiles, s.budget_ms, s.round
    );
    match name {
        "band_teacher" => vec![teacher],
        "band_student" => vec![
            teacher,
            dcp,
            budget,
            format!(
                "DCP stage 2: {} steps, lr {}, task + {} × Charbonnier to the teacher's alpha",
                s.steps_slim,
                s.lr * 0.5,
                s.distill
            ),
        ],
        "band_netslim" => vec![
            teacher,
            format!(
                "Network Slimming: full-width copy of the teacher, {} steps, task loss + {} × \
                 Σ|γ|; pruned by a global |γ| threshold to the student's multiply–accumulates; \
                 fine-tuned {} steps on the task loss",
                s.steps_sparse, s.l1_gamma, s.steps_slim
            ),
        ],
        _ => vec![
            teacher,
            format!(
                "uniform pruning: the same fraction of every hidden layer of the teacher (filters \
                 by L1 norm) at the student's multiply–accumulates; fine-tuned {} steps on the \
                 task loss",
                s.steps_slim
            ),
        ],
    }
}

/// The data, in words, for the cards and the report.
pub fn data_description(s: &BandSettings, d: &Splits) -> String {
    format!(
        "Composites of the data engine (`training/DATA.md`: matte-bank mattes — real alpha \
         structure pulled from package photographs by converged closed-form matting — and \
         procedural person-like alphas with hair strands, over package photographs) at {}×{}, \
         the size of a person's band crop at 640×360. Each is solved by the project's \
         refinement at the runtime's default settings (`slimmatte::band_net::coarse_matte`) and \
         cut into the tiles the runtime sends (`gather_tiles`); the target is the exact alpha.{} \
         Splits by seed stream (seed·10 + 4 / 5 / 6): train {} composites ({} tiles), validation \
         {} ({} tiles, every choice), test {} ({} tiles, never a choice). Generated in {:.0} s.",
        s.size,
        s.size,
        if s.temporal {
            " Each composite is the current frame of a moving pair (`data/sequence.rs`) and its \
             tiles carry the previous matte: the previous frame's truth degraded like a net's \
             output (35 %), the previous frame's coarse matte (50 %), or none — the coarse \
             alpha again, as after a reset (15 %)."
        } else {
            ""
        },
        d.train.samples(),
        d.train.tiles(),
        d.val.samples(),
        d.val.tiles(),
        d.test.samples(),
        d.test.tiles(),
        d.seconds
    )
}

#[derive(Serialize)]
struct Report<'a> {
    settings: &'a BandSettings,
    rows: &'a [NetRow],
    budget_probes: &'a [Probe],
    chosen_rate: f64,
    tiles: (usize, usize, usize),
    data_seconds: f64,
    total_seconds: f64,
}

/// The report's seed table and coarse-input ablation, in Markdown.
fn seeds_and_ablation(
    s: &BandSettings,
    rows: &[NetRow],
    ablation: &[(String, f64, f64)],
    per_seed: &[(String, Vec<Vec<f64>>)],
) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "\nSeeds: each pruned net fine-tuned {} times from the same pruned weights (seeds differ \
         in batches and flips; the teacher and the sparsity runs are shared). Test SAD mean over \
         seeds (sd over seeds), and the paired difference of the per-composite seed means against \
         the DCP student with a 95 % bootstrap interval:\n\n| method | seeds | test SAD | sd | \
         − DCP student (95 % CI) |\n|---|---:|---:|---:|---|\n",
        s.seeds
    ));
    let seed_mean = |runs: &[Vec<f64>]| {
        crate::compare::stats::mean_over_runs(&runs.iter().map(Vec::as_slice).collect::<Vec<_>>())
    };
    let dcp_mean = per_seed
        .first()
        .map(|(_, r)| seed_mean(r))
        .unwrap_or_default();
    for (name, runs) in per_seed {
        let means: Vec<f64> = runs.iter().map(|r| mean(r)).collect();
        let m = mean(&means);
        let sd = crate::compare::stats::sd(&means);
        let diff = if name == "band_student" {
            "–".to_string()
        } else {
            let i = paired_bootstrap(&seed_mean(runs), &dcp_mean, 2000, s.seed);
            format!("{:+.3} ({:+.3} … {:+.3})", i.mean, i.lo, i.hi)
        };
        md.push_str(&format!(
            "| `{name}` | {} | {m:.3} | {sd:.3} | {diff} |\n",
            runs.len()
        ));
    }
    md.push_str(&format!(
        "\nAblation of the coarse input: the student's widths trained from scratch on the task \
         loss for {} steps (no teacher, no pruning), test SAD (coarse matte alone {:.3}):\n\n| run | \
         coarse alpha as input | val SAD | test SAD |\n|---|---|---:|---:|\n",
        s.steps_slim,
        rows.first().map_or(f64::NAN, |r| r.test_sad_coarse)
    ));
    for (name, test, val) in ablation {
        md.push_str(&format!(
            "| `{name}` | {} | {val:.3} | {test:.3} |\n",
            if name.ends_with("no_coarse") {
                "no (0.5; corrections start from 0.5)"
            } else {
                "yes"
            }
        ));
    }
    md
}

/// What the comparison found, for [`write_report`].
struct Outcome<'a> {
    rows: &'a [NetRow],
    probes: &'a [Probe],
    rate: f64,
    total: f64,
    ablation: &'a [(String, f64, f64)],
    per_seed: &'a [(String, Vec<Vec<f64>>)],
}

fn write_report(s: &BandSettings, d: &Splits, o: &Outcome<'_>) -> Result<()> {
    let Outcome {
        rows,
        probes,
        rate,
        total,
        ablation,
        per_seed,
    } = *o;
    std::fs::create_dir_all(&s.models)?;
    let report = Report {
        settings: s,
        rows,
        budget_probes: probes,
        chosen_rate: rate,
        tiles: (d.train.tiles(), d.val.tiles(), d.test.tiles()),
        data_seconds: d.seconds,
        total_seconds: total,
    };
    std::fs::write(
        s.models.join("band_compare.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let mut md = String::new();
    md.push_str("# Band nets: DCP student, teacher and baselines at equal FLOPs\n\n");
    md.push_str(&format!(
        "Written by `slimmatte-train band`{}. Test: {} composites of {}² ({} tiles), never used for a choice; SAD ÷1000 over the unknown pixels of each composite, the coarse (closed-form refinement at the runtime defaults) matte where no tile runs. Training {} composites ({} tiles), validation {} ({} tiles). Whole run {:.0} min on {} threads.\n\n",
        if s.quick { " --quick (CI: tiny data, numbers meaningless)" } else { "" },
        d.test.samples(), s.size, d.test.tiles(), d.train.samples(), d.train.tiles(), d.val.samples(), d.val.tiles(), total / 60.0, s.threads
    ));
    md.push_str("| net | method | widths | MACs / px | ms per batch of tiles | val SAD | test SAD | test SAD, coarse only | test SAD − student (95 % CI) | train s |\n|---|---|---|---:|---:|---:|---:|---:|---|---:|\n");
    for r in rows {
        md.push_str(&format!(
            "| `{}` | {} | {:?} | {:.0} | {:.2} | {:.3} | {:.3} | {:.3} | {} | {:.0} |\n",
            r.name,
            r.method,
            r.widths,
            r.macs_per_pixel,
            r.ms_budget_batch,
            r.val_sad,
            r.test_sad,
            r.test_sad_coarse,
            r.vs_student.map_or("–".to_string(), |(m, lo, hi)| format!(
                "{m:+.3} ({lo:+.3} … {hi:+.3})"
            )),
            r.train_seconds
        ));
    }
    let fits = probes.iter().any(|p| p.ms <= s.budget_ms);
    md.push_str(&format!(
        "\nLatency budget: {:.2} ms for a batch of {} tiles ({} threads); chosen prune rate {:.2}{}. Probes (each pruned net exported and timed as the element runs it, on the band net's own kernel or through ONNX Runtime, whichever is faster; the smallest of three medians of 15 runs):\n\n| rate | widths | MACs / px | ms |\n|---:|---|---:|---:|\n",
        s.budget_ms,
        s.budget_tiles,
        s.threads,
        rate,
        if fits {
            ""
        } else {
            " (no probe fitted the budget: the smallest net was taken)"
        }
    ));
    for p in probes {
        md.push_str(&format!(
            "| {:.2} | {:?} | {:.0} | {:.2} |\n",
            p.rate, p.widths, p.macs_per_pixel, p.ms
        ));
    }
    md.push_str(&seeds_and_ablation(s, rows, ablation, per_seed));
    std::fs::write(s.models.join("band_compare.md"), md)?;
    Ok(())
}
