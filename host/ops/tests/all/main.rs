//! Black-box tests of umbra-ops: the management API served on loopback
//! with a fake daemon and called through the public clients (and a raw
//! gRPC client for status codes), the metrics endpoint scraped over HTTP,
//! and the audit log on disk.

mod api;
mod audit;
mod metrics;
