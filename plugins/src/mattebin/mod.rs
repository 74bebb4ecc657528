//! # element-mattebin
//!
//! The whole background-replacement chain as one element:
//! `videoconvert ! trimapgen ! slimmatte ! bgreplace ! videoconvert`. Accepts any raw video,
//! outputs what downstream asks for (RGBA keeps the matte for `background=transparent`).
//!
//! The main settings are properties of the bin; every other property of the stages is reachable
//! through the child proxy: `mattebin trimap::band-width=12 matte::smoothing=0.3`.
//!
//! ```text
//! gst-launch-1.0 v4l2src ! mattebin background=blur ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct MatteBin(ObjectSubclass<imp::MatteBin>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "mattebin",
        gst::Rank::NONE,
        MatteBin::static_type(),
    )
}
