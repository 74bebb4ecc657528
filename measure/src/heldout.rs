//! What training must never see: the photographs `eval` builds its synthetic stills and moving
//! sequences from, and opencv-doc's `alphamat` example (a real photo with a ground-truth
//! matte). The training crate's data engine skips every file named here, so `eval` measures
//! the shipped nets on material they were not fitted to.

use std::path::Path;

/// scikit-image sample photographs that `eval`'s synthetic stills and sequences are made of
/// (foreground textures, backgrounds and the astronaut as the moving person).
pub const EVAL_PHOTOS: &[&str] = &[
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "astronaut.png",
    "hubble_deep_field.jpg",
];

/// opencv-doc's alpha-matting example: image, trimap and ground-truth alpha of a real photo.
pub const ALPHAMAT_DIR: &str = "/usr/share/doc/opencv-doc/examples/alphamat";

/// Whether `path` is held out from training: one of [`EVAL_PHOTOS`] (by file name, wherever it
/// lies), anything under [`ALPHAMAT_DIR`] or in a folder named `alphamat`, or one of the
/// pictures the project ships in `assets/` (the CLI's fallbacks for eval's photographs).
pub fn is_held_out(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if EVAL_PHOTOS.contains(&name) {
        return true;
    }
    if path.starts_with(ALPHAMAT_DIR) {
        return true;
    }
    path.components().any(|c| {
        let c = c.as_os_str();
        c == "alphamat" || c == "assets"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_material_is_held_out_and_other_photos_are_not() {
        assert!(is_held_out(Path::new(
            "/x/.venv/lib/python3.11/site-packages/skimage/data/astronaut.png"
        )));
        assert!(is_held_out(Path::new("grass.png")));
        assert!(is_held_out(
            &Path::new(ALPHAMAT_DIR).join("image/plant.jpg")
        ));
        assert!(is_held_out(Path::new("/work/main/assets/astronaut.jpg")));
        assert!(!is_held_out(Path::new(
            "/usr/share/doc/opencv-doc/examples/data/baboon.jpg"
        )));
        assert!(!is_held_out(Path::new("skimage/data/camera.png")));
        // A name that merely contains a held-out one is not held out.
        assert!(!is_held_out(Path::new("data/grass.png.bak")));
    }
}
