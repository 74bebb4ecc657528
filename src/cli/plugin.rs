//! Making the project's GStreamer elements available to the CLI's pipelines.

use std::path::PathBuf;

use anyhow::{Result, bail};

const PLUGIN_FILE: &str = "libgstslimmatte.so";

/// Initialises GStreamer and makes sure `trimapgen` and `bgreplace` can be created: from the
/// registry (`GST_PLUGIN_PATH`) or by loading the plugin built next to this executable.
pub fn init() -> Result<()> {
    gst::init()?;
    if gst::ElementFactory::find("trimapgen").is_some() {
        return Ok(());
    }
    let mut tried = Vec::new();
    for path in candidates() {
        if path.is_file() {
            match gst::Plugin::load_file(&path) {
                Ok(_) => {
                    if gst::ElementFactory::find("trimapgen").is_some() {
                        return Ok(());
                    }
                    tried.push(format!("{} (loaded, but has no trimapgen)", path.display()));
                }
                Err(e) => tried.push(format!("{} ({e})", path.display())),
            }
        } else {
            tried.push(format!("{} (missing)", path.display()));
        }
    }
    bail!(
        "the slimmatte GStreamer plugin ({PLUGIN_FILE}) was not found; tried: {}. \
         Build it with `cargo build --release -p gst-plugin-slimmatte` or point GST_PLUGIN_PATH \
         at the folder that holds it",
        tried.join(", ")
    )
}

fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_path_buf());
        if let Some(up) = dir.parent() {
            dirs.push(up.to_path_buf()); // target/<profile>/deps -> target/<profile>
        }
    }
    let root = slimmatte::paths::project_root().join("target");
    dirs.push(root.join("release"));
    dirs.push(root.join("debug"));
    dirs.dedup();
    dirs.into_iter().map(|d| d.join(PLUGIN_FILE)).collect()
}
