//! Helpers shared by the elements: RGBA pad templates, the RGBA caps check, frame views and
//! the frame loop of the in-place elements.

use std::panic::Location;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use gst::subclass::prelude::*;
use gst_video::prelude::*;
use slimmatte::frame::{RgbaViewMut, rgba_view_mut};

use crate::latency::ProcessingLatency;

/// Sink and src pad templates accepting RGBA video of any size and rate.
pub fn rgba_pad_templates() -> &'static [gst::PadTemplate] {
    static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
        pad_templates(
            &gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Rgba)
                .build(),
        )
    });
    PAD_TEMPLATES.as_ref()
}

/// Always-present "src" and "sink" templates with the same caps.
pub fn pad_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .map(|(name, direction)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps).unwrap()
    })
    .collect()
}

/// The check of `VideoFilterImpl::set_info`: `Unsupported caps …: only RGBA` on `cat` unless
/// `info` is RGBA. The error names the caller (the element's `set_info`) as its source.
#[track_caller]
pub fn require_rgba(
    cat: &gst::DebugCategory,
    caps: &gst::Caps,
    info: &gst_video::VideoInfo,
) -> Result<(), gst::LoggableError> {
    if info.format() == gst_video::VideoFormat::Rgba {
        return Ok(());
    }
    let at = Location::caller();
    Err(gst::LoggableError::new(
        *cat,
        gst::glib::BoolError::new(
            format!("Unsupported caps {caps:?}: only RGBA"),
            at.file(),
            "set_info",
            at.line(),
        ),
    ))
}

/// Whether `event` starts the stream afresh (a flush, or a new stream), after which an
/// element's temporal state (moving averages, the previous frame's matte) must not carry over.
pub fn restarts_stream(event: &gst::Event) -> bool {
    matches!(
        event.view(),
        gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_)
    )
}

/// The frame loop of an in-place RGBA element (its `VideoFilterImpl::transform_frame_ip`):
/// with the element's `state` locked (`Flushing` while it is stopped), maps `frame` as a
/// writable view (a stream error `Cannot map frame: …` posted from the caller when it cannot)
/// and runs `process` on both; then, with the lock released, records the time since the call
/// in `latency` (see [`ProcessingLatency::finish_buffer`]). Returns what `process` returned.
#[track_caller]
pub fn transform_in_place<E, S, R>(
    imp: &E,
    state: &Mutex<Option<S>>,
    latency: &ProcessingLatency,
    frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    process: impl FnOnce(&mut S, &mut RgbaViewMut<'_>) -> Result<R, gst::FlowError>,
) -> Result<R, gst::FlowError>
where
    E: ElementImpl,
{
    let start = Instant::now();
    let at = Location::caller();
    let mut state_guard = state.lock().unwrap();
    let Some(state) = state_guard.as_mut() else {
        return Err(gst::FlowError::Flushing);
    };
    let mut view = frame_view(frame).map_err(|e| {
        let debug = format!("Cannot map frame: {e}");
        imp.post_error_message(error_at(
            at,
            "transform_frame_ip",
            gst::StreamError::Format,
            &debug,
        ));
        gst::FlowError::Error
    })?;
    let out = process(state, &mut view)?;
    drop(state_guard);
    latency.finish_buffer(start, imp.obj().upcast_ref::<gst::Element>());
    Ok(out)
}

/// An error message (no message text, `debug` as its debug text, as `gst::error_msg!(error,
/// [debug])` makes it) that names `at`, in the element's method `function`, as its source:
/// where an element called the helper that builds it.
pub fn error_at(
    at: &'static Location<'static>,
    function: &'static str,
    error: impl gst::MessageErrorDomain,
    debug: &str,
) -> gst::ErrorMessage {
    gst::ErrorMessage::new(&error, None, Some(debug), at.file(), function, at.line())
}

/// A writable ndarray view of a mapped RGBA video frame (strides respected).
fn frame_view<'a>(
    frame: &'a mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
) -> Result<RgbaViewMut<'a>, String> {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame
        .plane_data_mut(0)
        .map_err(|_| "frame is not writable".to_string())?;
    rgba_view_mut(data, width, height, stride).map_err(|e| format!("bad frame layout: {e}"))
}
