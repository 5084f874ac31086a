//! Plain Rust mirrors of the records of the WIT package `umbra:policy@0.1.0`
//! (`sdk/wit/policy.wit`), field for field.
//!
//! They are also the JSON case format of `umbra policy test`: serde field
//! names are the WIT names with `-` replaced by `_`, unknown fields are
//! refused, and the fields that an author writing a case by hand would rather
//! leave out (`missing`, `shadow`, `health`, `mirror`, `prediction`,
//! `explanation`, `signals`, `state`) may be omitted.

use serde::{Deserialize, Serialize};

/// Historical baseline of one metric for the current time-of-week bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Mean of the metric in this bucket.
    pub mean: f64,
    /// Standard deviation of the metric in this bucket.
    pub stddev: f64,
    /// Samples the baseline was built from; 0 means "no baseline yet".
    pub samples: u32,
}

/// One metric of one device over the decision window, oldest first, sampled
/// at the observation's `timestamps_ms` (metrics are time-aligned at a fixed
/// tick, so the times are shared): the owned form a [`DeviceWindow`] is
/// built from, and the JSON case format of a metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Metric name, e.g. `cpu`, `memory`, `rx-pps`, `http-5xx-rate`.
    pub name: String,
    /// One value per timestamp of the observation.
    pub values: Vec<f64>,
    /// Indexes of samples that were missing and carried forward from the
    /// previous one. Usually empty (and then omitted in JSON).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u32>,
    /// Historical baseline of this metric.
    pub baseline: Baseline,
}

/// One metric of a [`DeviceWindow`], borrowed from its columns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesRef<'a> {
    /// Metric name.
    pub name: &'a str,
    /// One value per timestamp of the observation, oldest first.
    pub values: &'a [f64],
    /// Historical baseline of this metric.
    pub baseline: &'a Baseline,
    /// The window's flat missing indexes (all metrics).
    missing: &'a [u32],
    /// Flat index of this metric's first sample.
    offset: usize,
}

impl<'a> SeriesRef<'a> {
    /// Indexes (into [`SeriesRef::values`]) of the samples that were missing
    /// and carried forward, in the order the window lists them.
    pub fn missing(&self) -> impl Iterator<Item = usize> + 'a {
        let (offset, len) = (self.offset, self.values.len());
        self.missing.iter().filter_map(move |&flat| {
            let i = usize::try_from(flat).ok()?.checked_sub(offset)?;
            (i < len).then_some(i)
        })
    }

    /// Whether any sample of this metric is marked missing.
    pub fn has_missing(&self) -> bool {
        self.missing().next().is_some()
    }

    /// The samples that were really measured, as `(timestamp_ms, value)`,
    /// oldest first, given the observation's `timestamps_ms`: samples marked
    /// missing and non-finite values are left out, and so is any tail where
    /// `values` and `timestamps_ms` disagree in length.
    pub fn present_samples(
        &self,
        timestamps_ms: &'a [i64],
    ) -> impl Iterator<Item = (i64, f64)> + 'a {
        // Missing samples are rare; a mask keeps the walk linear whatever
        // the order of the indexes.
        let mut mask = Vec::new();
        if self.has_missing() {
            mask = vec![false; self.values.len()];
            for i in self.missing() {
                mask[i] = true;
            }
        }
        timestamps_ms
            .iter()
            .zip(self.values)
            .enumerate()
            .filter(move |(i, (_, v))| !mask.get(*i).copied().unwrap_or(false) && v.is_finite())
            .map(|(_, (t, v))| (*t, *v))
    }

    /// An owned copy.
    pub fn to_series(&self) -> Series {
        Series {
            name: self.name.to_owned(),
            values: self.values.to_vec(),
            missing: self
                .missing()
                .filter_map(|i| u32::try_from(i).ok())
                .collect(),
            baseline: self.baseline.clone(),
        }
    }
}

/// Why a [`DeviceWindow`] cannot be built from the columns or series given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A metric name is empty or contains a newline (the separator of
    /// [`DeviceWindow::metrics`]). The builder of the window is at fault.
    #[error("metric name {0:?} is empty or contains a newline")]
    BadName(String),
    /// Two metrics have different numbers of samples. The builder of the
    /// window is at fault.
    #[error("metric {name:?} has {got} samples where the window has {want}")]
    RaggedSeries {
        /// The metric.
        name: String,
        /// Its samples.
        got: usize,
        /// Samples of the metrics before it.
        want: usize,
    },
    /// The columns disagree: the names, baselines and values do not describe
    /// the same number of metrics. The producer of the columns is at fault.
    #[error(
        "{names} metric names and {baselines} baselines for {values} values (must be equal, and divide the values)"
    )]
    Columns {
        /// Names in `metrics`.
        names: usize,
        /// Entries of `baselines`.
        baselines: usize,
        /// Entries of `values`.
        values: usize,
    },
}

/// Every metric of one device over the window, by column, as the WIT
/// `device-window` carries it: a layout that crosses into the sandbox as
/// four lists whatever the number of metrics (one list per metric would
/// cost the policy an allocation each, most of the call at 16 metrics).
///
/// With `m` metrics of `n` samples each, metric `k`'s sample `i` is
/// `values[k * n + i]`; missing samples are listed by that flat index. The
/// columns are kept consistent by the constructors, so every accessor is
/// total. In JSON (the case format) a window is written as a list of
/// [`Series`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SeriesList", into = "SeriesList")]
pub struct DeviceWindow {
    metrics: String,
    values: Vec<f64>,
    missing: Vec<u32>,
    baselines: Vec<Baseline>,
}

/// The names of a window's `metrics` string, split at its newlines by a
/// plain byte scan: `str::split` goes through a generic pattern searcher
/// whose set-up costs more than the scan for names this short, and this
/// runs on every evaluation inside the sandbox.
struct Names<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Names<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == b'\n') {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// The JSON form of a [`DeviceWindow`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesList {
    series: Vec<Series>,
}

impl TryFrom<SeriesList> for DeviceWindow {
    type Error = WindowError;

    fn try_from(list: SeriesList) -> Result<Self, WindowError> {
        Self::from_series(list.series)
    }
}

impl From<DeviceWindow> for SeriesList {
    fn from(window: DeviceWindow) -> Self {
        Self {
            series: window.to_series(),
        }
    }
}

impl DeviceWindow {
    /// A window of the given metrics, which must all have the same number of
    /// samples and names that are neither empty nor contain a newline.
    ///
    /// # Errors
    ///
    /// [`WindowError::BadName`] or [`WindowError::RaggedSeries`].
    pub fn from_series(series: impl IntoIterator<Item = Series>) -> Result<Self, WindowError> {
        let mut window = Self::default();
        for s in series {
            window.push(&s.name, &s.values, &s.missing, s.baseline)?;
        }
        Ok(window)
    }

    /// Appends one metric; `missing` indexes its own samples.
    ///
    /// # Errors
    ///
    /// [`WindowError::BadName`] or [`WindowError::RaggedSeries`]; the window
    /// is unchanged then.
    pub fn push(
        &mut self,
        name: &str,
        values: &[f64],
        missing: &[u32],
        baseline: Baseline,
    ) -> Result<(), WindowError> {
        if name.is_empty() || name.contains('\n') {
            return Err(WindowError::BadName(name.to_owned()));
        }
        if !self.is_empty() && values.len() != self.samples() {
            return Err(WindowError::RaggedSeries {
                name: name.to_owned(),
                got: values.len(),
                want: self.samples(),
            });
        }
        let offset = self.values.len();
        if !self.metrics.is_empty() || !self.baselines.is_empty() {
            self.metrics.push('\n');
        }
        self.metrics.push_str(name);
        self.values.extend_from_slice(values);
        // Indexes outside the metric's samples mean nothing; they are
        // dropped rather than allowed to land on another metric.
        self.missing.extend(
            missing
                .iter()
                .filter(|&&i| (i as usize) < values.len())
                .filter_map(|&i| u32::try_from(offset + i as usize).ok()),
        );
        self.baselines.push(baseline);
        Ok(())
    }

    /// A window from its columns, as the WIT record carries them: metric
    /// names separated by newlines, values metric after metric, flat missing
    /// indexes, one baseline per metric.
    ///
    /// # Errors
    ///
    /// [`WindowError::Columns`] when the columns disagree,
    /// [`WindowError::BadName`] for an empty name.
    pub fn from_columns(
        metrics: String,
        values: Vec<f64>,
        missing: Vec<u32>,
        baselines: Vec<Baseline>,
    ) -> Result<Self, WindowError> {
        let names = if metrics.is_empty() && baselines.is_empty() {
            0
        } else {
            1 + metrics.bytes().filter(|&b| b == b'\n').count()
        };
        let consistent = names == baselines.len()
            && if names == 0 {
                values.is_empty()
            } else {
                values.len().is_multiple_of(names)
            };
        if !consistent {
            return Err(WindowError::Columns {
                names,
                baselines: baselines.len(),
                values: values.len(),
            });
        }
        if names > 0
            && (Names {
                rest: Some(&metrics),
            })
            .any(str::is_empty)
        {
            return Err(WindowError::BadName(String::new()));
        }
        Ok(Self {
            metrics,
            values,
            missing,
            baselines,
        })
    }

    /// The columns: names separated by newlines, values, flat missing
    /// indexes, baselines (see [`DeviceWindow::from_columns`]).
    pub fn columns(&self) -> (&str, &[f64], &[u32], &[Baseline]) {
        (&self.metrics, &self.values, &self.missing, &self.baselines)
    }

    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.baselines.len()
    }

    /// Whether the window has no metric.
    pub fn is_empty(&self) -> bool {
        self.baselines.is_empty()
    }

    /// Samples per metric.
    pub fn samples(&self) -> usize {
        self.values.len().checked_div(self.len()).unwrap_or(0)
    }

    /// Metric names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        Names {
            rest: (!self.is_empty()).then_some(self.metrics.as_str()),
        }
    }

    /// Every metric, in order.
    pub fn iter(&self) -> impl Iterator<Item = SeriesRef<'_>> {
        let n = self.samples();
        self.names()
            .zip(&self.baselines)
            .enumerate()
            .map(move |(k, (name, baseline))| SeriesRef {
                name,
                values: &self.values[k * n..(k + 1) * n],
                baseline,
                missing: &self.missing,
                offset: k * n,
            })
    }

    /// The first metric called `name`, if any.
    pub fn get(&self, name: &str) -> Option<SeriesRef<'_>> {
        self.iter().find(|s| s.name == name)
    }

    /// Owned copies of every metric.
    pub fn to_series(&self) -> Vec<Series> {
        self.iter().map(|s| s.to_series()).collect()
    }
}

/// Counts of HTTP status classes seen by health checks in the window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusClasses {
    /// 1xx.
    pub informational: u32,
    /// 2xx.
    pub success: u32,
    /// 3xx.
    pub redirect: u32,
    /// 4xx.
    pub client_error: u32,
    /// 5xx.
    pub server_error: u32,
}

impl StatusClasses {
    /// All responses counted, whatever their class (saturating).
    pub fn total(&self) -> u64 {
        [
            self.informational,
            self.success,
            self.redirect,
            self.client_error,
            self.server_error,
        ]
        .iter()
        .map(|&n| u64::from(n))
        .sum()
    }
}

/// One application health check (HTTP, TCP or database).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Name of the check, as configured on the host.
    pub name: String,
    /// Whether the last run of the check passed.
    pub ok: bool,
    /// Latency of the last run, in milliseconds.
    pub latency_ms: f64,
    /// HTTP status classes seen in the window (zero for non-HTTP checks).
    #[serde(default)]
    pub status_classes: StatusClasses,
    /// Database connectivity, for database checks.
    #[serde(default)]
    pub db_connected: Option<bool>,
}

/// Statistics of the traffic mirrored to the shadow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorStats {
    /// Mirrored packets in the window.
    pub packets: u64,
    /// Mirrored bytes in the window.
    pub bytes: u64,
    /// Distinct flows seen in the mirrored sample.
    pub flows: u32,
    /// TCP resets seen in the mirrored sample.
    pub tcp_resets: u32,
}

/// The predictor's output.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prediction {
    /// Probability of failure within `horizon_ms`, in [0, 1].
    pub probability: f64,
    /// Horizon of the prediction, in milliseconds.
    pub horizon_ms: u64,
    /// Version of the model that made the prediction.
    pub model_version: String,
}

/// Everything observed about one protected pair at one tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// Time of the tick, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// Sample times of every series, milliseconds since the Unix epoch,
    /// ascending, one per tick.
    pub timestamps_ms: Vec<i64>,
    /// Metrics of the primary device.
    pub primary: DeviceWindow,
    /// Metrics of the shadow device.
    #[serde(default)]
    pub shadow: DeviceWindow,
    /// Application health checks.
    #[serde(default)]
    pub health: Vec<HealthCheck>,
    /// Statistics of the mirrored traffic.
    #[serde(default)]
    pub mirror: MirrorStats,
    /// The predictor's output, if it produced one this tick.
    #[serde(default)]
    pub prediction: Option<Prediction>,
}

/// Operator configuration of a policy: key/value pairs, in the order given.
pub type ConfigPairs = Vec<(String, String)>;

/// The drift policy's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftResult {
    /// How strongly the primary drifts from its baseline, in [0, 1].
    pub score: f64,
    /// Rate of change of the deviation (z-score per second).
    pub rate_of_change: f64,
    /// Which metric drifts and why, in one sentence or two.
    #[serde(default)]
    pub explanation: String,
}

/// One signal that contributed to a correlation score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// What the signal is, e.g. `co-rise:cpu+http-5xx-rate`.
    pub name: String,
    /// Contribution to the score, in [0, 1].
    pub weight: f64,
    /// The numbers behind the signal.
    #[serde(default)]
    pub detail: String,
}

/// The correlation policy's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationResult {
    /// In [0, 1].
    pub score: f64,
    /// The signals that contributed, strongest first.
    #[serde(default)]
    pub signals: Vec<Signal>,
}

/// State the failover policy keeps between evaluations (held by the host).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverState {
    /// Consecutive evaluations whose signals were over threshold.
    pub consecutive_over: u32,
    /// Time of the last failover the policy ordered, if any.
    #[serde(default)]
    pub last_go_ms: Option<i64>,
    /// Times of the failovers ordered in the last hour.
    #[serde(default)]
    pub recent_go_ms: Vec<i64>,
}

/// Input of the failover decision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverInput {
    /// Time of the tick, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// The drift policy's answer for this tick.
    pub drift: DriftResult,
    /// The correlation policy's answer for this tick.
    pub correlation: CorrelationResult,
    /// The predictor's output, if it produced one this tick.
    #[serde(default)]
    pub prediction: Option<Prediction>,
    /// The state the previous decision returned.
    #[serde(default)]
    pub state: FailoverState,
}

/// Go or hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fail over now.
    Go,
    /// Keep the primary.
    #[default]
    Hold,
}

/// The failover policy's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverDecision {
    /// Go or hold.
    pub verdict: Verdict,
    /// Which signals crossed which thresholds, or why not.
    pub reason: String,
    /// State for the next evaluation.
    pub state: FailoverState,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(series: Vec<Series>) -> DeviceWindow {
        DeviceWindow::from_series(series).unwrap()
    }

    #[test]
    fn present_samples_skip_missing_and_non_finite_and_ragged_tails() {
        let series = Series {
            name: "cpu".into(),
            values: vec![10.0, 11.0, f64::NAN, 13.0, 14.0, 15.0],
            missing: vec![4, 1, 99],
            baseline: Baseline::default(),
        };
        let w = window(vec![series.clone()]);
        let cpu = w.get("cpu").unwrap();
        let samples: Vec<_> = cpu.present_samples(&[1, 2, 3, 4, 5]).collect();
        assert_eq!(samples, vec![(1, 10.0), (4, 13.0)]);
        let w = window(vec![Series {
            missing: Vec::new(),
            ..series
        }]);
        assert_eq!(w.get("cpu").unwrap().present_samples(&[1, 2]).count(), 2);
    }

    #[test]
    fn columns_keep_each_metric_to_itself() {
        let w = window(vec![
            Series {
                name: "cpu".into(),
                values: vec![1.0, 2.0, 3.0],
                missing: vec![2, 7],
                baseline: Baseline::default(),
            },
            Series {
                name: "memory".into(),
                values: vec![4.0, 5.0, 6.0],
                missing: vec![0],
                baseline: Baseline {
                    mean: 5.0,
                    ..Baseline::default()
                },
            },
        ]);
        assert_eq!((w.len(), w.samples()), (2, 3));
        assert_eq!(w.names().collect::<Vec<_>>(), ["cpu", "memory"]);
        let (metrics, values, missing, baselines) = w.columns();
        assert_eq!(metrics, "cpu\nmemory");
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // Index 7 of cpu is beyond its samples: dropped, not moved onto
        // memory.
        assert_eq!(missing, [2, 3]);
        assert_eq!(baselines[1].mean, 5.0);
        let memory = w.get("memory").unwrap();
        assert_eq!(memory.values, [4.0, 5.0, 6.0]);
        assert_eq!(memory.missing().collect::<Vec<_>>(), [0]);
        assert_eq!(w.get("cpu").unwrap().missing().collect::<Vec<_>>(), [2]);
        // Round trip through the columns and through the owned series.
        let again = DeviceWindow::from_columns(
            metrics.to_owned(),
            values.to_vec(),
            missing.to_vec(),
            baselines.to_vec(),
        )
        .unwrap();
        assert_eq!(again, w);
        assert_eq!(window(w.to_series()), w);
    }

    #[test]
    fn inconsistent_windows_are_refused() {
        let s = |name: &str, n: usize| Series {
            name: name.into(),
            values: vec![0.0; n],
            ..Series::default()
        };
        assert_eq!(
            DeviceWindow::from_series([s("cpu", 3), s("memory", 2)]),
            Err(WindowError::RaggedSeries {
                name: "memory".into(),
                got: 2,
                want: 3
            })
        );
        assert!(matches!(
            DeviceWindow::from_series([s("a\nb", 1)]),
            Err(WindowError::BadName(_))
        ));
        assert!(matches!(
            DeviceWindow::from_series([s("", 1)]),
            Err(WindowError::BadName(_))
        ));
        let columns = |names: &str, values: usize, baselines: usize| {
            DeviceWindow::from_columns(
                names.into(),
                vec![0.0; values],
                Vec::new(),
                vec![Baseline::default(); baselines],
            )
        };
        assert!(columns("", 0, 0).unwrap().is_empty());
        assert!(columns("cpu\nmemory", 6, 2).is_ok());
        assert!(matches!(
            columns("cpu\nmemory", 5, 2),
            Err(WindowError::Columns { .. })
        ));
        assert!(matches!(
            columns("cpu", 6, 2),
            Err(WindowError::Columns { .. })
        ));
        assert!(matches!(
            columns("", 3, 0),
            Err(WindowError::Columns { .. })
        ));
        assert!(matches!(
            columns("cpu\n", 4, 2),
            Err(WindowError::BadName(_))
        ));
        // A single metric with an empty name.
        assert!(matches!(columns("", 3, 1), Err(WindowError::BadName(_))));
    }

    #[test]
    fn json_windows_are_lists_of_series() {
        let w: DeviceWindow = serde_json::from_str(
            r#"{"series": [{"name": "cpu", "values": [1, 2], "baseline": {"mean": 1, "stddev": 1, "samples": 9}}]}"#,
        )
        .unwrap();
        assert_eq!(w.get("cpu").unwrap().values, [1.0, 2.0]);
        let text = serde_json::to_string(&w).unwrap();
        assert!(text.starts_with(r#"{"series":[{"name":"cpu""#), "{text}");
        let ragged = r#"{"series": [
            {"name": "cpu", "values": [1, 2], "baseline": {"mean": 1, "stddev": 1, "samples": 9}},
            {"name": "memory", "values": [1], "baseline": {"mean": 1, "stddev": 1, "samples": 9}}]}"#;
        let error = serde_json::from_str::<DeviceWindow>(ragged).unwrap_err();
        assert!(
            error.to_string().contains("\"memory\" has 1 samples"),
            "{error}"
        );
    }

    #[test]
    fn status_classes_total_does_not_overflow() {
        let classes = StatusClasses {
            informational: u32::MAX,
            success: u32::MAX,
            redirect: 0,
            client_error: 0,
            server_error: 1,
        };
        assert_eq!(classes.total(), 2 * u64::from(u32::MAX) + 1);
    }

    #[test]
    fn device_window_get_finds_by_name() {
        let window = window(vec![
            Series {
                name: "cpu".into(),
                ..Series::default()
            },
            Series {
                name: "memory".into(),
                ..Series::default()
            },
        ]);
        assert_eq!(window.get("memory").map(|s| s.name), Some("memory"));
        assert!(window.get("disk").is_none());
    }
}
