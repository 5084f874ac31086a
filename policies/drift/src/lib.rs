//! `umbra-policy-drift`: an Umbra drift policy, built into a WebAssembly component
//! by `umbra policy build` and run on a case by `umbra policy test`.
//!
//! It starts as Umbra's default drift decision,
//! `umbra_policy_sdk::drift::default_decision` — the very function the
//! host's native fallback calls — with the configuration keys and defaults
//! of `umbra_policy_sdk::drift::Config`. Change `configure` and
//! `evaluate` to make it yours.

use umbra_policy_sdk::drift::{self, Config, Input, Output, Policy};

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
        drift::default_decision(&self.config, input)
    }
}

umbra_policy_sdk::export_drift_policy!(ThisPolicy);
