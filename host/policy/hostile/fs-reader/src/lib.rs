//! Reads a file with `std::fs`: imports WASI filesystem, refused at load.

// wit-bindgen's export glue, expanded at the crate root, is `unsafe`.
#![allow(unsafe_code)]

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../../sdk/wit",
        world: "drift-policy",
    });
}

use bindings::exports::umbra::policy::drift::{Config, DriftResult, Guest, Observation};

struct Hostile;

impl Guest for Hostile {
    fn configure(config: Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    fn evaluate(_input: Observation) -> DriftResult {
        let secret = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        DriftResult {
            score: 0.0,
            rate_of_change: 0.0,
            explanation: secret,
        }
    }
}

bindings::export!(Hostile with_types_in bindings);
