//! Black-box tests of the device agent through its gRPC API on loopback:
//! snapshot + change stream consistency under churn, resuming, the bounded
//! log, idempotent Apply with per-entry results, digests, authentication
//! (token and mutual TLS), and robustness against garbage and vanishing
//! clients.

mod apply;
mod auth;
mod resync;
mod robustness;
mod stream;
mod support;
