//! Faults during a failover, with `umbra run` against Umbra's switch and
//! simulated agents: the pair always ends consistent (the switch's
//! selector names the device the daemon believes active, one device
//! only) and the switch's programming complete.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_daemon::run::{Running, audit_file, start};
use umbra_orchestrator::{Phase, Slot};

use crate::run::{agent, agent_on, host_config, switch_tables};
use crate::support::{device_of, selected, serve_switch, serve_switch_on, until};

async fn started(
    dir: &std::path::Path,
    switch: SocketAddr,
    agents: (&str, &str),
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> Running {
    let config = host_config(dir, "host", 10, switch, agents);
    let audit = audit_file("host", &config.host.audit_log).unwrap();
    start(&config, audit, tasks, stop).await.expect("starts")
}

/// The shadow's agent dies, then a failover is asked for: the drain
/// cannot commit on it, so the failover does not happen and the primary
/// keeps the traffic, on the switch as in the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_crash_leaves_the_traffic_on_the_primary() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let switch = serve_switch(&tasks, &stop).await;
    let stop_shadow = CancellationToken::new();
    let primary = agent(1, &tasks, &stop).await;
    let shadow = agent(2, &tasks, &stop_shadow).await;
    let dir = tempfile::tempdir().unwrap();
    let running = started(dir.path(), switch, (&primary, &shadow), &tasks, &stop).await;
    let mut view = running.pair("web").unwrap().handle.view.clone();
    until(&mut view, |v| v.master && v.phase == Phase::Normal).await;

    stop_shadow.cancel();
    until(&mut view, |v| !v.health[1].0).await;
    running.failover("web", "test").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    until(&mut view, |v| v.phase == Phase::Normal).await;
    let v = view.borrow().clone();
    assert_eq!((v.active, v.failovers), (Slot::A, 0), "{v:?}");
    assert_eq!(selected(&switch_tables(switch).await), Some(1));
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

/// An agent restarting is not the device failing: the primary's agent is
/// away for less than `agent-grace-ms` (3 s by default) and nothing
/// happens; away for longer, the device counts as unhealthy, no sooner
/// than the grace, and the pair fails over reactively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_away_within_its_grace_is_no_failure_and_beyond_it_is() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let switch = serve_switch(&tasks, &stop).await;
    let stop_primary = CancellationToken::new();
    let primary = agent(1, &tasks, &stop_primary).await;
    let shadow = agent(2, &tasks, &stop).await;
    let dir = tempfile::tempdir().unwrap();
    let running = started(dir.path(), switch, (&primary, &shadow), &tasks, &stop).await;
    let mut view = running.pair("web").unwrap().handle.view.clone();
    until(&mut view, |v| {
        v.master && v.phase == Phase::Normal && v.health[0].0
    })
    .await;

    // Away for a second, then back on the same address (a restart).
    stop_primary.cancel();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let address = primary.trim_start_matches("http://");
    let listener = TcpListener::bind(address)
        .await
        .expect("the agent's port again");
    let stop_primary = CancellationToken::new();
    agent_on(listener, 1, &tasks, &stop_primary);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = view.borrow().clone();
    assert_eq!(
        (v.phase.clone(), v.active, v.failovers, v.health[0].0),
        (Phase::Normal, Slot::A, 0, true),
        "a restart within the grace changes nothing: {v:?}"
    );

    // Away for good.
    stop_primary.cancel();
    let gone = tokio::time::Instant::now();
    until(&mut view, |v| !v.health[0].0).await;
    let after = gone.elapsed();
    assert!(
        after >= Duration::from_millis(2_900),
        "unhealthy after {after:?}, within the grace"
    );
    until(&mut view, |v| {
        v.phase != Phase::Normal || v.active == Slot::B
    })
    .await;
    let audit = std::fs::read_to_string(dir.path().join("umbra-audit.jsonl")).unwrap_or_default();
    assert!(
        audit.contains("the active device primary is unhealthy"),
        "a reactive failover: {audit}"
    );
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

/// The switch restarts (empty, no pipeline) right after a failover's
/// trigger: the daemon reconnects, pushes the pipeline, reinstalls the
/// pair and ends with the switch and itself agreeing on one device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_restart_mid_failover_ends_consistent() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let switch = listener.local_addr().unwrap();
    let (switch_tasks, stop_switch) = (TaskTracker::new(), CancellationToken::new());
    serve_switch_on(listener, &switch_tasks, &stop_switch);
    let (primary, shadow) = (agent(1, &tasks, &stop).await, agent(2, &tasks, &stop).await);
    let dir = tempfile::tempdir().unwrap();
    let running = started(dir.path(), switch, (&primary, &shadow), &tasks, &stop).await;
    let mut view = running.pair("web").unwrap().handle.view.clone();
    until(&mut view, |v| v.master && v.phase == Phase::Normal).await;
    let installed = switch_tables(switch).await;

    running.failover("web", "test").await.unwrap();
    stop_switch.cancel();
    switch_tasks.close();
    switch_tasks.wait().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = TcpListener::bind(switch)
        .await
        .expect("the switch's port again");
    serve_switch_on(listener, &tasks, &stop);

    // Back at rest, primary again, and the switch fully programmed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = view.borrow().clone();
        if v.master && v.phase == Phase::Normal {
            let tables = switch_tables(switch).await;
            if tables.len() == installed.len() {
                assert_eq!(
                    selected(&tables),
                    Some(device_of(v.active)),
                    "switch and daemon agree: {v:?}"
                );
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not consistent after the restart: {:?}",
            view.borrow()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}
