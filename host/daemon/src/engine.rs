//! The decision of DESIGN.md, every tick, for every protected pair: drift,
//! correlation, the predictor's probability (one batched ONNX Runtime
//! call for all pairs), then the failover policy.
//!
//! Samples are recorded by role: the device carrying traffic is the
//! model's and the detector's "primary", the standby its "shadow". When
//! the roles swap (a failover), the pair's history no longer describes its
//! devices and [`PredictiveEngine::reset_pair`] starts it afresh.
//!
//! With a policy runtime, each kind that has a WebAssembly policy loaded
//! asks it; a kind without one decides natively, exactly as without a
//! runtime. A pair's failover decision is configured per pair
//! (`[pair.failover]`), and a WebAssembly policy is configured once per
//! instance, so pairs are decided in [failover groups](FailoverGroup):
//! one configuration and the runtime whose failover policy was given it.
//! The predictor can be replaced while the engine runs
//! ([`PredictiveEngine::set_predictor`]): every pair's history is carried
//! over into the new manifest's.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use umbra_model::{FeatureSource, History, Manifest, Predictor};
use umbra_policy_logic::{
    CorrelationConfig, CorrelationResult, DriftResult, FailoverConfig, FailoverInput,
    FailoverState, PolicyKind, Prediction, Verdict, correlation, failover,
};
use umbra_policy_runtime::{AnsweredBy, FallbackReason, PolicyRuntime};
use umbra_predict::{DetectorConfig, DriftDetector, Sample};

/// A device's role in the model's and the detector's eyes.
pub use umbra_predict::Device as Role;

/// How the engine decides.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The drift detector (features, baselines, scoring).
    pub detector: DetectorConfig,
    /// The native correlation policy's settings.
    pub correlation: CorrelationConfig,
    /// The native failover policy's settings; `probability_threshold` is
    /// the model manifest's unless configured.
    pub failover: FailoverConfig,
    /// Ask the policy runtime's drift policy (an operator's) rather than
    /// the detector's own scoring.
    pub drift_from_policy: bool,
    /// Ticks a pair is observed before its decisions may say go: drift
    /// scored against a handful of samples is noise. The predictor has a
    /// warm-up of its own: it gives no probability (and so no go) until
    /// it holds its window plus its baseline ticks.
    pub warmup_ticks: usize,
    /// Hand the correlation policy's answer to the failover policy, where
    /// it corroborates drift (shortening drift's hysteresis). Off by
    /// default: the failover rule was evaluated (issue 4, `umbra model
    /// eval`) on drift and the probability alone, and with the default
    /// correlation rules benign divergence would corroborate drift into
    /// false failovers. The correlation score is computed and reported
    /// either way.
    pub correlation_corroborates: bool,
}

/// One pair's decision at one tick.
#[derive(Clone, Debug, Serialize)]
pub struct PairDecision {
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
    /// Whether the failover policy said go.
    pub go: bool,
    /// The policy's explanation: which signals crossed which thresholds.
    pub explanation: String,
    /// The drift score.
    pub drift_score: f64,
    /// The correlation score.
    pub correlation_score: f64,
    /// The predictor's probability (`None` until a full window is held).
    pub probability: Option<f64>,
    /// The probability threshold in force.
    pub probability_threshold: f64,
    /// Whether a native fallback answered instead of a WASM policy (it
    /// faulted or is quarantined). A kind without a WASM policy decides
    /// natively by configuration: that is not a fallback.
    pub fallback: bool,
    /// The kinds whose WASM policy faulted on this decision (each answered
    /// by its native fallback).
    pub faults: Vec<PolicyKind>,
    /// Whether the pair is still warming up (no go yet, whatever the
    /// policy said).
    pub warming: bool,
}

struct PairState {
    /// Its failover group (index in [`PredictiveEngine::groups`]).
    group: usize,
    /// Ticks decided since the pair started (or was reset).
    ticks: usize,
    detector: DriftDetector,
    history: Option<History>,
    state: FailoverState,
    /// This tick's value of each column of the model's history (what was
    /// not recorded this tick is `None`).
    row: Vec<Option<f64>>,
}

/// Why the engine failed. The configuration or the model is at fault.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The detector's configuration does not validate.
    #[error("drift detector: {0}")]
    Detector(#[from] umbra_predict::Error),
    /// The model failed (input building or inference).
    #[error("predictor: {0}")]
    Model(#[from] umbra_model::Error),
}

/// How the pairs of one failover group decide: the failover
/// configuration they share and, when there is one, the policy runtime
/// whose failover policy was configured with it.
#[derive(Clone, Debug)]
pub struct FailoverGroup {
    /// The native policy's configuration, and the one the runtime's
    /// failover policy was given.
    pub config: FailoverConfig,
    /// The runtime asked for the failover decision when it has a
    /// failover policy loaded.
    pub policies: Option<Arc<PolicyRuntime>>,
}

/// A policy's go and the role swap it led to, at most this far apart, are
/// one failover.
const SAME_FAILOVER_MS: i64 = 60_000;

/// The predictive engine of all pairs.
pub struct PredictiveEngine {
    config: EngineConfig,
    predictor: Option<Predictor>,
    /// Drift and correlation policies (and group 0's failover policy).
    policies: Option<Arc<PolicyRuntime>>,
    /// Group 0 is [`EngineConfig::failover`] with `policies`.
    groups: Vec<FailoverGroup>,
    pairs: Vec<PairState>,
    sample: Sample,
    /// Per role (primary, shadow): the model history's column of each
    /// metric it reads. The same for every pair, built once.
    columns: [HashMap<String, usize>; 2],
    /// How many columns the model's history has.
    width: usize,
}

/// The index of `role` in [`PredictiveEngine::columns`].
fn role_index(role: Role) -> usize {
    match role {
        Role::Primary => 0,
        Role::Shadow => 1,
    }
}

/// Per role, the column of each metric a history of `manifest` keeps,
/// and how many columns it has.
fn history_columns(manifest: Option<&Manifest>) -> ([HashMap<String, usize>; 2], usize) {
    let mut columns = [HashMap::new(), HashMap::new()];
    let Some(manifest) = manifest else {
        return (columns, 0);
    };
    let metrics = History::for_manifest(manifest).metrics().to_vec();
    let width = metrics.len();
    for (column, (device, metric)) in metrics.into_iter().enumerate() {
        let role = match device {
            umbra_model::Device::Primary => 0,
            umbra_model::Device::Shadow => 1,
        };
        columns[role].insert(metric, column);
    }
    (columns, width)
}

/// A history of `manifest` holding the most recent ticks of `old` (as many
/// as it keeps) for the metrics both read; what `old` did not record is
/// missing.
fn carried_over(old: Option<&History>, manifest: &Manifest) -> History {
    let mut history = History::for_manifest(manifest);
    let Some(old) = old else {
        return history;
    };
    let series: Vec<Option<&[Option<f64>]>> = history
        .metrics()
        .iter()
        .map(|(device, metric)| old.series(*device, metric))
        .collect();
    let held = old.ticks();
    let mut row = vec![None; series.len()];
    for tick in held - held.min(history.keep())..held {
        for (value, series) in row.iter_mut().zip(&series) {
            *value = series.and_then(|s| s.get(tick).copied().flatten());
        }
        history.push(&row);
    }
    history
}

/// `policies`, if it has a WASM policy of `kind` loaded.
fn loaded(policies: &Option<Arc<PolicyRuntime>>, kind: PolicyKind) -> Option<&Arc<PolicyRuntime>> {
    policies.as_ref().filter(|p| p.has_policy(kind))
}

impl PredictiveEngine {
    /// An engine with no pairs. Without a predictor the decision rests on
    /// drift and correlation; without a policy runtime the native policies
    /// decide.
    #[must_use]
    pub fn new(
        config: EngineConfig,
        predictor: Option<Predictor>,
        policies: Option<Arc<PolicyRuntime>>,
    ) -> Self {
        let (columns, width) = history_columns(predictor.as_ref().map(Predictor::manifest));
        let groups = vec![FailoverGroup {
            config: config.failover.clone(),
            policies: policies.clone(),
        }];
        Self {
            config,
            predictor,
            policies,
            groups,
            columns,
            width,
            pairs: Vec::new(),
            sample: Sample {
                device: Role::Primary,
                metric: String::new(),
                timestamp_ms: 0,
                value: 0.0,
            },
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The predictor serving, if any.
    #[must_use]
    pub fn predictor(&self) -> Option<&Predictor> {
        self.predictor.as_ref()
    }

    /// Replaces the policy runtime asked for drift (when
    /// [`EngineConfig::drift_from_policy`]), correlation and group 0's
    /// failover decision.
    pub fn set_policies(&mut self, policies: Option<Arc<PolicyRuntime>>) {
        self.groups[0].policies.clone_from(&policies);
        self.policies = policies;
    }

    /// Adds a failover group (pairs added to it with
    /// [`Self::add_pair_in`]); returns its index. Group 0 exists from the
    /// start: [`EngineConfig::failover`] with the engine's runtime.
    pub fn add_failover_group(&mut self, group: FailoverGroup) -> usize {
        self.groups.push(group);
        self.groups.len() - 1
    }

    /// Replaces the predictor; returns the previous one. Every pair's
    /// history is rebuilt for the new manifest, carrying over the ticks it
    /// held of the metrics both manifests read (a model of the same window
    /// and features predicts again at the next tick). The caller checks
    /// that the new model fits (window, features).
    pub fn set_predictor(&mut self, predictor: Predictor) -> Option<Predictor> {
        let (columns, width) = history_columns(Some(predictor.manifest()));
        let manifest = predictor.manifest();
        let new_metrics = History::for_manifest(manifest).metrics().to_vec();
        for state in &mut self.pairs {
            // This tick's samples so far, moved to their new columns.
            let mut row = vec![None; width];
            for (value, (device, metric)) in row.iter_mut().zip(&new_metrics) {
                let role = match device {
                    umbra_model::Device::Primary => 0,
                    umbra_model::Device::Shadow => 1,
                };
                *value = self.columns[role]
                    .get(metric)
                    .and_then(|&column| state.row.get(column).copied().flatten());
            }
            state.row = row;
            state.history = Some(carried_over(state.history.as_ref(), manifest));
        }
        self.columns = columns;
        self.width = width;
        self.predictor.replace(predictor)
    }

    /// Sets the probability threshold of every pair's failover decision
    /// (the native one's; a WASM failover policy must be reloaded with
    /// the new configuration by its owner).
    pub fn set_probability_threshold(&mut self, threshold: f64) {
        self.config.failover.probability_threshold = threshold;
        for group in &mut self.groups {
            group.config.probability_threshold = threshold;
        }
    }

    fn fresh(&self, group: usize) -> Result<PairState, EngineError> {
        Ok(PairState {
            group,
            ticks: 0,
            detector: DriftDetector::new(self.config.detector.clone())?,
            history: self
                .predictor
                .as_ref()
                .map(|p| History::for_manifest(p.manifest())),
            state: FailoverState::default(),
            row: vec![None; self.width],
        })
    }

    /// Adds a pair of failover group 0; returns its index.
    ///
    /// # Errors
    /// [`EngineError::Detector`] for an invalid detector configuration.
    pub fn add_pair(&mut self) -> Result<usize, EngineError> {
        self.add_pair_in(0)
    }

    /// Adds a pair of failover group `group` (from
    /// [`Self::add_failover_group`]); returns its index.
    ///
    /// # Errors
    /// As [`Self::add_pair`].
    ///
    /// # Panics
    /// If there is no such group (a bug in the caller).
    pub fn add_pair_in(&mut self, group: usize) -> Result<usize, EngineError> {
        assert!(group < self.groups.len(), "no failover group {group}");
        let state = self.fresh(group)?;
        self.pairs.push(state);
        Ok(self.pairs.len() - 1)
    }

    /// Forgets what pair `pair` has seen: its roles swapped at `at_ms` (a
    /// failover, whoever ordered it). The failover policy's memory of
    /// failovers survives, with this one in it, so the cooldown and the
    /// cap per hour hold across the swap (without it, the fresh pair
    /// could fail straight back to the device it just left).
    ///
    /// # Errors
    /// As [`Self::add_pair`].
    pub fn reset_pair(&mut self, pair: usize, at_ms: i64) -> Result<(), EngineError> {
        let mut state = std::mem::take(&mut self.pairs[pair].state);
        state.consecutive_over = 0;
        // The policy recorded its own go a moment before the swap; a
        // manual or reactive failover is recorded here.
        if state
            .last_go_ms
            .is_none_or(|go| at_ms - go > SAME_FAILOVER_MS)
        {
            state.last_go_ms = Some(at_ms);
            state.recent_go_ms.push(at_ms);
        }
        self.pairs[pair] = self.fresh(self.pairs[pair].group)?;
        self.pairs[pair].state = state;
        Ok(())
    }

    /// Records one sample of pair `pair`'s device in `role`. A sample the
    /// detector refuses (out of order, not finite) is logged and dropped.
    pub fn record(&mut self, pair: usize, role: Role, metric: &str, at_ms: i64, value: f64) {
        let state = &mut self.pairs[pair];
        self.sample.device = role;
        metric.clone_into(&mut self.sample.metric);
        self.sample.timestamp_ms = at_ms;
        self.sample.value = value;
        if let Err(error) = state.detector.record(&self.sample) {
            tracing::debug!(pair, metric, %error, "sample refused");
            return;
        }
        if let Some(&column) = self.columns[role_index(role)].get(metric)
            && value.is_finite()
        {
            state.row[column] = Some(value);
        }
    }

    /// Decides every pair at `now_ms` from what was recorded since the
    /// last tick.
    ///
    /// # Errors
    /// [`EngineError::Model`] when inference fails (the caller decides
    /// without the predictor this tick).
    pub fn tick(&mut self, now_ms: i64) -> Result<Vec<PairDecision>, EngineError> {
        let mut ready = Vec::with_capacity(self.pairs.len());
        for state in &mut self.pairs {
            if let Some(history) = &mut state.history {
                history.push(&state.row);
                ready.push(history.ticks() >= history.keep());
            } else {
                ready.push(false);
            }
            state.row.fill(None);
        }
        let mut probabilities = vec![None; self.pairs.len()];
        if let Some(predictor) = &mut self.predictor {
            let indexes: Vec<usize> = (0..self.pairs.len()).filter(|&i| ready[i]).collect();
            if !indexes.is_empty() {
                let sources: Vec<&dyn FeatureSource> = indexes
                    .iter()
                    .filter_map(|&i| self.pairs[i].history.as_ref())
                    .map(|h| h as &dyn FeatureSource)
                    .collect();
                let out = predictor.predict_sources(&sources)?;
                for (&i, p) in indexes.iter().zip(out) {
                    probabilities[i] = Some(f64::from(p));
                }
            }
        }
        let manifest = self.predictor.as_ref().map(Predictor::manifest);
        // Which kinds have a WASM policy, once per tick: the others
        // decide natively, as without a runtime.
        let drift_policy =
            loaded(&self.policies, PolicyKind::Drift).filter(|_| self.config.drift_from_policy);
        let correlation_policy = loaded(&self.policies, PolicyKind::Correlation);
        let failover_policies: Vec<Option<&Arc<PolicyRuntime>>> = self
            .groups
            .iter()
            .map(|g| loaded(&g.policies, PolicyKind::Failover))
            .collect();
        let mut decisions = Vec::with_capacity(self.pairs.len());
        for (state, probability) in self.pairs.iter_mut().zip(probabilities) {
            let (output, observation) = state.detector.evaluate(now_ms);
            let mut fallback = false;
            let mut faults = Vec::new();
            let mut answered = |by: &AnsweredBy, kind: PolicyKind| match by {
                AnsweredBy::Fallback {
                    reason: FallbackReason::Fault { .. },
                } => {
                    fallback = true;
                    faults.push(kind);
                }
                AnsweredBy::Fallback {
                    reason: FallbackReason::Quarantined { .. },
                } => fallback = true,
                AnsweredBy::Policy { .. }
                | AnsweredBy::Fallback {
                    reason: FallbackReason::NoPolicy,
                } => {}
            };
            let drift = match drift_policy {
                Some(policies) => {
                    let answer = policies.drift(&observation);
                    answered(&answer.answered_by, PolicyKind::Drift);
                    answer.value
                }
                None => DriftResult {
                    score: output.score,
                    ..output.drift
                },
            };
            let correlated: CorrelationResult = match correlation_policy {
                Some(policies) => {
                    let answer = policies.correlation(&observation);
                    answered(&answer.answered_by, PolicyKind::Correlation);
                    answer.value
                }
                None => correlation(&self.config.correlation, &observation),
            };
            let prediction = probability.zip(manifest).map(|(p, m)| Prediction {
                probability: p,
                horizon_ms: m.horizon_ms,
                model_version: m.model_version.clone(),
            });
            let input = FailoverInput {
                now_ms,
                drift: drift.clone(),
                correlation: if self.config.correlation_corroborates {
                    correlated.clone()
                } else {
                    CorrelationResult::default()
                },
                prediction,
                state: std::mem::take(&mut state.state),
            };
            let group = &self.groups[state.group];
            let decision = match failover_policies[state.group] {
                Some(policies) => {
                    let answer = policies.failover(&input);
                    answered(&answer.answered_by, PolicyKind::Failover);
                    answer.value
                }
                None => failover(&group.config, &input),
            };
            state.state = decision.state;
            state.ticks += 1;
            let warmup = self.config.warmup_ticks;
            let warming = state.ticks <= warmup;
            decisions.push(PairDecision {
                at_ms: now_ms,
                go: decision.verdict == Verdict::Go && !warming,
                explanation: if warming {
                    format!(
                        "warming up ({} of {warmup} ticks): {}",
                        state.ticks, decision.reason
                    )
                } else {
                    decision.reason
                },
                drift_score: drift.score,
                correlation_score: correlated.score,
                probability,
                probability_threshold: group.config.probability_threshold,
                fallback,
                faults,
                warming,
            });
        }
        Ok(decisions)
    }
}
