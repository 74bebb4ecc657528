//! Frame processing on arbitrary sizes, strides and contents: trimap generation, matting with
//! the luma-key fixture network, and every background mode. Invariants are asserted.
#![no_main]

use std::sync::{LazyLock, Mutex};

use libfuzzer_sys::fuzz_target;
use slimmatte::composite::{Background, Compositor};
use slimmatte::frame::rgba_view_mut;
use slimmatte::matte::{MatteRefiner, MatteSettings};
use slimmatte::trimap::TrimapBuilder;

static REFINER: LazyLock<Mutex<MatteRefiner>> = LazyLock::new(|| {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/luma_key_matte.onnx");
    Mutex::new(MatteRefiner::load(&path, 1).expect("fixture model"))
});

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let w = 1 + data[0] as usize % 64;
    let h = 1 + data[1] as usize % 64;
    let pad = data[2] as usize % 8;
    let mode = data[3] % 4;
    let radius = (data[4] % 16) as f32;
    let working = data[5] as u32;
    let stride = w * 4 + pad;
    let body = &data[6..];
    let mut frame: Vec<u8> = (0..stride * h)
        .map(|i| body.get(i % body.len().max(1)).copied().unwrap_or(0))
        .collect();

    // Trimap from a mask made of the red channel.
    let mask: Vec<f32> = (0..w * h)
        .map(|i| frame[(i / w) * stride + (i % w) * 4] as f32 / 255.0)
        .collect();
    let mut trimap = vec![0u8; w * h];
    TrimapBuilder::new().build(&mask, w, h, 0.5, radius, &mut trimap);
    for (i, t) in trimap.iter().enumerate() {
        assert!(*t == 0 || *t == 128 || *t == 255);
        frame[(i / w) * stride + (i % w) * 4 + 3] = *t;
    }

    let before = frame.clone();
    let mut view = rgba_view_mut(&mut frame, w, h, stride).expect("valid layout");
    let settings = MatteSettings {
        working_size: working,
        margin: 4,
        smoothing: 0.0,
        ..MatteSettings::default()
    };
    let mut refiner = REFINER.lock().unwrap();
    refiner.reset();
    refiner.process(&mut view, &settings).expect("fixture model runs");
    drop(refiner);
    for y in 0..h {
        for x in 0..w {
            let i = y * stride + x * 4;
            match before[i + 3] {
                0 => assert_eq!(frame[i + 3], 0),
                255 => assert_eq!(frame[i + 3], 255),
                _ => {}
            }
        }
    }

    let bg = match mode {
        0 => Background::Transparent,
        1 => Background::Color([data[0], data[1], data[2]]),
        _ => Background::Blur { sigma: 1.0 + radius },
    };
    let mut view = rgba_view_mut(&mut frame, w, h, stride).expect("valid layout");
    Compositor::new(bg).apply(&mut view);
    // Row padding is never written.
    for y in 0..h {
        assert_eq!(&frame[y * stride + w * 4..y * stride + stride], &before[y * stride + w * 4..y * stride + stride]);
    }
});
