//! Snapshots of the three default decisions on every recorded case in
//! `policies/cases/`. An observation case is run through drift and
//! correlation, and their answers (with the case's prediction) through a
//! first failover decision from a fresh state, as the host does on a tick;
//! a failover case is run through the failover decision alone.

use serde::Serialize;
use umbra_policy_logic::{
    Case, CaseInput, CaseOutput, CorrelationResult, DriftResult, FailoverDecision, FailoverInput,
    FailoverState, PolicyKind,
};

/// What one observation case decides, end to end.
#[derive(Serialize)]
struct Tick {
    drift: DriftResult,
    correlation: CorrelationResult,
    failover: FailoverDecision,
}

fn load(path: &std::path::Path) -> Case {
    let text = std::fs::read_to_string(path).expect("readable case");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn default_decisions_on_recorded_cases() {
    insta::glob!("../../../../policies/cases", "*.json", |path| {
        let case = load(path);
        match &case.input {
            CaseInput::Observation(observation) => {
                let Ok(CaseOutput::Drift(drift)) = case.evaluate_default(PolicyKind::Drift) else {
                    panic!("drift failed on {}", path.display());
                };
                let Ok(CaseOutput::Correlation(correlation)) =
                    case.evaluate_default(PolicyKind::Correlation)
                else {
                    panic!("correlation failed on {}", path.display());
                };
                let failover = umbra_policy_logic::failover(
                    &Default::default(),
                    &FailoverInput {
                        now_ms: observation.now_ms,
                        drift: drift.clone(),
                        correlation: correlation.clone(),
                        prediction: observation.prediction.clone(),
                        state: FailoverState::default(),
                    },
                );
                insta::assert_yaml_snapshot!(Tick {
                    drift,
                    correlation,
                    failover,
                });
            }
            CaseInput::Failover(_) => {
                let Ok(CaseOutput::Failover(decision)) =
                    case.evaluate_default(PolicyKind::Failover)
                else {
                    panic!("failover failed on {}", path.display());
                };
                insta::assert_yaml_snapshot!(decision);
            }
        }
    });
}

#[test]
fn every_recorded_case_round_trips_through_json() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/cases");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("policies/cases exists") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let case = load(&path);
            let again: Case = serde_json::from_str(&serde_json::to_string(&case).unwrap()).unwrap();
            assert_eq!(again, case, "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 12, "only {seen} cases in {}", dir.display());
}
