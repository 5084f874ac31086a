//! The crate's only `unsafe` code, kept to two wasmtime calls whose
//! preconditions the callers cannot state in types.

use wasmtime::component::{
    Component, ComponentNamedList, ComponentType, Func, Lift, Lower, TypedFunc,
};
use wasmtime::{AsContext, AsContextMut};

use crate::lower;

/// Loads a compiled component written by [`Component::serialize`].
///
/// # Safety argument
///
/// `Component::deserialize` runs the machine code it is given, so the bytes
/// must come from `Component::serialize` of a compatible engine. The only
/// caller is the on-disk cache, which reads files from the cache directory
/// this process owns (the same trust as the binary itself), under a
/// directory named after this engine's compatibility hash, written whole by
/// the cache (temporary file, then rename), whose SHA-256 checksum it has
/// just verified. Wasmtime also checks the header for version and
/// configuration compatibility.
pub(crate) fn deserialize(
    engine: &wasmtime::Engine,
    payload: &[u8],
) -> wasmtime::Result<Component> {
    // SAFETY: see the function's documentation: the bytes are an intact
    // `Component::serialize` output of an engine with this configuration.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, payload)
    }
}

/// A family of borrowed input records of [`lower`], one per lifetime.
pub(crate) trait Borrowed: 'static {
    /// The record borrowing for `'a`.
    type Of<'a>: ComponentType + Lower;
}

/// An exported function taking one borrowed input record, type-checked once,
/// when the instance is created, against the records of [`lower`].
///
/// `Func::typed` would check the types on every call (about 170 ns for the
/// observation record, over 10 % of a small call); the check's result
/// depends only on the Rust types and the component, not on lifetimes, so
/// one check per instance is enough.
pub(crate) struct CheckedFunc<I, R> {
    func: Func,
    _types: std::marker::PhantomData<fn(I) -> R>,
}

impl<I, R> CheckedFunc<I, R>
where
    I: Borrowed,
    R: Lift + 'static,
    (R,): ComponentNamedList + Lift,
{
    /// Checks that `func` takes an `I` and returns `R`.
    ///
    /// # Errors
    ///
    /// Wasmtime's type error if it does not.
    pub(crate) fn new(store: impl AsContext, func: Func) -> wasmtime::Result<Self> {
        func.typed::<(&I::Of<'static>,), (R,)>(store)?;
        Ok(Self {
            func,
            _types: std::marker::PhantomData,
        })
    }

    /// Calls the function on `input`.
    ///
    /// # Errors
    ///
    /// Whatever the call traps with.
    pub(crate) fn call(
        &self,
        mut store: impl AsContextMut,
        input: &I::Of<'_>,
    ) -> wasmtime::Result<R> {
        // SAFETY: `new` type-checked this very `Func` against
        // `(&I::Of<'static>,) -> (R,)`; the type differs here only in
        // lifetimes, which play no part in component-model types.
        #[allow(unsafe_code)]
        let typed = unsafe { TypedFunc::<(&I::Of<'_>,), (R,)>::new_unchecked(self.func) };
        let (out,) = typed.call(store.as_context_mut(), (input,))?;
        Ok(out)
    }
}

/// The observation, as [`lower::Observation`].
pub(crate) struct ObservationInput;

impl Borrowed for ObservationInput {
    type Of<'a> = lower::Observation<'a>;
}

/// The failover input, as [`lower::FailoverInput`].
pub(crate) struct FailoverInputs;

impl Borrowed for FailoverInputs {
    type Of<'a> = lower::FailoverInput<'a>;
}

/// An exported function taking an observation.
pub(crate) type ObservationFunc<R> = CheckedFunc<ObservationInput, R>;
