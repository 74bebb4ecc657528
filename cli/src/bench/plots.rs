//! PNG plots of a benchmark (plotters, bitmap backend, text with DejaVu Sans from the system):
//! latency per stage (p50 bar, p95/p99 whisker) per resolution, fps vs resolution per system,
//! and matte quality (eval.json) vs latency with the Pareto front.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::prelude::*;

use super::{BenchReport, E2E, STAGES};
use crate::eval::EvalReport;
use crate::plot::{COLORS, err, require_fonts};

/// Writes every plot; returns the files written.
pub fn all(report: &BenchReport, quality: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    require_fonts()?;
    let mut written = Vec::new();
    let mut sizes: Vec<(usize, usize)> = report.runs.iter().map(|r| (r.width, r.height)).collect();
    sizes.dedup();
    for (w, h) in sizes {
        let p = out.join(format!("latency_stages_{w}x{h}.png"));
        stages(report, w, h, &p)?;
        written.push(p);
    }
    let p = out.join("fps_vs_resolution.png");
    fps(report, &p)?;
    written.push(p);
    if quality.is_file() {
        let eval: EvalReport = serde_json::from_str(&std::fs::read_to_string(quality)?)?;
        let p = out.join("quality_vs_latency.png");
        if pareto(report, &eval, &p)? {
            written.push(p);
        }
    } else {
        eprintln!(
            "note: {} not found: run `slimmatte eval` first for the quality-vs-latency plot",
            quality.display()
        );
    }
    Ok(written)
}

fn series_name(system: &str, mode: &str) -> String {
    format!("{system} ({mode})")
}

/// p50 bars with p95 (thick) and p99 (thin) whiskers per stage, one group per system/mode.
fn stages(report: &BenchReport, w: usize, h: usize, path: &Path) -> Result<()> {
    let runs: Vec<_> = report
        .runs
        .iter()
        .filter(|r| (r.width, r.height) == (w, h))
        .collect();
    let stages: Vec<&str> = STAGES
        .iter()
        .copied()
        .filter(|s| runs.iter().any(|r| r.stage(s).is_some()))
        .collect();
    let ymax = runs
        .iter()
        .flat_map(|r| r.stages.iter().map(|s| s.p99))
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        * 1.1;
    // Wide enough for every bar: 14 px per (stage, run) at least.
    let width = (300 + 14 * stages.len() * runs.len()).clamp(1400, 3000) as u32;
    let root = BitMapBackend::new(path, (width, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Latency per stage at {w}×{h} (bar p50, whisker to p95 thick / p99 thin), {}",
                slimmatte::runtime::threads_label(report.threads)
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..stages.len() as f64, 0f64..ymax)
        .map_err(err)?;
    let labels = stages.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(stages.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 {
                labels.get(i).copied().unwrap_or("").to_string()
            } else {
                String::new()
            }
        })
        .y_desc("milliseconds")
        .draw()
        .map_err(err)?;
    let n = runs.len().max(1) as f64;
    let width = 0.8 / n;
    for (k, r) in runs.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let mut first = true;
        for (i, s) in stages.iter().enumerate() {
            let Some(st) = r.stage(s) else { continue };
            if !st.p50.is_finite() {
                continue;
            }
            let x0 = i as f64 + 0.1 + k as f64 * width;
            let x1 = x0 + width * 0.9;
            let xm = (x0 + x1) / 2.0;
            let bar = chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, st.p50)],
                    color.filled(),
                )))
                .map_err(err)?;
            if first {
                bar.label(series_name(&r.system, &r.mode))
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                    });
                first = false;
            }
            chart
                .draw_series([
                    PathElement::new(vec![(xm, st.p50), (xm, st.p95)], color.stroke_width(3)),
                    PathElement::new(vec![(xm, st.p95), (xm, st.p99)], color.stroke_width(1)),
                ])
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Sustained fps against megapixels per frame, one line per system/mode (log y).
fn fps(report: &BenchReport, path: &Path) -> Result<()> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in &report.runs {
        if !r.fps.is_finite() || r.fps <= 0.0 {
            continue;
        }
        let name = series_name(&r.system, &r.mode);
        let mp = (r.width * r.height) as f64 / 1e6;
        match series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push((mp, r.fps)),
            None => series.push((name, vec![(mp, r.fps)])),
        }
    }
    let xmax = series
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.0))
        .fold(0.1f64, f64::max)
        * 1.1;
    let (ymin, ymax) = series
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .fold((f64::MAX, 1.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let ymin = if ymin == f64::MAX { 0.1 } else { ymin * 0.7 };
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Sustained fps vs resolution, {}",
                slimmatte::runtime::threads_label(report.threads)
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, (ymin..ymax * 1.5).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("megapixels per frame (640×360 = 0.23, 1280×720 = 0.92, 1920×1080 = 2.07)")
        .y_desc("frames per second")
        .draw()
        .map_err(err)?;
    for (k, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// SAD (synthetic set) against end-to-end p50 latency at the evaluation resolution; the
/// Pareto front joins the points no other point beats on both axes. Each point says which
/// region its SAD is over (eval's `region`). False when nothing matches.
fn pareto(report: &BenchReport, eval: &EvalReport, path: &Path) -> Result<bool> {
    let mut points: Vec<(String, f64, f64)> = Vec::new();
    for s in eval.summary.iter().filter(|s| s.set == "synthetic") {
        // Latency: the bare end-to-end p50 of the matching bench system at the eval size;
        // closed-form has no bench run, its eval time stands in.
        let system = s.method.split('/').next().unwrap_or(&s.method);
        let bench = report.runs.iter().find(|r| {
            r.system == system
                && r.mode == "bare"
                && (r.width, r.height) == (eval.width, eval.height)
        });
        let latency = match bench.and_then(|r| r.stage(E2E)) {
            Some(st) => st.p50,
            None if s.method == "closed-form" => s.scores.ms,
            None => continue,
        };
        if latency.is_finite() && s.scores.sad.is_finite() {
            let label = format!("{} ({})", s.method, s.region.as_str());
            points.push((label, latency, s.scores.sad));
        }
    }
    if points.is_empty() {
        return Ok(false);
    }
    let mut front: Vec<(f64, f64)> = Vec::new();
    let mut sorted: Vec<(f64, f64)> = points.iter().map(|p| (p.1, p.2)).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best = f64::INFINITY;
    for (l, s) in sorted {
        if s < best {
            front.push((l, s));
            best = s;
        }
    }
    let xmax = points.iter().map(|p| p.1).fold(1.0f64, f64::max) * 2.0;
    let xmin = points.iter().map(|p| p.1).fold(f64::MAX, f64::min) * 0.5;
    let ymax = points.iter().map(|p| p.2).fold(0.1f64, f64::max) * 1.15;
    let root = BitMapBackend::new(path, (1100, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Quality vs latency at {}×{}, synthetic set (lower-left is better; gt-trimap and closed-form get the true trimap)",
                eval.width, eval.height
            ),
            ("sans-serif", 17),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((xmin.max(0.1)..xmax).log_scale(), 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("end-to-end latency p50, ms (log; closed-form: its own run time)")
        .y_desc("SAD ÷1000 (band: unknown band only; image: whole image)")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            front,
            RGBColor(160, 160, 160).stroke_width(2),
        ))
        .map_err(err)?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(160, 160, 160)));
    // Labels: nudged down when they would overlap one already placed nearby.
    let mut placed: Vec<(f64, f64)> = Vec::new();
    for (k, (name, l, s)) in points.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        chart
            .draw_series(std::iter::once(Circle::new((*l, *s), 6, color.filled())))
            .map_err(err)?;
        let mut y = *s + ymax * 0.015;
        while placed
            .iter()
            .any(|&(pl, py)| (pl / l).max(l / pl) < 1.6 && (py - y).abs() < ymax * 0.03)
        {
            y -= ymax * 0.035;
        }
        placed.push((*l, y));
        chart
            .draw_series(std::iter::once(Text::new(
                name.clone(),
                (*l * 1.05, y),
                ("sans-serif", 14),
            )))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}
