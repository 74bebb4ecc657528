//! Where the project's shipped files live (models, assets).

use std::path::{Path, PathBuf};

/// File name of the default coarse person-segmentation model (MediaPipe selfie segmentation,
/// landscape variant, 256×144, converted to ONNX).
pub const SEGMENTATION_MODEL: &str = "selfie_segmentation_landscape.onnx";

/// The checkout this build came from. Used to find `models/` and `.venv` without configuration.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The models directory: `$SLIMMATTE_MODELS` if set, else `<checkout>/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("SLIMMATTE_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => project_root().join("models"),
    }
}

/// Path of the default segmentation model.
pub fn default_segmentation_model() -> PathBuf {
    models_dir().join(SEGMENTATION_MODEL)
}

/// Path of a file in the shipped `assets/` folder.
pub fn asset(name: &str) -> PathBuf {
    project_root().join("assets").join(name)
}

/// Display helper: a path relative to the current directory when that is shorter.
pub fn display(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}

/// File name of the default matting network (the pruned student made by `training/`).
pub const MATTING_MODEL: &str = "matting_student.onnx";

/// Path of the default matting model.
pub fn default_matting_model() -> PathBuf {
    models_dir().join(MATTING_MODEL)
}
