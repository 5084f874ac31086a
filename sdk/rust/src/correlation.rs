//! Correlation policies: signals that corroborate each other across the
//! primary, the shadow, the health checks and the mirrored traffic. Implement
//! [`CorrelationPolicy`] and export it with
//! [`export_correlation_policy!`](crate::export_correlation_policy).

pub use umbra_policy_logic::correlation::*;

/// The trait, under the name the scaffold of `umbra policy new` uses.
pub use self::CorrelationPolicy as Policy;

/// What a correlation policy is given.
pub type Input = crate::Observation;

/// What a correlation policy answers.
pub type Output = crate::CorrelationResult;

/// The configuration of Umbra's default correlation policy.
pub type Config = crate::CorrelationConfig;

/// Umbra's default correlation decision: what the default WebAssembly policy and
/// the host's native fallback answer.
pub use umbra_policy_logic::correlation::correlation as default_decision;

/// Export a type implementing this trait with
/// [`export_correlation_policy!`](crate::export_correlation_policy).
pub use crate::export_correlation_policy as export;

/// A correlation policy: finds signals that corroborate each other and says
/// which contributed.
///
/// The host calls `configure` once after loading the policy and on every
/// configuration change, then `evaluate` on every tick. An instance of the
/// implementing type holds the parsed configuration.
pub trait CorrelationPolicy: Sized + 'static {
    /// Builds the policy from the operator's configuration (key/value pairs,
    /// in the order given).
    ///
    /// # Errors
    ///
    /// A message for the operator, listing every problem, when the
    /// configuration is refused; the host keeps the previous configuration.
    fn configure(config: &[(String, String)]) -> Result<Self, String>;

    /// Scores the correlation in `input`; the score and every weight must be
    /// in [0, 1] (the host treats anything else as a fault).
    fn evaluate(&self, input: &Input) -> Output;
}

/// Exports a type implementing [`CorrelationPolicy`](crate::CorrelationPolicy) as
/// the component's `umbra:policy/correlation` interface. Use it once, in the
/// policy crate's `lib.rs`:
///
/// ```rust,standalone_crate
/// use umbra_policy_sdk::{CorrelationPolicy, Observation, CorrelationResult};
///
/// struct MyCorrelation;
///
/// impl CorrelationPolicy for MyCorrelation {
///     fn configure(_: &[(String, String)]) -> Result<Self, String> {
///         Ok(Self)
///     }
///
///     fn evaluate(&self, _: &Observation) -> CorrelationResult {
///         CorrelationResult::default()
///     }
/// }
///
/// umbra_policy_sdk::export_correlation_policy!(MyCorrelation);
/// ```
///
/// Calls to `evaluate` before any `configure` use the policy built from the
/// empty configuration. The expansion contains `wit-bindgen`'s ABI glue,
/// which is `unsafe` code: a policy crate may `deny(unsafe_code)` but not
/// `forbid` it.
#[macro_export]
macro_rules! export_correlation_policy {
    ($ty:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct UmbraCorrelationPolicyExport;

            ::std::thread_local! {
                static POLICY: $crate::__private::RefCell<::std::option::Option<$ty>> =
                    const { $crate::__private::RefCell::new(::std::option::Option::None) };
            }

            impl $crate::bindings::correlation::exports::umbra::policy::correlation::Guest for UmbraCorrelationPolicyExport {
                fn configure(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::configure(
                        &POLICY,
                        &config,
                        <$ty as $crate::correlation::CorrelationPolicy>::configure,
                    )
                }

                fn evaluate(
                    input: $crate::bindings::types::Observation,
                ) -> $crate::bindings::types::CorrelationResult {
                    let input = $crate::Observation::from(input);
                    let output = $crate::__private::with(
                        &POLICY,
                        <$ty as $crate::correlation::CorrelationPolicy>::configure,
                        |policy| <$ty as $crate::correlation::CorrelationPolicy>::evaluate(policy, &input),
                    );
                    output.into()
                }
            }

            $crate::__export_correlation_policy_impl!(UmbraCorrelationPolicyExport with_types_in $crate::bindings::correlation);
        };
    };
}
