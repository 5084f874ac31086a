//! The switch as the daemon needs it: install a protected pair's steering
//! and sampling, flip its selector, read the selector back, move sampling,
//! and count what each device carried.
//!
//! [`Fabric`] is the trait the pair driver uses. [`P4rtFabric`] programs a
//! real switch (Umbra's own or bmv2) over P4Runtime, every name resolved
//! through the P4Info; [`MemoryFabric`] keeps the same state in memory for
//! fast tests and the simulated demo; [`ChaosFabric`] wraps either and
//! fails (or loses the answer of) a set fraction of operations, so the
//! driver's fault paths are exercised on every backend.

use std::future::Future;

use umbra_orchestrator::Slot;

mod chaos;
mod memory;
mod p4rt;

pub use chaos::ChaosFabric;
pub use memory::MemoryFabric;
pub use p4rt::P4rtFabric;

/// The switch ports and selector values of one device of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevicePorts {
    /// The device's value in `service_selector` / `device_portmap`
    /// (1..=255, unique on the switch).
    pub device: u8,
    /// Port of the device's client-facing leg.
    pub client_leg: u16,
    /// Port of the device's server-facing leg.
    pub server_leg: u16,
    /// Port of the device's monitor leg (mirrored samples while it is the
    /// standby).
    pub monitor: u16,
}

/// How traffic is sampled to the standby.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplingMode {
    /// Random 1-in-N per packet (representative of packets).
    Packet,
    /// 5-tuple hash below a threshold (whole flows, representative of
    /// flows).
    Flow,
}

/// Sampling of a pair's service traffic to the standby's monitor leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// Per packet or per flow.
    pub mode: SamplingMode,
    /// One packet (or flow) in this many.
    pub one_in: u32,
    /// Samples are cut to this many bytes; 0 sends them whole.
    pub truncate_bytes: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            mode: SamplingMode::Packet,
            one_in: 50,
            truncate_bytes: 128,
        }
    }
}

/// Everything the switch must know of one protected pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairPorts {
    /// The service id in `service_selector`.
    pub service: u16,
    /// Client-facing switch port of the service.
    pub client_port: u16,
    /// Server-facing switch port of the service.
    pub server_port: u16,
    /// The two devices, indexed by [`Slot`] (`A` = configured primary).
    pub devices: [DevicePorts; 2],
    /// Sampling to the standby.
    pub sampling: Sampling,
}

impl PairPorts {
    /// The ports of the device in `slot`.
    #[must_use]
    pub fn device(&self, slot: Slot) -> &DevicePorts {
        &self.devices[slot as usize]
    }

    /// The slot whose selector value is `device`.
    #[must_use]
    pub fn slot_of(&self, device: u8) -> Option<Slot> {
        [Slot::A, Slot::B]
            .into_iter()
            .find(|&slot| self.device(slot).device == device)
    }

    /// The clone session that sends samples to `slot`'s monitor leg.
    #[must_use]
    pub fn mirror_session(&self, slot: Slot) -> u32 {
        MIRROR_SESSION_BASE + u32::from(self.device(slot).device)
    }
}

/// Clone sessions are numbered from here, one per device (the device's
/// selector value added), so that two pairs never share one.
pub const MIRROR_SESSION_BASE: u32 = 0x100;

/// Packets steered to one device, both ways, from the switch's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceTraffic {
    /// Client → server packets steered to the device.
    pub to_server: u64,
    /// Server → client packets steered to the device.
    pub to_client: u64,
}

/// Why a fabric operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FabricError {
    /// What went wrong, in a sentence.
    pub message: String,
    /// The switch may have applied the write (the connection was lost
    /// mid-write, or the answer was not seen): the selector must be read
    /// back before anything else is written.
    pub applied_unknown: bool,
    /// Whether this host lost P4Runtime mastership (another controller is
    /// primary).
    pub not_primary: bool,
}

impl FabricError {
    /// A failure whose outcome is known: nothing was applied.
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            applied_unknown: false,
            not_primary: false,
        }
    }
}

/// Result of fabric operations.
pub type FabricResult<T> = std::result::Result<T, FabricError>;

/// The switch operations of the pair driver. Implementations are cheap to
/// clone handles; every method may be called concurrently for different
/// pairs.
pub trait Fabric: Send + Sync + 'static {
    /// Installs the pair's classification, steering, sampling (to the
    /// standby) and clone sessions. The selector is written only when the
    /// switch has none for the service; the switch's value is kept
    /// otherwise (the device it names is active). Returns the active slot.
    fn install(
        &self,
        pair: &PairPorts,
        active: Slot,
    ) -> impl Future<Output = FabricResult<Slot>> + Send;

    /// Points the pair's selector at `to`: one write.
    fn flip(&self, pair: &PairPorts, to: Slot) -> impl Future<Output = FabricResult<()>> + Send;

    /// The slot the switch's selector points at; `None` when it holds no
    /// selector for the service (or one naming neither device).
    fn read_selector(
        &self,
        pair: &PairPorts,
    ) -> impl Future<Output = FabricResult<Option<Slot>>> + Send;

    /// Samples service traffic to `to`'s monitor leg, or stops sampling
    /// (`None`).
    fn set_sampling(
        &self,
        pair: &PairPorts,
        to: Option<Slot>,
    ) -> impl Future<Output = FabricResult<()>> + Send;

    /// Packets steered to `slot` so far (cumulative).
    fn traffic(
        &self,
        pair: &PairPorts,
        slot: Slot,
    ) -> impl Future<Output = FabricResult<DeviceTraffic>> + Send;
}
