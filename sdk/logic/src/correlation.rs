//! The default correlation decision: signals that corroborate each other
//! across the primary's metrics, the shadow, the health checks and the
//! mirrored traffic. Each signal has a weight in [0, 1]; the score is their
//! noisy-OR (`1 − Π (1 − w)`), so independent signals agreeing raise the
//! confidence, and every signal that counted is listed, strongest first.
//!
//! The signals:
//! - `co-rise:A+B` — a configured rule: metrics A and B of the primary both
//!   rose against their baselines over the window, in step (Pearson r of
//!   their z-scores at least `min-correlation`). Weight: the smaller of the
//!   two rises mapped by `rise-high`, times r. The canonical example is CPU
//!   rising together with the 5xx rate.
//! - `divergence:M` — the primary deviates from its baseline on metric M
//!   much more than the shadow does from its own: a problem of the primary,
//!   not a change of the traffic both see.
//! - `health:NAME:failing`, `health:NAME:latency`, `health:NAME:5xx`,
//!   `health:NAME:db` — from the application health checks.
//! - `mirror:tcp-resets` — resets per flow in the mirrored sample.

use crate::Result;
use crate::config::{ConfigReader, num};
use crate::deviation::{Deviation, ZScoring};
use crate::drift::value;
use crate::stats::{noisy_or, pearson, positive, ramp};
use crate::text::{fixed, signed};
use crate::types::{ConfigPairs, CorrelationResult, DeviceWindow, Observation, SeriesRef, Signal};

/// A configured co-rise rule: both metrics of the primary rising together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoRise {
    /// First metric.
    pub a: String,
    /// Second metric.
    pub b: String,
}

/// Configuration of the default correlation decision.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `rules` | `cpu+http-5xx-rate,memory+http-5xx-rate,cpu+health-latency-ms` | co-rise rules `A+B`, comma-separated |
/// | `min-correlation` | 0.6 | Pearson r below which a co-rise does not count, in [-1, 1] |
/// | `rise-high` | 3 | rise over the window, in z, at which a metric's rise counts fully |
/// | `divergence-metrics` | (all) | metrics compared between primary and shadow; empty means every metric both have |
/// | `divergence-exclude` | `tx-pps,tx-bps` | metrics never compared (the shadow does not forward, so its transmit figures say nothing) |
/// | `divergence-low` | 2 | excess of the primary's \|z\| over the shadow's at which divergence starts to count |
/// | `divergence-high` | 6 | excess at which it counts fully |
/// | `latency-warn-ms` | 250 | health-check latency at which the latency signal starts |
/// | `latency-crit-ms` | 1000 | latency at which it is full |
/// | `error-ratio-warn` | 0.01 | share of 5xx among a check's responses at which the 5xx signal starts |
/// | `error-ratio-crit` | 0.2 | share at which it is full |
/// | `failed-check-weight` | 0.5 | weight of a failing health check, in [0, 1] |
/// | `db-down-weight` | 0.9 | weight of a lost database connection, in [0, 1] |
/// | `reset-ratio-warn` | 0.05 | TCP resets per mirrored flow at which the reset signal starts |
/// | `reset-ratio-crit` | 0.5 | resets per flow at which it is full |
/// | `min-weight` | 0.05 | signals lighter than this are neither counted nor listed, in [0, 1] |
///
/// plus the z-scoring keys of [`ZScoring`].
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationConfig {
    /// Co-rise rules.
    pub rules: Vec<CoRise>,
    /// Pearson r below which a co-rise does not count.
    pub min_correlation: f64,
    /// Rise over the window, in z, at which a metric's rise counts fully.
    pub rise_high: f64,
    /// Metrics compared between primary and shadow; empty means all common.
    pub divergence_metrics: Vec<String>,
    /// Metrics never compared between primary and shadow.
    pub divergence_exclude: Vec<String>,
    /// Excess |z| of the primary over the shadow where divergence starts.
    pub divergence_low: f64,
    /// Excess |z| where divergence counts fully.
    pub divergence_high: f64,
    /// Health-check latency where the latency signal starts, in ms.
    pub latency_warn_ms: f64,
    /// Health-check latency where the latency signal is full, in ms.
    pub latency_crit_ms: f64,
    /// Share of 5xx responses where the 5xx signal starts.
    pub error_ratio_warn: f64,
    /// Share of 5xx responses where the 5xx signal is full.
    pub error_ratio_crit: f64,
    /// Weight of a failing health check.
    pub failed_check_weight: f64,
    /// Weight of a lost database connection.
    pub db_down_weight: f64,
    /// TCP resets per mirrored flow where the reset signal starts.
    pub reset_ratio_warn: f64,
    /// TCP resets per mirrored flow where the reset signal is full.
    pub reset_ratio_crit: f64,
    /// Lightest signal counted and listed.
    pub min_weight: f64,
    /// How samples become z-scores.
    pub scoring: ZScoring,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            rules: default_rules(),
            min_correlation: 0.6,
            rise_high: 3.0,
            divergence_metrics: Vec::new(),
            divergence_exclude: ["tx-pps", "tx-bps"].map(str::to_owned).to_vec(),
            divergence_low: 2.0,
            divergence_high: 6.0,
            latency_warn_ms: 250.0,
            latency_crit_ms: 1000.0,
            error_ratio_warn: 0.01,
            error_ratio_crit: 0.2,
            failed_check_weight: 0.5,
            db_down_weight: 0.9,
            reset_ratio_warn: 0.05,
            reset_ratio_crit: 0.5,
            min_weight: 0.05,
            scoring: ZScoring::default(),
        }
    }
}

fn default_rules() -> Vec<CoRise> {
    [
        ("cpu", "http-5xx-rate"),
        ("memory", "http-5xx-rate"),
        ("cpu", "health-latency-ms"),
    ]
    .iter()
    .map(|(a, b)| CoRise {
        a: (*a).to_owned(),
        b: (*b).to_owned(),
    })
    .collect()
}

impl CorrelationConfig {
    /// Parses the WIT configuration; absent keys take their defaults.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidConfig`] listing every bad value, malformed
    /// rule, unknown key and inconsistency (a warn level not below its
    /// critical level).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self> {
        let d = Self::default();
        let mut r = ConfigReader::new(pairs);
        let rules = match r.raw("rules") {
            None => d.rules,
            Some(raw) => {
                let mut rules = Vec::new();
                for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match item.split_once('+').map(|(a, b)| (a.trim(), b.trim())) {
                        Some((a, b))
                            if !a.is_empty() && !b.is_empty() && !b.contains('+') && a != b =>
                        {
                            rules.push(CoRise {
                                a: a.to_owned(),
                                b: b.to_owned(),
                            });
                        }
                        _ => r.problem(
                            Some("rules"),
                            format!("expected two different metrics as `A+B`, got {item:?}"),
                        ),
                    }
                }
                rules
            }
        };
        let positive = |x: f64| x >= 0.0;
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        let config = Self {
            rules,
            min_correlation: r.f64(
                "min-correlation",
                d.min_correlation,
                |x| (-1.0..=1.0).contains(&x),
                "in [-1, 1]",
            ),
            rise_high: r.f64("rise-high", d.rise_high, |x| x > 0.0, "above 0"),
            divergence_metrics: r.list("divergence-metrics", d.divergence_metrics),
            divergence_exclude: r.list("divergence-exclude", d.divergence_exclude),
            divergence_low: r.f64("divergence-low", d.divergence_low, positive, "at least 0"),
            divergence_high: r.f64("divergence-high", d.divergence_high, positive, "at least 0"),
            latency_warn_ms: r.f64("latency-warn-ms", d.latency_warn_ms, positive, "at least 0"),
            latency_crit_ms: r.f64("latency-crit-ms", d.latency_crit_ms, positive, "at least 0"),
            error_ratio_warn: r.f64("error-ratio-warn", d.error_ratio_warn, unit, "in [0, 1]"),
            error_ratio_crit: r.f64("error-ratio-crit", d.error_ratio_crit, unit, "in [0, 1]"),
            failed_check_weight: r.f64(
                "failed-check-weight",
                d.failed_check_weight,
                unit,
                "in [0, 1]",
            ),
            db_down_weight: r.f64("db-down-weight", d.db_down_weight, unit, "in [0, 1]"),
            reset_ratio_warn: r.f64(
                "reset-ratio-warn",
                d.reset_ratio_warn,
                positive,
                "at least 0",
            ),
            reset_ratio_crit: r.f64(
                "reset-ratio-crit",
                d.reset_ratio_crit,
                positive,
                "at least 0",
            ),
            min_weight: r.f64("min-weight", d.min_weight, unit, "in [0, 1]"),
            scoring: ZScoring::read(&mut r),
        };
        for (low_key, low, high_key, high) in [
            (
                "divergence-low",
                config.divergence_low,
                "divergence-high",
                config.divergence_high,
            ),
            (
                "latency-warn-ms",
                config.latency_warn_ms,
                "latency-crit-ms",
                config.latency_crit_ms,
            ),
            (
                "error-ratio-warn",
                config.error_ratio_warn,
                "error-ratio-crit",
                config.error_ratio_crit,
            ),
            (
                "reset-ratio-warn",
                config.reset_ratio_warn,
                "reset-ratio-crit",
                config.reset_ratio_crit,
            ),
        ] {
            if low >= high {
                r.problem(
                    None,
                    format!("`{low_key}` ({low}) must be below `{high_key}` ({high})"),
                );
            }
        }
        r.finish()?;
        Ok(config)
    }

    /// The configuration as WIT pairs; [`CorrelationConfig::from_pairs`]
    /// parses them back to the same value.
    pub fn to_pairs(&self) -> ConfigPairs {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| format!("{}+{}", r.a, r.b))
            .collect();
        let mut out: ConfigPairs = vec![
            ("rules".into(), rules.join(",")),
            ("min-correlation".into(), num(self.min_correlation)),
            ("rise-high".into(), num(self.rise_high)),
            (
                "divergence-metrics".into(),
                self.divergence_metrics.join(","),
            ),
            (
                "divergence-exclude".into(),
                self.divergence_exclude.join(","),
            ),
            ("divergence-low".into(), num(self.divergence_low)),
            ("divergence-high".into(), num(self.divergence_high)),
            ("latency-warn-ms".into(), num(self.latency_warn_ms)),
            ("latency-crit-ms".into(), num(self.latency_crit_ms)),
            ("error-ratio-warn".into(), num(self.error_ratio_warn)),
            ("error-ratio-crit".into(), num(self.error_ratio_crit)),
            ("failed-check-weight".into(), num(self.failed_check_weight)),
            ("db-down-weight".into(), num(self.db_down_weight)),
            ("reset-ratio-warn".into(), num(self.reset_ratio_warn)),
            ("reset-ratio-crit".into(), num(self.reset_ratio_crit)),
            ("min-weight".into(), num(self.min_weight)),
        ];
        self.scoring.write(&mut out);
        out
    }
}

/// Every signal with a positive weight, heaviest first (ties by name),
/// including those below `min-weight`; [`correlation`] keeps the ones at or
/// above it.
pub fn signals(config: &CorrelationConfig, observation: &Observation) -> Vec<Signal> {
    collect(config, observation, f64::MIN_POSITIVE)
}

/// The default correlation decision (see the module documentation).
/// Deterministic, total: never panics, never returns NaN.
pub fn correlation(config: &CorrelationConfig, observation: &Observation) -> CorrelationResult {
    let signals = collect(
        config,
        observation,
        config.min_weight.max(f64::MIN_POSITIVE),
    );
    CorrelationResult {
        score: noisy_or(signals.iter().map(|s| s.weight)),
        signals,
    }
}

/// The signals weighing at least `keep`, sorted. Names and details are only
/// formatted for those (this runs on every tick).
fn collect(config: &CorrelationConfig, observation: &Observation, keep: f64) -> Vec<Signal> {
    let mut out = Signals {
        keep,
        list: Vec::new(),
    };
    let primary = Deviations::new(config, observation, &observation.primary);
    co_rise_signals(config, &primary, &mut out);
    divergence_signals(config, observation, &mut out);
    health_signals(config, observation, &mut out);
    mirror_signals(config, observation, &mut out);
    let mut list = out.list;
    list.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| a.name.cmp(&b.name))
    });
    list
}

/// The signals kept so far.
struct Signals {
    keep: f64,
    list: Vec<Signal>,
}

impl Signals {
    /// Keeps a signal if it weighs enough; `describe` gives its name and
    /// detail, and is only called then.
    fn push(&mut self, weight: f64, describe: impl FnOnce() -> (String, String)) {
        let weight = if weight.is_nan() {
            0.0
        } else {
            weight.clamp(0.0, 1.0)
        };
        if weight >= self.keep {
            let (name, detail) = describe();
            self.list.push(Signal {
                name,
                weight,
                detail,
            });
        }
    }
}

/// The deviation of each metric a co-rise rule names, computed once per
/// tick (the other metrics only need their level: see
/// [`divergence_signals`]).
struct Deviations<'a> {
    by_metric: Vec<(&'a str, Option<Deviation>)>,
}

impl<'a> Deviations<'a> {
    fn new(
        config: &CorrelationConfig,
        observation: &Observation,
        window: &'a DeviceWindow,
    ) -> Self {
        let mut by_metric: Vec<(&'a str, Option<Deviation>)> = Vec::new();
        for series in window.iter() {
            let named = config
                .rules
                .iter()
                .any(|r| r.a == series.name || r.b == series.name);
            // The first series of a name wins, as with `DeviceWindow::get`.
            if named && by_metric.iter().all(|(name, _)| *name != series.name) {
                let deviation =
                    Deviation::of(series, &observation.timestamps_ms, &config.scoring).ok();
                by_metric.push((series.name, deviation));
            }
        }
        Self { by_metric }
    }

    fn get(&self, metric: &str) -> Option<&Deviation> {
        self.by_metric
            .iter()
            .find(|(name, _)| *name == metric)
            .and_then(|(_, d)| d.as_ref())
    }
}

fn co_rise_signals(config: &CorrelationConfig, primary: &Deviations<'_>, out: &mut Signals) {
    for rule in &config.rules {
        let (Some(a), Some(b)) = (primary.get(&rule.a), primary.get(&rule.b)) else {
            continue;
        };
        let (za, zb) = aligned(a, b);
        let Some(r) = pearson(&za, &zb) else {
            continue;
        };
        if r < config.min_correlation {
            continue;
        }
        // Rise over the window: the slope of z times the span it covers.
        let rise_a = a.slope() * a.span_s();
        let rise_b = b.slope() * b.span_s();
        let weight = ramp(rise_a, 0.0, config.rise_high).min(ramp(rise_b, 0.0, config.rise_high))
            * positive(r);
        out.push(weight, || {
            (
                format!("co-rise:{}+{}", rule.a, rule.b),
                format!(
                    "{} rose {} z and {} rose {} z over the window, in step (r {})",
                    rule.a,
                    signed(rise_a, 2),
                    rule.b,
                    signed(rise_b, 2),
                    fixed(r, 2)
                ),
            )
        });
    }
}

/// The z-scores of `a` and `b` at the timestamps both have.
fn aligned(a: &Deviation, b: &Deviation) -> (Vec<f64>, Vec<f64>) {
    let (mut i, mut j) = (0, 0);
    let capacity = a.len().min(b.len());
    let (mut za, mut zb) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    while i < a.len() && j < b.len() {
        let (sa, sb) = (&a.samples[i], &b.samples[j]);
        match sa.timestamp_ms.cmp(&sb.timestamp_ms) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                za.push(sa.z);
                zb.push(sb.z);
                i += 1;
                j += 1;
            }
        }
    }
    (za, zb)
}

fn divergence_signals(config: &CorrelationConfig, observation: &Observation, out: &mut Signals) {
    let times = &observation.timestamps_ms;
    let mut seen: Vec<&str> = Vec::with_capacity(observation.primary.len());
    // The shadow's metrics, split once; both devices usually list the same
    // metrics in the same order, so the same position is tried first.
    let shadows: Vec<SeriesRef<'_>> = observation.shadow.iter().collect();
    for (k, primary) in observation.primary.iter().enumerate() {
        let metric = primary.name;
        // The first series of a name wins, as with `DeviceWindow::get`.
        if seen.contains(&metric) {
            continue;
        }
        seen.push(metric);
        if !config.divergence_metrics.is_empty()
            && !config.divergence_metrics.iter().any(|m| m == metric)
        {
            continue;
        }
        if config.divergence_exclude.iter().any(|m| m == metric) {
            continue;
        }
        let Ok(p) = Deviation::level_of(primary, times, &config.scoring) else {
            continue;
        };
        // The excess is at most |p| and `ramp` never decreases, so a
        // primary too close to its baseline weighs nothing whatever the
        // shadow does: the shadow's level is not needed.
        if ramp(p.abs(), config.divergence_low, config.divergence_high) == 0.0 {
            continue;
        }
        // The first series of a name, as with `DeviceWindow::get`.
        let shadow = match shadows.get(k) {
            Some(s) if s.name == metric && shadows[..k].iter().all(|e| e.name != metric) => {
                Some(*s)
            }
            _ => shadows.iter().find(|s| s.name == metric).copied(),
        };
        let Some(shadow) = shadow else {
            continue;
        };
        let Ok(s) = Deviation::level_of(shadow, times, &config.scoring) else {
            continue;
        };
        let excess = p.abs() - s.abs();
        out.push(
            ramp(excess, config.divergence_low, config.divergence_high),
            || {
                (
                    format!("divergence:{metric}"),
                    format!("primary z {}, shadow z {}", signed(p, 2), signed(s, 2)),
                )
            },
        );
    }
}

fn health_signals(config: &CorrelationConfig, observation: &Observation, out: &mut Signals) {
    for check in &observation.health {
        if !check.ok {
            out.push(config.failed_check_weight, || {
                (
                    format!("health:{}:failing", check.name),
                    "the check failed".to_owned(),
                )
            });
        }
        if check.latency_ms.is_finite() {
            out.push(
                ramp(
                    check.latency_ms,
                    config.latency_warn_ms,
                    config.latency_crit_ms,
                ),
                || {
                    (
                        format!("health:{}:latency", check.name),
                        format!(
                            "latency {} ms (warn {}, critical {})",
                            value(check.latency_ms),
                            value(config.latency_warn_ms),
                            value(config.latency_crit_ms)
                        ),
                    )
                },
            );
        }
        let total = check.status_classes.total();
        if total > 0 {
            let errors = check.status_classes.server_error;
            // u64 → f64 rounds only above 2^53 responses.
            let ratio = f64::from(errors) / total as f64;
            out.push(
                ramp(ratio, config.error_ratio_warn, config.error_ratio_crit),
                || {
                    (
                        format!("health:{}:5xx", check.name),
                        format!(
                            "{errors} of {total} responses were 5xx ({} %)",
                            fixed(ratio * 100.0, 1)
                        ),
                    )
                },
            );
        }
        if check.db_connected == Some(false) {
            out.push(config.db_down_weight, || {
                (
                    format!("health:{}:db", check.name),
                    "database connection lost".to_owned(),
                )
            });
        }
    }
}

fn mirror_signals(config: &CorrelationConfig, observation: &Observation, out: &mut Signals) {
    let mirror = &observation.mirror;
    if mirror.flows == 0 {
        return;
    }
    let ratio = f64::from(mirror.tcp_resets) / f64::from(mirror.flows);
    out.push(
        ramp(ratio, config.reset_ratio_warn, config.reset_ratio_crit),
        || {
            (
                "mirror:tcp-resets".to_owned(),
                format!(
                    "{} resets in {} mirrored flows ({} per flow)",
                    mirror.tcp_resets,
                    mirror.flows,
                    fixed(ratio, 2)
                ),
            )
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::types::{Baseline, DeviceWindow, HealthCheck, MirrorStats, Series, StatusClasses};

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

    fn times() -> Vec<i64> {
        (0..60).map(|i| 1000 * i).collect()
    }

    fn rising(from: f64, step: f64) -> Vec<f64> {
        (0..60).map(|i| from + step * f64::from(i)).collect()
    }

    #[test]
    fn default_config_round_trips_through_pairs() {
        let config = CorrelationConfig::default();
        assert_eq!(
            CorrelationConfig::from_pairs(&config.to_pairs()).unwrap(),
            config
        );
        assert_eq!(CorrelationConfig::from_pairs(&[]).unwrap(), config);
        let none = CorrelationConfig::from_pairs(&pairs(&[("rules", "")])).unwrap();
        assert!(none.rules.is_empty());
    }

    #[test]
    fn config_reports_every_problem() {
        let Err(Error::InvalidConfig(problems)) = CorrelationConfig::from_pairs(&pairs(&[
            ("rules", "cpu+5xx, cpu, a+a, x+y+z"),
            ("latency-warn-ms", "2000"),
            ("min-weight", "-1"),
        ])) else {
            panic!("expected an invalid configuration");
        };
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "`rules`: expected two different metrics as `A+B`, got \"cpu\"",
                "`rules`: expected two different metrics as `A+B`, got \"a+a\"",
                "`rules`: expected two different metrics as `A+B`, got \"x+y+z\"",
                "`min-weight`: expected a number in [0, 1], got \"-1\"",
                "`latency-warn-ms` (2000) must be below `latency-crit-ms` (1000)",
            ]
        );
    }

    #[test]
    fn cpu_rising_with_5xx_is_a_co_rise() {
        let observation = Observation {
            timestamps_ms: times(),
            primary: DeviceWindow::from_series(vec![
                series("cpu", rising(40.0, 0.5), 40.0, 5.0),
                series("http-5xx-rate", rising(0.01, 0.002), 0.01, 0.01),
            ])
            .unwrap(),
            ..Observation::default()
        };
        let result = correlation(&CorrelationConfig::default(), &observation);
        assert_eq!(result.signals.len(), 1, "{result:?}");
        let signal = &result.signals[0];
        assert_eq!(signal.name, "co-rise:cpu+http-5xx-rate");
        // cpu rises 29.5 / 5 = 5.9 z, 5xx 0.118 / 0.01 = 11.8 z, r = 1.
        assert!((signal.weight - 1.0).abs() < 1e-12, "{signal:?}");
        assert!((result.score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rising_apart_is_not_a_co_rise() {
        let falling: Vec<f64> = rising(0.13, -0.002);
        let observation = Observation {
            timestamps_ms: times(),
            primary: DeviceWindow::from_series(vec![
                series("cpu", rising(40.0, 0.5), 40.0, 5.0),
                series("http-5xx-rate", falling, 0.01, 0.01),
            ])
            .unwrap(),
            ..Observation::default()
        };
        assert_eq!(
            correlation(&CorrelationConfig::default(), &observation).score,
            0.0
        );
    }

    #[test]
    fn primary_diverging_from_shadow() {
        let observation = Observation {
            timestamps_ms: times(),
            primary: DeviceWindow::from_series(vec![series("cpu", vec![80.0; 60], 40.0, 5.0)])
                .unwrap(),
            shadow: DeviceWindow::from_series(vec![series("cpu", vec![10.0; 60], 10.0, 2.0)])
                .unwrap(),
            ..Observation::default()
        };
        let result = correlation(&CorrelationConfig::default(), &observation);
        assert_eq!(result.signals.len(), 1);
        assert_eq!(result.signals[0].name, "divergence:cpu");
        // Excess |z| is 8 - 0 = 8, above `divergence-high`.
        assert_eq!(result.signals[0].weight, 1.0);
        assert_eq!(result.signals[0].detail, "primary z +8.00, shadow z +0.00");
    }

    #[test]
    fn health_and_mirror_signals_combine_by_noisy_or() {
        let observation = Observation {
            health: vec![
                HealthCheck {
                    name: "web".into(),
                    ok: false,
                    latency_ms: 625.0,
                    status_classes: StatusClasses {
                        success: 90,
                        server_error: 10,
                        ..StatusClasses::default()
                    },
                    db_connected: None,
                },
                HealthCheck {
                    name: "db".into(),
                    ok: true,
                    latency_ms: 3.0,
                    db_connected: Some(false),
                    ..HealthCheck::default()
                },
            ],
            mirror: MirrorStats {
                flows: 100,
                tcp_resets: 2,
                ..MirrorStats::default()
            },
            ..Observation::default()
        };
        let result = correlation(&CorrelationConfig::default(), &observation);
        let names: Vec<(&str, f64)> = result
            .signals
            .iter()
            .map(|s| (s.name.as_str(), s.weight))
            .collect();
        // 5xx share 0.1 → (0.1 - 0.01) / 0.19; latency 625 → 0.5.
        let err = (0.1 - 0.01) / (0.2 - 0.01);
        assert_eq!(
            names,
            vec![
                ("health:db:db", 0.9),
                ("health:web:failing", 0.5),
                ("health:web:latency", 0.5),
                ("health:web:5xx", err),
            ]
        );
        let expected = 1.0 - (1.0 - 0.9) * (1.0 - 0.5) * (1.0 - 0.5) * (1.0 - err);
        assert!((result.score - expected).abs() < 1e-12);
    }

    #[test]
    fn nothing_observed_scores_zero() {
        let result = correlation(&CorrelationConfig::default(), &Observation::default());
        assert_eq!(result, CorrelationResult::default());
    }
}
