//! The main job end to end: `slimmatte demo` writes an MP4 whose frames show the person over
//! the replaced background. Needs the plugin built next to the binary (cargo test builds the
//! whole workspace).

use std::process::Command;

mod common;
use common::decode;

fn slimmatte(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args(args)
        .output()
        .expect("slimmatte runs")
}

/// Runs `slimmatte args`, which must succeed.
fn slimmatte_ok(args: &[&str]) {
    let out = slimmatte(args);
    assert!(
        out.status.success(),
        "slimmatte {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `slimmatte args`, which must fail; returns what it wrote to stderr.
fn slimmatte_err(args: &[&str]) -> String {
    let out = slimmatte(args);
    assert!(!out.status.success(), "slimmatte {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// How many pixels of a packed RGBA frame are pure red (the test background).
fn red_pixels(frame: &[u8]) -> usize {
    frame
        .chunks_exact(4)
        .filter(|p| p[0] > 200 && p[1] < 50 && p[2] < 50)
        .count()
}

#[test]
fn demo_writes_the_clip_with_a_replaced_background() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("demo.mp4");
    slimmatte_ok(&[
        "demo",
        "--frames",
        "24",
        "--background",
        "color",
        "--color",
        "ff0000",
        "--output",
        mp4.to_str().unwrap(),
    ]);
    let frames = decode(&mp4);
    assert_eq!(frames.len(), 24);
    // Count red (replaced) and non-red (person) pixels of a middle frame: both present.
    let f = &frames[12];
    let red = red_pixels(f);
    let total = f.len() / 4;
    assert!(red > total / 10, "background replaced: {red}/{total} red");
    assert!(red < total * 9 / 10, "person kept: {red}/{total} red");
    // The photo has no pure red of its own: the first frame rendered without replacement
    // would have almost none.
    let mut clip = slimmatte_cli::clip::DemoClip::new(640, 360, 24).unwrap();
    let mut raw = vec![0u8; 640 * 360 * 4];
    clip.render(12, &mut raw).unwrap();
    let raw_red = red_pixels(&raw);
    assert!(
        raw_red < red / 10,
        "red comes from the background ({raw_red} before)"
    );
}

#[test]
fn run_reads_a_video_file_and_writes_webm() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("in.mp4");
    let webm = dir.path().join("out.webm");
    slimmatte_ok(&["demo", "--frames", "15", "--output", mp4.to_str().unwrap()]);
    slimmatte_ok(&[
        "run",
        "--input",
        mp4.to_str().unwrap(),
        "--output",
        webm.to_str().unwrap(),
        "--background",
        "blur",
        "--width",
        "320",
        "--height",
        "180",
    ]);
    let frames = decode(&webm);
    assert_eq!(frames.len(), 15);
    assert_eq!(frames[0].len(), 320 * 180 * 4);
}

#[test]
fn missing_camera_and_non_video_input_are_named() {
    let err = slimmatte_err(&["run", "--input", "/dev/video77", "--output", "display"]);
    assert!(err.contains("camera /dev/video77 does not exist"), "{err}");

    let err = slimmatte_err(&[
        "run",
        "--input",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        "--output",
        "/tmp/slimmatte-never.mp4",
    ]);
    assert!(
        err.contains("pipeline error") && err.contains("decodebin"),
        "{err}"
    );

    let err = slimmatte_err(&["run", "--frames", "2", "--output", "/dev/video99"]);
    assert!(
        err.contains("virtual camera /dev/video99 does not exist") && err.contains("v4l2loopback"),
        "{err}"
    );

    let out = slimmatte(&["run", "--input", "/no/such/clip.mp4"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("input file /no/such/clip.mp4 does not exist")
    );
}

#[test]
fn bad_arguments_fail_with_one_clear_line() {
    let err = slimmatte_err(&["demo", "--frames", "2", "--output", "/tmp/x.avi"]);
    assert!(
        err.contains("unsupported output") && err.contains(".mp4"),
        "{err}"
    );

    let err = slimmatte_err(&[
        "demo",
        "--frames",
        "2",
        "--background",
        "image",
        "--image",
        "/no/such.png",
    ]);
    assert!(
        err.contains("/no/such.png") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn a_picture_is_cut_out_at_its_own_size_into_one_png() {
    let dir = tempfile::tempdir().unwrap();
    let photo = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/astronaut.jpg");
    for pose in ["true", "false"] {
        let cut = dir.path().join(format!("cut_{pose}.png"));
        let out = slimmatte(&[
            "run",
            "--input",
            photo,
            "--background",
            "transparent",
            "--pose",
            pose,
            "--output",
            cut.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The message names the file written.
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("wrote {}", cut.display())), "{said}");
        let img = image::open(&cut).unwrap().to_rgba8();
        // The photo's own size (512×512), not the video default of 640×360.
        assert_eq!(img.dimensions(), (512, 512));
        // Her face is kept, the wall at the top right is cut away.
        assert!(img.get_pixel(225, 120)[3] > 200, "pose={pose}: face");
        assert!(img.get_pixel(500, 10)[3] < 30, "pose={pose}: wall");
    }
    // One picture from a video input is refused with a way out.
    let err = slimmatte_err(&[
        "run",
        "--frames",
        "2",
        "--output",
        dir.path().join("one.png").to_str().unwrap(),
    ]);
    assert!(
        err.contains("is one picture, but the input is a video") && err.contains("%05d.png"),
        "{err}"
    );
}
