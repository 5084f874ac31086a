//! Built against `umbra:policy@0.1.9`, semver-compatible with the host's 0.1.0: accepted.
//!
//! `wit/policy.wit` is `sdk/wit/policy.wit` with only the version changed
//! (a test of umbra-policy-runtime checks that).

// wit-bindgen's export glue, expanded at the crate root, is `unsafe`.
#![allow(unsafe_code)]

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "drift-policy",
    });
}

use bindings::exports::umbra::policy::drift::{Config, DriftResult, Guest, Observation};

struct Policy;

impl Guest for Policy {
    fn configure(_config: Config) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(_input: Observation) -> DriftResult {
        DriftResult {
            score: 0.25,
            rate_of_change: 0.0,
            explanation: "0.1.9".to_owned(),
        }
    }
}

bindings::export!(Policy with_types_in bindings);
