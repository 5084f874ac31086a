//! Drift policies: how strongly, and how fast, the primary drifts from its
//! historical baseline. Implement [`DriftPolicy`] and export it with
//! [`export_drift_policy!`](crate::export_drift_policy).

pub use umbra_policy_logic::drift::*;

/// The trait, under the name the scaffold of `umbra policy new` uses.
pub use self::DriftPolicy as Policy;

/// What a drift policy is given.
pub type Input = crate::Observation;

/// What a drift policy answers.
pub type Output = crate::DriftResult;

/// The configuration of Umbra's default drift policy.
pub type Config = crate::DriftConfig;

/// Umbra's default drift decision: what the default WebAssembly policy and
/// the host's native fallback answer.
pub use umbra_policy_logic::drift::drift as default_decision;

/// Export a type implementing this trait with
/// [`export_drift_policy!`](crate::export_drift_policy).
pub use crate::export_drift_policy as export;

/// A drift policy: scores how strongly the primary drifts from its baseline,
/// with emphasis on the rate of change of the deviation.
///
/// The host calls `configure` once after loading the policy and on every
/// configuration change, then `evaluate` on every tick. An instance of the
/// implementing type holds the parsed configuration.
pub trait DriftPolicy: Sized + 'static {
    /// Builds the policy from the operator's configuration (key/value pairs,
    /// in the order given).
    ///
    /// # Errors
    ///
    /// A message for the operator, listing every problem, when the
    /// configuration is refused; the host keeps the previous configuration.
    fn configure(config: &[(String, String)]) -> Result<Self, String>;

    /// Scores the drift of the primary in `input`; the score must be in [0, 1]
    /// (the host treats anything else as a fault).
    fn evaluate(&self, input: &Input) -> Output;
}

/// Exports a type implementing [`DriftPolicy`](crate::DriftPolicy) as
/// the component's `umbra:policy/drift` interface. Use it once, in the
/// policy crate's `lib.rs`:
///
/// ```rust,standalone_crate
/// use umbra_policy_sdk::{DriftPolicy, Observation, DriftResult};
///
/// struct MyDrift;
///
/// impl DriftPolicy for MyDrift {
///     fn configure(_: &[(String, String)]) -> Result<Self, String> {
///         Ok(Self)
///     }
///
///     fn evaluate(&self, _: &Observation) -> DriftResult {
///         DriftResult::default()
///     }
/// }
///
/// umbra_policy_sdk::export_drift_policy!(MyDrift);
/// ```
///
/// Calls to `evaluate` before any `configure` use the policy built from the
/// empty configuration. The expansion contains `wit-bindgen`'s ABI glue,
/// which is `unsafe` code: a policy crate may `deny(unsafe_code)` but not
/// `forbid` it.
#[macro_export]
macro_rules! export_drift_policy {
    ($ty:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct UmbraDriftPolicyExport;

            ::std::thread_local! {
                static POLICY: $crate::__private::RefCell<::std::option::Option<$ty>> =
                    const { $crate::__private::RefCell::new(::std::option::Option::None) };
            }

            impl $crate::bindings::drift::exports::umbra::policy::drift::Guest for UmbraDriftPolicyExport {
                fn configure(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::configure(
                        &POLICY,
                        &config,
                        <$ty as $crate::drift::DriftPolicy>::configure,
                    )
                }

                fn evaluate(
                    input: $crate::bindings::types::Observation,
                ) -> $crate::bindings::types::DriftResult {
                    let input = $crate::Observation::from(input);
                    let output = $crate::__private::with(
                        &POLICY,
                        <$ty as $crate::drift::DriftPolicy>::configure,
                        |policy| <$ty as $crate::drift::DriftPolicy>::evaluate(policy, &input),
                    );
                    output.into()
                }
            }

            $crate::__export_drift_policy_impl!(UmbraDriftPolicyExport with_types_in $crate::bindings::drift);
        };
    };
}
