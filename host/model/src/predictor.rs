//! Serving a model: one ONNX Runtime session, checked against its manifest at
//! load, run once per tick on a batch holding every device pair.

use std::path::{Path, PathBuf};

use ndarray::ArrayView3;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::manifest::{FeatureSource, Manifest};
use crate::{Error, Result, runtime};

/// A loaded failure-prediction model and its manifest.
pub struct Predictor {
    session: Session,
    manifest: Manifest,
    path: PathBuf,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("path", &self.path)
            .field("model_version", &self.manifest.model_version)
            .finish_non_exhaustive()
    }
}

impl Predictor {
    /// Loads `model` (an `.onnx` file) and its manifest `<stem>.manifest.json`,
    /// finding the ONNX Runtime library as [`runtime::locate`] does.
    ///
    /// # Errors
    /// - [`Error::ManifestRead`], [`Error::ManifestParse`], [`Error::InvalidManifest`]
    ///   for a missing or bad manifest;
    /// - [`Error::ModelRead`] for a missing model file;
    /// - [`Error::RuntimeNotFound`] or [`Error::RuntimeLoad`] without a usable library;
    /// - [`Error::Ort`] if ONNX Runtime cannot parse the model;
    /// - [`Error::ModelMismatch`] listing, as expected vs found, every way the
    ///   model's input or output differs from the manifest.
    pub fn load(model: &Path) -> Result<Self> {
        // Manifest and file checks first: they need no library and give the
        // most specific message.
        let manifest = Manifest::load(&Manifest::path_for(model))?;
        let bytes = std::fs::read(model).map_err(|source| Error::ModelRead {
            path: model.to_path_buf(),
            source,
        })?;
        let env = runtime::environment()?;
        Self::from_parts(&env, model, &bytes, manifest)
    }

    /// As [`Predictor::load`] with the ONNX Runtime library at `library`
    /// (used only if no runtime is loaded in this process yet).
    ///
    /// # Errors
    /// As [`Predictor::load`].
    pub fn load_with_library(model: &Path, library: &Path) -> Result<Self> {
        let manifest = Manifest::load(&Manifest::path_for(model))?;
        let bytes = std::fs::read(model).map_err(|source| Error::ModelRead {
            path: model.to_path_buf(),
            source,
        })?;
        let env = runtime::environment_from(library)?;
        Self::from_parts(&env, model, &bytes, manifest)
    }

    fn from_parts(
        env: &ort::environment::Environment,
        path: &Path,
        bytes: &[u8],
        manifest: Manifest,
    ) -> Result<Self> {
        fn ort_err<R>(context: &str, path: &Path) -> impl FnOnce(ort::Error<R>) -> Error {
            let context = format!("{context} {}", path.display());
            // Builder errors carry the builder for recovery; keep the message and code only.
            move |e| Error::Ort {
                context,
                source: ort::Error::new_with_code(e.code(), e.message()),
            }
        }
        // One intra-op thread: the model is small, a batch is a few dozen rows,
        // and the control plane shares its cores with the data path.
        let session = Session::builder(env)
            .map_err(ort_err("creating a session for", path))?
            .with_intra_threads(1)
            .map_err(ort_err("configuring a session for", path))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort_err("configuring a session for", path))?
            .commit_from_memory(bytes)
            .map_err(ort_err("loading", path))?;
        let problems = check_signature(&session, &manifest);
        if !problems.is_empty() {
            return Err(Error::ModelMismatch {
                path: path.to_path_buf(),
                problems,
            });
        }
        tracing::info!(
            model = %path.display(),
            version = %manifest.model_version,
            window = manifest.window,
            features = manifest.features.len(),
            "failure-prediction model loaded"
        );
        Ok(Self {
            session,
            manifest,
            path: path.to_path_buf(),
        })
    }

    /// The model's manifest.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The model file this predictor was loaded from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Failure probabilities for a batch `[batch, window, features]` already
    /// built by [`Manifest::input`], one per row, in one model call.
    ///
    /// # Errors
    /// [`Error::InputShape`] for a batch of the wrong shape, [`Error::Ort`] if
    /// the run fails, [`Error::OutputShape`] if the model returns anything but
    /// `[batch, 1]`.
    pub fn predict(&mut self, batch: ArrayView3<'_, f32>) -> Result<Vec<f32>> {
        let (rows, window, features) = batch.dim();
        if window != self.manifest.window || features != self.manifest.features.len() {
            return Err(Error::InputShape {
                found: batch.shape().to_vec(),
                window: self.manifest.window,
                features: self.manifest.features.len(),
            });
        }
        if rows == 0 {
            return Ok(Vec::new());
        }
        let run_err = |context: &'static str| {
            move |source: ort::Error| Error::Ort {
                context: context.to_owned(),
                source,
            }
        };
        // ONNX Runtime wants a contiguous buffer; a standard-layout view is
        // passed without a copy.
        let owned;
        let batch = if batch.is_standard_layout() {
            batch
        } else {
            owned = batch.as_standard_layout().into_owned();
            owned.view()
        };
        let input = TensorRef::from_array_view(batch).map_err(run_err("wrapping the input"))?;
        let outputs = self
            .session
            .run(ort::inputs![self.manifest.input.as_str() => input])
            .map_err(run_err("running the model"))?;
        let output = outputs
            .get(self.manifest.output.as_str())
            .ok_or_else(|| Error::Ort {
                context: format!("reading output {:?}", self.manifest.output),
                source: ort::Error::new("output missing from the run's results"),
            })?;
        let (shape, data) = output
            .try_extract_tensor::<f32>()
            .map_err(run_err("reading the output"))?;
        if shape.len() != 2 || shape[0] != rows as i64 || shape[1] != 1 {
            return Err(Error::OutputShape {
                found: shape.to_vec(),
                batch: rows,
            });
        }
        Ok(data.to_vec())
    }

    /// Builds the input from raw telemetry with [`Manifest::input`] and runs
    /// [`Predictor::predict`]: one probability per source.
    ///
    /// # Errors
    /// [`Error::MissingMetric`] from building the input, then as [`Predictor::predict`].
    pub fn predict_sources(&mut self, sources: &[&dyn FeatureSource]) -> Result<Vec<f32>> {
        let batch = self.manifest.input(sources)?;
        self.predict(batch.view())
    }
}

/// Every difference between the session's signature and the manifest, as
/// "expected vs found" sentences.
fn check_signature(session: &Session, manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let inputs: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    if inputs != [manifest.input.as_str()] {
        problems.push(format!(
            "inputs: manifest expects exactly [{:?}], model has {inputs:?}",
            manifest.input
        ));
    }
    if outputs != [manifest.output.as_str()] {
        problems.push(format!(
            "outputs: manifest expects exactly [{:?}], model has {outputs:?}",
            manifest.output
        ));
    }
    let features = manifest.features.len();
    // Dimensions: None = must be dynamic (the batch), Some(n) = n or dynamic.
    let want_in: [(&str, Option<usize>); 3] = [
        ("batch", None),
        ("window", Some(manifest.window)),
        ("features", Some(features)),
    ];
    let want_out: [(&str, Option<usize>); 2] = [("batch", None), ("probability", Some(1))];
    if let Some(outlet) = session.inputs().iter().find(|o| o.name() == manifest.input) {
        check_tensor(
            &mut problems,
            &format!("input {:?}", manifest.input),
            outlet.dtype(),
            &want_in,
        );
    }
    if let Some(outlet) = session
        .outputs()
        .iter()
        .find(|o| o.name() == manifest.output)
    {
        check_tensor(
            &mut problems,
            &format!("output {:?}", manifest.output),
            outlet.dtype(),
            &want_out,
        );
    }
    problems
}

fn check_tensor(
    problems: &mut Vec<String>,
    what: &str,
    dtype: &ValueType,
    want: &[(&str, Option<usize>)],
) {
    let ValueType::Tensor { ty, shape, .. } = dtype else {
        problems.push(format!("{what}: expected a float32 tensor, found {dtype}"));
        return;
    };
    if *ty != TensorElementType::Float32 {
        problems.push(format!("{what}: expected element type float32, found {ty}"));
    }
    let names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    if shape.len() != want.len() {
        problems.push(format!(
            "{what}: expected rank {} [{}], found rank {} {:?}",
            want.len(),
            names.join(", "),
            shape.len(),
            &shape[..]
        ));
        return;
    }
    for ((name, expected), &found) in want.iter().zip(shape.iter()) {
        match expected {
            // Every device pair of a tick goes in one call, so the batch
            // dimension must accept any size.
            None if found >= 0 => problems.push(format!(
                "{what}: {name} dimension must be dynamic, found fixed size {found}"
            )),
            Some(n) if found >= 0 && found != *n as i64 => problems.push(format!(
                "{what}: {name} dimension expected {n} (from the manifest), found {found}"
            )),
            _ => {}
        }
    }
}
