//! Runs operator-written policies (drift, correlation, failover) as
//! sandboxed WebAssembly components, so that no policy, however broken or
//! hostile, can stop decisions or take the host down.
//!
//! - [`PolicyEngine`]: the one shared wasmtime engine — pooling allocator,
//!   epoch deadlines, on-disk cache of compiled components keyed by engine
//!   and content, and the sandbox's linker (only `umbra:policy/log` and
//!   deny-everything WASI stubs; `src/sandbox.rs` says what Rust
//!   guests import and why).
//! - [`PolicyRuntime`]: one slot per kind. Loading compiles, screens and
//!   validates a component off the decision path and swaps it in atomically;
//!   decisions run on a reused instance under a deadline and a memory cap;
//!   any trap, timeout, out-of-memory or invalid output makes the native
//!   fallback (`umbra-policy-logic`'s default decision) answer, and N faults
//!   in a row quarantine the policy. Every [`Answer`] says who answered.
//! - Shadow mode: a candidate runs beside the active policy on the same
//!   inputs; disagreements are recorded; it is promoted on request or after
//!   N agreeing evaluations.
//! - [`PolicyWatcher`]: hot reload from a polled directory.

mod bindings;
mod cache;
mod convert;
mod engine;
mod error;
mod fault;
mod kind;
mod lower;
mod policy;
mod runtime;
mod sandbox;
mod slot;
mod unchecked;
mod version;
mod watch;

pub use engine::{CompileSource, EngineConfig, PolicyEngine};
pub use error::{Error, LoadProblem, Result};
pub use fault::{Fault, FaultCounts, FaultKind};
pub use policy::{PolicyId, PolicyLimits, PolicySource, PolicyStatus};
pub use runtime::{OutputLimits, PolicyRuntime, PolicySettings, RuntimeConfig};
pub use slot::{
    Answer, AnsweredBy, CandidateStatus, Disagreement, FallbackReason, ShadowConfig, SlotStatus,
};
pub use umbra_policy_logic::PolicyKind;
pub use version::{HOST_VERSION, PACKAGE};
pub use watch::{PolicyWatcher, Reload, WatchConfig, WatchMode};

/// The wasmtime engine type, for the sandbox's screening functions.
pub(crate) type Engine = wasmtime::Engine;
