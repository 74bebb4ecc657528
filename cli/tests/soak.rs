//! The short soak that CI runs: a few thousand frames through the full chain, every frame
//! out, memory flat (`slimmatte soak` fails otherwise). The long run (100,000 frames) is
//! `slimmatte soak` with its defaults, run by hand.

use std::process::Command;

#[test]
fn two_thousand_frames_in_equal_frames_out_with_flat_memory() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/luma_key_matte.onnx"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args([
            "soak", "--frames", "2000", "--width", "160", "--height", "90",
        ])
        .args(["--model", fixture, "--max-growth-mib", "8"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2000 frames in, 2000 frames out"),
        "{stdout}"
    );
}
