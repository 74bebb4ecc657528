//! `slimmatte soak`: pushes many frames through the full chain and checks that every frame
//! comes out and that memory stays flat.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use gst::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use crate::clip::DemoClip;
use crate::interrupt::Interrupt;

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Frames to push (the built-in clip, cycled).
    #[arg(long, default_value_t = 100_000)]
    pub frames: u64,
    /// Frame width.
    #[arg(long, default_value_t = 320)]
    pub width: u32,
    /// Frame height.
    #[arg(long, default_value_t = 180)]
    pub height: u32,
    /// Matting model (default: the shipped student; the coarse mask only if it is missing).
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// Allowed growth of the resident memory between the first 5 % and the end, in MiB.
    #[arg(long, default_value_t = 16.0)]
    pub max_growth_mib: f64,
}

/// Resident set size and its peak, in KiB, from /proc/self/status.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The soak pipeline (the matting chain, or the coarse-mask chain when `model` is missing), its
/// source, and the count of frames that reached the sink.
fn build_pipeline(
    model: &Path,
    (w, h): (usize, usize),
) -> Result<(gst::Pipeline, gst_app::AppSrc, Arc<AtomicU64>)> {
    let stages = if model.is_file() {
        format!("trimapgen ! slimmatte model=\"{}\"", model.display())
    } else {
        eprintln!(
            "note: {} not found, soaking the coarse-mask chain",
            model.display()
        );
        "trimapgen output=mask".to_string()
    };
    let description = format!(
        "appsrc name=src format=time block=true max-buffers=8 \
           caps=video/x-raw,format=RGBA,width={w},height={h},framerate=30/1 \
         ! {stages} ! bgreplace background=blur ! appsink name=sink sync=false max-buffers=8"
    );
    let pipeline = gst::parse::launch(&description)
        .with_context(|| format!("cannot build {description}"))?
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let appsrc = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .expect("appsrc");
    let appsink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("appsink");
    let out = Arc::new(AtomicU64::new(0));
    let counter = out.clone();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok((pipeline, appsrc, out))
}

/// 60 distinct frames of the clip, cycled: rendering must not be the bottleneck.
fn clip_frames(w: usize, h: usize) -> Result<Vec<gst::Buffer>> {
    let mut clip = DemoClip::new(w, h, 60)?;
    let mut frames = Vec::new();
    for i in 0..60 {
        let mut data = vec![0u8; w * h * 4];
        clip.render(i, &mut data)?;
        frames.push(gst::Buffer::from_slice(data));
    }
    Ok(frames)
}

/// Pushes `count` frames (cycling `frames`); the frames pushed and the memory after the first
/// 5 % of them.
fn push_frames(
    appsrc: &gst_app::AppSrc,
    frames: &[gst::Buffer],
    count: u64,
    bar: &ProgressBar,
    interrupt: &Interrupt,
) -> (u64, Option<(u64, u64)>) {
    let frame_ns = 1_000_000_000 / 30;
    let mut start_mem = None;
    let mut pushed = 0u64;
    for i in 0..count {
        if interrupt.requested() {
            break;
        }
        let mut buf = frames[(i % 60) as usize].copy();
        {
            let b = buf.get_mut().expect("fresh copy");
            b.set_pts(gst::ClockTime::from_nseconds(i * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        }
        if appsrc.push_buffer(buf).is_err() {
            break;
        }
        pushed += 1;
        if start_mem.is_none() && i >= count / 20 {
            start_mem = Some(memory_kib());
        }
        if i % 256 == 0 {
            bar.set_position(i);
            let (rss, _) = memory_kib();
            bar.set_message(format!("RSS {:.1} MiB", rss as f64 / 1024.0));
        }
    }
    (pushed, start_mem)
}

pub fn run(args: &SoakArgs) -> Result<()> {
    super::plugin::init()?;
    let interrupt = Interrupt::install()?;
    let (w, h) = (args.width as usize, args.height as usize);
    let model = args
        .model
        .clone()
        .unwrap_or_else(slimmatte::paths::default_matting_model);
    let (pipeline, appsrc, out) = build_pipeline(&model, (w, h))?;
    let frames = clip_frames(w, h)?;
    let bus = pipeline.bus().expect("bus");
    pipeline
        .set_state(gst::State::Playing)
        .context("cannot start the soak pipeline")?;
    let bar = ProgressBar::new(args.frames).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} frames {per_sec} ETA {eta} {msg}")
            .expect("template"),
    );
    let started = Instant::now();
    let (pushed, start_mem) = push_frames(&appsrc, &frames, args.frames, &bar, &interrupt);
    let interrupted = interrupt.requested();
    if interrupted {
        eprintln!("interrupted: draining the {pushed} frames pushed so far…");
    }
    let _ = appsrc.end_of_stream();
    let eos = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    bar.finish_and_clear();
    let end_mem = memory_kib();
    let _ = pipeline.set_state(gst::State::Null);
    match eos.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => bail!("pipeline error: {}", e.error()),
        _ => bail!("no end of stream within 60 s after the last frame"),
    }
    let received = out.load(Ordering::Relaxed);
    let (start_rss, _) = start_mem.unwrap_or(end_mem);
    let secs = started.elapsed().as_secs_f64();
    let growth_mib = (end_mem.0 as f64 - start_rss as f64) / 1024.0;
    println!(
        "soak: {pushed} frames in, {received} frames out, {w}×{h}, {secs:.1} s ({:.0} fps); \
         RSS {:.1} MiB after {} frames → {:.1} MiB at the end (growth {growth_mib:+.1} MiB, \
         peak {:.1} MiB)",
        received as f64 / secs,
        start_rss as f64 / 1024.0,
        (args.frames / 20).min(pushed),
        end_mem.0 as f64 / 1024.0,
        end_mem.1 as f64 / 1024.0,
    );
    if received != pushed || (!interrupted && pushed != args.frames) {
        bail!(
            "frames lost: {} requested, {pushed} pushed, {received} received",
            args.frames
        );
    }
    if growth_mib > args.max_growth_mib {
        bail!(
            "memory grew by {growth_mib:.1} MiB (limit {} MiB)",
            args.max_growth_mib
        );
    }
    Ok(())
}
