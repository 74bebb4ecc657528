//! # element-slimmatte
//!
//! The matting element: refines the trimap in the alpha channel (as `trimapgen` writes it) into
//! a soft alpha matte with the pruned student network. Known foreground and background stay
//! exact; only a crop around the unknown band goes through the network, at a working
//! resolution, and the matte is upsampled with a fast guided filter so hair detail survives.
//!
//! ```text
//! gst-launch-1.0 v4l2src ! videoconvert ! trimapgen ! slimmatte ! bgreplace background=blur ! videoconvert ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

/// What `slimmatte` outputs.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSlimMatteOutput")]
pub enum SlimMatteOutput {
    #[default]
    #[enum_value(name = "Matte: colours unchanged, the matte in alpha", nick = "matte")]
    Matte = 0,
    #[enum_value(
        name = "Grey: the matte as a grey picture, opaque (debug view)",
        nick = "grey"
    )]
    Grey = 1,
}

glib::wrapper! {
    pub struct SlimMatte(ObjectSubclass<imp::SlimMatte>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "slimmatte",
        gst::Rank::NONE,
        SlimMatte::static_type(),
    )
}
