//! `slimmatte eval --refine-curve N`: what the matting-Laplacian refinement buys per
//! millisecond. For N synthetic stills at 640×360 and at 1280×720 (given the true trimap) and
//! for opencv-doc's real `alphamat` photograph, the shipped student's matte is refined with
//! 0 … 256 CG iterations for each window model ([`WINDOWS`]: radius and ε); SAD and the refinement's own time are
//! recorded per point, next to the net alone and pymatting's closed-form solve on the same
//! images. Writes refine_curve.{csv,md,png} and refine_crops_<set>.png (image, net alone, net +
//! refine at the shipped default, net + refine at the quality preset, closed-form, ground truth).
//!
//! The stills use other indices than `eval`'s test stills (a tuning set), so defaults picked
//! from this curve are not tuned to the test split; `alphamat` is only reported.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;

use crate::sequence;
use slimmatte::matte::{MatteRefiner, MatteSettings};
use slimmatte::refine::{RefineMethod, RefineSettings};
use slimmatte_measure::metrics::MatteErrors;

use super::eval::{
    ALPHAMAT_DIR, EvalArgs, EvalImage, closed_form_alphas, errors, load_folder, matte_given_trimap,
};
use super::plot::{COLORS, err, fonts_ready};

/// CG iterations at full resolution on the curve (0 = the net alone).
const ITERATIONS: &[u32] = &[0, 1, 2, 4, 8, 16, 32, 64, 128, 256];
/// Window models on the curve: (radius, ε). Radius 3 was dominated by 1 and 2 in earlier runs;
/// ε = 1e-7 is closed-form matting's own (the quality preset).
const WINDOWS: &[(u32, f32)] = &[(1, 1e-6), (2, 1e-6), (1, 1e-7)];
/// First still index of the tuning set (`eval` tests on 0 … N−1).
const TUNING_OFFSET: usize = 10_000;

/// One point of the curve: a set, a configuration, mean errors and time.
#[derive(Debug, Clone)]
struct Point {
    set: String,
    radius: u32,
    epsilon: f32,
    iterations: u32,
    errors: MatteErrors,
    refine_ms: f64,
    stage_ms: f64,
}

/// Closed-form matting on one set: the set, its mean errors, its mean time (ms) and the alpha
/// of each image.
type ClosedForm = (String, MatteErrors, f64, Vec<Vec<f32>>);

/// The curve's image sets: synthetic tuning stills at 640×360 and 1280×720 (the trimap radius
/// scaled with the height), and opencv-doc's alphamat photograph when installed.
fn curve_sets(args: &EvalArgs, notes: &mut Vec<String>) -> Result<Vec<(String, Vec<EvalImage>)>> {
    let textures = sequence::textures()?;
    let mut sets: Vec<(String, Vec<EvalImage>)> = Vec::new();
    for (w, h) in [(640usize, 360usize), (1280, 720)] {
        let radius = args.trimap_radius * h / 360;
        let mut images = Vec::new();
        for i in 0..args.refine_curve {
            let s = sequence::still(&textures, TUNING_OFFSET + i, w, h)?;
            let trimap = sequence::trimap_from_alpha(&s.alpha, w, h, radius);
            images.push(EvalImage {
                set: format!("synthetic {w}×{h}"),
                sample: s,
                trimap,
            });
        }
        sets.push((format!("synthetic {w}×{h}"), images));
    }
    if Path::new(ALPHAMAT_DIR).is_dir() {
        sets.push((
            "alphamat".into(),
            load_folder(Path::new(ALPHAMAT_DIR), "alphamat", args.trimap_radius)?,
        ));
    } else {
        notes.push(format!(
            "{ALPHAMAT_DIR} missing (apt-get install opencv-doc): skipped"
        ));
    }
    Ok(sets)
}

/// The matting settings of one point of the curve: (radius, ε, iterations), 0 iterations
/// being the net alone.
fn curve_settings(
    args: &EvalArgs,
    base: &MatteSettings,
    (radius, epsilon, iterations): (u32, f32, u32),
) -> MatteSettings {
    MatteSettings {
        refine: RefineSettings {
            // 0 iterations: the net alone (`RefineSettings::enabled` is false).
            method: RefineMethod::Laplacian,
            iterations,
            radius: radius.max(1),
            epsilon,
            ..args.refine.settings()
        },
        ..*base
    }
}

/// Every configuration on every image of every set: one [`Point`] per (set, configuration).
fn measure(
    args: &EvalArgs,
    refiner: &mut MatteRefiner,
    sets: &[(String, Vec<EvalImage>)],
    base: &MatteSettings,
    pred: &mut Vec<f32>,
) -> Result<Vec<Point>> {
    let configs: Vec<(u32, f32, u32)> = std::iter::once((0, 0.0, 0))
        .chain(WINDOWS.iter().flat_map(|&(r, e)| {
            ITERATIONS
                .iter()
                .filter(|&&i| i > 0)
                .map(move |&i| (r, e, i))
        }))
        .collect();
    let total: usize = sets.iter().map(|(_, v)| v.len()).sum::<usize>() * configs.len();
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{spinner} refine curve {bar:40} {pos}/{len} {msg}")
            .expect("template"),
    );
    let mut points = Vec::new();
    // Warm-up (first inference and buffer growth are not timed).
    if let Some(img) = sets.iter().flat_map(|(_, v)| v.first()).next() {
        matte_given_trimap(refiner, img, base, pred)?;
    }
    for (set, images) in sets {
        for &(radius, epsilon, iterations) in &configs {
            bar.set_message(format!("{set} r={radius} ε={epsilon:e} n={iterations}"));
            let settings = curve_settings(args, base, (radius, epsilon, iterations));
            let (mut errs, mut refine_ms, mut stage_ms) = (Vec::new(), 0.0, 0.0);
            for img in images {
                let (r, s) = matte_given_trimap(refiner, img, &settings, pred)?;
                errs.push(errors(pred, img));
                refine_ms += r;
                stage_ms += s;
                bar.inc(1);
            }
            let n = images.len().max(1) as f64;
            points.push(Point {
                set: set.clone(),
                radius,
                epsilon,
                iterations,
                errors: MatteErrors::mean(&errs),
                refine_ms: refine_ms / n,
                stage_ms: stage_ms / n,
            });
        }
    }
    bar.finish_and_clear();
    Ok(points)
}

/// Closed-form matting on every image of every set (none where the Python side is missing).
fn closed_form_sets(
    sets: &[(String, Vec<EvalImage>)],
    notes: &mut Vec<String>,
) -> Result<Vec<ClosedForm>> {
    eprintln!("closed-form matting (pymatting) on every curve image…");
    let mut cf: Vec<ClosedForm> = Vec::new();
    for (set, images) in sets {
        let refs: Vec<&EvalImage> = images.iter().collect();
        if let Some(results) = closed_form_alphas(&refs, notes)? {
            let errs: Vec<MatteErrors> = results
                .iter()
                .zip(images)
                .map(|((a, _), img)| errors(a, img))
                .collect();
            let ms = results.iter().map(|(_, ms)| ms).sum::<f64>() / results.len().max(1) as f64;
            cf.push((
                set.clone(),
                MatteErrors::mean(&errs),
                ms,
                results.into_iter().map(|(a, _)| a).collect(),
            ));
        }
    }
    Ok(cf)
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let model = args
        .model
        .first()
        .cloned()
        .unwrap_or_else(slimmatte::paths::default_matting_model);
    let mut refiner = MatteRefiner::load(&model, args.threads)?;
    let mut notes = Vec::new();
    let sets = curve_sets(args, &mut notes)?;
    let base = MatteSettings {
        working_size: args.working_size,
        ..MatteSettings::default()
    };
    let mut pred = Vec::new();
    let points = measure(args, &mut refiner, &sets, &base, &mut pred)?;

    // Closed-form on the same images.
    let cf = closed_form_sets(&sets, &mut notes)?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    std::fs::write(args.out.join("refine_curve.csv"), csv(&points, &cf))?;
    let md = markdown(&points, &cf, args, &model, &notes);
    std::fs::write(args.out.join("refine_curve.md"), &md)?;
    println!("{md}");
    if fonts_ready() {
        let p = args.out.join("refine_curve.png");
        plot(&points, &cf, &sets, &p)?;
        println!("wrote {}", p.display());
    } else {
        eprintln!("note: no DejaVuSans.ttf (apt-get install fonts-dejavu-core): no plot");
    }
    write_crops(args, &mut refiner, &sets, &cf, &base, &mut pred)
}

/// refine_curve.csv: one line per point, then one per closed-form set.
fn csv(points: &[Point], cf: &[ClosedForm]) -> String {
    let mut csv =
        String::from("set,method,radius,epsilon,iterations,sad,mse,grad,conn,refine_ms,stage_ms\n");
    for p in points {
        let _ = writeln!(
            csv,
            "{},{},{},{:e},{},{:.4},{:.6},{:.4},{:.4},{:.3},{:.3}",
            p.set,
            if p.iterations == 0 {
                "net"
            } else {
                "net+refine"
            },
            p.radius,
            p.epsilon,
            p.iterations,
            p.errors.sad,
            p.errors.mse,
            p.errors.grad,
            p.errors.conn,
            p.refine_ms,
            p.stage_ms
        );
    }
    for (set, e, ms, _) in cf {
        let _ = writeln!(
            csv,
            "{set},closed-form,1,1e-7,,{:.4},{:.6},{:.4},{:.4},{ms:.3},{ms:.3}",
            e.sad, e.mse, e.grad, e.conn
        );
    }
    csv
}

/// Crops: the most detailed window of the first image of each 640×360 / alphamat set, as
/// refine_crops_<set>.png.
fn write_crops(
    args: &EvalArgs,
    refiner: &mut MatteRefiner,
    sets: &[(String, Vec<EvalImage>)],
    cf: &[ClosedForm],
    base: &MatteSettings,
    pred: &mut Vec<f32>,
) -> Result<()> {
    let default = args.refine.settings();
    let quality = RefineSettings::quality();
    for (si, (set, images)) in sets.iter().enumerate() {
        if set.contains("1280") || images.is_empty() {
            continue;
        }
        let img = &images[0];
        let mut tiles = Vec::new();
        for refine in [RefineSettings::none(), default, quality] {
            let settings = MatteSettings {
                refine: RefineSettings {
                    method: if refine.enabled() {
                        RefineMethod::Laplacian
                    } else {
                        RefineMethod::None
                    },
                    ..refine
                },
                ..*base
            };
            matte_given_trimap(refiner, img, &settings, pred)?;
            tiles.push(pred.clone());
        }
        if let Some((_, _, _, alphas)) = cf.iter().find(|(s, ..)| s == set) {
            tiles.push(alphas[0].clone());
        }
        tiles.push(img.sample.alpha.clone());
        let key = if set == "alphamat" {
            "alphamat"
        } else {
            "synthetic"
        };
        let p = args.out.join(format!("refine_crops_{key}.png"));
        crate::eval::crops::tiles_png(img, &tiles, &p)?;
        println!("wrote {} ({})", p.display(), sets[si].0);
    }
    Ok(())
}

fn markdown(
    points: &[Point],
    cf: &[ClosedForm],
    args: &EvalArgs,
    model: &Path,
    notes: &[String],
) -> String {
    let r = args.refine.settings();
    let mut md = format!(
        "Refinement curve: `{}` given the true trimap, working size {}, {} threads, {} pyramid \
         level(s), λ = {}. SAD (÷1000) over the trimap's unknown region; refine ms = the \
         refinement alone, stage ms = the whole matting stage (net + upsampling + refinement). \
         The synthetic stills are a tuning set (indices {TUNING_OFFSET}…), not eval's test \
         stills.\n\n",
        model
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model"),
        args.working_size,
        args.threads,
        r.levels,
        r.lambda
    );
    let sets: Vec<&str> = {
        let mut s: Vec<&str> = points.iter().map(|p| p.set.as_str()).collect();
        s.dedup();
        s
    };
    for set in sets {
        let _ = writeln!(md, "### {set}\n");
        md.push_str(
            "| method | radius | ε | iterations | SAD | MSE | Grad | refine ms | stage ms |\n",
        );
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for p in points.iter().filter(|p| p.set == set) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.3} | {:.5} | {:.3} | {:.2} | {:.2} |",
                if p.iterations == 0 {
                    "net alone"
                } else {
                    "net + refine"
                },
                if p.iterations == 0 {
                    "–".into()
                } else {
                    p.radius.to_string()
                },
                if p.iterations == 0 {
                    "–".into()
                } else {
                    format!("{:e}", p.epsilon)
                },
                p.iterations,
                p.errors.sad,
                p.errors.mse,
                p.errors.grad,
                p.refine_ms,
                p.stage_ms
            );
        }
        if let Some((_, e, ms, _)) = cf.iter().find(|(s, ..)| s == set) {
            let _ = writeln!(
                md,
                "| closed-form (pymatting) | 1 | 1e-7 | direct | {:.3} | {:.5} | {:.3} | {ms:.0} | {ms:.0} |",
                e.sad, e.mse, e.grad
            );
        }
        md.push('\n');
    }
    for n in notes {
        let _ = writeln!(md, "Note: {n}\n");
    }
    md
}

fn plot(
    points: &[Point],
    cf: &[ClosedForm],
    sets: &[(String, Vec<EvalImage>)],
    path: &PathBuf,
) -> Result<()> {
    let n = sets.len().max(1);
    let root = BitMapBackend::new(path, (560 * n as u32, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for ((set, _), area) in sets.iter().zip(root.split_evenly((1, n))) {
        let pts: Vec<&Point> = points.iter().filter(|p| &p.set == set).collect();
        let net = pts.iter().find(|p| p.iterations == 0).map(|p| p.errors.sad);
        let cf_sad = cf.iter().find(|(s, ..)| s == set).map(|(_, e, ..)| e.sad);
        let refined: Vec<&&Point> = pts.iter().filter(|p| p.iterations > 0).collect();
        let xmax = refined.iter().map(|p| p.refine_ms).fold(1.0f64, f64::max) * 1.5;
        let xmin = refined
            .iter()
            .map(|p| p.refine_ms)
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min)
            .min(xmax / 10.0)
            * 0.7;
        let ymax = pts
            .iter()
            .map(|p| p.errors.sad)
            .chain(cf_sad)
            .fold(0.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("{set}: SAD vs refinement time"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d((xmin.max(1e-3)..xmax).log_scale(), 0.0..ymax.max(1e-3))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("refinement ms per frame (log)")
            .y_desc("SAD (unknown region)")
            .draw()
            .map_err(err)?;
        for (ri, &(r, e)) in WINDOWS.iter().enumerate() {
            let line: Vec<(f64, f64)> = refined
                .iter()
                .filter(|p| p.radius == r && p.epsilon == e)
                .map(|p| (p.refine_ms.max(xmin), p.errors.sad))
                .collect();
            let color = COLORS[ri % COLORS.len()];
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(format!(
                    "net + refine, radius {r}, ε {e:e} (1…256 iterations)"
                ))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
            chart
                .draw_series(
                    line.iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                )
                .map_err(err)?;
        }
        if let Some(v) = net {
            let c = COLORS[3];
            chart
                .draw_series(LineSeries::new([(xmin, v), (xmax, v)], c.stroke_width(2)))
                .map_err(err)?
                .label(format!("net alone ({v:.2})"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c));
        }
        if let Some((_, e, ms, _)) = cf.iter().find(|(s, ..)| s == set) {
            let c = COLORS[10];
            chart
                .draw_series(LineSeries::new(
                    [(xmin, e.sad), (xmax, e.sad)],
                    c.stroke_width(1),
                ))
                .map_err(err)?
                .label(format!(
                    "closed-form, pymatting ({:.2}, {:.0} ms)",
                    e.sad, ms
                ))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
