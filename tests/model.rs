//! Model loading and validation against real files: the shipped model, broken files and
//! valid ONNX models of the wrong shape.

mod common;

use std::io::Write;

use slimmatte::model::ModelError;
use slimmatte::segment::PersonSegmenter;

fn load_err(path: &std::path::Path) -> ModelError {
    match PersonSegmenter::load(path, 1) {
        Ok(_) => panic!("{} loaded but must be refused", path.display()),
        Err(e) => e,
    }
}

#[test]
fn shipped_model_loads_with_its_resolution() {
    let seg = PersonSegmenter::load(&slimmatte::paths::default_segmentation_model(), 1).unwrap();
    assert_eq!(seg.resolution(), (256, 144));
    let square = slimmatte::paths::models_dir().join("selfie_segmentation.onnx");
    assert_eq!(
        PersonSegmenter::load(&square, 1).unwrap().resolution(),
        (256, 256)
    );
}

#[test]
fn missing_file_is_named() {
    let e = load_err(std::path::Path::new("/no/such/model.onnx"));
    assert!(matches!(e, ModelError::Missing { .. }), "{e:?}");
    assert!(e.to_string().contains("/no/such/model.onnx"), "{e}");
}

#[test]
fn empty_and_garbage_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.onnx");
    std::fs::File::create(&empty).unwrap();
    assert!(matches!(load_err(&empty), ModelError::Empty { .. }));

    let garbage = dir.path().join("garbage.onnx");
    let mut f = std::fs::File::create(&garbage).unwrap();
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    f.write_all(&bytes).unwrap();
    drop(f);
    let e = load_err(&garbage);
    assert!(matches!(e, ModelError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("garbage.onnx") && e.to_string().contains("not a valid ONNX"));

    // A truncated copy of the real model.
    let real = std::fs::read(slimmatte::paths::default_segmentation_model()).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &real[..real.len() / 3]).unwrap();
    assert!(matches!(load_err(&truncated), ModelError::Corrupt { .. }));
}

#[test]
fn wrong_output_shape_is_refused() {
    // Valid ONNX, input 'image' [1,3,64,64], output 'mask' [1,2,64,64].
    let e = load_err(&common::fixture("wrong_shape.onnx"));
    match &e {
        ModelError::WrongShape {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(*name, "mask");
            assert_eq!(expected, "[1, 1, *, *]");
            assert_eq!(found, "[1, 2, 64, 64]");
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }
}

#[test]
fn wrong_names_are_refused_listing_what_the_file_has() {
    let e = load_err(&common::fixture("wrong_names.onnx"));
    assert!(
        matches!(e, ModelError::MissingInput { name: "image", .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("'input'"), "{e}");
}

#[test]
fn nan_output_is_caught_at_inference() {
    let mut seg = PersonSegmenter::load(&common::fixture("nan_output.onnx"), 1).unwrap();
    let frame = common::astronaut(64, 36);
    let view = slimmatte::frame::rgba_view(&frame, 64, 36, 64 * 4).unwrap();
    let e = seg.run(&view).unwrap_err();
    assert!(
        matches!(e, ModelError::NonFinite { name: "mask", .. }),
        "{e:?}"
    );
}
