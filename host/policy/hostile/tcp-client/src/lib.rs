//! Opens a TCP connection: imports WASI sockets, refused at load.

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
        use std::io::Write;
        let sent = std::net::TcpStream::connect("127.0.0.1:9")
            .and_then(|mut s| s.write(b"exfiltrate"))
            .unwrap_or(0);
        DriftResult {
            score: 0.0,
            rate_of_change: sent as f64,
            explanation: String::new(),
        }
    }
}

bindings::export!(Hostile with_types_in bindings);
