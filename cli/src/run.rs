//! `slimmatte run` / `slimmatte demo`: a GStreamer pipeline built from the project's elements,
//! input → trimapgen → slimmatte → bgreplace → output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gst::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use crate::clip::DemoClip;
use crate::interrupt::Interrupt;

use super::output::{encoder_tail, is_picture};
use super::refine_args::RefineArgs;
use slimmatte::composite::{DEFAULT_BLUR_SIGMA, DEFAULT_COLOR, DEFAULT_ESTIMATE_FOREGROUND};
use slimmatte::matte::DEFAULT_WORKING_SIZE;
use slimmatte::runtime::DEFAULT_THREADS;

/// Background modes, as the `bgreplace` element names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackgroundArg {
    /// The frame itself, blurred (--blur-sigma).
    Blur,
    /// A solid colour (--color).
    Color,
    /// A picture (--image).
    Image,
    /// Keep alpha (use a PNG sequence output to keep it in the file).
    Transparent,
}

/// Which stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// The matting stage when its model is installed, otherwise the coarse mask.
    Auto,
    /// trimapgen → slimmatte → bgreplace: soft, detailed edges (closed-form refinement of the
    /// unknown band, then the pruned student, the band net, at full resolution on its soft
    /// tiles; --band-net false leaves the refinement's matte).
    Matte,
    /// trimapgen output=mask → bgreplace: the coarse segmentation mask only (fastest).
    Mask,
}

/// A colour given as RRGGBB hex (an optional leading `#`), held as 0xRRGGBB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HexColor(pub u32);

impl std::fmt::Display for HexColor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:06x}", self.0)
    }
}

impl std::str::FromStr for HexColor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s.trim_start_matches('#');
        u32::from_str_radix(hex, 16)
            .ok()
            .filter(|_| hex.len() == 6)
            .map(HexColor)
            .ok_or_else(|| format!("--color must be RRGGBB hex, got {s}"))
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Input: `builtin` (the embedded clip of a person), a video file, a picture (.png, .jpg:
    /// one frame at its own size), or a camera such as /dev/video0.
    #[arg(short, long, default_value = "builtin")]
    pub input: String,
    /// Output: a file (.mp4 H.264, .webm VP8, or a PNG pattern such as out/%05d.png that keeps
    /// alpha; for a picture input, one .png or .jpg such as cut.png), `display` for a window, or a v4l2 loopback device such as /dev/video10 (virtual
    /// camera for video calls).
    #[arg(short, long, default_value = "out/demo.mp4")]
    pub output: String,
    /// What replaces the background.
    #[arg(long, value_enum, default_value_t = BackgroundArg::Image)]
    pub background: BackgroundArg,
    /// Background picture for --background image (default: the shipped Hubble deep field).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Background colour for --background color, as RRGGBB hex.
    #[arg(long, default_value_t = HexColor(DEFAULT_COLOR))]
    pub color: HexColor,
    /// Blur standard deviation in pixels for --background blur.
    #[arg(long, default_value_t = DEFAULT_BLUR_SIGMA.into())]
    pub blur_sigma: f64,
    /// At soft matte edges (hair, motion blur), composite the estimated foreground colour
    /// (blur fusion) instead of the frame's own, which still holds the old background
    /// (`bgreplace estimate-foreground`).
    #[arg(long, default_value_t = DEFAULT_ESTIMATE_FOREGROUND, action = clap::ArgAction::Set)]
    pub estimate_foreground: bool,
    /// Which stages run.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    /// Also segment the person with MediaPipe Pose (`trimapgen pose`: a detector finds the
    /// person, the landmark network segments them in a region that follows the body, mixed into
    /// the selfie mask inside that region): fewer missed heads and limbs; false = the selfie
    /// network alone, the fastest.
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_POSE, action = clap::ArgAction::Set)]
    pub pose: bool,
    /// Run the pose networks every this many frames, holding their mask in between
    /// (`trimapgen pose-interval`).
    #[arg(long, default_value_t = slimmatte::trimap::DEFAULT_POSE_INTERVAL)]
    pub pose_interval: usize,
    /// Longest side in pixels of the region the matting network sees (0 = full resolution).
    #[arg(long, default_value_t = DEFAULT_WORKING_SIZE)]
    pub working_size: u32,
    /// Intra-op threads of each network's own ONNX Runtime pool; 0 = the matting network on one
    /// process-wide pool sized to the machine (`SLIMMATTE_POOL_THREADS` overrides its size), the
    /// small segmentation network on its calling thread.
    #[arg(long, default_value_t = DEFAULT_THREADS as u32)]
    pub threads: u32,
    /// Frame width (the built-in clip is rendered at it; videos and cameras are scaled to it,
    /// pictures keep their own size).
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Frame height.
    #[arg(long, default_value_t = 360)]
    pub height: u32,
    /// Number of frames of the built-in clip (30 per second); for a camera, stop after this
    /// many frames (0 = until interrupted). Files always play to the end.
    #[arg(long, default_value_t = 150)]
    pub frames: u64,
    #[command(flatten)]
    pub refine: RefineArgs,
}

impl RunArgs {
    fn matting(&self) -> Result<bool> {
        let model = slimmatte::paths::default_matting_model();
        Ok(match self.mode {
            ModeArg::Mask => false,
            ModeArg::Matte => {
                if !model.is_file() {
                    bail!(
                        "--mode matte needs the matting model {}; it is made by training/ \
                         (see training/README.md)",
                        model.display()
                    );
                }
                true
            }
            ModeArg::Auto => {
                if !model.is_file() {
                    eprintln!(
                        "note: {} not found, using the coarse mask only (--mode mask)",
                        model.display()
                    );
                }
                model.is_file()
            }
        })
    }

    fn background_props(&self) -> Result<String> {
        let mode = match self.background {
            BackgroundArg::Blur => format!("background=blur blur-sigma={}", self.blur_sigma),
            BackgroundArg::Transparent => "background=transparent".to_string(),
            BackgroundArg::Color => format!("background=color color={}", self.color.0),
            BackgroundArg::Image => {
                let image = self
                    .image
                    .clone()
                    .unwrap_or_else(|| slimmatte::paths::asset("hubble_deep_field.jpg"));
                if !image.is_file() {
                    bail!("background image {} does not exist", image.display());
                }
                format!("background=image image-location={}", quote(&image)?)
            }
        };
        Ok(format!(
            "{mode} estimate-foreground={}",
            self.estimate_foreground
        ))
    }
}

/// Quotes a path for a gst-launch description.
fn quote(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .with_context(|| format!("path {} is not UTF-8", path.display()))?;
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

fn is_device(s: &str) -> bool {
    s.starts_with("/dev/video")
}

/// The pipeline's source part, ending in RGBA at the requested size.
fn source(args: &RunArgs) -> Result<String> {
    let (w, h) = (args.width, args.height);
    let rgba = format!("video/x-raw,format=RGBA,width={w},height={h}");
    if args.input == "builtin" {
        return Ok(format!(
            "appsrc name=src format=time block=true max-bytes={} caps={rgba},framerate=30/1",
            w as usize * h as usize * 4 * 4
        ));
    }
    let limit = |s: String| {
        if args.frames > 0 {
            s.replacen(" !", &format!(" num-buffers={} !", args.frames), 1)
        } else {
            s
        }
    };
    if is_device(&args.input) {
        let dev = Path::new(&args.input);
        if !dev.exists() {
            bail!(
                "camera {} does not exist: no such video device (list cameras with \
                 `v4l2-ctl --list-devices`, or use --input builtin or a video file)",
                args.input
            );
        }
        return Ok(limit(format!(
            "v4l2src device={} ! videoconvert ! videoscale ! {rgba}",
            quote(dev)?
        )));
    }
    let file = Path::new(&args.input);
    if !file.is_file() {
        bail!("input file {} does not exist", file.display());
    }
    if is_picture(file) {
        return Ok(format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBA",
            quote(file)?
        ));
    }
    Ok(format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! {rgba}",
        quote(file)?
    ))
}

/// The pipeline's sink part.
fn sink(args: &RunArgs) -> Result<String> {
    if args.output == "display" {
        return Ok("videoconvert ! autovideosink".to_string());
    }
    if is_device(&args.output) {
        let dev = Path::new(&args.output);
        if !dev.exists() {
            bail!(
                "virtual camera {} does not exist: load v4l2loopback first \
                 (sudo modprobe v4l2loopback devices=1 video_nr=10 exclusive_caps=1)",
                args.output
            );
        }
        return Ok(format!(
            "videoconvert ! video/x-raw,format=YUY2 ! v4l2sink device={}",
            quote(dev)?
        ));
    }
    let path = Path::new(&args.output);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    }
    encoder_tail(path, picture_input(args))
}

/// Whether the input is one picture (a one-frame pipeline).
fn picture_input(args: &RunArgs) -> bool {
    args.input != "builtin" && !is_device(&args.input) && is_picture(Path::new(&args.input))
}

/// The full gst-launch description of a run.
pub fn describe(args: &RunArgs) -> Result<String> {
    let stages = if args.matting()? {
        format!(
            "trimapgen threads={t} pose={pose} pose-interval={pi} ! slimmatte name=matte \
             threads={t} working-size={ws} {refine}",
            t = args.threads,
            pose = args.pose,
            pi = args.pose_interval.max(1),
            ws = args.working_size,
            refine = args.refine.element_props()
        )
    } else {
        format!(
            "trimapgen output=mask threads={} pose={} pose-interval={}",
            args.threads,
            args.pose,
            args.pose_interval.max(1)
        )
    };
    Ok(format!(
        "{} ! {stages} ! bgreplace name=bg {} ! {}",
        source(args)?,
        args.background_props()?,
        sink(args)?
    ))
}

pub fn run(args: &RunArgs) -> Result<()> {
    super::plugin::init()?;
    let interrupt = Interrupt::install()?;
    let description = describe(args)?;
    let pipeline = gst::parse::launch(&description)
        .with_context(|| format!("cannot build the pipeline: {description}"))?
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let bus = pipeline.bus().expect("pipeline bus");

    // Count frames leaving the last stage.
    let done = Arc::new(AtomicU64::new(0));
    let bg = pipeline
        .by_name("bg")
        .expect("bgreplace in the description");
    let counter = done.clone();
    bg.static_pad("src")
        .expect("src pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| pipeline_error(&bus, "cannot start the pipeline"))?;
    let bar = ProgressBar::new(if args.input == "builtin" {
        args.frames
    } else {
        0
    })
    .with_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} frames {per_sec} ETA {eta}")
            .expect("template"),
    );
    let started = Instant::now();
    let feeder = if let Some(src) = pipeline.by_name("src") {
        let appsrc = src.downcast::<gst_app::AppSrc>().expect("an appsrc");
        Some(feed_builtin_clip(appsrc, args, interrupt.clone())?)
    } else {
        None
    };
    let result = wait_for_eos(&pipeline, &done, &bar, &interrupt, feeder.is_some());
    bar.finish_and_clear();
    let ended_early = match result {
        Ok(Ending::Finished) if Path::new(&args.input).is_file() => ended_early(&pipeline),
        _ => None,
    };
    // Stopping the pipeline first unblocks a feeder waiting on a full appsrc after an error.
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let ending = result?;
    let frames = done.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    println!("models: {}", models_used(&pipeline).join(", "));
    if ending == Ending::Interrupted {
        println!("interrupted: stopped after {frames} frames; the output was finalised");
    }
    if picture_input(args) {
        println!("wrote {} ({:.2} s)", args.output, secs);
    } else {
        println!(
            "wrote {} ({frames} frames {}×{}, {:.1} s, {:.1} fps end to end incl. \
             decoding/encoding)",
            args.output,
            args.width,
            args.height,
            secs,
            frames as f64 / secs
        );
    }
    if let Some((decoded, declared)) = ended_early {
        bail!(
            "input {} ended early: it declares {:.1} s but only {:.1} s could be decoded \
             (truncated or damaged file); the {frames} frames before the damage were written",
            args.input,
            declared.seconds_f64(),
            decoded.seconds_f64()
        );
    }
    Ok(())
}

/// For a file that ended: (decoded, declared) durations when the stream stopped more than half
/// a second before the duration its container declares — the demuxers end a truncated file
/// as if it were complete.
fn ended_early(pipeline: &gst::Pipeline) -> Option<(gst::ClockTime, gst::ClockTime)> {
    let declared = pipeline.query_duration::<gst::ClockTime>()?;
    let decoded = pipeline.query_position::<gst::ClockTime>()?;
    (decoded + gst::ClockTime::from_mseconds(500) < declared).then_some((decoded, declared))
}

/// The model files the pipeline's networks loaded (their `model` properties).
fn models_used(pipeline: &gst::Pipeline) -> Vec<String> {
    let mut models = Vec::new();
    for factory in ["trimapgen", "slimmatte"] {
        let element = pipeline
            .iterate_recurse()
            .into_iter()
            .flatten()
            .find(|e| e.factory().is_some_and(|f| f.name().as_str() == factory));
        if let Some(path) = element.and_then(|e| e.property::<Option<String>>("model")) {
            models.push(slimmatte::paths::display(std::path::Path::new(&path)));
        }
    }
    models
}

/// Renders the built-in clip on one thread and pushes it into `appsrc` from another, with a
/// bounded channel between them so rendering runs ahead by a few frames, never more.
fn feed_builtin_clip(
    appsrc: gst_app::AppSrc,
    args: &RunArgs,
    interrupt: Interrupt,
) -> Result<std::thread::JoinHandle<()>> {
    let (width, height) = (args.width as usize, args.height as usize);
    let frames = args.frames.max(1);
    let mut clip = DemoClip::new(width, height, frames)?;
    let (tx, rx) = crossbeam_channel::bounded::<gst::Buffer>(4);
    let frame_ns = 1_000_000_000u64 / 30;
    std::thread::spawn(move || {
        for i in 0..frames {
            let Ok(mut buffer) = gst::Buffer::with_size(width * height * 4) else {
                return;
            };
            {
                let b = buffer.get_mut().expect("new buffer is writable");
                b.set_pts(gst::ClockTime::from_nseconds(i * frame_ns));
                b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
                let Ok(mut map) = b.map_writable() else {
                    return;
                };
                if clip.render(i, map.as_mut_slice()).is_err() {
                    return;
                }
            }
            if tx.send(buffer).is_err() {
                return; // the pusher stopped
            }
        }
    });
    Ok(std::thread::spawn(move || {
        for buffer in rx {
            if interrupt.requested() {
                break; // end the stream here: EOS below lets the muxer finalise the file
            }
            if appsrc.push_buffer(buffer).is_err() {
                return; // the pipeline failed or stopped; the bus says why
            }
        }
        let _ = appsrc.end_of_stream();
    }))
}

fn pipeline_error(bus: &gst::Bus, what: &str) -> anyhow::Error {
    match bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => anyhow::anyhow!("{what}: {}", describe_error(e)),
            _ => anyhow::anyhow!("{what}"),
        },
        None => anyhow::anyhow!("{what}"),
    }
}

fn describe_error(e: &gst::message::Error) -> String {
    let src = e
        .src()
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| "pipeline".into());
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    let detail = debug.lines().last().unwrap_or_default().trim().to_string();
    if detail.is_empty() {
        format!("{src}: {}", e.error())
    } else {
        format!("{src}: {} ({detail})", e.error())
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The input ended (or the frame count was reached).
    Finished,
    /// SIGINT/SIGTERM: EOS was sent and the pipeline drained it.
    Interrupted,
}

/// How often a run without a terminal prints a progress line.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a pipeline may take to drain after an interrupt before the run gives up.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Waits for the end of the stream or an error. On an interrupt, sends EOS through the
/// pipeline (sources stop, the muxer writes its index) and waits for it, bounded.
fn wait_for_eos(
    pipeline: &gst::Pipeline,
    done: &AtomicU64,
    bar: &ProgressBar,
    interrupt: &Interrupt,
    fed: bool,
) -> Result<Ending> {
    let bus = pipeline.bus().expect("pipeline bus");
    let mut drain_since: Option<std::time::Instant> = None;
    let mut last_report = std::time::Instant::now();
    loop {
        if drain_since.is_none() && interrupt.requested() {
            eprintln!("interrupted: finishing the output (Ctrl-C again to quit at once)…");
            if !fed {
                // The built-in clip's feeder ends its own stream; other sources get EOS here.
                pipeline.send_event(gst::event::Eos::new());
            }
            drain_since = Some(std::time::Instant::now());
        }
        if drain_since.is_some_and(|t| t.elapsed() > DRAIN_TIMEOUT) {
            bail!(
                "interrupted, but the pipeline did not drain within {} s: the output may be \
                 incomplete",
                DRAIN_TIMEOUT.as_secs()
            );
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            let frames = done.load(Ordering::Relaxed);
            bar.set_position(frames);
            if bar.is_hidden() && last_report.elapsed() >= PROGRESS_EVERY {
                // No terminal (a service, a pipe, a test): a plain progress line instead.
                eprintln!("progress: {frames} frames");
                last_report = std::time::Instant::now();
            }
            continue;
        };
        match msg.view() {
            // The built-in clip's feeder may end the stream before this loop sees the signal.
            gst::MessageView::Eos(_) if drain_since.is_some() || interrupt.requested() => {
                return Ok(Ending::Interrupted);
            }
            gst::MessageView::Eos(_) => return Ok(Ending::Finished),
            gst::MessageView::Error(e) => bail!(
                "pipeline error from {} after {} frames",
                describe_error(e),
                done.load(Ordering::Relaxed)
            ),
            _ => {}
        }
    }
}
