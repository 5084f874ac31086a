//! [`PolicyRuntime`]: the three policy slots, loading (off the decision
//! path), swapping, shadow mode, and the decisions themselves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use umbra_policy_logic as logic;

use crate::engine::PolicyEngine;
use crate::fault::Fault;
use crate::kind::{Correlation, Drift, Failover, Kind};
use crate::policy::{self, Loaded, LogRate, PolicyId, PolicyLimits, PolicySource};
use crate::slot::{Answer, ShadowConfig, Slot, SlotStatus};
use crate::{Error, PolicyKind, Result};

/// Caps on what a policy may answer; anything beyond is an invalid output
/// (a fault) and the fallback answers instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputLimits {
    /// Longest explanation, reason, signal name or detail, in bytes.
    pub max_text_bytes: usize,
    /// Most signals in a correlation result.
    pub max_signals: usize,
    /// Most entries in the failover state's `recent-go-ms` (the state comes
    /// back as input on the next call, so it must not grow without bound).
    pub max_state_entries: usize,
}

impl Default for OutputLimits {
    fn default() -> Self {
        Self {
            max_text_bytes: 4096,
            max_signals: 64,
            max_state_entries: 1024,
        }
    }
}

/// Settings of one kind of policy.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// Configuration passed to the policy's `configure`, unless the load
    /// gives its own. Passed on sorted by key.
    pub config: BTreeMap<String, String>,
    /// Configuration of the native fallback; `None` uses `config` (right
    /// when the policy is the default one or accepts its keys).
    pub fallback_config: Option<BTreeMap<String, String>>,
    /// Per-call limits, unless the load gives its own.
    pub limits: PolicyLimits,
}

impl PolicySettings {
    fn config_pairs(&self) -> Vec<(String, String)> {
        pairs(&self.config)
    }

    fn fallback_pairs(&self) -> Vec<(String, String)> {
        pairs(self.fallback_config.as_ref().unwrap_or(&self.config))
    }
}

fn pairs(map: &BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Settings of the runtime.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// The drift policy.
    pub drift: PolicySettings,
    /// The correlation policy.
    pub correlation: PolicySettings,
    /// The failover decision.
    pub failover: PolicySettings,
    /// Caps on answers.
    pub output: OutputLimits,
    /// Shadow-mode settings used when a candidate is loaded without its own.
    pub shadow: ShadowConfig,
    /// Log lines per second each policy version may write (after the burst).
    pub log_lines_per_second: u32,
    /// Log lines a policy version may write at once.
    pub log_burst: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            drift: PolicySettings::default(),
            correlation: PolicySettings::default(),
            failover: PolicySettings::default(),
            output: OutputLimits::default(),
            shadow: ShadowConfig::default(),
            log_lines_per_second: 10,
            log_burst: 50,
        }
    }
}

impl RuntimeConfig {
    /// The settings of one kind.
    pub fn settings(&self, kind: PolicyKind) -> &PolicySettings {
        match kind {
            PolicyKind::Drift => &self.drift,
            PolicyKind::Correlation => &self.correlation,
            PolicyKind::Failover => &self.failover,
        }
    }
}

/// Runs the drift, correlation and failover policies. Cheap to clone.
///
/// Decisions ([`PolicyRuntime::drift`], ...) are synchronous and never fail:
/// a policy that is missing, quarantined or faulting is replaced by the
/// native fallback, and the answer says who answered. A call runs guest code
/// for at most the policy's deadline (5 ms by default) plus one epoch tick.
#[derive(Clone)]
pub struct PolicyRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: PolicyEngine,
    /// Replaced as a whole by [`PolicyRuntime::set_config`]; read once per
    /// load.
    config: ArcSwap<RuntimeConfig>,
    /// Serialises [`PolicyRuntime::set_config`] (a synchronous mutex: no
    /// `.await` under it), so that two changes of different kinds do not
    /// lose one another.
    reconfigure: Mutex<()>,
    drift: Slot<Drift>,
    correlation: Slot<Correlation>,
    failover: Slot<Failover>,
}

impl std::fmt::Debug for PolicyRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyRuntime")
            .field("engine", &self.inner.engine)
            .finish_non_exhaustive()
    }
}

fn fallback_config<K: Kind>(settings: &PolicySettings) -> Result<K::FallbackConfig> {
    K::parse_fallback(&settings.fallback_pairs()).map_err(|message| Error::FallbackConfig {
        kind: K::KIND,
        message,
    })
}

/// Where a loaded policy goes.
#[derive(Clone, Copy, Debug)]
enum Destination {
    Active,
    Candidate(ShadowConfig),
}

impl PolicyRuntime {
    /// A runtime with no policy loaded: the native fallbacks answer.
    ///
    /// # Errors
    ///
    /// [`Error::FallbackConfig`] if a fallback configuration is invalid,
    /// [`Error::InvalidLimits`] if the limits of a kind do not fit the
    /// engine (every problem listed).
    pub fn new(engine: PolicyEngine, config: RuntimeConfig) -> Result<Self> {
        let mut problems = Vec::new();
        for kind in PolicyKind::ALL {
            for problem in config.settings(kind).limits.problems(&engine) {
                problems.push(format!("{kind}: {problem}"));
            }
        }
        if !problems.is_empty() {
            return Err(Error::InvalidLimits {
                scope: "the policy settings".to_owned(),
                problems,
            });
        }
        let drift = Slot::new(fallback_config::<Drift>(&config.drift)?);
        let correlation = Slot::new(fallback_config::<Correlation>(&config.correlation)?);
        let failover = Slot::new(fallback_config::<Failover>(&config.failover)?);
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                config: ArcSwap::from_pointee(config),
                reconfigure: Mutex::new(()),
                drift,
                correlation,
                failover,
            }),
        })
    }

    /// The shared engine.
    pub fn engine(&self) -> &PolicyEngine {
        &self.inner.engine
    }

    /// The runtime's settings (as last changed by
    /// [`PolicyRuntime::set_config`]).
    pub fn config(&self) -> Arc<RuntimeConfig> {
        self.inner.config.load_full()
    }

    /// Replaces the configuration policies of `kind` are given when they
    /// load without their own (the watcher's loads included), and that of
    /// the kind's native fallback unless the settings give the fallback
    /// its own. The active policy keeps the configuration it was loaded
    /// with until it is loaded again: reload it to apply `config`.
    ///
    /// # Errors
    ///
    /// [`Error::FallbackConfig`] listing every problem if the fallback
    /// would refuse `config`; nothing changes then.
    pub fn set_config(&self, kind: PolicyKind, config: &[(String, String)]) -> Result<()> {
        let _reconfigure = self
            .inner
            .reconfigure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut settings = RuntimeConfig::clone(&self.inner.config.load());
        let slot = match kind {
            PolicyKind::Drift => &mut settings.drift,
            PolicyKind::Correlation => &mut settings.correlation,
            PolicyKind::Failover => &mut settings.failover,
        };
        slot.config = config.iter().cloned().collect();
        if slot.fallback_config.is_none() {
            self.set_fallback_config(kind, config)?;
        }
        self.inner.config.store(Arc::new(settings));
        Ok(())
    }

    /// Whether a WebAssembly policy of `kind` is active (quarantined or
    /// not): when it is not, every answer of the kind is the native
    /// fallback's.
    pub fn has_policy(&self, kind: PolicyKind) -> bool {
        match kind {
            PolicyKind::Drift => self.inner.drift.active().is_some(),
            PolicyKind::Correlation => self.inner.correlation.active().is_some(),
            PolicyKind::Failover => self.inner.failover.active().is_some(),
        }
    }

    /// The drift decision for `observation`.
    pub fn drift(&self, observation: &logic::Observation) -> Answer<logic::DriftResult> {
        self.inner.drift.evaluate(observation)
    }

    /// The correlation decision for `observation`.
    pub fn correlation(
        &self,
        observation: &logic::Observation,
    ) -> Answer<logic::CorrelationResult> {
        self.inner.correlation.evaluate(observation)
    }

    /// The failover decision for `input`. The decision's `state` is what to
    /// pass in `input.state` next time.
    pub fn failover(&self, input: &logic::FailoverInput) -> Answer<logic::FailoverDecision> {
        self.inner.failover.evaluate(input)
    }

    /// Runs one case through the policy of `kind` (or its fallback).
    ///
    /// # Errors
    ///
    /// [`Error::Task`] naming the mismatch if the case's input is not the
    /// kind's (an observation for a failover policy, or the reverse).
    pub fn evaluate_case(
        &self,
        kind: PolicyKind,
        input: &logic::CaseInput,
    ) -> Result<Answer<logic::CaseOutput>> {
        let by = |answered_by: crate::AnsweredBy, value| Answer { value, answered_by };
        match (kind, input) {
            (PolicyKind::Drift, logic::CaseInput::Observation(o)) => {
                let a = self.drift(o);
                Ok(by(a.answered_by, logic::CaseOutput::Drift(a.value)))
            }
            (PolicyKind::Correlation, logic::CaseInput::Observation(o)) => {
                let a = self.correlation(o);
                Ok(by(a.answered_by, logic::CaseOutput::Correlation(a.value)))
            }
            (PolicyKind::Failover, logic::CaseInput::Failover(i)) => {
                let a = self.failover(i);
                Ok(by(a.answered_by, logic::CaseOutput::Failover(a.value)))
            }
            (kind, _) => Err(Error::Task(format!(
                "a {kind} policy cannot evaluate this case's input"
            ))),
        }
    }

    /// Compiles, screens and validates `source` on a blocking thread, then
    /// makes it the active policy of its kind. If anything fails, the
    /// previous version stays active and the error is also recorded in
    /// [`SlotStatus::last_reload_error`].
    ///
    /// # Errors
    ///
    /// Any [`Error`] of compiling, screening or validating.
    pub async fn load(&self, source: PolicySource) -> Result<Arc<PolicyId>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.load_blocking(source))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// [`PolicyRuntime::load`] for callers already off the async runtime
    /// (blocks for the compilation: up to seconds).
    ///
    /// # Errors
    ///
    /// As [`PolicyRuntime::load`].
    pub fn load_blocking(&self, source: PolicySource) -> Result<Arc<PolicyId>> {
        self.install(source, Destination::Active)
    }

    /// Like [`PolicyRuntime::load`], but runs the policy in shadow mode
    /// beside the active one (`shadow` defaults to the runtime's settings).
    ///
    /// # Errors
    ///
    /// As [`PolicyRuntime::load`].
    pub async fn load_candidate(
        &self,
        source: PolicySource,
        shadow: Option<ShadowConfig>,
    ) -> Result<Arc<PolicyId>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.load_candidate_blocking(source, shadow))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// [`PolicyRuntime::load_candidate`], blocking.
    ///
    /// # Errors
    ///
    /// As [`PolicyRuntime::load`].
    pub fn load_candidate_blocking(
        &self,
        source: PolicySource,
        shadow: Option<ShadowConfig>,
    ) -> Result<Arc<PolicyId>> {
        let shadow = shadow.unwrap_or(self.inner.config.load().shadow);
        self.install(source, Destination::Candidate(shadow))
    }

    fn install(&self, source: PolicySource, destination: Destination) -> Result<Arc<PolicyId>> {
        let result = policy::screen(&self.inner.engine, &source);
        let screened = match result {
            Ok(screened) => screened,
            Err(error) => {
                // The kind is unknown when screening fails: record the error
                // on the kind the caller expected, if any.
                if let Some(kind) = source.expected_kind {
                    self.record_error(kind, &error);
                }
                tracing::warn!(policy = %source.label(), %error, "policy load failed; the previous version stays");
                return Err(error);
            }
        };
        let kind = screened.id.kind;
        let result = match kind {
            PolicyKind::Drift => {
                self.validate_into(&self.inner.drift, source, screened, destination)
            }
            PolicyKind::Correlation => {
                self.validate_into(&self.inner.correlation, source, screened, destination)
            }
            PolicyKind::Failover => {
                self.validate_into(&self.inner.failover, source, screened, destination)
            }
        };
        if let Err(error) = &result {
            self.record_error(kind, error);
            tracing::warn!(%error, "policy load failed; the previous version stays");
        }
        result
    }

    fn validate_into<K: Kind>(
        &self,
        slot: &Slot<K>,
        source: PolicySource,
        screened: policy::Screened,
        destination: Destination,
    ) -> Result<Arc<PolicyId>> {
        let runtime_config = self.inner.config.load_full();
        let settings = runtime_config.settings(K::KIND);
        let limits = source.limits.unwrap_or(settings.limits);
        let problems = limits.problems(&self.inner.engine);
        if !problems.is_empty() {
            return Err(Error::InvalidLimits {
                scope: format!("policy `{}`", source.label()),
                problems,
            });
        }
        let config = source.config.unwrap_or_else(|| settings.config_pairs());
        let loaded = Loaded::<K>::validate(
            &self.inner.engine,
            screened,
            config,
            limits,
            runtime_config.output,
            LogRate {
                per_second: runtime_config.log_lines_per_second,
                burst: runtime_config.log_burst,
            },
        )?;
        Ok(match destination {
            Destination::Active => slot.activate(loaded),
            Destination::Candidate(shadow) => slot.set_candidate(loaded, shadow),
        })
    }

    fn record_error(&self, kind: PolicyKind, error: &Error) {
        match kind {
            PolicyKind::Drift => self.inner.drift.record_error(error),
            PolicyKind::Correlation => self.inner.correlation.record_error(error),
            PolicyKind::Failover => self.inner.failover.record_error(error),
        }
    }

    /// Promotes the shadow candidate of `kind` to active.
    ///
    /// # Errors
    ///
    /// [`Error::NoCandidate`] if no candidate runs.
    pub fn promote(&self, kind: PolicyKind) -> Result<Arc<PolicyId>> {
        match kind {
            PolicyKind::Drift => self.inner.drift.promote(),
            PolicyKind::Correlation => self.inner.correlation.promote(),
            PolicyKind::Failover => self.inner.failover.promote(),
        }
    }

    /// Stops the shadow candidate of `kind`.
    ///
    /// # Errors
    ///
    /// [`Error::NoCandidate`] if no candidate runs.
    pub fn discard_candidate(&self, kind: PolicyKind) -> Result<Arc<PolicyId>> {
        match kind {
            PolicyKind::Drift => self.inner.drift.discard_candidate(),
            PolicyKind::Correlation => self.inner.correlation.discard_candidate(),
            PolicyKind::Failover => self.inner.failover.discard_candidate(),
        }
    }

    /// Unloads the active policy of `kind`; the fallback answers from now on.
    /// Returns the policy unloaded, if there was one.
    pub fn unload(&self, kind: PolicyKind) -> Option<Arc<PolicyId>> {
        match kind {
            PolicyKind::Drift => self.inner.drift.unload(),
            PolicyKind::Correlation => self.inner.correlation.unload(),
            PolicyKind::Failover => self.inner.failover.unload(),
        }
    }

    /// Replaces the configuration of the native fallback of `kind`.
    ///
    /// # Errors
    ///
    /// [`Error::FallbackConfig`] listing every problem; the previous
    /// configuration stays.
    pub fn set_fallback_config(&self, kind: PolicyKind, config: &[(String, String)]) -> Result<()> {
        let err = |message| Error::FallbackConfig { kind, message };
        match kind {
            PolicyKind::Drift => self
                .inner
                .drift
                .set_fallback(Drift::parse_fallback(config).map_err(err)?),
            PolicyKind::Correlation => self
                .inner
                .correlation
                .set_fallback(Correlation::parse_fallback(config).map_err(err)?),
            PolicyKind::Failover => self
                .inner
                .failover
                .set_fallback(Failover::parse_fallback(config).map_err(err)?),
        }
        Ok(())
    }

    /// How the policy of `kind` is doing.
    pub fn status(&self, kind: PolicyKind) -> SlotStatus {
        match kind {
            PolicyKind::Drift => self.inner.drift.status(),
            PolicyKind::Correlation => self.inner.correlation.status(),
            PolicyKind::Failover => self.inner.failover.status(),
        }
    }

    /// Instantiates and configures one fresh instance of the active policy
    /// of `kind` from its `InstancePre`, then drops it; `Ok(false)` if no
    /// policy is active. For benchmarks and health probes; counts nothing.
    ///
    /// # Errors
    ///
    /// The [`Fault`] if instantiation or `configure` faults.
    pub fn instantiate_fresh(&self, kind: PolicyKind) -> Result<bool, Fault> {
        fn one<K: Kind>(slot: &Slot<K>) -> Result<bool, Fault> {
            let Some(active) = slot.active() else {
                return Ok(false);
            };
            match active.instantiate() {
                Ok(_) => Ok(true),
                Err(policy::InstantiateError::Fault(fault)) => Err(fault),
                Err(policy::InstantiateError::Rejected(message)) => Err(Fault::new(
                    &active.id,
                    crate::FaultKind::ConfigRejected,
                    message,
                )),
            }
        }
        match kind {
            PolicyKind::Drift => one(&self.inner.drift),
            PolicyKind::Correlation => one(&self.inner.correlation),
            PolicyKind::Failover => one(&self.inner.failover),
        }
    }

    /// Drops the idle instances of the active policy of `kind`, so that the
    /// next call instantiates afresh (benchmarks).
    pub fn drop_idle_instances(&self, kind: PolicyKind) {
        fn one<K: Kind>(slot: &Slot<K>) {
            if let Some(active) = slot.active() {
                active.drain_idle();
            }
        }
        match kind {
            PolicyKind::Drift => one(&self.inner.drift),
            PolicyKind::Correlation => one(&self.inner.correlation),
            PolicyKind::Failover => one(&self.inner.failover),
        }
    }
}
