//! Faults during a failover on the namespace lab (root), with real
//! packets: the switch restarting mid-failover, the primary host dying
//! mid-failover with a backup host taking over, both in a row, and either
//! device's agent crashing mid-failover. The
//! pair ends consistent (the switch's selector names the device the
//! surviving daemon believes active), no probe gap is longer than the
//! verification timeout, and the long-lived TCP sessions survive.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_daemon::pair::PairView;
use umbra_daemon::run::{Running, audit_file, start};
use umbra_lab::failover_lab::{Device, FailoverLab, FailoverLabOptions, LabInfo};
use umbra_orchestrator::{Phase, Slot};
use umbra_traffic::{Traffic, TrafficPlan};

/// The embedded configuration's verification timeout.
const VERIFY_TIMEOUT_MS: f64 = 3_000.0;

/// The session echo server's port (in the lab's own server namespace).
const SESSION_PORT: u16 = 7777;

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn view(running: &Running) -> PairView {
    running.pairs[0].handle.view.borrow().clone()
}

/// The device the switch's selector names, read by a controller that
/// never writes.
fn selected(runtime: &Runtime, switch: SocketAddr) -> Option<u64> {
    runtime.block_on(async {
        let umbra_p4rt::Connection { client, .. } =
            umbra_p4rt::P4RuntimeClient::connect(umbra_p4rt::ClientConfig {
                device_id: 1,
                election_id: 1,
                ..umbra_p4rt::ClientConfig::new(switch.to_string())
            })
            .await
            .ok()?;
        let _ = client
            .push_pipeline(umbra_p4info::umbra_p4info().clone(), Vec::new(), 1)
            .await;
        client
            .read_table("UmbraIngress.service_selector")
            .await
            .ok()?
            .first()
            .and_then(|e| e.action().param("device"))
            .and_then(|v| v.as_u64())
    })
}

fn device(slot: Slot) -> u64 {
    match slot {
        Slot::A => 1,
        Slot::B => 2,
    }
}

/// Whether `running` is the primary, in Normal, and the switch's selector
/// names the device it believes active.
fn agreed(runtime: &Runtime, switch: SocketAddr, running: &Running) -> bool {
    let v = view(running);
    v.master && v.phase == Phase::Normal && selected(runtime, switch) == Some(device(v.active))
}

/// When `running`'s pair last changed state (its last audit record).
fn last_change(running: &Running) -> Option<i64> {
    view(running).last_audit.map(|record| record.at_ms)
}

/// The sessions as the kernels see them, for a failure's message: the
/// client's sockets (retransmissions, backoff) and both devices' conntrack
/// entries of the session port.
fn sessions_seen_by_the_kernels(info: &LabInfo) -> String {
    let port = SESSION_PORT.to_string();
    let namespaces = &info.namespaces;
    [
        (&namespaces.client, vec!["ss", "-tino", "dport", "=", &port]),
        (
            &namespaces.primary,
            vec!["conntrack", "-L", "-p", "tcp", "--dport", &port],
        ),
        (
            &namespaces.shadow,
            vec!["conntrack", "-L", "-p", "tcp", "--dport", &port],
        ),
    ]
    .into_iter()
    .map(|(ns, command)| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns])
            .args(&command)
            .output();
        let text = match out {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => e.to_string(),
        };
        format!("[{ns}] {}:\n{text}", command.join(" "))
    })
    .collect()
}

/// The switch crashes 5 ms into a failover and comes back empty 200 ms
/// later: the daemon reconnects, pushes the pipeline, reinstalls, and the
/// failover ends one way or the other.
#[test]
fn a_switch_restart_mid_failover_ends_consistent_without_a_long_black_hole() {
    scenario(Fault::SwitchRestart);
}

/// The primary host dies in the middle of a failover; the backup host
/// takes the switch over and ends what was left consistent.
#[test]
fn a_host_crash_mid_failover_hands_the_pair_to_the_backup_consistent() {
    scenario(Fault::HostCrash);
}

/// Both in a row, with the backup host connected throughout: the switch
/// restarts mid-failover (the backup may reconnect first and be briefly
/// primary of the empty switch), the primary host takes it back, then dies
/// in the middle of the next failover (a failback to the device that
/// opened the sessions when the first completed, so its own conntrack
/// entries must have been committed liberal); the backup takes over.
#[test]
fn a_switch_restart_then_a_host_crash_in_the_next_failover_end_consistent() {
    scenario(Fault::Both);
}

/// The shadow's agent crashes right after a failover began (after the
/// drain, as it turns out) and is back a second later (a fresh process:
/// new change-log epoch, its state read from the kernel again). The pair
/// ends consistent, and once the agent is back replication catches up: a
/// second failover carries every session.
#[test]
fn a_shadow_agent_crash_mid_failover_ends_consistent_and_replication_recovers() {
    scenario(Fault::AgentCrash(Device::Shadow, Crash::AfterTrigger));
}

/// The same with the primary's agent.
#[test]
fn a_primary_agent_crash_mid_failover_ends_consistent_and_replication_recovers() {
    scenario(Fault::AgentCrash(Device::Primary, Crash::AfterTrigger));
}

/// The shadow's agent is down when the failover is triggered: the drain
/// into it cannot complete until it is back (or gives up), and the pair
/// ends consistent either way.
#[test]
fn a_shadow_agent_down_at_the_trigger_ends_consistent_and_replication_recovers() {
    scenario(Fault::AgentCrash(Device::Shadow, Crash::BeforeTrigger));
}

/// The primary's agent is down when the failover is triggered: the drain
/// cannot even learn the primary's head.
#[test]
fn a_primary_agent_down_at_the_trigger_ends_consistent_and_replication_recovers() {
    scenario(Fault::AgentCrash(Device::Primary, Crash::BeforeTrigger));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    SwitchRestart,
    HostCrash,
    Both,
    AgentCrash(Device, Crash),
}

/// When an agent crashes, relative to the failover's trigger.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// 20 ms before.
    BeforeTrigger,
    /// 5 ms after.
    AfterTrigger,
}

fn scenario(fault: Fault) {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    assert!(
        umbra_demo::is_root(),
        "the lab tests build network namespaces and need root (CI runs them as root)"
    );
    let lab = FailoverLab::up(FailoverLabOptions::default()).expect("the lab comes up");
    let info = lab.info();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path, name: &str, election_id: u64| {
        let text = umbra_demo::lab::config_text(&info, dir, true)
            .replace("election-id = 10", &format!("election-id = {election_id}"))
            .replace("name = \"umbra-demo\"", &format!("name = \"{name}\""));
        umbra_config::parse(&text, &dir.join("umbra.toml")).expect("valid configuration")
    };
    // The primary host A and the backup host B (lower election id).
    let (config_a, config_b) = (
        config(dir_a.path(), "host-a", 10),
        config(dir_b.path(), "host-b", 5),
    );
    let (tasks_a, stop_a) = (TaskTracker::new(), CancellationToken::new());
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let running_a = runtime
        .block_on(start(
            &config_a,
            audit_file("host-a", &config_a.host.audit_log).unwrap(),
            &tasks_a,
            &stop_a,
        ))
        .expect("A starts");
    wait_for("A is primary", Duration::from_secs(10), || {
        let v = view(&running_a);
        v.master && v.phase == Phase::Normal
    });
    let with_backup = matches!(fault, Fault::HostCrash | Fault::Both);
    let running_b = with_backup.then(|| {
        let running = runtime
            .block_on(start(
                &config_b,
                audit_file("host-b", &config_b.host.audit_log).unwrap(),
                &tasks,
                &stop,
            ))
            .expect("B starts");
        wait_for("B follows", Duration::from_secs(10), || {
            view(&running).phase == Phase::Following
        });
        running
    });
    let traffic = Traffic::start(
        Some(&info.namespaces.client),
        Some(&info.namespaces.server),
        IpAddr::V4(info.addresses.server),
        &TrafficPlan {
            session_port: SESSION_PORT,
            ..TrafficPlan::default()
        },
    )
    .expect("traffic");
    std::thread::sleep(Duration::from_secs(3));

    let switch = info.switch.p4runtime;
    // When A's pair last changed state before the last trigger.
    let last_trigger = std::thread::scope(|scope| {
        if let Fault::AgentCrash(device, Crash::BeforeTrigger) = fault {
            let lab = &lab;
            scope.spawn(move || {
                lab.restart_agent(device, Duration::from_secs(1))
                    .expect("the agent restarts");
            });
            std::thread::sleep(Duration::from_millis(20));
        }
        let before_trigger = last_change(&running_a);
        runtime.block_on(running_a.failover("web", "test")).unwrap();
        match fault {
            Fault::SwitchRestart | Fault::Both => {
                // The switch restarts (empty) right after the failover began.
                std::thread::sleep(Duration::from_millis(5));
                lab.restart_switch(Duration::from_millis(200))
                    .expect("the switch restarts");
                if fault == Fault::Both {
                    wait_for(
                        "A and the switch agree again",
                        Duration::from_secs(20),
                        || {
                            last_change(&running_a) != before_trigger
                                && agreed(&runtime, switch, &running_a)
                        },
                    );
                    std::thread::sleep(Duration::from_secs(2));
                    let before_second = last_change(&running_a);
                    runtime.block_on(running_a.failover("web", "test")).unwrap();
                    return before_second;
                }
                before_trigger
            }
            Fault::AgentCrash(device, crash) => {
                if crash == Crash::AfterTrigger {
                    std::thread::sleep(Duration::from_millis(5));
                    lab.restart_agent(device, Duration::from_secs(1))
                        .expect("the agent restarts");
                }
                wait_for(
                    "the failover ran its course",
                    Duration::from_secs(20),
                    || {
                        last_change(&running_a) != before_trigger
                            && agreed(&runtime, switch, &running_a)
                    },
                );
                // Once replication has caught up with the restarted agent, a
                // second failover carries the sessions.
                std::thread::sleep(Duration::from_secs(3));
                let before = view(&running_a).failovers;
                runtime.block_on(running_a.failover("web", "test")).unwrap();
                wait_for("the second failover", Duration::from_secs(20), || {
                    view(&running_a).failovers > before && agreed(&runtime, switch, &running_a)
                });
                before_trigger
            }
            Fault::HostCrash => before_trigger,
        }
    });
    let survivor = match running_b {
        None => running_a,
        Some(running_b) => {
            // A dies in the middle of the failover; B takes over.
            wait_for("A's failover began", Duration::from_secs(5), || {
                last_change(&running_a) != last_trigger
            });
            stop_a.cancel();
            tasks_a.close();
            runtime.block_on(tasks_a.wait());
            drop(running_a);
            running_b
        }
    };
    wait_for(
        "the surviving host and the switch agree",
        Duration::from_secs(20),
        || agreed(&runtime, switch, &survivor),
    );
    // TCP retransmits with a growing timeout: after a black hole a
    // session's data flows again at its next retransmission. Every session
    // must get there, none reset.
    let flowing_by = Instant::now() + Duration::from_secs(30);
    while traffic.snapshot().sessions_flowing < TrafficPlan::default().sessions {
        assert!(
            Instant::now() < flowing_by,
            "the sessions' data does not flow again: {:?}; {:?}; selector {:?}; A's audit:\n{}\nB's audit:\n{}\n{}",
            traffic.snapshot(),
            view(&survivor),
            selected(&runtime, switch),
            std::fs::read_to_string(&config_a.host.audit_log).unwrap_or_default(),
            std::fs::read_to_string(&config_b.host.audit_log).unwrap_or_default(),
            sessions_seen_by_the_kernels(&info),
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // What the hosts went through, for the log.
    for (host, path) in [
        ("A", &config_a.host.audit_log),
        ("B", &config_b.host.audit_log),
    ] {
        for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
            if let Ok(record) = serde_json::from_str::<serde_json::Value>(line) {
                eprintln!(
                    "{host}: {} -> {}: {}",
                    record["record"]["from"].as_str().unwrap_or("?"),
                    record["record"]["to"].as_str().unwrap_or("?"),
                    record["record"]["why"].as_str().unwrap_or("?")
                );
            }
        }
    }
    let report = traffic.stop();
    stop_a.cancel();
    stop.cancel();
    tasks_a.close();
    tasks.close();
    runtime.block_on(async {
        tasks_a.wait().await;
        tasks.wait().await;
    });
    drop(survivor);
    lab.down();

    let probes = report.probes.expect("probes ran");
    let sessions = report.sessions.expect("sessions ran");
    eprintln!(
        "probes: {} sent, {} lost, longest gap {:.1} ms; sessions {} of {} survived, longest stall {:.1} ms",
        probes.sent,
        probes.lost,
        probes.longest_gap_ms,
        sessions.survived,
        sessions.total,
        sessions.longest_stall_ms
    );
    assert!(
        probes.longest_gap_ms < VERIFY_TIMEOUT_MS,
        "black-holed for {:.1} ms",
        probes.longest_gap_ms
    );
    assert_eq!(
        sessions.survived, sessions.total,
        "a session was lost: {:?}",
        sessions.resets
    );
}
