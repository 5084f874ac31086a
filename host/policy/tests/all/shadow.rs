//! Shadow mode: a candidate runs beside the active policy on the same
//! inputs, its answers are never used, disagreements are recorded, and it
//! is promoted on request or after N agreeing evaluations in a row.

use umbra_policy_logic::PolicyKind;
use umbra_policy_runtime::{
    Error, FaultKind, PolicyRuntime, PolicySource, RuntimeConfig, ShadowConfig,
};

use crate::support::{default_policy, engine, hostile, observation, runtime, source};

fn echo(version: &str, score: &str) -> PolicySource {
    source(
        "echo",
        version,
        hostile("echo"),
        &[("tag", version), ("score", score)],
    )
}

fn shadow(promote_after: Option<u64>) -> Option<ShadowConfig> {
    Some(ShadowConfig {
        promote_after,
        keep_examples: 3,
        ..ShadowConfig::default()
    })
}

#[test]
fn agreeing_candidate_is_promoted_automatically_after_n_evaluations() {
    let runtime = runtime();
    runtime.load_blocking(echo("a", "0.5")).unwrap();
    // Same score, another explanation: drift answers agree on numbers.
    runtime
        .load_candidate_blocking(echo("b", "0.5"), shadow(Some(5)))
        .unwrap();
    let o = observation(1_000, 4);
    for i in 1..=4 {
        let answer = runtime.drift(&o);
        assert_eq!(
            answer.value.explanation, "a",
            "the candidate's answers are never used"
        );
        let candidate = runtime.status(PolicyKind::Drift).candidate.unwrap();
        assert_eq!(
            (candidate.evaluations, candidate.agreements_in_a_row),
            (i, i)
        );
    }
    // The fifth agreement promotes it, after the fifth answer was given.
    assert_eq!(runtime.drift(&o).value.explanation, "a");
    let status = runtime.status(PolicyKind::Drift);
    assert!(status.candidate.is_none());
    assert_eq!(status.active.unwrap().id.version, "b");
    assert_eq!(status.swaps, 2);
    assert_eq!(runtime.drift(&o).value.explanation, "b");
}

#[test]
fn disagreements_are_counted_with_the_last_examples_and_block_promotion() {
    let runtime = runtime();
    runtime.load_blocking(echo("a", "0.5")).unwrap();
    runtime
        .load_candidate_blocking(echo("b", "0.9"), shadow(Some(5)))
        .unwrap();
    for now in 1..=10 {
        let answer = runtime.drift(&observation(now * 1000, 2));
        assert_eq!(answer.value.score, 0.5);
    }
    let candidate = runtime
        .status(PolicyKind::Drift)
        .candidate
        .expect("not promoted");
    assert_eq!(candidate.evaluations, 10);
    assert_eq!(candidate.disagreements, 10);
    assert_eq!(candidate.agreements, 0);
    let kept: Vec<u64> = candidate.examples.iter().map(|e| e.evaluation).collect();
    assert_eq!(kept, vec![8, 9, 10], "the last three are kept");
    let last = candidate.examples.last().unwrap();
    assert_eq!(last.active["score"], 0.5);
    assert_eq!(last.candidate["score"], 0.9);
    assert_eq!(last.input["now_ms"], 10_000);

    // Promotion on request works regardless.
    let promoted = runtime.promote(PolicyKind::Drift).unwrap();
    assert_eq!(promoted.version, "b");
    assert_eq!(runtime.drift(&observation(0, 2)).value.score, 0.9);
    assert!(matches!(
        runtime.promote(PolicyKind::Drift),
        Err(Error::NoCandidate(PolicyKind::Drift))
    ));
    assert!(matches!(
        runtime.discard_candidate(PolicyKind::Drift),
        Err(Error::NoCandidate(PolicyKind::Drift))
    ));
}

#[test]
fn a_faulting_candidate_never_affects_answers_and_is_quarantined() {
    let runtime = runtime();
    runtime.load_blocking(echo("a", "0.5")).unwrap();
    runtime
        .load_candidate_blocking(source("panic", "1", hostile("panic"), &[]), shadow(Some(1)))
        .unwrap();
    let mut o = observation(5_000, 4);
    let mut series = o.primary.to_series();
    series[1].name = "hostile".to_owned();
    o.primary = umbra_policy_logic::DeviceWindow::from_series(series).expect("a valid window");
    for _ in 0..6 {
        let answer = runtime.drift(&o);
        assert_eq!(answer.value.explanation, "a");
        assert!(!answer.is_fallback());
    }
    let candidate = runtime.status(PolicyKind::Drift).candidate.unwrap();
    assert_eq!(candidate.faults, 3);
    assert_eq!(candidate.evaluations, 3, "not run once quarantined");
    assert!(candidate.policy.quarantined);
    assert_eq!(candidate.policy.faults.get(FaultKind::Trap), 3);
    assert_eq!(
        runtime.discard_candidate(PolicyKind::Drift).unwrap().name,
        "panic"
    );
    assert!(runtime.status(PolicyKind::Drift).candidate.is_none());
}

#[test]
fn default_policy_as_candidate_agrees_with_the_fallback_and_is_promoted() {
    let config = RuntimeConfig {
        shadow: ShadowConfig {
            promote_after: Some(3),
            tolerance: 0.0,
            keep_examples: 1,
        },
        ..crate::support::patient_config()
    };
    let runtime = PolicyRuntime::new(engine(), config).unwrap();
    for kind in [PolicyKind::Drift, PolicyKind::Correlation] {
        runtime
            .load_candidate_blocking(
                PolicySource::new(kind.as_str(), "1", default_policy(kind.as_str())),
                None,
            )
            .unwrap();
    }
    for now in 0..3 {
        let o = observation(1_700_000_000_000 + now * 1000, 16);
        assert!(runtime.drift(&o).is_fallback());
        assert!(runtime.correlation(&o).is_fallback());
    }
    for kind in [PolicyKind::Drift, PolicyKind::Correlation] {
        let status = runtime.status(kind);
        assert!(status.candidate.is_none(), "{kind} promoted");
        assert_eq!(status.active.unwrap().id.name, kind.as_str());
    }
    let o = observation(1_700_000_100_000, 16);
    assert!(!runtime.drift(&o).is_fallback());
}
