//! Stack exhaustion: `evaluate` recurses without end (stack overflow).
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

/// Recurses until the stack runs out; the frame is padded so that it does
/// so quickly, and the result depends on every level so that the recursion
/// is not turned into a loop.
#[inline(never)]
fn deep(n: u64) -> u64 {
    if n == 0 {
        // Never: every call passes an odd number.
        return 0;
    }
    let pad = std::hint::black_box([n; 64]);
    deep(std::hint::black_box(n.wrapping_add(pad[7]) | 1)).wrapping_add(pad[3])
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
        let depth = deep(std::hint::black_box(input.now_ms as u64 | 1));
        DriftResult {
            score: 0.0,
            rate_of_change: depth as f64,
            explanation: String::new(),
        }
    }
}

bindings::export!(Hostile with_types_in bindings);
