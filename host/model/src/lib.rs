//! The failure predictor: model manifest, GRU served by ONNX Runtime (ort, load-dynamic), batched across devices.
//!
//! A model is a pair of files: `<stem>.onnx` with input `[batch, window, features]`
//! float32 and output `[batch, 1]` failure probability, and the sidecar
//! [`Manifest`] `<stem>.manifest.json` naming the features in order and their
//! scaling. [`Manifest::input`] is the single place raw telemetry becomes model
//! input, used by both the server ([`Predictor`]) and the trainer.
//!
//! Any model honouring the contract can be dropped in; [`Predictor::load`]
//! refuses one that does not, with every mismatch listed, so the caller can log
//! it and keep deciding without the predictor.

#![forbid(unsafe_code)]

use std::path::PathBuf;

pub mod history;
pub mod manifest;
pub mod predictor;
pub mod runtime;

pub use history::History;
pub use manifest::{Device, Feature, FeatureSource, Manifest, Relation, Transform};
pub use predictor::Predictor;

/// The model shipped with Umbra (`host/model/default/umbra-gru.onnx`, its
/// manifest beside it): what `umbra run` and `umbra model eval` use when
/// no model is given.
#[must_use]
pub fn default_model_path() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("default/umbra-gru.onnx")
}

/// Errors of the model layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No ONNX Runtime shared library was found. The operator's environment is at
    /// fault: set `ORT_DYLIB_PATH` or install onnxruntime in the venv.
    #[error(
        "ONNX Runtime library not found: set ORT_DYLIB_PATH to libonnxruntime.so (searched: {})",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    RuntimeNotFound {
        /// Every location that was looked at, in order.
        searched: Vec<PathBuf>,
    },
    /// The ONNX Runtime library exists but could not be loaded (wrong file,
    /// too old a version, missing dependencies). The operator's environment is at fault.
    #[error("cannot load the ONNX Runtime library {} (check ORT_DYLIB_PATH): {source}", path.display())]
    RuntimeLoad {
        /// The library that was tried.
        path: PathBuf,
        /// Why loading failed.
        #[source]
        source: ort::LoadDynamicError,
    },
    /// ONNX Runtime reported an error while creating a session or running the
    /// model; usually a corrupt or unsupported model file.
    #[error("ONNX Runtime: {context}: {source}")]
    Ort {
        /// What was being done.
        context: String,
        /// The runtime's error.
        #[source]
        source: ort::Error,
    },
    /// The model file does not exist or cannot be read.
    #[error("cannot read model {}: {source}", path.display())]
    ModelRead {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest file does not exist or cannot be read.
    #[error("cannot read manifest {}: {source}", path.display())]
    ManifestRead {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest cannot be written.
    #[error("cannot write manifest {}: {source}", path.display())]
    ManifestWrite {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not a manifest JSON document: bad syntax, a missing or
    /// unknown field, or a wrong type. Whoever wrote the manifest is at fault.
    #[error("manifest {}is not valid JSON for format 1: {source}", display_path(path.as_ref()))]
    ManifestParse {
        /// The manifest file, when read from one.
        path: Option<PathBuf>,
        /// The parse error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest parses but has problems; every one is listed.
    #[error("manifest {}is invalid:\n  - {}", display_path(path.as_ref()), problems.join("\n  - "))]
    InvalidManifest {
        /// The manifest file, when read from one.
        path: Option<PathBuf>,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The model's inputs or outputs do not match its manifest; every mismatch
    /// is listed as expected vs found. The model or its manifest is at fault.
    #[error("model {} does not match its manifest:\n  - {}", path.display(), problems.join("\n  - "))]
    ModelMismatch {
        /// The model file.
        path: PathBuf,
        /// Every mismatch found.
        problems: Vec<String>,
    },
    /// A feature source does not record a metric the manifest needs. The caller
    /// (telemetry collection) is at fault.
    #[error("batch row {row}: no series for feature {feature} ({device} metric {metric:?})")]
    MissingMetric {
        /// Batch row of the source.
        row: usize,
        /// The feature's name.
        feature: String,
        /// The device it reads.
        device: Device,
        /// The metric it reads.
        metric: String,
    },
    /// An input batch has the wrong shape for this model. The caller is at fault.
    #[error(
        "input shape {found:?} does not match the model: expected [batch, {window}, {features}]"
    )]
    InputShape {
        /// The shape passed.
        found: Vec<usize>,
        /// The manifest's window.
        window: usize,
        /// The manifest's feature count.
        features: usize,
    },
    /// The model returned an output of an unexpected shape at run time.
    #[error("model output has shape {found:?}, expected [{batch}, 1]")]
    OutputShape {
        /// The shape returned.
        found: Vec<i64>,
        /// The batch size of the call.
        batch: usize,
    },
}

fn display_path(path: Option<&PathBuf>) -> String {
    path.map(|p| format!("{} ", p.display()))
        .unwrap_or_default()
}

impl Error {
    /// Attaches a file path to manifest errors that were produced without one.
    pub(crate) fn at(self, file: &std::path::Path) -> Self {
        match self {
            Self::ManifestParse { path: None, source } => Self::ManifestParse {
                path: Some(file.to_path_buf()),
                source,
            },
            Self::InvalidManifest {
                path: None,
                problems,
            } => Self::InvalidManifest {
                path: Some(file.to_path_buf()),
                problems,
            },
            other => other,
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
