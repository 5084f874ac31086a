//! umbra run: the host daemon tying P4Runtime, replication, health checks,
//! prediction, policies and the failover orchestrator together.
//!
//! - [`fabric`]: the switch behind a trait (P4Runtime, in memory, chaos).
//! - [`replication`]: drains and role swaps of the pair's replication.
//! - [`pair`]: one task per protected pair driving its orchestrator.
//! - [`engine`]: the per-tick decision (drift, correlation, the batched
//!   predictor, the failover policy).
//! - [`run`]: `umbra run`, everything a configuration describes.
//! - [`policies`]: `[policies] dir`, the operator's WebAssembly policies.
//! - [`control`]: the management API's view of a running daemon.

#![forbid(unsafe_code)]

pub mod control;
pub mod engine;
pub mod fabric;
pub mod pair;
pub mod policies;
pub mod replication;
pub mod run;
