//! Loading ONNX models with ONNX Runtime and checking that they are the model the caller expects.
//!
//! Every failure names the file and the problem: missing, empty, not an ONNX model, inputs or
//! outputs with other names or shapes, or non-finite numbers coming out of inference.
//!
//! A spec may list optional inputs (a temporal matting net's `prev_alpha`): a model without them
//! still loads; one that has them must give them the spec's shape, and is run with
//! [`Model::run_with_extra`].

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::runtime::{self, RuntimeError};

/// One expected dimension of a model input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// Must be exactly this size.
    Fixed(i64),
    /// Any size, fixed in the file or dynamic (`-1`).
    Any,
}

/// The name and shape a model's input or output must have (all tensors are float32).
#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub name: &'static str,
    pub dims: Vec<Dim>,
}

impl TensorSpec {
    pub fn new(name: &'static str, dims: &[Dim]) -> Self {
        Self {
            name,
            dims: dims.to_vec(),
        }
    }
}

/// What a caller requires of a model: one float32 input and one float32 output, and the
/// optional float32 inputs it can feed as well.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub input: TensorSpec,
    /// Inputs a model may have besides `input`: checked (type and shape) when present, a model
    /// without them still loads. Any other input is refused at load.
    pub extra_inputs: Vec<TensorSpec>,
    pub output: TensorSpec,
    /// Outputs required besides `output` (checked at load like it), read by
    /// [`Model::run_outputs`].
    pub extra_outputs: Vec<TensorSpec>,
}

/// A model file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("model file {path} does not exist{hint}")]
    Missing { path: PathBuf, hint: String },
    #[error("model file {path} cannot be read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("model file {path} is empty")]
    Empty { path: PathBuf },
    #[error("model file {path} is not a valid ONNX model: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("model {path} has no input named '{name}' (its inputs: {found})")]
    MissingInput {
        path: PathBuf,
        name: &'static str,
        found: String,
    },
    #[error(
        "model {path} has an input '{name}' that the caller cannot feed (it feeds: {expected})"
    )]
    UnexpectedInput {
        path: PathBuf,
        name: String,
        expected: String,
    },
    #[error("model {path} has no output named '{name}' (its outputs: {found})")]
    MissingOutput {
        path: PathBuf,
        name: &'static str,
        found: String,
    },
    #[error("model {path}: '{name}' has shape {found}, expected {expected}")]
    WrongShape {
        path: PathBuf,
        name: &'static str,
        expected: String,
        found: String,
    },
    #[error("model {path}: '{name}' is {found}, expected a float32 tensor")]
    WrongType {
        path: PathBuf,
        name: &'static str,
        found: String,
    },
    #[error("model {path}: inference failed: {reason}")]
    Inference { path: PathBuf, reason: String },
    #[error("model {path}: output '{name}' contains NaN or infinite values")]
    NonFinite { path: PathBuf, name: &'static str },
}

/// An ONNX model opened with ONNX Runtime whose input and output were checked against a spec.
pub struct Model {
    session: Session,
    path: PathBuf,
    spec: ModelSpec,
    input_shape: Vec<i64>,
    /// The declared shape of each of `spec.extra_inputs` the file has (`None`: absent).
    extra_shapes: Vec<Option<Vec<i64>>>,
    output_shape: Vec<i64>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("input_shape", &self.input_shape)
            .field(
                "extra_inputs",
                &self.present_extra_inputs().collect::<Vec<_>>(),
            )
            .field("output_shape", &self.output_shape)
            .finish()
    }
}

fn shape_string(dims: &[i64]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| {
            if *d < 0 {
                "?".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn spec_string(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Any => "*".to_string(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// For a shipped model's name: where the shipped models are looked for.
fn missing_hint(path: &Path) -> String {
    if crate::paths::is_shipped_model_name(path) {
        format!(
            "; the shipped models are looked for in: {} (set {}=<folder> or install them with \
             `bash scripts/install.sh`)",
            crate::paths::searched_dirs_line(),
            crate::paths::MODEL_DIR_ENV
        )
    } else {
        String::new()
    }
}

impl Model {
    /// Opens `path` with `threads` intra-op threads of its own (0 = on the process-wide pool,
    /// [`runtime::SHARED_POOL`]) and checks it against `spec`.
    pub fn load(path: &Path, spec: &ModelSpec, threads: usize) -> Result<Self, ModelError> {
        let path_buf = path.to_path_buf();
        let meta = std::fs::metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::Missing {
                    path: path_buf.clone(),
                    hint: missing_hint(path),
                }
            } else {
                ModelError::Unreadable {
                    path: path_buf.clone(),
                    reason: e.to_string(),
                }
            }
        })?;
        if !meta.is_file() {
            return Err(ModelError::Unreadable {
                path: path_buf,
                reason: "not a regular file".into(),
            });
        }
        if meta.len() == 0 {
            return Err(ModelError::Empty { path: path_buf });
        }
        let bytes = std::fs::read(path).map_err(|e| ModelError::Unreadable {
            path: path_buf.clone(),
            reason: e.to_string(),
        })?;
        let env = runtime::environment()?;
        let session = open_session(env, &bytes, threads).map_err(|e| ModelError::Corrupt {
            path: path_buf.clone(),
            reason: e.to_string(),
        })?;
        let input_shape = check_outlet(&path_buf, session.inputs(), &spec.input, true)?;
        let extra_shapes = spec
            .extra_inputs
            .iter()
            .map(|extra| {
                session
                    .inputs()
                    .iter()
                    .any(|o| o.name() == extra.name)
                    .then(|| check_outlet(&path_buf, session.inputs(), extra, true))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Every input ONNX Runtime lists must be fed on each run: refuse one the caller cannot
        // feed now rather than fail on every frame.
        let fed = || std::iter::once(&spec.input).chain(&spec.extra_inputs);
        if let Some(unknown) = session
            .inputs()
            .iter()
            .find(|o| fed().all(|t| t.name != o.name()))
        {
            return Err(ModelError::UnexpectedInput {
                path: path_buf,
                name: unknown.name().to_string(),
                expected: fed()
                    .map(|t| format!("'{}'", t.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let output_shape = check_outlet(&path_buf, session.outputs(), &spec.output, false)?;
        for extra in &spec.extra_outputs {
            check_outlet(&path_buf, session.outputs(), extra, false)?;
        }
        Ok(Self {
            session,
            path: path_buf,
            spec: spec.clone(),
            input_shape,
            extra_shapes,
            output_shape,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The input shape as declared in the file (`-1` for dynamic dimensions).
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// The output shape as declared in the file (`-1` for dynamic dimensions).
    pub fn output_shape(&self) -> &[i64] {
        &self.output_shape
    }

    /// Whether the model has the input `name`: the spec's `input`, or one of its
    /// `extra_inputs` that the file declares.
    pub fn has_input(&self, name: &str) -> bool {
        self.spec.input.name == name || self.extra_input_shape(name).is_some()
    }

    /// The shape declared in the file (`-1` for dynamic dimensions) of the optional input
    /// `name`, if the model has it.
    pub fn extra_input_shape(&self, name: &str) -> Option<&[i64]> {
        self.spec
            .extra_inputs
            .iter()
            .zip(&self.extra_shapes)
            .find(|(t, _)| t.name == name)
            .and_then(|(_, shape)| shape.as_deref())
    }

    /// The names of the optional inputs the model has.
    fn present_extra_inputs(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.spec
            .extra_inputs
            .iter()
            .zip(&self.extra_shapes)
            .filter(|(_, shape)| shape.is_some())
            .map(|(t, _)| t.name)
    }

    /// Runs the model on `input` (row-major, `shape`) and copies the output into `output`,
    /// which must have exactly the output's element count. Returns the output shape.
    ///
    /// A model with optional inputs needs [`run_with_extra`](Self::run_with_extra).
    pub fn run(
        &mut self,
        input: &[f32],
        shape: &[usize],
        output: &mut [f32],
    ) -> Result<Vec<usize>, ModelError> {
        self.run_with_extra(input, shape, &[], output)
    }

    /// Runs the model on `input` (row-major, `shape`) and copies its outputs into `outputs`:
    /// the spec's `output` first, then its `extra_outputs` in order, each slice exactly the
    /// output's element count.
    pub fn run_outputs(
        &mut self,
        input: &[f32],
        shape: &[usize],
        outputs: &mut [&mut [f32]],
    ) -> Result<(), ModelError> {
        let expected = 1 + self.spec.extra_outputs.len();
        if outputs.len() != expected {
            return Err(ModelError::Inference {
                path: self.path.clone(),
                reason: format!(
                    "the caller asked for {} outputs, the model has {expected}",
                    outputs.len()
                ),
            });
        }
        self.run_all(input, shape, &[], outputs).map(|_| ())
    }

    /// Like [`run`](Self::run), also feeding the optional inputs in `extra` as
    /// `(name, data, shape)`. Every optional input the model has must be fed, and only those.
    pub fn run_with_extra(
        &mut self,
        input: &[f32],
        shape: &[usize],
        extra: &[(&str, &[f32], &[usize])],
        output: &mut [f32],
    ) -> Result<Vec<usize>, ModelError> {
        self.run_all(input, shape, extra, &mut [output])
    }

    /// One run: `input` and the optional inputs `extra` fed, the first `outputs.len()` of the
    /// spec's outputs (`output`, then `extra_outputs`) copied out. Returns `output`'s shape.
    fn run_all(
        &mut self,
        input: &[f32],
        shape: &[usize],
        extra: &[(&str, &[f32], &[usize])],
        outputs: &mut [&mut [f32]],
    ) -> Result<Vec<usize>, ModelError> {
        let path = &self.path;
        let inference = |reason: String| ModelError::Inference {
            path: path.clone(),
            reason,
        };
        for (name, _, _) in extra {
            if self.extra_input_shape(name).is_none() {
                return Err(inference(format!(
                    "the caller fed '{name}', which the model has no input for"
                )));
            }
        }
        if let Some(unfed) = self
            .present_extra_inputs()
            .find(|name| extra.iter().all(|(n, _, _)| n != name))
        {
            return Err(inference(format!("input '{unfed}' was not fed")));
        }
        let mut inputs = Vec::with_capacity(1 + extra.len());
        for (name, data, shape) in
            std::iter::once((self.spec.input.name, input, shape)).chain(extra.iter().copied())
        {
            let tensor = TensorRef::from_array_view((shape.to_vec(), data))
                .map_err(|e| inference(format!("input '{name}': {e}")))?;
            inputs.push((name, tensor));
        }
        let results = self
            .session
            .run(inputs)
            .map_err(|e| inference(e.to_string()))?;
        let names = std::iter::once(self.spec.output.name)
            .chain(self.spec.extra_outputs.iter().map(|t| t.name));
        let mut main_shape = Vec::new();
        for (k, (name, out)) in names.zip(outputs.iter_mut()).enumerate() {
            let shape = copy_output(path, &results, name, out)?;
            if k == 0 {
                main_shape = shape;
            }
        }
        Ok(main_shape)
    }
}

/// Copies the output `name` of a run into `out`, which must have its element count; refuses
/// non-finite values. Returns the output's shape.
fn copy_output(
    path: &Path,
    outputs: &ort::session::SessionOutputs<'_>,
    name: &'static str,
    out: &mut [f32],
) -> Result<Vec<usize>, ModelError> {
    let inference = |reason: String| ModelError::Inference {
        path: path.to_path_buf(),
        reason,
    };
    let (shape, data) = outputs[name]
        .try_extract_tensor::<f32>()
        .map_err(|e| inference(e.to_string()))?;
    if data.len() != out.len() {
        return Err(ModelError::WrongShape {
            path: path.to_path_buf(),
            name,
            expected: format!("{} values", out.len()),
            found: format!("{} ({} values)", shape_string(shape), data.len()),
        });
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::NonFinite {
            path: path.to_path_buf(),
            name,
        });
    }
    out.copy_from_slice(data);
    Ok(shape.iter().map(|&d| d as usize).collect())
}

/// The project's ONNX Runtime session options in `env`: full graph optimisation and, with
/// `threads` = [`runtime::SHARED_POOL`] (0), the process-wide thread pool; any other value
/// gives the session its own pool of `threads` intra-op threads, without busy-waiting. Every
/// network is opened with these, [`Model`]s and the peers that drive `ort` directly alike;
/// commit the builder from a file or from memory.
pub fn session_builder(
    env: &ort::environment::Environment,
    threads: usize,
) -> ort::Result<SessionBuilder> {
    let builder = Session::builder(env)?.with_optimization_level(GraphOptimizationLevel::Level3)?;
    if threads == runtime::SHARED_POOL {
        return Ok(builder);
    }
    Ok(builder
        .with_independent_thread_pool()?
        .with_intra_threads(threads)?
        // Busy-waiting worker threads would steal the cores the other pipeline stages need.
        .with_intra_op_spinning(false)?)
}

fn open_session(
    env: &ort::environment::Environment,
    bytes: &[u8],
    threads: usize,
) -> ort::Result<Session> {
    session_builder(env, threads)?.commit_from_memory(bytes)
}

fn check_outlet(
    path: &Path,
    outlets: &[ort::value::Outlet],
    spec: &TensorSpec,
    is_input: bool,
) -> Result<Vec<i64>, ModelError> {
    let Some(outlet) = outlets.iter().find(|o| o.name() == spec.name) else {
        let found = outlets
            .iter()
            .map(|o| format!("'{}'", o.name()))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(if is_input {
            ModelError::MissingInput {
                path: path.to_path_buf(),
                name: spec.name,
                found,
            }
        } else {
            ModelError::MissingOutput {
                path: path.to_path_buf(),
                name: spec.name,
                found,
            }
        });
    };
    let ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
        return Err(ModelError::WrongType {
            path: path.to_path_buf(),
            name: spec.name,
            found: format!("{:?}", outlet.dtype()),
        });
    };
    if *ty != TensorElementType::Float32 {
        return Err(ModelError::WrongType {
            path: path.to_path_buf(),
            name: spec.name,
            found: format!("a {ty:?} tensor"),
        });
    }
    let dims: &[i64] = shape;
    let matches = dims.len() == spec.dims.len()
        && dims.iter().zip(&spec.dims).all(|(d, s)| match s {
            Dim::Any => true,
            Dim::Fixed(n) => d == n,
        });
    if !matches {
        return Err(ModelError::WrongShape {
            path: path.to_path_buf(),
            name: spec.name,
            expected: spec_string(&spec.dims),
            found: shape_string(dims),
        });
    }
    Ok(dims.to_vec())
}
