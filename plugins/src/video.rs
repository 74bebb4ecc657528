//! Helpers shared by the elements: RGBA pad templates and frame views.

use std::sync::LazyLock;

use gst_video::prelude::*;
use slimmatte::frame::{RgbaViewMut, rgba_view_mut};

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
    vec![
        gst::PadTemplate::new(
            "src",
            gst::PadDirection::Src,
            gst::PadPresence::Always,
            caps,
        )
        .unwrap(),
        gst::PadTemplate::new(
            "sink",
            gst::PadDirection::Sink,
            gst::PadPresence::Always,
            caps,
        )
        .unwrap(),
    ]
}

/// A writable ndarray view of a mapped RGBA video frame (strides respected).
pub fn frame_view<'a>(
    frame: &'a mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
) -> Result<RgbaViewMut<'a>, String> {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame
        .plane_data_mut(0)
        .map_err(|_| "frame is not writable".to_string())?;
    rgba_view_mut(data, width, height, stride).map_err(|e| format!("bad frame layout: {e}"))
}
