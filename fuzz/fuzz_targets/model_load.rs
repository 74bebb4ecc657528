//! Model loading and validation on arbitrary bytes: every input must give Ok or a typed
//! error, never a panic or a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("slimmatte-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("model.onnx");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    // Both contracts: the segmentation net and the matting net.
    let _ = slimmatte::segment::PersonSegmenter::load(&path, 1);
    let _ = slimmatte::matte::MatteRefiner::load(&path, 1);
});
