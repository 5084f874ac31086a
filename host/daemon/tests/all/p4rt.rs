//! The P4Runtime fabric against Umbra's switch served in process: install,
//! flip, read back, sampling; and two hosts on one switch, where only the
//! primary writes.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_daemon::fabric::{Fabric, P4rtFabric};
use umbra_orchestrator::Slot;
use umbra_p4rt::{ClientConfig, Connection, P4RuntimeClient};

use crate::support::ports;

async fn switch(tasks: &TaskTracker, stop: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = umbra_switch::SwitchOptions {
        device_id: 1,
        ..Default::default()
    };
    tasks.spawn(umbra_switch::serve(listener, options, stop.clone()));
    addr
}

struct Host {
    fabric: P4rtFabric,
    _events: tokio::sync::mpsc::Receiver<umbra_p4rt::ClientEvent>,
    stop: CancellationToken,
}

async fn host(addr: SocketAddr, election_id: u128, tasks: &TaskTracker) -> Host {
    let config = ClientConfig {
        election_id,
        ..ClientConfig::new(addr.to_string())
    };
    let Connection {
        client,
        supervisor,
        events,
    } = P4RuntimeClient::connect(config).await.expect("connect");
    let stop = CancellationToken::new();
    tasks.spawn(supervisor.run(stop.clone()));
    let pushed = client
        .push_pipeline(
            umbra_p4info::umbra_p4info().clone(),
            Vec::new(),
            0x0b5e_55ed,
        )
        .await;
    // A backup cannot push; it adopts the pipeline for names all the same.
    if client.is_primary() {
        pushed.expect("pipeline");
    }
    Host {
        fabric: P4rtFabric::new(client),
        _events: events,
        stop,
    }
}

#[tokio::test]
async fn install_flip_and_read_back_over_p4runtime() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let addr = switch(&tasks, &stop).await;
    let host = host(addr, 10, &tasks).await;
    let pair = ports(1);

    assert_eq!(host.fabric.read_selector(&pair).await.unwrap(), None);
    assert_eq!(host.fabric.install(&pair, Slot::A).await.unwrap(), Slot::A);
    assert_eq!(
        host.fabric.read_selector(&pair).await.unwrap(),
        Some(Slot::A)
    );
    // Installing again (a daemon restart) converges and keeps the switch's
    // selector.
    host.fabric.flip(&pair, Slot::B).await.unwrap();
    assert_eq!(host.fabric.install(&pair, Slot::A).await.unwrap(), Slot::B);
    assert_eq!(
        host.fabric.read_selector(&pair).await.unwrap(),
        Some(Slot::B)
    );

    let client = host.fabric.client();
    let sampling = client
        .read_table("UmbraIngress.mirror_sampling")
        .await
        .unwrap();
    assert_eq!(sampling.len(), 2, "both service ports are sampled");
    host.fabric.set_sampling(&pair, None).await.unwrap();
    let sampling = client
        .read_table("UmbraIngress.mirror_sampling")
        .await
        .unwrap();
    assert!(
        sampling
            .iter()
            .all(|e| e.action().name() == "UmbraIngress.no_sampling")
    );
    let sessions = client.read_clone_sessions().await.unwrap();
    assert_eq!(sessions.len(), 2, "one clone session per monitor leg");
    assert_eq!(
        host.fabric.traffic(&pair, Slot::A).await.unwrap(),
        Default::default(),
        "no dataplane here: nothing counted"
    );
    host.stop.cancel();
    stop.cancel();
}

#[tokio::test]
async fn only_the_primary_host_flips_and_a_backup_reads_what_it_wrote() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let addr = switch(&tasks, &stop).await;
    let pair = ports(1);
    let first = host(addr, 10, &tasks).await;
    first.fabric.install(&pair, Slot::A).await.unwrap();
    let backup = host(addr, 5, &tasks).await;
    // The backup reads (allowed), cannot write, and knows it was refused
    // for want of mastership, not for an unknown outcome.
    assert_eq!(
        backup.fabric.read_selector(&pair).await.unwrap(),
        Some(Slot::A)
    );
    let refused = backup.fabric.flip(&pair, Slot::B).await.unwrap_err();
    assert!(refused.not_primary, "{refused}");
    assert!(!refused.applied_unknown);
    let refused = backup.fabric.install(&pair, Slot::B).await.unwrap_err();
    assert!(refused.not_primary, "{refused}");

    first.fabric.flip(&pair, Slot::B).await.unwrap();
    assert_eq!(
        backup.fabric.read_selector(&pair).await.unwrap(),
        Some(Slot::B)
    );
    first.stop.cancel();
    backup.stop.cancel();
    stop.cancel();
}
