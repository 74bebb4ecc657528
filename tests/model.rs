//! Model loading and validation against real files: the shipped model, broken files and
//! valid ONNX models of the wrong shape.

mod common;

use std::io::Write;

use slimmatte::model::{Model, ModelError, ModelSpec};
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

/// Optional inputs: a model with `prev_alpha` loads with the matting spec, reports it, and must
/// be fed it; a caller whose spec does not list it refuses the model at load.
#[test]
fn optional_inputs_are_reported_fed_and_otherwise_refused() {
    let path = common::fixture("prev_copy_matte.onnx");
    let spec = slimmatte::matte::spec();
    let mut model = Model::load(&path, &spec, 1).unwrap();
    assert!(model.has_input("input") && model.has_input("prev_alpha"));
    assert!(!model.has_input("other"));
    assert_eq!(
        model.extra_input_shape("prev_alpha"),
        Some(&[1, 1, -1, -1][..])
    );

    let (w, h) = (16, 16);
    let input = vec![0.25f32; 4 * w * h];
    let prev: Vec<f32> = (0..w * h).map(|i| i as f32 / (w * h) as f32).collect();
    let mut out = vec![0.0f32; w * h];
    let shape = model
        .run_with_extra(
            &input,
            &[1, 4, h, w],
            &[("prev_alpha", &prev, &[1, 1, h, w])],
            &mut out,
        )
        .unwrap();
    assert_eq!(shape, [1, 1, h, w]);
    assert_eq!(out, prev, "prev_copy_matte outputs prev_alpha");

    // Not fed, or fed something it has no input for: an error naming the input.
    let e = model.run(&input, &[1, 4, h, w], &mut out).unwrap_err();
    assert!(e.to_string().contains("'prev_alpha' was not fed"), "{e}");
    let e = model
        .run_with_extra(
            &input,
            &[1, 4, h, w],
            &[
                ("prev_alpha", &prev, &[1, 1, h, w]),
                ("prev2", &prev, &[1, 1, h, w]),
            ],
            &mut out,
        )
        .unwrap_err();
    assert!(e.to_string().contains("'prev2'"), "{e}");

    // A spec without the optional input: the model has an input nobody would feed.
    let single = ModelSpec {
        extra_inputs: Vec::new(),
        ..spec.clone()
    };
    let e = Model::load(&path, &single, 1).unwrap_err();
    assert!(
        matches!(&e, ModelError::UnexpectedInput { name, .. } if name == "prev_alpha"),
        "{e:?}"
    );
    assert!(e.to_string().contains("prev_copy_matte.onnx"), "{e}");

    // Single-input models load with the spec that allows the optional input, without it.
    let luma = Model::load(&common::fixture("luma_key_matte.onnx"), &spec, 1).unwrap();
    assert!(luma.has_input("input") && !luma.has_input("prev_alpha"));
    assert_eq!(luma.extra_input_shape("prev_alpha"), None);
}

#[test]
fn a_wrong_shaped_optional_input_is_refused_at_load() {
    let e = Model::load(
        &common::fixture("prev_wrong_shape.onnx"),
        &slimmatte::matte::spec(),
        1,
    )
    .unwrap_err();
    match &e {
        ModelError::WrongShape {
            name,
            expected,
            found,
            path,
        } => {
            assert_eq!(*name, "prev_alpha");
            assert_eq!(expected, "[1, 1, *, *]");
            assert_eq!(found, "[1, 2, ?, ?]");
            assert!(path.ends_with("prev_wrong_shape.onnx"));
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }
}
