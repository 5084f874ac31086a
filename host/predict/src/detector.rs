//! The streaming drift detector: every new sample updates the device's
//! features and is scored by `umbra_policy_logic::drift`, the function the
//! default WebAssembly drift policy runs, on the observation of the last
//! `window` ticks. An alarm-shaping stage then turns the stream of drift
//! scores into alarms (see [`AlarmShaper`]).

use std::collections::VecDeque;

use umbra_policy_logic::{DriftConfig, DriftResult, Observation, drift};

use crate::features::{FeatureConfig, PairFeatures, Sample};
use crate::{Error, Result};

/// How the drift score stream is shaped into alarms.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapingConfig {
    /// Evaluations after which an alarm may repeat; 0 turns shaping off
    /// (the alarm score is the drift score).
    pub suppress: usize,
    /// Factor applied to a score that is suppressed, in [0, 1].
    pub suppressed_scale: f64,
}

impl Default for ShapingConfig {
    fn default() -> Self {
        Self {
            suppress: 0,
            suppressed_scale: 0.0,
        }
    }
}

impl ShapingConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every problem.
    pub fn validate(&self) -> Result<()> {
        if (0.0..=1.0).contains(&self.suppressed_scale) {
            Ok(())
        } else {
            Err(Error::InvalidConfig(vec![format!(
                "`suppressed-scale` ({}) must be in [0, 1]",
                self.suppressed_scale
            )]))
        }
    }
}

/// Alarm shaping: an anomaly should raise one alarm, not a run of them.
///
/// The drift score of a metric that has jumped stays high for as long as
/// the jump is in the window, and every one of those evaluations would be
/// another alarm at any threshold it crosses. The shaper passes a score
/// through only when it is higher than every raw score of the previous
/// `suppress` evaluations; otherwise it is multiplied by
/// `suppressed_scale` (0 by default). So, whatever threshold the failover
/// policy applies, a score that crosses it raises an alarm once, and
/// another alarm needs either a stronger score or `suppress` evaluations
/// below the previous peak. The shaper is threshold-free on purpose: the
/// threshold is the failover policy's, not the detector's.
#[derive(Clone, Debug)]
pub struct AlarmShaper {
    config: ShapingConfig,
    recent: VecDeque<f64>,
}

impl AlarmShaper {
    /// A shaper that has seen nothing.
    pub fn new(config: ShapingConfig) -> Self {
        Self {
            config,
            recent: VecDeque::new(),
        }
    }

    /// Shapes the next raw score (NaN counts as 0).
    pub fn shape(&mut self, raw: f64) -> f64 {
        let raw = if raw.is_nan() { 0.0 } else { raw };
        let k = self.config.suppress;
        if k == 0 {
            return raw;
        }
        let peak = self
            .recent
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        self.recent.push_back(raw);
        if self.recent.len() > k {
            self.recent.pop_front();
        }
        if raw > peak {
            raw
        } else {
            raw * self.config.suppressed_scale
        }
    }
}

/// Everything the detector is configured with.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DetectorConfig {
    /// Alignment, window and baselines.
    pub features: FeatureConfig,
    /// The drift policy's configuration.
    pub drift: DriftConfig,
    /// The alarm shaping after it.
    pub shaping: ShapingConfig,
}

impl DetectorConfig {
    /// Parses `key=value` pairs: the feature keys (`tick-ms`, `window`,
    /// `bucket-ms`, `season-ms`, `min-bucket-samples`, `baseline-memory`,
    /// `baseline-lag`, `recent-alpha`, `seasonal-adjust`), the shaping keys (`suppress`,
    /// `suppressed-scale`) and every key of [`DriftConfig::from_pairs`];
    /// absent keys keep their defaults.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every unparsable value and invalid
    /// setting of the feature and shaping keys, else [`Error::Drift`] for
    /// the drift keys (including unknown keys).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self> {
        let mut features = FeatureConfig::default();
        let mut shaping = ShapingConfig::default();
        let mut rest = Vec::new();
        let mut problems = Vec::new();
        fn parse<T: std::str::FromStr>(
            key: &str,
            value: &str,
            problems: &mut Vec<String>,
        ) -> Option<T> {
            match value.trim().parse() {
                Ok(v) => Some(v),
                Err(_) => {
                    problems.push(format!("`{key}`: cannot parse `{value}`"));
                    None
                }
            }
        }
        for (key, value) in pairs {
            let p = &mut problems;
            match key.as_str() {
                "tick-ms" => features.tick_ms = parse(key, value, p).unwrap_or(features.tick_ms),
                "window" => features.window = parse(key, value, p).unwrap_or(features.window),
                "bucket-ms" => {
                    features.bucket_ms = parse(key, value, p).unwrap_or(features.bucket_ms);
                }
                "season-ms" => {
                    features.season_ms = parse(key, value, p).unwrap_or(features.season_ms);
                }
                "min-bucket-samples" => {
                    features.min_bucket_samples =
                        parse(key, value, p).unwrap_or(features.min_bucket_samples);
                }
                "baseline-memory" => {
                    features.baseline_memory =
                        parse(key, value, p).unwrap_or(features.baseline_memory);
                }
                "baseline-lag" => {
                    features.baseline_lag = parse(key, value, p).or(features.baseline_lag)
                }
                "seasonal-adjust" => {
                    features.seasonal_adjust =
                        parse(key, value, p).unwrap_or(features.seasonal_adjust);
                }
                "recent-alpha" => {
                    features.recent_alpha = parse(key, value, p).unwrap_or(features.recent_alpha);
                }
                "suppress" => shaping.suppress = parse(key, value, p).unwrap_or(shaping.suppress),
                "suppressed-scale" => {
                    shaping.suppressed_scale =
                        parse(key, value, p).unwrap_or(shaping.suppressed_scale);
                }
                _ => rest.push((key.clone(), value.clone())),
            }
        }
        for check in [features.validate(), shaping.validate()] {
            if let Err(Error::InvalidConfig(more)) = check {
                problems.extend(more);
            }
        }
        if !problems.is_empty() {
            return Err(Error::InvalidConfig(problems));
        }
        let drift = DriftConfig::from_pairs(&rest).map_err(Error::Drift)?;
        Ok(Self {
            features,
            drift,
            shaping,
        })
    }
}

/// One evaluation of the detector.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftOutput {
    /// The drift policy's answer, unshaped.
    pub drift: DriftResult,
    /// The alarm score after shaping, in [0, 1].
    pub score: f64,
}

/// Streaming drift detector for one protected pair.
#[derive(Clone, Debug)]
pub struct DriftDetector {
    features: PairFeatures,
    drift: DriftConfig,
    shaper: AlarmShaper,
}

impl DriftDetector {
    /// A detector that has seen nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the feature or shaping configuration
    /// does not validate.
    pub fn new(config: DetectorConfig) -> Result<Self> {
        config.shaping.validate()?;
        Ok(Self {
            features: PairFeatures::new(config.features)?,
            drift: config.drift,
            shaper: AlarmShaper::new(config.shaping),
        })
    }

    /// The features the detector maintains.
    pub fn features(&self) -> &PairFeatures {
        &self.features
    }

    /// Records `sample` and scores the pair at the sample's time.
    ///
    /// # Errors
    ///
    /// As [`crate::DeviceFeatures::record`]; a refused sample changes
    /// nothing.
    pub fn push(&mut self, sample: &Sample) -> Result<DriftOutput> {
        self.features.record(sample)?;
        Ok(self.score(sample.timestamp_ms))
    }

    /// Records `sample` without scoring (for the other metrics of a tick
    /// before [`Self::score`]).
    ///
    /// # Errors
    ///
    /// As [`crate::DeviceFeatures::record`].
    pub fn record(&mut self, sample: &Sample) -> Result<()> {
        self.features.record(sample)
    }

    /// Scores the pair at `now_ms` and feeds the score to the shaper.
    pub fn score(&mut self, now_ms: i64) -> DriftOutput {
        let observation = self.observation(now_ms);
        let result = drift(&self.drift, &observation);
        let score = self.shaper.shape(result.score).clamp(0.0, 1.0);
        DriftOutput {
            drift: result,
            score,
        }
    }

    /// The observation the policies would see at `now_ms`.
    pub fn observation(&mut self, now_ms: i64) -> Observation {
        self.features.observation(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Device;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sample(t: i64, v: f64) -> Sample {
        Sample {
            device: Device::Primary,
            metric: "cpu".into(),
            timestamp_ms: t,
            value: v,
        }
    }

    #[test]
    fn config_splits_keys_between_features_shaping_and_drift() {
        let c = DetectorConfig::from_pairs(&pairs(&[
            ("tick-ms", "300000"),
            ("window", "20"),
            ("suppress", "12"),
            ("rate-window", "8"),
            ("z-high", "9"),
        ]))
        .unwrap();
        assert_eq!(c.features.tick_ms, 300_000);
        assert_eq!(c.features.window, 20);
        assert_eq!(c.shaping.suppress, 12);
        assert_eq!(c.drift.rate_window, 8);
        assert_eq!(c.drift.z_high, 9.0);
        let Err(Error::InvalidConfig(problems)) = DetectorConfig::from_pairs(&pairs(&[
            ("window", "x"),
            ("tick-ms", "-1"),
            ("suppressed-scale", "3"),
        ])) else {
            panic!("expected an invalid configuration");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(matches!(
            DetectorConfig::from_pairs(&pairs(&[("no-such-key", "1")])),
            Err(Error::Drift(_))
        ));
    }

    #[test]
    fn shaper_alarms_once_per_peak() {
        let mut s = AlarmShaper::new(ShapingConfig {
            suppress: 3,
            suppressed_scale: 0.0,
        });
        let out: Vec<f64> = [0.1, 0.9, 0.9, 0.8, 0.95, 0.2, 0.2, 0.2, 0.2, 0.5]
            .into_iter()
            .map(|x| s.shape(x))
            .collect();
        assert_eq!(out, vec![0.1, 0.9, 0.0, 0.0, 0.95, 0.0, 0.0, 0.0, 0.0, 0.5]);
        let mut off = AlarmShaper::new(ShapingConfig::default());
        assert_eq!(off.shape(0.7), 0.7);
        assert_eq!(off.shape(0.7), 0.7);
    }

    #[test]
    fn detector_scores_with_the_drift_policy_and_alarms_once() {
        let config = DetectorConfig::from_pairs(&pairs(&[
            ("window", "20"),
            ("suppress", "20"),
            ("min-bucket-samples", "1000000"),
        ]))
        .unwrap();
        let drift_config = config.drift.clone();
        let mut d = DriftDetector::new(config).unwrap();
        let mut t = 0;
        let mut quiet_max: f64 = 0.0;
        for i in 0..300 {
            let v = 50.0 + (f64::from(i) * 0.7).sin();
            let out = d.push(&sample(t, v)).unwrap();
            if i > 100 {
                quiet_max = quiet_max.max(out.drift.score);
            }
            t += 1000;
        }
        assert!(quiet_max < 0.3, "quiet signal scored {quiet_max}");
        let mut alarms = 0;
        let mut peak: f64 = 0.0;
        for _ in 0..15 {
            let out = d.push(&sample(t, 90.0)).unwrap();
            // The raw score is exactly the policy's on the same observation.
            let o = d.observation(t);
            assert_eq!(out.drift, drift(&drift_config, &o));
            peak = peak.max(out.drift.score);
            if out.score >= 0.5 {
                alarms += 1;
            }
            t += 1000;
        }
        assert!(peak > 0.7, "jump peaked at {peak}");
        assert!((1..=3).contains(&alarms), "{alarms} alarms");
    }
}
