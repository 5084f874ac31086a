//! The sandbox a policy runs in: what it may import, the state its store
//! carries (memory cap, log attribution), and the linker that provides
//! `umbra:policy/log` plus deny-everything WASI stubs — nothing else.
//!
//! # What a Rust `wasm32-wasip2` policy imports, and what we do about it
//!
//! Measured on the default policies and on a minimal `cdylib` built with
//! Rust 1.95: even a policy that never does I/O imports, through the Rust
//! standard library and wasi-libc, `wasi:cli/{environment, exit, stdin,
//! stdout, stderr, terminal-input, terminal-output, terminal-stdin,
//! terminal-stdout, terminal-stderr}` and `wasi:io/{error, poll, streams}`
//! (`@0.2.x`). A policy using `HashMap::new()` also imports
//! `wasi:random/insecure-seed`; one calling `Instant::now()` or
//! `SystemTime::now()` imports `wasi:clocks/*`; one calling `std::fs`
//! imports `wasi:filesystem/{types, preopens}`; one opening a `TcpStream`
//! imports `wasi:sockets/*`.
//!
//! The sandbox therefore provides (see [`wasi`]):
//! - the environment: empty (no variables, no arguments, no working
//!   directory);
//! - stdout and stderr: streams whose lines become log lines of the policy
//!   (stdout at info, stderr — where panics print — at warn), under the same
//!   rate limit as `umbra:policy/log`;
//! - stdin: always closed; no terminals;
//! - `exit`: a trap;
//! - `wasi:random/insecure-seed`: a *fixed* seed, so that `HashMap`
//!   works and iterates identically on every run (policies must be
//!   deterministic; hash flooding is not a threat inside a sandbox fed by the
//!   host).
//!
//! And it refuses at load, naming the import, every component that imports
//! `wasi:filesystem/*`, `wasi:sockets/*`, `wasi:http/*`, `wasi:clocks/*`
//! (time comes in the input: `now-ms`), `wasi:random/{random, insecure}`,
//! or anything else it does not know. Rust's standard library does *not*
//! force `wasi:filesystem/preopens` on a policy that does not touch the
//! filesystem, so there is no filesystem stub at all.

pub(crate) mod log;
pub(crate) mod wasi;

use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::error::LoadProblem;
use crate::policy::PolicyId;
use crate::version::{self, HOST_VERSION, PACKAGE};
use crate::{Engine, PolicyKind};

/// What a store carries: who the policy is (for log attribution) and the
/// per-call limits.
pub(crate) struct HostState {
    /// The policy this store runs, for log lines.
    pub(crate) policy: Arc<PolicyId>,
    /// Rate limit shared by every instance of the policy.
    pub(crate) log: Arc<log::LogLimiter>,
    /// The memory cap, enforced by wasmtime through [`wasmtime::ResourceLimiter`].
    pub(crate) limiter: MemoryLimiter,
    /// Partial line written to stdout.
    pub(crate) stdout: Vec<u8>,
    /// Partial line written to stderr.
    pub(crate) stderr: Vec<u8>,
}

impl HostState {
    pub(crate) fn new(policy: Arc<PolicyId>, log: Arc<log::LogLimiter>, memory_cap: usize) -> Self {
        Self {
            policy,
            log,
            limiter: MemoryLimiter::new(memory_cap),
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }
}

/// Refuses linear memory growth past the policy's cap, and table growth past
/// a fixed bound. Growth past the cap traps at once with
/// [`MemoryCapExceeded`] rather than returning -1 to the guest: a Rust guest
/// would abort on the failed allocation anyway, and trapping here lets the
/// fault be reported as what it is (out of memory) rather than as a generic
/// `unreachable`.
pub(crate) struct MemoryLimiter {
    cap: usize,
}

/// Most table elements a policy may have (functions in its indirect-call
/// table); generous for any real policy.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    pub(crate) fn new(cap: usize) -> Self {
        Self { cap }
    }
}

/// The error a memory growth past the cap traps with.
#[derive(Debug, thiserror::Error)]
#[error("linear memory would grow to {desired} bytes, past the policy's cap of {cap} bytes")]
pub(crate) struct MemoryCapExceeded {
    pub(crate) desired: usize,
    pub(crate) cap: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            return Err(wasmtime::Error::new(MemoryCapExceeded {
                desired,
                cap: self.cap,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The error `wasi:cli/exit` traps with.
#[derive(Debug, thiserror::Error)]
#[error("the policy called `exit` ({0})")]
pub(crate) struct GuestExit(pub(crate) String);

/// How the sandbox treats one imported interface.
enum ImportRule {
    /// Provided by the linker.
    Provided,
    /// Refused on principle, for this reason.
    Forbidden(&'static str),
}

fn wasi_rule(package: &str, interface: &str) -> Option<ImportRule> {
    use ImportRule::{Forbidden, Provided};
    Some(match (package, interface) {
        ("wasi:io", "error" | "poll" | "streams") => Provided,
        (
            "wasi:cli",
            "environment" | "exit" | "stdin" | "stdout" | "stderr" | "terminal-input"
            | "terminal-output" | "terminal-stdin" | "terminal-stdout" | "terminal-stderr",
        ) => Provided,
        ("wasi:random", "insecure-seed") => Provided,
        ("wasi:random", _) => Forbidden(
            "randomness: policies must decide the same way on the same input; \
             `HashMap` is fine, it only needs `insecure-seed`",
        ),
        ("wasi:filesystem", _) => Forbidden("filesystem access: policies never do I/O"),
        ("wasi:sockets", _) => Forbidden("network access: policies never do I/O"),
        ("wasi:http", _) => Forbidden("HTTP access: policies never do I/O"),
        ("wasi:clocks", _) => Forbidden(
            "clock access: policies are pure functions of their input; \
             use the input's `now-ms`",
        ),
        _ => return None,
    })
}

/// What the screen learned about a component that passed it.
#[derive(Debug, Clone)]
pub(crate) struct Screened {
    /// The kind of policy it exports.
    pub(crate) kind: PolicyKind,
    /// The `umbra:policy` version it was built against.
    pub(crate) wit_version: String,
    /// Every import, as named by the component.
    pub(crate) imports: Vec<String>,
}

/// Checks a compiled component against the sandbox's rules before anything
/// is instantiated: every import must be one the sandbox provides, the
/// component must export exactly one policy interface, and every
/// `umbra:policy` name must be semver-compatible with [`HOST_VERSION`].
///
/// Returns every problem found, not the first.
pub(crate) fn screen(engine: &Engine, component: &Component) -> Result<Screened, Vec<LoadProblem>> {
    let ty = component.component_type();
    let mut problems = Vec::new();
    let mut imports = Vec::new();

    for (name, _) in ty.imports(engine) {
        imports.push(name.to_owned());
        let Some(parsed) = version::split(name) else {
            problems.push(LoadProblem::UnknownImport {
                import: name.to_owned(),
            });
            continue;
        };
        if parsed.package == PACKAGE {
            match (parsed.interface, parsed.version) {
                ("log" | "types", Some(found)) if version::is_compatible(found) => {}
                ("log" | "types", Some(found)) => problems.push(LoadProblem::IncompatibleVersion {
                    interface: parsed.path.to_owned(),
                    found: found.to_owned(),
                    supported: HOST_VERSION.to_owned(),
                }),
                _ => problems.push(LoadProblem::UnknownImport {
                    import: name.to_owned(),
                }),
            }
            continue;
        }
        match wasi_rule(parsed.package, parsed.interface) {
            Some(ImportRule::Provided) => {}
            Some(ImportRule::Forbidden(reason)) => problems.push(LoadProblem::ForbiddenImport {
                import: name.to_owned(),
                reason: reason.to_owned(),
            }),
            None => problems.push(LoadProblem::UnknownImport {
                import: name.to_owned(),
            }),
        }
    }

    let mut exports = Vec::new();
    let mut policies = Vec::new();
    for (name, item) in ty.exports(engine) {
        exports.push(name.to_owned());
        let Some(parsed) = version::split(name) else {
            continue;
        };
        if parsed.package != PACKAGE || !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            continue;
        }
        let Ok(kind) = parsed.interface.parse::<PolicyKind>() else {
            continue;
        };
        match parsed.version {
            Some(found) if version::is_compatible(found) => policies.push((kind, found.to_owned())),
            found => {
                problems.push(LoadProblem::IncompatibleVersion {
                    interface: parsed.path.to_owned(),
                    found: found.unwrap_or("(none)").to_owned(),
                    supported: HOST_VERSION.to_owned(),
                });
                // Still a policy export: do not also claim there is none.
                policies.push((kind, found.unwrap_or("").to_owned()));
            }
        }
    }
    let chosen = match policies.as_slice() {
        [] => {
            problems.push(LoadProblem::NoPolicyExport { exports });
            None
        }
        [one] => Some(one.clone()),
        several => {
            problems.push(LoadProblem::SeveralPolicyExports {
                exports: several
                    .iter()
                    .map(|(kind, v)| format!("{PACKAGE}/{}@{v}", kind.as_str()))
                    .collect(),
            });
            None
        }
    };

    match chosen {
        Some((kind, wit_version)) if problems.is_empty() => Ok(Screened {
            kind,
            wit_version,
            imports,
        }),
        _ => Err(problems),
    }
}
