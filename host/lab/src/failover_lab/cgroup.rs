//! A device's cgroup: where the CPU and memory faults' processes are
//! charged, what the device's agent reads its CPU and memory use from, and
//! the caps that keep those faults from starving the machine.
//!
//! Hosts differ. On a unified (pure cgroup v2) host, one directory under
//! the cgroup2 mount does everything once the `cpu` and `memory`
//! controllers are enabled for it. On a hybrid host (v1 controllers,
//! cgroup2 mounted at `/sys/fs/cgroup/unified` without controllers), the
//! v2 directory still accounts CPU (`cpu.stat` is a core file) but not
//! memory, so the caps come from the v1 `cpu` and `memory` hierarchies and
//! the agent, which reads cgroup v2 files only, reports no memory use.
//! Whatever is missing is said once in a log line and in [`CgroupInfo`].

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// What a device's cgroup provides on this host.
#[derive(Debug, Clone, Serialize)]
pub struct CgroupInfo {
    /// The cgroup v2 directory the device's agent reads (`cpu.stat`,
    /// `memory.current`); `None` when there is none.
    pub agent_path: Option<PathBuf>,
    /// The agent reports the device's CPU use.
    pub cpu_metric: bool,
    /// The agent reports the device's memory use (cgroup v2 memory
    /// controller).
    pub memory_metric: bool,
    /// CPU faults are capped by a CPU quota (v2 `cpu.max` or v1 CFS quota).
    pub cpu_cap: bool,
    /// Memory faults are bounded by a memory limit (v2 `memory.max` or v1
    /// `memory.limit_in_bytes`).
    pub memory_limit: bool,
}

/// One device's cgroup directories; removed on drop.
#[derive(Debug)]
pub(crate) struct DeviceCgroup {
    /// The cgroup v2 directory.
    unified: Option<PathBuf>,
    /// `cpu` is enabled for `unified` (`cpu.max` works).
    unified_cpu: bool,
    /// `memory` is enabled for `unified` (`memory.current`, `memory.max`).
    unified_memory: bool,
    /// The v1 `cpu` hierarchy's directory, when v2 has no `cpu`.
    v1_cpu: Option<PathBuf>,
    /// The v1 `memory` hierarchy's directory, when v2 has no `memory`.
    v1_memory: Option<PathBuf>,
    removed: AtomicBool,
}

/// Mount points of cgroup file systems: the cgroup2 one, and v1 ones with
/// their controllers.
fn cgroup_mounts() -> (Option<PathBuf>, Vec<(PathBuf, Vec<String>)>) {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut unified = None;
    let mut v1 = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, fstype, options, ..] = fields[..] else {
            continue;
        };
        match fstype {
            "cgroup2" if unified.is_none() => unified = Some(PathBuf::from(dir)),
            "cgroup" => v1.push((
                PathBuf::from(dir),
                options.split(',').map(str::to_owned).collect(),
            )),
            _ => {}
        }
    }
    (unified, v1)
}

fn has_word(path: &Path, word: &str) -> bool {
    fs::read_to_string(path)
        .map(|text| text.split_whitespace().any(|w| w == word))
        .unwrap_or(false)
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    fs::write(path, value).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("write {value:?} to {}: {e}", path.display()),
        )
    })
}

impl DeviceCgroup {
    /// Creates the cgroup `name` in whatever hierarchies the host offers;
    /// `None` (and a log line) when it offers none the lab can use.
    pub(crate) fn create(name: &str) -> Option<DeviceCgroup> {
        let (unified_root, v1) = cgroup_mounts();
        let mut cgroup = DeviceCgroup {
            unified: None,
            unified_cpu: false,
            unified_memory: false,
            v1_cpu: None,
            v1_memory: None,
            removed: AtomicBool::new(false),
        };
        if let Some(root) = unified_root {
            // Controllers the root offers but does not pass down yet; a
            // root with processes of its own (a container's cgroup
            // namespace) refuses, and the lab does without.
            for controller in ["cpu", "memory"] {
                if has_word(&root.join("cgroup.controllers"), controller)
                    && !has_word(&root.join("cgroup.subtree_control"), controller)
                {
                    let _ = write(
                        &root.join("cgroup.subtree_control"),
                        &format!("+{controller}"),
                    );
                }
            }
            let dir = root.join(name);
            match fs::create_dir(&dir) {
                Ok(()) => {
                    cgroup.unified_cpu = has_word(&dir.join("cgroup.controllers"), "cpu");
                    cgroup.unified_memory = has_word(&dir.join("cgroup.controllers"), "memory");
                    cgroup.unified = Some(dir);
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "failover lab: cannot create a cgroup v2");
                }
            }
        }
        for (root, controllers) in &v1 {
            let has = |c: &str| controllers.iter().any(|o| o == c);
            if has("cpu") && !cgroup.unified_cpu && cgroup.v1_cpu.is_none() {
                let dir = root.join(name);
                if fs::create_dir(&dir).is_ok() {
                    cgroup.v1_cpu = Some(dir);
                }
            }
            if has("memory") && !cgroup.unified_memory && cgroup.v1_memory.is_none() {
                let dir = root.join(name);
                if fs::create_dir(&dir).is_ok() {
                    cgroup.v1_memory = Some(dir);
                }
            }
        }
        let info = cgroup.info();
        if !info.cpu_metric && !info.cpu_cap && !info.memory_limit {
            tracing::warn!(
                "failover lab: no usable cgroup for {name}: the agents report CPU and memory as absent, and the cpu and memory faults run uncapped"
            );
            cgroup.remove();
            return None;
        }
        if !info.memory_metric {
            tracing::warn!(
                "failover lab: cgroup v2 has no memory controller here (hybrid cgroup layout?): the agent of {name} reports memory use as absent (0); the lab reads it from the v1 memory controller"
            );
        }
        if !info.cpu_metric {
            tracing::warn!(
                "failover lab: no cgroup v2 for {name}: its agent reports CPU use as absent (0)"
            );
        }
        tracing::info!(?info, "failover lab: cgroup of {name}");
        Some(cgroup)
    }

    /// What this cgroup provides.
    pub(crate) fn info(&self) -> CgroupInfo {
        let cpu_metric = self
            .unified
            .as_ref()
            .is_some_and(|d| d.join("cpu.stat").exists());
        CgroupInfo {
            agent_path: self.agent_path(),
            cpu_metric,
            memory_metric: cpu_metric && self.unified_memory,
            cpu_cap: self.unified_cpu || self.v1_cpu.is_some(),
            memory_limit: self.unified_memory || self.v1_memory.is_some(),
        }
    }

    /// The directory the agent reads, when it has `cpu.stat`.
    pub(crate) fn agent_path(&self) -> Option<PathBuf> {
        self.unified.clone().filter(|d| d.join("cpu.stat").exists())
    }

    /// Moves process `pid` into every directory of the cgroup.
    pub(crate) fn add_process(&self, pid: u32) -> std::io::Result<()> {
        for dir in [&self.unified, &self.v1_cpu, &self.v1_memory]
            .into_iter()
            .flatten()
        {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Caps the cgroup's CPU at `cores` (`None`: no cap); false when the
    /// host offers no CPU quota. Each call refills the cgroup's budget for
    /// the current period (the kernel does that on every write), so
    /// callers change the cap seldom.
    pub(crate) fn set_cpu_cap(&self, cores: Option<f64>) -> std::io::Result<bool> {
        const PERIOD_US: u64 = 100_000;
        let quota_us = cores.map(|c| ((c * PERIOD_US as f64) as u64).max(1_000));
        if self.unified_cpu
            && let Some(dir) = &self.unified
        {
            let quota = quota_us.map_or_else(|| "max".to_owned(), |q| q.to_string());
            write(&dir.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
            return Ok(true);
        }
        if let Some(dir) = &self.v1_cpu {
            // Every write of the CFS settings refills the cgroup's budget
            // and lifts its throttling, so nothing is written needlessly.
            let period = dir.join("cpu.cfs_period_us");
            let current = fs::read_to_string(&period).unwrap_or_default();
            if current.trim() != PERIOD_US.to_string() {
                write(&period, &PERIOD_US.to_string())?;
            }
            let quota = quota_us.map_or_else(|| "-1".to_owned(), |q| q.to_string());
            write(&dir.join("cpu.cfs_quota_us"), &quota)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Limits the cgroup's memory to `bytes` (best effort, logged).
    pub(crate) fn set_memory_limit(&self, bytes: u64) {
        let result = if self.unified_memory
            && let Some(dir) = &self.unified
        {
            write(&dir.join("memory.max"), &bytes.to_string())
        } else if let Some(dir) = &self.v1_memory {
            write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())
        } else {
            return;
        };
        if let Err(error) = result {
            tracing::warn!(%error, "failover lab: cannot limit a device's memory");
        }
    }

    /// Memory charged to the cgroup now, when a memory controller counts it.
    pub(crate) fn memory_bytes(&self) -> Option<u64> {
        let path = if self.unified_memory {
            self.unified.as_ref()?.join("memory.current")
        } else {
            self.v1_memory.as_ref()?.join("memory.usage_in_bytes")
        };
        fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Kills what is left in the cgroup and removes its directories
    /// (idempotent; failures are logged).
    pub(crate) fn remove(&self) {
        if self.removed.swap(true, Ordering::SeqCst) {
            return;
        }
        let dirs: Vec<&PathBuf> = [&self.unified, &self.v1_cpu, &self.v1_memory]
            .into_iter()
            .flatten()
            .collect();
        if let Some(dir) = &self.unified
            && dir.join("cgroup.kill").exists()
        {
            let _ = write(&dir.join("cgroup.kill"), "1");
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for dir in dirs {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(error) if Instant::now() >= deadline => {
                        tracing::warn!(dir = %dir.display(), %error, "failover lab: cannot remove a cgroup");
                        break;
                    }
                    // Processes killed a moment ago are still leaving.
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

impl Drop for DeviceCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}
