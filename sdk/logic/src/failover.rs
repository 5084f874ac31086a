//! The default failover decision: the OR rule of the design — fail over when
//! the drift score crosses its threshold OR the predictor's probability
//! crosses its threshold (OR, when configured, the correlation score crosses
//! a third one) — held back by hysteresis, a cooldown after each failover and
//! a cap per hour.
//!
//! Correlation also raises confidence: when its score reaches
//! `corroboration-threshold`, fewer consecutive evaluations over threshold
//! are needed (`corroborated-hysteresis` instead of `hysteresis`). Drift on
//! its own — neither the predictor nor the correlation over threshold, nor
//! corroboration — must hold longer (`drift-hysteresis`): a benign blip on
//! the primary moves its baselines as sharply as the start of a fault does,
//! but only a fault keeps going.
//!
//! The decision is a pure function of its input: the hysteresis count and
//! the failover times travel in [`FailoverState`], in the input and back in
//! the decision. Time is the input's `now_ms`; nothing here reads a clock.

use std::fmt::Write as _;

use crate::Result;
use crate::config::{ConfigReader, num};
use crate::text::fixed;
use crate::types::{ConfigPairs, FailoverDecision, FailoverInput, FailoverState, Verdict};

/// One hour, in milliseconds: the window of the cap.
pub const HOUR_MS: i64 = 3_600_000;

/// Configuration of the default failover decision.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `drift-threshold` | 0.7 | drift score at or above which drift is over threshold, in [0, 1] |
/// | `probability-threshold` | 0.8 | predictor probability at or above which it is over threshold, in [0, 1] |
/// | `correlation-threshold` | `off` | correlation score that is a trigger on its own, in [0, 1], or `off` |
/// | `corroboration-threshold` | 0.5 | correlation score at or above which a trigger counts as corroborated, in [0, 1] |
/// | `hysteresis` | 3 | consecutive evaluations over threshold needed to go (≥ 1) |
/// | `corroborated-hysteresis` | 2 | the same when corroborated (≥ 1, at most `hysteresis`) |
/// | `drift-hysteresis` | 240 | the same when drift is the only trigger over threshold and uncorroborated (≥ 1; `hysteresis` if lower): two minutes at the 500 ms tick |
/// | `cooldown-ms` | 300000 | no new failover sooner than this after the last one (≥ 0) |
/// | `max-per-hour` | 2 | failovers allowed in any hour (≥ 1) |
#[derive(Clone, Debug, PartialEq)]
pub struct FailoverConfig {
    /// Drift score at or above which drift is over threshold.
    pub drift_threshold: f64,
    /// Predictor probability at or above which it is over threshold.
    pub probability_threshold: f64,
    /// Correlation score that is a trigger on its own; `None` if it is not.
    pub correlation_threshold: Option<f64>,
    /// Correlation score at or above which a trigger is corroborated.
    pub corroboration_threshold: f64,
    /// Consecutive evaluations over threshold needed to go.
    pub hysteresis: u32,
    /// Consecutive evaluations needed when corroborated.
    pub corroborated_hysteresis: u32,
    /// Consecutive evaluations needed when drift alone is over threshold,
    /// uncorroborated (at least `hysteresis` in effect).
    pub drift_hysteresis: u32,
    /// Minimum time between two failovers, in milliseconds.
    pub cooldown_ms: i64,
    /// Failovers allowed in any hour.
    pub max_per_hour: u32,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            drift_threshold: 0.7,
            probability_threshold: 0.8,
            correlation_threshold: None,
            corroboration_threshold: 0.5,
            hysteresis: 3,
            corroborated_hysteresis: 2,
            drift_hysteresis: 240,
            cooldown_ms: 300_000,
            max_per_hour: 2,
        }
    }
}

impl FailoverConfig {
    /// Parses the WIT configuration; absent keys take their defaults.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidConfig`] listing every bad value, unknown key
    /// and inconsistency (`corroborated-hysteresis` above `hysteresis`).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self> {
        let d = Self::default();
        let mut r = ConfigReader::new(pairs);
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        let config = Self {
            drift_threshold: r.f64("drift-threshold", d.drift_threshold, unit, "in [0, 1]"),
            probability_threshold: r.f64(
                "probability-threshold",
                d.probability_threshold,
                unit,
                "in [0, 1]",
            ),
            correlation_threshold: r.parsed(
                "correlation-threshold",
                d.correlation_threshold,
                |s| match s {
                    "off" => Some(None),
                    _ => s.parse::<f64>().ok().filter(|x| unit(*x)).map(Some),
                },
                |_| true,
                "a number in [0, 1] or `off`",
            ),
            corroboration_threshold: r.f64(
                "corroboration-threshold",
                d.corroboration_threshold,
                unit,
                "in [0, 1]",
            ),
            hysteresis: r.u32("hysteresis", d.hysteresis, |n| n >= 1, "at least 1"),
            corroborated_hysteresis: r.u32(
                "corroborated-hysteresis",
                d.corroborated_hysteresis,
                |n| n >= 1,
                "at least 1",
            ),
            drift_hysteresis: r.u32(
                "drift-hysteresis",
                d.drift_hysteresis,
                |n| n >= 1,
                "at least 1",
            ),
            cooldown_ms: r.i64("cooldown-ms", d.cooldown_ms, |n| n >= 0, "at least 0"),
            max_per_hour: r.u32("max-per-hour", d.max_per_hour, |n| n >= 1, "at least 1"),
        };
        if config.corroborated_hysteresis > config.hysteresis {
            r.problem(
                None,
                format!(
                    "`corroborated-hysteresis` ({}) must not exceed `hysteresis` ({})",
                    config.corroborated_hysteresis, config.hysteresis
                ),
            );
        }
        r.finish()?;
        Ok(config)
    }

    /// The configuration as WIT pairs; [`FailoverConfig::from_pairs`] parses
    /// them back to the same value.
    pub fn to_pairs(&self) -> ConfigPairs {
        vec![
            ("drift-threshold".into(), num(self.drift_threshold)),
            (
                "probability-threshold".into(),
                num(self.probability_threshold),
            ),
            (
                "correlation-threshold".into(),
                self.correlation_threshold
                    .map_or_else(|| "off".to_owned(), num),
            ),
            (
                "corroboration-threshold".into(),
                num(self.corroboration_threshold),
            ),
            ("hysteresis".into(), self.hysteresis.to_string()),
            (
                "corroborated-hysteresis".into(),
                self.corroborated_hysteresis.to_string(),
            ),
            ("drift-hysteresis".into(), self.drift_hysteresis.to_string()),
            ("cooldown-ms".into(), self.cooldown_ms.to_string()),
            ("max-per-hour".into(), self.max_per_hour.to_string()),
        ]
    }
}

/// A score from another policy, made safe to compare: NaN is 0, the rest is
/// clamped to [0, 1].
fn sane(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// The text of a drift explanation up to its first `;`: the leading metric.
fn head(explanation: &str) -> &str {
    explanation.split(';').next().unwrap_or("").trim()
}

/// `text`, with `separator` appended unless it is empty: where the next
/// part of a list goes.
fn part<'a>(text: &'a mut String, separator: &str) -> &'a mut String {
    if !text.is_empty() {
        text.push_str(separator);
    }
    text
}

/// `text` with `prefix` in front, in `text`'s own buffer.
fn prefixed(prefix: &str, mut text: String) -> String {
    text.insert_str(0, prefix);
    text
}

/// The default failover decision (see the module documentation).
///
/// Deterministic and total: the same input always gives the same decision,
/// NaN or out-of-range scores count as 0 or are clamped, and times are
/// compared with saturating arithmetic. The returned state keeps only the
/// failovers of the last hour, at most `max-per-hour` of them.
pub fn failover(config: &FailoverConfig, input: &FailoverInput) -> FailoverDecision {
    let now = input.now_ms;
    let drift = sane(input.drift.score);
    let correlation = sane(input.correlation.score);
    let probability = input.prediction.as_ref().map(|p| sane(p.probability));

    // Which triggers crossed their thresholds ("; "-separated) and which did
    // not (", "-separated), written straight into two strings: float
    // formatting and small allocations were most of a decision's cost.
    let mut crossed = String::with_capacity(192);
    let mut below = String::with_capacity(96);
    let drift_head = head(&input.drift.explanation);
    let drift_over = drift >= config.drift_threshold;
    // Whether the predictor or the correlation crossed too.
    let mut others_over = false;
    if drift_over {
        let text = part(&mut crossed, "; ");
        let _ = write!(
            text,
            "drift {} ≥ {}",
            fixed(drift, 2),
            fixed(config.drift_threshold, 2)
        );
        if !drift_head.is_empty() {
            let _ = write!(text, " [{drift_head}]");
        }
    } else {
        let _ = write!(
            part(&mut below, ", "),
            "drift {} < {}",
            fixed(drift, 2),
            fixed(config.drift_threshold, 2)
        );
    }
    match (&input.prediction, probability) {
        (Some(p), Some(prob)) => {
            if prob >= config.probability_threshold {
                others_over = true;
                let _ = write!(
                    part(&mut crossed, "; "),
                    "predictor {} ≥ {} (model {}, horizon {} s)",
                    fixed(prob, 2),
                    fixed(config.probability_threshold, 2),
                    p.model_version,
                    p.horizon_ms / 1000
                );
            } else {
                let _ = write!(
                    part(&mut below, ", "),
                    "predictor {} < {}",
                    fixed(prob, 2),
                    fixed(config.probability_threshold, 2)
                );
            }
        }
        _ => part(&mut below, ", ").push_str("no prediction"),
    }
    // The top signals, " (a, b, c)", after a correlation that crossed.
    let signals_text = |text: &mut String| {
        for (i, s) in input.correlation.signals.iter().take(3).enumerate() {
            text.push_str(if i == 0 { " (" } else { ", " });
            text.push_str(&s.name);
        }
        if !input.correlation.signals.is_empty() {
            text.push(')');
        }
    };
    if let Some(threshold) = config.correlation_threshold {
        if correlation >= threshold {
            others_over = true;
            let text = part(&mut crossed, "; ");
            let _ = write!(
                text,
                "correlation {} ≥ {}",
                fixed(correlation, 2),
                fixed(threshold, 2)
            );
            signals_text(text);
        } else {
            let _ = write!(
                part(&mut below, ", "),
                "correlation {} < {}",
                fixed(correlation, 2),
                fixed(threshold, 2)
            );
        }
    }

    let hour_ago = now.saturating_sub(HOUR_MS);
    let mut recent: Vec<i64> = input
        .state
        .recent_go_ms
        .iter()
        .copied()
        .filter(|&t| t > hour_ago)
        .collect();
    recent.sort_unstable();
    let keep = config.max_per_hour.max(1) as usize;
    if recent.len() > keep {
        recent.drain(..recent.len() - keep);
    }

    let over = !crossed.is_empty();
    let drift_alone = drift_over && !others_over;
    let consecutive = if over {
        input.state.consecutive_over.saturating_add(1)
    } else {
        0
    };
    let mut state = FailoverState {
        consecutive_over: consecutive,
        last_go_ms: input.state.last_go_ms,
        recent_go_ms: recent,
    };

    if !over {
        return FailoverDecision {
            verdict: Verdict::Hold,
            reason: format!("hold: nothing over threshold ({below})"),
            state,
        };
    }

    let corroborated = correlation >= config.corroboration_threshold;
    let needed = if corroborated {
        config.corroborated_hysteresis.min(config.hysteresis)
    } else if drift_alone {
        config.drift_hysteresis.max(config.hysteresis)
    } else {
        config.hysteresis
    }
    .max(1);
    let mut reason = crossed;
    if corroborated {
        let _ = write!(
            reason,
            "; corroborated by correlation {} ≥ {}",
            fixed(correlation, 2),
            fixed(config.corroboration_threshold, 2)
        );
        signals_text(&mut reason);
    }
    let _ = write!(
        reason,
        "; over threshold {consecutive} evaluation{} in a row, {needed} needed{}",
        if consecutive == 1 { "" } else { "s" },
        if drift_alone && !corroborated && config.drift_hysteresis > config.hysteresis {
            " (drift alone)"
        } else {
            ""
        }
    );

    if consecutive < needed {
        return FailoverDecision {
            verdict: Verdict::Hold,
            reason: prefixed("hold: ", reason),
            state,
        };
    }
    if let Some(last) = state.last_go_ms {
        let elapsed = now.saturating_sub(last);
        if elapsed < config.cooldown_ms {
            return FailoverDecision {
                verdict: Verdict::Hold,
                reason: format!(
                    "hold: {reason}; but cooling down: last failover {} s ago, cooldown {} s",
                    elapsed / 1000,
                    config.cooldown_ms / 1000
                ),
                state,
            };
        }
    }
    if state.recent_go_ms.len() >= config.max_per_hour as usize {
        return FailoverDecision {
            verdict: Verdict::Hold,
            reason: format!(
                "hold: {reason}; but {} failovers in the last hour already (max {})",
                state.recent_go_ms.len(),
                config.max_per_hour
            ),
            state,
        };
    }
    state.consecutive_over = 0;
    state.last_go_ms = Some(now);
    state.recent_go_ms.push(now);
    if state.recent_go_ms.len() > keep {
        state.recent_go_ms.remove(0);
    }
    FailoverDecision {
        verdict: Verdict::Go,
        reason: prefixed("go: ", reason),
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::types::{CorrelationResult, DriftResult, Prediction, Signal};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn input(
        now_ms: i64,
        drift: f64,
        probability: Option<f64>,
        correlation: f64,
        state: FailoverState,
    ) -> FailoverInput {
        FailoverInput {
            now_ms,
            drift: DriftResult {
                score: drift,
                rate_of_change: 0.0,
                explanation: "cpu drifts most, score 0.90; also memory 0.30".into(),
            },
            correlation: CorrelationResult {
                score: correlation,
                signals: vec![Signal {
                    name: "co-rise:cpu+http-5xx-rate".into(),
                    weight: correlation,
                    detail: String::new(),
                }],
            },
            prediction: probability.map(|probability| Prediction {
                probability,
                horizon_ms: 30_000,
                model_version: "gru-1".into(),
            }),
            state,
        }
    }

    #[test]
    fn default_config_round_trips_through_pairs() {
        let config = FailoverConfig::default();
        assert_eq!(
            FailoverConfig::from_pairs(&config.to_pairs()).unwrap(),
            config
        );
        let custom = FailoverConfig {
            correlation_threshold: Some(0.9),
            ..FailoverConfig::default()
        };
        assert_eq!(
            FailoverConfig::from_pairs(&custom.to_pairs()).unwrap(),
            custom
        );
    }

    #[test]
    fn config_reports_every_problem() {
        let Err(Error::InvalidConfig(problems)) = FailoverConfig::from_pairs(&pairs(&[
            ("drift-threshold", "1.5"),
            ("correlation-threshold", "sometimes"),
            ("corroborated-hysteresis", "5"),
            ("max-per-hour", "0"),
        ])) else {
            panic!("expected an invalid configuration");
        };
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "`drift-threshold`: expected a number in [0, 1], got \"1.5\"",
                "`correlation-threshold`: expected a number in [0, 1] or `off`, got \"sometimes\"",
                "`max-per-hour`: expected an integer at least 1, got \"0\"",
                "`corroborated-hysteresis` (5) must not exceed `hysteresis` (3)",
            ]
        );
    }

    /// The default configuration with drift alone held no longer than the
    /// other triggers.
    fn quick_drift() -> FailoverConfig {
        FailoverConfig {
            drift_hysteresis: 3,
            ..FailoverConfig::default()
        }
    }

    #[test]
    fn drift_alone_goes_after_hysteresis() {
        let config = quick_drift();
        let mut state = FailoverState::default();
        let mut verdicts = Vec::new();
        for tick in 0..4 {
            let d = failover(&config, &input(tick * 1000, 0.9, None, 0.0, state));
            verdicts.push(d.verdict);
            state = d.state;
        }
        assert_eq!(
            verdicts,
            vec![Verdict::Hold, Verdict::Hold, Verdict::Go, Verdict::Hold]
        );
        assert_eq!(state.last_go_ms, Some(2000));
        assert_eq!(state.recent_go_ms, vec![2000]);
    }

    #[test]
    fn drift_alone_must_hold_for_drift_hysteresis() {
        let config = FailoverConfig {
            drift_hysteresis: 5,
            ..FailoverConfig::default()
        };
        // Drift alone: five evaluations in a row.
        let mut state = FailoverState::default();
        let mut verdicts = Vec::new();
        for tick in 0..5 {
            let d = failover(&config, &input(tick * 1000, 0.9, None, 0.0, state));
            if tick == 2 {
                assert!(
                    d.reason
                        .ends_with("3 evaluations in a row, 5 needed (drift alone)"),
                    "{}",
                    d.reason
                );
            }
            verdicts.push(d.verdict);
            state = d.state;
        }
        use Verdict::{Go, Hold};
        assert_eq!(verdicts, vec![Hold, Hold, Hold, Hold, Go]);

        // The predictor joining in: its own hysteresis (3) is enough.
        let state = FailoverState {
            consecutive_over: 2,
            ..FailoverState::default()
        };
        let d = failover(&config, &input(10_000, 0.9, Some(0.85), 0.0, state.clone()));
        assert_eq!(d.verdict, Go, "{}", d.reason);
        // Corroborated by correlation: the corroborated hysteresis (2).
        let state = FailoverState {
            consecutive_over: 1,
            ..FailoverState::default()
        };
        let d = failover(&config, &input(10_000, 0.9, None, 0.6, state));
        assert_eq!(d.verdict, Go, "{}", d.reason);
    }

    #[test]
    fn predictor_alone_is_enough_and_named() {
        let state = FailoverState {
            consecutive_over: 2,
            ..FailoverState::default()
        };
        let d = failover(
            &FailoverConfig::default(),
            &input(10_000, 0.1, Some(0.85), 0.0, state),
        );
        assert_eq!(d.verdict, Verdict::Go);
        assert_eq!(
            d.reason,
            "go: predictor 0.85 ≥ 0.80 (model gru-1, horizon 30 s); over threshold 3 evaluations in a row, 3 needed"
        );
        assert_eq!(d.state.consecutive_over, 0);
    }

    #[test]
    fn falling_below_resets_the_count() {
        let state = FailoverState {
            consecutive_over: 2,
            ..FailoverState::default()
        };
        let d = failover(
            &FailoverConfig::default(),
            &input(0, 0.69, Some(0.79), 0.4, state),
        );
        assert_eq!(d.verdict, Verdict::Hold);
        assert_eq!(d.state.consecutive_over, 0);
        assert_eq!(
            d.reason,
            "hold: nothing over threshold (drift 0.69 < 0.70, predictor 0.79 < 0.80)"
        );
    }

    #[test]
    fn correlation_shortens_the_hysteresis() {
        let state = FailoverState {
            consecutive_over: 1,
            ..FailoverState::default()
        };
        let plain = failover(
            &FailoverConfig::default(),
            &input(0, 0.9, None, 0.2, state.clone()),
        );
        let corroborated = failover(&FailoverConfig::default(), &input(0, 0.9, None, 0.6, state));
        assert_eq!(plain.verdict, Verdict::Hold);
        assert_eq!(corroborated.verdict, Verdict::Go);
        assert!(
            corroborated
                .reason
                .contains("corroborated by correlation 0.60 ≥ 0.50 (co-rise:cpu+http-5xx-rate)"),
            "{}",
            corroborated.reason
        );
    }

    #[test]
    fn correlation_as_a_third_trigger() {
        let config = FailoverConfig {
            correlation_threshold: Some(0.8),
            hysteresis: 1,
            corroborated_hysteresis: 1,
            ..FailoverConfig::default()
        };
        let d = failover(
            &config,
            &input(0, 0.0, None, 0.85, FailoverState::default()),
        );
        assert_eq!(d.verdict, Verdict::Go);
        assert!(
            d.reason.starts_with("go: correlation 0.85 ≥ 0.80"),
            "{}",
            d.reason
        );
        let d = failover(
            &FailoverConfig::default(),
            &input(0, 0.0, None, 0.85, FailoverState::default()),
        );
        assert_eq!(d.verdict, Verdict::Hold);
    }

    #[test]
    fn cooldown_holds_then_releases() {
        let state = FailoverState {
            consecutive_over: 5,
            last_go_ms: Some(1_000_000),
            recent_go_ms: vec![1_000_000],
        };
        let config = quick_drift();
        let held = failover(
            &config,
            &input(1_000_000 + 299_999, 0.9, None, 0.0, state.clone()),
        );
        assert_eq!(held.verdict, Verdict::Hold);
        assert!(
            held.reason
                .ends_with("but cooling down: last failover 299 s ago, cooldown 300 s"),
            "{}",
            held.reason
        );
        assert_eq!(held.state.consecutive_over, 6);
        let released = failover(&config, &input(1_000_000 + 300_000, 0.9, None, 0.0, state));
        assert_eq!(released.verdict, Verdict::Go);
        assert_eq!(released.state.recent_go_ms, vec![1_000_000, 1_300_000]);
    }

    #[test]
    fn cap_per_hour_holds_until_the_oldest_ages_out() {
        let state = FailoverState {
            consecutive_over: 5,
            last_go_ms: Some(2_000_000),
            recent_go_ms: vec![1_000_000, 2_000_000, -5],
        };
        let config = quick_drift();
        let held = failover(
            &config,
            &input(999_999 + HOUR_MS, 0.9, None, 0.0, state.clone()),
        );
        assert_eq!(held.verdict, Verdict::Hold);
        assert!(
            held.reason
                .ends_with("but 2 failovers in the last hour already (max 2)"),
            "{}",
            held.reason
        );
        assert_eq!(held.state.recent_go_ms, vec![1_000_000, 2_000_000]);
        let released = failover(&config, &input(1_000_000 + HOUR_MS, 0.9, None, 0.0, state));
        assert_eq!(released.verdict, Verdict::Go);
        assert_eq!(
            released.state.recent_go_ms,
            vec![2_000_000, 1_000_000 + HOUR_MS]
        );
    }

    #[test]
    fn nan_and_out_of_range_scores_are_tamed() {
        let mut i = input(
            i64::MIN,
            f64::NAN,
            Some(f64::INFINITY),
            -3.0,
            FailoverState {
                consecutive_over: u32::MAX,
                last_go_ms: Some(i64::MAX),
                recent_go_ms: vec![i64::MAX, i64::MIN],
            },
        );
        i.prediction.as_mut().unwrap().probability = f64::NAN;
        let d = failover(&FailoverConfig::default(), &i);
        assert_eq!(d.verdict, Verdict::Hold);
        assert_eq!(d.state.consecutive_over, 0);
        assert_eq!(d.state.recent_go_ms, vec![i64::MAX]);
    }
}
