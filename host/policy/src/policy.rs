//! One loaded policy version: compiled, screened, linked, validated, with its
//! pool of idle instances and its fault record.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::Component;

use crate::engine::{CompileSource, PolicyEngine};
use crate::fault::{Fault, FaultCounters, FaultCounts, FaultKind};
use crate::kind::Kind;
use crate::sandbox::{self, HostState, log::LogLimiter};
use crate::{Error, OutputLimits, PolicyKind, Result};

/// Who a policy is: kind, name and version as the operator gave them, and
/// the digest of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PolicyId {
    /// Drift, correlation or failover.
    pub kind: PolicyKind,
    /// The policy's name.
    pub name: String,
    /// The policy's version.
    pub version: String,
    /// SHA-256 of the component, in hex.
    pub digest: String,
    /// The `umbra:policy` version the component was built against.
    pub wit_version: String,
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Limits of one policy, per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyLimits {
    /// Wall-clock time one evaluation (`evaluate` or `decide`) may take, in
    /// microseconds. Instantiation plus `configure`, and the validation call
    /// of a new version, get at least 50 ms.
    pub deadline_micros: u64,
    /// Most linear memory the policy may have, in bytes; at most the
    /// engine's `max_memory_bytes`.
    pub memory_bytes: u64,
    /// Faults in a row after which the policy is quarantined (the fallback
    /// answers until the policy is reloaded).
    pub quarantine_after: u32,
    /// Idle instances kept for reuse; more concurrent callers instantiate
    /// fresh ones, which are dropped after the call.
    pub max_idle_instances: u32,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        Self {
            deadline_micros: 5_000,
            memory_bytes: 16 << 20,
            quarantine_after: 3,
            max_idle_instances: 4,
        }
    }
}

impl PolicyLimits {
    /// The deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_micros(self.deadline_micros)
    }

    pub(crate) fn problems(&self, engine: &PolicyEngine) -> Vec<String> {
        let mut problems = Vec::new();
        if !(10..=10_000_000).contains(&self.deadline_micros) {
            problems.push("deadline_micros must be in [10, 10000000]".to_owned());
        }
        if self.memory_bytes < (64 << 10) || self.memory_bytes > engine.config().max_memory_bytes {
            problems.push(format!(
                "memory_bytes must be in [64 KiB, {} bytes (the engine's max_memory_bytes)]",
                engine.config().max_memory_bytes
            ));
        }
        if self.quarantine_after == 0 {
            problems.push("quarantine_after must be at least 1".to_owned());
        }
        problems
    }
}

/// A policy to load: its bytes, who it is, and optionally its configuration
/// and limits (the runtime's settings for its kind otherwise).
#[derive(Clone, Debug)]
pub struct PolicySource {
    /// The policy's name.
    pub name: String,
    /// The policy's version.
    pub version: String,
    /// The component.
    pub bytes: Arc<[u8]>,
    /// Configuration passed to `configure`; `None` takes the runtime's
    /// settings for the policy's kind.
    pub config: Option<Vec<(String, String)>>,
    /// Limits; `None` takes the runtime's settings for the policy's kind.
    pub limits: Option<PolicyLimits>,
    /// The kind the caller expects; loading fails if the component is of
    /// another kind. `None` accepts whatever it exports.
    pub expected_kind: Option<PolicyKind>,
}

impl PolicySource {
    /// A source with the runtime's settings and any kind.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        bytes: impl Into<Arc<[u8]>>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            bytes: bytes.into(),
            config: None,
            limits: None,
            expected_kind: None,
        }
    }

    /// Sets the configuration.
    pub fn with_config(mut self, config: Vec<(String, String)>) -> Self {
        self.config = Some(config);
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: PolicyLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Requires a kind.
    pub fn expecting(mut self, kind: PolicyKind) -> Self {
        self.expected_kind = Some(kind);
        self
    }

    pub(crate) fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A component that compiled and passed the sandbox's screen, not yet
/// validated for its kind.
pub(crate) struct Screened {
    pub(crate) id: Arc<PolicyId>,
    pub(crate) component: Component,
    pub(crate) compiled: CompileSource,
    pub(crate) imports: Vec<String>,
}

/// Compiles `source` and screens its imports and exports.
///
/// # Errors
///
/// [`Error::Compile`], [`Error::Refused`], [`Error::WrongKind`].
pub(crate) fn screen(engine: &PolicyEngine, source: &PolicySource) -> Result<Screened> {
    let label = source.label();
    let (component, digest, compiled) = engine.compile(&label, &source.bytes)?;
    let screened =
        sandbox::screen(engine.wasmtime(), &component).map_err(|problems| Error::Refused {
            policy: label.clone(),
            problems,
        })?;
    if let Some(expected) = source.expected_kind
        && expected != screened.kind
    {
        return Err(Error::WrongKind {
            policy: label,
            expected,
            found: screened.kind,
        });
    }
    Ok(Screened {
        id: Arc::new(PolicyId {
            kind: screened.kind,
            name: source.name.clone(),
            version: source.version.clone(),
            digest,
            wit_version: screened.wit_version,
        }),
        component,
        compiled,
        imports: screened.imports,
    })
}

/// The least time instantiation plus `configure` (and the validation call
/// of a new version) is given, whatever the policy's deadline: these are
/// mostly host work and page faults on first touch, which a busy machine
/// can stretch past a deadline of a few milliseconds meant for evaluations.
/// It still bounds a policy whose start function or `configure` loops.
const INSTANTIATE_DEADLINE_FLOOR: Duration = Duration::from_millis(50);

/// One live instance: its store and bindings. Dropped (never reused) after
/// any fault.
pub(crate) struct Instance<K: Kind> {
    store: Store<HostState>,
    bindings: K::Bindings,
}

/// A loaded, validated policy version.
pub(crate) struct Loaded<K: Kind> {
    pub(crate) id: Arc<PolicyId>,
    engine: PolicyEngine,
    pre: K::Pre,
    config: Vec<(String, String)>,
    imports: Vec<String>,
    limits: PolicyLimits,
    output_limits: OutputLimits,
    deadline_ticks: u64,
    instantiate_ticks: u64,
    log: Arc<LogLimiter>,
    // A synchronous mutex: held only to push or pop, never across a call.
    idle: Mutex<Vec<Instance<K>>>,
    health: Health,
}

#[derive(Debug, Default)]
struct Health {
    evaluations: AtomicU64,
    consecutive_faults: AtomicU32,
    quarantined: AtomicBool,
    faults: FaultCounters,
}

/// How one policy version is doing.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PolicyStatus {
    /// The policy.
    pub id: PolicyId,
    /// Whether it is quarantined (the fallback answers in its place).
    pub quarantined: bool,
    /// Calls made to it, faulted or not.
    pub evaluations: u64,
    /// Faults in a row, reset by a good answer.
    pub consecutive_faults: u32,
    /// Faults by kind.
    pub faults: FaultCounts,
    /// Its configuration.
    pub config: Vec<(String, String)>,
    /// Its limits.
    pub limits: PolicyLimits,
    /// What the component imports (all provided by the sandbox).
    pub imports: Vec<String>,
}

/// Settings of the log rate limit of each policy version.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogRate {
    pub(crate) per_second: u32,
    pub(crate) burst: u32,
}

impl<K: Kind> Loaded<K> {
    /// Links the screened component for kind `K`, then validates it:
    /// instantiate, configure, one evaluation of the canned input. The
    /// instance used for validation becomes the first idle instance.
    ///
    /// Runs guest code: call it off the decision path.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] if the imports do not link,
    /// [`Error::ConfigRejected`] if `configure` refuses the configuration,
    /// [`Error::Validation`] if anything faults.
    pub(crate) fn validate(
        engine: &PolicyEngine,
        screened: Screened,
        config: Vec<(String, String)>,
        limits: PolicyLimits,
        output_limits: OutputLimits,
        log: LogRate,
    ) -> Result<Self> {
        let id = screened.id;
        tracing::debug!(
            policy = %id.name, version = %id.version, kind = %id.kind, digest = %id.digest,
            compiled = ?screened.compiled, "validating policy"
        );
        let link_error = |e: wasmtime::Error| Error::Refused {
            policy: id.to_string(),
            problems: vec![crate::error::LoadProblem::Link {
                message: format!("{e:#}"),
            }],
        };
        let pre = engine
            .linker()
            .instantiate_pre(&screened.component)
            .map_err(link_error)?;
        let pre = K::pre(pre).map_err(link_error)?;
        let loaded = Self {
            id: id.clone(),
            engine: engine.clone(),
            pre,
            config,
            imports: screened.imports,
            limits,
            output_limits,
            deadline_ticks: engine.deadline_ticks(limits.deadline()),
            instantiate_ticks: engine
                .deadline_ticks(limits.deadline().max(INSTANTIATE_DEADLINE_FLOOR)),
            log: Arc::new(LogLimiter::new(log.per_second, log.burst)),
            idle: Mutex::new(Vec::new()),
            health: Health::default(),
        };
        let mut instance = match loaded.instantiate() {
            Ok(instance) => instance,
            Err(InstantiateError::Rejected(message)) => {
                return Err(Error::ConfigRejected {
                    policy: id.to_string(),
                    message,
                });
            }
            Err(InstantiateError::Fault(fault)) => {
                return Err(Error::Validation {
                    policy: id.to_string(),
                    fault,
                });
            }
        };
        let canned = K::canned_input();
        let input = K::to_wit(&canned);
        loaded
            // The validation call gets the instantiation's looser deadline:
            // it is off the decision path, its first touches of memory take
            // page faults, and a reload usually runs while Cranelift keeps
            // every core busy. It still catches a policy that loops.
            .call_instance(&mut instance, &input, loaded.instantiate_ticks)
            .map_err(|fault| Error::Validation {
                policy: id.to_string(),
                fault,
            })?;
        loaded.release(instance);
        Ok(loaded)
    }

    /// A fresh instance from the `InstancePre`, configured.
    pub(crate) fn instantiate(&self) -> Result<Instance<K>, InstantiateError> {
        let cap = usize::try_from(self.limits.memory_bytes).unwrap_or(usize::MAX);
        let mut store = Store::new(
            self.engine.wasmtime(),
            HostState::new(self.id.clone(), self.log.clone(), cap),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.instantiate_ticks);
        let fault =
            |e: wasmtime::Error| InstantiateError::Fault(Fault::from_wasmtime(&self.id, &e));
        let bindings = K::instantiate(&self.pre, &mut store).map_err(fault)?;
        match K::configure(&bindings, &mut store, &self.config).map_err(fault)? {
            Ok(()) => Ok(Instance { store, bindings }),
            Err(message) => Err(InstantiateError::Rejected(message)),
        }
    }

    /// One call on `instance`, with the deadline armed and the output
    /// checked. On `Err` the instance must be dropped.
    fn call_instance(
        &self,
        instance: &mut Instance<K>,
        input: &K::WitInput<'_>,
        deadline_ticks: u64,
    ) -> Result<K::Output, Fault> {
        instance.store.set_epoch_deadline(deadline_ticks);
        let output = K::call(&instance.bindings, &mut instance.store, input)
            .map_err(|e| Fault::from_wasmtime(&self.id, &e))?;
        K::check_output(&output, &self.output_limits)
            .map_err(|message| Fault::new(&self.id, FaultKind::InvalidOutput, message))?;
        Ok(output)
    }

    /// Returns a healthy instance to the idle pool (or drops it if the pool
    /// is full).
    fn release(&self, instance: Instance<K>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.limits.max_idle_instances as usize {
            idle.push(instance);
        }
    }

    /// Evaluates `input` on an idle instance (or a fresh one), recording the
    /// outcome. A faulted instance is dropped, never re-entered.
    pub(crate) fn call(&self, input: &K::WitInput<'_>) -> Result<K::Output, Fault> {
        self.health.evaluations.fetch_add(1, Ordering::Relaxed);
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let result = match idle {
            Some(instance) => Ok(instance),
            None => self.instantiate().map_err(|e| match e {
                InstantiateError::Fault(fault) => fault,
                InstantiateError::Rejected(message) => Fault::new(
                    &self.id,
                    FaultKind::ConfigRejected,
                    format!("configure refused the configuration it had accepted: {message}"),
                ),
            }),
        }
        .and_then(|mut instance| {
            match self.call_instance(&mut instance, input, self.deadline_ticks) {
                Ok(output) => {
                    self.release(instance);
                    Ok(output)
                }
                Err(fault) => {
                    // Whatever it printed before faulting is logged; then the
                    // instance is dropped.
                    instance.store.data_mut().flush_stdio(false);
                    instance.store.data_mut().flush_stdio(true);
                    Err(fault)
                }
            }
        });
        match &result {
            Ok(_) => self.health.consecutive_faults.store(0, Ordering::Relaxed),
            Err(fault) => self.record_fault(fault),
        }
        result
    }

    fn record_fault(&self, fault: &Fault) {
        self.health.faults.record(fault.kind);
        let in_a_row = self
            .health
            .consecutive_faults
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        let quarantine = in_a_row >= self.limits.quarantine_after
            && !self.health.quarantined.swap(true, Ordering::AcqRel);
        tracing::warn!(
            policy = %self.id.name, version = %self.id.version, kind = %self.id.kind,
            fault = %fault.kind, in_a_row, "policy fault, the native fallback answers: {}",
            crate::sandbox::log::cut(&fault.message)
        );
        if quarantine {
            // Idle instances are healthy but the policy is out of service.
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
            tracing::error!(
                policy = %self.id.name, version = %self.id.version, kind = %self.id.kind,
                in_a_row, "policy quarantined: the native fallback answers until it is reloaded"
            );
        }
    }

    pub(crate) fn is_quarantined(&self) -> bool {
        self.health.quarantined.load(Ordering::Acquire)
    }

    pub(crate) fn status(&self) -> PolicyStatus {
        PolicyStatus {
            id: (*self.id).clone(),
            quarantined: self.is_quarantined(),
            evaluations: self.health.evaluations.load(Ordering::Relaxed),
            consecutive_faults: self.health.consecutive_faults.load(Ordering::Relaxed),
            faults: self.health.faults.snapshot(),
            config: self.config.clone(),
            limits: self.limits,
            imports: self.imports.clone(),
        }
    }

    /// Drops every idle instance (benchmarks: measure fresh instantiation).
    pub(crate) fn drain_idle(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Why a fresh instance could not be made.
pub(crate) enum InstantiateError {
    /// Instantiation or `configure` faulted.
    Fault(Fault),
    /// `configure` returned an error.
    Rejected(String),
}
