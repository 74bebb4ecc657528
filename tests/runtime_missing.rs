//! A wrong ONNX Runtime location gives an error that says what to do, not a panic.
//! (Its own test binary: the runtime is initialised once per process.)

use slimmatte::model::ModelError;
use slimmatte::segment::PersonSegmenter;

#[test]
fn bad_ort_dylib_path_is_a_clear_error() {
    // SAFETY: the only test in this binary; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so") };
    let err =
        PersonSegmenter::load(&slimmatte::paths::default_segmentation_model(), 1).unwrap_err();
    assert!(matches!(err, ModelError::Runtime(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("ORT_DYLIB_PATH") && msg.contains("/nonexistent/libonnxruntime.so"),
        "{msg}"
    );
    // Once failed, later loads fail the same way instead of panicking.
    let again =
        PersonSegmenter::load(&slimmatte::paths::default_segmentation_model(), 1).unwrap_err();
    assert!(matches!(again, ModelError::Runtime(_)));
}
