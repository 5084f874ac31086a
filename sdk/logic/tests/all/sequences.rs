//! The failover state threaded through sequences of decisions, as the host
//! threads it: each decision's `state` is the next input's. These are the
//! behaviours a single evaluation cannot show: hysteresis over ticks,
//! cooldown after a go, and the cap per hour.

use serde::Serialize;
use umbra_policy_logic::failover::HOUR_MS;
use umbra_policy_logic::{
    CorrelationResult, DriftResult, FailoverConfig, FailoverInput, FailoverState, Prediction,
    Verdict, failover,
};

const T0: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

/// One tick of a sequence, as snapshotted.
#[derive(Serialize)]
struct Step {
    t_s: i64,
    drift: f64,
    probability: Option<f64>,
    verdict: Verdict,
    consecutive_over: u32,
    reason: String,
}

fn input(now_ms: i64, drift: f64, probability: Option<f64>, state: FailoverState) -> FailoverInput {
    FailoverInput {
        now_ms,
        drift: DriftResult {
            score: drift,
            rate_of_change: 0.0,
            explanation: format!("cpu drifts most, score {drift:.2}"),
        },
        correlation: CorrelationResult::default(),
        prediction: probability.map(|probability| Prediction {
            probability,
            horizon_ms: 30_000,
            model_version: "umbra-gru-1".into(),
        }),
        state,
    }
}

/// Runs `ticks` (time, drift, probability) through the default policy.
fn run(config: &FailoverConfig, ticks: &[(i64, f64, Option<f64>)]) -> Vec<Step> {
    let mut state = FailoverState::default();
    ticks
        .iter()
        .map(|&(now, drift, probability)| {
            let decision = failover(config, &input(now, drift, probability, state.clone()));
            state = decision.state.clone();
            Step {
                t_s: (now - T0) / 1000,
                drift,
                probability,
                verdict: decision.verdict,
                consecutive_over: decision.state.consecutive_over,
                reason: decision.reason,
            }
        })
        .collect()
}

#[test]
fn flapping_drift_never_fails_over() {
    // Over, over, under, over, over, under...: never three in a row.
    let ticks: Vec<_> = (0..12)
        .map(|i| {
            (
                T0 + i * 1000,
                if i % 3 == 2 { 0.4 } else { 0.85 },
                Some(0.2),
            )
        })
        .collect();
    let steps = run(&FailoverConfig::default(), &ticks);
    assert!(steps.iter().all(|s| s.verdict == Verdict::Hold));
    assert_eq!(
        steps.iter().map(|s| s.consecutive_over).collect::<Vec<_>>(),
        vec![1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    );
    insta::assert_yaml_snapshot!(steps);
}

#[test]
fn sustained_fault_goes_once_then_cools_down_then_caps() {
    // A fault that never goes away, one tick a minute for two hours: the
    // first go on the third tick, the second after the 5-minute cooldown,
    // then the cap of 2 per hour holds until the first go is an hour old.
    let ticks: Vec<_> = (0..120)
        .map(|i| (T0 + i * MINUTE, 0.9, Some(0.5)))
        .collect();
    // Drift alone, held as long as the other triggers (the default holds it
    // for 240 evaluations, two minutes at the usual tick, not two hours).
    let config = FailoverConfig {
        drift_hysteresis: 3,
        ..FailoverConfig::default()
    };
    let steps = run(&config, &ticks);
    let gos: Vec<i64> = steps
        .iter()
        .filter(|s| s.verdict == Verdict::Go)
        .map(|s| s.t_s / 60)
        .collect();
    // Minutes 2 and 7; then 62 (an hour after 2) and 67 (an hour after 7).
    assert_eq!(gos, vec![2, 7, 62, 67]);
    let key: Vec<&Step> = [0, 2, 3, 7, 8, 61, 62].iter().map(|&i| &steps[i]).collect();
    insta::assert_yaml_snapshot!(key);
}

#[test]
fn predictor_spike_alone_needs_hysteresis_too() {
    let ticks = [
        (T0, 0.1, Some(0.95)),
        (T0 + 1000, 0.1, Some(0.96)),
        (T0 + 2000, 0.1, Some(0.40)),
        (T0 + 3000, 0.1, Some(0.91)),
        (T0 + 4000, 0.1, Some(0.92)),
        (T0 + 5000, 0.1, Some(0.93)),
    ];
    let steps = run(&FailoverConfig::default(), &ticks);
    let verdicts: Vec<Verdict> = steps.iter().map(|s| s.verdict).collect();
    use Verdict::{Go, Hold};
    assert_eq!(verdicts, vec![Hold, Hold, Hold, Hold, Hold, Go]);
    assert_eq!(
        steps[5].reason,
        "go: predictor 0.93 ≥ 0.80 (model umbra-gru-1, horizon 30 s); over threshold 3 evaluations in a row, 3 needed"
    );
}

#[test]
fn cap_window_is_one_hour_exactly() {
    let config = FailoverConfig {
        hysteresis: 1,
        corroborated_hysteresis: 1,
        drift_hysteresis: 1,
        cooldown_ms: 0,
        max_per_hour: 2,
        ..FailoverConfig::default()
    };
    let ticks = [
        (T0, 0.9, None),
        (T0 + 1, 0.9, None),
        (T0 + HOUR_MS - 1, 0.9, None),
        (T0 + HOUR_MS, 0.9, None),
    ];
    let verdicts: Vec<Verdict> = run(&config, &ticks).iter().map(|s| s.verdict).collect();
    use Verdict::{Go, Hold};
    assert_eq!(verdicts, vec![Go, Go, Hold, Go]);
}
