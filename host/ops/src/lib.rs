//! Operations of the host daemon (`umbra run`): the management API
//! (`umbra.management.v1`) with its server and command-line clients, the
//! Prometheus metrics and their endpoint, and the append-only JSON-lines
//! audit log.
//!
//! The daemon owns the state; this crate only shows it and carries requests
//! to it. It implements [`Control`] and hands it to [`serve`]; it updates a
//! shared [`Metrics`] and serves it with [`serve_metrics`]; it appends its
//! state changes to an [`AuditLog`]. The `umbra status`, `umbra failover`
//! and `umbra policy reload` commands are [`client`]'s functions.

#![forbid(unsafe_code)]

pub mod audit;
pub mod client;
pub mod control;
mod error;
pub mod metrics;
mod service;
mod wire;

pub use audit::{AuditContents, AuditLog, CorruptLine};
pub use control::{
    Control, Decision, DeviceHealth, FailoverRefused, HostInfo, HostStatus, PairStatus, Phase,
    PolicyReload, ReloadOutcome, Replication,
};
pub use error::{OpsError, Result};
pub use metrics::{Metrics, PairMetrics, serve_metrics};
pub use service::serve;
