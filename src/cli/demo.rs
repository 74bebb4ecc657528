//! `slimmatte demo`: background replacement of the built-in clip, written to a file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gst::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use slimmatte::clip::DemoClip;

use super::output::encoder_tail;

/// Background modes, as the `bgreplace` element names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackgroundArg {
    /// The frame itself, blurred.
    Blur,
    /// A solid colour (--color).
    Color,
    /// A picture (--image).
    Image,
    /// Keep alpha (use a PNG sequence output to see it).
    Transparent,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output file: .mp4 (H.264), .webm (VP8) or a PNG sequence pattern such as out/%05d.png.
    #[arg(short, long, default_value = "out/demo.mp4")]
    pub output: PathBuf,
    /// Number of frames of the built-in clip (30 frames per second).
    #[arg(long, default_value_t = 150)]
    pub frames: u64,
    /// Frame width in pixels.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Frame height in pixels.
    #[arg(long, default_value_t = 360)]
    pub height: u32,
    /// What replaces the background.
    #[arg(long, value_enum, default_value_t = BackgroundArg::Image)]
    pub background: BackgroundArg,
    /// Background picture for --background image (default: the shipped Hubble deep field).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Background colour for --background color, as RRGGBB hex.
    #[arg(long, default_value = "00b140")]
    pub color: String,
    /// Blur standard deviation in pixels for --background blur.
    #[arg(long, default_value_t = 12.0)]
    pub blur_sigma: f64,
    /// Intra-op threads of the segmentation network.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
}

fn background_props(args: &DemoArgs) -> Result<String> {
    Ok(match args.background {
        BackgroundArg::Blur => format!("background=blur blur-sigma={}", args.blur_sigma),
        BackgroundArg::Transparent => "background=transparent".to_string(),
        BackgroundArg::Color => {
            let hex = args.color.trim_start_matches('#');
            let v = u32::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 6)
                .with_context(|| format!("--color must be RRGGBB hex, got {}", args.color))?;
            format!("background=color color={v}")
        }
        BackgroundArg::Image => {
            let image = args
                .image
                .clone()
                .unwrap_or_else(|| slimmatte::paths::asset("hubble_deep_field.jpg"));
            if !image.is_file() {
                bail!("background image {} does not exist", image.display());
            }
            format!(
                "background=image image-location=\"{}\"",
                image.display().to_string().replace('"', "\\\"")
            )
        }
    })
}

pub fn run(args: &DemoArgs) -> Result<()> {
    super::plugin::init()?;
    let (width, height) = (args.width as usize, args.height as usize);
    let mut clip = DemoClip::new(width, height, args.frames)?;
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    }
    let description = format!(
        "appsrc name=src format=time block=true max-bytes={max_bytes} \
           caps=video/x-raw,format=RGBA,width={width},height={height},framerate=30/1 \
         ! trimapgen output=mask threads={threads} \
         ! bgreplace {background} \
         ! {tail}",
        max_bytes = width * height * 4 * 4,
        threads = args.threads,
        background = background_props(args)?,
        tail = encoder_tail(&args.output)?,
    );
    let pipeline = gst::parse::launch(&description)
        .with_context(|| format!("cannot build the pipeline: {description}"))?
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let appsrc = pipeline
        .by_name("src")
        .expect("appsrc in the description")
        .downcast::<gst_app::AppSrc>()
        .expect("an appsrc");
    let bus = pipeline.bus().expect("pipeline bus");
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| pipeline_error(&bus, "cannot start the pipeline"))?;

    let bar = ProgressBar::new(args.frames).with_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} frames {per_sec} ETA {eta}")
            .expect("template"),
    );
    let started = Instant::now();
    let frame_ns = 1_000_000_000u64 / 30;
    let mut pushed = 0u64;
    for i in 0..args.frames {
        let mut buffer = gst::Buffer::with_size(width * height * 4)?;
        {
            let b = buffer.get_mut().expect("new buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(i * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
            let mut map = b.map_writable()?;
            clip.render(i, map.as_mut_slice())?;
        }
        if appsrc.push_buffer(buffer).is_err() {
            break; // the pipeline failed; the bus says why
        }
        pushed += 1;
        bar.inc(1);
    }
    let _ = appsrc.end_of_stream();
    let result = wait_for_eos(&bus);
    bar.finish_and_clear();
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} ({pushed} frames {width}×{height}, {:.1} s, {:.1} fps end to end incl. encoding)",
        args.output.display(),
        secs,
        pushed as f64 / secs
    );
    Ok(())
}

fn pipeline_error(bus: &gst::Bus, what: &str) -> anyhow::Error {
    match bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error]) {
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

fn wait_for_eos(bus: &gst::Bus) -> Result<()> {
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                let detail = debug.lines().last().unwrap_or_default().to_string();
                bail!(
                    "pipeline error from {:?}: {} {detail}",
                    msg.src().map(|s| s.path_string()),
                    e.error()
                );
            }
            _ => {}
        }
    }
    bail!("the pipeline bus closed before end of stream")
}
