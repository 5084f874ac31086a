//! The case format of `umbra policy test` and of the recorded cases under
//! `policies/cases/`: one input (with the configuration to pass to
//! `configure`) in a [`Case`], one answer in a [`CaseOutput`], both JSON
//! through serde.
//!
//! ```json
//! {
//!   "description": "CPU ramp with a 5xx ramp",
//!   "config": { "rate-high": "0.2" },
//!   "input": { "observation": { "now_ms": 1700000059000, "primary": { "series": [] } } }
//! }
//! ```
//!
//! A failover case has `"input": { "failover": { ... } }` instead. An
//! expected answer is `{ "drift": { ... } }`, `{ "correlation": { ... } }`
//! or `{ "failover": { ... } }`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::correlation::{CorrelationConfig, correlation};
use crate::drift::{DriftConfig, drift};
use crate::failover::{FailoverConfig, failover};
use crate::types::{
    ConfigPairs, CorrelationResult, DriftResult, FailoverDecision, FailoverInput, Observation,
};
use crate::{Error, Result};

/// The three kinds of policy, one WIT world each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// World `drift-policy`: observation in, drift result out.
    Drift,
    /// World `correlation-policy`: observation in, correlation result out.
    Correlation,
    /// World `failover-policy`: failover input in, failover decision out.
    Failover,
}

impl PolicyKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::Drift, Self::Correlation, Self::Failover];

    /// `drift`, `correlation` or `failover`: the name of the WIT interface
    /// the policy exports, and of the SDK module an author uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drift => "drift",
            Self::Correlation => "correlation",
            Self::Failover => "failover",
        }
    }

    /// The WIT world a policy of this kind targets, e.g. `drift-policy`.
    pub fn world(self) -> &'static str {
        match self {
            Self::Drift => "drift-policy",
            Self::Correlation => "correlation-policy",
            Self::Failover => "failover-policy",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PolicyKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::UnknownKind(s.to_owned()))
    }
}

/// One evaluation to run: configuration and input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Configuration passed to `configure` before the evaluation, as a JSON
    /// object of strings (sorted by key when passed on).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The input of the evaluation.
    pub input: CaseInput,
}

/// The input of a case: what `evaluate` (drift, correlation) or `decide`
/// (failover) receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseInput {
    /// For drift and correlation policies.
    Observation(Observation),
    /// For failover policies.
    Failover(FailoverInput),
}

impl Default for CaseInput {
    fn default() -> Self {
        Self::Observation(Observation::default())
    }
}

impl CaseInput {
    /// Whether a policy of `kind` takes this input.
    pub fn fits(&self, kind: PolicyKind) -> bool {
        matches!(
            (self, kind),
            (
                Self::Observation(_),
                PolicyKind::Drift | PolicyKind::Correlation
            ) | (Self::Failover(_), PolicyKind::Failover)
        )
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Observation(_) => "an observation",
            Self::Failover(_) => "a failover input",
        }
    }
}

impl Case {
    /// The configuration as WIT pairs, sorted by key.
    pub fn config_pairs(&self) -> ConfigPairs {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Runs Umbra's default policy of `kind` on this case — what the default
    /// WebAssembly policy and the host's native fallback both answer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the case's configuration is not valid
    /// for that policy; [`Error::InputMismatch`] if the input is not the
    /// kind's (an observation given to a failover policy, or the reverse).
    pub fn evaluate_default(&self, kind: PolicyKind) -> Result<CaseOutput> {
        let pairs = self.config_pairs();
        match (kind, &self.input) {
            (PolicyKind::Drift, CaseInput::Observation(o)) => Ok(CaseOutput::Drift(drift(
                &DriftConfig::from_pairs(&pairs)?,
                o,
            ))),
            (PolicyKind::Correlation, CaseInput::Observation(o)) => Ok(CaseOutput::Correlation(
                correlation(&CorrelationConfig::from_pairs(&pairs)?, o),
            )),
            (PolicyKind::Failover, CaseInput::Failover(i)) => Ok(CaseOutput::Failover(failover(
                &FailoverConfig::from_pairs(&pairs)?,
                i,
            ))),
            (kind, input) => Err(Error::InputMismatch {
                kind,
                given: input.name(),
            }),
        }
    }
}

/// The answer of one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseOutput {
    /// A drift policy's answer.
    Drift(DriftResult),
    /// A correlation policy's answer.
    Correlation(CorrelationResult),
    /// A failover policy's answer.
    Failover(FailoverDecision),
}

impl CaseOutput {
    /// The kind of policy that gives this answer.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Self::Drift(_) => PolicyKind::Drift,
            Self::Correlation(_) => PolicyKind::Correlation,
            Self::Failover(_) => PolicyKind::Failover,
        }
    }

    /// How this answer differs from `expected`, one line per difference;
    /// empty if they match. Numbers match within `tolerance` (absolute),
    /// everything else exactly.
    pub fn differences(&self, expected: &CaseOutput, tolerance: f64) -> Vec<String> {
        let mut diff = Diff {
            tolerance,
            out: Vec::new(),
        };
        match (self, expected) {
            (Self::Drift(got), Self::Drift(want)) => {
                diff.num("score", got.score, want.score);
                diff.num("rate_of_change", got.rate_of_change, want.rate_of_change);
                diff.text("explanation", &got.explanation, &want.explanation);
            }
            (Self::Correlation(got), Self::Correlation(want)) => {
                diff.num("score", got.score, want.score);
                if got.signals.len() != want.signals.len() {
                    diff.out.push(format!(
                        "signals: got {}, expected {}",
                        got.signals.len(),
                        want.signals.len()
                    ));
                }
                for (i, (g, w)) in got.signals.iter().zip(&want.signals).enumerate() {
                    diff.text(&format!("signals[{i}].name"), &g.name, &w.name);
                    diff.num(&format!("signals[{i}].weight"), g.weight, w.weight);
                    diff.text(&format!("signals[{i}].detail"), &g.detail, &w.detail);
                }
            }
            (Self::Failover(got), Self::Failover(want)) => {
                if got.verdict != want.verdict {
                    diff.out.push(format!(
                        "verdict: got {:?}, expected {:?}",
                        got.verdict, want.verdict
                    ));
                }
                diff.text("reason", &got.reason, &want.reason);
                if got.state != want.state {
                    diff.out.push(format!(
                        "state: got {:?}, expected {:?}",
                        got.state, want.state
                    ));
                }
            }
            (got, want) => diff.out.push(format!(
                "got a {} answer, expected a {} answer",
                got.kind(),
                want.kind()
            )),
        }
        diff.out
    }
}

struct Diff {
    tolerance: f64,
    out: Vec<String>,
}

impl Diff {
    fn num(&mut self, field: &str, got: f64, want: f64) {
        if !(got == want || (got - want).abs() <= self.tolerance) {
            self.out
                .push(format!("{field}: got {got}, expected {want}"));
        }
    }

    fn text(&mut self, field: &str, got: &str, want: &str) {
        if got != want {
            self.out
                .push(format!("{field}: got {got:?}, expected {want:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FailoverState, Signal, Verdict};

    #[test]
    fn kinds_parse_and_print() {
        for kind in PolicyKind::ALL {
            assert_eq!(kind.as_str().parse::<PolicyKind>().unwrap(), kind);
            assert_eq!(kind.world(), format!("{kind}-policy"));
        }
        assert!(
            matches!("Drift".parse::<PolicyKind>(), Err(Error::UnknownKind(s)) if s == "Drift")
        );
    }

    #[test]
    fn input_must_fit_the_kind() {
        let case = Case::default();
        assert!(case.evaluate_default(PolicyKind::Drift).is_ok());
        let err = case.evaluate_default(PolicyKind::Failover).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a failover policy cannot evaluate an observation (it takes a failover input)"
        );
    }

    #[test]
    fn bad_config_in_a_case_is_reported() {
        let case = Case {
            config: [("hysteresis".to_owned(), "0".to_owned())].into(),
            input: CaseInput::Failover(FailoverInput::default()),
            ..Case::default()
        };
        let err = case.evaluate_default(PolicyKind::Failover).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `hysteresis`: expected an integer at least 1, got \"0\""
        );
    }

    #[test]
    fn differences_within_tolerance_and_exact_text() {
        let a = CaseOutput::Correlation(CorrelationResult {
            score: 0.5,
            signals: vec![Signal {
                name: "x".into(),
                weight: 0.5,
                detail: "d".into(),
            }],
        });
        let mut b = a.clone();
        assert!(a.differences(&b, 0.0).is_empty());
        if let CaseOutput::Correlation(c) = &mut b {
            c.score = 0.5 + 1e-12;
            c.signals[0].detail = "e".into();
        }
        assert_eq!(
            a.differences(&b, 1e-9),
            vec!["signals[0].detail: got \"d\", expected \"e\""]
        );
        assert_eq!(a.differences(&b, 0.0).len(), 2);
        let failover = CaseOutput::Failover(FailoverDecision {
            verdict: Verdict::Go,
            reason: "r".into(),
            state: FailoverState::default(),
        });
        assert_eq!(
            a.differences(&failover, 1.0),
            vec!["got a correlation answer, expected a failover answer"]
        );
    }

    #[test]
    fn json_shape_is_documented_one() {
        let json = r#"{
            "description": "tiny",
            "config": {"drift-threshold": "0.5"},
            "input": {"failover": {
                "now_ms": 5,
                "drift": {"score": 0.9, "rate_of_change": 0.1},
                "correlation": {"score": 0}
            }}
        }"#;
        let case: Case = serde_json::from_str(json).unwrap();
        let CaseInput::Failover(input) = &case.input else {
            panic!("expected a failover input");
        };
        assert_eq!(input.state, FailoverState::default());
        assert_eq!(
            case.config_pairs(),
            vec![("drift-threshold".to_owned(), "0.5".to_owned())]
        );
        let unknown = json.replace("\"now_ms\"", "\"now\"");
        let err = serde_json::from_str::<Case>(&unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `now`"), "{err}");
        let output = case.evaluate_default(PolicyKind::Failover).unwrap();
        let text = serde_json::to_string(&output).unwrap();
        assert!(
            text.starts_with(r#"{"failover":{"verdict":"hold","#),
            "{text}"
        );
    }
}
