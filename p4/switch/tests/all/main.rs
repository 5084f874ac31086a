//! Black-box tests of `umbra-switch`'s P4Runtime service: every test starts a
//! switch on `127.0.0.1:0` (no dataplane) and talks to it only through the
//! generated tonic client, as a controller would. Ids are resolved by name in
//! `umbra_p4info`; expected codes are those of the P4Runtime specification
//! (v1.4+), cited next to the assertions where the spec is specific.

mod arbitration;
mod atomicity;
mod fuzz;
mod garbage;
mod harness;
mod pipeline_config;
mod read;
mod stream;
mod write_validation;
