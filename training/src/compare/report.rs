//! The comparison's report: `compare.md` / `compare.json` next to the models, a plot of the
//! kept widths, and its summary in a marked block of `results.md`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::stats::{self, Interval};
use super::{Arm, CELLS, Comparison, Loss, RunResult, Shape};
use crate::pipeline::Settings;
use crate::plots;

/// The marks around the comparison's block in `results.md` (the pipeline keeps the block when
/// it rewrites the file).
pub const BEGIN: &str = "<!-- compare:begin -->";
pub const END: &str = "<!-- compare:end -->";

/// One paired difference (first − second, per-image test SAD averaged over the shared seeds).
#[derive(Clone, Debug)]
pub struct Diff {
    pub arm: String,
    pub rate: f64,
    pub question: &'static str,
    pub first: String,
    pub second: String,
    pub seeds: usize,
    pub interval: Interval,
}

impl Diff {
    pub fn verdict(&self) -> &'static str {
        match (self.interval.excludes_zero(), self.interval.mean < 0.0) {
            (true, true) => "first better",
            (true, false) => "second better",
            (false, _) => "no difference detected",
        }
    }
}

/// `text` safe inside a Markdown table cell (`|γ|` would split the cell).
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The fine-tuning steps the cells really trained ("400", or "300–400" if they differ).
fn steps_of(c: &Comparison) -> String {
    let lo = c.runs.iter().map(|r| r.steps).min().unwrap_or(c.plan.steps);
    let hi = c.runs.iter().map(|r| r.steps).max().unwrap_or(c.plan.steps);
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

/// A cell of the design: whose channels, which fine-tuning loss.
type Cell = (Shape, Loss);

fn cell_label(shape: Shape, loss: Loss) -> String {
    let l = match loss {
        Loss::Distill => "distillation",
        Loss::Task => "task loss",
    };
    format!("{} + {l}", shape.label())
}

fn runs_of(c: &Comparison, arm: Arm, rate: f64, cell: (Shape, Loss)) -> Vec<&RunResult> {
    c.runs
        .iter()
        .filter(|r| r.arm == arm && r.rate == rate && (r.shape, r.loss) == cell)
        .collect()
}

/// Paired difference of two sets of runs over the seeds both have.
fn paired(a: &[&RunResult], b: &[&RunResult], reps: usize, seed: u64) -> Option<(usize, Interval)> {
    let shared: Vec<usize> = a
        .iter()
        .map(|r| r.seed)
        .filter(|s| b.iter().any(|r| r.seed == *s))
        .collect();
    if shared.is_empty() {
        return None;
    }
    let per = |runs: &[&RunResult]| -> Vec<f64> {
        let sel: Vec<&[f64]> = runs
            .iter()
            .filter(|r| shared.contains(&r.seed))
            .map(|r| r.test_sad.as_slice())
            .collect();
        stats::mean_over_runs(&sel)
    };
    Some((
        shared.len(),
        stats::paired_bootstrap(&per(a), &per(b), reps, seed),
    ))
}

/// The questions the cells answer, per arm and rate, then the arms against each other.
pub fn diffs(c: &Comparison) -> Vec<Diff> {
    let questions: [(&str, Cell, Cell); 5] = [
        (
            "DCP vs Network Slimming as published, equal prune rate",
            CELLS[0],
            CELLS[1],
        ),
        ("channel choice alone (both distilled)", CELLS[0], CELLS[2]),
        ("channel choice alone (both task loss)", CELLS[3], CELLS[1]),
        ("the loss alone (DCP channels)", CELLS[0], CELLS[3]),
        ("DCP vs Network Slimming, equal FLOPs", CELLS[0], CELLS[4]),
    ];
    let reps = c.plan.bootstrap;
    let mut out = Vec::new();
    for &arm in &c.plan.arms {
        for &rate in &c.plan.rates {
            for (i, (q, x, y)) in questions.iter().enumerate() {
                let (a, b) = (runs_of(c, arm, rate, *x), runs_of(c, arm, rate, *y));
                if let Some((seeds, interval)) = paired(&a, &b, reps, 1000 + i as u64) {
                    out.push(Diff {
                        arm: arm.key().into(),
                        rate,
                        question: q,
                        first: cell_label(x.0, x.1),
                        second: cell_label(y.0, y.1),
                        seeds,
                        interval,
                    });
                }
            }
        }
    }
    if c.plan.arms.len() == 2 {
        for &rate in &c.plan.rates {
            let a = runs_of(c, Arm::Faithful, rate, CELLS[0]);
            let b = runs_of(c, Arm::TeacherInit, rate, CELLS[0]);
            if let Some((seeds, interval)) = paired(&a, &b, reps, 2000) {
                out.push(Diff {
                    arm: "faithful − teacher_init".into(),
                    rate,
                    question: "the arms: paper-faithful vs teacher-init DCP",
                    first: "faithful DCP + distillation".into(),
                    second: "teacher-init DCP + distillation".into(),
                    seeds,
                    interval,
                });
            }
        }
    }
    out
}

fn diff_table(diffs: &[Diff]) -> String {
    let mut m = String::from(
        "| arm | rate | question | first | second | seeds | mean SAD difference (first − second) | 95 % CI | verdict |\n|---|---:|---|---|---|---:|---:|---|---|\n",
    );
    for d in diffs {
        let _ = writeln!(
            m,
            "| {} | {:.2} | {} | {} | {} | {} | {:+.4} | [{:+.4}, {:+.4}] | {} |",
            d.arm,
            d.rate,
            d.question,
            d.first,
            d.second,
            d.seeds,
            d.interval.mean,
            d.interval.lo,
            d.interval.hi,
            d.verdict()
        );
    }
    m
}

fn cell_table(c: &Comparison) -> String {
    let mut m = String::from(
        "| arm | rate | cell | kept channels | GFLOPs@640×368 | params | seeds | val SAD (mean ± sd) | test SAD per seed | test SAD mean |\n|---|---:|---|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for &arm in &c.plan.arms {
        for &rate in &c.plan.rates {
            for cell in CELLS {
                let runs = runs_of(c, arm, rate, cell);
                let Some(r0) = runs.first() else { continue };
                let vals: Vec<f64> = runs.iter().map(|r| r.val_sad).collect();
                let tests: Vec<f64> = runs.iter().map(|r| stats::mean(&r.test_sad)).collect();
                let _ = writeln!(
                    m,
                    "| {} | {:.2} | {} | {:.1} % | {:.3} | {} | {} | {:.4} ± {:.4} | {} | {:.4} |",
                    arm.key(),
                    rate,
                    cell_label(cell.0, cell.1),
                    r0.kept * 100.0,
                    2.0 * r0.macs as f64 / 1e9,
                    r0.params,
                    runs.len(),
                    stats::mean(&vals),
                    stats::sd(&vals),
                    tests
                        .iter()
                        .map(|t| format!("{t:.4}"))
                        .collect::<Vec<_>>()
                        .join(" / "),
                    stats::mean(&tests)
                );
            }
        }
    }
    m
}

fn sparse_table(c: &Comparison) -> String {
    let mut m = String::from(
        "| arm | sparse run | steps | L1 λ enc / dec | proximal | val SAD | \\|γ\\| < 0.01 enc / dec | histogram mode at 0 |\n|---|---|---:|---|---|---:|---|---|\n",
    );
    for r in &c.sparse {
        let _ = writeln!(
            m,
            "| {} | {} (`{}`) | {} | {:.2e} / {:.2e} | {} | {:.4} | {:.1} % / {:.1} % | {} |",
            r.arm.key(),
            r.method,
            r.name,
            r.steps,
            r.l1_enc,
            r.l1_dec,
            if r.proximal {
                "yes"
            } else {
                "no (subgradient)"
            },
            r.val_sad,
            r.near_zero_enc * 100.0,
            r.near_zero_dec * 100.0,
            if r.mode_at_zero { "yes" } else { "no" }
        );
    }
    m
}

fn pruned_table(c: &Comparison) -> String {
    let mut m = String::from(
        "| arm | rate | criterion | kept channels | GFLOPs | val SAD of the source | val SAD right after pruning |\n|---|---:|---|---:|---:|---:|---:|\n",
    );
    for p in &c.pruned {
        let _ = writeln!(
            m,
            "| {} | {:.2} | {} | {:.1} % | {:.3} | {:.4} | {:.4} |",
            p.arm.key(),
            p.rate,
            cell(&p.criterion),
            p.kept * 100.0,
            2.0 * p.macs as f64 / 1e9,
            p.val_before,
            p.val_pruned
        );
    }
    m
}

fn shapes_note(c: &Comparison) -> String {
    let mut m = String::new();
    for &arm in &c.plan.arms {
        for &rate in &c.plan.rates {
            let find = |shape: Shape| {
                c.shapes
                    .iter()
                    .find(|(a, r, s, _)| *a == arm && *r == rate && *s == shape)
                    .map(|x| x.3.clone())
            };
            if let (Some(d), Some(n)) = (find(Shape::Dcp), find(Shape::NetSlim)) {
                let same = d == n;
                let _ = writeln!(
                    m,
                    "- {} at rate {rate:.2}: DCP widths {d:?}, NS widths {n:?}{}",
                    arm.key(),
                    if same { " — **identical**" } else { "" }
                );
            }
        }
    }
    m
}

/// The one-paragraph reading, from the headline questions (method vs method at equal prune rate
/// and the channel choice alone, in the faithful arm first).
pub fn reading(c: &Comparison, diffs: &[Diff]) -> String {
    let mut parts = Vec::new();
    for d in diffs {
        if d.question
            .starts_with("DCP vs Network Slimming as published")
            || d.question
                .starts_with("channel choice alone (both distilled)")
        {
            let who = match d.verdict() {
                "first better" => format!(
                    "DCP is better by {:.4} SAD (95 % CI [{:.4}, {:.4}], excludes zero)",
                    -d.interval.mean, -d.interval.hi, -d.interval.lo
                ),
                "second better" => format!(
                    "Network Slimming's side is better by {:.4} SAD (95 % CI [{:.4}, {:.4}], excludes zero)",
                    d.interval.mean, d.interval.lo, d.interval.hi
                ),
                _ => format!(
                    "the difference is {:+.4} SAD with a 95 % CI [{:+.4}, {:+.4}] that includes zero",
                    d.interval.mean, d.interval.lo, d.interval.hi
                ),
            };
            parts.push(format!(
                "{} arm, prune rate {:.2}, {}: {who}",
                d.arm, d.rate, d.question
            ));
        }
    }
    for d in diffs {
        if d.question.starts_with("the arms") {
            parts.push(format!(
                "at rate {:.2} the faithful arm's DCP student is {:+.4} SAD against the teacher-init arm's (95 % CI [{:+.4}, {:+.4}])",
                d.rate, d.interval.mean, d.interval.lo, d.interval.hi
            ));
        }
    }
    // Whether the two criteria chose different shapes (the pipeline's rounded run gave
    // identical widths).
    let pairs: Vec<bool> = c
        .shapes
        .iter()
        .filter(|(_, _, s, _)| *s == Shape::Dcp)
        .filter_map(|(a, r, _, w)| {
            c.shapes
                .iter()
                .find(|(a2, r2, s2, _)| a2 == a && r2 == r && *s2 == Shape::NetSlim)
                .map(|x| x.3 == *w)
        })
        .collect();
    let identical = pairs.iter().filter(|&&x| x).count();
    let sparsity: Vec<String> = c
        .sparse
        .iter()
        .map(|r| {
            format!(
                "{} {} {:.0} % of encoder |γ| below 0.01 (histogram mode at 0: {})",
                r.arm.key(),
                r.method,
                r.near_zero_enc * 100.0,
                if r.mode_at_zero { "yes" } else { "no" }
            )
        })
        .collect();
    format!(
        "On {} test composites ({}×{}) with up to {} seeds per cell and {} fine-tuning steps for every cell: {}. Without rounding, DCP and Network Slimming chose identical widths in {} of {} arm × rate pairs. Sparsity: {}.",
        c.test_images,
        c.test_size,
        c.test_size,
        c.plan.seeds,
        steps_of(c),
        parts.join("; "),
        identical,
        pairs.len(),
        sparsity.join("; ")
    )
}

/// `compare.md`.
pub fn markdown(s: &Settings, c: &Comparison) -> String {
    let d = diffs(c);
    let mut m =
        String::from("# Distillation-based channel pruning vs Network Slimming (issue #14)\n\n");
    let _ = write!(
        m,
        "Reproduce: `scripts/compare.sh` (`slimmatte-train compare`; the cells trained for {:.0} min in all on a shared 2-core CPU, libtorch threads per process: {}). \
         Test split: {} synthetic composites of {}×{} from the pipeline's test seed stream (never used for any choice); SAD in Composition-1k units (÷1000) over the trimap's unknown region. \
         Every cell is fine-tuned for {} steps (batch {}, crop {}²) from random init in the faithful arm (the paper's stage 2) and from the surviving weights of the sparse run in the teacher-init arm; per-image SAD is averaged over the seeds a pair of cells shares, and the interval is a percentile bootstrap over images ({} resamples). \
         Shapes are cut at the exact prune rate with no rounding of widths (ties among exactly-zero |γ| broken by filter L1 norm); tied skip pairs keep a channel either layer needs.\n\n",
        c.runs.iter().map(|r| r.seconds).sum::<f64>() / 60.0,
        s.threads,
        c.test_images,
        c.test_size,
        c.test_size,
        steps_of(c),
        s.batch,
        s.crop,
        c.plan.bootstrap
    );
    m += "## Reading\n\n";
    m += &reading(c, &d);
    m += "\n\n## Paired differences (negative = first better)\n\n";
    m += &diff_table(&d);
    m += "\n## Cells\n\n";
    m += &cell_table(c);
    m += "\n## Sparse runs\n\nThe teacher-init arm reuses the pipeline's own sparse runs (from the teacher's convolutions, L1 subgradient, cosine lr, SPKD on all four stages at 0.5). The faithful arm starts them from random init, with SPKD on the deepest encoder stage at weight 1, a constant lr, and proximal L1 steps whose λ spends the official code's total shrinkage (Σ lr·λ ≈ 0.517 encoder, 0.0517 decoder) within its own steps.\n\n";
    m += &sparse_table(c);
    for arm in &c.plan.arms {
        let _ = write!(
            m,
            "\n{} arm, DCP sparse run (threshold at the lowest rate):\n\n![|γ| histograms, {} arm](plots/compare_gamma_{}.png)\n",
            arm.key(),
            arm.key(),
            arm.key()
        );
    }
    m += "\n## Right after pruning, before fine-tuning\n\nThe direct test of \"the removed channels matter least\": the pruned copy of each source net on the validation split, before any training.\n\n";
    m += &pruned_table(c);
    m += "\n## Shapes\n\n";
    m += &shapes_note(c);
    m += "\n![kept widths](plots/compare_widths.png)\n";
    m
}

/// The block of `results.md`: the reading, the differences and a link.
fn results_block(c: &Comparison) -> String {
    let d = diffs(c);
    format!(
        "{BEGIN}\n## Seed method vs Network Slimming, faithful and teacher-init arms (issue #14)\n\n{}\n\n{}\nDetails (cells, sparsity, pruning before fine-tuning, shapes): [compare.md](compare.md).\n{END}\n",
        reading(c, &d),
        diff_table(&d)
    )
}

/// `text` with its marked block replaced by `block` (appended when it has none).
pub fn replace_block(text: &str, block: &str) -> String {
    match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let tail = &text[e + END.len()..];
            format!(
                "{}{block}{}",
                &text[..b],
                tail.strip_prefix('\n').unwrap_or(tail)
            )
        }
        _ => format!("{}\n\n{block}", text.trim_end()),
    }
}

/// The marked block of `text`, if any (with its marks and a final newline).
pub fn block_of(text: &str) -> Option<String> {
    crate::pipeline::report::marked_block(text, BEGIN, END)
}

fn widths_plot(c: &Comparison, path: &Path) -> Result<()> {
    let layers: Vec<String> = crate::nets::Arch::from_levels([1; crate::nets::LEVELS])
        .describe()
        .into_iter()
        .map(|(n, _)| n)
        .take(crate::nets::BN_LAYERS)
        .collect();
    let series: Vec<(String, Vec<usize>)> = c
        .shapes
        .iter()
        .filter(|(_, _, s, _)| *s != Shape::NetSlimEqualFlops)
        .map(|(a, r, s, w)| (format!("{} {} r{r:.2}", a.key(), s.key()), w.clone()))
        .collect();
    plots::kept_channels(&layers, &series, path)
}

/// Writes `compare.md`, `compare.json`, the widths plot and the block of `results.md`.
pub fn write(s: &Settings, c: &Comparison) -> Result<()> {
    std::fs::create_dir_all(s.models.join("plots"))?;
    std::fs::write(s.models.join("compare.md"), markdown(s, c))?;
    std::fs::write(s.models.join("compare.json"), serde_json::to_string(c)?)?;
    widths_plot(c, &s.models.join("plots").join("compare_widths.png"))?;
    let results = s.models.join("results.md");
    let text = std::fs::read_to_string(&results).unwrap_or_default();
    std::fs::write(&results, replace_block(&text, &results_block(c)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_block_is_replaced_in_place_and_appended_once() {
        let block = format!("{BEGIN}\nnew\n{END}\n");
        let text = format!("# r\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n");
        let out = replace_block(&text, &block);
        assert_eq!(out, format!("# r\n\nbefore\n{BEGIN}\nnew\n{END}\nafter\n"));
        let appended = replace_block("# r\n", &block);
        assert_eq!(appended, format!("# r\n\n{block}"));
        assert_eq!(replace_block(&appended, &block), appended);
        assert_eq!(block_of(&out).unwrap(), block);
    }
}
