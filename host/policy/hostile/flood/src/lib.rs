//! Enormous output: a 64 MiB explanation (or `bytes` bytes, as configured).
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

use std::cell::{Cell, RefCell};

use bindings::exports::umbra::policy::drift::{Config, DriftResult, Guest, Observation};

thread_local! {
    static ALWAYS: Cell<bool> = const { Cell::new(false) };
    static OPTION: RefCell<String> = const { RefCell::new(String::new()) };
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
                "bytes" => OPTION.with(|o| *o.borrow_mut() = value),
                other => return Err(format!("unknown key `{other}`")),
            }
        }
        Ok(())
    }

    fn evaluate(input: Observation) -> DriftResult {
        if !triggered(&input) {
            return benign();
        }
        let bytes = OPTION.with(|o| o.borrow().parse().unwrap_or(64 << 20));
        DriftResult {
            score: 0.5,
            rate_of_change: input.now_ms as f64,
            explanation: "x".repeat(bytes),
        }
    }
}

bindings::export!(Hostile with_types_in bindings);
