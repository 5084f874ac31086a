//! Conversions between the `umbra-policy-logic` types (the host's vocabulary
//! and the JSON case format) and the records of the generated bindings:
//! every answer (inputs are lowered from borrowed records, see
//! [`crate::lower`]). Also the canned inputs a new policy is validated on.

use umbra_policy_logic as logic;

use crate::bindings::types as wit;

/// A drift policy's answer, moved out of the bindings' record.
pub(crate) fn drift_result(d: wit::DriftResult) -> logic::DriftResult {
    logic::DriftResult {
        score: d.score,
        rate_of_change: d.rate_of_change,
        explanation: d.explanation,
    }
}

/// A correlation policy's answer, moved out of the bindings' record.
pub(crate) fn correlation_result(c: wit::CorrelationResult) -> logic::CorrelationResult {
    logic::CorrelationResult {
        score: c.score,
        signals: c
            .signals
            .into_iter()
            .map(|s| logic::Signal {
                name: s.name,
                weight: s.weight,
                detail: s.detail,
            })
            .collect(),
    }
}

/// A failover policy's answer, moved out of the bindings' record.
pub(crate) fn failover_decision(d: wit::FailoverDecision) -> logic::FailoverDecision {
    logic::FailoverDecision {
        verdict: match d.verdict {
            wit::Verdict::Go => logic::Verdict::Go,
            wit::Verdict::Hold => logic::Verdict::Hold,
        },
        reason: d.reason,
        state: logic::FailoverState {
            consecutive_over: d.state.consecutive_over,
            last_go_ms: d.state.last_go_ms,
            recent_go_ms: d.state.recent_go_ms,
        },
    }
}

/// Tick of the canned observation, in milliseconds.
const TICK_MS: i64 = 1_000;

/// A plausible minute of a healthy pair with a CPU ramp on the primary: what
/// a new policy evaluates once before it is swapped in. Two series per
/// device, 60 samples each, one HTTP check, a prediction.
pub(crate) fn canned_observation() -> logic::Observation {
    let now_ms = 1_700_000_000_000;
    let timestamps: Vec<i64> = (0..60).map(|i| now_ms - (59 - i) * TICK_MS).collect();
    let series = |name: &str, mean: f64, slope: f64| logic::Series {
        name: name.to_owned(),
        values: (0..60)
            .map(|i| mean + slope * f64::from(i) + if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect(),
        missing: Vec::new(),
        baseline: logic::Baseline {
            mean,
            stddev: 2.0,
            samples: 500,
        },
    };
    logic::Observation {
        now_ms,
        timestamps_ms: timestamps,
        primary: logic::DeviceWindow::from_series(vec![
            series("cpu", 40.0, 0.3),
            series("http-5xx-rate", 0.5, 0.01),
        ])
        .expect("a valid window"),
        shadow: logic::DeviceWindow::from_series(vec![
            series("cpu", 20.0, 0.0),
            series("http-5xx-rate", 0.1, 0.0),
        ])
        .expect("a valid window"),
        health: vec![logic::HealthCheck {
            name: "http".to_owned(),
            ok: true,
            latency_ms: 12.5,
            status_classes: logic::StatusClasses {
                success: 590,
                server_error: 10,
                ..logic::StatusClasses::default()
            },
            db_connected: None,
        }],
        mirror: logic::MirrorStats {
            packets: 12_000,
            bytes: 9_000_000,
            flows: 40,
            tcp_resets: 0,
        },
        prediction: Some(logic::Prediction {
            probability: 0.05,
            horizon_ms: 300_000,
            model_version: "canned".to_owned(),
        }),
    }
}

/// A failover input with moderate signals and no history.
pub(crate) fn canned_failover_input() -> logic::FailoverInput {
    logic::FailoverInput {
        now_ms: 1_700_000_000_000,
        drift: logic::DriftResult {
            score: 0.3,
            rate_of_change: 0.01,
            explanation: "canned".to_owned(),
        },
        correlation: logic::CorrelationResult {
            score: 0.2,
            signals: vec![logic::Signal {
                name: "canned".to_owned(),
                weight: 0.2,
                detail: String::new(),
            }],
        },
        prediction: Some(logic::Prediction {
            probability: 0.1,
            horizon_ms: 300_000,
            model_version: "canned".to_owned(),
        }),
        state: logic::FailoverState::default(),
    }
}
