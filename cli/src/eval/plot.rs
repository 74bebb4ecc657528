//! `sad_over_time.png`: each method's SAD frame by frame on the moving sequences, one panel per
//! sequence and one line per method (plotters, like `bench`'s plots), so a multi-frame failure
//! (a bite out of the subject, a leak) shows as a bump that a mean hides.
//!
//! A system (the method's name before `/`) keeps its colour in every panel; trimap-free rows
//! (SAD over the whole frame) are solid lines, given-trimap rows (SAD over the band) dashed.

use std::path::Path;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::{Region, SequenceRow};
use crate::plot::{COLORS, err, require_fonts};

/// Width of the plot and of the legend beside it, in pixels.
const PLOT_WIDTH: u32 = 900;
const LEGEND_WIDTH: u32 = 360;
/// Height of one legend line.
const LEGEND_LINE: u32 = 17;

/// Draws the per-frame SAD of `rows` into `path` (nothing when no row has per-frame values).
pub(super) fn sad_over_time(rows: &[SequenceRow], path: &Path) -> Result<()> {
    let rows: Vec<&SequenceRow> = rows.iter().filter(|r| !r.frame_sad.is_empty()).collect();
    let mut sequences: Vec<&str> = Vec::new();
    let mut systems: Vec<&str> = Vec::new();
    for r in &rows {
        if !sequences.contains(&r.sequence.as_str()) {
            sequences.push(&r.sequence);
        }
        if !systems.contains(&system(&r.method)) {
            systems.push(system(&r.method));
        }
    }
    if sequences.is_empty() {
        return Ok(());
    }
    require_fonts()?;
    let color = |method: &str| {
        let k = systems.iter().position(|s| *s == system(method));
        COLORS[k.unwrap_or(0) % COLORS.len()]
    };
    let most = sequences
        .iter()
        .map(|s| rows.iter().filter(|r| r.sequence == *s).count())
        .max()
        .unwrap_or(1);
    let panel_height = (60 + LEGEND_LINE * most as u32).max(420);
    let root = BitMapBackend::new(
        path,
        (
            PLOT_WIDTH + LEGEND_WIDTH,
            panel_height * sequences.len() as u32,
        ),
    )
    .into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for (panel, name) in root
        .split_evenly((sequences.len(), 1))
        .iter()
        .zip(&sequences)
    {
        let mine: Vec<&SequenceRow> = rows
            .iter()
            .copied()
            .filter(|r| r.sequence == *name)
            .collect();
        let (plot, legend) = panel.split_horizontally(PLOT_WIDTH);
        draw_panel(&plot, name, &mine, &color)?;
        draw_legend(&legend, &mine, &color)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// The system of a method: `ours:student+refine/trimapgen` → `ours:student+refine`. A row
/// on the oracle mask or with the selfie network alone is a system of its own (its own
/// colour): it is not the shipped default.
fn system(method: &str) -> &str {
    if method.ends_with("/oracle-mask") || method.ends_with("/trimapgen-selfie") {
        return method;
    }
    method.split('/').next().unwrap_or(method)
}

fn style(color: RGBColor) -> ShapeStyle {
    color.stroke_width(2)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    name: &str,
    rows: &[&SequenceRow],
    color: &dyn Fn(&str) -> RGBColor,
) -> Result<()> {
    let frames = rows.iter().map(|r| r.frame_sad.len()).max().unwrap_or(1);
    let ymax = rows
        .iter()
        .flat_map(|r| r.frame_sad.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1e-3f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("SAD per frame, {name}"), ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0usize..frames.saturating_sub(1).max(1), 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("frame")
        .y_desc("SAD ÷1000 (solid: whole frame; dashed: unknown band)")
        .draw()
        .map_err(err)?;
    for r in rows {
        let points = r.frame_sad.iter().copied().enumerate();
        let style = style(color(&r.method));
        match r.region {
            Region::Image => {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(err)?;
            }
            Region::Band => {
                chart
                    .draw_series(DashedLineSeries::new(points, 6, 5, style))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// One line per row beside the plot: its stroke and `method (region)`.
fn draw_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    rows: &[&SequenceRow],
    color: &dyn Fn(&str) -> RGBColor,
) -> Result<()> {
    let font = ("sans-serif", 13).into_font();
    for (k, r) in rows.iter().enumerate() {
        let y = 40 + (k as u32 * LEGEND_LINE) as i32;
        let style = style(color(&r.method));
        let segments: &[(i32, i32)] = match r.region {
            Region::Image => &[(0, 22)],
            Region::Band => &[(0, 8), (14, 22)],
        };
        for &(a, b) in segments {
            area.draw(&PathElement::new(vec![(4 + a, y), (4 + b, y)], style))
                .map_err(err)?;
        }
        area.draw(&Text::new(
            format!("{} ({})", r.method, r.region.as_str()),
            (32, y - 7),
            font.clone(),
        ))
        .map_err(err)?;
    }
    Ok(())
}
