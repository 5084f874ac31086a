//! Hot reload from a watched directory: every `*.wasm` file that appears or
//! changes is loaded (compiled and validated off the decision path) and
//! becomes the active policy of its kind, or its shadow candidate.
//!
//! The directory is polled at a bounded interval rather than watched with
//! inotify: policies change rarely, polling works the same on every
//! filesystem (including network mounts and bind mounts into containers),
//! and a poll costs one `readdir` and one `stat` per file.
//!
//! A file named `NAME@VERSION.wasm` is loaded as that name and version;
//! any other `STEM.wasm` as name `STEM`, version `sha256:<first 12 hex
//! digits of its content>`. A file whose name is a kind's (`drift.wasm`,
//! `correlation@2.wasm`, `failover.wasm`...) must hold a policy of that
//! kind: anything else is refused, and the refusal is recorded on that
//! kind ([`crate::SlotStatus::last_reload_error`]) even when the file does
//! not compile. Write files atomically (write elsewhere, then rename into
//! the directory): a half-written file fails to compile, is reported, and
//! is loaded again once it changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::policy::{PolicyId, PolicySource};
use crate::runtime::PolicyRuntime;
use crate::{Error, Result};

/// What the watcher does with a new file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchMode {
    /// Make it the active policy of its kind.
    #[default]
    Activate,
    /// Run it in shadow mode beside the active policy (promoted by a command
    /// or automatically, per the runtime's shadow settings).
    Shadow,
}

/// Settings of the watcher.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// The directory to watch.
    pub dir: PathBuf,
    /// Time between two polls, in milliseconds (at least 50).
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// What to do with new files.
    #[serde(default)]
    pub mode: WatchMode,
}

fn default_interval_ms() -> u64 {
    1_000
}

/// The outcome of loading one file.
#[derive(Debug)]
pub struct Reload {
    /// The file.
    pub path: PathBuf,
    /// The policy now active (or candidate), or why the file was refused
    /// (the previous version stays).
    pub outcome: Result<Arc<PolicyId>>,
}

/// Polls a directory and loads what changes in it.
#[derive(Debug)]
pub struct PolicyWatcher {
    runtime: PolicyRuntime,
    config: WatchConfig,
    seen: HashMap<PathBuf, (u64, SystemTime)>,
}

impl PolicyWatcher {
    /// A watcher that has seen nothing yet: its first scan loads every file.
    pub fn new(runtime: PolicyRuntime, config: WatchConfig) -> Self {
        Self {
            runtime,
            config,
            seen: HashMap::new(),
        }
    }

    /// One poll: loads every file that is new or changed since the last
    /// scan, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be read. Failures to load one
    /// file are in its [`Reload`], not here.
    pub async fn scan(&mut self) -> Result<Vec<Reload>> {
        let dir = self.config.dir.clone();
        let io = |source| Error::Io {
            action: "reading the policy directory",
            path: dir.clone(),
            source,
        };
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(io)?;
        let mut changed = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
                continue;
            }
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let stamp = (
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            );
            if self.seen.get(&path) != Some(&stamp) {
                changed.push((stamp, path));
            }
        }
        changed.sort_by_key(|((_, modified), path)| (*modified, path.clone()));

        let mut reloads = Vec::new();
        for (stamp, path) in changed {
            self.seen.insert(path.clone(), stamp);
            let outcome = self.load(&path).await;
            match &outcome {
                Ok(id) => {
                    tracing::info!(path = %path.display(), policy = %id, kind = %id.kind, "policy file loaded")
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "policy file refused; the previous version stays")
                }
            }
            reloads.push(Reload { path, outcome });
        }
        Ok(reloads)
    }

    async fn load(&self, path: &Path) -> Result<Arc<PolicyId>> {
        let bytes = tokio::fs::read(path).await.map_err(|source| Error::Io {
            action: "reading policy",
            path: path.to_owned(),
            source,
        })?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("policy");
        let (name, version) = match stem.split_once('@') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => {
                (name.to_owned(), version.to_owned())
            }
            _ => (
                stem.to_owned(),
                format!("sha256:{}", &crate::cache::digest(&bytes)[..12]),
            ),
        };
        let mut source = PolicySource::new(name, version, bytes);
        if let Ok(kind) = source.name.parse::<crate::PolicyKind>() {
            source = source.expecting(kind);
        }
        match self.config.mode {
            WatchMode::Activate => self.runtime.load(source).await,
            WatchMode::Shadow => self.runtime.load_candidate(source, None).await,
        }
    }

    /// Polls until `shutdown` is cancelled.
    ///
    /// # Errors
    ///
    /// None in practice: an unreadable directory is logged and polled again
    /// at the next interval.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let period = Duration::from_millis(self.config.interval_ms.max(50));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = interval.tick() => {}
            }
            if let Err(error) = self.scan().await {
                tracing::warn!(%error, "cannot poll the policy directory");
            }
        }
    }
}
