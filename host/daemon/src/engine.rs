//! The decision of DESIGN.md, every tick, for every protected pair: drift,
//! correlation, the predictor's probability (one batched ONNX Runtime
//! call for all pairs), then the failover policy.
//!
//! Samples are recorded by role: the device carrying traffic is the
//! model's and the detector's "primary", the standby its "shadow". When
//! the roles swap (a failover), the pair's history no longer describes its
//! devices and [`PredictiveEngine::reset_pair`] starts it afresh.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use umbra_model::{FeatureSource, History, Predictor};
use umbra_policy_logic::{
    CorrelationConfig, CorrelationResult, DriftResult, FailoverConfig, FailoverInput,
    FailoverState, Prediction, Verdict, correlation, failover,
};
use umbra_policy_runtime::PolicyRuntime;
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
    /// Ticks a pair is observed before its decisions may say go: its
    /// baselines and the model's window are still filling, and scores
    /// against a handful of samples are noise. At least the model's
    /// window plus its baseline ticks.
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
    /// Whether a native fallback answered instead of a WASM policy.
    pub fallback: bool,
}

struct PairState {
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

/// The predictive engine of all pairs.
pub struct PredictiveEngine {
    config: EngineConfig,
    predictor: Option<Predictor>,
    policies: Option<Arc<PolicyRuntime>>,
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
        let mut columns = [HashMap::new(), HashMap::new()];
        let mut width = 0;
        if let Some(predictor) = &predictor {
            let metrics = History::for_manifest(predictor.manifest())
                .metrics()
                .to_vec();
            width = metrics.len();
            for (column, (device, metric)) in metrics.into_iter().enumerate() {
                let role = match device {
                    umbra_model::Device::Primary => 0,
                    umbra_model::Device::Shadow => 1,
                };
                columns[role].insert(metric, column);
            }
        }
        Self {
            config,
            predictor,
            policies,
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

    fn fresh(&self) -> Result<PairState, EngineError> {
        Ok(PairState {
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

    /// Adds a pair; returns its index.
    ///
    /// # Errors
    /// [`EngineError::Detector`] for an invalid detector configuration.
    pub fn add_pair(&mut self) -> Result<usize, EngineError> {
        let state = self.fresh()?;
        self.pairs.push(state);
        Ok(self.pairs.len() - 1)
    }

    /// Forgets what pair `pair` has seen (its roles swapped).
    ///
    /// # Errors
    /// As [`Self::add_pair`].
    pub fn reset_pair(&mut self, pair: usize) -> Result<(), EngineError> {
        self.pairs[pair] = self.fresh()?;
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
        let mut decisions = Vec::with_capacity(self.pairs.len());
        for (state, probability) in self.pairs.iter_mut().zip(probabilities) {
            let (output, observation) = state.detector.evaluate(now_ms);
            let mut fallback = false;
            let drift = match (&self.policies, self.config.drift_from_policy) {
                (Some(policies), true) => {
                    let answer = policies.drift(&observation);
                    fallback |= answer.is_fallback();
                    answer.value
                }
                _ => DriftResult {
                    score: output.score,
                    ..output.drift
                },
            };
            let correlated: CorrelationResult = match &self.policies {
                Some(policies) => {
                    let answer = policies.correlation(&observation);
                    fallback |= answer.is_fallback();
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
            let decision = match &self.policies {
                Some(policies) => {
                    let answer = policies.failover(&input);
                    fallback |= answer.is_fallback();
                    answer.value
                }
                None => failover(&self.config.failover, &input),
            };
            state.state = decision.state;
            state.ticks += 1;
            let warmup = self
                .config
                .warmup_ticks
                .max(state.history.as_ref().map_or(0, History::keep));
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
                probability_threshold: self.config.failover.probability_threshold,
                fallback,
            });
        }
        Ok(decisions)
    }
}
