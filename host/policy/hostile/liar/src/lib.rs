//! A correlation policy that lies, as configured by `lie`: `nan` (NaN
//! score), `above-one` (score 1.5), `signals` (1000 signals), `weight`
//! (a signal weighing -1), `long-detail` (a 1 MiB signal detail), or
//! `none` (a valid answer).

// wit-bindgen's export glue, expanded at the crate root, is `unsafe`.
#![allow(unsafe_code)]

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../../sdk/wit",
        world: "correlation-policy",
    });
}

use std::cell::RefCell;

use bindings::exports::umbra::policy::correlation::{
    Config, CorrelationResult, Guest, Observation,
};
use bindings::umbra::policy::types::Signal;

thread_local! {
    static LIE: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Liar;

fn signal(weight: f64, detail: String) -> Signal {
    Signal {
        name: "lie".to_owned(),
        weight,
        detail,
    }
}

impl Guest for Liar {
    fn configure(config: Config) -> Result<(), String> {
        for (key, value) in config {
            match key.as_str() {
                "lie" => LIE.with(|l| *l.borrow_mut() = value),
                other => return Err(format!("unknown key `{other}`")),
            }
        }
        Ok(())
    }

    fn evaluate(_input: Observation) -> CorrelationResult {
        let lie = LIE.with(|l| l.borrow().clone());
        match lie.as_str() {
            "nan" => CorrelationResult {
                score: f64::NAN,
                signals: Vec::new(),
            },
            "above-one" => CorrelationResult {
                score: 1.5,
                signals: Vec::new(),
            },
            "signals" => CorrelationResult {
                score: 0.5,
                signals: (0..1000).map(|_| signal(0.001, String::new())).collect(),
            },
            "weight" => CorrelationResult {
                score: 0.5,
                signals: vec![signal(-1.0, String::new())],
            },
            "long-detail" => CorrelationResult {
                score: 0.5,
                signals: vec![signal(0.5, "d".repeat(1 << 20))],
            },
            _ => CorrelationResult {
                score: 0.5,
                signals: vec![signal(0.5, String::new())],
            },
        }
    }
}

bindings::export!(Liar with_types_in bindings);
