//! `umbra demo` on the network-namespace lab (root): for each fault kind
//! the daemon fails over before the primary's hard failure, with no probe
//! lost in the switchover and every long-lived TCP session alive; a
//! fault-free run does not fail over; without replication the sessions
//! do not survive the same failover (so the measurement measures).

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;
use umbra_demo::progress::Recorder;
use umbra_demo::{DemoArgs, FaultChoice, FaultKind, Mode, Summary};

/// One lab at a time: two cores, and the runs measure gaps.
static SERIAL: Mutex<()> = Mutex::new(());

fn require_root() {
    assert!(
        umbra_demo::is_root(),
        "the lab tests build network namespaces and need root (CI runs them as root)"
    );
}

fn run(fault: Option<FaultKind>, seed: u64, no_replication: bool) -> Summary {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let args = DemoArgs {
        fault: FaultChoice(fault),
        seed,
        mode: Mode::Lab,
        warmup_s: 20,
        ramp_s: 25,
        fault_free_s: 40,
        no_replication,
        ..DemoArgs::default()
    };
    let mut progress = Recorder::default();
    let outcome = umbra_demo::run(&args, &CancellationToken::new(), &mut progress)
        .unwrap_or_else(|e| panic!("the demo runs ({fault:?}): {e}"));
    eprintln!("{}", outcome.summary.text());
    assert!(
        progress.statuses > 100,
        "the run was observed ({} statuses)",
        progress.statuses
    );
    outcome.summary
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Every fault kind, one run each: predicted (failover verified before the
/// failure), nothing lost in the switchover (nothing at all but for the
/// loss fault, whose ramp drops probes before any failover), every
/// session alive, the gap within 10 ms; p50/p99 of the gaps reported.
#[test]
fn every_fault_is_failed_over_before_the_failure_without_loss() {
    require_root();
    let mut problems = Vec::new();
    let mut gaps = Vec::new();
    for (i, kind) in FaultKind::ALL.into_iter().enumerate() {
        let s = run(Some(kind), 11 + i as u64, false);
        let mut check = |ok: bool, what: String| {
            if !ok {
                problems.push(format!("{kind}: {what}"));
            }
        };
        check(s.failover_completed, "no failover".into());
        check(
            s.lead_time_ms.is_some_and(|l| l > 0.0),
            format!("lead time {:?} (not before the failure)", s.lead_time_ms),
        );
        // The loss fault drops probes itself, before and during the
        // switchover alike: for it the flip is judged by the gap alone.
        if kind != FaultKind::Loss {
            check(
                s.probes_lost_in_switchover == Some(0),
                format!(
                    "{:?} probes lost in the switchover",
                    s.probes_lost_in_switchover
                ),
            );
            check(s.probes_lost == 0, format!("{} probes lost", s.probes_lost));
        }
        check(
            s.sessions_total == 8 && s.sessions_survived == s.sessions_total,
            format!(
                "{} of {} sessions survived",
                s.sessions_survived, s.sessions_total
            ),
        );
        check(
            s.false_failovers == 0,
            format!("{} false failovers", s.false_failovers),
        );
        match s.switchover_gap_ms {
            Some(gap) => {
                check(gap <= 10.0, format!("switchover gap {gap:.1} ms"));
                gaps.push(gap);
            }
            None => check(false, "no switchover gap measured".into()),
        }
    }
    gaps.sort_by(f64::total_cmp);
    if !gaps.is_empty() {
        eprintln!(
            "switchover gap over {} runs: p50 {:.2} ms, p99 {:.2} ms (max {:.2} ms)",
            gaps.len(),
            percentile(&gaps, 0.5),
            percentile(&gaps, 0.99),
            gaps[gaps.len() - 1]
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_fault_free_run_does_not_fail_over() {
    require_root();
    let s = run(None, 5, false);
    assert_eq!(
        s.failovers, 0,
        "failed over without a fault: {:?}",
        s.decision
    );
    assert_eq!(s.false_failovers, 0);
    assert_eq!(s.probes_lost, 0);
    assert_eq!(s.sessions_survived, s.sessions_total);
}

/// The control: the same predicted failover without replication leaves
/// the shadow's stateful firewall without the sessions' conntrack
/// entries (`tcp_loose=0`), so they stop.
#[test]
fn without_replication_the_sessions_do_not_survive_the_failover() {
    require_root();
    let s = run(Some(FaultKind::Cpu), 7, true);
    assert!(s.failover_completed, "the failover itself happens");
    assert!(
        s.sessions_survived < s.sessions_total,
        "{} of {} sessions survived without replication",
        s.sessions_survived,
        s.sessions_total
    );
}
