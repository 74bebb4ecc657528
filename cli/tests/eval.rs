//! `slimmatte eval` end to end on tiny inputs: the per-image CSV and the summary agree, a
//! folder round-trips through --export / --folder, folder errors are readable, and the temporal
//! metric (dtSSD) and Composition-1k errors match hand-computed values.

use std::path::Path;
use std::process::Command;

fn slimmatte(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args(args)
        .env("SLIMMATTE_PEERS_CACHE", "/nonexistent-slimmatte-peers") // never RVM in tests
        .output()
        .expect("slimmatte runs")
}

fn fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/luma_key_matte.onnx")
        .display()
        .to_string()
}

fn run_ok(args: &[&str]) -> String {
    let out = slimmatte(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "slimmatte {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn run_err(args: &[&str]) -> String {
    let out = slimmatte(args);
    assert!(!out.status.success(), "slimmatte {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The error of `eval` on `--folder dir` alone.
fn folder_err(dir: &Path) -> String {
    run_err(&[
        "eval",
        "--synthetic",
        "0",
        "--folder",
        dir.to_str().unwrap(),
    ])
}

/// Parses eval.csv into (set, image, method, [sad, mse, grad, conn, ms]).
fn read_csv(path: &Path) -> Vec<(String, String, String, [f64; 5])> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "set,image,method,sad,mse,grad,conn,ms"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 8, "{l}");
            let v = |i: usize| f[i].parse::<f64>().unwrap();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                [v(3), v(4), v(5), v(6), v(7)],
            )
        })
        .collect()
}

#[test]
fn synthetic_eval_writes_consistent_csv_summary_and_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let fx = fixture();
    run_ok(&[
        "eval",
        "--synthetic",
        "3",
        "--width",
        "96",
        "--height",
        "64",
        "--sequences",
        "1",
        "--sequence-frames",
        "3",
        "--closed-form",
        "0",
        "--trimap-radius",
        "3",
        "--model",
        &fx,
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = read_csv(&out.join("eval.csv"));
    // 3 images × (gt-trimap, trimapgen, each without and with the refinement, coarse-mask);
    // RVM is not cached for tests.
    assert_eq!(rows.len(), 15);
    let methods: Vec<&str> = rows.iter().take(5).map(|r| r.2.as_str()).collect();
    assert_eq!(
        methods,
        [
            "ours:luma_key_matte/gt-trimap",
            "ours:luma_key_matte/trimapgen",
            "ours:luma_key_matte+refine/gt-trimap",
            "ours:luma_key_matte+refine/trimapgen",
            "coarse-mask"
        ]
    );
    for r in &rows {
        assert!(r.3.iter().all(|v| v.is_finite() && *v >= 0.0), "{r:?}");
    }
    // The summary is the mean of the CSV rows per method.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    let summary = json["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 5);
    for s in summary {
        let method = s["method"].as_str().unwrap();
        let mine: Vec<_> = rows.iter().filter(|r| r.2 == method).collect();
        assert_eq!(s["n"].as_u64().unwrap() as usize, mine.len());
        for (k, key) in ["sad", "mse", "grad", "conn"].iter().enumerate() {
            let mean = mine.iter().map(|r| r.3[k]).sum::<f64>() / mine.len() as f64;
            let got = s[key].as_f64().unwrap();
            // The CSV rounds to 6-8 decimals.
            assert!((got - mean).abs() < 1e-5, "{method} {key}: {got} vs {mean}");
        }
    }
    let seq = std::fs::read_to_string(out.join("eval_sequences.csv")).unwrap();
    assert_eq!(seq.lines().count(), 1 + 5, "{seq}");
    assert!(seq.lines().skip(1).all(|l| l.contains(",3,")));
    let md = std::fs::read_to_string(out.join("eval.md")).unwrap();
    assert!(md.contains("| set | method | n | SAD | MSE | Grad | Conn |"));
    assert!(md.contains("dtSSD"));
}

#[test]
fn exported_folder_evaluates_like_the_synthetic_set() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("set");
    let out1 = dir.path().join("r1");
    let out2 = dir.path().join("r2");
    let fx = fixture();
    let common = [
        "--width",
        "80",
        "--height",
        "48",
        "--sequences",
        "0",
        "--closed-form",
        "0",
        "--trimap-radius",
        "3",
        "--model",
        &fx,
    ];
    let mut a = vec![
        "eval",
        "--synthetic",
        "2",
        "--export",
        export.to_str().unwrap(),
    ];
    a.extend(common);
    a.extend(["--out", out1.to_str().unwrap()]);
    run_ok(&a);
    for sub in ["image", "trimap", "alpha"] {
        assert_eq!(std::fs::read_dir(export.join(sub)).unwrap().count(), 2);
    }
    // The exported folder evaluated alone, with the same settings.
    let eval_folder = |out: &Path| {
        let mut args = vec![
            "eval",
            "--synthetic",
            "0",
            "--folder",
            export.to_str().unwrap(),
        ];
        args.extend(common);
        args.extend(["--out", out.to_str().unwrap()]);
        run_ok(&args);
        read_csv(&out.join("eval.csv"))
    };
    let r1 = read_csv(&out1.join("eval.csv"));
    let r2 = eval_folder(&out2);
    assert_eq!(r1.len(), r2.len());
    for (x, y) in r1.iter().zip(&r2) {
        assert_eq!(x.1, y.1, "same image names");
        assert_eq!(y.0, "set", "the folder's name is the set");
        if x.2.ends_with("gt-trimap") {
            // Same pixels, same trimap, 16-bit alpha: the same errors.
            for k in 0..4 {
                assert!((x.3[k] - y.3[k]).abs() < 1e-3, "{x:?} vs {y:?}");
            }
        }
    }

    // Without trimaps the folder's trimap is made from the ground truth with the same
    // radius: the same trimap, so the same errors again.
    std::fs::remove_dir_all(export.join("trimap")).unwrap();
    let out3 = dir.path().join("r3");
    let r3 = eval_folder(&out3);
    for (x, y) in r2.iter().zip(&r3) {
        assert_eq!(x.2, y.2);
        if x.2.ends_with("gt-trimap") {
            for k in 0..4 {
                assert!((x.3[k] - y.3[k]).abs() < 1e-3, "{x:?} vs {y:?}");
            }
        }
    }
}

#[test]
fn folder_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = folder_err(&missing);
    assert!(e.contains("does not exist"), "{e}");

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = folder_err(&empty);
    assert!(e.contains("no (image, alpha) pairs"), "{e}");

    let lonely = dir.path().join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    image::RgbImage::new(20, 20)
        .save(lonely.join("cat.png"))
        .unwrap();
    let e = folder_err(&lonely);
    assert!(e.contains("cat.png") && e.contains("cat_alpha.png"), "{e}");

    let mismatch = dir.path().join("mismatch");
    std::fs::create_dir_all(&mismatch).unwrap();
    image::RgbImage::new(20, 20)
        .save(mismatch.join("dog.png"))
        .unwrap();
    image::GrayImage::new(10, 20)
        .save(mismatch.join("dog_alpha.png"))
        .unwrap();
    let e = folder_err(&mismatch);
    assert!(e.contains("10×20") && e.contains("20×20"), "{e}");
}

#[test]
fn dtssd_and_errors_by_hand() {
    use slimmatte_cli::sequence::{dtssd, trimap_from_alpha};
    // Three frames of two pixels. Truth is static; the prediction flickers 0 → 0.2 → 0 at
    // pixel 0: each step's residual is ±0.2 at one pixel of two → sqrt(0.04/2)·100 = 14.142.
    let gt = vec![vec![0.5, 1.0]; 3];
    let pred = vec![vec![0.5, 1.0], vec![0.7, 1.0], vec![0.5, 1.0]];
    let d = dtssd(&pred, &gt);
    assert!((d - 0.02f64.sqrt() * 100.0).abs() < 1e-4, "{d}");

    // Composition-1k SAD/MSE on the trimap made from the truth: only the unknown pixels count.
    let alpha = [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0];
    let trimap = trimap_from_alpha(&alpha, 7, 1, 1);
    assert_eq!(trimap, [0, 0, 128, 128, 128, 255, 255]);
    let pred = [0.9, 0.0, 0.1, 0.3, 1.0, 1.0, 0.0];
    let e = slimmatte::metrics::MatteErrors::compute(&pred, &alpha, &trimap, 7, 1);
    assert!((e.sad - 0.3 / 1000.0).abs() < 1e-7, "{}", e.sad);
    assert!((e.mse - (0.01 + 0.04) / 3.0).abs() < 1e-7, "{}", e.mse);

    // A perfect prediction has no error of any kind.
    let e = slimmatte::metrics::MatteErrors::compute(&alpha, &alpha, &trimap, 7, 1);
    assert_eq!((e.sad, e.mse, e.grad, e.conn), (0.0, 0.0, 0.0, 0.0));
}
