//! The whole experiment: data → teacher → stage 1 (sparse distillation) → latency-budget search
//! → stage 2 (slim student, two inits) → baselines (uniform pruning, Network Slimming, unpruned
//! small student) → ONNX export + parity + latency → model cards, results table, plots.
//!
//! Every trained net is saved in the work folder as `{name}.safetensors` + `{name}.curve.json`;
//! a rerun skips finished stages and resumes an interrupted one from its checkpoint.
//!
//! - [`settings`]: the full and quick settings;
//! - [`stages`]: the data splits, one resumable training stage and the line-up of all runs;
//! - [`budget`]: the latency-budget search and the stand-alone `budget` command;
//! - [`ship`]: ONNX export, parity, latency, test errors and the model cards;
//! - [`report`]: plots, `results.md` and the quick-mode checks.

pub mod budget;
pub mod report;
pub mod settings;
pub mod ship;
pub mod stages;

use std::time::Instant;

use anyhow::Result;

pub use budget::{budget, cached_budget, run_budget};
pub use report::{Outcome, check_quick};
pub use settings::Settings;
pub use ship::{parity, test_errors};
pub use stages::{Lineup, Splits, Start, Trained, make_data, stage, teacher_outputs, train_all};

use crate::data;

/// Preview pictures of the data: six training samples (composite, trimap, alpha) and the
/// first mattes of the matte bank (foreground over grey, alpha) in `<models>/plots/`.
pub fn save_previews(s: &Settings, d: &Splits) -> Result<()> {
    let plots = s.models.join("plots");
    std::fs::create_dir_all(&plots)?;
    let refs: Vec<&data::Sample> = d.train.samples.iter().take(6).collect();
    data::save_preview(&refs, &plots.join("data_samples.png"))?;
    if !d.bank_preview.is_empty() {
        data::bank::save_preview(&d.bank_preview, &plots.join("matte_bank.png"))?;
    }
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
        save_previews(s, &d)?;
    }
    let nets = train_all(s, &d)?;
    // Export, parity, latency, test metrics, cards.
    let shipped = ship::ship_all(s, &d, &nets)?;
    report::plots(s, &nets)?;
    // The hand-written reading and the seed-method comparison's block (`slimmatte-train
    // compare`) of the previous file outlive a rerun.
    let path = s.models.join(format!("results{}.md", s.tag));
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let notes = report::marked_block(&old, report::NOTES_BEGIN, report::NOTES_END);
    let seconds = t_all.elapsed().as_secs_f64();
    let mut md = report::results_markdown(s, &d, &shipped.rows, &nets, seconds, notes.as_deref());
    if let Some(block) = crate::compare::report::block_of(&old) {
        md = format!("{}\n\n{block}", md.trim_end());
    }
    std::fs::write(&path, md)?;
    Ok(Outcome {
        teacher_loss_first_last: nets.teacher.curve.first_last(0.1),
        rows: shipped.rows,
        max_parity: shipped.max_parity,
    })
}
