//! Every `gst-launch-1.0` example in README.md runs, with the camera replaced by a picture of
//! a person, windows by fakesink and file names by temporary files.

mod common;

use std::process::Command;

use common::*;

/// The gst-launch commands of README.md (continuation lines joined).
fn readme_pipelines() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.trim();
        if current.is_empty() && !line.starts_with("gst-launch-1.0") {
            continue;
        }
        current.push_str(line.trim_end_matches('\\'));
        current.push(' ');
        if !line.ends_with('\\') {
            commands.push(std::mem::take(&mut current));
        }
    }
    commands
}

#[test]
fn readme_gst_launch_examples_run() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("in.mp4");
    let person = format!(
        "filesrc location={} ! jpegdec ! imagefreeze num-buffers=15 ! videoconvert ! videoscale \
         ! video/x-raw,width=640,height=360,framerate=30/1",
        repo_file("assets/astronaut.jpg").display()
    );
    // A short clip with a person for the file examples.
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(
            format!(
                "{person} ! videoconvert ! x264enc ! mp4mux ! filesink location={}",
                clip.display()
            )
            .split_whitespace(),
        )
        .status()
        .unwrap();
    assert!(status.success());

    let pipelines = readme_pipelines();
    assert!(
        pipelines.len() >= 5,
        "README has its examples: {pipelines:?}"
    );
    for original in pipelines {
        let cmd = original
            .replace("v4l2src device=/dev/video0", &person)
            .replace("v4l2src", &person)
            .replace("autovideosink", "fakesink")
            .replace(
                "videotestsrc pattern=smpte",
                "videotestsrc pattern=smpte num-buffers=15",
            )
            .replace("location=in.mp4", &format!("location={}", clip.display()))
            .replace(
                "location=out.mp4",
                &format!("location={}", dir.path().join("out.mp4").display()),
            )
            .replace(
                "location=rec.mp4",
                &format!("location={}", dir.path().join("rec.mp4").display()),
            )
            .replace(
                "location=trimap.png",
                &format!("location={}", dir.path().join("trimap.png").display()),
            );
        let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        let out = Command::new("gst-launch-1.0")
            .args(&args)
            .current_dir(repo_file(""))
            .env("GST_PLUGIN_PATH", plugin_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README example failed:\n{original}\nran as:\n{cmd}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.path().join("out.mp4").metadata().unwrap().len() > 1000);
    assert!(dir.path().join("trimap.png").metadata().unwrap().len() > 1000);
    assert!(dir.path().join("rec.mp4").metadata().unwrap().len() > 1000);
    assert!(
        !repo_file("rec.mp4").exists(),
        "an example wrote into the checkout"
    );
}
