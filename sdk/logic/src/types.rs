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
/// tick, so the times are shared).
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

impl Series {
    /// The samples that were really measured, as `(timestamp_ms, value)`,
    /// oldest first, given the observation's `timestamps_ms`: samples listed
    /// in `missing` and non-finite values are left out, and so is any tail
    /// where `values` and `timestamps_ms` disagree in length.
    pub fn present_samples<'a>(
        &'a self,
        timestamps_ms: &'a [i64],
    ) -> impl Iterator<Item = (i64, f64)> + 'a {
        // `missing` is usually empty; otherwise a mask keeps the walk linear
        // whatever the order of the indexes.
        let mask: Vec<bool> = if self.missing.is_empty() {
            Vec::new()
        } else {
            let mut mask = vec![false; self.values.len()];
            for &i in &self.missing {
                if let Some(m) = usize::try_from(i).ok().and_then(|i| mask.get_mut(i)) {
                    *m = true;
                }
            }
            mask
        };
        timestamps_ms
            .iter()
            .zip(&self.values)
            .enumerate()
            .filter(move |(i, (_, v))| !mask.get(*i).copied().unwrap_or(false) && v.is_finite())
            .map(|(_, (t, v))| (*t, *v))
    }
}

/// Every metric of one device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceWindow {
    /// One entry per metric.
    pub series: Vec<Series>,
}

impl DeviceWindow {
    /// The first series called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.name == name)
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

    #[test]
    fn present_samples_skip_missing_and_non_finite_and_ragged_tails() {
        let series = Series {
            name: "cpu".into(),
            values: vec![10.0, 11.0, f64::NAN, 13.0, 14.0, 15.0],
            missing: vec![4, 1, 99],
            baseline: Baseline::default(),
        };
        let samples: Vec<_> = series.present_samples(&[1, 2, 3, 4, 5]).collect();
        assert_eq!(samples, vec![(1, 10.0), (4, 13.0)]);
        let none_missing = Series {
            missing: Vec::new(),
            ..series
        };
        assert_eq!(none_missing.present_samples(&[1, 2]).count(), 2);
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
        let window = DeviceWindow {
            series: vec![
                Series {
                    name: "cpu".into(),
                    ..Series::default()
                },
                Series {
                    name: "memory".into(),
                    ..Series::default()
                },
            ],
        };
        assert_eq!(
            window.get("memory").map(|s| s.name.as_str()),
            Some("memory")
        );
        assert!(window.get("disk").is_none());
    }
}
