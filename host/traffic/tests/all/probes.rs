//! The probe stream on loopback: clean, with probes dropped on either leg,
//! with probes held back.

use std::time::Duration;

use umbra_traffic::{ProbeReflector, ProbeStream};

use crate::support::{RelayFault, UdpRelay};

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn a_clean_stream_loses_nothing_and_gaps_stay_near_the_interval() {
    let reflector = ProbeReflector::start(None, loopback()).unwrap();
    let stream = ProbeStream::start(None, reflector.local_addr(), 1000).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let report = stream.stop();
    let seen = reflector.stop();

    assert!(report.sent >= 400, "sent only {}", report.sent);
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.received, report.sent);
    assert_eq!(report.duplicates, 0);
    assert_eq!(report.send_errors, 0);
    assert_eq!(seen.distinct_probes_seen, report.sent);
    assert_eq!(report.interval_ms, 1.0);
    // Scheduling on a shared machine adds a few ms at worst; a real gap
    // (the faults below) is tens of intervals.
    assert!(report.longest_gap_ms < 25.0, "{report:?}");
    assert!(report.rtt_p50_ms > 0.0 && report.rtt_p99_ms >= report.rtt_p50_ms);
}

#[test]
fn probes_dropped_on_the_way_out_are_lost_forward_and_make_one_gap() {
    let reflector = ProbeReflector::start(None, loopback()).unwrap();
    let relay = UdpRelay::start(reflector.local_addr(), RelayFault::DropForward(100, 149));
    let stream = ProbeStream::start(None, relay.addr, 1000).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let report = stream.stop();

    assert_eq!(report.lost, 50, "{report:?}");
    assert_eq!(report.lost_ranges, vec![(100, 149)]);
    assert_eq!(report.duplicates, 0);
    // Echo 99 arrives at ~99 ms, echo 150 at ~150 ms.
    assert!(
        (45.0..=90.0).contains(&report.longest_gap_ms),
        "gap {} ms",
        report.longest_gap_ms
    );
    assert!(
        (85.0..=140.0).contains(&report.longest_gap_at_ms),
        "gap at {} ms",
        report.longest_gap_at_ms
    );
    assert!(report.gaps.iter().any(|gap| gap.length_ms >= 45.0));
    let split = reflector.split_loss(&report);
    assert_eq!((split.forward, split.return_path), (50, 0));
}

#[test]
fn echoes_dropped_on_the_way_back_are_lost_on_the_return_path() {
    let reflector = ProbeReflector::start(None, loopback()).unwrap();
    let relay = UdpRelay::start(reflector.local_addr(), RelayFault::DropReturn(200, 219));
    let stream = ProbeStream::start(None, relay.addr, 1000).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let report = stream.stop();

    assert_eq!(report.lost, 20, "{report:?}");
    let split = reflector.split_loss(&report);
    assert_eq!((split.forward, split.return_path), (0, 20));
}

#[test]
fn probes_held_for_100_ms_make_a_100_ms_gap_and_no_loss() {
    let reflector = ProbeReflector::start(None, loopback()).unwrap();
    let relay = UdpRelay::start(
        reflector.local_addr(),
        RelayFault::HoldForward(100, Duration::from_millis(100)),
    );
    let stream = ProbeStream::start(None, relay.addr, 1000).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let report = stream.stop();

    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.duplicates, 0);
    assert!(
        (90.0..=150.0).contains(&report.longest_gap_ms),
        "gap {} ms",
        report.longest_gap_ms
    );
    assert!(
        (85.0..=140.0).contains(&report.longest_gap_at_ms),
        "gap at {} ms",
        report.longest_gap_at_ms
    );
    // The held probes come back late: their round trips show it.
    assert!(report.rtt_p99_ms >= 20.0, "{report:?}");
}
