//! Errors of the policy runtime: why a policy could not be loaded, and why
//! the engine could not be built.
//!
//! A policy that *runs* and misbehaves is not an error of this layer: the
//! native fallback answers and the misbehaviour is a [`Fault`](crate::Fault)
//! recorded on the answer. Errors here are what the caller of `load`,
//! `promote` or `PolicyEngine::new` gets back.

use std::fmt;
use std::path::PathBuf;

use crate::PolicyKind;

/// Result of the policy runtime's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the policy runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a valid WebAssembly component, or Cranelift could not
    /// compile them. The policy author is at fault (or handed us the wrong
    /// file).
    #[error("policy `{policy}` does not compile: {message}")]
    Compile {
        /// Name and version of the policy.
        policy: String,
        /// Wasmtime's explanation.
        message: String,
    },

    /// The component breaks the sandbox's rules: it imports something the
    /// host does not provide (filesystem, sockets, clocks, ...), exports no
    /// policy interface, or was built against an incompatible version of
    /// `umbra:policy`. Every problem is listed. The policy author is at
    /// fault.
    #[error("policy `{policy}` refused at load: {}", ListProblems(.problems))]
    Refused {
        /// Name and version of the policy.
        policy: String,
        /// Every rule the component breaks.
        problems: Vec<LoadProblem>,
    },

    /// The component is a policy of another kind than the one it was loaded
    /// as. The operator (or whoever placed the file) is at fault.
    #[error("policy `{policy}` is a {found} policy, but was loaded as a {expected} policy")]
    WrongKind {
        /// Name and version of the policy.
        policy: String,
        /// The kind the caller asked for.
        expected: PolicyKind,
        /// The kind the component exports.
        found: PolicyKind,
    },

    /// The policy's own `configure` refused its configuration. The operator
    /// who wrote the configuration is at fault.
    #[error("policy `{policy}` refused its configuration: {message}")]
    ConfigRejected {
        /// Name and version of the policy.
        policy: String,
        /// What the policy said was wrong.
        message: String,
    },

    /// The native fallback's configuration is invalid (unknown key, bad
    /// value). The operator is at fault; every problem is listed.
    #[error("invalid {kind} fallback configuration: {message}")]
    FallbackConfig {
        /// The kind whose fallback configuration is wrong.
        kind: PolicyKind,
        /// Every problem, as reported by `umbra-policy-logic`.
        message: String,
    },

    /// The policy compiled and linked but faulted while being validated
    /// (instantiate, configure, one evaluation on a canned input). The policy
    /// author is at fault; the previous version, if any, stays active.
    #[error("policy `{policy}` failed validation: {fault}")]
    Validation {
        /// Name and version of the policy.
        policy: String,
        /// What went wrong, classified.
        fault: crate::Fault,
    },

    /// Per-policy limits are out of range (for instance a memory cap above
    /// the engine's `max_memory_bytes`). The operator is at fault; every
    /// problem is listed.
    #[error("invalid limits for {scope}: {}", .problems.join("; "))]
    InvalidLimits {
        /// The policy (`name@version`) or the kind whose settings are wrong.
        scope: String,
        /// Every problem.
        problems: Vec<String>,
    },

    /// There is no shadow candidate to promote or discard. The caller is at
    /// fault.
    #[error("no {0} candidate is running in shadow mode")]
    NoCandidate(PolicyKind),

    /// Reading a policy file or the compilation cache failed. The host's
    /// environment (permissions, disk) is at fault.
    #[error("{action} `{}`", path.display())]
    Io {
        /// What was being done, e.g. "reading policy".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Wasmtime refused the engine configuration or failed in a way that is
    /// not the policy's doing (for example the pooling allocator could not
    /// reserve its memory). The host's configuration or environment is at
    /// fault.
    #[error("WebAssembly engine: {0}")]
    Engine(String),

    /// A blocking task of the runtime panicked or was cancelled. A bug in the
    /// runtime.
    #[error("policy runtime task failed: {0}")]
    Task(String),
}

/// One rule a component breaks, found at load time.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum LoadProblem {
    /// An import the sandbox refuses on principle (filesystem, sockets, HTTP,
    /// clocks, randomness).
    ForbiddenImport {
        /// The import, as the component names it (e.g.
        /// `wasi:filesystem/types@0.2.6`).
        import: String,
        /// Why it is refused.
        reason: String,
    },
    /// An import the sandbox does not know.
    UnknownImport {
        /// The import, as the component names it.
        import: String,
    },
    /// The component was built against a version of `umbra:policy` the host
    /// does not speak.
    IncompatibleVersion {
        /// The interface concerned, e.g. `umbra:policy/drift`.
        interface: String,
        /// The version the component uses.
        found: String,
        /// The version the host implements.
        supported: String,
    },
    /// The component exports none of `umbra:policy/{drift,correlation,failover}`.
    NoPolicyExport {
        /// What it exports instead.
        exports: Vec<String>,
    },
    /// The component exports more than one policy interface.
    SeveralPolicyExports {
        /// The policy interfaces it exports.
        exports: Vec<String>,
    },
    /// The imports are allowed one by one but do not link (wrong function
    /// signatures, for instance).
    Link {
        /// Wasmtime's explanation.
        message: String,
    },
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ForbiddenImport { import, reason } => {
                write!(f, "it imports `{import}` ({reason})")
            }
            Self::UnknownImport { import } => write!(
                f,
                "it imports `{import}`, which the sandbox does not provide \
                 (policies may import only `umbra:policy/log` and the WASI \
                 interfaces Rust's standard library needs)"
            ),
            Self::IncompatibleVersion {
                interface,
                found,
                supported,
            } => write!(
                f,
                "it was built against `{interface}@{found}`, but this host \
                 implements `{interface}@{supported}` (compatible versions: {})",
                crate::version::compatible_range()
            ),
            Self::NoPolicyExport { exports } => write!(
                f,
                "it exports no policy interface (umbra:policy/drift, \
                 correlation or failover); it exports [{}]",
                exports.join(", ")
            ),
            Self::SeveralPolicyExports { exports } => {
                write!(
                    f,
                    "it exports several policy interfaces: {}",
                    exports.join(", ")
                )
            }
            Self::Link { message } => write!(f, "its imports do not link: {message}"),
        }
    }
}

struct ListProblems<'a>(&'a [LoadProblem]);

impl fmt::Display for ListProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
