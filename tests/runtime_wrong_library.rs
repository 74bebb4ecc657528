//! A library that is not ONNX Runtime (or a broken one) gives a clear error naming the file
//! and the fix, not a panic. (Its own test binary: the runtime is initialised once per process.)

use slimmatte::model::ModelError;
use slimmatte::segment::PersonSegmenter;

#[test]
fn a_shared_library_that_is_not_onnxruntime_is_refused() {
    let not_ort = "/lib/x86_64-linux-gnu/libz.so.1";
    assert!(
        std::path::Path::new(not_ort).is_file(),
        "zlib is part of the base system"
    );
    // SAFETY: the only test in this binary; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", not_ort) };
    let err =
        PersonSegmenter::load(&slimmatte::paths::default_segmentation_model(), 1).unwrap_err();
    assert!(matches!(err, ModelError::Runtime(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("failed to load the ONNX Runtime library"),
        "{msg}"
    );
    assert!(
        msg.contains(not_ort) && msg.contains("onnxruntime==1.32.0"),
        "{msg}"
    );
}
