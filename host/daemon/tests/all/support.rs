//! Pairs, recorders and waiting.

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
