//! The streaming drift detector: every new sample updates the device's
//! features and is scored by `umbra_policy_logic::drift`, the function the
//! default WebAssembly drift policy runs, on the observation of the last
//! `window` ticks. Optional stages, all off by default and each a function
//! of the data and of the detector's own past outputs only:
//!
//! ```text
//! sample → features ─┬─ drift, fast scale (× adaptive scale) ─┐
//!                    └─ drift, slow scale (× adaptive scale) ─┴─ max → likelihood → shaper → score
//! ```
//!
//! - **Two scales** (`slow-ewma-alpha`): the observation is scored twice,
//!   with the configured drift policy (the fast scale, whose `ewma-alpha`
//!   follows a spike within a tick or two) and with the same policy but a
//!   smaller `ewma-alpha` (the slow scale, whose level averages the whole
//!   window: a moderate shift that persists reaches the thresholds, a
//!   single outlier does not). The raw score is the higher of the two, and
//!   the reported drift result is that scale's.
//! - **Adaptive scale** (`adapt-*` keys, see [`crate::adaptive`]): each
//!   scale's `z-low` and `z-high` are multiplied by a factor `k ≥ 1` drawn
//!   from a quantile of that scale's own recent |level|, so that a bursty
//!   metric must deviate well beyond its usual bursts while a calm one
//!   keeps the configured thresholds.
//! - **Anomaly likelihood** (`likelihood-*` keys, see
//!   [`crate::likelihood`]): the raw score re-expressed as the tail
//!   probability of its short-term average under a Gaussian fitted to its
//!   own history.
//! - **Alarm shaping** (`suppress`, see [`AlarmShaper`]): one alarm per
//!   peak.

use std::collections::VecDeque;
use std::fmt::Write as _;

use umbra_policy_logic::drift::analyse;
use umbra_policy_logic::{DriftConfig, DriftResult, Observation, drift};

use crate::adaptive::{AdaptiveConfig, AdaptiveScale};
use crate::features::{FeatureConfig, PairFeatures, Sample};
use crate::likelihood::{Likelihood, LikelihoodConfig};
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
    /// `ewma-alpha` of the slow scale, in (0, 1]; `None` scores one scale.
    pub slow_ewma_alpha: Option<f64>,
    /// The adaptive scale of each scale's thresholds.
    pub adaptive: AdaptiveConfig,
    /// The anomaly-likelihood stage after it.
    pub likelihood: LikelihoodConfig,
    /// The alarm shaping after that.
    pub shaping: ShapingConfig,
}

impl DetectorConfig {
    /// Parses `key=value` pairs: the feature keys (`tick-ms`, `window`,
    /// `bucket-ms`, `season-ms`, `min-bucket-samples`, `baseline-memory`,
    /// `baseline-lag`, `recent-alpha`, `seasonal-adjust`), the scale keys
    /// (`slow-ewma-alpha`, 0 meaning one scale, and `adapt-history`,
    /// `adapt-quantile`, `adapt-ratio`, `adapt-min-history` of
    /// [`AdaptiveConfig`]), the likelihood
    /// keys of [`LikelihoodConfig`] (`likelihood-history`,
    /// `likelihood-short`, `likelihood-learn`, `likelihood-min-stddev`,
    /// `likelihood-saturate`), the
    /// shaping keys (`suppress`, `suppressed-scale`) and every key of
    /// [`DriftConfig::from_pairs`]; absent keys keep their defaults.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every unparsable value and invalid
    /// setting of the feature and shaping keys, else [`Error::Drift`] for
    /// the drift keys (including unknown keys).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self> {
        let mut features = FeatureConfig::default();
        let mut shaping = ShapingConfig::default();
        let mut likelihood = LikelihoodConfig::default();
        let mut adaptive = AdaptiveConfig::default();
        let mut slow_ewma_alpha: Option<f64> = None;
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
                "slow-ewma-alpha" => {
                    let alpha: Option<f64> = parse(key, value, p);
                    slow_ewma_alpha = match alpha {
                        Some(0.0) => None,
                        Some(a) if a > 0.0 && a <= 1.0 => Some(a),
                        Some(a) => {
                            p.push(format!("`slow-ewma-alpha` ({a}) must be 0 or in (0, 1]"));
                            None
                        }
                        None => slow_ewma_alpha,
                    };
                }
                "adapt-history" => {
                    adaptive.history = parse(key, value, p).unwrap_or(adaptive.history);
                }
                "adapt-quantile" => {
                    adaptive.quantile = parse(key, value, p).unwrap_or(adaptive.quantile);
                }
                "adapt-ratio" => {
                    adaptive.ratio = parse(key, value, p).unwrap_or(adaptive.ratio);
                }
                "adapt-min-history" => {
                    adaptive.min_history = parse(key, value, p).unwrap_or(adaptive.min_history);
                }
                "likelihood-history" => {
                    likelihood.history = parse(key, value, p).unwrap_or(likelihood.history);
                }
                "likelihood-short" => {
                    likelihood.short = parse(key, value, p).unwrap_or(likelihood.short);
                }
                "likelihood-learn" => {
                    likelihood.learn = parse(key, value, p).unwrap_or(likelihood.learn);
                }
                "likelihood-min-stddev" => {
                    likelihood.min_stddev = parse(key, value, p).unwrap_or(likelihood.min_stddev);
                }
                "likelihood-saturate" => {
                    likelihood.saturate = parse(key, value, p).unwrap_or(likelihood.saturate);
                }
                "suppress" => shaping.suppress = parse(key, value, p).unwrap_or(shaping.suppress),
                "suppressed-scale" => {
                    shaping.suppressed_scale =
                        parse(key, value, p).unwrap_or(shaping.suppressed_scale);
                }
                _ => rest.push((key.clone(), value.clone())),
            }
        }
        for check in [
            features.validate(),
            adaptive.validate(),
            likelihood.validate(),
            shaping.validate(),
        ] {
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
            slow_ewma_alpha,
            adaptive,
            likelihood,
            shaping,
        })
    }
}

/// One evaluation of the detector.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftOutput {
    /// The drift policy's answer, unshaped: with the scale stages off,
    /// exactly `drift(config, observation)`; with them on, the answer of
    /// the scale that scored higher, at its adapted thresholds.
    pub drift: DriftResult,
    /// The likelihood stage's output, in [0, 1] (the drift score when the
    /// stage is off).
    pub likelihood: f64,
    /// The alarm score after shaping, in [0, 1].
    pub score: f64,
}

/// Streaming drift detector for one protected pair.
#[derive(Clone, Debug)]
pub struct DriftDetector {
    features: PairFeatures,
    fast: Scale,
    slow: Option<Scale>,
    likelihood: Likelihood,
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
        config.likelihood.validate()?;
        config.adaptive.validate()?;
        let slow = config.slow_ewma_alpha.map(|alpha| {
            let mut drift = config.drift.clone();
            drift.scoring.ewma_alpha = alpha;
            Scale::new(true, drift, &config.adaptive)
        });
        Ok(Self {
            features: PairFeatures::new(config.features)?,
            fast: Scale::new(false, config.drift, &config.adaptive),
            slow,
            likelihood: Likelihood::new(config.likelihood),
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

    /// Scores the pair at `now_ms` and feeds the score through the
    /// likelihood stage and the shaper.
    pub fn score(&mut self, now_ms: i64) -> DriftOutput {
        self.evaluate(now_ms).0
    }

    /// [`Self::score`], also returning the observation it scored: what the
    /// other policies of the tick (correlation, failover) look at, built
    /// once.
    pub fn evaluate(&mut self, now_ms: i64) -> (DriftOutput, Observation) {
        let observation = self.observation(now_ms);
        let mut result = self.fast.score(&observation);
        if let Some(slow) = &mut self.slow {
            let other = slow.score(&observation);
            if other.score > result.score {
                result = other;
            }
        }
        let likelihood = self.likelihood.update(result.score).clamp(0.0, 1.0);
        let score = self.shaper.shape(likelihood).clamp(0.0, 1.0);
        let output = DriftOutput {
            drift: result,
            likelihood,
            score,
        };
        (output, observation)
    }

    /// The observation the policies would see at `now_ms`.
    pub fn observation(&mut self, now_ms: i64) -> Observation {
        self.features.observation(now_ms)
    }
}

/// One scale of the detector: a drift configuration, the adaptive scale of
/// its thresholds, and a scratch copy of the configuration with the
/// thresholds scaled (kept to avoid cloning the metric lists per tick).
#[derive(Clone, Debug)]
struct Scale {
    /// Whether this is the slow scale (named in the explanation).
    slow: bool,
    config: DriftConfig,
    scaled: DriftConfig,
    adaptive: AdaptiveScale,
}

impl Scale {
    fn new(slow: bool, config: DriftConfig, adaptive: &AdaptiveConfig) -> Self {
        Self {
            slow,
            scaled: config.clone(),
            config,
            adaptive: AdaptiveScale::new(adaptive.clone()),
        }
    }

    /// The drift policy's answer at this scale's adapted thresholds; then
    /// the observation's deviation joins the adaptive history.
    fn score(&mut self, observation: &Observation) -> DriftResult {
        let k = self.adaptive.scale();
        let mut result = if k > 1.0 {
            self.scaled.z_low = self.config.z_low * k;
            self.scaled.z_high = self.config.z_high * k;
            drift(&self.scaled, observation)
        } else {
            drift(&self.config, observation)
        };
        if self.adaptive.enabled() {
            // The largest deviation of any scored metric, on its counted
            // side; a tick where no metric could be scored adds nothing.
            let magnitude = analyse(&self.config, observation)
                .metrics
                .iter()
                .map(|m| m.direction.magnitude(m.level))
                .reduce(f64::max);
            if let Some(m) = magnitude {
                self.adaptive.push(m);
            }
        }
        if self.slow {
            result.explanation.push_str("; slow scale");
        }
        if k > 1.0 {
            let _ = write!(result.explanation, "; thresholds ×{k:.2} (adaptive)");
        }
        result
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
        // evaluate() is score() with the observation it scored, which is
        // the one observation() gives at that time.
        let mut twin = d.clone();
        d.record(&sample(t, 95.0)).unwrap();
        twin.record(&sample(t, 95.0)).unwrap();
        let (out, observation) = d.evaluate(t);
        assert_eq!(out, twin.score(t));
        assert_eq!(observation, twin.observation(t));
        assert_eq!(out.drift, drift(&drift_config, &observation));
    }

    #[test]
    fn config_reads_the_scale_keys() {
        let c = DetectorConfig::from_pairs(&pairs(&[
            ("slow-ewma-alpha", "0.1"),
            ("adapt-history", "2000"),
            ("adapt-quantile", "0.9"),
            ("adapt-ratio", "2"),
            ("adapt-min-history", "50"),
            ("likelihood-history", "1000"),
            ("likelihood-short", "5"),
            ("likelihood-learn", "200"),
            ("likelihood-min-stddev", "0.01"),
            ("likelihood-saturate", "0.5"),
        ]))
        .unwrap();
        assert_eq!(c.slow_ewma_alpha, Some(0.1));
        assert_eq!(
            c.adaptive,
            AdaptiveConfig {
                history: 2000,
                quantile: 0.9,
                ratio: 2.0,
                min_history: 50,
            }
        );
        assert_eq!(
            c.likelihood,
            LikelihoodConfig {
                history: 1000,
                short: 5,
                learn: 200,
                min_stddev: 0.01,
                saturate: 0.5,
            }
        );
        let off = DetectorConfig::from_pairs(&pairs(&[("slow-ewma-alpha", "0")])).unwrap();
        assert_eq!(off.slow_ewma_alpha, None);
        let Err(Error::InvalidConfig(problems)) = DetectorConfig::from_pairs(&pairs(&[
            ("slow-ewma-alpha", "1.5"),
            ("adapt-quantile", "1"),
            ("likelihood-short", "0"),
        ])) else {
            panic!("expected an invalid configuration");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn two_scales_score_the_higher_of_the_two_policies() {
        let base = pairs(&[
            ("window", "20"),
            ("min-bucket-samples", "1000000"),
            ("rate-weight", "0"),
            ("z-low", "3"),
            ("z-high", "4"),
        ]);
        let mut with_slow = base.clone();
        with_slow.push(("slow-ewma-alpha".into(), "0.1".into()));
        let config = DetectorConfig::from_pairs(&with_slow).unwrap();
        let fast = config.drift.clone();
        let slow = DriftConfig {
            scoring: umbra_policy_logic::deviation::ZScoring {
                ewma_alpha: 0.1,
                ..fast.scoring.clone()
            },
            ..fast.clone()
        };
        let mut d = DriftDetector::new(config).unwrap();
        let mut t = 0;
        let mut slow_won = 0;
        for i in 0..400 {
            // Noise, then a shift of about 4σ whose samples keep dipping
            // back: the fast scale follows every dip, the slow one holds.
            let noise = (f64::from(i) * 0.7).sin();
            let v = if i < 300 {
                50.0 + noise
            } else if i % 3 == 0 {
                50.5 + noise
            } else {
                53.5 + noise
            };
            let out = d.push(&sample(t, v)).unwrap();
            let o = d.observation(t);
            let (f, s) = (drift(&fast, &o).score, drift(&slow, &o).score);
            assert_eq!(out.drift.score, f.max(s));
            assert_eq!(out.score, out.drift.score, "no shaping configured");
            if s > f {
                slow_won += 1;
                assert!(out.drift.explanation.ends_with("; slow scale"));
            } else {
                assert!(!out.drift.explanation.contains("slow scale"));
            }
            t += 1000;
        }
        assert!(slow_won > 0, "the slow scale never scored higher");
    }

    /// Alarms of a bursty metric (routine bursts every 12 ticks) once the
    /// detector has seen 1000 ticks, and the score of one burst five times
    /// their size after that.
    fn bursty_peaks(adapt: bool) -> (usize, f64) {
        let mut list = vec![
            ("window", "20"),
            ("min-bucket-samples", "1000000"),
            ("rate-weight", "0"),
            ("z-low", "2"),
            ("z-high", "3"),
            ("ewma-alpha", "1"),
        ];
        if adapt {
            list.push(("adapt-history", "1000"));
        }
        let mut d = DriftDetector::new(DetectorConfig::from_pairs(&pairs(&list)).unwrap()).unwrap();
        let mut t = 0;
        let mut routine_alarms = 0;
        for i in 0..2000 {
            let noise = (f64::from(i) * 0.7).sin();
            let v = if i % 12 == 0 { 60.0 } else { 50.0 + noise };
            let out = d.push(&sample(t, v)).unwrap();
            if i >= 1000 && out.score >= 0.99 {
                routine_alarms += 1;
            }
            t += 1000;
        }
        let out = d.push(&sample(t, 90.0)).unwrap();
        (routine_alarms, out.score)
    }

    #[test]
    fn adaptive_scale_silences_routine_bursts_but_not_a_big_one() {
        let (plain_routine, plain_big) = bursty_peaks(false);
        let (adapted_routine, adapted_big) = bursty_peaks(true);
        assert!(
            plain_routine >= 50,
            "{plain_routine} routine alarms unadapted"
        );
        assert_eq!(adapted_routine, 0, "routine bursts still alarm");
        assert_eq!(plain_big, 1.0);
        assert_eq!(adapted_big, 1.0, "the big burst no longer alarms");
    }
}
