//! `slimmatte bench` smoke run at a tiny size with few frames: bare calls and the GStreamer
//! pipeline are measured, and the JSON, the Markdown table and the plots are written. Uses RVM
//! only when it is already in the cache (never downloads).

use std::process::Command;

#[test]
fn bench_smoke_writes_json_markdown_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/luma_key_matte.onnx");
    let o = Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args([
            "bench",
            "--resolutions",
            "96x64,128x72",
            "--frames",
            "4",
            "--warmup",
            "1",
            "--model",
            fixture.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "bench failed: {stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    let has = |system: &str, mode: &str, w: u64| {
        runs.iter()
            .any(|r| r["system"] == system && r["mode"] == mode && r["width"].as_u64() == Some(w))
    };
    for w in [96, 128] {
        assert!(has("ours:luma_key_matte", "bare", w));
        assert!(has("ours:luma_key_matte", "pipeline", w));
        assert!(has("coarse-mask", "bare", w));
        assert!(has("coarse-mask", "pipeline", w));
    }
    for r in runs {
        assert_eq!(r["frames"].as_u64(), Some(4), "{r}");
        assert!(r["fps"].as_f64().unwrap() > 0.0, "{r}");
        let stages: Vec<&str> = r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect();
        assert!(stages.contains(&"end to end"), "{r}");
        assert!(
            stages.contains(&"decode") && stages.contains(&"encode"),
            "{r}"
        );
        if r["system"] == "ours:luma_key_matte" {
            assert!(stages.contains(&"matting stage"), "{r}");
            for s in r["stages"].as_array().unwrap() {
                let (p50, p95, p99) = (
                    s["p50"].as_f64().unwrap(),
                    s["p95"].as_f64().unwrap(),
                    s["p99"].as_f64().unwrap(),
                );
                assert!(0.0 <= p50 && p50 <= p95 && p95 <= p99, "{s}");
            }
        }
    }
    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(md.contains("### 96×64") && md.contains("### 128×72"));
    assert!(md.contains("| ours:luma_key_matte"));
    if std::path::Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").is_file() {
        assert!(out.join("latency_stages_96x64.png").is_file());
        assert!(out.join("fps_vs_resolution.png").is_file());
    }
}

/// `bench --streams`: live streams fed in real time; every pushed frame is either rendered or
/// counted as dropped, and the report names the largest drop-free n.
#[test]
fn bench_streams_counts_every_frame_as_rendered_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let o = Command::new(env!("CARGO_BIN_EXE_slimmatte"))
        .args([
            "bench",
            "--streams",
            "2",
            "--stream-seconds",
            "2",
            "--resolutions",
            "96x64",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "bench --streams failed: {stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("streams.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs[0]["streams"].as_u64(), Some(1));
    for run in runs {
        let per = run["per_stream"].as_array().unwrap();
        assert_eq!(per.len() as u64, run["streams"].as_u64().unwrap());
        for s in per {
            let (pushed, rendered, dropped) = (
                s["pushed"].as_u64().unwrap(),
                s["rendered"].as_u64().unwrap(),
                s["dropped"].as_u64().unwrap(),
            );
            assert_eq!(pushed, 60, "2 s at 30 fps: {s}");
            assert_eq!(rendered + dropped, pushed, "{s}");
            assert!(rendered > 0, "{s}");
        }
    }
    let md = std::fs::read_to_string(out.join("streams.md")).unwrap();
    assert!(md.contains("| 96×64 | 1 |"), "{md}");
    assert!(md.contains("96×64: "), "{md}");
}
