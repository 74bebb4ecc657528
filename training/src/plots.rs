//! PNG plots (plotters, bitmap backend): training curves, the |γ| histogram with the pruning
//! thresholds, kept channels per layer.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::distill::Curve;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a TTF font for plotters' text once; false when none is found (plots are skipped).
pub fn fonts_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        eprintln!(
            "warning: no DejaVuSans.ttf found (apt-get install fonts-dejavu-core); plots skipped"
        );
        false
    })
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plot: {e:?}")
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A white bitmap canvas of `size` that draws into `path`; `None` when no font is found (the
/// plot is skipped).
fn canvas(path: &Path, size: (u32, u32)) -> Result<Option<DrawingArea<BitMapBackend<'_>, Shift>>> {
    if !fonts_ready() {
        return Ok(None);
    }
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    Ok(Some(root))
}

/// The legend box of a chart.
fn legend<'a, DB, CT>(ch: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    ch.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// One line per run, `points(curve)` in the run's colour and with its name in the legend, then
/// the legend.
fn draw_curves<'a, DB, CT>(
    ch: &mut ChartContext<'a, DB, CT>,
    curves: &[&Curve],
    points: impl Fn(&Curve) -> Vec<(f64, f64)>,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    for (i, c) in curves.iter().enumerate() {
        let col = COLORS[i % COLORS.len()];
        ch.draw_series(LineSeries::new(points(c), col.stroke_width(2)))
            .map_err(err)?
            .label(c.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
    }
    legend(ch)
}

/// Training task loss (log scale) and validation SAD per run.
pub fn curves(curves: &[&Curve], path: &Path) -> Result<()> {
    let Some(root) = canvas(path, (1200, 500))? else {
        return Ok(());
    };
    let (left, right) = root.split_horizontally(600);
    let max_step = curves
        .iter()
        .flat_map(|c| c.steps.last())
        .max()
        .copied()
        .unwrap_or(1)
        .max(1) as f64;
    let losses: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.task_loss.iter().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let (lmin, lmax) = (
        losses.iter().copied().fold(f64::MAX, f64::min).max(1e-4),
        losses.iter().copied().fold(0.0, f64::max).max(1e-3),
    );
    let mut ch = ChartBuilder::on(&left)
        .caption(
            "training alpha loss (Charbonnier, unknown region, EMA)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_step, (lmin * 0.9..lmax * 1.1).log_scale())
        .map_err(err)?;
    ch.configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .y_label_formatter(&|v| format!("{v:.3}"))
        .draw()
        .map_err(err)?;
    draw_curves(&mut ch, curves, |c| {
        c.steps
            .iter()
            .zip(&c.task_loss)
            .map(|(&s, &l)| (s as f64, l.max(lmin)))
            .collect()
    })?;

    let sads: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.val_sad.iter().copied())
        .collect();
    let smax = sads.iter().copied().fold(0.0, f64::max).max(1e-3);
    let mut ch = ChartBuilder::on(&right)
        .caption("validation SAD (mean per image)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_step, 0f64..smax * 1.05)
        .map_err(err)?;
    ch.configure_mesh()
        .x_desc("step")
        .y_desc("SAD")
        .draw()
        .map_err(err)?;
    draw_curves(&mut ch, curves, |c| {
        c.val_steps
            .iter()
            .zip(&c.val_sad)
            .map(|(&s, &v)| (s as f64, v))
            .collect()
    })?;
    root.present().map_err(err)?;
    Ok(())
}

/// Histogram of |γ| after sparse distillation, encoder and decoder, with their thresholds.
pub fn gamma_histogram(
    enc: &[f32],
    dec: &[f32],
    thr_enc: f32,
    thr_dec: f32,
    path: &Path,
) -> Result<()> {
    let Some(root) = canvas(path, (1200, 450))? else {
        return Ok(());
    };
    let (left, right) = root.split_horizontally(600);
    for (area, vals, thr, title) in [
        (&left, enc, thr_enc, "encoder |γ| after stage 1"),
        (&right, dec, thr_dec, "decoder |γ| after stage 1"),
    ] {
        let max = vals.iter().copied().fold(0.0f32, f32::max).max(1e-3) as f64 * 1.05;
        let bins = 40usize;
        let mut counts = vec![0u32; bins];
        for &v in vals {
            let b = ((v as f64 / max * bins as f64) as usize).min(bins - 1);
            counts[b] += 1;
        }
        let cmax = *counts.iter().max().unwrap_or(&1) as f64;
        let mut ch = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..max, 0f64..cmax * 1.1)
            .map_err(err)?;
        ch.configure_mesh()
            .x_desc("|γ|")
            .y_desc("channels")
            .draw()
            .map_err(err)?;
        ch.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x0 = i as f64 * max / bins as f64;
            let x1 = (i + 1) as f64 * max / bins as f64;
            Rectangle::new([(x0, 0.0), (x1, c as f64)], COLORS[0].filled())
        }))
        .map_err(err)?;
        ch.draw_series(std::iter::once(PathElement::new(
            vec![(thr as f64, 0.0), (thr as f64, cmax * 1.1)],
            RED.stroke_width(2),
        )))
        .map_err(err)?
        .label(format!("threshold {thr:.4}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
        legend(&mut ch)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Grouped bars: channels per layer for several archs.
pub fn kept_channels(
    layers: &[String],
    series: &[(String, Vec<usize>)],
    path: &Path,
) -> Result<()> {
    let Some(root) = canvas(path, (1200, 500))? else {
        return Ok(());
    };
    let n = layers.len();
    let ymax = series
        .iter()
        .flat_map(|(_, w)| w.iter().copied())
        .max()
        .unwrap_or(1) as f64;
    let mut ch = ChartBuilder::on(&root)
        .caption("channels per layer", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..n as f64, 0f64..ymax * 1.1)
        .map_err(err)?;
    let names = layers.to_vec();
    ch.configure_mesh()
        .x_labels(2 * n + 1)
        .x_label_style(("sans-serif", 11))
        .x_label_formatter(&|x| {
            // Labels at the bar-group centres (i + 0.5) only.
            if (x - x.floor() - 0.5).abs() < 0.05 {
                names.get(x.floor() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("channels")
        .draw()
        .map_err(err)?;
    let m = series.len().max(1) as f64;
    for (si, (label, widths)) in series.iter().enumerate() {
        let col = COLORS[si % COLORS.len()];
        ch.draw_series(widths.iter().enumerate().map(|(i, &w)| {
            let x0 = i as f64 + 0.1 + 0.8 * si as f64 / m;
            let x1 = x0 + 0.8 / m;
            Rectangle::new([(x0, 0.0), (x1, w as f64)], col.filled())
        }))
        .map_err(err)?
        .label(label.clone())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], col.filled()));
    }
    legend(&mut ch)?;
    root.present().map_err(err)?;
    Ok(())
}
