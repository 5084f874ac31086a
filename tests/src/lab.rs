//! Throw-away network namespaces with veth pairs, deleted on drop.
//!
//! A namespace is named `umbra-t-<tag>-<pid>-<n>`, so tests in parallel (in
//! one process or several) never share one, and a namespace left behind by
//! a test process that was SIGKILLed is recognised by its dead pid and
//! removed by the next test. Both ends of every veth pair live inside the
//! namespace, so deleting it deletes them, and no frame sent in a lab can
//! reach any other network.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

const PREFIX: &str = "umbra-t-";

/// A network namespace that exists as long as this value.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `umbra-t-<tag>-<pid>-<n>` with `lo` up and IPv6 disabled (so
    /// no router solicitation or DAD frame ever shows up on a lab port).
    ///
    /// # Errors
    /// `ip` or `ethtool` is missing, or the namespace cannot be set up (not
    /// root?).
    pub fn create(tag: &str) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        for tool in ["ip", "ethtool"] {
            if which(tool).is_none() {
                bail!(
                    "`{tool}` is not installed; run scripts/install-deps.sh as root \
                     (it installs iproute2 and ethtool)"
                );
            }
        }
        remove_stale_namespaces();
        let name = format!(
            "{PREFIX}{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]).context("creating a network namespace (are we root?)")?;
        // From here on the guard deletes the namespace, whatever fails next.
        let netns = Self { name };
        ip(&["-n", &netns.name, "link", "set", "lo", "up"])?;
        netns.run(
            "sysctl",
            &[
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )?;
        Ok(netns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec <name> <program>`: a command that runs inside.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Creates the veth pair `a`–`b` inside the namespace, with IPv6
    /// disabled and checksum/segmentation offloads off on both ends (the
    /// switch must see frames as a wire carries them), and brings both up.
    ///
    /// # Errors
    /// A command fails.
    pub fn add_veth_pair(&self, a: &str, b: &str) -> Result<()> {
        ip(&[
            "-n", &self.name, "link", "add", a, "type", "veth", "peer", "name", b,
        ])?;
        for ifname in [a, b] {
            self.run(
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{ifname}.disable_ipv6=1")],
            )?;
            self.run(
                "ethtool",
                &[
                    "-K", ifname, "rx", "off", "tx", "off", "gro", "off", "gso", "off", "tso",
                    "off",
                ],
            )?;
            ip(&["-n", &self.name, "link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        let output = self
            .exec(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program} in {}", self.name))?;
        if !output.status.success() {
            bail!(
                "{program} {} in namespace {} failed ({}): {}",
                args.join(" "),
                self.name,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(error) = ip(&["netns", "del", &self.name]) {
            eprintln!("cannot delete network namespace {}: {error:#}", self.name);
        }
    }
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !output.status.success() {
        bail!(
            "ip {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Deletes `umbra-t-*-<pid>-<n>` namespaces whose creating process is gone
/// (a test run that was killed before its guards could run).
fn remove_stale_namespaces() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let mut parts = rest.rsplit('-');
        let (Some(_n), Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}
