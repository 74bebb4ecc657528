//! What a benchmark reports: per-stage latency statistics, the measured runs, the ratios against
//! RVM, and their output as bench.json, bench.md and the plots.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{
    BAND, BenchArgs, COMPOSITE, DECODE, E2E, ENCODE, MATTE, NET, REFINE, TRIMAP, UPSAMPLE,
};
use super::{Frames, plots};

/// Latency statistics of one stage, milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageStats {
    pub stage: String,
    pub n: usize,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl StageStats {
    /// Nearest-rank percentiles of `samples` (ms).
    pub fn from_samples(stage: &str, samples: &[f64]) -> Self {
        let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        s.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| {
            if s.is_empty() {
                f64::NAN
            } else {
                let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
                s[rank.clamp(1, s.len()) - 1]
            }
        };
        Self {
            stage: stage.to_string(),
            n: s.len(),
            mean: if s.is_empty() {
                f64::NAN
            } else {
                s.iter().sum::<f64>() / s.len() as f64
            },
            p50: pct(50.0),
            p95: pct(95.0),
            p99: pct(99.0),
        }
    }
}

/// One measured (system, mode, resolution).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub system: String,
    /// "pipeline" or "bare".
    pub mode: String,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub stages: Vec<StageStats>,
    /// Sustained frames per second: the queued pipeline pass, or 1000 / mean end-to-end for
    /// bare calls (one frame after the other on one thread).
    pub fps: f64,
    /// Extra facts (RVM's downsample ratio, the matting network's working size).
    pub detail: String,
}

impl RunResult {
    pub fn stage(&self, name: &str) -> Option<&StageStats> {
        self.stages.iter().find(|s| s.stage == name)
    }
}

/// One measurement before it is named: the stages' statistics, the frames measured, the
/// sustained fps and the detail line of [`RunResult`].
pub(super) struct Measured {
    pub stages: Vec<StageStats>,
    pub frames: usize,
    pub fps: f64,
    pub detail: String,
}

impl Measured {
    /// The result of `system` measured in `mode` on `frames`.
    pub fn into_run(self, system: String, mode: &str, frames: &Frames) -> RunResult {
        RunResult {
            system,
            mode: mode.into(),
            width: frames.width,
            height: frames.height,
            frames: self.frames,
            stages: self.stages,
            fps: self.fps,
            detail: self.detail,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub machine: String,
    pub threads: usize,
    /// How `threads` ran ([`slimmatte::runtime::threads_label`]).
    #[serde(default)]
    pub threads_label: String,
    /// The compositing background as the reports print it (`bench --background`,
    /// `--estimate-foreground`): "image background", ….
    #[serde(default)]
    pub background: String,
    pub frames: usize,
    pub warmup: usize,
    pub working_size: u32,
    pub runs: Vec<RunResult>,
    pub ratios: Vec<String>,
    pub notes: Vec<String>,
}

pub(super) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available to the process")
}

/// The ratio lines: ours vs RVM at equal resolution.
pub fn ratios(runs: &[RunResult]) -> Vec<String> {
    let mut out = Vec::new();
    for rvm in runs.iter().filter(|r| r.system == "rvm") {
        let Some(rvm_e2e) = rvm.stage(E2E) else {
            continue;
        };
        for r in runs
            .iter()
            .filter(|r| r.system != "rvm" && r.width == rvm.width && r.height == rvm.height)
        {
            let Some(e2e) = r.stage(E2E) else { continue };
            out.push(format!(
                "{} ({}) at {}×{}: {:.1} fps, p50 {:.1} ms end to end — {:.2}× faster than RVM at \
                 equal resolution ({:.1} fps, p50 {:.1} ms, bare model calls, {})",
                r.system,
                r.mode,
                r.width,
                r.height,
                r.fps,
                e2e.p50,
                r.fps / rvm.fps,
                rvm.fps,
                rvm_e2e.p50,
                rvm.detail
            ));
        }
    }
    out
}

fn fmt_ms(s: Option<&StageStats>) -> String {
    match s {
        Some(s) if s.n > 0 => format!("{:.1}", s.p50),
        _ => "–".into(),
    }
}

/// The Markdown tables: one per resolution.
pub fn markdown(report: &BenchReport) -> String {
    let mut md = format!(
        "Frame latency, milliseconds (p50 per stage; end to end p50 / p95 / p99), on {}; \
         {}; {} measured frames after {} warm-up (fewer where the n column says so); matting \
         working size {}; {}. The machine is shared with other jobs, so absolute \
         numbers are noisy: compare ratios within one run.\n",
        report.machine,
        report.threads_label,
        report.frames,
        report.warmup,
        report.working_size,
        report.background
    );
    let mut sizes: Vec<(usize, usize)> = report.runs.iter().map(|r| (r.width, r.height)).collect();
    sizes.dedup();
    for (w, h) in sizes {
        let _ = writeln!(md, "\n### {w}×{h}\n");
        md.push_str(
            "| system | mode | n | decode | trimap / mask | net | upsampling | refine | band net | \
             matting stage | composite | encode | end to end p50 / p95 / p99 | fps | vs RVM |\n",
        );
        md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let rvm_fps = report
            .runs
            .iter()
            .find(|r| r.system == "rvm" && (r.width, r.height) == (w, h))
            .map(|r| r.fps);
        for r in report.runs.iter().filter(|r| (r.width, r.height) == (w, h)) {
            markdown_row(&mut md, r, rvm_fps);
        }
    }
    if !report.ratios.is_empty() {
        md.push_str("\nRatios against RVM at equal resolution:\n\n");
        for r in &report.ratios {
            let _ = writeln!(md, "- {r}");
        }
    }
    for n in &report.notes {
        let _ = writeln!(md, "\nNote: {n}");
    }
    md
}

/// One line of a resolution's table; `rvm_fps` is RVM's at that resolution, if measured.
fn markdown_row(md: &mut String, r: &RunResult, rvm_fps: Option<f64>) {
    let e2e = r.stage(E2E);
    let vs = match rvm_fps {
        Some(f) if r.system != "rvm" => format!("{:.2}×", r.fps / f),
        Some(_) => "1×".into(),
        None => "–".into(),
    };
    let _ = writeln!(
        md,
        "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
        r.system,
        if r.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.detail)
        },
        r.mode,
        r.frames,
        fmt_ms(r.stage(DECODE)),
        fmt_ms(r.stage(TRIMAP)),
        fmt_ms(r.stage(NET)),
        fmt_ms(r.stage(UPSAMPLE)),
        fmt_ms(r.stage(REFINE)),
        fmt_ms(r.stage(BAND)),
        fmt_ms(r.stage(MATTE)),
        fmt_ms(r.stage(COMPOSITE)),
        fmt_ms(r.stage(ENCODE)),
        e2e.map_or("–".into(), |s| format!(
            "{:.1} / {:.1} / {:.1}",
            s.p50, s.p95, s.p99
        )),
        r.fps,
        vs
    );
}

/// Writes the plots of `report` under `--out` (a warning, not an error, when they cannot be).
pub(super) fn write_plots(report: &BenchReport, args: &BenchArgs) {
    let quality = args
        .quality
        .clone()
        .unwrap_or_else(|| args.out.join("eval.json"));
    match plots::all(report, &quality, &args.out) {
        Ok(written) => {
            for p in written {
                println!("wrote {}", p.display());
            }
        }
        Err(e) => eprintln!("warning: plots not written: {e:#}"),
    }
}

/// Writes bench.json, bench.md (also printed) and the plots under `--out`.
pub(super) fn write(report: &BenchReport, args: &BenchArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    std::fs::write(
        args.out.join("bench.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    let md = markdown(report);
    std::fs::write(args.out.join("bench.md"), &md)?;
    println!("{md}");
    write_plots(report, args);
    println!("wrote {}/bench.json, bench.md", args.out.display());
    Ok(())
}

/// `--replot`: the plots again from `<out>/bench.json`, nothing measured.
pub(super) fn replot(args: &BenchArgs) -> Result<()> {
    let path = args.out.join("bench.json");
    let report: BenchReport = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .with_context(|| format!("--replot needs {}", path.display()))?,
    )?;
    write_plots(&report, args);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        let s = StageStats::from_samples("x", &v);
        assert_eq!((s.p50, s.p95, s.p99, s.n), (50.0, 95.0, 99.0, 100));
        assert_eq!(s.mean, 50.5);
        let s = StageStats::from_samples("x", &[3.0, 1.0, 2.0]);
        assert_eq!((s.p50, s.p95, s.p99), (2.0, 3.0, 3.0));
        assert!(StageStats::from_samples("x", &[]).p50.is_nan());
    }

    #[test]
    fn ratio_lines_compare_equal_resolutions_only() {
        let run = |system: &str, w: usize, fps: f64| RunResult {
            system: system.into(),
            mode: "bare".into(),
            width: w,
            height: w / 2,
            frames: 10,
            stages: vec![StageStats::from_samples(E2E, &[1000.0 / fps])],
            fps,
            detail: String::new(),
        };
        let runs = [
            run("rvm", 640, 10.0),
            run("ours:s", 640, 25.0),
            run("ours:s", 1280, 5.0),
        ];
        let lines = ratios(&runs);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("2.50× faster than RVM"), "{}", lines[0]);
    }
}
