//! Output containers chosen from a file name.

use std::path::Path;

use anyhow::{Result, bail};

/// Duration of one MP4 fragment: at most this much of a recording is lost on SIGKILL.
pub const MP4_FRAGMENT_MS: u32 = 1000;
/// Keyframe interval of MP4 recordings, in frames (one per fragment at 30 fps).
const MP4_FRAGMENT_FRAMES: u32 = 30;

/// File extensions read as a single picture (`slimmatte run --input photo.png`).
pub const PICTURE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// Whether `path` names a single picture (by its extension) rather than a video.
pub fn is_picture(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PICTURE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The tail of a pipeline that encodes RGBA video into `path`:
/// `.mp4` (H.264), `.webm` (VP8, alpha dropped), a PNG sequence (`name%05d.png`, keeps
/// alpha), or — when the input is one picture (`single`) — one `.png` (keeps alpha) or
/// `.jpg` file.
pub fn encoder_tail(path: &Path, single: bool) -> Result<String> {
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
        Some("png") if single => format!("pngenc snapshot=true ! filesink location={quoted}"),
        Some("jpg" | "jpeg") if single => {
            format!("videoconvert ! jpegenc snapshot=true ! filesink location={quoted}")
        }
        Some("png" | "jpg" | "jpeg") => bail!(
            "{location} is one picture, but the input is a video: write one picture from a \
             picture input (--input photo.png), or the frames of a video to a numbered PNG \
             pattern such as frames/%05d.png"
        ),
        _ => bail!(
            "unsupported output {location}: use .mp4, .webm, a PNG pattern like out/%05d.png, \
             or .png / .jpg for a picture input"
        ),
    })
}
