//! One kind's slot: the active policy version (swapped atomically), the
//! shadow candidate, and the native fallback.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::fault::Fault;
use crate::kind::Kind;
use crate::policy::{Loaded, PolicyId, PolicyStatus};
use crate::{Error, Result};

/// An answer and who gave it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Answer<T> {
    /// The decision.
    pub value: T,
    /// Who decided.
    pub answered_by: AnsweredBy,
}

impl<T> Answer<T> {
    /// The policy that answered, if a policy did.
    pub fn policy(&self) -> Option<&PolicyId> {
        match &self.answered_by {
            AnsweredBy::Policy { policy } => Some(policy),
            AnsweredBy::Fallback { .. } => None,
        }
    }

    /// The fault that made the fallback answer, if one did.
    pub fn fault(&self) -> Option<&Fault> {
        match &self.answered_by {
            AnsweredBy::Fallback {
                reason: FallbackReason::Fault { fault },
            } => Some(fault),
            _ => None,
        }
    }

    /// Whether the native fallback answered.
    pub fn is_fallback(&self) -> bool {
        matches!(self.answered_by, AnsweredBy::Fallback { .. })
    }
}

/// Who answered.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum AnsweredBy {
    /// The active WebAssembly policy.
    Policy {
        /// Which one.
        policy: Arc<PolicyId>,
    },
    /// The native fallback (Umbra's default decision).
    Fallback {
        /// Why.
        reason: FallbackReason,
    },
}

/// Why the native fallback answered.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum FallbackReason {
    /// No policy of this kind is loaded.
    NoPolicy,
    /// The active policy is quarantined after faulting too often in a row.
    Quarantined {
        /// Which one.
        policy: Arc<PolicyId>,
    },
    /// The active policy faulted on this very call.
    Fault {
        /// What it did.
        fault: Fault,
    },
}

/// Shadow-mode settings of a candidate.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowConfig {
    /// Promote the candidate after this many agreeing evaluations in a row;
    /// `None` waits for an explicit promotion.
    pub promote_after: Option<u64>,
    /// Relative tolerance on scores when comparing answers (failover
    /// decisions must match exactly: verdict and state).
    pub tolerance: f64,
    /// Disagreements kept as examples (the most recent ones).
    pub keep_examples: usize,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        Self {
            promote_after: None,
            tolerance: 1e-9,
            keep_examples: 8,
        }
    }
}

/// One evaluation on which the candidate and the active answer differed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Disagreement {
    /// Index of the evaluation among the candidate's, from 1.
    pub evaluation: u64,
    /// The input, as JSON.
    pub input: serde_json::Value,
    /// The answer used, as JSON.
    pub active: serde_json::Value,
    /// Who gave the answer used.
    pub active_by: AnsweredBy,
    /// The candidate's answer, as JSON.
    pub candidate: serde_json::Value,
}

/// How a shadow candidate is doing.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CandidateStatus {
    /// The candidate policy.
    pub policy: PolicyStatus,
    /// Its shadow settings.
    pub shadow: ShadowConfig,
    /// Evaluations it ran beside the active one.
    pub evaluations: u64,
    /// Evaluations where it agreed.
    pub agreements: u64,
    /// Agreements in a row (what automatic promotion counts).
    pub agreements_in_a_row: u64,
    /// Evaluations where it disagreed.
    pub disagreements: u64,
    /// Evaluations where it faulted.
    pub faults: u64,
    /// The most recent disagreements, oldest first.
    pub examples: Vec<Disagreement>,
}

pub(crate) struct Candidate<K: Kind> {
    pub(crate) policy: Arc<Loaded<K>>,
    shadow: ShadowConfig,
    evaluations: AtomicU64,
    agreements: AtomicU64,
    streak: AtomicU64,
    disagreements: AtomicU64,
    faults: AtomicU64,
    // A synchronous mutex: held to push an example, never across a call.
    examples: Mutex<VecDeque<Disagreement>>,
}

impl<K: Kind> Candidate<K> {
    fn status(&self) -> CandidateStatus {
        CandidateStatus {
            policy: self.policy.status(),
            shadow: self.shadow,
            evaluations: self.evaluations.load(Ordering::Relaxed),
            agreements: self.agreements.load(Ordering::Relaxed),
            agreements_in_a_row: self.streak.load(Ordering::Relaxed),
            disagreements: self.disagreements.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            examples: self
                .examples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }
}

/// How one kind is doing.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SlotStatus {
    /// Drift, correlation or failover.
    pub kind: crate::PolicyKind,
    /// The active policy, if one is loaded.
    pub active: Option<PolicyStatus>,
    /// The shadow candidate, if one runs.
    pub candidate: Option<CandidateStatus>,
    /// Answers the native fallback gave, for any reason.
    pub fallback_answers: u64,
    /// Answers a WebAssembly policy gave.
    pub policy_answers: u64,
    /// Swaps of the active policy (loads and promotions).
    pub swaps: u64,
    /// The last failed load or reload, if the last one failed.
    pub last_reload_error: Option<String>,
}

pub(crate) struct Slot<K: Kind> {
    active: ArcSwapOption<Loaded<K>>,
    candidate: ArcSwapOption<Candidate<K>>,
    fallback: ArcSwap<K::FallbackConfig>,
    fallback_answers: AtomicU64,
    policy_answers: AtomicU64,
    swaps: AtomicU64,
    // Synchronous mutexes: management operations only, no `.await` or guest
    // call under them. `transition` serialises changes of active/candidate
    // so that a promotion never races a load.
    transition: Mutex<()>,
    last_error: Mutex<Option<String>>,
}

impl<K: Kind> Slot<K> {
    pub(crate) fn new(fallback: K::FallbackConfig) -> Self {
        Self {
            active: ArcSwapOption::empty(),
            candidate: ArcSwapOption::empty(),
            fallback: ArcSwap::from_pointee(fallback),
            fallback_answers: AtomicU64::new(0),
            policy_answers: AtomicU64::new(0),
            swaps: AtomicU64::new(0),
            transition: Mutex::new(()),
            last_error: Mutex::new(None),
        }
    }

    fn fallback(&self, input: &K::Input, reason: FallbackReason) -> Answer<K::Output> {
        self.fallback_answers.fetch_add(1, Ordering::Relaxed);
        Answer {
            value: K::fallback(&self.fallback.load(), input),
            answered_by: AnsweredBy::Fallback { reason },
        }
    }

    /// One decision: the active policy answers, or the fallback if there is
    /// none, it is quarantined, or it faults. Then the candidate, if any,
    /// runs on the same input and is compared.
    pub(crate) fn evaluate(&self, input: &K::Input) -> Answer<K::Output> {
        let active = self.active.load();
        let candidate = self.candidate.load();
        // Quarantine is one-way, so a policy seen healthy here may at worst
        // fault (and be quarantined) during this very call.
        let healthy = active.as_ref().filter(|p| !p.is_quarantined());
        let candidate = candidate.as_ref().filter(|c| !c.policy.is_quarantined());
        let wit = (healthy.is_some() || candidate.is_some()).then(|| K::to_wit(input));

        let answer = match (active.as_ref(), healthy, &wit) {
            (Some(policy), Some(_), Some(wit)) => match policy.call(wit) {
                Ok(value) => {
                    self.policy_answers.fetch_add(1, Ordering::Relaxed);
                    Answer {
                        value,
                        answered_by: AnsweredBy::Policy {
                            policy: policy.id.clone(),
                        },
                    }
                }
                Err(fault) => self.fallback(input, FallbackReason::Fault { fault }),
            },
            (Some(policy), _, _) => self.fallback(
                input,
                FallbackReason::Quarantined {
                    policy: policy.id.clone(),
                },
            ),
            (None, _, _) => self.fallback(input, FallbackReason::NoPolicy),
        };

        if let (Some(candidate), Some(wit)) = (candidate, &wit) {
            self.shadow(candidate, input, wit, &answer);
        }
        answer
    }

    fn shadow(
        &self,
        candidate: &Arc<Candidate<K>>,
        input: &K::Input,
        wit: &K::WitInput<'_>,
        answer: &Answer<K::Output>,
    ) {
        let evaluation = candidate.evaluations.fetch_add(1, Ordering::Relaxed) + 1;
        match candidate.policy.call(wit) {
            Ok(theirs) if K::agree(&answer.value, &theirs, candidate.shadow.tolerance) => {
                candidate.agreements.fetch_add(1, Ordering::Relaxed);
                let streak = candidate.streak.fetch_add(1, Ordering::Relaxed) + 1;
                if candidate.shadow.promote_after.is_some_and(|n| streak >= n) {
                    self.promote_if_current(candidate, "automatically after agreeing evaluations");
                }
            }
            Ok(theirs) => {
                candidate.disagreements.fetch_add(1, Ordering::Relaxed);
                candidate.streak.store(0, Ordering::Relaxed);
                let example = Disagreement {
                    evaluation,
                    input: serde_json::to_value(input).unwrap_or_default(),
                    active: serde_json::to_value(&answer.value).unwrap_or_default(),
                    active_by: answer.answered_by.clone(),
                    candidate: serde_json::to_value(&theirs).unwrap_or_default(),
                };
                let mut examples = candidate.examples.lock().unwrap_or_else(|e| e.into_inner());
                if candidate.shadow.keep_examples > 0 {
                    if examples.len() >= candidate.shadow.keep_examples {
                        examples.pop_front();
                    }
                    examples.push_back(example);
                }
            }
            Err(_) => {
                // Counted and logged on the candidate's own record.
                candidate.faults.fetch_add(1, Ordering::Relaxed);
                candidate.streak.store(0, Ordering::Relaxed);
            }
        }
    }

    fn promote_if_current(&self, candidate: &Arc<Candidate<K>>, how: &str) -> bool {
        let _transition = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.candidate.load();
        if !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, candidate)) {
            return false;
        }
        self.active.store(Some(candidate.policy.clone()));
        self.candidate.store(None);
        self.swaps.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            policy = %candidate.policy.id.name, version = %candidate.policy.id.version,
            kind = %K::KIND, "shadow candidate promoted {how}"
        );
        true
    }

    /// Makes `policy` the active version; the previous one finishes the calls
    /// it is in and is dropped.
    pub(crate) fn activate(&self, policy: Loaded<K>) -> Arc<PolicyId> {
        let _transition = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        let id = policy.id.clone();
        self.active.store(Some(Arc::new(policy)));
        self.swaps.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        tracing::info!(policy = %id.name, version = %id.version, kind = %K::KIND, "policy activated");
        id
    }

    /// Runs `policy` in shadow mode beside the active one, replacing any
    /// previous candidate.
    pub(crate) fn set_candidate(&self, policy: Loaded<K>, shadow: ShadowConfig) -> Arc<PolicyId> {
        let _transition = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        let id = policy.id.clone();
        self.candidate.store(Some(Arc::new(Candidate {
            policy: Arc::new(policy),
            shadow,
            evaluations: AtomicU64::new(0),
            agreements: AtomicU64::new(0),
            streak: AtomicU64::new(0),
            disagreements: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            examples: Mutex::new(VecDeque::new()),
        })));
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        tracing::info!(policy = %id.name, version = %id.version, kind = %K::KIND, "policy running in shadow mode");
        id
    }

    /// Promotes the candidate.
    ///
    /// # Errors
    ///
    /// [`Error::NoCandidate`] if there is none.
    pub(crate) fn promote(&self) -> Result<Arc<PolicyId>> {
        let candidate = self
            .candidate
            .load_full()
            .ok_or(Error::NoCandidate(K::KIND))?;
        if self.promote_if_current(&candidate, "on request") {
            Ok(candidate.policy.id.clone())
        } else {
            // Promoted automatically or replaced in the meantime.
            Err(Error::NoCandidate(K::KIND))
        }
    }

    /// Stops the candidate.
    ///
    /// # Errors
    ///
    /// [`Error::NoCandidate`] if there is none.
    pub(crate) fn discard_candidate(&self) -> Result<Arc<PolicyId>> {
        let _transition = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        let candidate = self
            .candidate
            .swap(None)
            .ok_or(Error::NoCandidate(K::KIND))?;
        Ok(candidate.policy.id.clone())
    }

    /// Unloads the active policy: the fallback answers from now on.
    pub(crate) fn unload(&self) -> Option<Arc<PolicyId>> {
        let _transition = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        let previous = self.active.swap(None);
        if previous.is_some() {
            self.swaps.fetch_add(1, Ordering::Relaxed);
        }
        previous.map(|p| p.id.clone())
    }

    pub(crate) fn set_fallback(&self, config: K::FallbackConfig) {
        self.fallback.store(Arc::new(config));
    }

    pub(crate) fn record_error(&self, error: &Error) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
    }

    pub(crate) fn active(&self) -> Option<Arc<Loaded<K>>> {
        self.active.load_full()
    }

    pub(crate) fn status(&self) -> SlotStatus {
        SlotStatus {
            kind: K::KIND,
            active: self.active.load().as_ref().map(|p| p.status()),
            candidate: self.candidate.load().as_ref().map(|c| c.status()),
            fallback_answers: self.fallback_answers.load(Ordering::Relaxed),
            policy_answers: self.policy_answers.load(Ordering::Relaxed),
            swaps: self.swaps.load(Ordering::Relaxed),
            last_reload_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}
