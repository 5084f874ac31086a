//! Errors of the agent: what stops it from starting or serving, and why a
//! request as a whole is refused. Refusals of single entries in an Apply are
//! not errors but per-entry results ([`crate::model::Rejected`]).
//!
//! Every variant becomes a `tonic::Status` in one place,
//! [`crate::service`]'s `From<AgentError> for Status`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Result of agent operations.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;

/// What stops the agent, or refuses a request whole.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The command line is wrong. The operator is at fault; every problem
    /// is listed.
    #[error("invalid agent options:\n  - {}", .0.join("\n  - "))]
    InvalidOptions(Vec<String>),
    /// `--netns` names a network namespace the Linux backend cannot enter
    /// (no `/run/netns/NAME`, or not root). The operator or the environment
    /// is at fault.
    #[error("cannot serve the Linux device in network namespace {netns}: {reason}")]
    LinuxBackendUnavailable {
        /// The namespace asked for.
        netns: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A file named on the command line cannot be read. The operator or the
    /// environment is at fault.
    #[error("cannot read {what} from {}", path.display())]
    ReadFile {
        /// What the file holds (`token`, `TLS certificate`...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The TLS material was refused (not PEM, key does not match). The
    /// operator is at fault.
    #[error("invalid TLS configuration")]
    Tls(#[source] tonic::transport::Error),
    /// The gRPC address cannot be bound. The environment or the operator is
    /// at fault.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the OS refused.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server stopped with an error.
    #[error("device agent server failed")]
    Serve(#[source] tonic::transport::Error),
    /// The backend failed as a whole (its state cannot be read). The device
    /// is at fault.
    #[error("backend failed: {0}")]
    Backend(String),
    /// A request is malformed as a whole. The caller is at fault.
    #[error("{0}")]
    InvalidRequest(String),
    /// An Apply carries more entries than the agent accepts in one batch;
    /// nothing was applied. The caller is at fault (split the batch).
    #[error("batch of {entries} entries exceeds the limit of {limit}; nothing was applied")]
    BatchTooLarge {
        /// Entries in the batch.
        entries: usize,
        /// The agent's limit.
        limit: usize,
    },
    /// A Watch asks for changes the bounded change log no longer holds. The
    /// caller fell behind: it must take a fresh snapshot.
    #[error(
        "revision {requested} is no longer in the change log; the oldest revision available is {oldest}: take a fresh snapshot"
    )]
    RevisionTooOld {
        /// The first revision the caller needed.
        requested: u64,
        /// The oldest revision the log holds.
        oldest: u64,
    },
    /// A Watch names a revision this agent has not reached, or an epoch that
    /// is not this agent's: the agent restarted since the caller's
    /// snapshot, which must be taken again.
    #[error(
        "revision {requested} of epoch {epoch} is unknown here (log epoch {current_epoch}, head revision {head}): take a fresh snapshot"
    )]
    UnknownRevision {
        /// The caller's last revision.
        requested: u64,
        /// The caller's epoch.
        epoch: u64,
        /// This agent's epoch.
        current_epoch: u64,
        /// This agent's last revision.
        head: u64,
    },
    /// The agent is shutting down.
    #[error("the agent is shutting down")]
    ShuttingDown,
}
