//! The predictive engine on generated telemetry, with the shipped default
//! model through ONNX Runtime and the native policies: it says go before
//! faults' failures, with an explanation, and stays quiet on a fault-free
//! pair fed in the same ticks (one batched inference for all).

use std::time::Duration;

use umbra_daemon::engine::{EngineConfig, PredictiveEngine, Role};
use umbra_model::Predictor;
use umbra_policy_logic::{CorrelationConfig, FailoverConfig};
use umbra_predict::DetectorConfig;
use umbra_scenario::{Device, METRICS, ScenarioConfig, Trace, generate_trace};

fn engine() -> PredictiveEngine {
    let predictor =
        Predictor::load(&umbra_model::default_model_path()).expect("the default model loads");
    let threshold = predictor.manifest().threshold;
    let config = EngineConfig {
        detector: DetectorConfig::from_pairs(&[]).expect("product defaults"),
        correlation: CorrelationConfig::default(),
        failover: FailoverConfig {
            probability_threshold: threshold,
            ..FailoverConfig::default()
        },
        drift_from_policy: false,
        warmup_ticks: 0,
        correlation_corroborates: false,
    };
    PredictiveEngine::new(config, Some(predictor), None)
}

fn feed(engine: &mut PredictiveEngine, pair: usize, trace: &Trace, tick: usize, now_ms: i64) {
    for (device, role) in [
        (Device::Primary, Role::Primary),
        (Device::Shadow, Role::Shadow),
    ] {
        for (i, metric) in METRICS.iter().enumerate() {
            if let Some(value) = trace.series_at(device, i)[tick] {
                engine.record(pair, role, metric, now_ms, value);
            }
        }
    }
}

/// Six faults (one of each kind, held-out seed 1000, never trained on)
/// and one fault-free pair, all fed to one engine tick by tick as a
/// daemon would (on one clock): every fault is called before its failure, most of them
/// at least 5 s ahead (the evaluated rate is 90 %), the fault-free pair
/// never.
#[test]
fn goes_before_the_failures_of_faulty_pairs_and_never_for_a_healthy_one() {
    const FAULTY: usize = 6;
    let config = ScenarioConfig {
        seed: 1000,
        faulty_traces: FAULTY,
        fault_free_traces: 1,
        trace_duration: Duration::from_secs(3600),
        ..ScenarioConfig::default()
    };
    let traces: Vec<Trace> = (0..=FAULTY)
        .map(|i| generate_trace(&config, i).unwrap())
        .collect();
    let mut engine = engine();
    for _ in &traces {
        engine.add_pair().unwrap();
    }
    let healthy = FAULTY;
    let mut first_go = vec![None; traces.len()];
    let n = traces.iter().map(Trace::len).min().unwrap();
    for tick in 0..n {
        let now_ms = traces[0].timestamps_ms()[tick];
        for (pair, trace) in traces.iter().enumerate() {
            feed(&mut engine, pair, trace, tick, now_ms);
        }
        let decisions = engine.tick(now_ms).unwrap();
        assert!(
            !decisions[healthy].go,
            "the healthy pair went at tick {tick}: {}",
            decisions[healthy].explanation
        );
        for (pair, decision) in decisions.into_iter().enumerate() {
            if decision.go && first_go[pair].is_none() {
                assert!(decision.probability.is_some() || decision.drift_score > 0.0);
                assert!(!decision.explanation.is_empty());
                first_go[pair] = Some(decision.at_ms);
            }
        }
    }
    let mut ahead = 0;
    for (trace, go) in traces[..FAULTY].iter().zip(&first_go) {
        // Every trace is replayed on the first one's clock: times are
        // compared as offsets from each trace's start.
        let failure_ms = trace.meta().failure_onset_ms.expect("a faulty trace fails");
        let go = go.unwrap_or_else(|| panic!("{} never called", trace.name()));
        let lead_ms = (failure_ms - trace.start_ms()) - (go - traces[0].start_ms());
        eprintln!("{}: lead {lead_ms} ms", trace.name());
        assert!(
            lead_ms > 0,
            "{} called {lead_ms} ms after its failure",
            trace.name()
        );
        if lead_ms >= 5_000 {
            ahead += 1;
        }
    }
    assert!(
        ahead >= FAULTY - 1,
        "only {ahead} of {FAULTY} called 5 s ahead"
    );
}
