//! Umbra's network-namespace labs: the switch lab behind `umbra demo`
//! (steering, sampling and a one-write failover through `umbra switch`,
//! driven by the host's P4Runtime client), and the failover lab (routers
//! with stateful firewalls as primary and shadow, their agents, and fault
//! injection on the primary). Everything a lab creates lives in
//! namespaces it owns and removes on drop; addresses are from 198.18.0.0/15.

#![forbid(unsafe_code)]

pub mod failover_lab;
pub mod sweep;
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
    /// A device agent of a lab could not be started (its namespace could
    /// not be read, or its server failed). The environment is at fault.
    #[error("a device agent of the lab failed")]
    Agent(#[source] umbra_agent::AgentError),
    /// A fault could not be injected or undone (a `tc`, `ip`, cgroup or
    /// conntrack operation failed). The environment is at fault.
    #[error("fault injection: {0}")]
    Fault(String),
    /// The run was interrupted (Ctrl-C); everything was cleaned up.
    #[error("interrupted")]
    Cancelled,
}
