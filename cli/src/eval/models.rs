//! Which systems `eval` and `bench` compare: the matting models found, and RVM from the cache.

use std::path::{Path, PathBuf};

use crate::peers;

/// The systems a run compares, and the notes about those that are missing.
#[derive(Debug, Clone)]
pub struct Systems {
    /// Matting models (see [`matting_models`]).
    pub models: Vec<PathBuf>,
    /// Robust Video Matting, unless left out or not in the cache (see [`rvm_model`]).
    pub rvm: Option<PathBuf>,
    /// What was skipped or substituted, and why.
    pub notes: Vec<String>,
}

impl Systems {
    /// The matting models (`given`, else every models/matting_*.onnx, else the fixture) and RVM
    /// unless `no_rvm` (fetched first when `fetch_rvm`); prints every note to stderr.
    pub fn discover(given: &[PathBuf], no_rvm: bool, fetch_rvm: bool) -> Self {
        let mut notes = Vec::new();
        let (models, model_notes) = matting_models(given);
        notes.extend(model_notes);
        let rvm = if no_rvm {
            None
        } else {
            rvm_model(fetch_rvm, &mut notes)
        };
        for n in &notes {
            eprintln!("note: {n}");
        }
        Self { models, rvm, notes }
    }
}

/// Matting models to evaluate: the given ones, else models/matting_*.onnx, else the fixture.
pub fn matting_models(given: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut notes = Vec::new();
    if !given.is_empty() {
        let (ok, missing): (Vec<_>, Vec<_>) = given.iter().cloned().partition(|p| p.is_file());
        for m in missing {
            notes.push(format!("model {} not found, skipped", m.display()));
        }
        return (ok, notes);
    }
    let dir = slimmatte::paths::models_dir();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("matting_") && n.ends_with(".onnx"))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if found.is_empty() {
        let fixture = slimmatte::paths::project_root().join("tests/fixtures/luma_key_matte.onnx");
        notes.push(format!(
            "no models/matting_*.onnx yet: using the luma-key plumbing fixture {} (not a trained \
             matting net; its numbers say nothing about the student)",
            slimmatte::paths::display(&fixture)
        ));
        found.push(fixture);
    }
    (found, notes)
}

/// Short name of a model file: `matting_student.onnx` → `student`.
pub fn model_label(p: &Path) -> String {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    stem.strip_prefix("matting_").unwrap_or(stem).to_string()
}

/// Finds RVM in the cache, fetching it first when asked.
pub fn rvm_model(fetch: bool, notes: &mut Vec<String>) -> Option<PathBuf> {
    let path = peers::rvm_model_path();
    if !path.is_file() && fetch {
        let py = python();
        let script = slimmatte::paths::project_root().join("tools/peers_fetch.py");
        match std::process::Command::new(&py).arg(&script).status() {
            Ok(s) if s.success() => {}
            other => notes.push(format!("fetching RVM failed ({other:?})")),
        }
    }
    if path.is_file() {
        Some(path)
    } else {
        notes.push(format!(
            "RVM not in {} (run `.venv/bin/python tools/peers_fetch.py` or pass --fetch-rvm): \
             skipped",
            path.display()
        ));
        None
    }
}

/// The Python interpreter with the project's tools: `.venv/bin/python`, else `python3`.
pub fn python() -> PathBuf {
    let venv = slimmatte::paths::project_root().join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_labels() {
        assert_eq!(
            model_label(Path::new("models/matting_student.onnx")),
            "student"
        );
        assert_eq!(
            model_label(Path::new("x/luma_key_matte.onnx")),
            "luma_key_matte"
        );
    }
}
