//! Umbra's software switch pipeline: `p4/umbra.p4` (P4_16, v1model) executed
//! in Rust, with typed tables, counters, clone sessions and packet processing.
//!
//! The crate is pure: no I/O, no protobuf, no async. The software switch
//! (`umbra-switch`) wraps it with AF_PACKET ports and a P4Runtime server; the
//! P4Runtime layer translates ids from the P4Info to the typed API here.
//!
//! # Shape
//!
//! - [`Pipeline`] is shared (`Arc`) by the forwarding threads and the
//!   P4Runtime server. Its tables live behind one [`std::sync::RwLock`]:
//!   packets take the read side ([`Pipeline::packet_batch`] once per batch),
//!   control-plane writes take the write side ([`Pipeline::update`]) so that a
//!   whole P4Runtime batch is atomic with respect to packets. Counters are
//!   atomics and are counted under the read lock.
//! - [`Tables`] holds the five tables of the program and the clone sessions
//!   (the v1model packet replication engine).
//! - [`PacketContext`] is per forwarding thread: the PRNG behind v1model's
//!   `random` and the reusable output buffer, so the hot path never allocates.
//!
//! # Semantics
//!
//! Processing follows v1model as bmv2's `simple_switch` implements it, with
//! the few deliberate differences listed on [`Pipeline::process`].
#![forbid(unsafe_code)]

pub mod clone_session;
pub mod counter;
pub mod error;
pub mod exact_table;
pub mod parser;
pub mod pipeline;
pub mod tables;

pub use clone_session::{CloneSession, CloneSessions, Replica};
pub use counter::{CounterCell, CounterData, IndirectCounter};
pub use error::{PipelineError, Result};
pub use exact_table::{ExactTable, TableAction, TableEntry, TableKey};
pub use parser::{ParsedHeaders, ParserError};
pub use pipeline::{
    InstanceType, PacketBatch, PacketContext, PacketOutput, Pipeline, flow_hash, flow_hash_ordered,
};
pub use tables::{
    DevicePortmapAction, DevicePortmapKey, MirrorSamplingAction, MirrorTruncateAction,
    PortClassifyAction, ServiceSelectorAction, Tables,
};

/// The CPU port of `umbra.p4` (`const bit<9> CPU_PORT = 255`): frames received
/// on it carry a `packet_out` header, frames sent to it get a `packet_in` one.
pub const CPU_PORT: u16 = 255;

/// The port bmv2 treats as "drop" (`mark_to_drop` sets `egress_spec` to it):
/// the highest 9-bit port number.
pub const DROP_PORT: u16 = 511;

/// Number of 9-bit port numbers, which is also the size of the `port_rx` and
/// `port_tx` counter arrays (`counter(512, ...)`).
pub const PORT_COUNT: usize = 512;

/// Width in bits of a port number (`bit<9>`).
pub const PORT_BITS: u32 = 9;

/// Length in bytes of the `packet_out` and `packet_in` controller headers.
pub const CONTROLLER_HEADER_LEN: usize = 2;
