//! # element-bgreplace
//!
//! Background replacement: consumes RGBA whose alpha channel is a matte (the soft mask from
//! `trimapgen output=mask`, or the matting element's matte) and composites
//! `out = α·frame + (1−α)·background`.
//!
//! Backgrounds: `blur` (the frame itself, blurred), `color`, `image` (a PNG/JPEG scaled to
//! cover the frame) or `transparent` (RGBA with the matte in alpha, for `compositor`, PNG or
//! WebM/VP8 with alpha). Opaque modes output alpha 255.
//!
//! ```text
//! gst-launch-1.0 v4l2src ! videoconvert ! trimapgen output=mask ! bgreplace background=blur ! videoconvert ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

/// The background `bgreplace` puts behind the person.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstBgReplaceMode")]
pub enum BgReplaceMode {
    #[enum_value(
        name = "Transparent: keep the frame, the matte stays in alpha",
        nick = "transparent"
    )]
    Transparent = 0,
    #[enum_value(name = "Color: a solid colour (property color)", nick = "color")]
    Color = 1,
    #[enum_value(
        name = "Image: a picture scaled to cover the frame (property image-location)",
        nick = "image"
    )]
    Image = 2,
    #[default]
    #[enum_value(
        name = "Blur: the frame itself, blurred (property blur-sigma)",
        nick = "blur"
    )]
    Blur = 3,
}

glib::wrapper! {
    pub struct BgReplace(ObjectSubclass<imp::BgReplace>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "bgreplace",
        gst::Rank::NONE,
        BgReplace::static_type(),
    )
}
