//! What differs between the three kinds of policy: their WIT bindings,
//! input and output types, output validation, agreement for shadow mode and
//! native fallback. Everything else in the runtime is generic over [`Kind`].

use std::fmt;

use umbra_policy_logic as logic;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::bindings;
use crate::convert;
use crate::lower;
use crate::sandbox::HostState;
use crate::unchecked::{CheckedFunc, FailoverInputs, ObservationFunc};
use crate::{OutputLimits, PolicyKind};

/// One kind of policy.
pub(crate) trait Kind: Send + Sync + Sized + 'static {
    /// Which one.
    const KIND: PolicyKind;
    /// What the caller passes (a `umbra-policy-logic` type).
    type Input: serde::Serialize + fmt::Debug + Send + Sync;
    /// What the policy answers (a `umbra-policy-logic` type).
    type Output: serde::Serialize + fmt::Debug + Clone + PartialEq + Send + Sync + 'static;
    /// The input, ready to be lowered into the policy's memory.
    type WitInput<'a>;
    /// The bindings' pre-instantiated form.
    type Pre: Send + Sync + 'static;
    /// The bindings of one instance.
    type Bindings: Send + 'static;
    /// The native fallback's parsed configuration.
    type FallbackConfig: fmt::Debug + Send + Sync + 'static;

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Bindings>;
    // The generated bindings take `&Vec`, not a slice.
    #[allow(clippy::ptr_arg)]
    fn configure(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>>;
    fn to_wit(input: &Self::Input) -> Self::WitInput<'_>;
    fn call(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        input: &Self::WitInput<'_>,
    ) -> wasmtime::Result<Self::Output>;
    /// Why the host refuses `output`, if it does.
    fn check_output(output: &Self::Output, limits: &OutputLimits) -> Result<(), String>;
    /// Whether a shadow candidate's answer agrees with the active one's.
    fn agree(active: &Self::Output, candidate: &Self::Output, tolerance: f64) -> bool;
    /// Parses the fallback's configuration.
    fn parse_fallback(pairs: &[(String, String)]) -> Result<Self::FallbackConfig, String>;
    /// The native fallback: Umbra's default decision.
    fn fallback(config: &Self::FallbackConfig, input: &Self::Input) -> Self::Output;
    /// The input a new policy is validated on before it is swapped in.
    fn canned_input() -> Self::Input;
}

fn check_unit(what: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("{what} is {value}, outside [0, 1]"))
    }
}

fn check_text(what: &str, text: &str, limits: &OutputLimits) -> Result<(), String> {
    if text.len() <= limits.max_text_bytes {
        Ok(())
    } else {
        Err(format!(
            "{what} is {} bytes long, over the cap of {} bytes",
            text.len(),
            limits.max_text_bytes
        ))
    }
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    a == b || (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

/// The drift policy.
pub(crate) struct Drift;

impl Kind for Drift {
    const KIND: PolicyKind = PolicyKind::Drift;
    type Input = logic::Observation;
    type Output = logic::DriftResult;
    type WitInput<'a> = lower::Observation<'a>;
    type Pre = bindings::drift::DriftPolicyPre<HostState>;
    type Bindings = (
        bindings::drift::DriftPolicy,
        ObservationFunc<bindings::types::DriftResult>,
    );
    type FallbackConfig = logic::DriftConfig;

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        Self::Pre::new(pre)
    }

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Bindings> {
        let bindings = pre.instantiate(&mut *store)?;
        let evaluate = *bindings.umbra_policy_drift().func_evaluate().func();
        let evaluate = ObservationFunc::new(&*store, evaluate)?;
        Ok((bindings, evaluate))
    }

    fn configure(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        bindings
            .0
            .umbra_policy_drift()
            .call_configure(store, config)
    }

    fn to_wit(input: &Self::Input) -> Self::WitInput<'_> {
        lower::observation(input)
    }

    fn call(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        input: &Self::WitInput<'_>,
    ) -> wasmtime::Result<Self::Output> {
        let out = bindings.1.call(store, input)?;
        Ok(convert::drift_result(out))
    }

    fn check_output(output: &Self::Output, limits: &OutputLimits) -> Result<(), String> {
        check_unit("score", output.score)?;
        if !output.rate_of_change.is_finite() {
            return Err(format!("rate-of-change is {}", output.rate_of_change));
        }
        check_text("explanation", &output.explanation, limits)
    }

    fn agree(active: &Self::Output, candidate: &Self::Output, tolerance: f64) -> bool {
        close(active.score, candidate.score, tolerance)
            && close(active.rate_of_change, candidate.rate_of_change, tolerance)
    }

    fn parse_fallback(pairs: &[(String, String)]) -> Result<Self::FallbackConfig, String> {
        logic::DriftConfig::from_pairs(pairs).map_err(|e| e.to_string())
    }

    fn fallback(config: &Self::FallbackConfig, input: &Self::Input) -> Self::Output {
        logic::drift(config, input)
    }

    fn canned_input() -> Self::Input {
        convert::canned_observation()
    }
}

/// The correlation policy.
pub(crate) struct Correlation;

impl Kind for Correlation {
    const KIND: PolicyKind = PolicyKind::Correlation;
    type Input = logic::Observation;
    type Output = logic::CorrelationResult;
    type WitInput<'a> = lower::Observation<'a>;
    type Pre = bindings::correlation::CorrelationPolicyPre<HostState>;
    type Bindings = (
        bindings::correlation::CorrelationPolicy,
        ObservationFunc<bindings::types::CorrelationResult>,
    );
    type FallbackConfig = logic::CorrelationConfig;

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        Self::Pre::new(pre)
    }

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Bindings> {
        let bindings = pre.instantiate(&mut *store)?;
        let evaluate = *bindings.umbra_policy_correlation().func_evaluate().func();
        let evaluate = ObservationFunc::new(&*store, evaluate)?;
        Ok((bindings, evaluate))
    }

    fn configure(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        bindings
            .0
            .umbra_policy_correlation()
            .call_configure(store, config)
    }

    fn to_wit(input: &Self::Input) -> Self::WitInput<'_> {
        lower::observation(input)
    }

    fn call(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        input: &Self::WitInput<'_>,
    ) -> wasmtime::Result<Self::Output> {
        let out = bindings.1.call(store, input)?;
        Ok(convert::correlation_result(out))
    }

    fn check_output(output: &Self::Output, limits: &OutputLimits) -> Result<(), String> {
        check_unit("score", output.score)?;
        if output.signals.len() > limits.max_signals {
            return Err(format!(
                "{} signals, over the cap of {}",
                output.signals.len(),
                limits.max_signals
            ));
        }
        for (i, signal) in output.signals.iter().enumerate() {
            check_unit(&format!("signals[{i}].weight"), signal.weight)?;
            check_text(&format!("signals[{i}].name"), &signal.name, limits)?;
            check_text(&format!("signals[{i}].detail"), &signal.detail, limits)?;
        }
        Ok(())
    }

    fn agree(active: &Self::Output, candidate: &Self::Output, tolerance: f64) -> bool {
        close(active.score, candidate.score, tolerance)
    }

    fn parse_fallback(pairs: &[(String, String)]) -> Result<Self::FallbackConfig, String> {
        logic::CorrelationConfig::from_pairs(pairs).map_err(|e| e.to_string())
    }

    fn fallback(config: &Self::FallbackConfig, input: &Self::Input) -> Self::Output {
        logic::correlation(config, input)
    }

    fn canned_input() -> Self::Input {
        convert::canned_observation()
    }
}

/// The failover decision.
pub(crate) struct Failover;

impl Kind for Failover {
    const KIND: PolicyKind = PolicyKind::Failover;
    type Input = logic::FailoverInput;
    type Output = logic::FailoverDecision;
    type WitInput<'a> = lower::FailoverInput<'a>;
    type Pre = bindings::failover::FailoverPolicyPre<HostState>;
    type Bindings = (
        bindings::failover::FailoverPolicy,
        CheckedFunc<FailoverInputs, bindings::types::FailoverDecision>,
    );
    type FallbackConfig = logic::FailoverConfig;

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        Self::Pre::new(pre)
    }

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Bindings> {
        let bindings = pre.instantiate(&mut *store)?;
        let decide = *bindings.umbra_policy_failover().func_decide().func();
        let decide = CheckedFunc::new(&*store, decide)?;
        Ok((bindings, decide))
    }

    fn configure(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        bindings
            .0
            .umbra_policy_failover()
            .call_configure(store, config)
    }

    fn to_wit(input: &Self::Input) -> Self::WitInput<'_> {
        lower::failover_input(input)
    }

    fn call(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        input: &Self::WitInput<'_>,
    ) -> wasmtime::Result<Self::Output> {
        let out = bindings.1.call(store, input)?;
        Ok(convert::failover_decision(out))
    }

    fn check_output(output: &Self::Output, limits: &OutputLimits) -> Result<(), String> {
        check_text("reason", &output.reason, limits)?;
        if output.state.recent_go_ms.len() > limits.max_state_entries {
            return Err(format!(
                "state.recent-go-ms has {} entries, over the cap of {}",
                output.state.recent_go_ms.len(),
                limits.max_state_entries
            ));
        }
        Ok(())
    }

    fn agree(active: &Self::Output, candidate: &Self::Output, _tolerance: f64) -> bool {
        active.verdict == candidate.verdict && active.state == candidate.state
    }

    fn parse_fallback(pairs: &[(String, String)]) -> Result<Self::FallbackConfig, String> {
        logic::FailoverConfig::from_pairs(pairs).map_err(|e| e.to_string())
    }

    fn fallback(config: &Self::FallbackConfig, input: &Self::Input) -> Self::Output {
        logic::failover(config, input)
    }

    fn canned_input() -> Self::Input {
        convert::canned_failover_input()
    }
}
