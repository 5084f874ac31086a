//! The crate's only `unsafe` code, kept to two wasmtime calls whose
//! preconditions the callers cannot state in types.

use wasmtime::component::{Component, ComponentNamedList, Func, Lift, TypedFunc};
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

/// An exported function taking an observation, type-checked once, when the
/// instance is created, against the borrowed records of [`lower`].
///
/// `Func::typed` would check the types on every call (about 170 ns for the
/// observation record, over 10 % of a small call); the check's result
/// depends only on the Rust types and the component, not on lifetimes, so
/// one check per instance is enough.
pub(crate) struct ObservationFunc<R> {
    func: Func,
    _result: std::marker::PhantomData<fn() -> R>,
}

impl<R> ObservationFunc<R>
where
    R: Lift + 'static,
    (R,): ComponentNamedList + Lift,
{
    /// Checks that `func` takes an observation and returns `R`.
    ///
    /// # Errors
    ///
    /// Wasmtime's type error if it does not.
    pub(crate) fn new(store: impl AsContext, func: Func) -> wasmtime::Result<Self> {
        func.typed::<(&lower::Observation<'static>,), (R,)>(store)?;
        Ok(Self {
            func,
            _result: std::marker::PhantomData,
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
        input: &lower::Observation<'_>,
    ) -> wasmtime::Result<R> {
        // SAFETY: `new` type-checked this very `Func` against
        // `(&lower::Observation<'static>,) -> (R,)`; the type differs here
        // only in lifetimes, which play no part in component-model types.
        #[allow(unsafe_code)]
        let typed =
            unsafe { TypedFunc::<(&lower::Observation<'_>,), (R,)>::new_unchecked(self.func) };
        let (out,) = typed.call(store.as_context_mut(), (input,))?;
        Ok(out)
    }
}
