//! The daemon's integration tests: the pair driver against the in-memory,
//! chaos and P4Runtime fabrics, and the P4Runtime fabric against Umbra's
//! switch served in process (two hosts, one primary).

mod driver;
mod engine;
mod p4rt;
mod run;
mod support;
