//! Umbra's policy logic, shared by the WebAssembly policies and the host:
//! plain Rust mirrors of the WIT types of `umbra:policy@0.1.0`
//! ([`types`]), the statistics authors would otherwise rewrite ([`stats`],
//! [`deviation`]), typed configurations parsed from the WIT key/value pairs
//! ([`config`]), and Umbra's default decisions as pure functions:
//! [`drift()`], [`correlation()`] and [`failover()`].
//!
//! The default WebAssembly policies under `policies/` are these functions
//! compiled for `wasm32-wasip2`, and the host's native fallbacks call the
//! same functions, so the two decide identically by construction.
//!
//! Invariants: no I/O, no clock (time comes from the input), no randomness,
//! no global state; every decision is total (never panics on any input) and
//! never returns NaN; only arithmetic that IEEE 754 rounds exactly is used
//! (see [`stats`]), so a decision is bit-for-bit the same natively and in
//! WebAssembly.

#![forbid(unsafe_code)]

pub mod case;
pub mod config;
pub mod correlation;
pub mod deviation;
pub mod drift;
pub mod failover;
pub mod stats;
pub mod text;
pub mod types;

pub use case::{Case, CaseInput, CaseOutput, PolicyKind};
pub use config::{ConfigProblem, ConfigReader};
pub use correlation::{CorrelationConfig, correlation};
pub use drift::{DriftConfig, drift};
pub use failover::{FailoverConfig, failover};
pub use types::*;

/// Version of the WIT package `umbra:policy` these types mirror.
pub const WIT_VERSION: &str = "0.1.0";

/// Result of the fallible operations of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the policy logic. Decisions themselves cannot fail;
/// only their setting up can.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The configuration given to a policy is invalid: every problem found
    /// is listed. The operator who wrote the configuration is at fault.
    #[error("invalid configuration: {}", join(.0))]
    InvalidConfig(Vec<ConfigProblem>),
    /// A case gives an input that the policy kind does not take. The author
    /// of the case (or the caller who chose the kind) is at fault.
    #[error("a {kind} policy cannot evaluate {given} (it takes {})", takes(*.kind))]
    InputMismatch {
        /// The kind of policy asked for.
        kind: PolicyKind,
        /// What the case gives, e.g. "an observation".
        given: &'static str,
    },
    /// A policy kind name that is not `drift`, `correlation` or `failover`.
    /// The caller is at fault.
    #[error("unknown policy kind {0:?} (expected drift, correlation or failover)")]
    UnknownKind(String),
}

fn join(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn takes(kind: PolicyKind) -> &'static str {
    match kind {
        PolicyKind::Drift | PolicyKind::Correlation => "an observation",
        PolicyKind::Failover => "a failover input",
    }
}
