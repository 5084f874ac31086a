//! The failover lab against real kernels (needs root, as CI has): it comes
//! up and goes away without a trace, a connection survives the one-write
//! failover only when its state was replicated, and each fault on the
//! primary shows in the primary's agent metrics (and not the shadow's) and
//! is undone when stopped.

mod support;

use std::cell::RefCell;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use umbra_agent::model::{Key, L4};
use umbra_lab::failover_lab::{Device, FailoverLab, FailoverLabOptions, FaultKind, FaultPlan};
use umbra_proto::umbra::device::v1::{MetricsSample, ServingStatus};
use umbra_replicate::DrainReport;

use support::{
    Harness, PRIMARY, Replication, SHADOW, WAIT, bulk, exchange, interface, namespaces, read_once,
    require_root, serial,
};

/// Polls `check` every 50 ms until it holds or `WAIT` passes.
fn wait_until(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

fn lab_namespaces(lab: &FailoverLab) -> Vec<String> {
    let n = lab.info().namespaces;
    vec![n.client, n.server, n.primary, n.shadow, n.switch]
}

#[test]
fn the_lab_comes_up_and_goes_away_without_a_trace_even_on_panic() {
    require_root();
    let _serial = serial();
    let lab = FailoverLab::up(FailoverLabOptions::default()).expect("the lab comes up");
    let ours = lab_namespaces(&lab);
    let present = namespaces();
    for ns in &ours {
        assert!(present.contains(ns), "{ns} missing from {present:?}");
    }
    let info = lab.info();
    let json = serde_json::to_value(&info).expect("LabInfo serializes");
    assert_eq!(
        json["switch"]["p4runtime"],
        info.switch.p4runtime.to_string()
    );
    assert_eq!(json["ports"]["primary_monitor"], 8);
    assert_eq!(json["addresses"]["client"], "198.18.0.1");
    assert_ne!(info.primary_agent.url, info.shadow_agent.url);
    assert_ne!(info.primary_agent.node_id, info.shadow_agent.node_id);
    let cgroup = info
        .primary_agent
        .cgroup
        .as_ref()
        .and_then(|c| c.agent_path.clone());
    lab.down();
    let after = namespaces();
    for ns in &ours {
        assert!(!after.contains(ns), "{ns} left behind: {after:?}");
    }
    if let Some(dir) = cgroup {
        assert!(!dir.exists(), "cgroup {} left behind", dir.display());
    }

    // A test that panics with the lab up still removes it (Drop).
    let names = RefCell::new(Vec::new());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = FailoverLab::up(FailoverLabOptions::default()).expect("the lab comes up");
        names.replace(lab_namespaces(&lab));
        let _fault = lab
            .inject(
                FaultKind::Loss,
                FaultPlan {
                    seed: 1,
                    ramp: Duration::ZERO,
                    then_fail: false,
                },
            )
            .expect("inject");
        panic!("a test fails with the lab up");
    }));
    assert!(outcome.is_err());
    let names = names.into_inner();
    assert_eq!(names.len(), 5);
    let after = namespaces();
    for ns in &names {
        assert!(
            !after.contains(ns),
            "{ns} left behind after a panic: {after:?}"
        );
    }
}

/// Whether the agent holds the client's TCP connection from `port`.
fn holds_connection(lab: &FailoverLab, device: Device, port: u16) -> bool {
    lab.agent(device).snapshot().entries.iter().any(|e| {
        matches!(&e.key, Key::Conntrack(k)
            if matches!(k.original.l4, L4::Ports { protocol: 6, source, .. } if source == port))
    })
}

/// Drains and commits what `replication` replicates, with the replicator's
/// status in the failure.
fn drain(h: &Harness, replication: &Replication) -> DrainReport {
    h.runtime
        .block_on(replication.handle.drain_and_commit(None, WAIT))
        .unwrap_or_else(|e| panic!("drain: {e} ({:#?})", replication.handle.status()))
}

/// A connection client → server through the primary (reads time out after
/// `read_timeout`), reported by the primary's agent and drained into the
/// shadow by `replication`, as the daemon drains before a flip; the
/// streams and the client's port.
fn replicated_connection(
    h: &Harness,
    replication: &Replication,
    read_timeout: Duration,
) -> (TcpStream, TcpStream, u16) {
    let (mut client, mut server) = h.connect(read_timeout);
    exchange(&mut client, &mut server, b"through the primary");
    let port = client.local_addr().expect("client address").port();
    assert!(
        wait_until(|| holds_connection(&h.lab, Device::Primary, port)),
        "the primary's agent never reported the connection"
    );
    drain(h, replication);
    (client, server, port)
}

/// Writes `message` and checks that it does not reach the server within
/// its read timeout (`why` says why it must not): the connection stalls,
/// it is not reset.
fn assert_stalls(client: &mut TcpStream, server: &mut TcpStream, message: &[u8], why: &str) {
    client.write_all(message).expect("client writes");
    let error = read_once(server, &mut vec![0u8; message.len()]).expect_err(why);
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "the connection stalls (not reset): {error}"
    );
}

#[test]
fn a_replicated_connection_survives_the_one_write_failover() {
    let _serial = serial();
    let h = Harness::up(FailoverLabOptions::default());
    let replication = h.replicate();
    // What the daemon does before the flip: everything the primary holds
    // is applied on the shadow.
    let (mut client, mut server, port) =
        replicated_connection(&h, &replication, Duration::from_secs(5));
    assert!(holds_connection(&h.lab, Device::Shadow, port));

    let shadow_url = h.info.shadow_agent.url.clone();
    let before = interface(&h.metrics_now(&shadow_url), "legc").rx_packets;
    h.select(SHADOW);
    exchange(
        &mut client,
        &mut server,
        b"through the shadow after the flip",
    );
    exchange(&mut client, &mut server, b"and still flowing");
    let after = interface(&h.metrics_now(&shadow_url), "legc").rx_packets;
    assert!(
        after >= before + 2,
        "the data did not go through the shadow ({before} → {after} packets on its client leg)"
    );
}

/// A failback to the device that opened a connection: that device's own
/// conntrack entry still tracks the sequence windows it last saw, and the
/// connection moved on through the other device by far more than a
/// window. Redirected back without a commit, its segments are out of
/// window and dropped (strict tracking, as the kernel defaults to); the
/// reverse drain-and-commit makes the entry liberal and the connection
/// flows again.
#[test]
fn a_failback_carries_the_old_devices_own_connection_once_committed() {
    let _serial = serial();
    let h = Harness::up(FailoverLabOptions::default());
    let forward = h.replicate();
    let (mut client, mut server, _) = replicated_connection(&h, &forward, Duration::from_secs(2));
    h.select(SHADOW);
    // 64 MiB each way: far beyond any window the primary saw.
    bulk(&client, &server, 64 << 20);
    exchange(&mut client, &mut server, b"through the shadow");
    drop(forward);

    // The control: back to the primary without a commit.
    h.select(PRIMARY);
    assert_stalls(
        &mut client,
        &mut server,
        b"stalled",
        "the primary's strict entry must drop the moved-on segments",
    );

    // Replication reversed, drained and committed into the primary (what
    // the daemon does before the flip back): the retransmitted segment
    // now passes.
    let reverse = h.replicate_from(SHADOW);
    let committed = drain(&h, &reverse).committed.expect("the agent commits");
    assert!(
        committed.entries >= 1,
        "the primary's own entry was not committed: {committed:?}"
    );
    let before = interface(&h.metrics_now(&h.info.primary_agent.url), "legc").rx_packets;
    server
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut got = [0u8; 7];
    server
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("the stalled segment never arrives: {e}"));
    assert_eq!(
        &got, b"stalled",
        "the stalled segment arrives, retransmitted"
    );
    exchange(&mut client, &mut server, b"through the primary again");
    bulk(&client, &server, 1 << 20);
    let after = interface(&h.metrics_now(&h.info.primary_agent.url), "legc").rx_packets;
    assert!(
        after > before,
        "the data did not go through the primary ({before} → {after} packets on its client leg)"
    );
    // A second commit finds nothing left to do.
    let again = drain(&h, &reverse);
    assert_eq!(again.committed.map(|c| c.entries), Some(0));
}

#[test]
fn without_replication_the_shadow_drops_the_moved_connection() {
    let _serial = serial();
    let h = Harness::up(FailoverLabOptions::default());
    let (mut client, mut server) = h.connect(Duration::from_secs(3));
    exchange(&mut client, &mut server, b"through the primary");
    let port = client.local_addr().expect("client address").port();

    h.select(SHADOW);
    assert_stalls(
        &mut client,
        &mut server,
        b"lost",
        "the shadow must drop mid-stream packets it has no state for",
    );
    assert!(!holds_connection(&h.lab, Device::Shadow, port));
    // The shadow does forward: a new connection through it works, so the
    // stall is the missing state, not the path.
    let (mut client, mut server) = h.connect(Duration::from_secs(5));
    exchange(
        &mut client,
        &mut server,
        b"a new connection through the shadow",
    );
}

/// Packets the device forwarded client → server per packet it received
/// from the client, between the first and last sample.
fn forwarded_ratio(samples: &[MetricsSample]) -> f64 {
    let (first, last) = (
        samples.first().expect("samples"),
        samples.last().expect("samples"),
    );
    let received = interface(last, "legc").rx_packets - interface(first, "legc").rx_packets;
    let sent = interface(last, "legs").tx_packets - interface(first, "legs").tx_packets;
    assert!(
        received >= 300,
        "too little traffic to measure: {received} packets"
    );
    sent as f64 / received as f64
}

fn sleep(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn the_loss_fault_shows_on_the_primary_and_is_undone() {
    let _serial = serial();
    let h = Harness::up(FailoverLabOptions::default());
    let (primary, shadow) = h.agent_urls();
    let _flood = h.udp_flood(400);
    sleep(500);
    let (before, ()) = h.metrics_during(&primary, || sleep(1500));
    assert!(
        forwarded_ratio(&before) >= 0.95,
        "{}",
        forwarded_ratio(&before)
    );

    let fault = h
        .lab
        .inject(
            FaultKind::Loss,
            FaultPlan {
                seed: 7,
                ramp: Duration::from_millis(1000),
                then_fail: false,
            },
        )
        .expect("inject");
    sleep(1300);
    let (shadow_during, (during, ())) =
        h.metrics_during(&shadow, || h.metrics_during(&primary, || sleep(2000)));
    assert_eq!(fault.error(), None);
    // 30 % loss with ±10 % jitter: about 0.7 delivered.
    let ratio = forwarded_ratio(&during);
    eprintln!("delivered through the primary: {ratio:.3} under the loss fault");
    assert!(
        (0.55..=0.85).contains(&ratio),
        "delivered ratio under 30 % loss: {ratio}"
    );
    assert!(fault.level() > 0.85, "{}", fault.level());
    // The shadow is not in the path and shows no loss.
    let (first, last) = (&shadow_during[0], shadow_during.last().expect("samples"));
    for leg in ["legc", "legs"] {
        assert_eq!(
            interface(first, leg).tx_packets,
            interface(last, leg).tx_packets
        );
    }

    fault.stop().expect("the loss fault stops cleanly");
    let qdiscs = std::process::Command::new("tc")
        .args(["-n", &h.info.namespaces.primary, "qdisc", "show"])
        .output()
        .expect("tc");
    let qdiscs = String::from_utf8_lossy(&qdiscs.stdout);
    assert!(
        !qdiscs.contains("netem") && !qdiscs.contains("clsact"),
        "{qdiscs}"
    );
    sleep(300);
    let (after, ()) = h.metrics_during(&primary, || sleep(1500));
    assert!(
        forwarded_ratio(&after) >= 0.95,
        "{}",
        forwarded_ratio(&after)
    );
}

/// CPU over the samples' span: each sample's CPU is its share since the
/// previous one, so they are weighted by the time between them.
fn mean_cpu(samples: &[MetricsSample]) -> f64 {
    let (mut busy, mut wall) = (0.0, 0.0);
    for pair in samples.windows(2) {
        let dt = pair[1].timestamp_ms.saturating_sub(pair[0].timestamp_ms) as f64;
        busy += pair[1].cpu * dt;
        wall += dt;
    }
    assert!(wall > 0.0, "too few samples: {}", samples.len());
    busy / wall
}

#[test]
fn the_cpu_fault_shows_on_the_primary_and_is_undone() {
    let _serial = serial();
    let h = Harness::up(FailoverLabOptions {
        cpu_fault_cores: 0.6,
        ..FailoverLabOptions::default()
    });
    let cgroup = h.primary_cgroup();
    assert!(
        cgroup.cpu_metric,
        "the agent cannot read the primary's CPU: {cgroup:?}"
    );
    let (primary, shadow) = h.agent_urls();
    let (before, ()) = h.metrics_during(&primary, || sleep(1000));
    assert!(mean_cpu(&before) < 0.05, "{}", mean_cpu(&before));

    let fault = h
        .lab
        .inject(
            FaultKind::Cpu,
            FaultPlan {
                seed: 3,
                ramp: Duration::from_millis(800),
                then_fail: false,
            },
        )
        .expect("inject");
    sleep(1200);
    let (shadow_during, (during, ())) =
        h.metrics_during(&shadow, || h.metrics_during(&primary, || sleep(2000)));
    let cpu = mean_cpu(&during);
    eprintln!("primary CPU under the fault: {cpu:.3} of the machine ({cgroup:?})");
    // 0.6 cores of the machine's at full intensity.
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    assert!(cpu >= 0.3 / cores, "primary CPU under the fault: {cpu}");
    if cgroup.cpu_cap {
        assert!(
            cpu <= 0.6 / cores + 0.1,
            "the quota did not cap the fault: {cpu}"
        );
    }
    assert!(
        mean_cpu(&shadow_during) < 0.05,
        "{}",
        mean_cpu(&shadow_during)
    );

    fault.stop().expect("the cpu fault stops cleanly");
    sleep(300);
    let (after, ()) = h.metrics_during(&primary, || sleep(1000));
    assert!(mean_cpu(&after) < 0.05, "{}", mean_cpu(&after));
}

#[test]
fn the_memory_fault_shows_on_the_primary_and_is_undone() {
    const BOUND: u64 = 96 << 20;
    let _serial = serial();
    let h = Harness::up(FailoverLabOptions {
        memory_fault_bytes: BOUND,
        memory_fault_step_bytes: 8 << 20,
        ..FailoverLabOptions::default()
    });
    let cgroup = h.primary_cgroup();
    assert!(
        cgroup.memory_limit,
        "no memory controller for the primary: {cgroup:?}"
    );
    let (primary, shadow) = h.agent_urls();
    let agent_before = h.metrics_now(&primary).memory_used_bytes;
    let lab_before = h.lab.device_memory_bytes(Device::Primary).expect("memory");

    let fault = h
        .lab
        .inject(
            FaultKind::Memory,
            FaultPlan {
                seed: 5,
                ramp: Duration::from_millis(800),
                then_fail: false,
            },
        )
        .expect("inject");
    let grown = |bytes: u64| bytes >= lab_before + BOUND * 3 / 4;
    assert!(
        wait_until(|| h
            .lab
            .device_memory_bytes(Device::Primary)
            .is_some_and(grown)),
        "the primary's cgroup holds {:?} bytes",
        h.lab.device_memory_bytes(Device::Primary)
    );
    let agent_during = h.metrics_now(&primary).memory_used_bytes;
    let shadow_during = h.metrics_now(&shadow).memory_used_bytes;
    if cgroup.memory_metric {
        assert!(
            agent_during >= agent_before + BOUND * 3 / 4,
            "{agent_before} → {agent_during}"
        );
        assert!(shadow_during < 16 << 20, "{shadow_during}");
    } else {
        // Hybrid cgroup host: the agent reads cgroup v2 only and reports
        // memory as absent for both devices.
        eprintln!("cgroup v2 has no memory controller here: the agents report no memory use");
        assert_eq!((agent_during, shadow_during), (0, 0));
    }
    assert!(h.lab.device_memory_bytes(Device::Shadow).unwrap_or(0) < 16 << 20);

    fault.stop().expect("the memory fault stops cleanly");
    assert!(
        wait_until(|| h
            .lab
            .device_memory_bytes(Device::Primary)
            .is_some_and(|b| b < lab_before + (16 << 20))),
        "the primary's cgroup still holds {:?} bytes",
        h.lab.device_memory_bytes(Device::Primary)
    );
    if cgroup.memory_metric {
        assert!(h.metrics_now(&primary).memory_used_bytes < agent_before + (16 << 20));
    }
}

#[test]
fn the_conntrack_fault_shows_on_the_primary_and_is_undone() {
    const ENTRIES: u64 = 3_000;
    let _serial = serial();
    let h = Harness::up(FailoverLabOptions {
        conntrack_fault_entries: Some(ENTRIES),
        ..FailoverLabOptions::default()
    });
    let (primary, shadow) = h.agent_urls();
    let count = |url: &str| h.metrics_now(url).conntrack_count;
    let (primary_before, shadow_before) = (count(&primary), count(&shadow));
    let fault = h
        .lab
        .inject(
            FaultKind::Conntrack,
            FaultPlan {
                seed: 11,
                ramp: Duration::from_millis(800),
                then_fail: false,
            },
        )
        .expect("inject");
    assert!(
        wait_until(|| count(&primary) >= primary_before + ENTRIES),
        "the primary's table holds {} entries",
        count(&primary)
    );
    let sample = h.metrics_now(&primary);
    assert!(sample.conntrack_max >= sample.conntrack_count);
    assert!(
        count(&shadow) <= shadow_before + 5,
        "the shadow's table grew"
    );

    fault.stop().expect("the conntrack fault stops cleanly");
    assert!(
        wait_until(|| count(&primary) <= primary_before + 5),
        "the primary's table still holds {} entries",
        count(&primary)
    );
}

#[test]
fn the_hard_failure_stops_forwarding_through_the_primary_until_undone() {
    let _serial = serial();
    let h = Harness::up(FailoverLabOptions::default());
    let (primary, shadow) = h.agent_urls();
    assert!(
        h.can_connect(Duration::from_secs(3)),
        "no path through the primary"
    );
    assert_eq!(h.health(&primary).0, ServingStatus::Serving);

    let level = h.lab.http5xx_level();
    let ramp = Duration::from_millis(500);
    let fault = h
        .lab
        .inject(
            FaultKind::Http5xx,
            FaultPlan {
                seed: 2,
                ramp,
                then_fail: true,
            },
        )
        .expect("inject");
    assert!(wait_until(|| fault.has_failed()), "no hard failure");
    assert!(level.get() >= 0.85, "the http5xx level: {}", level.get());
    let timeline = fault.timeline();
    let failure = timeline.failure.expect("failure instant");
    assert!(failure.duration_since(timeline.started) >= ramp);
    assert!(timeline.failure_at_ms.expect("failure time") >= timeline.started_at_ms + 500);

    assert!(
        !h.can_connect(Duration::from_secs(1)),
        "the failed primary still forwards"
    );
    let (status, problems) = h.health(&primary);
    assert_ne!(status, ServingStatus::Serving, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("hard failure")),
        "{problems:?}"
    );
    assert_eq!(h.health(&shadow).0, ServingStatus::Serving);
    // The shadow takes over with one write.
    h.select(SHADOW);
    assert!(
        h.can_connect(Duration::from_secs(3)),
        "no path through the shadow"
    );
    h.select(PRIMARY);

    let timeline = fault.stop().expect("the fault stops cleanly");
    assert!(timeline.stopped_at_ms.is_some());
    assert_eq!(level.get(), 0.0);
    assert!(
        wait_until(|| h.can_connect(Duration::from_secs(1))),
        "the primary does not forward again after the fault is undone"
    );
    assert_eq!(h.health(&primary).0, ServingStatus::Serving);
}
