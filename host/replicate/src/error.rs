//! Errors of replication: what stops a stream, a drain or an anti-entropy
//! round, and who is at fault.

use std::path::PathBuf;
use std::time::Duration;

/// Result of replication operations.
pub type Result<T, E = ReplicateError> = std::result::Result<T, E>;

/// What stops replication or one of its operations.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    /// The command line or configuration is wrong. The operator is at
    /// fault; every problem is listed.
    #[error("invalid replication options:\n  - {}", .0.join("\n  - "))]
    InvalidOptions(Vec<String>),
    /// The token file cannot be read. The operator or the environment is at
    /// fault.
    #[error("cannot read the token from {}", path.display())]
    ReadToken {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file of a peer cannot be read. The operator or the
    /// environment is at fault.
    #[error("cannot read the {what} for the {peer} from {}", path.display())]
    ReadTlsFile {
        /// Which peer.
        peer: String,
        /// Which file (CA, client certificate, client key).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The TLS material of a peer is unusable. The operator is at fault.
    #[error("invalid TLS material for the {peer}")]
    Tls {
        /// Which peer.
        peer: String,
        /// Why it was refused.
        #[source]
        source: tonic::transport::Error,
    },
    /// The `--state` file cannot be read, written or understood. The
    /// operator or the environment is at fault.
    #[error("resume state {}: {reason}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A peer address is not a usable URI. The operator is at fault.
    #[error("invalid address {addr:?} of the {peer}")]
    InvalidAddress {
        /// Which peer.
        peer: String,
        /// The address given.
        addr: String,
        /// Why it was refused.
        #[source]
        source: tonic::transport::Error,
    },
    /// A call to a device agent failed (unreachable, refused, cancelled).
    /// The peer or the network is at fault; streams retry with backoff.
    #[error("{call} on the {peer} failed")]
    Rpc {
        /// Which peer.
        peer: String,
        /// The gRPC method.
        call: &'static str,
        /// The status it answered (boxed: it is large).
        #[source]
        status: Box<tonic::Status>,
    },
    /// The source cannot resume the change stream from the acknowledged
    /// revision (its log dropped it, it restarted, or the target restarted
    /// and lost what it had acknowledged). Streams handle this themselves
    /// by taking a fresh snapshot; it is only seen in the status's last
    /// error.
    #[error("cannot resume from revision {revision}: {reason}")]
    ResumeImpossible {
        /// The acknowledged revision.
        revision: u64,
        /// Why.
        reason: String,
    },
    /// A device agent answered something the protocol does not allow (a
    /// gap in the change stream, a wrong number of Apply results). The
    /// agent is at fault.
    #[error("the {peer} broke the protocol: {what}")]
    Protocol {
        /// Which peer.
        peer: String,
        /// What it did.
        what: String,
    },
    /// The source's change stream ended without an error (its agent is
    /// shutting down). Streams reconnect.
    #[error("the {peer}'s change stream ended")]
    StreamEnded {
        /// Which peer.
        peer: String,
    },
    /// [`crate::StreamHandle::drain_and_commit`] ran out of time before the
    /// target acknowledged the revision: the target is slow or
    /// unreachable. Failover should not redirect traffic yet.
    #[error(
        "the shadow acknowledged revision {acked} of {target} after waiting {waited:?} (source epoch {epoch})"
    )]
    DrainTimeout {
        /// The revision asked for.
        target: u64,
        /// The last revision the target acknowledged.
        acked: u64,
        /// The source log epoch the revisions belong to.
        epoch: u64,
        /// How long it waited.
        waited: Duration,
    },
    /// The source restarted (new log epoch) while draining, so the asked
    /// revision no longer means anything. The caller should drain again
    /// from the new head.
    #[error("the source restarted while draining (epoch {asked} became {now})")]
    SourceRestarted {
        /// The epoch the asked revision belongs to.
        asked: u64,
        /// The source's epoch now.
        now: u64,
    },
    /// The stream this handle belongs to has stopped, so nothing more will
    /// be acknowledged.
    #[error("the replication stream has stopped")]
    Stopped,
}

impl ReplicateError {
    /// Wraps a failed call to `peer`.
    pub(crate) fn rpc(peer: &str, call: &'static str, status: tonic::Status) -> Self {
        Self::Rpc {
            peer: peer.to_owned(),
            call,
            status: Box::new(status),
        }
    }
}
