//! Helpers shared by the core integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// scikit-image's astronaut photograph stretched to `w × h`, packed RGBA.
pub fn astronaut(w: u32, h: u32) -> Vec<u8> {
    let img = image::load_from_memory(include_bytes!("../../assets/astronaut.jpg"))
        .unwrap()
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgba8();
    img.into_raw()
}
