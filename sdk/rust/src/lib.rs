//! The Rust SDK for Umbra policies. A policy author depends on this crate
//! only: it has the WIT bindings of `umbra:policy@0.1.0`, a trait and an
//! export macro per policy kind, the types and helpers of
//! [`umbra_policy_logic`] (re-exported), and [`log`].
//!
//! ```rust,standalone_crate
//! use umbra_policy_sdk::drift::{self, Config, Input, Output, Policy};
//!
//! struct MyDrift {
//!     config: Config,
//! }
//!
//! impl Policy for MyDrift {
//!     fn configure(pairs: &[(String, String)]) -> Result<Self, String> {
//!         let config = Config::from_pairs(pairs).map_err(|e| e.to_string())?;
//!         Ok(Self { config })
//!     }
//!
//!     fn evaluate(&self, input: &Input) -> Output {
//!         drift::default_decision(&self.config, input)
//!     }
//! }
//!
//! umbra_policy_sdk::export_drift_policy!(MyDrift);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (or `umbra
//! policy build`): the output is a component of the world of its kind. The
//! crate also compiles natively, where [`log`] records into a buffer that
//! [`take_native_logs`] returns, so policies can be unit-tested with plain
//! `cargo test`.

// The export macros expand `wit-bindgen`'s ABI glue inside the policy
// crate; everything else here is safe code.
#![deny(unsafe_code)]

// Lets the generated code and the macros name this crate by its name from
// inside it as well as from a policy crate.
extern crate self as umbra_policy_sdk;

pub mod bindings;
mod convert;
pub mod correlation;
pub mod drift;
pub mod failover;
mod log;

pub use log::{Level, log};
#[cfg(not(target_arch = "wasm32"))]
pub use log::{NATIVE_LOG_CAPACITY, take_native_logs};

pub use umbra_policy_logic as logic;
pub use umbra_policy_logic::types::*;
pub use umbra_policy_logic::{
    Case, CaseInput, CaseOutput, ConfigProblem, ConfigReader, CorrelationConfig, DriftConfig,
    Error, FailoverConfig, PolicyKind, Result, WIT_VERSION, deviation, stats, text,
};

pub use correlation::CorrelationPolicy;
pub use drift::DriftPolicy;
pub use failover::FailoverPolicy;

/// What the export macros need, under paths that do not depend on the
/// policy crate's own dependencies. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use std::cell::RefCell;
    pub use std::thread::LocalKey;
    pub use wit_bindgen;

    /// The configured instance of a policy, one per component instance.
    /// WebAssembly instances are single-threaded, so a thread-local is the
    /// instance's global.
    pub type Slot<T> = LocalKey<RefCell<Option<T>>>;

    /// A policy trait's `configure`.
    pub type Make<T> = fn(&[(String, String)]) -> Result<T, String>;

    /// `configure`: builds a new instance from `config` and keeps it; on
    /// error the previous instance (if any) stays.
    pub fn configure<T>(
        slot: &'static Slot<T>,
        config: &[(String, String)],
        make: Make<T>,
    ) -> Result<(), String> {
        let policy = make(config)?;
        slot.with(|s| *s.borrow_mut() = Some(policy));
        Ok(())
    }

    /// Runs `f` on the configured instance. A host that evaluates before
    /// configuring gets the policy's answer to the empty configuration; a
    /// policy that refuses even that traps, and the host's fallback answers.
    pub fn with<T, R>(slot: &'static Slot<T>, make: Make<T>, f: impl FnOnce(&T) -> R) -> R {
        slot.with(|s| {
            if s.borrow().is_none() {
                let policy = make(&[]).unwrap_or_else(|e| {
                    panic!("policy evaluated before `configure`, and its default configuration is refused: {e}")
                });
                *s.borrow_mut() = Some(policy);
            }
            let policy = s.borrow();
            f(policy.as_ref().expect("set just above"))
        })
    }
}
