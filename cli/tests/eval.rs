//! `slimmatte eval` end to end on tiny inputs: the per-image CSV and the summary agree, each row
//! is measured over its region (band or whole image), a folder round-trips through --export /
//! --folder, folder errors are readable, the temporal metric (dtSSD) and Composition-1k errors
//! match hand-computed values, and a leak far from the subject costs the trimap-free rows only.

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
        "--people",
        "0",
        "--folder",
        dir.to_str().unwrap(),
    ])
}

/// One line of eval.csv.
#[derive(Debug)]
struct CsvRow {
    set: String,
    image: String,
    method: String,
    region: String,
    /// sad, mse, grad, conn, ms.
    v: [f64; 5],
    iou: Option<f64>,
}

/// Parses eval.csv.
fn read_csv(path: &Path) -> Vec<CsvRow> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "set,image,method,region,sad,mse,grad,conn,iou,ms"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 10, "{l}");
            let v = |i: usize| f[i].parse::<f64>().unwrap();
            CsvRow {
                set: f[0].to_string(),
                image: f[1].to_string(),
                method: f[2].to_string(),
                region: f[3].to_string(),
                v: [v(4), v(5), v(6), v(7), v(9)],
                iou: (!f[8].is_empty()).then(|| v(8)),
            }
        })
        .collect()
}

/// The region a method's rows are measured over: the band for the methods given the trimap.
fn expected_region(method: &str) -> &'static str {
    if method.ends_with("/gt-trimap") || method == "closed-form" {
        "band"
    } else {
        "image"
    }
}

/// `eval` with the fixture model on `synthetic` stills and one 3-frame sequence of
/// `width × height`, no closed-form, plus `extra`, into `out`.
fn eval_synthetic(out: &Path, synthetic: &str, (width, height): (&str, &str), extra: &[&str]) {
    let fx = fixture();
    let mut args = vec![
        "eval",
        "--synthetic",
        synthetic,
        "--people",
        "0",
        "--width",
        width,
        "--height",
        height,
        "--sequences",
        "1",
        "--sequence-frames",
        "3",
        "--closed-form",
        "0",
        "--model",
        &fx,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

#[test]
fn synthetic_eval_writes_consistent_csv_summary_and_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    eval_synthetic(&out, "3", ("96", "64"), &["--trimap-radius", "3"]);
    let rows = read_csv(&out.join("eval.csv"));
    // 3 images × (gt-trimap, trimapgen, each with the net alone, the refinement, and the
    // refinement + band net; coarse-mask); RVM is not cached for tests.
    assert_eq!(rows.len(), 21);
    let methods: Vec<&str> = rows.iter().take(7).map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "ours:luma_key_matte/gt-trimap",
            "ours:luma_key_matte/trimapgen",
            "ours:luma_key_matte+refine/gt-trimap",
            "ours:luma_key_matte+refine/trimapgen",
            "ours:luma_key_matte+refine+band/gt-trimap",
            "ours:luma_key_matte+refine+band/trimapgen",
            "coarse-mask"
        ]
    );
    for r in &rows {
        assert!(r.v.iter().all(|v| v.is_finite() && *v >= 0.0), "{r:?}");
        // Trimap-free rows over the whole image with an IoU; given-trimap rows over the band.
        assert_eq!(r.region, expected_region(&r.method), "{r:?}");
        assert_eq!(r.iou.is_some(), r.region == "image", "{r:?}");
        assert!(r.iou.is_none_or(|v| (0.0..=1.0).contains(&v)), "{r:?}");
    }
    // The summary is the mean of the CSV rows per method.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    let summary = json["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 7);
    for s in summary {
        let method = s["method"].as_str().unwrap();
        let mine: Vec<_> = rows.iter().filter(|r| r.method == method).collect();
        assert_eq!(s["n"].as_u64().unwrap() as usize, mine.len());
        assert_eq!(s["region"].as_str().unwrap(), expected_region(method));
        for (k, key) in ["sad", "mse", "grad", "conn"].iter().enumerate() {
            let mean = mine.iter().map(|r| r.v[k]).sum::<f64>() / mine.len() as f64;
            let got = s[key].as_f64().unwrap();
            // The CSV rounds to 6-8 decimals.
            assert!((got - mean).abs() < 1e-5, "{method} {key}: {got} vs {mean}");
        }
        match s["iou"].as_f64() {
            Some(got) => {
                let mean = mine.iter().map(|r| r.iou.unwrap()).sum::<f64>() / mine.len() as f64;
                assert!((got - mean).abs() < 1e-5, "{method} iou: {got} vs {mean}");
            }
            None => assert!(s["iou"].is_null() && mine.iter().all(|r| r.iou.is_none())),
        }
    }
    let seq = std::fs::read_to_string(out.join("eval_sequences.csv")).unwrap();
    let mut seq_lines = seq.lines();
    assert_eq!(
        seq_lines.next().unwrap(),
        "sequence,method,region,frames,dtssd,sad,mse,iou"
    );
    assert_eq!(seq.lines().count(), 1 + 7, "{seq}");
    for l in seq_lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(
            (f.len(), f[2], f[3]),
            (8, expected_region(f[1]), "3"),
            "{l}"
        );
    }
    // Per-frame SAD: 7 methods × 3 frames, in the JSON, the CSV and the plot.
    let over_time = std::fs::read_to_string(out.join("sad_over_time.csv")).unwrap();
    assert_eq!(over_time.lines().count(), 1 + 7 * 3, "{over_time}");
    for q in json["sequences"].as_array().unwrap() {
        let per_frame = q["frame_sad"].as_array().unwrap();
        assert_eq!(per_frame.len(), 3);
        let mean = per_frame.iter().map(|v| v.as_f64().unwrap()).sum::<f64>() / 3.0;
        assert!((mean - q["sad"].as_f64().unwrap()).abs() < 1e-9, "{q}");
    }
    let png = image::open(out.join("sad_over_time.png")).unwrap();
    assert!(png.width() >= 800 && png.height() >= 300);
    let md = std::fs::read_to_string(out.join("eval.md")).unwrap();
    assert!(md.contains("| set | method | region | n | SAD | MSE | Grad | Conn | IoU |"));
    assert!(md.contains("| sequence | method | region | frames | dtSSD |"));
    assert!(md.contains("region `band`") && md.contains("region `image`"));
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
        "--people",
        "0",
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
            "--people",
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
        assert_eq!(x.image, y.image, "same image names");
        assert_eq!(y.set, "set", "the folder's name is the set");
        if x.method.ends_with("gt-trimap") {
            // Same pixels, same trimap, 16-bit alpha: the same errors.
            for k in 0..4 {
                assert!((x.v[k] - y.v[k]).abs() < 1e-3, "{x:?} vs {y:?}");
            }
        }
    }

    // Without trimaps the folder's trimap is made from the ground truth with the same
    // radius: the same trimap, so the same errors again.
    std::fs::remove_dir_all(export.join("trimap")).unwrap();
    let out3 = dir.path().join("r3");
    let r3 = eval_folder(&out3);
    for (x, y) in r2.iter().zip(&r3) {
        assert_eq!(x.method, y.method);
        if x.method.ends_with("gt-trimap") {
            for k in 0..4 {
                assert!((x.v[k] - y.v[k]).abs() < 1e-3, "{x:?} vs {y:?}");
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
    let e = slimmatte_measure::metrics::MatteErrors::compute(&pred, &alpha, &trimap, 7, 1);
    assert!((e.sad - 0.3 / 1000.0).abs() < 1e-7, "{}", e.sad);
    assert!((e.mse - (0.01 + 0.04) / 3.0).abs() < 1e-7, "{}", e.mse);

    // A perfect prediction has no error of any kind.
    let e = slimmatte_measure::metrics::MatteErrors::compute(&alpha, &alpha, &trimap, 7, 1);
    assert_eq!((e.sad, e.mse, e.grad, e.conn), (0.0, 0.0, 0.0, 0.0));
}

#[test]
fn a_leak_far_from_the_subject_costs_the_trimap_free_rows_only() {
    use slimmatte_cli::eval::{EvalImage, Region, scores};
    use slimmatte_cli::sequence::{Sample, trimap_from_alpha};
    // A 64×48 "person": a soft-edged disc on the left; its evaluation trimap made from the
    // truth as eval makes it. The prediction gets the person nearly right (off by 0.02
    // everywhere) and, when leaking, adds a solid 8×8 blob far to the right, in the trimap's
    // definite background (a book taken for a person).
    let (w, h) = (64, 48);
    let alpha: Vec<f32> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            (12.0 - ((x - 14.0).powi(2) + (y - 24.0).powi(2)).sqrt()).clamp(0.0, 1.0)
        })
        .collect();
    let trimap = trimap_from_alpha(&alpha, w, h, 3);
    let img = EvalImage {
        set: "leak".into(),
        sample: Sample {
            name: "disc".into(),
            width: w,
            height: h,
            rgba: vec![128; w * h * 4],
            alpha: alpha.clone(),
            foreground: None,
        },
        trimap: trimap.clone(),
    };
    let clean: Vec<f32> = alpha.iter().map(|&a| (a - 0.02).max(0.0)).collect();
    let mut leaky = clean.clone();
    for y in 20..28 {
        for x in 48..56 {
            assert_eq!(
                trimap[y * w + x],
                0,
                "the blob is in the definite background"
            );
            leaky[y * w + x] = 1.0;
        }
    }
    // Given-trimap rows (gt-trimap, closed-form): the band does not see the leak.
    let band = |p: &[f32]| scores(p, &img, Region::Band);
    assert_eq!(band(&leaky), band(&clean));
    assert_eq!(band(&leaky).iou, None);
    // Trimap-free rows (trimapgen, rvm, coarse-mask): 64 pixels of error 1 more, whole image.
    let whole = |p: &[f32]| scores(p, &img, Region::Image);
    let (c, l) = (whole(&clean), whole(&leaky));
    assert!(
        (l.sad - c.sad - 64.0 / 1000.0).abs() < 1e-6,
        "{l:?} vs {c:?}"
    );
    assert!(l.mse > c.mse && l.grad > c.grad, "{l:?} vs {c:?}");
    assert!(l.iou.unwrap() < c.iou.unwrap(), "{l:?} vs {c:?}");
    // Computed over the band, the whole-image SAD would have missed the blob.
    assert!(l.sad > band(&leaky).sad + 0.06);
}

#[test]
fn tuning_sequences_are_other_sequences_than_the_test_ones() {
    // `--sequence-offset 100` scores sequences 100, 101 … (a tuning set), never the test
    // sequences 0, 1 … that the reported results use; `--adaptive-band` is accepted as a value.
    let names = |offset: &str, adaptive: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("results");
        let fx = fixture();
        run_ok(&[
            "eval",
            "--synthetic",
            "0",
            "--people",
            "0",
            "--width",
            "96",
            "--height",
            "64",
            "--sequences",
            "2",
            "--sequence-frames",
            "2",
            "--sequence-offset",
            offset,
            "--adaptive-band",
            adaptive,
            "--closed-form",
            "0",
            "--model",
            &fx,
            "--out",
            out.to_str().unwrap(),
        ]);
        let seq = std::fs::read_to_string(out.join("eval_sequences.csv")).unwrap();
        let mut names: Vec<String> = seq
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect();
        names.dedup();
        names
    };
    let test = names("0", "false");
    let tuning = names("100", "true");
    assert_eq!(test.len(), 2, "{test:?}");
    assert!(test[0].starts_with("moving_00_") && test[1].starts_with("moving_01_"));
    assert_eq!(tuning.len(), 2, "{tuning:?}");
    assert!(tuning[0].starts_with("moving_100_") && tuning[1].starts_with("moving_101_"));
}

#[test]
fn oracle_mask_and_pose_rows_are_added_once_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    eval_synthetic(
        &out,
        "4",
        ("320", "180"),
        &["--oracle-mask", "--compare-pose"],
    );
    let rows = read_csv(&out.join("eval.csv"));
    let of =
        |method: &str| -> Vec<&CsvRow> { rows.iter().filter(|r| r.method == method).collect() };
    // One oracle row per image: the first model with the run's refinement and the band net.
    let oracle = of("ours:luma_key_matte+refine+band/oracle-mask");
    assert_eq!(oracle.len(), 4);
    assert!(
        rows.iter()
            .filter(|r| r.method.ends_with("/oracle-mask"))
            .count()
            == 4
    );
    let mean = |rs: &[&CsvRow], f: &dyn Fn(&CsvRow) -> f64| {
        rs.iter().map(|r| f(r)).sum::<f64>() / rs.len() as f64
    };
    // Whole-image rows. The stills are not all people, so the segmentation network's mask
    // misses; the ground truth's does not, and the same trimap stage and refinement then
    // find the subject.
    assert!(
        oracle
            .iter()
            .all(|r| r.region == "image" && r.iou.is_some())
    );
    let iou = mean(&oracle, &|r| r.iou.unwrap());
    let net = of("ours:luma_key_matte+refine+band/trimapgen");
    assert!(iou > 0.9, "oracle IoU {iou}");
    assert!(iou > mean(&net, &|r| r.iou.unwrap()));
    assert!(mean(&oracle, &|r| r.v[0]) < mean(&net, &|r| r.v[0]));
    // `--compare-pose`: one more pipeline row per image, without the pose network.
    let pose = of("ours:luma_key_matte+refine+band/trimapgen-selfie");
    assert_eq!(pose.len(), 4);
    assert!(pose.iter().all(|r| r.region == "image" && r.iou.is_some()));
    let seq = std::fs::read_to_string(out.join("eval_sequences.csv")).unwrap();
    for row in ["oracle-mask", "trimapgen-selfie"] {
        let needle = format!(",ours:luma_key_matte+refine+band/{row},image,3,");
        assert!(seq.lines().any(|l| l.contains(&needle)), "{seq}");
    }
}

/// `--one-frame-pipeline` runs each still (a synthetic one and a person still) as its own
/// `appsrc ! mattebin ! appsink` pipeline with the shipped models: the matte a user gets from
/// `slimmatte run --input photo.png` is the one the core rows score, to the pixel.
#[test]
fn one_frame_pipelines_score_like_the_core_pipeline_rows() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/matting_student_temporal.onnx")
        .display()
        .to_string();
    run_ok(&[
        "eval",
        "--synthetic",
        "1",
        "--people",
        "1",
        "--sequences",
        "0",
        "--closed-form",
        "0",
        "--compare-pose",
        "--one-frame-pipeline",
        "--model",
        &shipped,
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let rows = read_csv(&dir.path().join("eval.csv"));
    for (pipeline, core) in [
        (
            "mattebin/one-frame",
            "ours:student_temporal+refine+band/trimapgen",
        ),
        (
            "mattebin-selfie/one-frame",
            "ours:student_temporal+refine+band/trimapgen-selfie",
        ),
    ] {
        let of = |m: &str| -> Vec<&CsvRow> { rows.iter().filter(|r| r.method == m).collect() };
        let (p, c) = (of(pipeline), of(core));
        assert_eq!(p.len(), 2, "{pipeline}: one row per still");
        assert_eq!(c.len(), 2, "{core}");
        for (a, b) in p.iter().zip(&c) {
            assert_eq!(a.image, b.image);
            assert_eq!(a.region, "image");
            assert!(
                (a.v[0] - b.v[0]).abs() < 1e-9,
                "{}: SAD {} vs {}",
                a.image,
                a.v[0],
                b.v[0]
            );
            assert_eq!(a.iou, b.iou);
        }
    }
}
