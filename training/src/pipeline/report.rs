//! What a run reports: the plots, `results.md` and the quick-mode checks.

use anyhow::{Result, bail};

use super::budget::probe_row;
use super::settings::Settings;
use super::stages::{Lineup, Splits};
use crate::card::{self, Row};
use crate::nets::BN_LAYERS;
use crate::plots;
use crate::prune;

/// What the `all` run reports back.
pub struct Outcome {
    pub rows: Vec<Row>,
    pub max_parity: f64,
    pub teacher_loss_first_last: (f64, f64),
}

/// The training curves, the stage-1 |γ| histogram and the kept channels per layer.
pub fn plots(s: &Settings, nets: &Lineup) -> Result<()> {
    let pdir = s.models.join("plots");
    std::fs::create_dir_all(&pdir)?;
    plots::curves(
        &nets.curves(),
        &pdir.join(format!("training_curves{}.png", s.tag)),
    )?;
    let tarch = &nets.teacher.net.arch;
    let (te, td) = prune::thresholds(tarch, &nets.gammas, nets.rate);
    let (ge, gd) = prune::by_part(tarch, &nets.gammas);
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
        .take(BN_LAYERS)
        .collect();
    let b = &nets.baselines;
    plots::kept_channels(
        &names,
        &[
            ("teacher".into(), tarch.widths.clone()),
            (
                "distill-pruned (ours)".into(),
                nets.student_arch.widths.clone(),
            ),
            ("Network Slimming".into(), b.netslim_arch.widths.clone()),
            ("uniform".into(), b.uniform_arch.widths.clone()),
        ],
        &pdir.join(format!("kept_channels{}.png", s.tag)),
    )?;
    Ok(())
}

/// The marks around the hand-written reading of `results.md`, kept when the file is rewritten.
pub const NOTES_BEGIN: &str = "<!-- notes:begin -->";
pub const NOTES_END: &str = "<!-- notes:end -->";

/// The block of `text` from `begin` to `end` (marks included, with a final newline), if any.
pub fn marked_block(text: &str, begin: &str, end: &str) -> Option<String> {
    let b = text.find(begin)?;
    let e = b + text[b..].find(end)?;
    Some(format!("{}\n", &text[b..e + end.len()]))
}

/// `results.md`: the table, the claims checked, the kept hand-written `notes` (a marked block
/// of the previous file), the budget search, plots, data and settings; `seconds` is the run's
/// wall-clock time.
pub fn results_markdown(
    s: &Settings,
    d: &Splits,
    rows: &[Row],
    nets: &Lineup,
    seconds: f64,
    notes: Option<&str>,
) -> String {
    let (rate, v_init, v_scratch) = (nets.rate, nets.val_inherit, nets.val_scratch);
    let best_name = nets.best().1;
    let teacher = &rows[0];
    let student = &rows[1];
    let find = |prefix: &str| rows.iter().find(|r| r.model.contains(prefix));
    let mut m = String::new();
    m += "# Distillation-based channel pruning — results\n\n";
    m += &format!(
        "Reproduce: `scripts/train.sh` (one command; its nets trained for {:.0} min in all on a shared 2-core CPU, this invocation took {:.0} min). Test split: {} synthetic composites of {}×{}, seed {}, never used for any choice. FLOPs = 2 × conv MACs at 640×368 (640×360 padded to a multiple of 16); latency = median ONNX Runtime time through `slimmatte::model::Model` at 640×368 with {} threads on this machine.\n\n",
        nets.curves().iter().map(|c| c.seconds).sum::<f64>() / 60.0,
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
    if let Some(n) = notes {
        m += "\n";
        m += n;
    }
    m += &format!(
        "\n## Latency-budget search\n\nBudget {} ms at {}×{} ({} threads); bisection over the prune rate on the stage-1 |γ|, then a grid below the bisection's answer (latency is not monotone in the rate there); each probe exported to ONNX and timed; the fitting probe with the most FLOPs wins. Chosen rate: **{rate:.3}**.\n\n| prune rate | GFLOPs | params | latency ms | fits |\n|---|---:|---:|---:|---|\n",
        s.budget_ms, s.at.0, s.at.1, s.threads
    );
    for p in &nets.probes {
        m += &probe_row(p);
        m += "\n";
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
