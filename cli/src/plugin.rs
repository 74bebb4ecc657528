//! Making the project's GStreamer elements available to the CLI's pipelines: the plugin crate
//! is linked in and its elements are registered statically, so an installed `slimmatte`
//! never has to find `libgstslimmatte.so` (and always runs the elements it was built with).

use anyhow::{Context, Result};

/// Initialises GStreamer and registers `trimapgen`, `slimmatte`, `bgreplace` and `mattebin`.
/// Idempotent.
pub fn init() -> Result<()> {
    gst::init().context("initialising GStreamer")?;
    if gst::Registry::get()
        .find_plugin("slimmatte")
        .is_some_and(|p| p.filename().is_none())
    {
        return Ok(()); // already registered statically by an earlier call
    }
    gstslimmatte::plugin_register_static()
        .context("registering the slimmatte elements with GStreamer")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_registered_without_a_plugin_file() {
        // SAFETY: set before GStreamer initialises in this test process.
        unsafe { std::env::set_var("GST_PLUGIN_PATH", "/nonexistent") };
        init().unwrap();
        init().unwrap();
        for name in ["trimapgen", "slimmatte", "bgreplace", "mattebin"] {
            assert!(gst::ElementFactory::find(name).is_some(), "{name}");
        }
    }
}
