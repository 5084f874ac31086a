//! Removes what labs of processes that are gone left behind (a lab is
//! torn down on drop and on Ctrl-C, but not when its process is killed):
//! their network namespaces, the processes still running in them, and
//! their cgroups. Labs of live processes are left alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use umbra_switch::dataplane::veth_lab::VethLab;

/// What [`sweep`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Network namespaces deleted.
    pub namespaces: Vec<String>,
    /// Cgroup directories removed.
    pub cgroups: Vec<PathBuf>,
    /// Processes killed (found in those namespaces or cgroups).
    pub processes: usize,
    /// What could not be removed, with why.
    pub failures: Vec<String>,
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn stale(name: &str) -> bool {
    VethLab::owner(name).is_some_and(|pid| !alive(pid))
}

fn kill(pids: impl IntoIterator<Item = String>) -> usize {
    let mut n = 0;
    for pid in pids {
        let pid = pid.trim();
        if pid.is_empty() {
            continue;
        }
        if Command::new("kill")
            .args(["-9", pid])
            .status()
            .is_ok_and(|s| s.success())
        {
            n += 1;
        }
    }
    n
}

/// Sweeps the stale labs' namespaces and cgroups.
///
/// # Errors
/// `ip netns list` cannot run (iproute2 missing).
pub fn sweep() -> std::io::Result<Swept> {
    let mut swept = Swept::default();
    let out = Command::new("ip").args(["netns", "list"]).output()?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if !stale(name) {
            continue;
        }
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
            swept.processes += kill(
                String::from_utf8_lossy(&pids.stdout)
                    .lines()
                    .map(str::to_owned),
            );
        }
        match Command::new("ip").args(["netns", "del", name]).status() {
            Ok(s) if s.success() => swept.namespaces.push(name.to_owned()),
            Ok(s) => swept.failures.push(format!("ip netns del {name}: {s}")),
            Err(e) => swept.failures.push(format!("ip netns del {name}: {e}")),
        }
    }
    // Cgroups: directly under the v2 root (or the hybrid `unified`
    // mount) and under each v1 controller.
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !path.is_dir() || !stale(&name) {
                continue;
            }
            if let Ok(procs) = std::fs::read_to_string(path.join("cgroup.procs")) {
                swept.processes += kill(procs.lines().map(str::to_owned));
            }
            // A killed process leaves its cgroup a moment later.
            let mut removed = false;
            for _ in 0..20 {
                if std::fs::remove_dir(&path).is_ok() {
                    removed = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if removed {
                swept.cgroups.push(path);
            } else {
                swept
                    .failures
                    .push(format!("{}: cannot remove (still in use)", path.display()));
            }
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_belongs_to_the_pid_in_its_name() {
        assert_eq!(VethLab::owner("umbra-fo-25918-0-primary"), Some(25918));
        assert_eq!(VethLab::owner("umbra-lab-7-12-sw"), Some(7));
        assert_eq!(VethLab::owner("umbra-fo-x-0"), None);
        assert_eq!(VethLab::owner("other-fo-1-0"), None);
        assert!(!stale(&format!("umbra-fo-{}-0-client", std::process::id())));
        assert!(!stale("not-ours"));
    }
}
