//! Throwaway network namespaces (`umbra-nl-<random>-<role>`), removed on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use umbra_netlink::{NetNs, NsTarget};

/// Fails the test loudly unless we are root: a skipped network test would
/// pass without proving anything.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("Uid line");
    assert_eq!(
        euid, "0",
        "these tests create network namespaces and need root (CI runs them as root)"
    );
}

/// Runs a command, asserts it succeeded, returns stdout.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs a command inside namespace `ns` with `ip netns exec`.
pub fn run_in(ns: &str, args: &[&str]) -> String {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    run(&full)
}

/// A set of namespaces sharing a random prefix; all deleted on drop (which
/// also deletes their veths).
pub struct Lab {
    prefix: String,
    names: Vec<String>,
}

impl Lab {
    pub fn new() -> Lab {
        require_root();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let salt = nanos ^ (std::process::id() << 12) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
        Lab {
            prefix: format!("umbra-nl-{salt:08x}"),
            names: Vec::new(),
        }
    }

    /// Creates namespace `<prefix>-<role>` with loopback up and returns its name.
    pub fn ns(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        run(&["ip", "netns", "add", &name]);
        self.names.push(name.clone());
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        // No IPv6 autoconfiguration chatter on test links.
        run_in(
            &name,
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        );
        run_in(
            &name,
            &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
        );
        name
    }

    /// Joins `a`'s interface `a_if` (address `a_addr`, CIDR) and `b`'s
    /// `b_if` with a veth pair, both up.
    pub fn link(&self, a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
        run(&[
            "ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
        ]);
        for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", ifname]);
            run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        }
    }

    /// Opens a [`NetNs`] handle on one of the lab's namespaces.
    pub fn handle(&self, name: &str) -> NetNs {
        NetNs::open(NsTarget::Named(name.to_owned())).expect("open namespace")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}
