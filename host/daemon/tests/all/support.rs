//! Pairs, recorders and waiting; Umbra's switch on loopback and the
//! daemon's configuration of one pair on it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use umbra_daemon::fabric::{DevicePorts, PairPorts, Sampling};
use umbra_daemon::pair::{PairSpec, PairView};
use umbra_orchestrator::{AuditRecord, Timeouts};

/// How long any awaited condition may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub fn ports(service: u16) -> PairPorts {
    let base = service * 10;
    PairPorts {
        service,
        client_port: base + 1,
        server_port: base + 2,
        devices: [
            DevicePorts {
                device: u8::try_from(service * 2 - 1).unwrap(),
                client_leg: base + 3,
                server_leg: base + 4,
                monitor: base + 7,
            },
            DevicePorts {
                device: u8::try_from(service * 2).unwrap(),
                client_leg: base + 5,
                server_leg: base + 6,
                monitor: base + 8,
            },
        ],
        sampling: Sampling::default(),
    }
}

pub fn spec(service: u16) -> PairSpec {
    PairSpec {
        name: format!("pair-{service}"),
        device_names: ["primary".into(), "shadow".into()],
        ports: ports(service),
        timeouts: Timeouts {
            drain_ms: 500,
            flip_ms: 300,
            verify_ms: 600,
        },
        verify_min_packets: 3,
    }
}

/// Every audit record, in order.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<(String, AuditRecord)>>>);

impl Recorder {
    pub fn sink(&self) -> Arc<dyn umbra_daemon::pair::AuditSink> {
        let records = Arc::clone(&self.0);
        Arc::new(move |pair: &str, record: &AuditRecord| {
            records
                .lock()
                .unwrap()
                .push((pair.to_owned(), record.clone()));
        })
    }

    pub fn phases(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().iter().map(|(_, r)| r.to).collect()
    }
}

/// Waits until the view satisfies `check`.
pub async fn until(view: &mut watch::Receiver<PairView>, check: impl Fn(&PairView) -> bool) {
    let reached = tokio::time::timeout(PATIENCE, view.wait_for(|v| check(v)))
        .await
        .map(|r| r.map(|_| ()));
    match reached {
        Ok(running) => running.expect("driver running"),
        Err(_) => panic!("condition not reached; view: {:?}", view.borrow()),
    }
}

/// Umbra's switch (device id 1) serving P4Runtime on `listener` until
/// `stop`.
pub fn serve_switch_on(
    listener: tokio::net::TcpListener,
    tasks: &tokio_util::task::TaskTracker,
    stop: &tokio_util::sync::CancellationToken,
) {
    tasks.spawn(umbra_switch::serve(
        listener,
        umbra_switch::SwitchOptions {
            device_id: 1,
            ..Default::default()
        },
        stop.clone(),
    ));
}

/// Umbra's switch on a loopback port of its own; returns its address.
pub async fn serve_switch(
    tasks: &tokio_util::task::TaskTracker,
    stop: &tokio_util::sync::CancellationToken,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve_switch_on(listener, tasks, stop);
    addr
}

/// `umbra.toml` for one pair, `web` (service 1 on switch `s1` at
/// `switch`, the devices' agents at `agents`): `host` is the body of
/// `[host]`, `pair` more keys of the pair, `tail` more tables.
pub fn one_pair_config(
    host: &str,
    switch: std::net::SocketAddr,
    agents: (&str, &str),
    pair: &str,
    tail: &str,
) -> String {
    let (primary, shadow) = agents;
    format!(
        r#"
[host]
{host}

[[switch]]
name = "s1"
address = "{switch}"
device-id = 1

[[pair]]
name = "web"
switch = "s1"
service = 1
client-port = 1
server-port = 2
primary = {{ name = "primary", device = 1, client-leg = 3, server-leg = 4, monitor = 8, agent = "{primary}" }}
shadow = {{ name = "shadow", device = 2, client-leg = 5, server-leg = 6, monitor = 7, agent = "{shadow}" }}
{pair}
{tail}
"#
    )
}

/// The device the selector among `tables` names for service 1.
pub fn selected(tables: &[umbra_p4rt::TableEntry]) -> Option<u64> {
    tables
        .iter()
        .find(|e| e.key().table() == "UmbraIngress.service_selector")
        .and_then(|e| e.action().param("device"))
        .and_then(|v| v.as_u64())
}

/// The selector value of `slot` in [`one_pair_config`]'s pair.
pub fn device_of(slot: umbra_orchestrator::Slot) -> u64 {
    match slot {
        umbra_orchestrator::Slot::A => 1,
        umbra_orchestrator::Slot::B => 2,
    }
}

/// A management API client of the daemon serving at `api`.
pub fn management_client(api: std::net::SocketAddr) -> umbra_ops::client::ClientArgs {
    umbra_ops::client::ClientArgs {
        addr: format!("http://{api}"),
        token_file: None,
    }
}

/// `umbra status --json` through `client`, parsed.
pub async fn status_json(client: &umbra_ops::client::ClientArgs) -> serde_json::Value {
    let status = umbra_ops::client::status(
        client,
        &umbra_ops::client::StatusArgs {
            pair: None,
            json: true,
        },
    )
    .await
    .expect("status");
    serde_json::from_str(&status).expect("JSON status")
}
