//! `umbra-policy-failover`: an Umbra failover policy, built into a WebAssembly component
//! by `umbra policy build` and run on a case by `umbra policy test`.
//!
//! It starts as Umbra's default failover decision,
//! `umbra_policy_sdk::failover::default_decision` — the very function the
//! host's native fallback calls — with the configuration keys and defaults
//! of `umbra_policy_sdk::failover::Config`. Change `configure` and
//! `evaluate` to make it yours.

use umbra_policy_sdk::failover::{self, Config, Input, Output, Policy};

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
        failover::default_decision(&self.config, input)
    }
}

umbra_policy_sdk::export_failover_policy!(ThisPolicy);
