//! Failover policies: go or hold, from the drift and correlation results and
//! the predictor's probability. Implement [`FailoverPolicy`] and export it
//! with [`export_failover_policy!`](crate::export_failover_policy).
//!
//! The WIT function is `decide`; the trait calls it `evaluate` like the
//! other kinds, so every policy has the same shape.

pub use umbra_policy_logic::failover::*;

/// The trait, under the name the scaffold of `umbra policy new` uses.
pub use self::FailoverPolicy as Policy;

/// What a failover policy is given.
pub type Input = crate::FailoverInput;

/// What a failover policy answers.
pub type Output = crate::FailoverDecision;

/// The configuration of Umbra's default failover policy.
pub type Config = crate::FailoverConfig;

/// Umbra's default failover decision: what the default WebAssembly policy and
/// the host's native fallback answer.
pub use umbra_policy_logic::failover::failover as default_decision;

/// Export a type implementing this trait with
/// [`export_failover_policy!`](crate::export_failover_policy).
pub use crate::export_failover_policy as export;

/// A failover policy: decides go or hold. It is pure: whatever must survive
/// to the next evaluation (hysteresis, cooldown) goes into the decision's
/// `state` and comes back in the next input's.
///
/// The host calls `configure` once after loading the policy and on every
/// configuration change, then `evaluate` on every tick. An instance of the
/// implementing type holds the parsed configuration.
pub trait FailoverPolicy: Sized + 'static {
    /// Builds the policy from the operator's configuration (key/value pairs,
    /// in the order given).
    ///
    /// # Errors
    ///
    /// A message for the operator, listing every problem, when the
    /// configuration is refused; the host keeps the previous configuration.
    fn configure(config: &[(String, String)]) -> Result<Self, String>;

    /// Decides go or hold for `input`, and returns the state for the next
    /// evaluation.
    fn evaluate(&self, input: &Input) -> Output;
}

/// Exports a type implementing [`FailoverPolicy`](crate::FailoverPolicy) as
/// the component's `umbra:policy/failover` interface. Use it once, in the
/// policy crate's `lib.rs`:
///
/// ```rust,standalone_crate
/// use umbra_policy_sdk::{FailoverPolicy, FailoverInput, FailoverDecision};
///
/// struct MyFailover;
///
/// impl FailoverPolicy for MyFailover {
///     fn configure(_: &[(String, String)]) -> Result<Self, String> {
///         Ok(Self)
///     }
///
///     fn evaluate(&self, _: &FailoverInput) -> FailoverDecision {
///         FailoverDecision::default()
///     }
/// }
///
/// umbra_policy_sdk::export_failover_policy!(MyFailover);
/// ```
///
/// Calls to `evaluate` before any `configure` use the policy built from the
/// empty configuration. The expansion contains `wit-bindgen`'s ABI glue,
/// which is `unsafe` code: a policy crate may `deny(unsafe_code)` but not
/// `forbid` it.
#[macro_export]
macro_rules! export_failover_policy {
    ($ty:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct UmbraFailoverPolicyExport;

            ::std::thread_local! {
                static POLICY: $crate::__private::RefCell<::std::option::Option<$ty>> =
                    const { $crate::__private::RefCell::new(::std::option::Option::None) };
            }

            impl $crate::bindings::failover::exports::umbra::policy::failover::Guest for UmbraFailoverPolicyExport {
                fn configure(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::configure(
                        &POLICY,
                        &config,
                        <$ty as $crate::failover::FailoverPolicy>::configure,
                    )
                }

                fn decide(
                    input: $crate::bindings::types::FailoverInput,
                ) -> $crate::bindings::types::FailoverDecision {
                    let input = $crate::FailoverInput::from(input);
                    let output = $crate::__private::with(
                        &POLICY,
                        <$ty as $crate::failover::FailoverPolicy>::configure,
                        |policy| <$ty as $crate::failover::FailoverPolicy>::evaluate(policy, &input),
                    );
                    output.into()
                }
            }

            $crate::__export_failover_policy_impl!(UmbraFailoverPolicyExport with_types_in $crate::bindings::failover);
        };
    };
}
