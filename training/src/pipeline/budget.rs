//! The latency-budget search (on the stage-1 |γ|), its cache in the work folder and the
//! stand-alone `budget` command.

use anyhow::Result;
use serde::Serialize;

use super::settings::Settings;
use super::stages::{make_data, stage1, teacher, teacher_outputs};
use crate::nets::Net;
use crate::prune::{self, Probe};

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
        println!("{}", probe_row(p));
    }
    println!("chosen prune rate: {rate:.3}");
    Ok(())
}

/// A probe as a row of the Markdown table `| prune rate | GFLOPs | params | latency ms | fits |`.
pub(super) fn probe_row(p: &Probe) -> String {
    format!(
        "| {:.3} | {:.3} | {} | {:.2} | {} |",
        p.rate,
        2.0 * p.macs as f64 / 1e9,
        p.params,
        p.latency_ms,
        if p.fits { "yes" } else { "no" }
    )
}
