//! The lab's traffic generator and the measurements by which a failover is
//! judged (DESIGN.md "How success is measured"): a 1 kHz UDP probe stream with
//! sequence numbers (switchover gap, probes lost and in which direction),
//! long-lived TCP sessions (survived, reset, longest stall) and HTTP load
//! against a small server with fault knobs (status-code rates, latency).
//!
//! Every component runs in a named network namespace or the current one
//! (`netns: Option<&str>`): its sockets are created by a thread that entered
//! the namespace and keep belonging to it when used from the component's own
//! threads. All threads are plain std threads, stopped by a flag, bounded by
//! socket timeouts and joined on `stop()` or drop.

#![forbid(unsafe_code)]

pub mod http;
mod listener;
pub mod netns;
pub mod probe;
pub mod session;
pub mod stats;
pub mod traffic;

pub use http::{HttpFaults, HttpLoad, HttpReport, HttpServer, HttpServerStats};
pub use probe::{
    LossDirection, ProbeGap, ProbeReflector, ProbeReport, ProbeStream, ReflectorStats,
};
pub use session::{SessionEchoServer, SessionFailure, SessionReport, Sessions, SessionsReport};
pub use traffic::{Traffic, TrafficPlan, TrafficReport, TrafficSnapshot};

/// Everything that can go wrong while starting traffic. Once started, the
/// generators never fail: what goes wrong on the wire is what they measure.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The network namespace cannot be entered: it does not exist or the
    /// process lacks `CAP_SYS_ADMIN`. The caller or the environment is at
    /// fault.
    #[error("cannot enter network namespace {namespace:?}: {source}")]
    Namespace {
        /// The namespace name (`/run/netns/NAME`).
        namespace: String,
        /// What `setns` said.
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be created, bound or connected (address in use,
    /// address not configured in the namespace, peer not listening). The
    /// environment or the caller's addresses are at fault.
    #[error("{what}: {source}")]
    Socket {
        /// Which socket operation failed, with its address.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A parameter is unusable (zero rate, unparsable target, too many
    /// sessions). The caller is at fault.
    #[error("invalid parameter: {0}")]
    Invalid(String),
    /// A thread could not be spawned (the process is out of resources).
    #[error("cannot spawn thread {name}: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, TrafficError>;

/// Wraps an I/O error of a socket operation described by `what`.
pub(crate) fn socket_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TrafficError {
    let what = what.into();
    move |source| TrafficError::Socket { what, source }
}

/// Spawns a named thread.
pub(crate) fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|source| TrafficError::Spawn {
            name: name.to_owned(),
            source,
        })
}
