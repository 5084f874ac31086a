//! The operator's WebAssembly policies in `umbra run` (`[policies] dir`):
//! `drift.wasm`, `correlation.wasm` and `failover.wasm`, each optional; a
//! kind without its file decides with its built-in policy.
//!
//! Files are loaded by the policy runtime's own watcher
//! ([`PolicyWatcher`]): at start its first scan loads every file, and a
//! file that does not load stops the start, named; afterwards, with
//! `watch = true`, a scan every second loads what changed, and
//! `umbra policy reload` scans at once. A refused file leaves the previous
//! version of its policy running. A policy file that disappears is
//! unloaded: its kind decides with the built-in policy again.
//!
//! A WebAssembly policy is configured (WIT `configure`) once per instance,
//! but `[pair.failover]` may configure pairs differently: the pairs are
//! split into failover groups, one per distinct configuration, and each
//! group has its own runtime whose failover policy is given the group's
//! configuration (the `[failover]` keys and the probability threshold).
//! The first runtime also holds the drift and correlation policies the
//! engine asks. All runtimes share one wasmtime engine and its compilation
//! cache (`<state-dir>/policy-cache`), so a file is compiled once however
//! many groups load it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use umbra_ops::{PolicyReload, ReloadOutcome};
use umbra_policy_logic::{CorrelationConfig, DriftConfig, FailoverConfig, PolicyKind};
use umbra_policy_runtime::{
    EngineConfig, PolicyEngine, PolicyLimits, PolicyRuntime, PolicySettings, PolicySource,
    RuntimeConfig, WatchConfig, WatchMode,
};

use crate::run::DaemonError;

/// How often a watched directory is polled.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Where the policies come from and how they run.
#[derive(Clone, Debug)]
pub struct PolicyOptions {
    /// The policy directory.
    pub dir: PathBuf,
    /// Wall-clock time one evaluation may take.
    pub deadline: Duration,
    /// The compilation cache; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// The drift policy's configuration (the detector's).
    pub drift: DriftConfig,
    /// The correlation policy's configuration.
    pub correlation: CorrelationConfig,
}

/// One failover group: pairs whose failover decision is configured alike.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    /// The failover decision's configuration.
    pub config: FailoverConfig,
    /// The pairs deciding with it (for messages).
    pub pairs: Vec<String>,
}

struct Group {
    spec: GroupSpec,
    runtime: PolicyRuntime,
    watcher: umbra_policy_runtime::PolicyWatcher,
    /// The file each active policy was loaded from.
    sources: HashMap<PolicyKind, PathBuf>,
}

/// What the policy task is asked to do.
#[derive(Debug)]
pub enum PolicyCommand {
    /// Scan the directory now; answer what happened to each policy.
    Reload(oneshot::Sender<Vec<PolicyReload>>),
    /// The probability threshold changed (a model reload): configure the
    /// failover policies with it.
    ProbabilityThreshold(f64),
}

/// Requests queued for the policy task: a reload takes up to seconds
/// (compilation), so a few callers may wait; more are refused with "busy".
pub const POLICY_COMMANDS: usize = 8;

/// The loaded policies: one runtime per failover group.
pub struct PolicySet {
    dir: PathBuf,
    groups: Vec<Group>,
}

fn settings(config: Vec<(String, String)>, limits: PolicyLimits) -> PolicySettings {
    PolicySettings {
        config: config.into_iter().collect::<BTreeMap<_, _>>(),
        fallback_config: None,
        limits,
    }
}

/// The kind a file named `NAME.wasm` or `NAME@VERSION.wasm` must hold, if
/// its name is a kind's.
fn kind_of(path: &Path) -> Option<PolicyKind> {
    let stem = path.file_stem()?.to_str()?;
    let name = stem.split_once('@').map_or(stem, |(name, _)| name);
    name.parse().ok()
}

impl PolicySet {
    /// Builds one runtime per group and loads every `*.wasm` of the
    /// directory into each.
    ///
    /// # Errors
    /// [`DaemonError::Policy`] naming the file (or the directory) that
    /// could not be loaded, and why.
    pub async fn start(
        options: &PolicyOptions,
        groups: Vec<GroupSpec>,
    ) -> Result<Self, DaemonError> {
        let failed = |path: &Path, message: String| DaemonError::Policy {
            path: path.to_owned(),
            message,
        };
        let engine = PolicyEngine::new(EngineConfig {
            cache_dir: options.cache_dir.clone(),
            ..EngineConfig::default()
        })
        .map_err(|e| failed(&options.dir, e.to_string()))?;
        let limits = PolicyLimits {
            deadline_micros: u64::try_from(options.deadline.as_micros()).unwrap_or(u64::MAX),
            ..PolicyLimits::default()
        };
        let mut set = Self {
            dir: options.dir.clone(),
            groups: Vec::new(),
        };
        for spec in groups {
            let runtime = PolicyRuntime::new(
                engine.clone(),
                RuntimeConfig {
                    drift: settings(options.drift.to_pairs(), limits),
                    correlation: settings(options.correlation.to_pairs(), limits),
                    failover: settings(spec.config.to_pairs(), limits),
                    ..RuntimeConfig::default()
                },
            )
            .map_err(|e| failed(&options.dir, e.to_string()))?;
            let mut watcher = umbra_policy_runtime::PolicyWatcher::new(
                runtime.clone(),
                WatchConfig {
                    dir: options.dir.clone(),
                    interval_ms: u64::try_from(WATCH_INTERVAL.as_millis()).unwrap_or(1_000),
                    mode: WatchMode::Activate,
                },
            );
            let reloads = watcher
                .scan()
                .await
                .map_err(|e| failed(&options.dir, e.to_string()))?;
            let mut sources = HashMap::new();
            for reload in reloads {
                match reload.outcome {
                    Ok(id) => {
                        sources.insert(id.kind, reload.path);
                    }
                    Err(error) => return Err(failed(&reload.path, error.to_string())),
                }
            }
            set.groups.push(Group {
                spec,
                runtime,
                watcher,
                sources,
            });
        }
        for (kind, path) in &set
            .groups
            .first()
            .map(|g| g.sources.clone())
            .unwrap_or_default()
        {
            tracing::info!(%kind, path = %path.display(), "WebAssembly policy loaded");
        }
        Ok(set)
    }

    /// Group `group`'s runtime (the first holds drift and correlation).
    #[must_use]
    pub fn runtime(&self, group: usize) -> PolicyRuntime {
        self.groups[group].runtime.clone()
    }

    /// Every group's runtime, in group order.
    #[must_use]
    pub fn runtimes(&self) -> Vec<PolicyRuntime> {
        self.groups.iter().map(|g| g.runtime.clone()).collect()
    }

    /// Scans the directory: loads what changed (in every group), unloads
    /// the policies whose file is gone; one answer per policy kind, plus
    /// one per file that is not a kind's own.
    pub async fn reload(&mut self) -> Vec<PolicyReload> {
        // (kind, source) -> outcome, merged over the groups.
        let mut answers: Vec<PolicyReload> = Vec::new();
        let several = self.groups.len() > 1;
        for (index, group) in self.groups.iter_mut().enumerate() {
            let pairs = if several {
                format!("pairs {}: ", group.spec.pairs.join(", "))
            } else {
                String::new()
            };
            let reloads = match group.watcher.scan().await {
                Ok(reloads) => reloads,
                Err(error) => {
                    answers.push(PolicyReload {
                        kind: "all".into(),
                        source: self.dir.display().to_string(),
                        version: String::new(),
                        outcome: ReloadOutcome::Refused,
                        error: Some(error.to_string()),
                    });
                    continue;
                }
            };
            for reload in reloads {
                let (kind, answer) = match reload.outcome {
                    Ok(id) => {
                        group.sources.insert(id.kind, reload.path.clone());
                        (
                            Some(id.kind),
                            PolicyReload {
                                kind: id.kind.to_string(),
                                source: reload.path.display().to_string(),
                                version: id.version.clone(),
                                outcome: ReloadOutcome::Loaded,
                                error: None,
                            },
                        )
                    }
                    Err(error) => {
                        let kind = kind_of(&reload.path);
                        (
                            kind,
                            PolicyReload {
                                kind: kind.map_or_else(|| "unknown".into(), |k| k.to_string()),
                                source: reload.path.display().to_string(),
                                version: String::new(),
                                outcome: ReloadOutcome::Refused,
                                error: Some(format!("{pairs}{error}")),
                            },
                        )
                    }
                };
                // Only the failover policy differs between groups; the
                // others are reported once, from the first group.
                if index > 0 && kind != Some(PolicyKind::Failover) {
                    continue;
                }
                merge(&mut answers, answer);
            }
            // A policy whose file is gone: back to the built-in policy.
            let gone: Vec<PolicyKind> = group
                .sources
                .iter()
                .filter(|(_, path)| !path.exists())
                .map(|(kind, _)| *kind)
                .collect();
            for kind in gone {
                let path = group.sources.remove(&kind).unwrap_or_default();
                if let Some(id) = group.runtime.unload(kind) {
                    tracing::info!(%kind, policy = %id, path = %path.display(), "policy file removed: the built-in policy decides");
                }
                if index == 0 || kind == PolicyKind::Failover {
                    merge(
                        &mut answers,
                        PolicyReload {
                            kind: kind.to_string(),
                            source: "builtin".into(),
                            version: String::new(),
                            outcome: ReloadOutcome::Loaded,
                            error: None,
                        },
                    );
                }
            }
        }
        // The kinds nothing happened to, as they stand.
        for kind in PolicyKind::ALL {
            if answers.iter().any(|a| a.kind == kind.as_str()) {
                continue;
            }
            let groups = if kind == PolicyKind::Failover {
                &self.groups[..]
            } else {
                &self.groups[..1.min(self.groups.len())]
            };
            for group in groups {
                let status = group.runtime.status(kind);
                let file = self.dir.join(format!("{kind}.wasm"));
                let error = status.last_reload_error.filter(|_| file.exists());
                let answer = match (error, status.active) {
                    // The file on disk was refused earlier (by the
                    // watcher): it still is.
                    (Some(error), active) => PolicyReload {
                        kind: kind.to_string(),
                        source: file.display().to_string(),
                        version: active.map(|a| a.id.version).unwrap_or_default(),
                        outcome: ReloadOutcome::Refused,
                        error: Some(error),
                    },
                    (None, Some(active)) => PolicyReload {
                        kind: kind.to_string(),
                        source: group
                            .sources
                            .get(&kind)
                            .map_or_else(String::new, |p| p.display().to_string()),
                        version: active.id.version,
                        outcome: ReloadOutcome::Unchanged,
                        error: None,
                    },
                    (None, None) => PolicyReload {
                        kind: kind.to_string(),
                        source: "builtin".into(),
                        version: String::new(),
                        outcome: ReloadOutcome::Unchanged,
                        error: None,
                    },
                };
                merge(&mut answers, answer);
            }
        }
        answers
    }

    /// Configures every group's failover policy with `threshold`: later
    /// loads get it, and an active failover policy is loaded again from
    /// its file with it. Returns what could not be reconfigured.
    pub async fn set_probability_threshold(&mut self, threshold: f64) -> Vec<String> {
        let mut problems = Vec::new();
        for group in &mut self.groups {
            group.spec.config.probability_threshold = threshold;
            let pairs = group.spec.config.to_pairs();
            if let Err(error) = group.runtime.set_config(PolicyKind::Failover, &pairs) {
                problems.push(error.to_string());
                continue;
            }
            let (Some(active), Some(path)) = (
                group.runtime.status(PolicyKind::Failover).active,
                group.sources.get(&PolicyKind::Failover),
            ) else {
                continue;
            };
            let loaded = match tokio::fs::read(path).await {
                Ok(bytes) => group
                    .runtime
                    .load(
                        PolicySource::new(active.id.name, active.id.version, bytes)
                            .expecting(PolicyKind::Failover),
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = loaded {
                problems.push(format!(
                    "{}: the failover policy keeps probability threshold {}: {error}",
                    path.display(),
                    active
                        .config
                        .iter()
                        .find(|(k, _)| k == "probability-threshold")
                        .map_or("?", |(_, v)| v.as_str())
                ));
            }
        }
        problems
    }

    /// Serves [`PolicyCommand`]s and, when `watch`, scans the directory
    /// every second, until `shutdown`.
    pub async fn run(
        mut self,
        watch: bool,
        mut commands: mpsc::Receiver<PolicyCommand>,
        shutdown: CancellationToken,
    ) {
        let mut interval = tokio::time::interval(WATCH_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; start already scanned.
        interval.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick(), if watch => {
                    // The watcher logs every load and refusal itself.
                    let _ = self.reload().await;
                }
                command = commands.recv() => match command {
                    None => return,
                    Some(PolicyCommand::Reload(reply)) => {
                        let answer = self.reload().await;
                        let _ = reply.send(answer);
                    }
                    Some(PolicyCommand::ProbabilityThreshold(threshold)) => {
                        for problem in self.set_probability_threshold(threshold).await {
                            tracing::error!(%problem, "reconfiguring the failover policy");
                        }
                    }
                },
            }
        }
    }
}

/// Adds `answer` to `answers`, or merges it into the answer of the same
/// kind and source from another group: a refusal wins, errors are joined.
fn merge(answers: &mut Vec<PolicyReload>, answer: PolicyReload) {
    let Some(existing) = answers
        .iter_mut()
        .find(|a| a.kind == answer.kind && a.source == answer.source)
    else {
        answers.push(answer);
        return;
    };
    if answer.outcome == ReloadOutcome::Refused {
        existing.error = Some(match existing.error.take() {
            Some(error) if Some(&error) != answer.error.as_ref() => {
                format!("{error}; {}", answer.error.unwrap_or_default())
            }
            _ => answer.error.unwrap_or_default(),
        });
        existing.outcome = ReloadOutcome::Refused;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_named_after_a_kind_hold_it() {
        assert_eq!(
            kind_of(Path::new("/p/failover.wasm")),
            Some(PolicyKind::Failover)
        );
        assert_eq!(
            kind_of(Path::new("drift@1.2.0.wasm")),
            Some(PolicyKind::Drift)
        );
        assert_eq!(kind_of(Path::new("mine.wasm")), None);
    }

    #[test]
    fn a_refusal_in_one_group_refuses_the_merged_answer() {
        let loaded = PolicyReload {
            kind: "failover".into(),
            source: "/p/failover.wasm".into(),
            version: "1".into(),
            outcome: ReloadOutcome::Loaded,
            error: None,
        };
        let mut answers = vec![loaded.clone()];
        merge(
            &mut answers,
            PolicyReload {
                outcome: ReloadOutcome::Refused,
                error: Some("pairs b: configure refused".into()),
                ..loaded.clone()
            },
        );
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].outcome, ReloadOutcome::Refused);
        assert_eq!(
            answers[0].error.as_deref(),
            Some("pairs b: configure refused")
        );
        merge(
            &mut answers,
            PolicyReload {
                kind: "drift".into(),
                ..loaded
            },
        );
        assert_eq!(answers.len(), 2);
    }
}
