//! Hostile policies on the decision path: each one faults as what it is,
//! the fallback answers with the default decision, the policy is
//! quarantined after three faults in a row (until reloaded), and the host
//! carries on.

use std::time::{Duration, Instant};

use umbra_policy_logic as logic;
use umbra_policy_runtime::{Error, FallbackReason, Fault, FaultKind, PolicyKind, PolicyLimits};

use crate::support::{capture_logs, default_drift, hostile, limits, observation, runtime, source};

const NOW: i64 = 1_700_000_100_000;

/// An observation that triggers the hostile policies' bug: its primary has
/// a series named `hostile`.
fn trigger() -> logic::Observation {
    let mut o = observation(NOW, 4);
    let mut series = o.primary.to_series();
    series[3].name = "hostile".to_owned();
    o.primary = logic::DeviceWindow::from_series(series).expect("a valid window");
    o
}

/// Loads hostile policy `name` as the drift policy and checks the whole
/// story: it answers benign inputs; on the triggering input the fallback
/// answers three times because of a `kind` fault, then twice because of
/// quarantine (benign inputs too, until reloaded); every fallback value is
/// the default decision; the counters say three `kind` faults; a reload
/// brings it back. Returns the first fault.
fn faults_then_quarantine(
    name: &str,
    config: &[(&str, &str)],
    limits: PolicyLimits,
    kind: FaultKind,
) -> Fault {
    let runtime = runtime();
    let id = runtime
        .load_blocking(source(name, "6.6.6", hostile(name), config).with_limits(limits))
        .unwrap_or_else(|e| panic!("{name} passes validation on benign input: {e}"));
    let calm = observation(NOW, 4);
    let answer = runtime.drift(&calm);
    assert_eq!(answer.policy(), Some(&*id), "{name} answers benign input");
    assert_eq!(answer.value.explanation, "benign");

    let bad = trigger();
    let expected = default_drift(&bad);
    let mut first = None;
    for call in 1..=3 {
        let answer = runtime.drift(&bad);
        let fault = answer.fault().unwrap_or_else(|| {
            panic!(
                "{name} call {call}: expected a fault, got {:?}",
                answer.answered_by
            )
        });
        assert_eq!(fault.kind, kind, "{name} call {call}: {fault}");
        assert_eq!(*fault.policy, *id);
        assert_eq!(
            answer.value, expected,
            "the fallback decides as the default policy"
        );
        first.get_or_insert_with(|| fault.clone());
    }
    for input in [&bad, &calm] {
        let answer = runtime.drift(input);
        match &answer.answered_by {
            umbra_policy_runtime::AnsweredBy::Fallback {
                reason: FallbackReason::Quarantined { policy },
            } => assert_eq!(**policy, *id),
            other => panic!("{name}: expected quarantine, got {other:?}"),
        }
        assert_eq!(answer.value, default_drift(input));
    }

    let status = runtime.status(PolicyKind::Drift);
    let active = status.active.expect("still loaded, quarantined");
    assert!(active.quarantined);
    assert_eq!(active.faults.get(kind), 3, "{:?}", active.faults);
    assert_eq!(active.faults.total(), 3, "{:?}", active.faults);
    assert_eq!(
        active.evaluations, 4,
        "one benign call and three faults; none once quarantined"
    );
    assert_eq!(status.fallback_answers, 5);

    // Reloading lifts the quarantine.
    runtime
        .load_blocking(source(name, "6.6.7", hostile(name), config).with_limits(limits))
        .expect("reload");
    let answer = runtime.drift(&calm);
    assert_eq!(answer.policy().map(|p| p.version.as_str()), Some("6.6.7"));
    first.expect("three faults")
}

/// The default memory cap, and a deadline long enough that a busy test
/// machine does not turn another fault into a deadline.
fn patient() -> PolicyLimits {
    limits(1_000_000, PolicyLimits::default().memory_bytes)
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline() {
    let started = Instant::now();
    // 20 ms rather than the default 5 ms: the benign calls of this test
    // must not be interrupted when the test machine is busy.
    assert_eq!(PolicyLimits::default().deadline_micros, 5_000);
    let fault = faults_then_quarantine("spin", &[], limits(20_000, 16 << 20), FaultKind::Deadline);
    assert!(fault.message.contains("interrupt"), "{}", fault.message);
    // Three 20 ms deadlines plus loading: far below five seconds.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn deadline_is_enforced_per_call_and_configurable() {
    let runtime = runtime();
    runtime
        .load_blocking(
            source("spin", "1", hostile("spin"), &[]).with_limits(limits(50_000, 16 << 20)),
        )
        .unwrap();
    let started = Instant::now();
    let answer = runtime.drift(&trigger());
    let took = started.elapsed();
    assert_eq!(answer.fault().map(|f| f.kind), Some(FaultKind::Deadline));
    assert!(
        took >= Duration::from_millis(50),
        "interrupted before its 50 ms deadline: {took:?}"
    );
    assert!(
        took < Duration::from_millis(500),
        "interrupted long after its 50 ms deadline: {took:?}"
    );
}

#[test]
fn unbounded_memory_growth_is_out_of_memory() {
    let fault = faults_then_quarantine("hog", &[], patient(), FaultKind::OutOfMemory);
    assert!(
        fault.message.contains("cap of 16777216 bytes"),
        "{}",
        fault.message
    );
}

#[test]
fn memory_cap_is_configurable() {
    let runtime = runtime();
    runtime
        .load_blocking(
            source("hog", "1", hostile("hog"), &[]).with_limits(limits(5_000_000, 40 << 20)),
        )
        .unwrap();
    let fault = runtime.drift(&trigger()).fault().cloned().expect("fault");
    assert_eq!(fault.kind, FaultKind::OutOfMemory);
    assert!(
        fault
            .message
            .contains(&format!("cap of {} bytes", 40 << 20)),
        "{}",
        fault.message
    );
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    faults_then_quarantine("recurse", &[], patient(), FaultKind::StackOverflow);
}

#[test]
fn panic_is_a_trap_and_its_message_is_logged_with_the_policy() {
    let (fault, logs) =
        capture_logs(|| faults_then_quarantine("panic", &[], patient(), FaultKind::Trap));
    assert!(fault.message.contains("unreachable"), "{}", fault.message);
    // The panic message goes to stderr, which the sandbox turns into log
    // lines of the policy.
    let panic_line = logs
        .lines()
        .find(|l| l.contains("hostile policy panics at now-ms"))
        .unwrap_or_else(|| panic!("panic message not logged:\n{logs}"));
    eprintln!("{logs}");
    assert!(
        panic_line.contains("policy=panic") && panic_line.contains("version=6.6.6"),
        "{panic_line}"
    );
    let fault_line = logs
        .lines()
        .find(|l| l.contains("policy fault") && l.contains("fault=trap"))
        .unwrap_or_else(|| panic!("fault not logged:\n{logs}"));
    assert!(
        fault_line.contains("policy=panic") && fault_line.contains("version=6.6.6"),
        "{fault_line}"
    );
    assert!(logs.contains("policy quarantined"), "{logs}");
}

#[test]
fn exit_is_reported_as_exit() {
    let fault = faults_then_quarantine("panic", &[("how", "exit")], patient(), FaultKind::Exit);
    assert!(fault.message.contains("called `exit`"), "{}", fault.message);
}

#[test]
fn abort_is_a_trap() {
    faults_then_quarantine("panic", &[("how", "abort")], patient(), FaultKind::Trap);
}

#[test]
fn enormous_output_is_out_of_memory_under_the_default_cap() {
    faults_then_quarantine("flood", &[], patient(), FaultKind::OutOfMemory);
}

#[test]
fn enormous_output_is_invalid_output_when_memory_allows_it() {
    let fault = faults_then_quarantine(
        "flood",
        &[],
        limits(5_000_000, 160 << 20),
        FaultKind::InvalidOutput,
    );
    assert!(
        fault.message.contains("explanation is 67108864 bytes long"),
        "{}",
        fault.message
    );
}

#[test]
fn invalid_outputs_are_refused() {
    let cases = [
        ("nan", "score is NaN"),
        ("above-one", "score is 1.5"),
        ("signals", "1000 signals"),
        ("weight", "signals[0].weight is -1"),
        ("long-detail", "signals[0].detail is 1048576 bytes long"),
    ];
    for (lie, expected) in cases {
        let runtime = runtime();
        // Validation evaluates the canned input: a policy that lies on every
        // input is refused at load, and says why.
        let error = runtime
            .load_blocking(source("liar", lie, hostile("liar"), &[("lie", lie)]))
            .expect_err(lie);
        match &error {
            Error::Validation { fault, .. } => {
                assert_eq!(fault.kind, FaultKind::InvalidOutput, "{lie}: {fault}");
                assert!(fault.message.contains(expected), "{lie}: {fault}");
            }
            other => panic!("{lie}: expected a validation error, got {other}"),
        }
        let status = runtime.status(PolicyKind::Correlation);
        assert!(status.active.is_none());
        assert!(
            status
                .last_reload_error
                .as_deref()
                .is_some_and(|e| e.contains(expected))
        );
        // Decisions go on: the fallback answers.
        let o = observation(NOW, 4);
        let answer = runtime.correlation(&o);
        assert!(matches!(
            answer.answered_by,
            umbra_policy_runtime::AnsweredBy::Fallback {
                reason: FallbackReason::NoPolicy
            }
        ));
        assert_eq!(answer.value, crate::support::default_correlation(&o));
    }
    // And an honest liar loads.
    runtime()
        .load_blocking(source(
            "liar",
            "honest",
            hostile("liar"),
            &[("lie", "none")],
        ))
        .expect("valid answers load");
}

#[test]
fn a_policy_hostile_on_every_input_is_refused_at_load_and_the_old_one_stays() {
    let runtime = runtime();
    let echo = runtime
        .load_blocking(source("echo", "1.0.0", hostile("echo"), &[("tag", "old")]))
        .unwrap();
    let started = Instant::now();
    let error = runtime
        .load_blocking(source(
            "spin",
            "2.0.0",
            hostile("spin"),
            &[("always", "true")],
        ))
        .expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(10));
    match &error {
        Error::Validation { policy, fault } => {
            assert_eq!(policy, "spin@2.0.0");
            assert_eq!(fault.kind, FaultKind::Deadline);
        }
        other => panic!("expected a validation error, got {other}"),
    }
    let answer = runtime.drift(&observation(NOW, 2));
    assert_eq!(answer.policy(), Some(&*echo));
    assert_eq!(answer.value.explanation, "old");
    let status = runtime.status(PolicyKind::Drift);
    assert!(status.last_reload_error.unwrap().contains("spin@2.0.0"));
}

#[test]
fn a_trapped_instance_is_never_re_entered_and_faults_must_be_in_a_row() {
    // The echo policy answers rate-of-change = evaluations made by the
    // instance that answers, and panics on negative now-ms.
    let runtime = runtime();
    runtime
        .load_blocking(source("echo", "1", hostile("echo"), &[("tag", "t")]))
        .unwrap();
    let good = observation(NOW, 2);
    let mut bad = observation(NOW, 2);
    bad.now_ms = -1;

    // Validation made one call on the first instance; it is reused.
    assert_eq!(runtime.drift(&good).value.rate_of_change, 2.0);
    assert_eq!(runtime.drift(&good).value.rate_of_change, 3.0);
    for round in 0..5 {
        // Two faults, then a good answer: never three in a row.
        for _ in 0..2 {
            assert_eq!(
                runtime.drift(&bad).fault().map(|f| f.kind),
                Some(FaultKind::Trap)
            );
        }
        let answer = runtime.drift(&good);
        assert!(
            !answer.is_fallback(),
            "round {round}: {:?}",
            answer.answered_by
        );
        assert_eq!(
            answer.value.rate_of_change, 1.0,
            "round {round}: answered by a fresh instance, not the one that trapped"
        );
    }
    let active = runtime.status(PolicyKind::Drift).active.unwrap();
    assert!(!active.quarantined);
    assert_eq!(active.faults.trap, 10);
    assert_eq!(active.consecutive_faults, 0);
}
