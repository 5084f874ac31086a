//! `Traffic` as the lab runs it: servers in one namespace, generators in
//! another, here joined directly by a veth pair whose link is taken down
//! for 150 ms. Also the same `Traffic` on loopback (no root).

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use umbra_switch::dataplane::veth_lab::VethLab;
use umbra_traffic::{Traffic, TrafficPlan};

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("effective uid in /proc/self/status");
    assert_eq!(
        uid, "0",
        "this test creates network namespaces and must run as root (CI does); \
         run `sudo -E cargo test -p umbra-traffic` or as root"
    );
}

fn namespaces() -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn a_150_ms_link_outage_shows_as_gap_loss_and_stall_and_sessions_survive() {
    require_root();
    let mut lab = VethLab::new("traffic");
    let client = lab.add_namespace("c").unwrap();
    let server = lab.add_namespace("s").unwrap();
    lab.add_veth_pair((&client, "tc0"), (&server, "ts0"))
        .unwrap();
    ip(&["-n", &client, "addr", "add", "198.18.0.1/24", "dev", "tc0"]);
    ip(&["-n", &server, "addr", "add", "198.18.0.2/24", "dev", "ts0"]);
    let server_addr: IpAddr = "198.18.0.2".parse().unwrap();
    let plan = TrafficPlan {
        probes_hz: 1000,
        sessions: 4,
        session_interval: Duration::from_millis(10),
        http_rate: 20,
        ..TrafficPlan::default()
    };
    let traffic = Traffic::start(Some(&client), Some(&server), server_addr, &plan).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = traffic.snapshot();
    assert!(before.probes_received > 300, "{before:?}");
    assert_eq!(before.sessions_alive, 4);

    let down_at = Instant::now();
    ip(&["-n", &client, "link", "set", "dev", "tc0", "down"]);
    std::thread::sleep(Duration::from_millis(150));
    ip(&["-n", &client, "link", "set", "dev", "tc0", "up"]);
    let outage = down_at.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let report = traffic.stop();
    let outage_ms = outage.as_secs_f64() * 1e3;
    // Printed for whoever reads a failure (cargo shows it only then).
    eprintln!(
        "outage {outage_ms:.1} ms: {}",
        serde_json::to_string(&report).unwrap()
    );

    let probes = report.probes.as_ref().unwrap();
    assert!(
        probes.longest_gap_ms >= outage_ms - 30.0 && probes.longest_gap_ms <= outage_ms + 150.0,
        "gap {} ms for an outage of {outage_ms} ms",
        probes.longest_gap_ms
    );
    assert!(
        (400.0..=700.0).contains(&probes.longest_gap_at_ms),
        "gap at {} ms",
        probes.longest_gap_at_ms
    );
    let expected_lost = outage_ms; // one probe per ms
    assert!(
        (probes.lost as f64) >= expected_lost - 40.0
            && (probes.lost as f64) <= expected_lost + 150.0,
        "lost {} for an outage of {outage_ms} ms",
        probes.lost
    );
    assert_eq!(probes.duplicates, 0);
    // The client's own link went down: every lost probe died on the way out.
    assert_eq!(report.probe_loss.unwrap().forward, probes.lost);
    let sessions = report.sessions.as_ref().unwrap();
    assert_eq!(sessions.survived, 4, "{sessions:#?}");
    assert_eq!(sessions.reset, 0);
    assert!(sessions.longest_stall_ms >= 100.0, "{sessions:#?}");
    let http = report.http.as_ref().unwrap();
    assert!(http.ok_2xx > 20, "{http:?}");

    let names = [client.clone(), server.clone()];
    drop(lab);
    let left = namespaces();
    assert!(
        names.iter().all(|name| !left.contains(name)),
        "namespaces left behind: {left:?}"
    );
}

#[test]
fn traffic_on_loopback_reports_everything_as_json() {
    let plan = TrafficPlan {
        probes_hz: 500,
        sessions: 2,
        http_rate: 20,
        ..TrafficPlan::default()
    };
    let traffic = Traffic::start(None, None, "127.0.0.1".parse().unwrap(), &plan).unwrap();
    traffic.http_faults().unwrap().set_error_fraction(1.0);
    std::thread::sleep(Duration::from_millis(500));
    let snapshot = traffic.snapshot();
    assert!(snapshot.probes_sent > 100, "{snapshot:?}");
    assert_eq!(snapshot.sessions_alive, 2);
    let report = traffic.stop();

    let probes = report.probes.as_ref().unwrap();
    assert_eq!(probes.lost, 0);
    assert_eq!(report.probe_loss.unwrap().forward, 0);
    assert_eq!(report.sessions.as_ref().unwrap().survived, 2);
    let http = report.http.as_ref().unwrap();
    assert!(http.requests > 0);
    assert_eq!(http.server_errors_5xx, http.requests);

    let json = serde_json::to_value(&report).unwrap();
    assert!(json["probes"]["longest_gap_ms"].is_f64());
    assert!(json["sessions"]["longest_stall_ms"].is_f64());
    assert!(json["http"]["latency_p99_ms"].is_f64());
    assert_eq!(json["reflector"]["probes_seen"], probes.sent);
}

#[test]
fn a_missing_namespace_is_an_error_that_names_it() {
    let err = Traffic::start(
        Some("umbra-traffic-no-such-namespace"),
        None,
        "127.0.0.1".parse().unwrap(),
        &TrafficPlan::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("umbra-traffic-no-such-namespace"),
        "{err}"
    );
}
