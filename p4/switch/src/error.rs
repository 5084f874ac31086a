//! Errors of the software switch as a process: what stops it from serving.
//! Errors of single P4Runtime requests are `tonic::Status` values built in
//! [`crate::service`] and [`crate::program`].

use std::net::SocketAddr;

/// Result of switch start-up and serving.
pub type Result<T, E = SwitchError> = std::result::Result<T, E>;

/// What stops the switch from serving.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The command line is wrong. The operator is at fault; every problem
    /// is listed.
    #[error("invalid switch options:\n  - {}", .0.join("\n  - "))]
    InvalidOptions(Vec<String>),
    /// The gRPC address cannot be bound (in use, not local, no permission).
    /// The environment or the operator is at fault.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the OS refused.
        #[source]
        source: std::io::Error,
    },
    /// An interface could not be opened for forwarding (missing, no
    /// privilege). The environment or the operator is at fault.
    #[error("dataplane failed to start")]
    Dataplane(#[source] crate::dataplane::DataplaneError),
    /// The `--netns` namespace cannot be entered (missing, no privilege).
    /// The environment or the operator is at fault.
    #[error("cannot enter network namespace {netns:?}")]
    Netns {
        /// The namespace asked for.
        netns: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server stopped with an error.
    #[error("P4Runtime server failed")]
    Serve(#[source] tonic::transport::Error),
}
