//! `umbra policy test`: one evaluation of a policy in the real sandbox —
//! the same engine, limits and fallback as the host — like `kwctl run`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use umbra_policy_logic::{Case, CaseOutput};
use umbra_policy_runtime::{
    Answer, AnsweredBy, EngineConfig, FallbackReason, PolicyEngine, PolicyId, PolicyLimits,
    PolicyRuntime, PolicySource, RuntimeConfig,
};

/// What to test.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// The component.
    pub policy: PathBuf,
    /// The case (JSON).
    pub input: PathBuf,
    /// The expected answer (JSON), if any.
    pub expect: Option<PathBuf>,
    /// Configuration over the case's own.
    pub config: Vec<(String, String)>,
    /// Deadline of the evaluation.
    pub deadline: Duration,
    /// Memory cap.
    pub memory_bytes: u64,
    /// Absolute tolerance on numbers when comparing with `expect`.
    pub tolerance: f64,
}

/// How the test went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestOutcome {
    /// The policy answered (and matched the expectation, if any).
    Passed,
    /// The policy answered, differently from the expectation.
    Mismatch,
    /// The policy faulted; the fallback answered.
    Faulted,
    /// The policy was refused at load.
    Refused,
}

/// The result of `umbra policy test`.
#[derive(Debug, serde::Serialize)]
pub struct TestReport {
    /// The policy, if it loaded.
    pub policy: Option<PolicyId>,
    /// Why it was refused at load, if it was.
    pub refused: Option<String>,
    /// The decision and who made it, if there was one.
    pub answer: Option<Answer<CaseOutput>>,
    /// How the decision differs from the expectation, one line per field;
    /// `None` without `--expect`.
    pub differences: Option<Vec<String>>,
    /// Notes (e.g. the fallback runs with its default configuration).
    pub notes: Vec<String>,
}

impl TestReport {
    /// The outcome.
    pub fn outcome(&self) -> TestOutcome {
        match (&self.refused, &self.answer) {
            (Some(_), _) | (None, None) => TestOutcome::Refused,
            (None, Some(answer)) if answer.is_fallback() => TestOutcome::Faulted,
            _ if self.differences.as_ref().is_some_and(|d| !d.is_empty()) => TestOutcome::Mismatch,
            _ => TestOutcome::Passed,
        }
    }

    /// The exit status: 0 passed, 1 mismatch, 2 refused or faulted.
    pub fn exit_code(&self) -> u8 {
        match self.outcome() {
            TestOutcome::Passed => 0,
            TestOutcome::Mismatch => 1,
            TestOutcome::Faulted | TestOutcome::Refused => 2,
        }
    }

    /// Prints the decision as JSON on stdout — exactly an answer file that
    /// `--expect` takes, so it can be saved as the expectation — and who
    /// answered (faults, differences, notes) on stderr. With `report`, prints
    /// the whole report as JSON on stdout instead.
    pub fn print(&self, report: bool) {
        if report {
            println!("{}", serde_json::to_string_pretty(self).unwrap_or_default());
        } else if let Some(answer) = &self.answer {
            println!(
                "{}",
                serde_json::to_string_pretty(&answer.value).unwrap_or_default()
            );
        }
        for note in &self.notes {
            eprintln!("note: {note}");
        }
        eprintln!("{}", self.summary());
        if let Some(differences) = &self.differences {
            for line in differences {
                eprintln!("  {line}");
            }
        }
    }

    /// One line saying what happened.
    pub fn summary(&self) -> String {
        if let Some(reason) = &self.refused {
            return format!("REFUSED: {reason}");
        }
        let Some(answer) = &self.answer else {
            return "no answer".to_owned();
        };
        let who = match &answer.answered_by {
            AnsweredBy::Policy { policy } => {
                format!("answered by {policy} ({} policy)", policy.kind)
            }
            AnsweredBy::Fallback {
                reason: FallbackReason::Fault { fault },
            } => format!(
                "FAULT ({}): {} — the native fallback answered instead",
                fault.kind, fault.message
            ),
            AnsweredBy::Fallback { reason } => format!("the native fallback answered ({reason:?})"),
        };
        match &self.differences {
            Some(d) if d.is_empty() => format!("{who}; matches the expected answer"),
            Some(d) => format!(
                "{who}; DIFFERS from the expected answer in {} field(s):",
                d.len()
            ),
            None => who,
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the {what} {}", path.display()))
}

/// Where compiled components are cached between runs: `$XDG_CACHE_HOME`
/// or `~/.cache`, under `umbra/policies`.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("umbra").join("policies"))
}

/// Loads the policy into a sandbox like the host's and evaluates the case.
///
/// # Errors
///
/// Usage problems: unreadable or invalid case, expectation or component
/// file, or a case whose input does not fit the policy's kind. A policy
/// refused at load or faulting is not an error: it is in the report.
pub fn test_policy(options: &TestOptions) -> anyhow::Result<TestReport> {
    let case: Case = read_json(&options.input, "case")?;
    let expected: Option<CaseOutput> = options
        .expect
        .as_deref()
        .map(|path| read_json(path, "expected answer"))
        .transpose()?;
    let bytes = std::fs::read(&options.policy)
        .with_context(|| format!("reading {}", options.policy.display()))?;

    let mut pairs = case.config_pairs();
    for (key, value) in &options.config {
        pairs.retain(|(k, _)| k != key);
        pairs.push((key.clone(), value.clone()));
    }
    pairs.sort();

    let engine = PolicyEngine::new(EngineConfig {
        cache_dir: cache_dir(),
        max_memory_bytes: options.memory_bytes.max(256 << 20),
        max_instances: 8,
        ..EngineConfig::default()
    })
    .or_else(|_| {
        // An unwritable cache directory must not stop a test.
        PolicyEngine::new(EngineConfig {
            max_memory_bytes: options.memory_bytes.max(256 << 20),
            max_instances: 8,
            ..EngineConfig::default()
        })
    })
    .context("starting the WebAssembly engine")?;
    let runtime = PolicyRuntime::new(engine, RuntimeConfig::default())
        .context("starting the policy runtime")?;

    let name = options
        .policy
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy")
        .to_owned();
    let limits = PolicyLimits {
        deadline_micros: u64::try_from(options.deadline.as_micros()).unwrap_or(u64::MAX),
        memory_bytes: options.memory_bytes,
        ..PolicyLimits::default()
    };
    let source = PolicySource::new(name, "local", bytes)
        .with_config(pairs.clone())
        .with_limits(limits);
    let mut report = TestReport {
        policy: None,
        refused: None,
        answer: None,
        differences: None,
        notes: Vec::new(),
    };
    let id = match runtime.load_blocking(source) {
        Ok(id) => id,
        Err(error) => {
            report.refused = Some(error.to_string());
            return Ok(report);
        }
    };
    report.policy = Some((*id).clone());
    if !case.input.fits(id.kind) {
        bail!(
            "the case's input is not for a {} policy ({} policies take {})",
            id.kind,
            id.kind,
            if id.kind == umbra_policy_logic::PolicyKind::Failover {
                "`input.failover`"
            } else {
                "`input.observation`"
            }
        );
    }
    // The fallback answers if the policy faults: with the same configuration
    // when the default policy understands it.
    if let Err(error) = runtime.set_fallback_config(id.kind, &pairs) {
        report.notes.push(format!(
            "the native fallback runs with its default configuration ({error})"
        ));
    }
    let answer = runtime.evaluate_case(id.kind, &case.input)?;
    report.differences =
        expected.map(|expected| answer.value.differences(&expected, options.tolerance));
    report.answer = Some(answer);
    Ok(report)
}
