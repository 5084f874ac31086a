//! The pipeline object shared by forwarding threads and the P4Runtime
//! server, and packet processing: ingress, the I2E clone, egress and the
//! deparser of `umbra.p4`.
//!
//! # Locking
//!
//! [`Tables`] sit behind one `std::sync::RwLock` (a synchronous lock: this
//! crate has no async, and callers must not hold a guard across an `.await`
//! or a blocking syscall). Packets take the read side once per batch
//! ([`Pipeline::packet_batch`]); [`Pipeline::update`] takes the write side
//! for a whole control-plane batch, so a packet sees either none or all of
//! it — in particular a failover's selector flip is never half applied.
//! Counters are atomics outside the lock (`port_rx`, `port_tx`) or inside
//! entries (direct counters), counted under the read lock.
//!
//! A panic inside an [`Pipeline::update`] closure poisons the lock; the
//! pipeline then keeps serving the tables as the closure left them (the
//! poison is ignored) rather than taking the switch down.

use std::ops::Range;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::counter::IndirectCounter;
use crate::error::{PipelineError, Result};
use crate::parser::{self, ParsedHeaders};
use crate::tables::{
    DevicePortmapAction, DevicePortmapKey, MirrorSamplingAction, MirrorTruncateAction,
    PortClassifyAction, ServiceSelectorAction, Tables,
};
use crate::{CONTROLLER_HEADER_LEN, CPU_PORT, DROP_PORT, PORT_COUNT};

/// `standard_metadata.instance_type` of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceType {
    /// The original packet (`instance_type == 0`).
    Normal,
    /// An ingress-to-egress clone (`instance_type == 1`).
    IngressClone,
}

/// One packet the pipeline emits: `header` (the `packet_in` header, possibly
/// empty) followed by `payload` bytes of the ingress frame.
///
/// Outputs borrow nothing: the payload is a range of the frame that was
/// processed, so the caller can transmit without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOutput {
    /// The port the packet leaves through (`standard_metadata.egress_port`).
    pub egress_port: u16,
    /// Original or clone.
    pub instance_type: InstanceType,
    /// Replica instance (`egress_rid`) of a clone; 0 for the original.
    pub instance: u16,
    header: [u8; CONTROLLER_HEADER_LEN],
    header_len: u8,
    payload: Range<usize>,
}

impl PacketOutput {
    /// The bytes before the payload: the `packet_in` header on the CPU port
    /// (shortened if the packet was truncated into it), otherwise empty.
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }

    /// The range of the ingress frame emitted after [`PacketOutput::header`].
    pub fn payload_range(&self) -> Range<usize> {
        self.payload.clone()
    }

    /// The payload bytes, given the frame that was processed.
    ///
    /// # Panics
    /// If `frame` is shorter than the frame that produced this output.
    pub fn payload<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        &frame[self.payload.clone()]
    }

    /// Length in bytes of the emitted packet.
    pub fn len(&self) -> usize {
        usize::from(self.header_len) + self.payload.len()
    }

    /// Whether the emitted packet is empty (truncated to 0 bytes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the emitted packet to `out`.
    ///
    /// # Panics
    /// As [`PacketOutput::payload`].
    pub fn write_to(&self, frame: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(self.header());
        out.extend_from_slice(self.payload(frame));
    }

    /// The emitted packet as a new vector.
    ///
    /// # Panics
    /// As [`PacketOutput::payload`].
    pub fn to_vec(&self, frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.write_to(frame, &mut out);
        out
    }
}

/// Per-thread processing state: the PRNG behind v1model's `random` and the
/// reusable output buffer. Not shared: give each forwarding thread its own.
#[derive(Debug)]
pub struct PacketContext {
    rng: SmallRng,
    outputs: Vec<PacketOutput>,
}

impl PacketContext {
    /// A context whose PRNG is seeded from the operating system.
    pub fn new() -> Self {
        Self::from_rng(SmallRng::from_os_rng())
    }

    /// A context with a fixed PRNG seed, for deterministic tests.
    pub fn with_seed(seed: u64) -> Self {
        Self::from_rng(SmallRng::seed_from_u64(seed))
    }

    /// Reseeds the PRNG.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = SmallRng::seed_from_u64(seed);
    }

    fn from_rng(rng: SmallRng) -> Self {
        Self {
            rng,
            outputs: Vec::with_capacity(8),
        }
    }
}

impl Default for PacketContext {
    fn default() -> Self {
        Self::new()
    }
}

/// crc32 of the direction-free 5-tuple exactly as `sample_per_flow` hashes
/// it: the 13 big-endian bytes `lo_addr hi_addr protocol lo_port hi_port`,
/// IEEE CRC-32 (as `crc32fast` computes it), then bmv2's
/// `base + hash % max` with base 0 and max `0xffffffff`.
#[inline]
pub fn flow_hash_ordered(
    lo_addr: u32,
    hi_addr: u32,
    protocol: u8,
    lo_port: u16,
    hi_port: u16,
) -> u32 {
    let mut bytes = [0u8; 13];
    bytes[0..4].copy_from_slice(&lo_addr.to_be_bytes());
    bytes[4..8].copy_from_slice(&hi_addr.to_be_bytes());
    bytes[8] = protocol;
    bytes[9..11].copy_from_slice(&lo_port.to_be_bytes());
    bytes[11..13].copy_from_slice(&hi_port.to_be_bytes());
    crc32fast::hash(&bytes) % 0xffff_ffff
}

/// The per-flow hash of a packet with this 5-tuple: endpoints are ordered as
/// the ingress apply block orders them (lower address first, ports following
/// their address; equal addresses order by port), so both directions of a
/// flow hash alike. Non-IPv4 packets hash as `flow_hash(0, 0, 0, 0, 0)`.
#[inline]
pub fn flow_hash(src_addr: u32, dst_addr: u32, protocol: u8, src_port: u16, dst_port: u16) -> u32 {
    if src_addr < dst_addr || (src_addr == dst_addr && src_port <= dst_port) {
        flow_hash_ordered(src_addr, dst_addr, protocol, src_port, dst_port)
    } else {
        flow_hash_ordered(dst_addr, src_addr, protocol, dst_port, src_port)
    }
}

/// `umbra.p4` loaded on the software switch: tables, clone sessions and the
/// `port_rx`/`port_tx` counters. Share it with `Arc`.
#[derive(Debug)]
pub struct Pipeline {
    cpu_port: u16,
    tables: RwLock<Tables>,
    port_rx: IndirectCounter,
    port_tx: IndirectCounter,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// An empty pipeline with the program's CPU port ([`CPU_PORT`], 255).
    pub fn new() -> Self {
        Self {
            cpu_port: CPU_PORT,
            tables: RwLock::new(Tables::new()),
            port_rx: IndirectCounter::new("port_rx", PORT_COUNT),
            port_tx: IndirectCounter::new("port_tx", PORT_COUNT),
        }
    }

    /// An empty pipeline with another CPU port, as bmv2's `--cpu-port`. The
    /// program's `CPU_PORT` constant must be compiled to the same value for
    /// bmv2 to behave alike; Umbra's own deployments keep 255.
    ///
    /// # Errors
    /// [`PipelineError::InvalidCpuPort`] if `cpu_port` is not below 511.
    pub fn with_cpu_port(cpu_port: u16) -> Result<Self> {
        if cpu_port >= DROP_PORT {
            return Err(PipelineError::InvalidCpuPort { port: cpu_port });
        }
        Ok(Self {
            cpu_port,
            ..Self::new()
        })
    }

    /// The CPU port: packet-out arrives on it, packet-in leaves through it.
    pub fn cpu_port(&self) -> u16 {
        self.cpu_port
    }

    /// Runs `f` with the tables under the read lock (control-plane reads;
    /// packets keep flowing). Keep `f` short and non-blocking.
    pub fn read<R>(&self, f: impl FnOnce(&Tables) -> R) -> R {
        f(&self.tables.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` with the tables under the write lock: every change `f` makes
    /// becomes visible to packets at once when it returns. Packet processing
    /// waits meanwhile, so keep `f` short and non-blocking (no I/O, no
    /// `.await`).
    pub fn update<R>(&self, f: impl FnOnce(&mut Tables) -> R) -> R {
        f(&mut self.tables.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// `UmbraIngress.port_rx`, indexed by ingress port.
    pub fn port_rx(&self) -> &IndirectCounter {
        &self.port_rx
    }

    /// `UmbraEgress.port_tx`, indexed by egress port.
    pub fn port_tx(&self) -> &IndirectCounter {
        &self.port_tx
    }

    /// Returns the pipeline to its initial state (P4Runtime pipeline
    /// re-commit): no entries, no clone sessions, default actions restored,
    /// every counter zero.
    pub fn reset(&self) {
        self.update(|tables| {
            tables.reset();
            // Under the write lock no packet counts, so the zeroes stick.
            self.port_rx.reset();
            self.port_tx.reset();
        });
    }

    /// Takes the read lock for a batch of packets. Drop the batch before
    /// blocking (e.g. before transmitting) so control-plane writes can
    /// proceed.
    pub fn packet_batch(&self) -> PacketBatch<'_> {
        PacketBatch {
            pipeline: self,
            tables: self.tables.read().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Processes one packet that arrived on `ingress_port` (taking the read
    /// lock for this packet only; see [`Pipeline::packet_batch`] for
    /// batches). Returns the emitted packets, I2E clones first (bmv2 order),
    /// then the original unless it was dropped.
    ///
    /// Semantics are v1model's as bmv2 implements them: `egress_spec` starts
    /// at 0; `mark_to_drop` sets it to 511; the packet is dropped iff `egress_spec` is 511
    /// at the end of ingress; a clone is made even if the original is
    /// dropped; a clone to a session that does not exist is skipped; direct
    /// counters count hits only; `truncate(n)` cuts the deparsed packet
    /// (`packet_in` header included) to at most `n` bytes.
    ///
    /// Deliberate differences from bmv2:
    /// - `ingress_port` is `bit<9>`: higher bits are ignored.
    /// - `port_tx` counts the emitted length (after `packet_in`,
    ///   truncation and `packet_length_bytes`), not the ingress length bmv2's
    ///   counters always use; `port_rx` and direct counters count the
    ///   ingress length as bmv2 does.
    /// - A clone session's `packet_length_bytes` is honoured (bmv2 rejects
    ///   it): after egress, clones are cut to at most that many bytes.
    /// - Reading a field of an invalid header yields 0 (bmv2 may yield a
    ///   stale value); this only matters for `hdr.ipv4.protocol` in the
    ///   per-flow hash of non-IPv4 packets.
    pub fn process<'c>(
        &self,
        ingress_port: u16,
        frame: &[u8],
        ctx: &'c mut PacketContext,
    ) -> &'c [PacketOutput] {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        self.process_with(&tables, ingress_port, frame, ctx);
        &ctx.outputs
    }

    fn process_with(
        &self,
        tables: &Tables,
        ingress_port: u16,
        frame: &[u8],
        ctx: &mut PacketContext,
    ) {
        ctx.outputs.clear();
        let ingress_port = ingress_port & DROP_PORT;
        let ingress_len = frame.len() as u64;
        let hdr = parser::parse(frame, ingress_port == self.cpu_port);

        // ---- UmbraIngress
        self.port_rx.count(usize::from(ingress_port), ingress_len);
        // bmv2 starts `egress_spec` at 0, but every path of this program
        // assigns it, so the initial value is never observed.
        let egress_spec: u16;
        let mut clone_session: Option<u32> = None;

        if let Some(port) = hdr.packet_out_egress_port {
            egress_spec = port;
        } else {
            match tables.port_classify.apply(ingress_port, ingress_len) {
                PortClassifyAction::SetService {
                    service_id,
                    direction,
                } => {
                    // device_portmap runs only when the selector named a
                    // device (`switch (...action_run) { set_active_device: }`).
                    match tables.service_selector.apply(service_id, ingress_len) {
                        ServiceSelectorAction::SetActiveDevice { device } => {
                            let key = DevicePortmapKey { device, direction };
                            match tables.device_portmap.apply(key, ingress_len) {
                                DevicePortmapAction::SteerToPort { port } => egress_spec = port,
                                DevicePortmapAction::Drop => egress_spec = DROP_PORT,
                            }
                        }
                        ServiceSelectorAction::Drop => egress_spec = DROP_PORT,
                    }
                    match tables.mirror_sampling.apply(ingress_port, ingress_len) {
                        MirrorSamplingAction::SamplePerPacket { one_in_n, session } => {
                            // random(rnd, 0, one_in_n - 1); clone iff rnd == 0
                            if one_in_n != 0 && ctx.rng.random_range(0..one_in_n) == 0 {
                                clone_session = Some(session);
                            }
                        }
                        MirrorSamplingAction::SamplePerFlow { threshold, session } => {
                            if packet_flow_hash(&hdr) < threshold {
                                clone_session = Some(session);
                            }
                        }
                        MirrorSamplingAction::NoSampling => {}
                    }
                }
                PortClassifyAction::ForwardToPort { port } => egress_spec = port,
                PortClassifyAction::PuntToCpu => egress_spec = self.cpu_port,
                PortClassifyAction::Drop => egress_spec = DROP_PORT,
            }
        }

        // ---- end of ingress: the PRE. I2E clones first, as simple_switch.
        let payload = hdr.emit_start..frame.len();
        if let Some(session) = clone_session.and_then(|id| tables.clone_sessions.get(id)) {
            let max_len = match session.packet_length_bytes {
                0 => usize::MAX,
                n => n as usize,
            };
            for replica in &session.replicas {
                self.egress(
                    tables,
                    ctx,
                    ingress_port,
                    replica.egress_port,
                    InstanceType::IngressClone,
                    replica.instance,
                    payload.clone(),
                    max_len,
                );
            }
        }
        if egress_spec != DROP_PORT {
            self.egress(
                tables,
                ctx,
                ingress_port,
                egress_spec,
                InstanceType::Normal,
                0,
                payload,
                usize::MAX,
            );
        }
    }

    /// `UmbraEgress` and `UmbraDeparser` for one instance, then the PRE's
    /// `packet_length_bytes` cut (`max_len`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn egress(
        &self,
        tables: &Tables,
        ctx: &mut PacketContext,
        ingress_port: u16,
        egress_port: u16,
        instance_type: InstanceType,
        instance: u16,
        payload: Range<usize>,
        max_len: usize,
    ) {
        let mut truncate_len = max_len;
        if instance_type == InstanceType::IngressClone {
            // The table's direct-counter-free lookup ignores the length.
            if let MirrorTruncateAction::TruncateMirror { length } =
                tables.mirror_truncate.apply(egress_port, 0)
            {
                truncate_len = truncate_len.min(length as usize);
            }
        }
        let mut header = [0u8; CONTROLLER_HEADER_LEN];
        let mut header_len = 0;
        if egress_port == self.cpu_port {
            // bit<9> ingress_port; bit<7> _pad = 0
            header = (ingress_port << 7).to_be_bytes();
            header_len = CONTROLLER_HEADER_LEN;
        }
        // Deparser output is header ++ payload, cut to `truncate_len`.
        let header_len = header_len.min(truncate_len);
        let payload_len = payload.len().min(truncate_len - header_len);
        let payload = payload.start..payload.start + payload_len;
        let emitted_len = header_len + payload_len;
        self.port_tx
            .count(usize::from(egress_port), emitted_len as u64);
        ctx.outputs.push(PacketOutput {
            egress_port,
            instance_type,
            instance,
            header,
            header_len: header_len as u8,
            payload,
        });
    }
}

/// `meta.flow_hash` as `sample_per_flow` computes it from the parsed packet.
#[inline]
fn packet_flow_hash(hdr: &ParsedHeaders) -> u32 {
    match hdr.ipv4 {
        Some(ip) => flow_hash(
            ip.src_addr,
            ip.dst_addr,
            ip.protocol,
            hdr.l4_src_port,
            hdr.l4_dst_port,
        ),
        None => flow_hash_ordered(0, 0, 0, 0, 0),
    }
}

/// The read lock held for a batch of packets; see
/// [`Pipeline::packet_batch`].
#[derive(Debug)]
pub struct PacketBatch<'p> {
    pipeline: &'p Pipeline,
    tables: RwLockReadGuard<'p, Tables>,
}

impl PacketBatch<'_> {
    /// As [`Pipeline::process`], under the batch's read lock.
    #[inline]
    pub fn process<'c>(
        &self,
        ingress_port: u16,
        frame: &[u8],
        ctx: &'c mut PacketContext,
    ) -> &'c [PacketOutput] {
        self.pipeline
            .process_with(&self.tables, ingress_port, frame, ctx);
        &ctx.outputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_is_crc32_of_the_thirteen_bytes_mod_max() {
        let bytes = [198, 18, 0, 1, 198, 18, 0, 2, 6, 0x30, 0x39, 0x00, 0x50];
        assert_eq!(
            flow_hash_ordered(0xc612_0001, 0xc612_0002, 6, 12345, 80),
            crc32fast::hash(&bytes) % 0xffff_ffff
        );
        // Known value of the all-zero input: crc32 of 13 zero bytes.
        assert_eq!(flow_hash_ordered(0, 0, 0, 0, 0), crc32fast::hash(&[0; 13]));
    }

    #[test]
    fn flow_hash_orders_endpoints_like_the_apply_block() {
        let a = flow_hash(0xc612_0001, 0xc612_0002, 6, 40000, 80);
        let b = flow_hash(0xc612_0002, 0xc612_0001, 6, 80, 40000);
        assert_eq!(a, b);
        assert_eq!(a, flow_hash_ordered(0xc612_0001, 0xc612_0002, 6, 40000, 80));
        // Equal addresses: ordered by port.
        assert_eq!(flow_hash(7, 7, 17, 9, 3), flow_hash_ordered(7, 7, 17, 3, 9));
    }

    #[test]
    fn output_truncated_into_the_header() {
        let out = PacketOutput {
            egress_port: 255,
            instance_type: InstanceType::Normal,
            instance: 0,
            header: [1, 2],
            header_len: 1,
            payload: 4..4,
        };
        assert_eq!(out.to_vec(&[0; 8]), vec![1]);
        assert_eq!(out.len(), 1);
    }
}
