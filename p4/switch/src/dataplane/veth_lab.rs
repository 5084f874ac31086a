//! Throw-away network namespaces joined by veth pairs, for dataplane tests,
//! benchmarks and the lab: built with `ip`, offloads turned off with
//! `ethtool`, IPv6 disabled so that the kernel sends nothing on its own, and
//! torn down on drop (deleting a namespace deletes its veth ends).
//!
//! Nothing here assigns addresses or routes: frames are sent raw, so traffic
//! can only ever go where the veth pairs lead. Frames built by callers use
//! addresses from 198.18.0.0/15 only. Requires root (`CAP_SYS_ADMIN`,
//! `CAP_NET_ADMIN`) and the `ip` and `ethtool` tools.

use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::af_packet::enter_network_namespace;

/// A set of namespaces and veth pairs that exists as long as the value.
#[derive(Debug)]
pub struct VethLab {
    prefix: String,
    namespaces: Vec<String>,
}

/// Runs a command, turning a non-zero exit into an error with its stderr.
fn run(program: &str, args: &[&str]) -> io::Result<String> {
    let output = Command::new(program).args(args).output().map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot run {program} (is it installed?): {err}"),
        )
    })?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl VethLab {
    /// An empty lab whose namespaces are named `umbra-<label>-<pid>-<n>-*`,
    /// unique per process and per lab.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            prefix: format!("umbra-{label}-{}-{n}", std::process::id()),
            namespaces: Vec::new(),
        }
    }

    /// The process that created the lab a namespace (or a cgroup named
    /// after it) belongs to: the pid in `umbra-<label>-<pid>-<n>-*`, as
    /// [`Self::new`] names them; `None` for any other name.
    #[must_use]
    pub fn owner(name: &str) -> Option<u32> {
        let mut parts = name.strip_prefix("umbra-")?.split('-');
        let _label = parts.next()?;
        parts.next()?.parse().ok()
    }

    /// Creates namespace `<prefix>-<name>` with IPv6 off and loopback up;
    /// returns its full name.
    ///
    /// # Errors
    /// If `ip` fails (e.g. not root).
    pub fn add_namespace(&mut self, name: &str) -> io::Result<String> {
        let full = format!("{}-{name}", self.prefix);
        run("ip", &["netns", "add", &full])?;
        self.namespaces.push(full.clone());
        run(
            "ip",
            &[
                "netns",
                "exec",
                &full,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )?;
        run("ip", &["-n", &full, "link", "set", "lo", "up"])?;
        Ok(full)
    }

    /// Creates a veth pair between `(namespace, ifname)` ends (full
    /// namespace names as returned by [`VethLab::add_namespace`]), turns
    /// offloads off on both ends and brings them up.
    ///
    /// # Errors
    /// If `ip` or `ethtool` fails.
    pub fn add_veth_pair(&mut self, a: (&str, &str), b: (&str, &str)) -> io::Result<()> {
        run(
            "ip",
            &[
                "link", "add", "name", a.1, "netns", a.0, "type", "veth", "peer", "name", b.1,
                "netns", b.0,
            ],
        )?;
        for (ns, ifname) in [a, b] {
            run(
                "ip",
                &[
                    "netns", "exec", ns, "ethtool", "-K", ifname, "gro", "off", "gso", "off",
                    "tso", "off", "tx", "off", "rx", "off", "txvlan", "off", "rxvlan", "off",
                ],
            )?;
            run("ip", &["-n", ns, "link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    /// Runs `f` on a new thread that has entered `namespace` and returns its
    /// result: sockets `f` opens (e.g. a whole [`super::Dataplane`]) belong
    /// to that namespace and can be used from any thread afterwards.
    ///
    /// # Errors
    /// If the namespace cannot be entered.
    ///
    /// # Panics
    /// If `f` panics.
    pub fn run_in<T: Send>(namespace: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter_network_namespace(namespace)?;
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The kernel's counter `name` (e.g. `rx_packets`) of an interface.
    ///
    /// # Errors
    /// If the interface or counter does not exist.
    pub fn interface_counter(namespace: &str, ifname: &str, name: &str) -> io::Result<u64> {
        let path = format!("/sys/class/net/{ifname}/statistics/{name}");
        let text = run("ip", &["netns", "exec", namespace, "cat", &path])?;
        text.trim()
            .parse()
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {err}")))
    }
}

impl Drop for VethLab {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            // Best effort: a namespace that is already gone is fine.
            let _ = run("ip", &["netns", "del", &ns]);
        }
    }
}
