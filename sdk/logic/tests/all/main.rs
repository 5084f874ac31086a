//! Integration tests of `umbra-policy-logic`, one binary: the default
//! decisions on the recorded cases of `policies/cases/` (insta snapshots),
//! state threaded through sequences of failover decisions, and properties
//! that must hold on any input.

mod cases;
mod properties;
mod sequences;
