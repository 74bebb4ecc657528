//! The stills the way a user cuts out one picture: each still is its own one-frame GStreamer
//! pipeline, `appsrc ! mattebin background=transparent pose=… ! appsink`, with the shipped
//! models and the elements' defaults (rows `mattebin/one-frame` and, with `--compare-pose`,
//! `mattebin-selfie/one-frame`). Nothing carries over from one still to the next: the elements
//! start, see one frame and stop, as in `slimmatte run --input photo.png --output cut.png`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use gst::prelude::*;

use super::EvalImage;
use super::methods::row;
use super::report::{Region, Row};

/// The row name of the one-frame pipeline with `pose`.
pub fn method_name(pose: bool) -> &'static str {
    if pose {
        "mattebin/one-frame"
    } else {
        "mattebin-selfie/one-frame"
    }
}

/// Runs `img` through its own one-frame `mattebin` pipeline and returns its alpha (0..1).
pub fn matte(img: &EvalImage, pose: bool, out: &mut Vec<f32>) -> Result<()> {
    let (w, h) = (img.sample.width, img.sample.height);
    let description = format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGBA,width={w},height={h},framerate=0/1 \
         ! mattebin background=transparent pose={pose} \
         ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&description)
        .with_context(|| format!("building {description}"))?
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .expect("appsrc");
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("appsink");
    pipeline
        .set_state(gst::State::Playing)
        .context("starting the one-frame pipeline")?;
    let mut buffer = gst::Buffer::from_slice(img.sample.rgba.clone());
    buffer
        .get_mut()
        .expect("a new buffer is writable")
        .set_pts(gst::ClockTime::ZERO);
    let result = src
        .push_buffer(buffer)
        .map_err(|e| anyhow::anyhow!("pushing the still: {e:?}"))
        .and_then(|_| {
            src.end_of_stream()
                .map_err(|e| anyhow::anyhow!("ending the stream: {e:?}"))
        })
        .and_then(|_| {
            sink.try_pull_sample(gst::ClockTime::from_seconds(30))
                .context("the one-frame pipeline gave no frame within 30 s")
        });
    let _ = pipeline.set_state(gst::State::Null);
    let sample = result?;
    let buffer = sample.buffer().context("a sample without a buffer")?;
    let map = buffer.map_readable()?;
    if map.len() != w * h * 4 {
        bail!(
            "the pipeline gave {} bytes for a {w}×{h} RGBA frame",
            map.len()
        );
    }
    out.clear();
    out.extend(map.chunks_exact(4).map(|p| p[3] as f32 / 255.0));
    Ok(())
}

/// One row per still and `pose` setting.
pub fn rows(
    images: &[EvalImage],
    poses: &[bool],
    bar: &indicatif::ProgressBar,
) -> Result<Vec<Row>> {
    crate::plugin::init()?;
    let mut rows = Vec::new();
    let mut pred = Vec::new();
    for img in images {
        for &pose in poses {
            bar.set_message(method_name(pose));
            let t = Instant::now();
            matte(img, pose, &mut pred)?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            rows.push(row(img, method_name(pose), Region::Image, &pred, ms));
            bar.inc(1);
        }
    }
    Ok(rows)
}
