//! [`Fabric`] in memory: the switch state a pair needs (selector,
//! sampling target, steering counters), for fast tests and the simulated
//! demo. Traffic is whatever [`MemoryFabric::carry`] says went through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use umbra_orchestrator::Slot;

use super::{DeviceTraffic, Fabric, FabricError, FabricResult, PairPorts};

#[derive(Debug, Default)]
struct Service {
    selector: Option<u8>,
    sampling_to: Option<u8>,
    counters: HashMap<u8, DeviceTraffic>,
}

/// An in-memory switch, keyed by service id. Clones share the state.
#[derive(Clone, Debug, Default)]
pub struct MemoryFabric {
    // A synchronous mutex: no `.await` while it is held.
    services: Arc<Mutex<HashMap<u16, Service>>>,
}

impl MemoryFabric {
    /// An empty switch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, service: u16, f: impl FnOnce(&mut Service) -> T) -> T {
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        f(services.entry(service).or_default())
    }

    /// Steers `to_server` + `to_client` packets of `service` through its
    /// active device, as the pipeline would; returns the device they went
    /// to (`None`: no selector, dropped).
    pub fn carry(&self, service: u16, to_server: u64, to_client: u64) -> Option<u8> {
        self.with(service, |s| {
            let device = s.selector?;
            let counters = s.counters.entry(device).or_default();
            counters.to_server += to_server;
            counters.to_client += to_client;
            Some(device)
        })
    }

    /// The selector value of `service`.
    #[must_use]
    pub fn selector(&self, service: u16) -> Option<u8> {
        self.with(service, |s| s.selector)
    }

    /// The device `service` is sampled to.
    #[must_use]
    pub fn sampling_to(&self, service: u16) -> Option<u8> {
        self.with(service, |s| s.sampling_to)
    }

    /// Sets the selector behind the daemon's back (another host, or an
    /// operator with p4runtime-shell).
    pub fn set_selector(&self, service: u16, device: Option<u8>) {
        self.with(service, |s| s.selector = device);
    }
}

impl Fabric for MemoryFabric {
    async fn install(&self, pair: &PairPorts, active: Slot) -> FabricResult<Slot> {
        self.with(pair.service, |s| {
            let active = s
                .selector
                .and_then(|device| pair.slot_of(device))
                .unwrap_or(active);
            s.selector = Some(pair.device(active).device);
            s.sampling_to = Some(pair.device(active.other()).device);
            Ok(active)
        })
    }

    async fn flip(&self, pair: &PairPorts, to: Slot) -> FabricResult<()> {
        self.with(pair.service, |s| {
            if s.selector.is_none() {
                return Err(FabricError::refused("no selector entry for the service"));
            }
            s.selector = Some(pair.device(to).device);
            Ok(())
        })
    }

    async fn read_selector(&self, pair: &PairPorts) -> FabricResult<Option<Slot>> {
        Ok(self.with(pair.service, |s| {
            s.selector.and_then(|device| pair.slot_of(device))
        }))
    }

    async fn set_sampling(&self, pair: &PairPorts, to: Option<Slot>) -> FabricResult<()> {
        self.with(pair.service, |s| {
            s.sampling_to = to.map(|slot| pair.device(slot).device);
        });
        Ok(())
    }

    async fn traffic(&self, pair: &PairPorts, slot: Slot) -> FabricResult<DeviceTraffic> {
        let device = pair.device(slot).device;
        Ok(self.with(pair.service, |s| {
            s.counters.get(&device).copied().unwrap_or_default()
        }))
    }
}
