//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the operations layer.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The gRPC server of the management API failed while serving (its
    /// listener broke). The environment is at fault.
    #[error("the management API server failed")]
    Grpc(#[source] tonic::transport::Error),

    /// The metrics endpoint failed while serving. The environment is at
    /// fault.
    #[error("the metrics endpoint failed")]
    MetricsServer(#[source] std::io::Error),

    /// The configured token cannot be used: it is empty or not visible ASCII
    /// (it travels in an HTTP/2 header). The configuration is at fault.
    #[error("invalid management token: {0}")]
    InvalidToken(&'static str),

    /// A call did not present the configured bearer token, or presented
    /// another one. The caller is at fault.
    #[error("{0}")]
    Unauthenticated(&'static str),

    /// A call named a protected pair that the daemon does not have. The
    /// caller is at fault.
    #[error("no protected pair named {0:?}")]
    UnknownPair(String),

    /// A call's arguments are malformed (an empty pair name, a path that is
    /// not UTF-8...). The caller is at fault.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// Reading or writing the audit log failed. The environment is at fault
    /// (permissions, full disk, a missing directory).
    #[error("{action} the audit log {path}")]
    Audit {
        /// What was being done ("opening", "appending to"...).
        action: &'static str,
        /// The audit log's path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A record could not be written as one JSON object (it is not an
    /// object, or serialisation failed). The caller is at fault.
    #[error("an audit record for {path} is not a JSON object: {reason}")]
    AuditRecord {
        /// The audit log's path.
        path: PathBuf,
        /// Why the record was refused.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = OpsError> = std::result::Result<T, E>;
