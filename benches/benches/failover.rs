//! Decision to redirect: from the moment a pair's driver takes a failover
//! trigger to the moment the switch has acknowledged the one P4Runtime
//! write that moves the service (stop sampling, drain-and-commit, the
//! selector write), measured by the driver itself, against Umbra's switch
//! serving P4Runtime on loopback. `decision_to_redirect` has replication
//! off; `decision_to_redirect_replicated` runs Umbra's replicator between
//! two simulated agents on loopback (sessions coming and going), so its
//! drain-and-commit waits for the standby to hold the active device's head
//! and asks the standby's agent to commit. The verification passes on
//! health alone (no dataplane), so each iteration is one whole failover
//! and the next one moves the service back. Target: <= 2 ms.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_agent::SimConfig;
use umbra_benches::agent::sim_agent;
use umbra_daemon::fabric::{DevicePorts, Fabric, P4rtFabric, PairPorts, Sampling};
use umbra_daemon::pair::PairHandle;
use umbra_daemon::pair::{PairDriver, PairInput, PairSpec};
use umbra_daemon::replication::{AgentReplication, NoReplication, Replication};
use umbra_orchestrator::{AuditRecord, Phase, Slot, Timeouts, Trigger};
use umbra_p4rt::{ClientConfig, Connection, P4RuntimeClient};
use umbra_replicate::{Peer, ReplicatorConfig};

fn ports() -> PairPorts {
    let device = |device, base| DevicePorts {
        device,
        client_leg: base,
        server_leg: base + 1,
        monitor: base + 2,
    };
    PairPorts {
        service: 1,
        client_port: 1,
        server_port: 2,
        devices: [device(1, 3), device(2, 6)],
        sampling: Sampling::default(),
    }
}

/// Umbra's switch on loopback with the pair installed, and the pair's
/// driver running with `replication`, primary and at rest.
async fn pair<R: Replication + Clone>(replication: R, stop: &CancellationToken) -> PairHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = umbra_switch::SwitchOptions {
        device_id: 1,
        ..Default::default()
    };
    tokio::spawn(umbra_switch::serve(listener, options, stop.clone()));
    let Connection {
        client, supervisor, ..
    } = P4RuntimeClient::connect(ClientConfig::new(addr.to_string()))
        .await
        .expect("connect");
    tokio::spawn(supervisor.run(stop.clone()));
    client
        .push_pipeline(umbra_p4info::umbra_p4info().clone(), Vec::new(), 1)
        .await
        .expect("pipeline");
    let fabric = P4rtFabric::new(client);
    fabric.install(&ports(), Slot::A).await.expect("install");
    let spec = PairSpec {
        name: "bench".into(),
        device_names: ["primary".into(), "shadow".into()],
        ports: ports(),
        timeouts: Timeouts::default(),
        verify_min_packets: 0,
    };
    let audit = Arc::new(|_: &str, _: &AuditRecord| {});
    let (driver, handle) = PairDriver::new(spec, Slot::A, fabric, replication, audit);
    tokio::spawn(driver.run(stop.clone()));
    handle
        .inputs
        .send(PairInput::Mastership { primary: true })
        .await
        .unwrap();
    let mut view = handle.view.clone();
    view.wait_for(|v| v.phase == Phase::Normal).await.unwrap();
    handle
}

/// The driver's own decision-to-redirect, per whole failover.
fn measure(runtime: &tokio::runtime::Runtime, handle: &PairHandle, iterations: u64) -> Duration {
    runtime.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iterations {
            let mut view = handle.view.clone();
            let before = view.borrow().failovers;
            handle
                .inputs
                .send(PairInput::Trigger(Trigger::Manual { by: "bench".into() }))
                .await
                .unwrap();
            let done = view
                .wait_for(|v| v.failovers > before && v.phase == Phase::Normal)
                .await
                .unwrap();
            let ms = done.last_decision_to_redirect_ms.expect("measured");
            total += Duration::from_secs_f64(ms / 1e3);
        }
        total
    })
}

fn bench_failover(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stop = CancellationToken::new();
    let plain = runtime.block_on(pair(NoReplication, &stop));
    let replicated = runtime.block_on(async {
        let mut peers = Vec::new();
        for node_id in [1, 2] {
            // Sessions coming and going.
            let sim = SimConfig {
                session_rate: 200.0,
                ..SimConfig::default()
            };
            let (_, addr) = sim_agent(node_id, sim, &stop).await;
            let url = format!("http://{addr}");
            peers.push(Peer::connect_lazy(&format!("agent-{node_id}"), &url, None).expect("peer"));
        }
        let peers: [Peer; 2] = peers.try_into().expect("two peers");
        let replication = AgentReplication::new(
            peers,
            ReplicatorConfig::default(),
            TaskTracker::new(),
            stop.clone(),
        );
        pair(replication, &stop).await
    });

    let mut group = c.benchmark_group("failover");
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("decision_to_redirect", |b| {
        b.iter_custom(|iterations| measure(&runtime, &plain, iterations));
    });
    group.bench_function("decision_to_redirect_replicated", |b| {
        b.iter_custom(|iterations| measure(&runtime, &replicated, iterations));
    });
    group.finish();
    stop.cancel();
}

criterion_group!(benches, bench_failover);
criterion_main!(benches);
