//! The daemon's integration tests: the pair driver against the in-memory,
//! chaos and P4Runtime fabrics, and the P4Runtime fabric against Umbra's
//! switch served in process (two hosts, one primary); `umbra run` with
//! WebAssembly policies and model reloads.

mod driver;
mod engine;
mod faults;
mod p4rt;
mod policies;
mod run;
mod support;
