//! `umbra run`'s start-up against real parts in process: Umbra's switch
//! serving P4Runtime on loopback, two simulated device agents serving
//! umbra.device.v1, the replicator between them. A manual failover goes
//! through drain, the selector write and verification; the switch here
//! has no dataplane, so nothing flows through the new device, the
//! verification times out and the pair rolls back: every step in the
//! audit file and the selector on the switch where it started.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_agent::{Agent, AgentConfig, Backend, Security, SimBackend, SimConfig};
use umbra_daemon::run::{Running, audit_file, start};
use umbra_orchestrator::{Phase, Slot};

use crate::support::{
    device_of, management_client, one_pair_config, selected, serve_switch, status_json, until,
};

pub async fn agent(node_id: u64, tasks: &TaskTracker, stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    agent_on(listener, node_id, tasks, stop)
}

/// A simulated agent serving on `listener` until `stop`; its URL.
pub fn agent_on(
    listener: TcpListener,
    node_id: u64,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> String {
    let sim = Arc::new(SimBackend::new(SimConfig {
        session_rate: 200.0,
        ..SimConfig::default()
    }));
    tasks.spawn(Arc::clone(&sim).drive(stop.clone()));
    let agent = Agent::new(
        AgentConfig {
            node_id,
            ..AgentConfig::default()
        },
        sim as Arc<dyn Backend>,
    )
    .expect("agent");
    let addr = listener.local_addr().unwrap();
    let security = Security {
        allow_unauthenticated: true,
        ..Security::default()
    };
    tasks.spawn(umbra_agent::serve(listener, agent, security, stop.clone()));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_pair_fails_over_and_rolls_back_without_traffic_audited() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let switch = serve_switch(&tasks, &stop).await;
    let (primary, shadow) = (agent(1, &tasks, &stop).await, agent(2, &tasks, &stop).await);
    let dir = tempfile::tempdir().unwrap();
    let text = one_pair_config(
        "name = \"test-host\"\nelection-id = 10\ntick-ms = 100",
        switch,
        (&primary, &shadow),
        "",
        "[failover]\nverify-timeout-ms = 700",
    );
    let path = dir.path().join("umbra.toml");
    std::fs::write(&path, &text).unwrap();
    let config = umbra_config::load(&path).expect("valid configuration");
    let audit_path = config.host.audit_log.clone();
    let audit = audit_file("test-host", &audit_path).unwrap();
    let running = start(&config, audit, &tasks, &stop).await.expect("starts");

    let pair = running.pair("web").expect("the pair").clone();
    let mut view = pair.handle.view.clone();
    until(&mut view, |v| v.master && v.phase == Phase::Normal).await;
    // The engine decides every tick (warming up: no go yet).
    let mut decision = pair.last_decision.clone();
    tokio::time::timeout(Duration::from_secs(10), decision.wait_for(Option::is_some))
        .await
        .expect("a decision within 10 s")
        .unwrap();
    assert!(!decision.borrow().as_ref().unwrap().go);

    // Through the management API, as `umbra status` / `umbra failover`.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let control = Arc::new(umbra_daemon::control::DaemonControl::new(running.clone()));
    tasks.spawn(umbra_ops::serve(listener, control, None, stop.clone()));
    let client = management_client(api);
    let status = status_json(&client).await;
    assert_eq!(status["pairs"][0]["name"], "web");
    assert_eq!(status["pairs"][0]["active_device"], "primary");
    assert_eq!(status["pairs"][0]["p4runtime_primary"], true);
    let started = umbra_ops::client::failover(
        &client,
        &umbra_ops::client::FailoverArgs {
            pair: "web".into(),
            reason: "test".into(),
        },
    )
    .await
    .expect("accepted");
    assert!(started.contains("primary to shadow"), "{started}");
    until(&mut view, |v| {
        v.phase == Phase::Normal
            && v.last_audit
                .as_ref()
                .is_some_and(|r| r.from == "rolling-back")
    })
    .await;
    assert_eq!(view.borrow().active, Slot::A);
    let replication = pair.replication.as_ref().expect("replication is on");
    let (from, status) = replication.status().expect("replicating");
    assert_eq!(from, Slot::A);
    assert!(
        status.forward.acked_revision > 0,
        "the drain committed: {status:?}"
    );

    let metrics = running.metrics.encode();
    assert!(
        metrics.contains("umbra_failure_probability") || metrics.contains("umbra_drift_score"),
        "{metrics}"
    );
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    let phases: Vec<String> = audit
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("one JSON per line");
            assert_eq!(value["pair"], "web");
            value["record"]["to"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected = [
        "preparing",
        "switching",
        "verifying",
        "rolling-back",
        "normal",
    ];
    assert!(
        phases.windows(expected.len()).any(|w| w == expected),
        "audit: {phases:?}"
    );
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

pub fn host_config(
    dir: &std::path::Path,
    host: &str,
    election_id: u64,
    switch: std::net::SocketAddr,
    agents: (&str, &str),
) -> umbra_config::Config {
    host_config_taking_over_after(dir, host, election_id, 300, switch, agents)
}

/// [`host_config`] with its own `takeover-after-ms`.
pub fn host_config_taking_over_after(
    dir: &std::path::Path,
    host: &str,
    election_id: u64,
    takeover_after_ms: u64,
    switch: std::net::SocketAddr,
    agents: (&str, &str),
) -> umbra_config::Config {
    let text = one_pair_config(
        &format!(
            "name = \"{host}\"\nelection-id = {election_id}\ntick-ms = 100\ntakeover-after-ms = {takeover_after_ms}"
        ),
        switch,
        agents,
        "replication = { enabled = false }",
        "",
    );
    let path = dir.join(format!("{host}.toml"));
    std::fs::write(&path, &text).unwrap();
    umbra_config::load(&path).expect("valid configuration")
}

/// Everything the switch holds, as a third controller (a backup that
/// never writes) reads it.
pub async fn switch_tables(switch: std::net::SocketAddr) -> Vec<umbra_p4rt::TableEntry> {
    let umbra_p4rt::Connection { client, .. } =
        umbra_p4rt::P4RuntimeClient::connect(umbra_p4rt::ClientConfig {
            device_id: 1,
            election_id: 1,
            ..umbra_p4rt::ClientConfig::new(switch.to_string())
        })
        .await
        .expect("observer connects");
    // A backup's push is refused but leaves it the names to read with.
    let _ = client
        .push_pipeline(umbra_p4info::umbra_p4info().clone(), Vec::new(), 1)
        .await;
    let mut entries = client.read_all_tables().await.expect("read");
    entries.sort_by_key(|e| format!("{e:?}"));
    entries
}

/// Split-brain safety and continuity: a second host started as backup
/// (lower election id) follows; when the primary host dies it takes the
/// switch over (arbitrating above the highest id the switch has seen)
/// without touching what the switch holds, and then commands the pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_host_takes_over_when_the_primary_host_dies_keeping_the_switch_state() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let switch = serve_switch(&tasks, &stop).await;
    let (primary, shadow) = (agent(1, &tasks, &stop).await, agent(2, &tasks, &stop).await);
    let dir = tempfile::tempdir().unwrap();

    // Host A, the primary.
    let (tasks_a, stop_a) = (TaskTracker::new(), CancellationToken::new());
    let config_a = host_config(dir.path(), "host-a", 10, switch, (&primary, &shadow));
    let audit_a = audit_file("host-a", &config_a.host.audit_log).unwrap();
    let running_a = start(&config_a, audit_a, &tasks_a, &stop_a)
        .await
        .expect("A starts");
    let mut view_a = running_a.pair("web").unwrap().handle.view.clone();
    until(&mut view_a, |v| v.master && v.phase == Phase::Normal).await;
    let installed = switch_tables(switch).await;
    assert!(!installed.is_empty(), "A installed the pair");

    // Host B, the backup: it follows and cannot command.
    let config_b = host_config(dir.path(), "host-b", 5, switch, (&primary, &shadow));
    let audit_b_path = config_b.host.audit_log.clone();
    let audit_b = audit_file("host-b", &audit_b_path).unwrap();
    let running_b = start(&config_b, audit_b, &tasks, &stop)
        .await
        .expect("B starts as backup");
    let pair_b = running_b.pair("web").unwrap().clone();
    let mut view_b = pair_b.handle.view.clone();
    until(&mut view_b, |v| !v.master && v.phase == Phase::Following).await;
    running_b.failover("web", "test").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(view_b.borrow().phase, Phase::Following, "a backup refuses");
    assert_eq!(switch_tables(switch).await, installed);

    // A dies in the middle of a failover (its tasks stop, its stream to
    // the switch closes), wherever the failover had got to.
    running_a.failover("web", "test").await.unwrap();
    until(&mut view_a, |v| v.phase != Phase::Normal).await;
    stop_a.cancel();
    tasks_a.close();
    tasks_a.wait().await;
    drop(running_a);
    until(&mut view_b, |v| v.master && v.phase == Phase::Normal).await;
    let after = switch_tables(switch).await;
    assert_eq!(
        selected(&after),
        Some(device_of(view_b.borrow().active)),
        "B took the switch's word"
    );
    assert_eq!(
        after.len(),
        installed.len(),
        "the takeover kept everything A programmed"
    );

    // B now commands: its flip reaches the switch (no dataplane here, so
    // the verification fails and B rolls back, as the primary would).
    running_b.failover("web", "test").await.expect("B commands");
    until(&mut view_b, |v| {
        v.phase == Phase::Normal
            && v.last_audit
                .as_ref()
                .is_some_and(|r| r.from == "rolling-back")
    })
    .await;
    let audit = std::fs::read_to_string(&audit_b_path).unwrap();
    assert!(
        audit.contains("the selector now points at b"),
        "B wrote the selector: {audit}"
    );
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

/// Three hosts on one switch, the backups ordered by their
/// `takeover-after-ms` (300 and 1000 ms): when the primary host dies, the
/// first backup takes over and the other sees the switch has a primary
/// again and keeps following; when that one dies too, the last takes
/// over. At no sample are two hosts primary, and every takeover keeps
/// what the switch holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_backups_only_one_takes_over_at_a_time() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let switch = serve_switch(&tasks, &stop).await;
    let (primary, shadow) = (agent(1, &tasks, &stop).await, agent(2, &tasks, &stop).await);
    let dir = tempfile::tempdir().unwrap();
    let mut hosts = Vec::new();
    for (name, election_id, takeover_ms) in [
        ("host-a", 10, 300),
        ("host-b", 5, 300),
        ("host-c", 3, 1_000),
    ] {
        let (host_tasks, host_stop) = (TaskTracker::new(), CancellationToken::new());
        let config = host_config_taking_over_after(
            dir.path(),
            name,
            election_id,
            takeover_ms,
            switch,
            (&primary, &shadow),
        );
        let audit = audit_file(name, &config.host.audit_log).unwrap();
        let running = start(&config, audit, &host_tasks, &host_stop)
            .await
            .expect("the host starts");
        let mut view = running.pair("web").unwrap().handle.view.clone();
        if hosts.is_empty() {
            until(&mut view, |v| v.master && v.phase == Phase::Normal).await;
        } else {
            until(&mut view, |v| !v.master && v.phase == Phase::Following).await;
        }
        hosts.push(Some((running, host_tasks, host_stop)));
    }
    let installed = switch_tables(switch).await;
    let masters = |hosts: &[Option<(Running, TaskTracker, CancellationToken)>]| -> Vec<usize> {
        hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let (running, ..) = h.as_ref()?;
                let v = running.pair("web").unwrap().handle.view.borrow().clone();
                v.master.then_some(i)
            })
            .collect()
    };

    for (dies, heir) in [(0, 1), (1, 2)] {
        let (running, host_tasks, host_stop) = hosts[dies].take().expect("alive");
        host_stop.cancel();
        host_tasks.close();
        host_tasks.wait().await;
        drop(running);
        // Until the heir is primary and for two seconds after, sampled
        // every 20 ms: never two primaries.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut settled: Option<tokio::time::Instant> = None;
        loop {
            let now_masters = masters(&hosts);
            assert!(now_masters.len() <= 1, "two primaries: {now_masters:?}");
            match (settled, now_masters.as_slice()) {
                (None, [m]) => {
                    assert_eq!(*m, heir, "the backup that waits least takes over");
                    settled = Some(tokio::time::Instant::now());
                }
                (Some(at), _) if at.elapsed() > Duration::from_secs(2) => break,
                (Some(_), [m]) => assert_eq!(*m, heir, "the primary stays"),
                (Some(_), _) => panic!("the heir lost the switch: {now_masters:?}"),
                (None, _) => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no backup took over"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (running, ..) = hosts[heir].as_ref().unwrap();
        let mut view = running.pair("web").unwrap().handle.view.clone();
        until(&mut view, |v| v.phase == Phase::Normal).await;
        for (i, host) in hosts.iter().enumerate() {
            if let Some((other, ..)) = host.as_ref().filter(|_| i != heir) {
                let v = other.pair("web").unwrap().handle.view.borrow().clone();
                assert_eq!(v.phase, Phase::Following, "host {i} follows: {v:?}");
            }
        }
        let after = switch_tables(switch).await;
        assert_eq!(
            after.len(),
            installed.len(),
            "the takeover kept the switch's entries"
        );
        assert_eq!(selected(&after), Some(device_of(view.borrow().active)));
    }
    for (_, host_tasks, host_stop) in hosts.into_iter().flatten() {
        host_stop.cancel();
        host_tasks.close();
        host_tasks.wait().await;
    }
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}
