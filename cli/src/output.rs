//! Output containers chosen from a file name.

use std::path::Path;

use anyhow::{Result, bail};

/// Duration of one MP4 fragment: at most this much of a recording is lost on SIGKILL.
pub const MP4_FRAGMENT_MS: u32 = 1000;
/// Keyframe interval of MP4 recordings, in frames (one per fragment at 30 fps).
const MP4_FRAGMENT_FRAMES: u32 = 30;

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
        // Fragmented MP4 (a fragment per second, a keyframe per fragment): a recording that is
        // killed, or whose machine loses power, keeps everything up to the last fragment.
        // zerolatency: no B-frames (with them, fragmented files decoded 2 frames short) and no
        // look-ahead (x264 otherwise holds ~40 frames that a kill would lose on top); filesink
        // unbuffered, so each fragment reaches the OS when the muxer emits it.
        Some("mp4") => format!(
            "videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=veryfast tune=zerolatency \
             key-int-max={MP4_FRAGMENT_FRAMES} ! video/x-h264,profile=high \
             ! mp4mux fragment-duration={MP4_FRAGMENT_MS} \
             ! filesink buffer-mode=unbuffered location={quoted}"
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
