//! Nothing lost when a recording ends badly: Ctrl-C (SIGINT), SIGTERM, SIGKILL, a full disk and
//! a damaged input, each on the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::decode;

/// Starts `slimmatte run` on the built-in clip (long enough never to end by itself) writing
/// `output`, and returns once it reports at least `frames` frames done (stderr progress lines,
/// printed when there is no terminal): (the child, the frames it reported).
fn record_until(output: &Path, frames: u64) -> (Child, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args([
            "run", "--frames", "100000", "--width", "320", "--height", "180",
        ])
        .arg("--output")
        .arg(output)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slimmatte runs");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    let done = loop {
        let line = lines
            .next()
            .expect("slimmatte ended before reporting progress")
            .unwrap();
        if let Some(n) = line
            .strip_prefix("progress: ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            && n >= frames
        {
            break n;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, done)
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Waits for the child at most `limit`; kills it and fails the test if it hangs.
fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("slimmatte did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ends_cleanly_on(sig: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("rec.mp4");
    let (mut child, n) = record_until(&mp4, 40);
    signal(&child, sig);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(
        status.success(),
        "exit {status:?} after SIG{sig}; stdout: {stdout}"
    );
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(stdout.contains("wrote"), "{stdout}");
    let decoded = decode(&mp4).len() as u64;
    assert!(
        decoded + 2 >= n,
        "SIG{sig} after {n} frames: {decoded} decodable"
    );
}

#[test]
fn sigint_finalises_the_recording_and_exits_0() {
    ends_cleanly_on("INT");
}

#[test]
fn sigterm_finalises_the_recording_and_exits_0() {
    ends_cleanly_on("TERM");
}

#[test]
fn sigkill_loses_at_most_one_fragment() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("rec.mp4");
    let (mut child, n) = record_until(&mp4, 80);
    child.kill().unwrap(); // SIGKILL
    wait_bounded(&mut child, Duration::from_secs(10));
    let decoded = decode(&mp4).len() as u64;
    assert!(
        decoded + 35 >= n,
        "SIGKILL after {n} frames: {decoded} decodable"
    );
}

#[test]
fn a_full_disk_is_a_one_line_error_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("full.mp4");
    std::os::unix::fs::symlink("/dev/full", &out).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args([
            "run", "--frames", "300", "--width", "320", "--height", "180",
        ])
        .arg("--output")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert_eq!(
        status.code(),
        Some(1),
        "an error exit, not a crash: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("No space left"), "{stderr}");
}

#[test]
fn a_truncated_input_writes_the_frames_before_the_damage_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.mp4");
    let ok = Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args(["run", "--frames", "90", "--width", "320", "--height", "180"])
        .arg("--output")
        .arg(&src)
        .status()
        .unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&src).unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("out.mp4");
    let run = Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args(["run", "--width", "320", "--height", "180", "--input"])
        .arg(&truncated)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a damaged input is an error");
    assert!(stderr.contains("ended early"), "{stderr}");
    let before = decode(&truncated).len();
    let written = decode(&out).len();
    assert!(before >= 20, "the truncated file still has {before} frames");
    assert_eq!(written, before, "every frame before the damage is written");
}
