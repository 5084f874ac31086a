//! `umbra demo --mode simulated`, which needs no privileges: the real
//! engine (drift, the default GRU through ONNX Runtime) and pair driver on
//! a replayed scenario. A fault is failed over before its failure; a
//! fault-free run is not; the summary JSON and the report are written.

use tokio_util::sync::CancellationToken;
use umbra_demo::progress::Recorder;
use umbra_demo::{DemoArgs, FaultChoice, FaultKind, Mode};

fn args(fault: Option<FaultKind>, seed: u64) -> DemoArgs {
    DemoArgs {
        fault: FaultChoice(fault),
        seed,
        mode: Mode::Simulated,
        ..DemoArgs::default()
    }
}

#[test]
fn a_simulated_fault_is_failed_over_before_the_failure_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = (
        dir.path().join("summary.json"),
        dir.path().join("report.html"),
    );
    let mut args = args(Some(FaultKind::Cpu), 3);
    args.summary_json = Some(json.clone());
    args.report = Some(html.clone());
    let mut progress = Recorder::default();
    let outcome = umbra_demo::run(&args, &CancellationToken::new(), &mut progress).unwrap();
    let s = &outcome.summary;
    assert_eq!(s.mode, "simulated");
    assert!(s.failover_completed, "{}", s.text());
    assert!(s.lead_time_ms.is_some_and(|l| l > 0.0), "{}", s.text());
    assert_eq!(s.false_failovers, 0);
    assert_eq!(s.probes_lost, 0, "failed over before the failure");
    assert_eq!(s.sessions_survived, s.sessions_total);
    assert!(
        progress
            .events
            .iter()
            .any(|(_, e)| e.contains("→ preparing")),
        "the decision was reported live"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "failover_completed",
        "lead_time_ms",
        "switchover_gap_ms",
        "probes_sent",
        "probes_lost",
        "sessions_total",
        "sessions_survived",
        "false_failovers",
    ] {
        assert!(summary.get(key).is_some(), "{key} missing from {summary}");
    }
    assert_eq!(summary["failover_completed"], true);
    let report = std::fs::read_to_string(&html).unwrap();
    assert!(report.contains("<svg") && report.contains("→ preparing"));
}

#[test]
fn a_simulated_fault_free_run_does_not_fail_over() {
    let outcome = umbra_demo::run(
        &args(None, 4),
        &CancellationToken::new(),
        &mut Recorder::default(),
    )
    .unwrap();
    assert!(
        !outcome.summary.failover_completed,
        "{}",
        outcome.summary.text()
    );
    assert_eq!(outcome.summary.false_failovers, 0);
}

#[test]
fn without_replication_the_simulated_sessions_are_reset_at_the_flip() {
    let mut args = args(Some(FaultKind::Cpu), 3);
    args.no_replication = true;
    let outcome =
        umbra_demo::run(&args, &CancellationToken::new(), &mut Recorder::default()).unwrap();
    assert!(outcome.summary.failover_completed);
    assert_eq!(outcome.summary.sessions_survived, 0);
}

#[test]
fn an_interrupted_run_stops_and_says_so() {
    let stop = CancellationToken::new();
    stop.cancel();
    let outcome = umbra_demo::run(
        &args(Some(FaultKind::Db), 1),
        &stop,
        &mut Recorder::default(),
    )
    .unwrap();
    assert!(outcome.summary.interrupted);
    assert!(!outcome.summary.failover_completed);
}
