//! A well-behaved drift policy for the runtime's tests: it answers the
//! `score` and `tag` (as explanation) it was configured with, so a test can
//! tell which version answered, and `rate-of-change` = the number of
//! evaluations this instance has made, so a test can tell whether an
//! instance was reused. It panics when `now-ms` is negative, so a test can
//! make it fault on chosen calls, and it logs one line when configured.

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
use bindings::umbra::policy::log::{Level, log};

thread_local! {
    static SETTINGS: RefCell<(f64, String)> = const { RefCell::new((0.5, String::new())) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

struct Echo;

impl Guest for Echo {
    fn configure(config: Config) -> Result<(), String> {
        let mut score = 0.5;
        let mut tag = String::new();
        for (key, value) in config {
            match key.as_str() {
                "score" => {
                    score = value
                        .parse()
                        .map_err(|_| format!("`score`: not a number: {value}"))?
                }
                "tag" => tag = value,
                other => return Err(format!("unknown key `{other}`")),
            }
        }
        log(Level::Info, &format!("configured score={score} tag={tag}"));
        SETTINGS.with(|s| *s.borrow_mut() = (score, tag));
        Ok(())
    }

    fn evaluate(input: Observation) -> DriftResult {
        assert!(input.now_ms >= 0, "negative now-ms {}", input.now_ms);
        let (score, tag) = SETTINGS.with(|s| s.borrow().clone());
        CALLS.set(CALLS.get() + 1);
        DriftResult {
            score,
            rate_of_change: CALLS.get() as f64,
            explanation: tag,
        }
    }
}

bindings::export!(Echo with_types_in bindings);
