//! Output containers chosen from a file name.

use std::path::Path;

use anyhow::{Result, bail};

/// The tail of a pipeline that encodes RGBA video into `path`:
/// `.mp4` (H.264), `.webm` (VP8, alpha dropped), or a PNG sequence (`name%05d.png`, keeps alpha).
pub fn encoder_tail(path: &Path) -> Result<String> {
    let location = path
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("output path {} is not UTF-8", path.display()))?;
    let quoted = format!("\"{}\"", location.replace('"', "\\\""));
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    Ok(match ext.as_deref() {
        Some("mp4") => format!(
            "videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=veryfast key-int-max=60 \
             ! video/x-h264,profile=high ! mp4mux ! filesink location={quoted}"
        ),
        Some("webm") => format!(
            "videoconvert ! video/x-raw,format=I420 ! vp8enc deadline=1 ! webmmux ! filesink location={quoted}"
        ),
        Some("png") if location.contains('%') => {
            format!("pngenc ! multifilesink location={quoted}")
        }
        Some("png") => bail!(
            "a PNG output needs a frame-number pattern such as frames/%05d.png, got {location}"
        ),
        _ => bail!(
            "unsupported output {location}: use .mp4, .webm or a PNG pattern like out/%05d.png"
        ),
    })
}
