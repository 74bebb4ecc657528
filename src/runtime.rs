//! Locating and initialising the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: nothing is downloaded at build time and the library is
//! loaded when the first model is opened. ort allows exactly one environment per process, so it
//! is created once here and shared by every model, element and thread.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The onnxruntime release this project is tested with (the PyPI wheel `onnxruntime==1.32.0`).
pub const ORT_VERSION: &str = "1.32.0";

/// Default intra-op threads of each network (the elements' `threads`, the command line's
/// `--threads`): 0, the matting networks run on the process-wide pool ([`SHARED_POOL`]) and
/// the small segmentation network on its calling thread
/// ([`crate::segment::intra_threads`]).
pub const DEFAULT_THREADS: usize = 0;

/// The `threads` value that means "the process-wide pool": one ONNX Runtime thread pool
/// shared by every network of the process (both stages of every pipeline, every stream), sized
/// by [`pool_threads`], instead of one pool per network that would oversubscribe the cores.
pub const SHARED_POOL: usize = 0;

/// Environment variable that sizes the process-wide pool (default: the cores this process
/// may use).
pub const POOL_THREADS_ENV: &str = "SLIMMATTE_POOL_THREADS";

/// Threads of the process-wide pool: `$SLIMMATTE_POOL_THREADS` if set to a positive number,
/// else the cores available to this process (`std::thread::available_parallelism`, which
/// follows CPU affinity and cgroup quotas).
pub fn pool_threads() -> usize {
    std::env::var(POOL_THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Environment variable that names the library file explicitly.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Why the ONNX Runtime library could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "the ONNX Runtime library (libonnxruntime.so) was not found; looked in: {searched}. \
         Fix: run `bash scripts/setup.sh` (it creates .venv with onnxruntime=={ORT_VERSION}), or \
         `pip install onnxruntime=={ORT_VERSION}` and set {ORT_DYLIB_ENV}=<site-packages>/onnxruntime/capi/libonnxruntime.so.{ORT_VERSION}"
    )]
    NotFound { searched: String },
    #[error("{ORT_DYLIB_ENV} points to {path}, which does not exist")]
    EnvPathMissing { path: PathBuf },
    #[error(
        "failed to load the ONNX Runtime library {path}: {reason}. \
         This project needs onnxruntime {ORT_VERSION} (`pip install onnxruntime=={ORT_VERSION}`)"
    )]
    Load { path: PathBuf, reason: String },
}

static ENVIRONMENT: OnceLock<Result<(ort::environment::Environment, PathBuf), RuntimeError>> =
    OnceLock::new();

/// The process-wide ONNX Runtime environment, created on first use.
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    match ENVIRONMENT.get_or_init(init) {
        Ok((env, _)) => Ok(env),
        Err(e) => Err(e.clone()),
    }
}

/// The library file the environment was loaded from (after [`environment`] succeeded).
pub fn library_path() -> Option<&'static Path> {
    ENVIRONMENT
        .get()
        .and_then(|r| r.as_ref().ok())
        .map(|(_, p)| p.as_path())
}

fn init() -> Result<(ort::environment::Environment, PathBuf), RuntimeError> {
    let path = locate_library()?;
    let builder = ort::init_from(&path).map_err(|e| RuntimeError::Load {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let pool = pool_options(pool_threads()).map_err(|e| RuntimeError::Load {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let env = builder
        .with_name("slimmatte")
        .with_global_thread_pool(pool)
        .build()
        .map_err(|e| RuntimeError::Load {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    Ok((env, path))
}

/// How a `threads` setting runs, for reports: "one ONNX Runtime pool of N threads shared by
/// every network" (0) or "N intra-op threads per network"; either way the band net runs on its
/// own kernel where that is faster ([`crate::band_net::BandNet::load`]).
pub fn threads_label(threads: usize) -> String {
    const BAND_NET: &str = "the band net on its own kernel (2 threads) where that is faster";
    if threads == SHARED_POOL {
        format!(
            "segmentation on its calling thread, the other networks on one ONNX Runtime pool \
             of {} threads, {BAND_NET}",
            pool_threads()
        )
    } else {
        format!("{threads} intra-op threads per network, {BAND_NET}")
    }
}

/// The process-wide pool: `threads` intra-op threads (the calling thread counts as one), one
/// inter-op thread, no busy-waiting (spinning workers would steal the cores the other pipeline
/// stages need).
fn pool_options(threads: usize) -> ort::Result<ort::environment::GlobalThreadPoolOptions> {
    ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_spin_control(false)
}

/// Finds libonnxruntime: `$ORT_DYLIB_PATH`, then an installed copy
/// (`<data dir>/slimmatte/lib`, see [`crate::paths::data_dirs`]), then the project's `.venv`,
/// then user and system Python site-packages that have the `onnxruntime` wheel installed.
pub fn locate_library() -> Result<PathBuf, RuntimeError> {
    if let Some(p) = std::env::var_os(ORT_DYLIB_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(RuntimeError::EnvPathMissing { path: p })
        };
    }
    let mut searched = vec![format!("${ORT_DYLIB_ENV} (unset)")];
    // An installed copy (`scripts/install.sh`): <data dir>/slimmatte/lib/libonnxruntime.so.<v>.
    for dir in crate::paths::data_dirs() {
        let lib = dir.join("lib");
        let exact = lib.join(format!("libonnxruntime.so.{ORT_VERSION}"));
        searched.push(lib.display().to_string());
        if exact.is_file() {
            return Ok(exact);
        }
    }
    let roots = candidate_python_roots();
    for root in &roots {
        searched.push(root.display().to_string());
        if let Some(lib) = find_in_python_root(root) {
            return Ok(lib);
        }
    }
    Err(RuntimeError::NotFound {
        searched: searched.join(", "),
    })
}

/// Directories that may contain `lib/python3.*/site-packages` (a venv or a prefix).
fn candidate_python_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(home) = std::env::var_os("SLIMMATTE_HOME") {
        roots.push(PathBuf::from(home).join(".venv"));
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        roots.push(PathBuf::from(venv));
    }
    roots.push(crate::paths::project_root().join(".venv"));
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/<exe> or target/{debug,release}/deps/<exe> inside a checkout.
        for anc in exe.ancestors().skip(1).take(4) {
            roots.push(anc.join(".venv"));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(home).join(".local"));
    }
    roots.push(PathBuf::from("/usr/local"));
    roots.push(PathBuf::from("/usr"));
    roots.dedup();
    roots
}

fn find_in_python_root(root: &Path) -> Option<PathBuf> {
    let lib = root.join("lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    let mut pythons: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3"))
        })
        .collect();
    pythons.sort();
    for py in pythons {
        for site in ["site-packages", "dist-packages"] {
            let capi = py.join(site).join("onnxruntime").join("capi");
            let exact = capi.join(format!("libonnxruntime.so.{ORT_VERSION}"));
            if exact.is_file() {
                return Some(exact);
            }
            if let Ok(files) = std::fs::read_dir(&capi) {
                let mut libs: Vec<PathBuf> = files
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("libonnxruntime.so"))
                    })
                    .collect();
                libs.sort();
                if let Some(l) = libs.pop() {
                    return Some(l);
                }
            }
        }
    }
    None
}
