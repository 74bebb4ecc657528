//! GStreamer elements of slimmatte.
//!
//! - `trimapgen`: RGBA in → RGBA out with a trimap (or the soft coarse person mask) in alpha.
//! - `slimmatte`: RGBA + trimap in alpha → RGBA + soft alpha matte (the pruned student net).
//! - `mattebin`: the whole chain (videoconvert ! trimapgen ! slimmatte ! bgreplace ! videoconvert).
//! - `bgreplace`: RGBA whose alpha is a matte → background replaced (blur, colour, image) or
//!   kept transparent.
//!
//! ```text
//! gst-launch-1.0 videotestsrc ! videoconvert ! trimapgen output=mask ! bgreplace background=blur ! videoconvert ! autovideosink
//! ```

use gst::glib;

mod bgreplace;
mod latency;
mod mattebin;
mod matting;
mod property;
mod qos;
mod trimapgen;
mod video;

pub use bgreplace::{BgReplace, BgReplaceMode};
pub use mattebin::MatteBin;
pub use matting::{SlimMatte, SlimMatteOutput, SlimMatteRefine};
pub use trimapgen::{TrimapGen, TrimapGenOutput};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Models installed next to the plugin are found (`<prefix>/share/slimmatte/models`).
    if let Some(file) = plugin.filename() {
        slimmatte::paths::add_plugin_location(&file);
    }
    trimapgen::register(plugin)?;
    bgreplace::register(plugin)?;
    matting::register(plugin)?;
    mattebin::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    slimmatte,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
