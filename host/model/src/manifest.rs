//! The sidecar manifest next to a model file: feature order, scaling, window, tick and horizon.
//!
//! A model `<stem>.onnx` is described by `<stem>.manifest.json`:
//!
//! ```json
//! {
//!   "format": 1,
//!   "model_version": "gru-2025-01-01",
//!   "input": "window",
//!   "output": "p_fail",
//!   "window": 40,
//!   "tick_ms": 500,
//!   "horizon_ms": 30000,
//!   "threshold": 0.5,
//!   "features": [
//!     { "name": "primary.cpu", "device": "primary", "metric": "cpu",
//!       "transform": "raw", "mean": 0.4, "scale": 0.2 }
//!   ],
//!   "training": { "epochs": 12 }
//! }
//! ```
//!
//! The value fed to the model for a feature at a tick is
//! `(transform(x) - mean) / scale`, with `x` the raw metric value at that tick;
//! a relative transform also subtracts the shadow's value at that tick
//! (`*-minus-shadow`) or the series' mean over the `baseline_ticks` before the
//! window (`*-vs-baseline`, with `"baseline_ticks"` at the top level).
//! [`Manifest::input`] is the only place that computes it, so the server and the
//! trainer can never scale differently.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::{Array3, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference.
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The only manifest format this crate reads and writes.
pub const FORMAT: u32 = 1;

/// Which device of a primary/shadow pair a feature is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The device carrying traffic.
    Primary,
    /// The standby device that takes over on failover.
    Shadow,
}

impl Device {
    /// The name used in manifests and feature names (`primary`, `shadow`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Shadow => "shadow",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "primary" => Some(Self::Primary),
            "shadow" => Some(Self::Shadow),
            _ => None,
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transform applied to a raw metric value before standardisation.
///
/// `raw` and `log1p` look at one series, tick by tick. The other four are
/// *relative*: they compare the base transform (`raw` or `log1p`) of a value
/// with something the model could not see in the window alone.
///
/// - `*-minus-shadow`: the primary's value minus the shadow's, tick by tick
///   (each side carried forward on its own). Load that reaches both devices,
///   a traffic surge, cancels; a fault of the primary does not. Only for
///   primary features.
/// - `*-vs-baseline`: the value minus the mean of the same series over the
///   [`Manifest::baseline_ticks`] ticks before the window (present samples
///   only): how far the window sits from its recent level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transform {
    /// The value as measured.
    Raw,
    /// `ln(1 + max(x, 0))`, for heavy-tailed rates and counts. Negative inputs
    /// are clamped to 0 first so a glitching counter cannot produce NaN.
    Log1p,
    /// `x(primary) - x(shadow)`.
    RawMinusShadow,
    /// `log1p(primary) - log1p(shadow)`: the log of their ratio.
    Log1pMinusShadow,
    /// `x - mean(x over the baseline ticks before the window)`.
    RawVsBaseline,
    /// `log1p(x) - mean(log1p(x) over the baseline ticks before the window)`.
    Log1pVsBaseline,
}

/// Every transform, in the order error messages list them.
const TRANSFORMS: [Transform; 6] = [
    Transform::Raw,
    Transform::Log1p,
    Transform::RawMinusShadow,
    Transform::Log1pMinusShadow,
    Transform::RawVsBaseline,
    Transform::Log1pVsBaseline,
];

/// What a transform compares a value with, after its base transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Nothing: the value itself.
    Absolute,
    /// The shadow's value of the same metric at the same tick.
    MinusShadow,
    /// The series' mean over the baseline ticks before the window.
    VsBaseline,
}

impl Transform {
    /// The name used in manifests (`raw`, `log1p`, `raw-minus-shadow`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Log1p => "log1p",
            Self::RawMinusShadow => "raw-minus-shadow",
            Self::Log1pMinusShadow => "log1p-minus-shadow",
            Self::RawVsBaseline => "raw-vs-baseline",
            Self::Log1pVsBaseline => "log1p-vs-baseline",
        }
    }

    /// The per-value part: [`Transform::Raw`] or [`Transform::Log1p`].
    #[must_use]
    pub fn base(self) -> Self {
        match self {
            Self::Raw | Self::RawMinusShadow | Self::RawVsBaseline => Self::Raw,
            Self::Log1p | Self::Log1pMinusShadow | Self::Log1pVsBaseline => Self::Log1p,
        }
    }

    /// What the base-transformed value is compared with.
    #[must_use]
    pub fn relation(self) -> Relation {
        match self {
            Self::Raw | Self::Log1p => Relation::Absolute,
            Self::RawMinusShadow | Self::Log1pMinusShadow => Relation::MinusShadow,
            Self::RawVsBaseline | Self::Log1pVsBaseline => Relation::VsBaseline,
        }
    }

    /// Applies the base transform to one raw value (the relative transforms
    /// then subtract the shadow's or the baseline's, see [`Manifest::input`]).
    #[must_use]
    pub fn apply(self, x: f64) -> f64 {
        match self.base() {
            Self::Log1p => x.max(0.0).ln_1p(),
            _ => x,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        TRANSFORMS.into_iter().find(|t| t.as_str() == s)
    }
}

/// One model input feature: where its value comes from and how it is scaled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feature {
    /// Unique name, conventionally `<device>.<metric>` (`primary.cpu`).
    pub name: String,
    /// The device the metric is read from.
    pub device: Device,
    /// The metric name as recorded in telemetry (`cpu`, `rx-bps`, ...).
    pub metric: String,
    /// Transform applied before standardisation.
    pub transform: Transform,
    /// Mean of the transformed value over the training data.
    pub mean: f64,
    /// Standard deviation (or another positive spread) of the transformed value.
    pub scale: f64,
}

impl Feature {
    /// The scaled value fed to the model for a raw value `x` of an absolute
    /// feature (`raw`, `log1p`): `(transform(x) - mean) / scale`.
    #[must_use]
    pub fn scale_value(&self, x: f64) -> f32 {
        self.scale_transformed(self.transform.apply(x))
    }

    /// The scaled value fed to the model for an already transformed value
    /// `v` (for a relative feature, the difference): `(v - mean) / scale`.
    #[must_use]
    pub fn scale_transformed(&self, v: f64) -> f32 {
        // Computed in f64 and rounded once, so every caller gets the same f32.
        ((v - self.mean) / self.scale) as f32
    }
}

/// The sidecar manifest of a failure-prediction model.
///
/// Build one in code (the trainer does) or read one with [`Manifest::load`];
/// either way [`Manifest::validate`] lists every problem before it is used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Manifest format, always [`FORMAT`].
    pub format: u32,
    /// Free-form version of the model, logged with every prediction batch.
    pub model_version: String,
    /// Name of the model's single input, shaped `[batch, window, features]` float32.
    pub input: String,
    /// Name of the model's single output, shaped `[batch, 1]` float32: the
    /// probability of failure within `horizon_ms`.
    pub output: String,
    /// Number of ticks in one input window.
    pub window: usize,
    /// Milliseconds between two ticks of the window.
    pub tick_ms: u64,
    /// The model predicts failure within this many milliseconds after the window's last tick.
    pub horizon_ms: u64,
    /// Default alarm probability in `[0, 1]`.
    pub threshold: f64,
    /// Ticks before the window whose mean is the baseline of the
    /// `*-vs-baseline` features; 0 (and absent from the file) when no feature
    /// uses one. A server keeps this many ticks of history besides the window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub baseline_ticks: usize,
    /// Input features, in the order of the model's last input dimension.
    pub features: Vec<Feature>,
    /// Free-form record of how the model was trained (data, seed, metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The manifest as written on disk, before validation: device and transform are
/// plain strings here so that an unknown one is reported with every other
/// problem rather than as a lone parse error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    format: u32,
    model_version: String,
    input: String,
    output: String,
    window: usize,
    tick_ms: u64,
    horizon_ms: u64,
    threshold: f64,
    #[serde(default)]
    baseline_ticks: usize,
    features: Vec<FeatureFile>,
    #[serde(default)]
    training: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureFile {
    name: String,
    device: String,
    metric: String,
    transform: String,
    mean: f64,
    scale: f64,
}

/// Raw telemetry of one device pair, read by [`Manifest::input`].
///
/// Implemented by the server over its recent-history buffers and by the
/// trainer over recorded traces.
pub trait FeatureSource {
    /// Raw values of `metric` on `device`, one per tick, oldest first, ending
    /// with the tick the prediction is made at. `None` in the slice is a
    /// missing sample; returning `None` means the metric is not recorded at all,
    /// which [`Manifest::input`] reports as an error.
    ///
    /// The slice may be longer than the window: values before the window are
    /// used only to carry a value forward into leading missing ticks.
    fn series(&self, device: Device, metric: &str) -> Option<&[Option<f64>]>;

    /// The count and the sum of `base.apply(x)` over the present samples
    /// `x` of `series(device, metric)[from..to]`, for a source that keeps
    /// running sums (a server's [`crate::History`] does, so a
    /// `*-vs-baseline` feature does not walk `baseline_ticks` samples each
    /// tick). `None`, the default: [`Manifest::input`] adds them up itself.
    /// Both give the same mean up to float rounding.
    fn present_sum(
        &self,
        _device: Device,
        _metric: &str,
        _base: Transform,
        _from: usize,
        _to: usize,
    ) -> Option<(usize, f64)> {
        None
    }
}

impl Manifest {
    /// The manifest path for a model path: `<dir>/<stem>.manifest.json` for `<dir>/<stem>.onnx`.
    #[must_use]
    pub fn path_for(model: &Path) -> PathBuf {
        model.with_extension("manifest.json")
    }

    /// Reads and validates a manifest file.
    ///
    /// # Errors
    /// [`Error::ManifestRead`] if the file cannot be read, [`Error::ManifestParse`]
    /// if it is not a manifest JSON document (syntax, missing or unknown field,
    /// wrong type), [`Error::InvalidManifest`] listing every problem otherwise.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ManifestRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| e.at(path))
    }

    /// Parses and validates a manifest from JSON text.
    ///
    /// # Errors
    /// As [`Manifest::load`], without a path in the error.
    pub fn parse(text: &str) -> Result<Self> {
        let file: ManifestFile = serde_json::from_str(text)
            .map_err(|source| Error::ManifestParse { path: None, source })?;
        let mut problems = Vec::new();
        let mut features = Vec::with_capacity(file.features.len());
        for (i, f) in file.features.into_iter().enumerate() {
            let device = Device::parse(&f.device);
            if device.is_none() {
                problems.push(format!(
                    "features[{i}] ({}): unknown device {:?}, expected \"primary\" or \"shadow\"",
                    f.name, f.device
                ));
            }
            let transform = Transform::parse(&f.transform);
            if transform.is_none() {
                problems.push(format!(
                    "features[{i}] ({}): unknown transform {:?}, expected one of {}",
                    f.name,
                    f.transform,
                    TRANSFORMS.map(Transform::as_str).join(", ")
                ));
            }
            features.push(Feature {
                name: f.name,
                // Placeholders keep indices aligned so later checks still run;
                // the problem is already recorded and the manifest is rejected.
                device: device.unwrap_or(Device::Primary),
                metric: f.metric,
                transform: transform.unwrap_or(Transform::Raw),
                mean: f.mean,
                scale: f.scale,
            });
        }
        let manifest = Self {
            format: file.format,
            model_version: file.model_version,
            input: file.input,
            output: file.output,
            window: file.window,
            tick_ms: file.tick_ms,
            horizon_ms: file.horizon_ms,
            threshold: file.threshold,
            baseline_ticks: file.baseline_ticks,
            features,
            training: file.training,
        };
        problems.extend(manifest.validate());
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(Error::InvalidManifest {
                path: None,
                problems,
            })
        }
    }

    /// Every problem with this manifest; empty when it is usable.
    #[must_use]
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.format != FORMAT {
            problems.push(format!("format: expected {FORMAT}, found {}", self.format));
        }
        if self.model_version.trim().is_empty() {
            problems.push("model_version: must not be empty".to_owned());
        }
        if self.input.is_empty() {
            problems.push("input: the model input name must not be empty".to_owned());
        }
        if self.output.is_empty() {
            problems.push("output: the model output name must not be empty".to_owned());
        }
        if !self.input.is_empty() && self.input == self.output {
            problems.push(format!("input and output: both are named {:?}", self.input));
        }
        if self.window < 1 {
            problems.push("window: must be at least 1 tick".to_owned());
        }
        if self.tick_ms < 1 {
            problems.push("tick_ms: must be at least 1".to_owned());
        }
        if self.horizon_ms < 1 {
            problems.push("horizon_ms: must be at least 1".to_owned());
        }
        if !(self.threshold.is_finite() && (0.0..=1.0).contains(&self.threshold)) {
            problems.push(format!(
                "threshold: must be a probability in [0, 1], found {}",
                self.threshold
            ));
        }
        if self.features.is_empty() {
            problems.push("features: at least one feature is required".to_owned());
        }
        let mut names = HashSet::new();
        let mut sources = HashSet::new();
        for (i, f) in self.features.iter().enumerate() {
            let at = format!("features[{i}] ({})", f.name);
            if f.name.trim().is_empty() {
                problems.push(format!("features[{i}]: name must not be empty"));
            } else if !names.insert(f.name.as_str()) {
                problems.push(format!("{at}: duplicate feature name"));
            }
            if f.metric.trim().is_empty() {
                problems.push(format!("{at}: metric must not be empty"));
            } else if !sources.insert((f.device, f.metric.as_str(), f.transform)) {
                problems.push(format!(
                    "{at}: {}.{} with transform {} already appears as another feature",
                    f.device,
                    f.metric,
                    f.transform.as_str()
                ));
            }
            match f.transform.relation() {
                Relation::MinusShadow if f.device != Device::Primary => problems.push(format!(
                    "{at}: transform {} compares the primary with the shadow, so the device must be \"primary\", found {:?}",
                    f.transform.as_str(),
                    f.device.as_str()
                )),
                Relation::VsBaseline if self.baseline_ticks == 0 => problems.push(format!(
                    "{at}: transform {} needs baseline_ticks >= 1, found 0",
                    f.transform.as_str()
                )),
                _ => {}
            }
            if !f.mean.is_finite() {
                problems.push(format!("{at}: mean must be finite, found {}", f.mean));
            }
            if !(f.scale.is_finite() && f.scale > 0.0) {
                problems.push(format!(
                    "{at}: scale must be finite and > 0, found {}",
                    f.scale
                ));
            }
        }
        problems
    }

    /// Serialises the manifest as pretty JSON.
    ///
    /// # Errors
    /// [`Error::InvalidManifest`] if [`Manifest::validate`] finds problems:
    /// an invalid manifest is never written.
    pub fn to_json(&self) -> Result<String> {
        let problems = self.validate();
        if !problems.is_empty() {
            return Err(Error::InvalidManifest {
                path: None,
                problems,
            });
        }
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|source| Error::ManifestParse { path: None, source })?;
        text.push('\n');
        Ok(text)
    }

    /// Validates and writes the manifest to `path`.
    ///
    /// # Errors
    /// [`Error::InvalidManifest`] as [`Manifest::to_json`]; [`Error::ManifestWrite`]
    /// if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = self.to_json().map_err(|e| e.at(path))?;
        std::fs::write(path, text).map_err(|source| Error::ManifestWrite {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Number of input features (the model input's last dimension).
    #[must_use]
    pub fn feature_count(&self) -> usize {
        self.features.len()
    }

    /// Builds the model input `[sources.len(), window, features]` from raw telemetry,
    /// one batch row per source.
    ///
    /// For each feature the window is the last `window` ticks of the source's
    /// series. A missing sample (`None`, or a non-finite value) takes the
    /// latest earlier present value of the same series, looking back before the
    /// window if needed (carry forward). A tick with no earlier present value
    /// at all, including ticks before the series starts when it is shorter
    /// than the window, takes the feature's `mean`, which scales to 0: the
    /// neutral input. A relative feature is neutral where either of its two
    /// terms is: a `*-minus-shadow` tick where one device has no value yet,
    /// a `*-vs-baseline` window with no present sample in the
    /// `baseline_ticks` before it (the source holds too little history).
    ///
    /// # Errors
    /// [`Error::MissingMetric`] if a source does not record a metric a feature needs.
    pub fn input(&self, sources: &[&dyn FeatureSource]) -> Result<Array3<f32>> {
        let mut out = Array3::<f32>::zeros((sources.len(), self.window, self.features.len()));
        for (row, (source, view)) in sources.iter().zip(out.outer_iter_mut()).enumerate() {
            self.fill_row(row, *source, view)?;
        }
        Ok(out)
    }

    /// Fills one `[window, features]` batch row; see [`Manifest::input`].
    ///
    /// # Errors
    /// [`Error::MissingMetric`] if the source does not record a metric a feature
    /// needs; `row` is only used in that error.
    ///
    /// # Panics
    /// If `out` is not `[window, features]`: a bug in the caller.
    pub fn fill_row(
        &self,
        row: usize,
        source: &dyn FeatureSource,
        mut out: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        assert_eq!(
            out.dim(),
            (self.window, self.features.len()),
            "fill_row: output view must be [window, features]"
        );
        for (j, feature) in self.features.iter().enumerate() {
            let values = self.transformed(row, feature, source)?;
            for (t, v) in values.into_iter().enumerate() {
                out[[t, j]] = v.map_or(0.0, |v| feature.scale_transformed(v));
            }
        }
        Ok(())
    }

    /// The transformed, unscaled values of `feature` over the window ending
    /// at the source's last tick, oldest first; `None` where the input is
    /// neutral (see [`Manifest::input`]). What the trainer fits a feature's
    /// `mean` and `scale` on.
    ///
    /// # Errors
    /// [`Error::MissingMetric`] if the source does not record a metric the
    /// feature needs; `row` is only used in that error.
    pub fn transformed(
        &self,
        row: usize,
        feature: &Feature,
        source: &dyn FeatureSource,
    ) -> Result<Vec<Option<f64>>> {
        let series = |device: Device| {
            source
                .series(device, &feature.metric)
                .ok_or_else(|| Error::MissingMetric {
                    row,
                    feature: feature.name.clone(),
                    device,
                    metric: feature.metric.clone(),
                })
        };
        let base = feature.transform.base();
        let own = series(feature.device)?;
        let mut values = carried(own, self.window);
        for v in &mut values {
            *v = v.map(|x| base.apply(x));
        }
        match feature.transform.relation() {
            Relation::Absolute => {}
            Relation::MinusShadow => {
                let shadow = carried(series(Device::Shadow)?, self.window);
                for (v, s) in values.iter_mut().zip(shadow) {
                    *v = match (*v, s) {
                        (Some(p), Some(s)) => Some(p - base.apply(s)),
                        _ => None,
                    };
                }
            }
            Relation::VsBaseline => {
                let start = own.len().saturating_sub(self.window);
                let from = start.saturating_sub(self.baseline_ticks);
                let (n, sum) = source
                    .present_sum(feature.device, &feature.metric, base, from, start)
                    .unwrap_or_else(|| {
                        own[from..start]
                            .iter()
                            .filter_map(present)
                            .fold((0, 0.0), |(n, sum), x| (n + 1, sum + base.apply(x)))
                    });
                if n == 0 {
                    values.fill(None);
                } else {
                    let mean = sum / n as f64;
                    for v in &mut values {
                        *v = v.map(|x| x - mean);
                    }
                }
            }
        }
        Ok(values)
    }
}

/// A sample that counts: present and finite.
pub(crate) fn present(v: &Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// The last `window` ticks of `series`, missing samples carried forward from
/// the latest earlier present value (looking back before the window too);
/// `None` where there is none, including padding before a short series.
fn carried(series: &[Option<f64>], window: usize) -> Vec<Option<f64>> {
    let len = series.len();
    // Ticks of the window that fall before the series starts are padding.
    let pad = window.saturating_sub(len);
    let start = len.saturating_sub(window);
    let mut last = series[..start].iter().rev().find_map(present);
    (0..window)
        .map(|t| {
            if t < pad {
                None
            } else {
                if let Some(v) = present(&series[start + t - pad]) {
                    last = Some(v);
                }
                last
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            model_version: "test-1".to_owned(),
            input: "window".to_owned(),
            output: "p_fail".to_owned(),
            window: 4,
            tick_ms: 500,
            horizon_ms: 30_000,
            threshold: 0.5,
            baseline_ticks: 0,
            features: vec![
                Feature {
                    name: "primary.cpu".to_owned(),
                    device: Device::Primary,
                    metric: "cpu".to_owned(),
                    transform: Transform::Raw,
                    mean: 0.5,
                    scale: 0.25,
                },
                Feature {
                    name: "shadow.rx-bps".to_owned(),
                    device: Device::Shadow,
                    metric: "rx-bps".to_owned(),
                    transform: Transform::Log1p,
                    mean: 1.0,
                    scale: 2.0,
                },
            ],
            training: None,
        }
    }

    #[derive(Default)]
    struct Series(HashMap<(Device, &'static str), Vec<Option<f64>>>);

    impl FeatureSource for Series {
        fn series(&self, device: Device, metric: &str) -> Option<&[Option<f64>]> {
            self.0
                .iter()
                .find(|((d, m), _)| *d == device && *m == metric)
                .map(|(_, v)| v.as_slice())
        }
    }

    #[test]
    fn json_round_trip_preserves_every_field() {
        let mut m = manifest();
        let mut training = serde_json::Map::new();
        training.insert("seed".to_owned(), 7.into());
        m.training = Some(training);
        let text = m.to_json().unwrap();
        assert!(text.contains("\"transform\": \"log1p\""), "{text}");
        assert!(text.contains("\"device\": \"shadow\""), "{text}");
        assert_eq!(Manifest::parse(&text).unwrap(), m);

        // Means and scales come back bit-identical (no 1-ulp drift), so the
        // trainer and the server scale features the same way.
        for (mean, scale) in [
            (0.11894112871959804, 0.1),
            (1.0 / 3.0, 0.017295082596649827),
        ] {
            m.features[0].mean = mean;
            m.features[0].scale = scale;
            let back = Manifest::parse(&m.to_json().unwrap()).unwrap();
            assert_eq!(back.features[0].mean.to_bits(), mean.to_bits());
            assert_eq!(back.features[0].scale.to_bits(), scale.to_bits());
        }
    }

    #[test]
    fn path_for_sits_next_to_the_model() {
        assert_eq!(
            Manifest::path_for(Path::new("/m/gru.onnx")),
            PathBuf::from("/m/gru.manifest.json")
        );
    }

    #[test]
    fn validation_reports_every_problem_at_once() {
        let text = r#"{
            "format": 2, "model_version": "", "input": "x", "output": "x",
            "window": 0, "tick_ms": 0, "horizon_ms": 1000, "threshold": 1.5,
            "features": [
              {"name": "a", "device": "tertiary", "metric": "cpu", "transform": "sqrt", "mean": 0, "scale": 0},
              {"name": "a", "device": "primary", "metric": "mem", "transform": "raw", "mean": 0, "scale": -1}
            ]
        }"#;
        let Err(Error::InvalidManifest { problems, .. }) = Manifest::parse(text) else {
            panic!("expected InvalidManifest");
        };
        let all = problems.join("\n");
        for needle in [
            "format: expected 1, found 2",
            "model_version",
            "both are named \"x\"",
            "window",
            "tick_ms",
            "threshold",
            "unknown device \"tertiary\"",
            "unknown transform \"sqrt\"",
            "features[0] (a): scale must be finite and > 0, found 0",
            "features[1] (a): duplicate feature name",
            "features[1] (a): scale must be finite and > 0, found -1",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 11, "{all}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v: serde_json::Value =
            serde_json::from_str(&manifest().to_json().unwrap()).unwrap();
        v["extra"] = 1.into();
        let err = Manifest::parse(&v.to_string()).unwrap_err();
        assert!(matches!(err, Error::ManifestParse { .. }), "{err}");
        assert!(err.to_string().contains("extra"), "{err}");

        let mut v: serde_json::Value =
            serde_json::from_str(&manifest().to_json().unwrap()).unwrap();
        v["features"][0]["unit"] = "%".into();
        assert!(Manifest::parse(&v.to_string()).is_err());
    }

    #[test]
    fn invalid_manifest_is_never_written() {
        let mut m = manifest();
        m.features[1].scale = f64::NAN;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.manifest.json");
        let err = m.save(&path).unwrap_err();
        assert!(err.to_string().contains("scale"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn input_scales_carries_forward_and_pads() {
        let m = manifest();
        let mut s = Series::default();
        // Six ticks; the window is the last four. Tick 2 (first in window) is
        // missing and takes tick 1's value from before the window.
        s.0.insert(
            (Device::Primary, "cpu"),
            vec![Some(0.0), Some(1.0), None, Some(0.75), None, Some(f64::NAN)],
        );
        // Shorter than the window: one padded tick, then a missing tick with no
        // earlier value, then two values.
        s.0.insert(
            (Device::Shadow, "rx-bps"),
            vec![None, Some(0.0), Some(-5.0)],
        );
        let x = m.input(&[&s, &s]).unwrap();
        assert_eq!(x.dim(), (2, 4, 2));
        let cpu: Vec<f32> = (0..4).map(|t| x[[0, t, 0]]).collect();
        assert_eq!(cpu, vec![2.0, 1.0, 1.0, 1.0]);
        let rx: Vec<f32> = (0..4).map(|t| x[[1, t, 1]]).collect();
        // ln(1 + 0) = 0 -> (0 - 1) / 2; -5 clamps to 0 first.
        assert_eq!(rx, vec![0.0, 0.0, -0.5, -0.5]);
        let e2 = std::f64::consts::E.powi(2) - 1.0;
        assert!((m.features[1].scale_value(e2) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn relative_transforms_subtract_the_shadow_or_the_baseline() {
        let mut m = manifest();
        m.window = 2;
        m.baseline_ticks = 3;
        let feature = |name: &str, metric: &str, transform| Feature {
            name: name.to_owned(),
            device: Device::Primary,
            metric: metric.to_owned(),
            transform,
            mean: 0.5,
            scale: 2.0,
        };
        m.features = vec![
            feature("cpu-minus-shadow", "cpu", Transform::RawMinusShadow),
            feature("cpu-vs-baseline", "cpu", Transform::RawVsBaseline),
            feature("rx-vs-baseline", "rx", Transform::Log1pVsBaseline),
        ];
        assert_eq!(m.validate(), Vec::<String>::new());
        let text = m.to_json().unwrap();
        assert!(
            text.contains("\"transform\": \"raw-minus-shadow\""),
            "{text}"
        );
        assert!(text.contains("\"baseline_ticks\": 3"), "{text}");
        assert_eq!(Manifest::parse(&text).unwrap(), m);

        let mut s = Series::default();
        // Baseline ticks 1..=3 (tick 0 is older than the baseline), window 4..=5.
        s.0.insert(
            (Device::Primary, "cpu"),
            vec![Some(9.0), Some(1.0), None, Some(3.0), Some(4.0), None],
        );
        s.0.insert(
            (Device::Shadow, "cpu"),
            vec![None, None, None, None, None, Some(1.5)],
        );
        let e = std::f64::consts::E;
        s.0.insert(
            (Device::Primary, "rx"),
            vec![None, None, None, None, Some(e - 1.0), Some(e * e - 1.0)],
        );
        let x = m.input(&[&s]).unwrap();
        let col = |j: usize| -> Vec<f32> { (0..2).map(|t| x[[0, t, j]]).collect() };
        // No shadow value yet at tick 4: neutral; then (4 - 1.5 - 0.5) / 2.
        assert_eq!(col(0), vec![0.0, 1.0]);
        // Baseline mean (1 + 3) / 2 = 2; ticks 4 and 5 (carried) are 4.
        assert_eq!(col(1), vec![0.75, 0.75]);
        // No rx sample before the window: the whole window is neutral.
        assert_eq!(col(2), vec![0.0, 0.0]);
    }

    #[test]
    fn relative_transforms_are_checked() {
        let mut m = manifest();
        m.features[1].transform = Transform::Log1pMinusShadow;
        m.features[0].transform = Transform::RawVsBaseline;
        let all = m.validate().join("\n");
        assert!(
            all.contains("features[1] (shadow.rx-bps): transform log1p-minus-shadow compares"),
            "{all}"
        );
        assert!(
            all.contains(
                "features[0] (primary.cpu): transform raw-vs-baseline needs baseline_ticks >= 1"
            ),
            "{all}"
        );
        // A manifest without baseline_ticks (every older one) still parses.
        let old = manifest().to_json().unwrap();
        assert!(!old.contains("baseline_ticks"), "{old}");
        assert_eq!(Manifest::parse(&old).unwrap().baseline_ticks, 0);
    }

    #[test]
    fn input_reports_a_missing_metric() {
        let m = manifest();
        let mut s = Series::default();
        s.0.insert((Device::Primary, "cpu"), vec![Some(0.5)]);
        let err = m.input(&[&s]).unwrap_err();
        assert!(
            matches!(&err, Error::MissingMetric { feature, .. } if feature == "shadow.rx-bps"),
            "{err}"
        );
    }
}
