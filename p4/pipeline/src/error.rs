//! Errors of the pipeline layer: every way a control-plane request against the
//! tables, counters or clone sessions can be refused.

/// Result alias of the pipeline layer.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// A control-plane operation on the pipeline was refused. Packet processing
/// never fails: malformed packets follow the program's parser semantics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// An insert named a key that already has an entry. The caller is at
    /// fault (P4Runtime `ALREADY_EXISTS`).
    #[error("table {table}: an entry with key {key} already exists")]
    EntryExists {
        /// Name of the table.
        table: &'static str,
        /// The key, formatted for humans.
        key: String,
    },

    /// A modify, delete or read named a key with no entry. The caller is at
    /// fault (P4Runtime `NOT_FOUND`).
    #[error("table {table}: no entry with key {key}")]
    EntryNotFound {
        /// Name of the table.
        table: &'static str,
        /// The key, formatted for humans.
        key: String,
    },

    /// An insert would exceed the table's `size` from the P4 program. The
    /// caller is at fault for installing more entries than the program allows
    /// (P4Runtime `RESOURCE_EXHAUSTED`).
    #[error("table {table} is full ({size} entries)")]
    TableFull {
        /// Name of the table.
        table: &'static str,
        /// The table's capacity.
        size: usize,
    },

    /// A key field or action parameter does not fit its bit width in the P4
    /// program (e.g. a port above 511). The caller is at fault (P4Runtime
    /// `INVALID_ARGUMENT`/`OUT_OF_RANGE`).
    #[error("{what}: value {value} does not fit in {bits} bits")]
    ValueOutOfRange {
        /// Which key field or parameter.
        what: &'static str,
        /// The offending value.
        value: u64,
        /// Its bit width in the program.
        bits: u32,
    },

    /// A direct counter was read or written on a table that has none. The
    /// caller is at fault.
    #[error("table {table} has no direct counter")]
    NoDirectCounter {
        /// Name of the table.
        table: &'static str,
    },

    /// An indirect counter index is outside the counter array. The caller is
    /// at fault (P4Runtime `OUT_OF_RANGE`).
    #[error("counter {counter}: index {index} is out of range (size {size})")]
    CounterIndexOutOfRange {
        /// Name of the counter.
        counter: &'static str,
        /// The offending index.
        index: u64,
        /// The counter array's size.
        size: usize,
    },

    /// An insert named a clone session id that is already configured. The
    /// caller is at fault (P4Runtime `ALREADY_EXISTS`).
    #[error("clone session {session_id} already exists")]
    CloneSessionExists {
        /// The session id.
        session_id: u32,
    },

    /// A modify, delete or read named a clone session id that is not
    /// configured. The caller is at fault (P4Runtime `NOT_FOUND`).
    #[error("clone session {session_id} does not exist")]
    CloneSessionNotFound {
        /// The session id.
        session_id: u32,
    },

    /// A clone session lists the same (egress port, instance) replica twice.
    /// The caller is at fault (P4Runtime `INVALID_ARGUMENT`).
    #[error(
        "clone session {session_id}: duplicate replica (port {egress_port}, instance {instance})"
    )]
    DuplicateReplica {
        /// The session id.
        session_id: u32,
        /// Egress port of the repeated replica.
        egress_port: u16,
        /// Instance of the repeated replica.
        instance: u16,
    },

    /// More clone sessions than the switch supports were inserted. The caller
    /// is at fault (P4Runtime `RESOURCE_EXHAUSTED`).
    #[error("too many clone sessions (at most {max})")]
    TooManyCloneSessions {
        /// The supported maximum.
        max: usize,
    },

    /// The configured CPU port is not a usable 9-bit port (it must be below
    /// the drop port 511). The operator's configuration is at fault.
    #[error("CPU port {port} is invalid: it must be below 511")]
    InvalidCpuPort {
        /// The rejected port.
        port: u16,
    },
}
