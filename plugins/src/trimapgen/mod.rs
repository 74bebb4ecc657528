//! # element-trimapgen
//!
//! Runs a coarse person-segmentation network (MediaPipe selfie segmentation, shipped as ONNX)
//! on each RGBA frame and writes a trimap into the alpha channel: 0 = background,
//! 128 = unknown band around the person's contour, 255 = foreground. Colour channels pass
//! through untouched, so the output is plain RGBA video that `videoconvert`, `compositor`,
//! `pngenc` and the matting element understand.
//!
//! With `output=mask` it writes the soft person mask itself (0..255): the mask-only background
//! removal of tools like OBS's plugin, and a debug view.
//!
//! ```text
//! gst-launch-1.0 v4l2src ! videoconvert ! trimapgen ! videoconvert ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

/// What `trimapgen` writes into the alpha channel.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTrimapGenOutput")]
pub enum TrimapGenOutput {
    #[default]
    #[enum_value(
        name = "Trimap: 0 background, 128 unknown band, 255 foreground",
        nick = "trimap"
    )]
    Trimap = 0,
    #[enum_value(name = "Mask: the soft coarse person mask, 0..255", nick = "mask")]
    Mask = 1,
}

glib::wrapper! {
    pub struct TrimapGen(ObjectSubclass<imp::TrimapGen>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "trimapgen",
        gst::Rank::NONE,
        TrimapGen::static_type(),
    )
}
