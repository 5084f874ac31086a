//! Shared helpers for Umbra's cross-crate tests (`tests/tests/*.rs`): where
//! the `umbra` binary and the Python test peers are, throw-away network
//! namespaces with veth pairs, child processes with deadlines, and the
//! statistics the sampling tests judge with.
//!
//! Every helper that creates something outside the test process (a
//! namespace, a process) returns a guard that removes it on drop, so a
//! failing assertion never leaves a lab behind.

#![forbid(unsafe_code)]

pub mod lab;
pub mod process;
pub mod stats;
pub mod workspace;
