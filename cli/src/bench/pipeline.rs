//! The pipeline measurement: the real GStreamer chain `appsrc ! jpegdec ! videoconvert !
//! trimapgen ! slimmatte ! bgreplace ! videoconvert ! jpegenc ! appsink`, timed per element by
//! pad probes (keyed by PTS) with one frame in flight, then its sustained fps with `queue`s
//! between the stages.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use gst::prelude::*;

use super::report::Measured;
use super::{BenchArgs, COMPOSITE, DECODE, E2E, ENCODE, MATTE, TRIMAP};
use super::{Frames, Samples, Setup, ms};

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

/// The launch line of the benchmark pipeline at the size of `frames`; `matting_model` `None`
/// is the coarse-mask chain, `queued` puts `queue`s between the stages.
fn pipeline_description(
    frames: &Frames,
    matting_model: Option<&Path>,
    args: &BenchArgs,
    image: &Path,
    queued: bool,
) -> String {
    let (w, h) = (frames.width, frames.height);
    let (threads, working_size, pose) = (args.threads, args.working_size, args.pose);
    let interval = args.pose_interval.max(1);
    let q = if queued {
        " ! queue max-size-buffers=2 max-size-bytes=0 max-size-time=0"
    } else {
        ""
    };
    let stages = match matting_model {
        Some(m) => format!(
            "trimapgen name=trimap threads={threads} pose={pose} pose-interval={interval}{q} \
             ! slimmatte name=matte \
             model=\"{}\" \
             threads={threads} working-size={working_size} {}",
            m.display(),
            args.refine.element_props()
        ),
        None => format!("trimapgen name=trimap output=mask threads={threads}"),
    };
    format!(
        "appsrc name=src format=time block=true max-bytes=0 max-buffers=4 \
         caps=image/jpeg,width={w},height={h},framerate=30/1 \
         ! jpegdec name=decode{q} ! videoconvert ! video/x-raw,format=RGBA ! {stages}{q} \
         ! bgreplace name=composite {}{q} \
         ! videoconvert ! jpegenc name=encode quality=85 ! appsink name=sink sync=false",
        super::background_props(args, image)
    )
}

struct Pipe {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    marks: Marks,
}

const FRAME_NS: u64 = 1_000_000_000 / 30;

/// Probes the sink and src pads of `element`: its enter and leave instants as `stage`.
fn probe_element(e: &gst::Element, marks: &Marks, stage: &'static str) -> Result<()> {
    probe(
        &e.static_pad("sink").context("sink pad")?,
        marks,
        stage,
        false,
        FRAME_NS,
    );
    probe(
        &e.static_pad("src").context("src pad")?,
        marks,
        stage,
        true,
        FRAME_NS,
    );
    Ok(())
}

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
        probe_element(&e, &marks, stage)?;
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

pub(super) fn bus_error(pipeline: &gst::Pipeline, what: &str) -> anyhow::Error {
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
pub(super) fn run_pipeline(
    frames: &Frames,
    matting_model: Option<&Path>,
    args: &BenchArgs,
    setup: &Setup,
) -> Result<Measured> {
    let mut timed: Vec<(&'static str, &str)> = vec![(DECODE, "decode"), (TRIMAP, "trimap")];
    if matting_model.is_some() {
        timed.push((MATTE, "matte"));
    }
    timed.push((COMPOSITE, "composite"));
    timed.push((ENCODE, "encode"));

    // 1. Latency: push, wait for the frame at the sink, repeat.
    let desc = pipeline_description(frames, matting_model, args, &setup.image, false);
    let (samples, measured) = latency_pass(&desc, &timed, frames, setup)?;

    // 2. Throughput: queues between the stages, frames pushed as fast as they are taken.
    let desc = pipeline_description(frames, matting_model, args, &setup.image, true);
    let fps = throughput_pass(&desc, frames, setup, measured)?;
    Ok(Measured {
        stages: samples.stats(),
        frames: measured,
        fps,
        detail: String::new(),
    })
}

/// Pushes a frame, waits for it at the sink, repeats; the per-element times of the measured
/// frames and their count.
fn latency_pass(
    desc: &str,
    timed: &[(&'static str, &str)],
    frames: &Frames,
    setup: &Setup,
) -> Result<(Samples, usize)> {
    let budget = &setup.budget;
    let pipe = build_pipe(desc, timed)?;
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
            setup.bar.inc(1);
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
    Ok((samples, measured))
}

/// Pushes the warm-up and `measured` frames as fast as the pipeline takes them; the frames per
/// second after the warm-up.
fn throughput_pass(desc: &str, frames: &Frames, setup: &Setup, measured: usize) -> Result<f64> {
    let budget = &setup.budget;
    let pipe = build_pipe(desc, &[])?;
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
            setup.bar.inc(1);
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
    Ok(fps)
}
