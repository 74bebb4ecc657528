//! Where the project's files are found at run time: the shipped models, the assets, and the
//! folders an install puts them in.
//!
//! Models are looked for, in this order, in
//! 1. `$SLIMMATTE_MODEL_DIR` (a folder holding the `.onnx` files),
//! 2. the XDG data dirs: `$XDG_DATA_HOME/slimmatte/models` (default
//!    `~/.local/share/slimmatte/models`), then each `$XDG_DATA_DIRS` entry's `slimmatte/models`
//!    (default `/usr/local/share`, `/usr/share`),
//! 3. next to the GStreamer plugin (registered by the plugin when it loads: an installed
//!    `<prefix>/lib/gstreamer-1.0/libgstslimmatte.so` finds `<prefix>/share/slimmatte/models`)
//!    and next to the executable (`<prefix>/bin/slimmatte` → `<prefix>/share/slimmatte/models`),
//! 4. the source checkout this build came from (`<checkout>/models`), so a developer's build
//!    runs without installing.
//!
//! A model that is in none of them is reported with every place searched
//! ([`ModelNotFound`], and the model loader's "does not exist" error).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// File name of the default coarse person-segmentation model (MediaPipe selfie segmentation,
/// landscape variant, 256×144, converted to ONNX).
pub const SEGMENTATION_MODEL: &str = "selfie_segmentation_landscape.onnx";

/// File name of the pose-landmark network whose person segmentation `trimapgen pose=true`
/// averages with the selfie mask (MediaPipe Pose "full", converted to ONNX).
pub const POSE_MODEL: &str = "pose_landmark_full.onnx";

/// File name of the person detector that finds the pose network's first region (MediaPipe's
/// BlazePose detector, converted to ONNX).
pub const POSE_DETECTOR_MODEL: &str = "pose_detection.onnx";

/// File name of the default matting network: the temporal student made by `training/` (the
/// pruned student with the previous frame's matte as a second input; see
/// `models/matting_student_temporal.md`).
pub const MATTING_MODEL: &str = "matting_student_temporal.onnx";

/// File name of the band net: the pruned student that makes the full-resolution matte from the
/// closed-form refinement's coarse solution (`slimmatte::band_net`, made by
/// `slimmatte-train band`; see `models/band_student.md`).
pub const BAND_MODEL: &str = "band_student.onnx";

/// File name of the single-frame pruned student (the temporal student's starting point; the
/// previous default).
pub const SINGLE_FRAME_MATTING_MODEL: &str = "matting_student.onnx";

/// Environment variable naming a folder of models, searched first.
pub const MODEL_DIR_ENV: &str = "SLIMMATTE_MODEL_DIR";

/// Name of the project's folder inside a data dir (`<data dir>/slimmatte/{models,lib}`).
pub const DATA_SUBDIR: &str = "slimmatte";

/// Folders registered at run time as "next to the plugin" (see [`add_plugin_location`]).
static PLUGIN_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The checkout this build came from: the last place models are looked for, and where the
/// developer tools (`tools/`, `.venv`) live.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Records the file a GStreamer plugin was loaded from, so that models installed next to it
/// are found: `<prefix>/lib/gstreamer-1.0/<plugin>` → `<prefix>/share/slimmatte`, and the
/// user plugin folder `~/.local/share/gstreamer-1.0/plugins/<plugin>` →
/// `~/.local/share/slimmatte`.
pub fn add_plugin_location(plugin_file: &Path) {
    let Some(dir) = plugin_file.parent() else {
        return;
    };
    let mut candidates = vec![dir.join(DATA_SUBDIR)];
    if let Some(up2) = dir.parent().and_then(Path::parent) {
        candidates.push(up2.join("share").join(DATA_SUBDIR));
        candidates.push(up2.join(DATA_SUBDIR));
    }
    let mut dirs = PLUGIN_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    for c in candidates {
        if !dirs.contains(&c) {
            dirs.push(c);
        }
    }
}

fn xdg_data_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(home) => dirs.push(PathBuf::from(home)),
        None => {
            if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                dirs.push(PathBuf::from(home).join(".local/share"));
            }
        }
    }
    let system = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    dirs.extend(
        system
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    );
    dirs
}

/// The installed data folders (`…/slimmatte`) in search order: XDG data dirs, next to the
/// plugin, next to the executable. Used for models (`models/`) and the ONNX Runtime library
/// (`lib/`).
pub fn data_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = xdg_data_dirs()
        .into_iter()
        .map(|d| d.join(DATA_SUBDIR))
        .collect();
    dirs.extend(
        PLUGIN_DIRS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    if let Ok(exe) = std::env::current_exe()
        && let Some(prefix) = exe.parent().and_then(Path::parent)
    {
        dirs.push(prefix.join("share").join(DATA_SUBDIR));
    }
    let mut unique = Vec::with_capacity(dirs.len());
    for d in dirs {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    unique
}

/// Every folder searched for models, in order (see the module docs).
pub fn model_search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV).filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    dirs.extend(data_dirs().into_iter().map(|d| d.join("models")));
    let checkout = project_root().join("models");
    if !dirs.contains(&checkout) {
        dirs.push(checkout);
    }
    dirs
}

/// A shipped model that is in none of the searched folders.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "model {name} was not found; looked in: {searched}. Set {MODEL_DIR_ENV}=<folder>, or \
     install the models with `bash scripts/install.sh`"
)]
pub struct ModelNotFound {
    pub name: String,
    pub searched: String,
}

/// The searched folders as one line, for error messages.
pub fn searched_dirs_line() -> String {
    join_dirs(&model_search_dirs())
}

fn join_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first `<dir>/<name>` that is a file, over `dirs`.
fn first_in(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The first `<dir>/<name>` that is a file, over [`model_search_dirs`].
pub fn find_model(name: &str) -> Result<PathBuf, ModelNotFound> {
    let dirs = model_search_dirs();
    first_in(&dirs, name).ok_or_else(|| ModelNotFound {
        name: name.into(),
        searched: join_dirs(&dirs),
    })
}

/// Where a shipped model is: the found file, or — when it is nowhere — the checkout's path,
/// whose loading then fails with the list of searched folders (the loader's message).
fn shipped_model(name: &str) -> PathBuf {
    first_in(&model_search_dirs(), name).unwrap_or_else(|| project_root().join("models").join(name))
}

/// The folder that holds the shipped matting model (where the other `matting_*.onnx` models
/// are looked for), or the checkout's `models/`.
pub fn models_dir() -> PathBuf {
    shipped_model(MATTING_MODEL)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| project_root().join("models"))
}

/// Path of the default segmentation model.
pub fn default_segmentation_model() -> PathBuf {
    shipped_model(SEGMENTATION_MODEL)
}

/// Path of the pose-landmark model (`trimapgen pose=true`).
pub fn default_pose_model() -> PathBuf {
    shipped_model(POSE_MODEL)
}

/// Path of the pose detector model (`trimapgen pose=true`).
pub fn default_pose_detector_model() -> PathBuf {
    shipped_model(POSE_DETECTOR_MODEL)
}

/// Path of the default matting model.
pub fn default_matting_model() -> PathBuf {
    shipped_model(MATTING_MODEL)
}

/// Path of the default band net.
pub fn default_band_model() -> PathBuf {
    shipped_model(BAND_MODEL)
}

/// Whether `path` names one of the shipped models (for the "searched" hint of a load error).
pub fn is_shipped_model_name(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        [
            MATTING_MODEL,
            BAND_MODEL,
            SEGMENTATION_MODEL,
            POSE_MODEL,
            POSE_DETECTOR_MODEL,
        ]
        .contains(&n)
    })
}

/// Path of a shipped asset: `<data dir>/assets/<name>` of an install, else the checkout's
/// `assets/<name>`.
pub fn asset(name: &str) -> PathBuf {
    data_dirs()
        .into_iter()
        .map(|d| d.join("assets").join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| project_root().join("assets").join(name))
}

/// Display helper: a path relative to the current directory when that is shorter.
pub fn display(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .filter(|cwd| cwd.parent().is_some()) // not from "/": every path would lose its root
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_location_maps_to_the_prefix_share_folder() {
        add_plugin_location(Path::new("/opt/x/lib/gstreamer-1.0/libgstslimmatte.so"));
        let dirs = data_dirs();
        assert!(
            dirs.contains(&PathBuf::from("/opt/x/share/slimmatte")),
            "{dirs:?}"
        );
        let models = model_search_dirs();
        assert!(models.contains(&PathBuf::from("/opt/x/share/slimmatte/models")));
        // The checkout is last.
        assert_eq!(models.last().unwrap(), &project_root().join("models"));
    }

    #[test]
    fn a_missing_model_names_every_searched_folder() {
        // The folders first: another test may register a plugin location meanwhile, and the
        // list only grows, so every folder listed before the search is in its message.
        let dirs = model_search_dirs();
        let e = find_model("no_such_model.onnx").unwrap_err();
        let msg = e.to_string();
        for d in dirs {
            assert!(msg.contains(&d.display().to_string()), "{msg}");
        }
        assert!(msg.contains(MODEL_DIR_ENV));
    }

    #[test]
    fn the_checkout_models_are_found() {
        assert!(find_model(MATTING_MODEL).unwrap().is_file());
        assert!(default_segmentation_model().is_file());
    }
}
