//! Umbra's network-namespace labs. Today: the switch lab behind `umbra demo`
//! (steering, sampling and a one-write failover through `umbra switch`,
//! driven by the host's P4Runtime client). Everything a lab creates lives in
//! namespaces it owns and removes on drop; addresses are from 198.18.0.0/15.

#![forbid(unsafe_code)]

pub mod switch_lab;

/// Result of running a lab.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Why a lab run failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Namespaces, interfaces or helper processes could not be set up (not
    /// root, `ip`/`ethtool`/`ping` missing). The environment is at fault.
    #[error("cannot build the lab (it needs root and iproute2, ethtool, iputils-ping)")]
    Topology(#[source] std::io::Error),
    /// The in-process switch failed.
    #[error("the switch failed")]
    Switch(#[source] umbra_switch::SwitchError),
    /// The host's P4Runtime client failed.
    #[error("the P4Runtime client failed")]
    Client(#[from] umbra_p4rt::P4rtError),
    /// The traffic generator misbehaved.
    #[error("traffic: {0}")]
    Traffic(&'static str),
    /// The run was interrupted (Ctrl-C); everything was cleaned up.
    #[error("interrupted")]
    Cancelled,
}
