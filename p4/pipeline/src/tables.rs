//! The tables of `umbra.p4`, typed: one action enum per table, named after
//! the program's actions, and [`Tables`], everything a P4Runtime write can
//! change.

use crate::clone_session::CloneSessions;
use crate::error::{PipelineError, Result};
use crate::exact_table::{ExactTable, TableAction, TableKey};
use crate::{DROP_PORT, PORT_BITS};

/// Checks that a `bit<9>` port parameter fits.
fn check_port(what: &'static str, port: u16) -> Result<()> {
    if port > DROP_PORT {
        return Err(PipelineError::ValueOutOfRange {
            what,
            value: port.into(),
            bits: PORT_BITS,
        });
    }
    Ok(())
}

/// Actions of `UmbraIngress.port_classify` (key: `ingress_port`, 9 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortClassifyAction {
    /// `set_service(service_id, direction)`: the port is a client or server
    /// port of a protected service; steering tables follow.
    SetService {
        /// The protected service.
        service_id: u16,
        /// 0: client → server, 1: server → client.
        direction: u8,
    },
    /// `forward_to_port(port)`: a device leg; send straight to `port`.
    ForwardToPort {
        /// Egress port (9 bits).
        port: u16,
    },
    /// `punt_to_cpu()`: send to the controller.
    PuntToCpu,
    /// `drop()`: `mark_to_drop`. The default action.
    Drop,
}

impl TableAction for PortClassifyAction {
    fn validate(&self) -> Result<()> {
        match *self {
            Self::ForwardToPort { port } => check_port("forward_to_port.port", port),
            _ => Ok(()),
        }
    }
}

/// Actions of `UmbraIngress.service_selector` (key: `service_id`, 16 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceSelectorAction {
    /// `set_active_device(device)`: the one action a failover rewrites.
    SetActiveDevice {
        /// The active device of the service.
        device: u8,
    },
    /// `drop()`: `mark_to_drop`. The default action.
    Drop,
}

impl TableAction for ServiceSelectorAction {
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Key of `UmbraIngress.device_portmap`: (`device`, `direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevicePortmapKey {
    /// The active device (`meta.device`).
    pub device: u8,
    /// The direction (`meta.direction`).
    pub direction: u8,
}

impl TableKey for DevicePortmapKey {
    #[inline]
    fn slot(self) -> usize {
        usize::from(self.device) << 8 | usize::from(self.direction)
    }
}

/// Actions of `UmbraIngress.device_portmap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DevicePortmapAction {
    /// `steer_to_port(port)`: the device's leg for this direction.
    SteerToPort {
        /// Egress port (9 bits).
        port: u16,
    },
    /// `drop()`: `mark_to_drop`. The default action.
    Drop,
}

impl TableAction for DevicePortmapAction {
    fn validate(&self) -> Result<()> {
        match *self {
            Self::SteerToPort { port } => check_port("steer_to_port.port", port),
            Self::Drop => Ok(()),
        }
    }
}

/// Actions of `UmbraIngress.mirror_sampling` (key: `ingress_port`, 9 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MirrorSamplingAction {
    /// `sample_per_packet(one_in_n, session)`: each packet independently with
    /// probability 1/`one_in_n` (0 disables).
    SamplePerPacket {
        /// Sampling rate denominator.
        one_in_n: u32,
        /// Clone session the samples go to.
        session: u32,
    },
    /// `sample_per_flow(threshold, session)`: whole flows whose direction-free
    /// 5-tuple hash is below `threshold`.
    SamplePerFlow {
        /// Hash threshold; `threshold / 2^32` is the sampled share of flows.
        threshold: u32,
        /// Clone session the samples go to.
        session: u32,
    },
    /// `no_sampling()`. The default action.
    NoSampling,
}

impl TableAction for MirrorSamplingAction {
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Actions of `UmbraEgress.mirror_truncate` (key: `egress_port`, 9 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MirrorTruncateAction {
    /// `truncate_mirror(length)`: cut mirrored samples to `length` bytes.
    TruncateMirror {
        /// Maximum length in bytes of the emitted packet.
        length: u32,
    },
    /// `no_truncate()`. The default action.
    NoTruncate,
}

impl TableAction for MirrorTruncateAction {
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Everything of the program that the control plane writes: the five
/// tables and the clone sessions. Obtained through
/// [`Pipeline::update`](crate::Pipeline::update) (write lock) or
/// [`Pipeline::read`](crate::Pipeline::read) (read lock).
///
/// `Clone` snapshots entries and direct counters; under the write lock no
/// packet is counted, so a clone taken there can serve as the rollback point
/// of a P4Runtime `ROLLBACK_ON_ERROR` batch.
#[derive(Debug, Clone)]
pub struct Tables {
    /// `UmbraIngress.port_classify`: ingress port → role of the port.
    /// Direct counter `classify_hits`.
    pub port_classify: ExactTable<u16, PortClassifyAction>,
    /// `UmbraIngress.service_selector`: service → active device.
    pub service_selector: ExactTable<u16, ServiceSelectorAction>,
    /// `UmbraIngress.device_portmap`: (device, direction) → egress port.
    /// Direct counter `steer_hits`.
    pub device_portmap: ExactTable<DevicePortmapKey, DevicePortmapAction>,
    /// `UmbraIngress.mirror_sampling`: ingress port → sampling mode.
    pub mirror_sampling: ExactTable<u16, MirrorSamplingAction>,
    /// `UmbraEgress.mirror_truncate`: egress port → truncation of clones.
    pub mirror_truncate: ExactTable<u16, MirrorTruncateAction>,
    /// The clone sessions of the packet replication engine.
    pub clone_sessions: CloneSessions,
}

impl Tables {
    /// Empty tables with the program's default actions and sizes.
    pub fn new() -> Self {
        Self {
            port_classify: ExactTable::new(
                "port_classify",
                "ingress_port",
                PORT_BITS,
                64,
                true,
                PortClassifyAction::Drop,
            ),
            service_selector: ExactTable::new(
                "service_selector",
                "service_id",
                16,
                256,
                false,
                ServiceSelectorAction::Drop,
            ),
            device_portmap: ExactTable::new(
                "device_portmap",
                "device,direction",
                16,
                512,
                true,
                DevicePortmapAction::Drop,
            ),
            mirror_sampling: ExactTable::new(
                "mirror_sampling",
                "ingress_port",
                PORT_BITS,
                64,
                false,
                MirrorSamplingAction::NoSampling,
            ),
            mirror_truncate: ExactTable::new(
                "mirror_truncate",
                "egress_port",
                PORT_BITS,
                64,
                false,
                MirrorTruncateAction::NoTruncate,
            ),
            clone_sessions: CloneSessions::default(),
        }
    }

    /// Removes every entry and clone session and restores default actions
    /// (pipeline re-commit). Indirect counters are reset by
    /// [`Pipeline::reset`](crate::Pipeline::reset).
    pub fn reset(&mut self) {
        self.port_classify.reset();
        self.service_selector.reset();
        self.device_portmap.reset();
        self.mirror_sampling.reset();
        self.mirror_truncate.reset();
        self.clone_sessions.clear();
    }
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_the_program_sizes_and_defaults() {
        let t = Tables::new();
        assert_eq!(t.port_classify.size(), 64);
        assert_eq!(t.service_selector.size(), 256);
        assert_eq!(t.device_portmap.size(), 512);
        assert_eq!(t.mirror_sampling.size(), 64);
        assert_eq!(t.mirror_truncate.size(), 64);
        assert_eq!(t.port_classify.default_action(), PortClassifyAction::Drop);
        assert_eq!(
            t.service_selector.default_action(),
            ServiceSelectorAction::Drop
        );
        assert_eq!(t.device_portmap.default_action(), DevicePortmapAction::Drop);
        assert_eq!(
            t.mirror_sampling.default_action(),
            MirrorSamplingAction::NoSampling
        );
        assert_eq!(
            t.mirror_truncate.default_action(),
            MirrorTruncateAction::NoTruncate
        );
        assert!(t.port_classify.has_direct_counter());
        assert!(t.device_portmap.has_direct_counter());
        assert!(!t.service_selector.has_direct_counter());
    }

    #[test]
    fn port_parameters_are_nine_bits() {
        let mut t = Tables::new();
        assert!(matches!(
            t.port_classify
                .insert(1, PortClassifyAction::ForwardToPort { port: 512 }),
            Err(PipelineError::ValueOutOfRange { bits: 9, .. })
        ));
        assert!(matches!(
            t.device_portmap.insert(
                DevicePortmapKey {
                    device: 1,
                    direction: 0
                },
                DevicePortmapAction::SteerToPort { port: 600 }
            ),
            Err(PipelineError::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            t.mirror_truncate
                .insert(512, MirrorTruncateAction::NoTruncate),
            Err(PipelineError::ValueOutOfRange { .. })
        ));
        t.device_portmap
            .insert(
                DevicePortmapKey {
                    device: 255,
                    direction: 255,
                },
                DevicePortmapAction::SteerToPort { port: 511 },
            )
            .unwrap();
    }
}
