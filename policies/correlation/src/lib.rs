//! `umbra-policy-correlation`: an Umbra correlation policy, built into a WebAssembly component
//! by `umbra policy build` and run on a case by `umbra policy test`.
//!
//! It starts as Umbra's default correlation decision,
//! `umbra_policy_sdk::correlation::default_decision` — the very function the
//! host's native fallback calls — with the configuration keys and defaults
//! of `umbra_policy_sdk::correlation::Config`. Change `configure` and
//! `evaluate` to make it yours.

use umbra_policy_sdk::correlation::{self, Config, Input, Output, Policy};

/// The policy, holding its configuration (parsed once, by `configure`).
pub struct ThisPolicy {
    config: Config,
}

impl Policy for ThisPolicy {
    fn configure(pairs: &[(String, String)]) -> Result<Self, String> {
        let config = Config::from_pairs(pairs).map_err(|e| e.to_string())?;
        Ok(Self { config })
    }

    fn evaluate(&self, input: &Input) -> Output {
        correlation::default_decision(&self.config, input)
    }
}

umbra_policy_sdk::export_correlation_policy!(ThisPolicy);
