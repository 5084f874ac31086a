//! Criterion benchmarks live in `benches/benches/`; what several of them
//! share lives here.
//!
//! - [`replay`]: telemetry of many protected pairs replayed from a few
//!   generated fault-free traces.
//! - [`agent`]: a device agent over the simulated backend on loopback.

#![forbid(unsafe_code)]

pub mod agent;
pub mod replay;
