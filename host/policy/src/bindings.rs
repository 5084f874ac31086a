//! Host bindings generated from `sdk/wit` (never edited by hand): one module
//! per policy world, sharing the `types` and `log` interfaces of the first.

pub(crate) mod drift {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "drift-policy",
    });
}

pub(crate) mod correlation {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "correlation-policy",
        with: {
            "umbra:policy/types": super::drift::umbra::policy::types,
            "umbra:policy/log": super::drift::umbra::policy::log,
        },
    });
}

pub(crate) mod failover {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "failover-policy",
        with: {
            "umbra:policy/types": super::drift::umbra::policy::types,
            "umbra:policy/log": super::drift::umbra::policy::log,
        },
    });
}

/// The WIT records, as the bindings see them.
pub(crate) use drift::umbra::policy::types;
