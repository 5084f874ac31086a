//! An infinite loop: `evaluate` never returns (the deadline stops it).
//!
//! Like a real policy with a bug, it behaves on ordinary inputs (so it
//! passes the host's validation) and turns hostile on the input that
//! triggers the bug: an observation whose primary has a metric named
//! `hostile` — or on every input when configured with `always = true`.

// wit-bindgen's export glue, expanded at the crate root, is `unsafe`.
#![allow(unsafe_code)]

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../../sdk/wit",
        world: "drift-policy",
    });
}

use std::cell::Cell;

use bindings::exports::umbra::policy::drift::{Config, DriftResult, Guest, Observation};

thread_local! {
    static ALWAYS: Cell<bool> = const { Cell::new(false) };
}

fn triggered(input: &Observation) -> bool {
    ALWAYS.get() || input.primary.metrics.split('\n').any(|m| m == "hostile")
}

fn benign() -> DriftResult {
    DriftResult {
        score: 0.0,
        rate_of_change: 0.0,
        explanation: "benign".to_owned(),
    }
}

struct Hostile;

impl Guest for Hostile {
    fn configure(config: Config) -> Result<(), String> {
        for (key, value) in config {
            match key.as_str() {
                "always" => ALWAYS.set(value == "true"),
                other => return Err(format!("unknown key `{other}`")),
            }
        }
        Ok(())
    }

    fn evaluate(input: Observation) -> DriftResult {
        if !triggered(&input) {
            return benign();
        }
        let mut n = input.now_ms;
        loop {
            // Opaque to the optimiser, so the loop really runs.
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

bindings::export!(Hostile with_types_in bindings);
