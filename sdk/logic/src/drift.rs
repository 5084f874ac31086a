//! The default drift decision: how strongly, and above all how fast, the
//! primary's metrics move away from their historical baselines.
//!
//! For each metric of the primary, [`Deviation::of`] gives the z-scores of
//! the window against the baseline. Three measures come out of them:
//! - **rate**: the least-squares slope of |z| (or, for metrics configured
//!   `rising-only` / `falling-only`, of the deviation on that side) over the newest
//!   `rate-window` samples, in z per second (how fast the deviation grows);
//! - **cusum**: the upward CUSUM of the derivative of |z| over the same
//!   samples (how much growth a rate above `cusum-slack` has accumulated —
//!   it resets when the deviation stops growing, so a spike that has passed
//!   scores nothing);
//! - **level**: the EWMA of z, the current deviation.
//!
//! They are mapped onto [0, 1] by linear ramps, and the metric's score is
//! `rate-weight × (rate part + cusum part) / 2 + (1 − rate-weight) × level
//! part`: the rate of change dominates, as the patent's per-time-frame
//! baseline is extended from detecting to predicting. The drift score is the
//! highest metric score, and the explanation names that metric with its
//! numbers.
//!
//! **Shadow-relative** (`shadow-relative`, on by default): the shadow sees
//! the same traffic (mirrored), so a load surge moves both devices while a
//! failing primary moves alone. Where the shadow has the same metric, the
//! ramps take what the primary shows *beyond* the shadow: its rate minus the
//! shadow's growth, its cusum minus the shadow's, its |level| minus the
//! shadow's, the shadow's deviation counted on the primary's side of the
//! baseline only (a shadow deviating the other way, or recovering, shares
//! nothing). Such a score is never above
//! the primary's own, so metrics the primary alone scores 0 are not looked
//! up on the shadow. Without a shadow series (or with the option off) a
//! metric is scored on the primary alone, as the patent's baseline does.

use std::fmt::Write as _;

use crate::Result;
use crate::config::{ConfigReader, num};
use crate::deviation::{Deviation, Direction, Growth, Unusable, ZScoring};
use crate::stats::{positive, ramp};
use crate::text::{fixed, signed};
use crate::types::{ConfigPairs, DriftResult, Observation};

/// Metric scores at or above this are listed after the leading metric.
const ALSO_MIN_SCORE: f64 = 0.25;
/// At most this many other metrics are listed.
const ALSO_MAX: usize = 3;

/// Configuration of the default drift decision.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `metrics` | (all) | comma-separated metrics of the primary to score; empty means every one |
/// | `rising-only` | (none) | metrics whose deviation counts only above the baseline |
/// | `falling-only` | `rx-pps,tx-pps,rx-bps,tx-bps` | metrics whose deviation counts only below the baseline (for traffic volumes a rise is load, a fall is failure) |
/// | `rate-window` | 30 | newest samples the rate and the cusum look at (≥ 3) |
/// | `rate-high` | 0.1 | growth of \|z\| per second at which the rate part is 1 |
/// | `cusum-slack` | 0.02 | growth of \|z\| per second the cusum tolerates |
/// | `cusum-high` | 6 | accumulated growth of \|z\| at which the cusum part is 1 |
/// | `z-low` | 2 | \|level\| below which the level part is 0 |
/// | `z-high` | 6 | \|level\| at which the level part is 1 |
/// | `rate-weight` | 0.6 | weight of the rate of change against the level, in [0, 1] |
/// | `shadow-relative` | true | score what the primary does beyond what the shadow does on the same metric (see below) |
///
/// plus the z-scoring keys of [`ZScoring`] (`ewma-alpha`, `min-samples`,
/// `min-baseline-samples`, `min-stddev-ratio`).
#[derive(Clone, Debug, PartialEq)]
pub struct DriftConfig {
    /// Metrics of the primary to score; empty means every one.
    pub metrics: Vec<String>,
    /// Metrics whose deviation counts only above the baseline.
    pub rising_only: Vec<String>,
    /// Metrics whose deviation counts only below the baseline.
    pub falling_only: Vec<String>,
    /// How samples become z-scores.
    pub scoring: ZScoring,
    /// Newest samples the rate and the cusum look at.
    pub rate_window: usize,
    /// Growth of |z| per second at which the rate part is 1.
    pub rate_high: f64,
    /// Growth of |z| per second that the cusum tolerates.
    pub cusum_slack: f64,
    /// Accumulated growth of |z| at which the cusum part is 1.
    pub cusum_high: f64,
    /// |level| below which the level part is 0.
    pub z_low: f64,
    /// |level| at which the level part is 1.
    pub z_high: f64,
    /// Weight of the rate of change against the level.
    pub rate_weight: f64,
    /// Score the primary's drift beyond the shadow's on the same metric.
    pub shadow_relative: bool,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            metrics: Vec::new(),
            rising_only: Vec::new(),
            falling_only: ["rx-pps", "tx-pps", "rx-bps", "tx-bps"]
                .map(str::to_owned)
                .to_vec(),
            scoring: ZScoring::default(),
            rate_window: 30,
            rate_high: 0.1,
            cusum_slack: 0.02,
            cusum_high: 6.0,
            z_low: 2.0,
            z_high: 6.0,
            rate_weight: 0.6,
            shadow_relative: true,
        }
    }
}

impl DriftConfig {
    /// Parses the WIT configuration; absent keys take their defaults.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidConfig`] listing every bad value, unknown key
    /// and inconsistency (e.g. `z-low` not below `z-high`).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self> {
        let d = Self::default();
        let mut r = ConfigReader::new(pairs);
        let config = Self {
            metrics: r.list("metrics", d.metrics),
            rising_only: r.list("rising-only", d.rising_only),
            falling_only: r.list("falling-only", d.falling_only),
            scoring: ZScoring::read(&mut r),
            rate_window: r.usize("rate-window", d.rate_window, |n| n >= 3, "at least 3"),
            rate_high: r.f64("rate-high", d.rate_high, |x| x > 0.0, "above 0"),
            cusum_slack: r.f64("cusum-slack", d.cusum_slack, |x| x >= 0.0, "at least 0"),
            cusum_high: r.f64("cusum-high", d.cusum_high, |x| x > 0.0, "above 0"),
            z_low: r.f64("z-low", d.z_low, |x| x >= 0.0, "at least 0"),
            z_high: r.f64("z-high", d.z_high, |x| x > 0.0, "above 0"),
            rate_weight: r.f64(
                "rate-weight",
                d.rate_weight,
                |x| (0.0..=1.0).contains(&x),
                "in [0, 1]",
            ),
            shadow_relative: r.bool("shadow-relative", d.shadow_relative),
        };
        for metric in &config.rising_only {
            if config.falling_only.contains(metric) {
                r.problem(
                    None,
                    format!("`{metric}` is in both `rising-only` and `falling-only`"),
                );
            }
        }
        if config.z_low >= config.z_high {
            r.problem(
                None,
                format!(
                    "`z-low` ({}) must be below `z-high` ({})",
                    config.z_low, config.z_high
                ),
            );
        }
        r.finish()?;
        Ok(config)
    }

    /// The configuration as WIT pairs; [`DriftConfig::from_pairs`] parses
    /// them back to the same value.
    pub fn to_pairs(&self) -> ConfigPairs {
        let mut out = vec![
            ("metrics".to_owned(), self.metrics.join(",")),
            ("rising-only".to_owned(), self.rising_only.join(",")),
            ("falling-only".to_owned(), self.falling_only.join(",")),
        ];
        self.scoring.write(&mut out);
        out.extend([
            ("rate-window".to_owned(), self.rate_window.to_string()),
            ("rate-high".to_owned(), num(self.rate_high)),
            ("cusum-slack".to_owned(), num(self.cusum_slack)),
            ("cusum-high".to_owned(), num(self.cusum_high)),
            ("z-low".to_owned(), num(self.z_low)),
            ("z-high".to_owned(), num(self.z_high)),
            ("rate-weight".to_owned(), num(self.rate_weight)),
            (
                "shadow-relative".to_owned(),
                self.shadow_relative.to_string(),
            ),
        ]);
        out
    }
}

impl DriftConfig {
    /// Which side of the baseline counts for `metric`.
    pub fn direction(&self, metric: &str) -> Direction {
        if self.rising_only.iter().any(|m| m == metric) {
            Direction::Rising
        } else if self.falling_only.iter().any(|m| m == metric) {
            Direction::Falling
        } else {
            Direction::Both
        }
    }
}

/// The drift of one metric and how it was scored.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricDrift<'a> {
    /// Metric name (borrowed from the observation: scoring a window
    /// allocates nothing per metric).
    pub metric: &'a str,
    /// Which side of the baseline counted.
    pub direction: Direction,
    /// Score of the metric, in [0, 1].
    pub score: f64,
    /// Growth of |z|, in z per second (least-squares slope).
    pub rate: f64,
    /// Upward CUSUM of the derivative of |z|, in z.
    pub cusum: f64,
    /// Current deviation: EWMA of z (signed).
    pub level: f64,
    /// Rate part of the score, in [0, 1].
    pub rate_part: f64,
    /// Cusum part of the score, in [0, 1].
    pub cusum_part: f64,
    /// Level part of the score, in [0, 1].
    pub level_part: f64,
    /// Newest value of the metric.
    pub value: f64,
    /// Baseline mean.
    pub mean: f64,
    /// Standard deviation the z-scores used.
    pub sigma: f64,
    /// Samples used.
    pub samples: usize,
    /// The shadow's own drift on the same metric, when the score was made
    /// shadow-relative.
    pub shadow: Option<ShadowDrift>,
    /// The score the primary alone would get (equal to `score` unless the
    /// shadow drifts too).
    pub primary_score: f64,
}

/// The shadow's drift on a metric, which a shadow-relative score discounts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShadowDrift {
    /// Growth of the shadow's |z|, in z per second.
    pub rate: f64,
    /// Upward CUSUM of the derivative of the shadow's |z|, in z.
    pub cusum: f64,
    /// The shadow's deviation: EWMA of its z (signed).
    pub level: f64,
    /// The part of `level` on the primary's side of the baseline (≥ 0).
    pub magnitude: f64,
}

/// Every metric's drift, strongest first, and the metrics that could not be
/// scored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DriftAnalysis<'a> {
    /// Scored metrics by decreasing score (ties keep the window's order).
    pub metrics: Vec<MetricDrift<'a>>,
    /// Metrics left out, with the reason.
    pub skipped: Vec<(&'a str, String)>,
}

/// Scores every selected metric of the primary.
pub fn analyse<'a>(config: &'a DriftConfig, observation: &'a Observation) -> DriftAnalysis<'a> {
    let (mut analysis, growths) = primary_alone(config, observation);
    for (scored, growth) in analysis.metrics.iter_mut().zip(&growths) {
        relate_to_shadow(config, observation, scored, growth);
    }
    // A stable sort keeps ties in the window's order: deterministic.
    analysis.metrics.sort_by(|a, b| b.score.total_cmp(&a.score));
    analysis
}

/// What [`drift`] needs of [`analyse`], for less: the leading metric and the
/// others at or above [`ALSO_MIN_SCORE`] exactly as `analyse` gives them, in
/// the same order; the other metrics keep their primary-alone score, which
/// is an upper bound of their shadow-relative one. A shadow-relative score
/// is never above the primary's own, so a metric whose own score is below
/// both [`ALSO_MIN_SCORE`] and the best score found so far can neither lead
/// nor be listed, and its shadow is not looked at.
fn analyse_decisive<'a>(
    config: &'a DriftConfig,
    observation: &'a Observation,
) -> DriftAnalysis<'a> {
    let (mut analysis, growths) = primary_alone(config, observation);
    if config.shadow_relative {
        let mut order: Vec<usize> = (0..analysis.metrics.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&analysis.metrics[a], &analysis.metrics[b]);
            b.score.total_cmp(&a.score)
        });
        let mut best = f64::NEG_INFINITY;
        for i in order {
            let scored = &mut analysis.metrics[i];
            if scored.score < ALSO_MIN_SCORE && scored.score < best {
                break;
            }
            relate_to_shadow(config, observation, scored, &growths[i]);
            if scored.score > best {
                best = scored.score;
            }
        }
    }
    analysis.metrics.sort_by(|a, b| b.score.total_cmp(&a.score));
    analysis
}

/// Every selected metric scored on the primary alone (in the window's
/// order, with its growth), and the metrics that could not be scored.
fn primary_alone<'a>(
    config: &'a DriftConfig,
    observation: &'a Observation,
) -> (DriftAnalysis<'a>, Vec<Growth>) {
    let mut analysis = DriftAnalysis {
        metrics: Vec::with_capacity(observation.primary.len()),
        skipped: Vec::new(),
    };
    let mut growths = Vec::with_capacity(observation.primary.len());
    for name in &config.metrics {
        if observation.primary.get(name).is_none() {
            analysis.skipped.push((name, "not observed".to_owned()));
        }
    }
    let selected = observation
        .primary
        .iter()
        .filter(|s| config.metrics.is_empty() || config.metrics.iter().any(|m| m == s.name));
    for series in selected {
        let direction = config.direction(series.name);
        let growth = Deviation::growth(
            series,
            &observation.timestamps_ms,
            &config.scoring,
            config.rate_window,
            config.cusum_slack,
            direction,
        );
        match growth {
            Ok(growth) => {
                analysis
                    .metrics
                    .push(score_metric(config, series.name, direction, &growth, None));
                growths.push(growth);
            }
            Err(why) => analysis.skipped.push((series.name, unusable(&why))),
        }
    }
    (analysis, growths)
}

/// Makes `scored` (the primary alone) shadow-relative when configured and
/// the shadow has the metric.
fn relate_to_shadow<'a>(
    config: &DriftConfig,
    observation: &Observation,
    scored: &mut MetricDrift<'a>,
    growth: &Growth,
) {
    // A shadow-relative score is never above the primary's own (it
    // subtracts what the shadow shows), so a metric the primary alone
    // scores 0 needs no look at the shadow.
    if !config.shadow_relative || scored.score <= 0.0 {
        return;
    }
    // Only a shadow deviating the same way shares the drift.
    let shared = match scored.direction {
        Direction::Both if growth.level < 0.0 => Direction::Falling,
        Direction::Both => Direction::Rising,
        one_sided => one_sided,
    };
    if let Some(shadow) = shadow_drift(config, observation, scored.metric, shared) {
        let alone = scored.score;
        *scored = score_metric(
            config,
            scored.metric,
            scored.direction,
            growth,
            Some(shadow),
        );
        scored.primary_score = alone;
    }
}

fn unusable(why: &Unusable) -> String {
    why.to_string()
}

/// The shadow's drift on `metric` in `direction` (the side of the baseline
/// the primary is on), if the shadow has a usable series of it.
fn shadow_drift(
    config: &DriftConfig,
    observation: &Observation,
    metric: &str,
    direction: Direction,
) -> Option<ShadowDrift> {
    let series = observation.shadow.get(metric)?;
    let g = Deviation::growth(
        series,
        &observation.timestamps_ms,
        &config.scoring,
        config.rate_window,
        config.cusum_slack,
        direction,
    )
    .ok()?;
    Some(ShadowDrift {
        rate: g.rate,
        cusum: g.cusum,
        level: g.level,
        magnitude: direction.magnitude(g.level),
    })
}

fn score_metric<'a>(
    config: &DriftConfig,
    metric: &'a str,
    direction: Direction,
    g: &Growth,
    shadow: Option<ShadowDrift>,
) -> MetricDrift<'a> {
    // What the primary shows beyond the shadow: the shadow's growth and
    // deviation (never its recovery) are subtracted.
    let (rate, cusum, magnitude) = match shadow {
        Some(s) => (
            g.rate - positive(s.rate),
            g.cusum - s.cusum,
            direction.magnitude(g.level) - s.magnitude,
        ),
        None => (g.rate, g.cusum, direction.magnitude(g.level)),
    };
    let rate_part = ramp(rate, 0.0, config.rate_high);
    let cusum_part = ramp(cusum, 0.0, config.cusum_high);
    let level_part = ramp(magnitude, config.z_low, config.z_high);
    let w = config.rate_weight.clamp(0.0, 1.0);
    let score = (w * (rate_part + cusum_part) / 2.0 + (1.0 - w) * level_part).clamp(0.0, 1.0);
    let score = if score.is_nan() { 0.0 } else { score };
    MetricDrift {
        metric,
        direction,
        score,
        primary_score: score,
        rate: g.rate,
        cusum: g.cusum,
        level: g.level,
        rate_part,
        cusum_part,
        level_part,
        value: g.last_value,
        mean: g.mean,
        sigma: g.sigma,
        samples: g.samples,
        shadow,
    }
}

/// The default drift decision (see the module documentation).
///
/// `rate_of_change` is the leading metric's growth of |z| per second (0 when
/// no metric could be scored). Deterministic, total: never panics, never
/// returns NaN.
pub fn drift(config: &DriftConfig, observation: &Observation) -> DriftResult {
    explain(&analyse_decisive(config, observation))
}

/// The drift result of an analysis: the leading metric's score, rate and
/// explanation. `explain(&analyse(c, o)) == drift(c, o)`.
pub fn explain(analysis: &DriftAnalysis<'_>) -> DriftResult {
    let mut explanation = String::new();
    let (score, rate_of_change) = match analysis.metrics.first() {
        Some(top) => {
            let _ = write!(
                explanation,
                "{} drifts most, score {}: |z| growing {}/s (cusum {}), z {} ({} vs baseline {}±{}, {} samples)",
                top.metric,
                fixed(top.score, 2),
                signed(top.rate, 3),
                fixed(top.cusum, 2),
                signed(top.level, 2),
                value(top.value),
                value(top.mean),
                value(top.sigma),
                top.samples,
            );
            // Shown when the shadow made a visible difference.
            match top.shadow {
                Some(shadow) if top.primary_score - top.score >= 0.005 => {
                    let _ = write!(
                        explanation,
                        "; {} on the primary alone, but the shadow drifts too: |z| growing {}/s (cusum {}), z {}",
                        fixed(top.primary_score, 2),
                        signed(shadow.rate, 3),
                        fixed(shadow.cusum, 2),
                        signed(shadow.level, 2)
                    );
                }
                _ => {}
            }
            let also = analysis.metrics[1..]
                .iter()
                .filter(|m| m.score >= ALSO_MIN_SCORE)
                .take(ALSO_MAX);
            for (i, m) in also.enumerate() {
                let lead = if i == 0 { "; also" } else { "," };
                let _ = write!(explanation, "{lead} {} {}", m.metric, fixed(m.score, 2));
            }
            (top.score, top.rate)
        }
        None => {
            explanation.push_str("no metric of the primary could be scored");
            (0.0, 0.0)
        }
    };
    for (i, (name, why)) in analysis.skipped.iter().enumerate() {
        let lead = if i == 0 { "; skipped" } else { "," };
        let _ = write!(explanation, "{lead} {name} ({why})");
    }
    DriftResult {
        score,
        rate_of_change,
        explanation,
    }
}

/// A metric value with as many decimals as its magnitude deserves, written
/// straight into the explanation (no intermediate string).
pub(crate) fn value(x: f64) -> Value {
    Value(x)
}

/// See [`value`].
pub(crate) struct Value(f64);

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = self.0;
        let a = x.abs();
        let decimals = if a >= 1000.0 {
            0
        } else if a >= 10.0 {
            1
        } else if a >= 0.1 || a == 0.0 {
            2
        } else {
            4
        };
        fixed(x, decimals).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::types::{Baseline, DeviceWindow, Series};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn series(name: &str, values: Vec<f64>, mean: f64, stddev: f64) -> Series {
        Series {
            name: name.into(),
            values,
            missing: Vec::new(),
            baseline: Baseline {
                mean,
                stddev,
                samples: 500,
            },
        }
    }

    fn observation(series: Vec<Series>) -> Observation {
        Observation {
            now_ms: 1_700_000_059_000,
            timestamps_ms: (0..60).map(|i| 1_700_000_000_000 + 1000 * i).collect(),
            primary: DeviceWindow::from_series(series).unwrap(),
            ..Observation::default()
        }
    }

    #[test]
    fn default_config_round_trips_through_pairs() {
        let config = DriftConfig::default();
        assert_eq!(DriftConfig::from_pairs(&config.to_pairs()).unwrap(), config);
        assert_eq!(DriftConfig::from_pairs(&[]).unwrap(), config);
        let custom = DriftConfig {
            metrics: vec!["cpu".into(), "memory".into()],
            rate_high: 0.25,
            ..config
        };
        assert_eq!(DriftConfig::from_pairs(&custom.to_pairs()).unwrap(), custom);
    }

    #[test]
    fn config_reports_every_problem() {
        let Err(Error::InvalidConfig(problems)) = DriftConfig::from_pairs(&pairs(&[
            ("z-low", "7"),
            ("rate-weight", "2"),
            ("ewma-alpha", "0"),
            ("thresold", "0.5"),
        ])) else {
            panic!("expected an invalid configuration");
        };
        let keys: Vec<Option<&str>> = problems.iter().map(|p| p.key.as_deref()).collect();
        assert_eq!(
            keys,
            vec![
                Some("ewma-alpha"),
                Some("rate-weight"),
                None,
                Some("thresold")
            ]
        );
        assert!(
            problems[2]
                .message
                .contains("`z-low` (7) must be below `z-high` (6)")
        );
    }

    /// A CPU ramp from 50 to 80 over the newest 30 samples (baseline 50 ± 5).
    fn cpu_ramp(height: f64) -> Series {
        let values = (0..60)
            .map(|i| 50.0 + height * (f64::from(i) - 29.0).max(0.0) / 30.0)
            .collect();
        series("cpu", values, 50.0, 5.0)
    }

    #[test]
    fn a_drift_the_shadow_shares_is_discounted() {
        let config = DriftConfig::default();
        let alone = drift(&config, &observation(vec![cpu_ramp(30.0)]));
        assert!(alone.score > 0.7, "{alone:?}");
        assert!(
            !alone.explanation.contains("shadow"),
            "{}",
            alone.explanation
        );

        // The same surge on the shadow: nothing left beyond it.
        let mut shared = observation(vec![cpu_ramp(30.0)]);
        shared.shadow = DeviceWindow::from_series(vec![cpu_ramp(30.0)]).unwrap();
        let both = drift(&config, &shared);
        assert_eq!(both.score, 0.0, "{both:?}");

        // Half of it on the shadow: the primary's excess still scores,
        // below the primary alone, and the explanation says why.
        let mut half = observation(vec![cpu_ramp(30.0)]);
        half.shadow = DeviceWindow::from_series(vec![cpu_ramp(15.0)]).unwrap();
        let partly = drift(&config, &half);
        assert!(
            partly.score > 0.0 && partly.score < alone.score,
            "{partly:?}"
        );
        assert!(
            partly
                .explanation
                .contains("on the primary alone, but the shadow drifts too"),
            "{}",
            partly.explanation
        );

        // A shadow deviating the other way shares nothing.
        let mut opposite = observation(vec![cpu_ramp(30.0)]);
        opposite.shadow = DeviceWindow::from_series(vec![cpu_ramp(-30.0)]).unwrap();
        assert_eq!(drift(&config, &opposite).score, alone.score);

        // Off, the shadow is not looked at.
        let off = DriftConfig {
            shadow_relative: false,
            ..DriftConfig::default()
        };
        assert_eq!(drift(&off, &shared), alone);
        // A shadow without the metric leaves the primary's score alone.
        let mut other = observation(vec![cpu_ramp(30.0)]);
        other.shadow =
            DeviceWindow::from_series(vec![series("memory", vec![40.0; 60], 40.0, 2.0)]).unwrap();
        assert_eq!(drift(&config, &other), alone);
    }

    #[test]
    fn drift_looks_at_the_shadow_only_where_it_matters_and_answers_the_same() {
        // Ramps of every height on both devices, so that metrics lead, are
        // listed, or neither, before and after the shadow is subtracted.
        let names = ["cpu", "memory", "drops", "http-5xx-rate", "tcp-resets"];
        let window = |heights: &[f64]| {
            DeviceWindow::from_series(
                names
                    .iter()
                    .zip(heights)
                    .map(|(name, &h)| Series {
                        name: (*name).into(),
                        ..cpu_ramp(h)
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let config = DriftConfig::default();
        let mut state = 7_u64;
        for _ in 0..300 {
            let mut height = || {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 33) as f64 / f64::from(1u32 << 31) * 40.0 - 8.0
            };
            let primary: Vec<f64> = (0..5).map(|_| height()).collect();
            let shadow: Vec<f64> = (0..5).map(|_| height()).collect();
            let mut o = observation(Vec::new());
            o.primary = window(&primary);
            o.shadow = window(&shadow);
            let full = explain(&analyse(&config, &o));
            assert_eq!(drift(&config, &o), full, "{primary:?} {shadow:?}");
        }
    }

    #[test]
    fn a_steep_ramp_scores_high_and_names_the_metric() {
        let flat = vec![50.0; 60];
        let ramp: Vec<f64> = (0..60)
            .map(|i| {
                if i < 30 {
                    50.0
                } else {
                    50.0 + 2.0 * f64::from(i - 30)
                }
            })
            .collect();
        let result = drift(
            &DriftConfig::default(),
            &observation(vec![
                series("memory", flat, 50.0, 5.0),
                series("cpu", ramp, 50.0, 5.0),
            ]),
        );
        // The rate of |z| is 0.4 z/s, four times `rate-high`.
        assert!((result.rate_of_change - 0.4).abs() < 1e-9, "{result:?}");
        assert!(result.score > 0.9, "{result:?}");
        assert!(
            result.explanation.starts_with("cpu drifts most"),
            "{}",
            result.explanation
        );
    }

    #[test]
    fn a_steady_window_scores_zero() {
        let result = drift(
            &DriftConfig::default(),
            &observation(vec![series("cpu", vec![50.0; 60], 50.0, 5.0)]),
        );
        assert_eq!(result.score, 0.0);
        assert_eq!(result.rate_of_change, 0.0);
    }

    #[test]
    fn a_spike_that_has_passed_scores_low() {
        let values: Vec<f64> = (0..60)
            .map(|i| if (28..32).contains(&i) { 90.0 } else { 50.0 })
            .collect();
        let result = drift(
            &DriftConfig::default(),
            &observation(vec![series("cpu", values, 50.0, 5.0)]),
        );
        assert!(result.score < 0.1, "{result:?}");
    }

    #[test]
    fn a_high_but_flat_level_is_capped_by_the_level_weight() {
        let result = drift(
            &DriftConfig::default(),
            &observation(vec![series("cpu", vec![90.0; 60], 50.0, 5.0)]),
        );
        assert_eq!(result.score, 0.4);
    }

    #[test]
    fn selected_metrics_only_and_missing_ones_reported() {
        let ramp: Vec<f64> = (0..60).map(|i| 50.0 + 2.0 * f64::from(i)).collect();
        let config = DriftConfig {
            metrics: vec!["memory".into(), "disk".into()],
            ..DriftConfig::default()
        };
        let result = drift(
            &config,
            &observation(vec![
                series("cpu", ramp, 50.0, 5.0),
                series("memory", vec![50.0; 60], 50.0, 5.0),
            ]),
        );
        assert_eq!(result.score, 0.0);
        assert!(
            result.explanation.starts_with("memory drifts most"),
            "{}",
            result.explanation
        );
        assert!(
            result
                .explanation
                .ends_with("; skipped disk (not observed)"),
            "{}",
            result.explanation
        );
    }

    #[test]
    fn traffic_volumes_count_only_when_they_fall() {
        let surge: Vec<f64> = (0..60).map(|i| 100_000.0 + 1000.0 * f64::from(i)).collect();
        let collapse: Vec<f64> = (0..60).map(|i| 100_000.0 - 1000.0 * f64::from(i)).collect();
        let config = DriftConfig::default();
        let up = drift(
            &config,
            &observation(vec![series("rx-pps", surge.clone(), 100_000.0, 5000.0)]),
        );
        let down = drift(
            &config,
            &observation(vec![series("rx-pps", collapse, 100_000.0, 5000.0)]),
        );
        assert_eq!(up.score, 0.0, "{up:?}");
        assert!(down.score > 0.9, "{down:?}");
        let both = DriftConfig {
            falling_only: Vec::new(),
            ..DriftConfig::default()
        };
        assert!(
            drift(
                &both,
                &observation(vec![series("rx-pps", surge, 100_000.0, 5000.0)])
            )
            .score
                > 0.9
        );
    }

    #[test]
    fn a_metric_cannot_be_rising_and_falling_only() {
        let err = DriftConfig::from_pairs(&pairs(&[
            ("rising-only", "cpu"),
            ("falling-only", "cpu,rx-pps"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `cpu` is in both `rising-only` and `falling-only`"
        );
    }

    #[test]
    fn nothing_scorable_gives_zero_and_says_so() {
        let mut s = series("cpu", vec![1.0; 60], 1.0, 1.0);
        s.baseline.samples = 0;
        let result = drift(&DriftConfig::default(), &observation(vec![s]));
        assert_eq!(result.score, 0.0);
        assert_eq!(
            result.explanation,
            "no metric of the primary could be scored; skipped cpu (no baseline yet: 0 of 10 samples)"
        );
    }

    #[test]
    fn values_are_formatted_by_magnitude() {
        assert_eq!(value(123_456.7).to_string(), "123457");
        assert_eq!(value(35.04).to_string(), "35.0");
        assert_eq!(value(0.5).to_string(), "0.50");
        assert_eq!(value(0.0123).to_string(), "0.0123");
        assert_eq!(value(0.0).to_string(), "0.00");
    }
}
