//! The error type of the P4Runtime client, the problems a builder finds in
//! an entity, and the per-update detail of a failed Write.

use std::fmt;
use std::time::Duration;

use crate::schema::{MatchKind, ObjectKind};

/// Result of the P4Runtime client.
pub type Result<T, E = P4rtError> = std::result::Result<T, E>;

/// Everything that can go wrong talking P4Runtime to a switch.
#[derive(Debug, thiserror::Error)]
pub enum P4rtError {
    /// The client configuration is unusable. The caller is at fault; every
    /// problem is listed.
    #[error("invalid P4Runtime client configuration:\n  - {}", .problems.join("\n  - "))]
    Config {
        /// One sentence per problem.
        problems: Vec<String>,
    },

    /// The TLS material (CA, client certificate or key) was refused by the
    /// TLS stack. The operator is at fault.
    #[error("unusable TLS configuration for {address}")]
    Tls {
        /// The switch address the TLS configuration was for.
        address: String,
        /// What the TLS stack said.
        #[source]
        source: tonic::transport::Error,
    },

    /// The switch cannot be reached: connection refused, unreachable, or
    /// the TLS handshake failed. The environment (network, switch down) is
    /// at fault; the supervisor keeps retrying.
    #[error("cannot connect to the switch at {address}")]
    Connect {
        /// The address dialled.
        address: String,
        /// What the transport said.
        #[source]
        source: tonic::transport::Error,
    },

    /// The switch did not answer in time. The switch or the network is at
    /// fault (or the timeout in the configuration is too short).
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The configured timeout.
        after: Duration,
    },

    /// The switch refused the arbitration request and closed the stream
    /// (another live controller uses this election id, the device id is
    /// wrong, the role is unknown). The configuration is at fault.
    #[error("the switch refused arbitration: {0}")]
    Arbitration(#[source] tonic::Status),

    /// The switch closed the stream without answering the arbitration
    /// request. The switch is at fault.
    #[error("the switch closed the stream without answering arbitration")]
    ArbitrationUnanswered,

    /// The switch refused a request because this client is not the primary
    /// controller (PERMISSION_DENIED): a controller with a higher election
    /// id is, or was, connected. Nobody is at fault; the owner decides
    /// whether to wait or to re-arbitrate with a higher election id.
    #[error("this client is not the primary controller: {0}")]
    NotPrimary(#[source] tonic::Status),

    /// The client is not connected: the switch went away and the supervisor
    /// is reconnecting. The environment is at fault; retry after
    /// [`ClientEvent::Reconnected`](crate::ClientEvent::Reconnected).
    #[error("not connected to the switch (reconnecting)")]
    Disconnected,

    /// The operation needs the pipeline's P4Info, and none was given to
    /// [`push_pipeline`](crate::P4RuntimeClient::push_pipeline) yet. The
    /// caller is at fault.
    #[error("no pipeline yet: call push_pipeline first")]
    NoPipeline,

    /// The P4Info contradicts itself (duplicate ids or names, references to
    /// objects that do not exist). Whoever produced the P4Info is at fault;
    /// every problem is listed.
    #[error("unusable P4Info:\n  - {}", .problems.join("\n  - "))]
    P4Info {
        /// One sentence per problem.
        problems: Vec<String>,
    },

    /// An entity could not be built or encoded: a name the P4Info does not
    /// have, a value wider than its field, a missing match field or action
    /// parameter. The caller is at fault; every problem is listed.
    #[error("invalid {what}:\n  - {}", problems_list(.problems))]
    InvalidEntity {
        /// What was being built (`table entry of "UmbraIngress.x"`, ...).
        what: String,
        /// Every problem found.
        problems: Vec<EntityProblem>,
    },

    /// The switch refused some updates of a Write. Who is at fault depends
    /// on each update's code (ALREADY_EXISTS and NOT_FOUND: the caller's
    /// idea of the switch state; RESOURCE_EXHAUSTED: the table is full);
    /// [`WriteError`] says which update failed and why.
    #[error(transparent)]
    Write(#[from] WriteError),

    /// An RPC failed with a status not covered above. The switch or the
    /// network is at fault; the status says which.
    #[error("{rpc} failed: {status}")]
    Rpc {
        /// The RPC (`Write`, `Read`, ...).
        rpc: &'static str,
        /// The switch's (or the transport's) status.
        #[source]
        status: tonic::Status,
    },

    /// The switch answered with something that does not decode with the
    /// pipeline's P4Info (unknown ids, malformed values). The switch is at
    /// fault, or it runs another program than the one pushed.
    #[error("cannot decode the switch's answer: {0}")]
    Decode(String),

    /// The client was shut down (its supervisor stopped). The caller is at
    /// fault for using it afterwards.
    #[error("the P4Runtime client has been shut down")]
    Shutdown,
}

impl P4rtError {
    /// Whether the failure is of the connection rather than of the request,
    /// so that the same request may succeed after a reconnect.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        use tonic::Code;
        match self {
            Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::ArbitrationUnanswered
            | Self::Disconnected => true,
            Self::Rpc { status, .. } | Self::Arbitration(status) => {
                is_transport(status)
                    || matches!(
                        status.code(),
                        Code::Unavailable
                            | Code::Cancelled
                            | Code::DeadlineExceeded
                            | Code::Aborted
                    )
            }
            _ => false,
        }
    }

    /// The problems of an [`P4rtError::InvalidEntity`], empty otherwise.
    #[must_use]
    pub fn entity_problems(&self) -> &[EntityProblem] {
        match self {
            Self::InvalidEntity { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// Whether `status` was made up by the client's transport (connection
/// lost, TLS refused) rather than sent by the switch.
pub(crate) fn is_transport(status: &tonic::Status) -> bool {
    std::error::Error::source(status)
        .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some())
}

/// One thing wrong with an entity a caller built. The caller is at fault
/// for all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityProblem {
    /// No object of this kind has this fully qualified name or alias.
    #[error("no {kind} named {name:?} in the P4Info (known: {})", list(.known))]
    UnknownName {
        /// What was looked up.
        kind: ObjectKind,
        /// The name asked for.
        name: String,
        /// Fully qualified names of the objects of this kind.
        known: Vec<String>,
    },

    /// Several objects of this kind share this alias: use a fully qualified
    /// name.
    #[error("{kind} alias {alias:?} is ambiguous: use one of {}", list(.candidates))]
    AmbiguousAlias {
        /// What was looked up.
        kind: ObjectKind,
        /// The alias asked for.
        alias: String,
        /// Fully qualified names sharing it.
        candidates: Vec<String>,
    },

    /// The table has no match field of this name.
    #[error("table {table:?} has no match field {field:?} (it has: {})", list(.known))]
    UnknownMatchField {
        /// Fully qualified name of the table.
        table: String,
        /// The field asked for.
        field: String,
        /// The table's match fields.
        known: Vec<String>,
    },

    /// The action has no parameter of this name.
    #[error("action {action:?} has no parameter {param:?} (it has: {})", list(.known))]
    UnknownParam {
        /// Fully qualified name of the action.
        action: String,
        /// The parameter asked for.
        param: String,
        /// The action's parameters.
        known: Vec<String>,
    },

    /// The controller header has no field of this name.
    #[error("controller header {header:?} has no field {field:?} (it has: {})", list(.known))]
    UnknownMetadata {
        /// Name of the controller header.
        header: String,
        /// The field asked for.
        field: String,
        /// The header's fields.
        known: Vec<String>,
    },

    /// The program has no controller header of this kind
    /// (`@controller_header("packet_out")`).
    #[error("the P4Info has no {0:?} controller header")]
    NoControllerHeader(&'static str),

    /// A value needs more bits than its field, parameter or metadata has.
    #[error("{what} = {value} needs {bits} bits but is {bitwidth} bits wide")]
    ValueTooWide {
        /// What the value is for (`match field "service_id"`, ...).
        what: String,
        /// The value given.
        value: String,
        /// Bits the value needs.
        bits: u32,
        /// Bitwidth from the P4Info.
        bitwidth: u32,
    },

    /// The same match field, parameter or metadata was given twice.
    #[error("{what} given twice")]
    GivenTwice {
        /// What was repeated.
        what: String,
    },

    /// A match field was given with a match kind the table does not use.
    #[error("match field {field:?} of table {table:?} is {expected}, not {given}")]
    WrongMatchKind {
        /// Fully qualified name of the table.
        table: String,
        /// The field.
        field: String,
        /// The kind in the P4Info.
        expected: MatchKind,
        /// The kind given.
        given: MatchKind,
    },

    /// An exact match field was left out (exact fields have no wildcard).
    #[error("exact match field {field:?} of table {table:?} is missing")]
    MissingMatchField {
        /// Fully qualified name of the table.
        table: String,
        /// The field left out.
        field: String,
    },

    /// A match is malformed: a ternary value with bits outside its mask, an
    /// LPM value with bits past its prefix, an empty range, or a wildcard
    /// spelled out (mask 0, prefix 0, full range: leave the field out).
    #[error("match field {field:?} of table {table:?}: {reason}")]
    InvalidMatch {
        /// Fully qualified name of the table.
        table: String,
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },

    /// An LPM prefix is longer than the field.
    #[error("prefix length {prefix_len} of match field {field:?} exceeds its {bitwidth} bits")]
    PrefixTooLong {
        /// The field.
        field: String,
        /// The prefix length given.
        prefix_len: i32,
        /// Bitwidth from the P4Info.
        bitwidth: u32,
    },

    /// A table entry of a table with ternary, range or optional fields has
    /// no priority, or an exact/LPM-only table's entry has one.
    #[error("table {table:?} {}", if *.required { "needs a priority > 0 (it has ternary, range or optional fields)" } else { "takes no priority (it has only exact and LPM fields)" })]
    Priority {
        /// Fully qualified name of the table.
        table: String,
        /// Whether the table needs one.
        required: bool,
    },

    /// No action was given.
    #[error("no action given for table {table:?}")]
    MissingAction {
        /// Fully qualified name of the table.
        table: String,
    },

    /// The table may not run the action (not in its actions, or scoped
    /// `@defaultonly` / `@tableonly`).
    #[error("table {table:?} cannot run action {action:?} {context} (it can run: {})", list(.allowed))]
    ActionNotAllowed {
        /// Fully qualified name of the table.
        table: String,
        /// Fully qualified name of the action.
        action: String,
        /// `"in an entry"` or `"as default action"`.
        context: &'static str,
        /// Actions the table can run there.
        allowed: Vec<String>,
    },

    /// An action parameter was left out.
    #[error("parameter {param:?} of action {action:?} is missing")]
    MissingParam {
        /// Fully qualified name of the action.
        action: String,
        /// The parameter left out.
        param: String,
    },

    /// The table's default action is `const` in the program.
    #[error("the default action of table {table:?} is const")]
    ConstDefaultAction {
        /// Fully qualified name of the table.
        table: String,
    },

    /// The table's entries are `const` in the program: they cannot be
    /// written.
    #[error("table {table:?} is const: its entries cannot be written")]
    ConstTable {
        /// Fully qualified name of the table.
        table: String,
    },

    /// The table has no direct counter.
    #[error("table {table:?} has no direct counter")]
    NoDirectCounter {
        /// Fully qualified name of the table.
        table: String,
    },

    /// A counter index past the counter's size.
    #[error("index {index} is outside counter {counter:?} of size {size}")]
    IndexOutOfRange {
        /// Fully qualified name of the counter.
        counter: String,
        /// The index given.
        index: i64,
        /// The counter's size.
        size: i64,
    },

    /// A clone session is malformed (session id 0, negative truncation
    /// length, a replica given twice).
    #[error("clone session {session_id}: {reason}")]
    CloneSession {
        /// The session id given.
        session_id: u32,
        /// What is wrong.
        reason: String,
    },
}

/// How one update of a Write fared, as the switch reported it in the
/// `p4.v1.Error` details of the failed RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStatus {
    /// Position of the update in the `updates` given to
    /// [`write`](crate::P4RuntimeClient::write) (chunking is undone).
    pub index: usize,
    /// Canonical gRPC code; `Ok` for updates that were applied.
    pub code: tonic::Code,
    /// The switch's explanation.
    pub message: String,
    /// Error space of `space_code` (empty for none).
    pub space: String,
    /// Target-specific code within `space`.
    pub space_code: i32,
}

/// A Write the switch refused in part or in whole, decoded per update.
#[derive(Debug, Clone)]
pub struct WriteError {
    /// Code of the RPC status (UNKNOWN when per-update details follow, per
    /// the spec).
    pub code: tonic::Code,
    /// Message of the RPC status.
    pub message: String,
    /// One entry per update given to `write`, in order. Empty when the
    /// switch sent no per-update details (then `code` and `message` say
    /// everything known). Updates never sent because an earlier chunk
    /// failed under `RollbackOnError`/`DataplaneAtomic` are `Aborted`.
    pub updates: Vec<UpdateStatus>,
}

impl WriteError {
    /// The updates that failed.
    pub fn failures(&self) -> impl Iterator<Item = &UpdateStatus> {
        self.updates.iter().filter(|u| u.code != tonic::Code::Ok)
    }

    /// How update `index` fared, if the switch said.
    #[must_use]
    pub fn update(&self, index: usize) -> Option<&UpdateStatus> {
        self.updates.get(index)
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.updates.is_empty() {
            return write!(f, "write failed ({:?}): {}", self.code, self.message);
        }
        let failed: Vec<_> = self.failures().collect();
        write!(
            f,
            "write failed: {} of {} updates refused",
            failed.len(),
            self.updates.len()
        )?;
        for update in failed {
            write!(
                f,
                "; #{} {:?}: {}",
                update.index, update.code, update.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for WriteError {}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn problems_list(problems: &[EntityProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  - ")
}
