//! `bench --streams N`: how many live streams one machine carries. For each resolution and each
//! n = 1..=N, n pipelines run side by side, each
//! `appsrc (live, 30 fps, leaky) ! jpegdec ! videoconvert ! mattebin ! fakesink sync=true`,
//! fed the built-in clip in real time by its own thread for `--stream-seconds`. A frame counts
//! as delivered when the sink renders it; it is dropped when the source queue is full (the
//! pipeline fell behind) or when it reaches the sink more than one frame period late (QoS).
//! Writes `<out>/streams.{md,json}` with delivered fps and drops per stream, and the largest n
//! with no drop per resolution.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use gst::prelude::*;
use serde::Serialize;

use super::{BenchArgs, Frames, parse_resolution};

/// Frame rate of each live stream.
const FPS: u64 = 30;
const FRAME_NS: u64 = 1_000_000_000 / FPS;

/// One stream of one run.
#[derive(Debug, Clone, Serialize)]
pub struct StreamResult {
    pub pushed: u64,
    pub rendered: u64,
    pub dropped: u64,
    /// Of `dropped`, those the sink dropped for arriving later than one frame period (the
    /// rest were dropped by the live source, its queue full).
    pub late_at_sink: u64,
    pub delivered_fps: f64,
    /// Frames the matting element made without the band net because the sink reported
    /// lateness (`qos-fallback`).
    pub late_frames: u64,
}

/// n streams side by side at one resolution.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsRun {
    pub width: usize,
    pub height: usize,
    pub streams: usize,
    pub seconds: f64,
    pub per_stream: Vec<StreamResult>,
}

impl StreamsRun {
    fn dropped(&self) -> u64 {
        self.per_stream.iter().map(|s| s.dropped).sum()
    }
    fn late_at_sink(&self) -> u64 {
        self.per_stream.iter().map(|s| s.late_at_sink).sum()
    }
    fn late_frames(&self) -> u64 {
        self.per_stream.iter().map(|s| s.late_frames).sum()
    }
    fn total_fps(&self) -> f64 {
        self.per_stream.iter().map(|s| s.delivered_fps).sum()
    }
}

#[derive(Serialize)]
struct StreamsReport {
    machine: String,
    threads: usize,
    threads_label: String,
    background: String,
    fps: u64,
    seconds: f64,
    qos_fallback: bool,
    runs: Vec<StreamsRun>,
}

/// The launch line of stream `i`.
fn description(args: &BenchArgs, frames: &Frames, image: &Path, i: usize) -> String {
    let (w, h) = (frames.width, frames.height);
    format!(
        "appsrc name=src{i} is-live=true format=time do-timestamp=true block=false \
         max-buffers=2 leaky-type=downstream \
         caps=image/jpeg,width={w},height={h},framerate={FPS}/1 \
         ! jpegdec ! videoconvert ! mattebin name=matte{i} threads={} working-size={} \
         qos-fallback={} {} {} \
         ! fakesink name=sink{i} sync=true qos=true max-lateness={FRAME_NS}",
        args.threads,
        args.working_size,
        args.qos_fallback,
        super::background_props(args, image),
        args.refine.element_props()
    )
}

/// Runs `n` live streams for `seconds` and reads each sink's counters.
fn run_streams(
    args: &BenchArgs,
    frames: &Frames,
    image: &Path,
    n: usize,
    seconds: f64,
) -> Result<StreamsRun> {
    let pipeline = gst::Pipeline::new();
    let mut sources = Vec::new();
    let mut sinks = Vec::new();
    let mut bins = Vec::new();
    for i in 0..n {
        let desc = description(args, frames, image, i);
        let bin = gst::parse::bin_from_description(&desc, false)
            .with_context(|| format!("cannot build stream {i}: {desc}"))?;
        pipeline.add(&bin)?;
        let src = bin
            .by_name(&format!("src{i}"))
            .context("appsrc")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| anyhow::anyhow!("not an appsrc"))?;
        sources.push(src);
        sinks.push(bin.by_name(&format!("sink{i}")).context("fakesink")?);
        bins.push(bin.by_name(&format!("matte{i}")).context("mattebin")?);
    }
    // The elements start (models loaded and warmed up) inside this call; the sinks of a live
    // pipeline then complete their change to PLAYING only once the first frames reach them,
    // so the feeders start now rather than after waiting for the state change.
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| super::pipeline::bus_error(&pipeline, "cannot start the streams"))?;

    let count = (seconds * FPS as f64).round() as u64;
    let started = Instant::now();
    let pushed: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|src| {
                scope.spawn(move || {
                    let mut pushed = 0;
                    for k in 0..count {
                        let due = started + Duration::from_nanos(k * FRAME_NS);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let jpeg = &frames.jpegs[k as usize % frames.jpegs.len()];
                        let mut b = gst::Buffer::from_slice(jpeg.clone());
                        b.get_mut()
                            .expect("new buffer")
                            .set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
                        if src.push_buffer(b).is_err() {
                            break;
                        }
                        pushed += 1;
                    }
                    let _ = src.end_of_stream();
                    pushed
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    // Every stream's EOS (the pipeline posts EOS once all sinks have it).
    let bus = pipeline.bus().context("bus")?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(m) = &msg
        && let gst::MessageView::Error(e) = m.view()
    {
        let _ = pipeline.set_state(gst::State::Null);
        anyhow::bail!("stream error: {} ({:?})", e.error(), e.debug());
    }
    let mut per_stream = Vec::new();
    for ((sink, bin), &pushed) in sinks.iter().zip(&bins).zip(&pushed) {
        let stats = sink.property::<gst::Structure>("stats");
        let rendered = stats.get::<u64>("rendered").unwrap_or(0);
        let late_at_sink = stats.get::<u64>("dropped").unwrap_or(0);
        per_stream.push(StreamResult {
            pushed,
            rendered,
            dropped: pushed.saturating_sub(rendered),
            late_at_sink,
            delivered_fps: rendered as f64 / elapsed.max(1e-9),
            late_frames: bin.property::<u64>("late-frames"),
        });
    }
    let _ = pipeline.set_state(gst::State::Null);
    Ok(StreamsRun {
        width: frames.width,
        height: frames.height,
        streams: n,
        seconds: elapsed,
        per_stream,
    })
}

/// `bench --streams N`.
pub fn run(args: &BenchArgs) -> Result<()> {
    ensure!(
        args.stream_seconds > 0.0,
        "--stream-seconds must be positive"
    );
    crate::plugin::init()?;
    let image = slimmatte::paths::asset("hubble_deep_field.jpg");
    let mut runs = Vec::new();
    for r in &args.resolutions {
        let (w, h) = parse_resolution(r)?;
        let frames = Frames::new(w, h, 60)?;
        for n in 1..=args.streams {
            eprintln!(
                "streams: {n} × {w}×{h} @ {FPS} fps for {:.0} s…",
                args.stream_seconds
            );
            let run = run_streams(args, &frames, &image, n, args.stream_seconds)?;
            let drops = run.dropped();
            eprintln!(
                "  delivered {:.1} fps in total, {drops} frame(s) dropped ({} late at the sink), \
                 {} made without the band net (late)",
                run.total_fps(),
                run.late_at_sink(),
                run.late_frames()
            );
            runs.push(run);
            // Past the first n that drops, larger n only drops more.
            if drops > 0 && n > 1 {
                break;
            }
        }
    }
    let report = StreamsReport {
        machine: super::report::machine(),
        threads: args.threads,
        threads_label: slimmatte::runtime::threads_label(args.threads),
        background: super::background_name(args),
        fps: FPS,
        seconds: args.stream_seconds,
        qos_fallback: args.qos_fallback,
        runs,
    };
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("streams.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let md = markdown(&report);
    std::fs::write(args.out.join("streams.md"), &md)?;
    println!("{md}");
    println!("wrote {}", args.out.join("streams.{md,json}").display());
    Ok(())
}

fn markdown(r: &StreamsReport) -> String {
    let mut md = format!(
        "Concurrent live streams (`bench --streams`): n pipelines side by side, each `appsrc` \
         (live, {} fps, the built-in clip) `! jpegdec ! videoconvert ! mattebin ! fakesink \
         sync=true`, {}, {}, {:.0} s per run, on {}. Dropped = frames pushed but not rendered: \
         by the live source, its queue full, or by the sink, later than one frame period \
         (*at sink*). *Without band net*: frames `slimmatte` made without the band net because \
         the sink reported lateness (`qos-fallback={}`).\n\n\
         | resolution | streams | delivered fps per stream (min) | total fps | dropped | at sink \
         | without band net |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        r.fps, r.background, r.threads_label, r.seconds, r.machine, r.qos_fallback
    );
    for run in &r.runs {
        let min = run
            .per_stream
            .iter()
            .map(|s| s.delivered_fps)
            .fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            md,
            "| {}×{} | {} | {:.1} | {:.1} | {} | {} | {} |",
            run.width,
            run.height,
            run.streams,
            min,
            run.total_fps(),
            run.dropped(),
            run.late_at_sink(),
            run.late_frames()
        );
    }
    md.push('\n');
    let mut sizes: Vec<(usize, usize)> = r.runs.iter().map(|x| (x.width, x.height)).collect();
    sizes.dedup();
    for (w, h) in sizes {
        let best = r
            .runs
            .iter()
            .filter(|x| (x.width, x.height) == (w, h) && x.dropped() == 0)
            .map(|x| x.streams)
            .max();
        let _ = match best {
            Some(n) => writeln!(
                md,
                "- {w}×{h}: up to **{n}** stream(s) with no dropped frame."
            ),
            None => writeln!(md, "- {w}×{h}: even one stream dropped frames."),
        };
    }
    md
}
