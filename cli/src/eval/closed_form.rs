//! The closed-form matting peer: pymatting's `estimate_alpha_cf`, run in Python through
//! `tools/closed_form.py` on PNGs written to a temporary folder.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};

use super::EvalImage;
use super::images::save_png_rgb;
use super::methods::row;
use super::models::python;
use super::report::{Region, Row};

/// At most `limit` images spread over the sets, round robin (real photos are not crowded out
/// by the many synthetic ones).
pub(super) fn choose(images: &[EvalImage], limit: usize) -> Vec<&EvalImage> {
    let mut by_set: BTreeMap<&str, Vec<&EvalImage>> = BTreeMap::new();
    for img in images {
        by_set.entry(img.set.as_str()).or_default().push(img);
    }
    let mut chosen: Vec<&EvalImage> = Vec::new();
    let mut k = 0;
    while chosen.len() < limit.min(images.len()) {
        for list in by_set.values() {
            if let Some(img) = list.get(k)
                && chosen.len() < limit
            {
                chosen.push(img);
            }
        }
        k += 1;
    }
    chosen
}

/// Closed-form matting of `images` through `tools/closed_form.py`; one row per image.
pub(super) fn closed_form(images: &[&EvalImage], notes: &mut Vec<String>) -> Result<Vec<Row>> {
    let Some(results) = closed_form_alphas(images, notes)? else {
        return Ok(Vec::new());
    };
    Ok(images
        .iter()
        .zip(results)
        .map(|(img, (pred, ms))| row(img, "closed-form", Region::Band, &pred, ms))
        .collect())
}

/// Closed-form alpha and its time in milliseconds, per image.
pub type ClosedFormAlphas = Vec<(Vec<f32>, f64)>;

/// pymatting's `estimate_alpha_cf` on each image and its evaluation trimap: (alpha, ms) per
/// image, or `None` (with a note) when the Python side is unavailable.
pub fn closed_form_alphas(
    images: &[&EvalImage],
    notes: &mut Vec<String>,
) -> Result<Option<ClosedFormAlphas>> {
    if images.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let dir = tempfile_dir()?;
    let list = write_jobs(images, &dir)?;
    let script = slimmatte::paths::project_root().join("tools/closed_form.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg(&list)
        .output()
        .context("running tools/closed_form.py")?;
    if !out.status.success() {
        notes.push(format!(
            "closed-form skipped: tools/closed_form.py failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(None);
    }
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    let mut results = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let bytes = std::fs::read(dir.join(format!("{i}.f32")))?;
        let pred: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        ensure!(
            pred.len() == img.sample.alpha.len(),
            "closed-form alpha size"
        );
        let ms = times.get(i).copied().unwrap_or(f64::NAN) * 1000.0;
        results.push((pred, ms));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Some(results))
}

/// Writes each image and trimap as PNGs into `dir` and the job list the script reads (one
/// line `image trimap output.f32` per image); returns the list's path.
fn write_jobs(images: &[&EvalImage], dir: &std::path::Path) -> Result<PathBuf> {
    let mut jobs = String::new();
    for (i, img) in images.iter().enumerate() {
        let (w, h) = (img.sample.width, img.sample.height);
        let ip = dir.join(format!("{i}_image.png"));
        let tp = dir.join(format!("{i}_trimap.png"));
        save_png_rgb(&ip, &img.sample.rgba, w, h)?;
        image::save_buffer(&tp, &img.trimap, w as u32, h as u32, image::ColorType::L8)?;
        let _ = writeln!(
            jobs,
            "{} {} {}",
            ip.display(),
            tp.display(),
            dir.join(format!("{i}.f32")).display()
        );
    }
    let list = dir.join("jobs.txt");
    std::fs::write(&list, jobs)?;
    Ok(list)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("slimmatte-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
