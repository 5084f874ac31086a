//! Harness: in-process switches, connected clients, a gate in front of a
//! switch, and the entities of a small steering + sampling setup.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_p4rt::{
    BackoffConfig, ClientConfig, ClientEvent, CloneSession, Connection, DefaultAction,
    P4RuntimeClient, P4Schema, TableEntry,
};
use umbra_proto::p4::config::v1::P4Info;

/// How long any awaited condition may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The cookie tests push umbra.p4 with.
pub const COOKIE: u64 = 0x0b5e_55ed;

pub fn p4info() -> P4Info {
    umbra_p4info::umbra_p4info().clone()
}

pub fn schema() -> P4Schema {
    P4Schema::new(p4info()).expect("umbra.p4's P4Info is consistent")
}

/// A software switch serving P4Runtime in-process.
pub struct Switch {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Switch {
    /// A switch on a fresh port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A switch on `addr` (retrying briefly while a stopped switch's port
    /// is released).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("binding {addr}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot bind {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let options = umbra_switch::SwitchOptions {
            device_id: 1,
            ..Default::default()
        };
        let token = shutdown.clone();
        tracker.spawn(async move {
            umbra_switch::serve(listener, options, token)
                .await
                .expect("switch serves");
        });
        tracker.close();
        Self {
            addr,
            shutdown,
            tracker,
        }
    }

    /// Stops the switch and waits until it no longer serves.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.tracker.wait())
            .await
            .expect("switch stops");
    }
}

/// A connected client with its supervisor running.
pub struct Controller {
    pub client: P4RuntimeClient,
    pub events: mpsc::Receiver<ClientEvent>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

pub fn config(addr: SocketAddr, election_id: u128) -> ClientConfig {
    ClientConfig {
        election_id,
        backoff: BackoffConfig {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(300),
            ..BackoffConfig::default()
        },
        ..ClientConfig::new(addr.to_string())
    }
}

impl Controller {
    pub async fn connect(addr: SocketAddr, election_id: u128) -> Self {
        Self::connect_with(config(addr, election_id)).await
    }

    pub async fn connect_with(config: ClientConfig) -> Self {
        let Connection {
            client,
            supervisor,
            events,
        } = P4RuntimeClient::connect(config).await.expect("connects");
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(supervisor.run(shutdown.clone()));
        tracker.close();
        Self {
            client,
            events,
            shutdown,
            tracker,
        }
    }

    /// Connects and pushes umbra.p4.
    pub async fn primary_with_pipeline(addr: SocketAddr, election_id: u128) -> Self {
        let controller = Self::connect(addr, election_id).await;
        assert!(controller.client.is_primary());
        controller
            .client
            .push_pipeline(p4info(), Vec::new(), COOKIE)
            .await
            .expect("pipeline pushed");
        controller
    }

    /// The next event `pick` accepts, skipping the others.
    pub async fn wait_for<T>(&mut self, mut pick: impl FnMut(ClientEvent) -> Option<T>) -> T {
        let events = &mut self.events;
        tokio::time::timeout(PATIENCE, async {
            loop {
                let event = events.recv().await.expect("event channel open");
                if let Some(found) = pick(event) {
                    return found;
                }
            }
        })
        .await
        .expect("expected event did not arrive")
    }

    /// Stops the supervisor (closing the stream).
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.tracker.wait())
            .await
            .expect("supervisor stops");
    }
}

/// A TCP forwarder in front of a switch that can refuse connections, so
/// that a test decides when a client may reach a restarted switch.
pub struct Gate {
    pub addr: SocketAddr,
    open: watch::Sender<bool>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Gate {
    pub async fn new(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, open_rx) = watch::channel(true);
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (token, connections) = (shutdown.clone(), tracker.clone());
        tracker.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                if !*open_rx.borrow() {
                    let _ = inbound.shutdown().await;
                    continue;
                }
                let token = token.clone();
                connections.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Self {
            addr,
            open,
            shutdown,
            tracker,
        }
    }

    pub fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(PATIENCE, self.tracker.wait())
            .await
            .expect("gate stops");
    }
}

/// Port roles of the test setup.
pub const CLIENT_PORT: u16 = 1;
pub const SERVER_PORT: u16 = 2;
pub const MONITOR_PORT: u16 = 9;
pub const MIRROR_SESSION: u32 = 5;

/// Steering of service 1 through device `device` (1 primary, 2 shadow):
/// classification of both edge ports, the selector, and both devices' legs.
pub fn steering(schema: &P4Schema, device: u8) -> Vec<TableEntry> {
    let mut entries = vec![
        schema
            .table("UmbraIngress.port_classify")
            .exact("ingress_port", CLIENT_PORT)
            .action("UmbraIngress.set_service")
            .param("service_id", 1u16)
            .param("direction", 0u8)
            .build()
            .unwrap(),
        schema
            .table("UmbraIngress.port_classify")
            .exact("ingress_port", SERVER_PORT)
            .action("UmbraIngress.set_service")
            .param("service_id", 1u16)
            .param("direction", 1u8)
            .build()
            .unwrap(),
        selector(schema, 1, device),
    ];
    for (device, first_leg) in [(1u8, 3u16), (2u8, 5u16)] {
        for direction in 0u8..2 {
            entries.push(
                schema
                    .table("UmbraIngress.device_portmap")
                    .exact("device", device)
                    .exact("direction", direction)
                    .action("UmbraIngress.steer_to_port")
                    .param("port", first_leg + u16::from(direction))
                    .build()
                    .unwrap(),
            );
        }
    }
    entries
}

pub fn selector(schema: &P4Schema, service: u16, device: u8) -> TableEntry {
    schema
        .table("UmbraIngress.service_selector")
        .exact("service_id", service)
        .action("UmbraIngress.set_active_device")
        .param("device", device)
        .build()
        .unwrap()
}

/// Per-flow sampling of both edge ports into the mirror session.
pub fn sampling(schema: &P4Schema) -> Vec<TableEntry> {
    [CLIENT_PORT, SERVER_PORT]
        .into_iter()
        .map(|port| {
            schema
                .table("UmbraIngress.mirror_sampling")
                .exact("ingress_port", port)
                .action("UmbraIngress.sample_per_flow")
                .param("threshold", u32::MAX / 50)
                .param("session", MIRROR_SESSION)
                .build()
                .unwrap()
        })
        .collect()
}

pub fn mirror_session() -> CloneSession {
    CloneSession::builder(MIRROR_SESSION)
        .replica(u32::from(MONITOR_PORT), 1)
        .build()
        .unwrap()
}

pub fn truncate_default(schema: &P4Schema) -> DefaultAction {
    schema
        .default_action("UmbraEgress.mirror_truncate")
        .action("UmbraEgress.truncate_mirror")
        .param("length", 128u32)
        .build()
        .unwrap()
}

pub fn sorted(mut entries: Vec<TableEntry>) -> Vec<TableEntry> {
    entries.sort();
    entries
}
