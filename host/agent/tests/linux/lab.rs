//! The firewall lab: `client` and `server` joined through two stateful
//! firewalls in parallel, `primary` and `shadow`, in throwaway namespaces
//! (`umbra-ag-<random>-<role>`) that are removed on drop; and two agents
//! over the firewalls with a minimal one-way replication between them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use umbra_agent::model::{Entry, Key};
use umbra_agent::{Agent, AgentConfig, LinuxBackend, LinuxConfig, Outcome};
use umbra_netlink::NetNs;

/// The server's address (on its loopback, reached through a firewall).
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 1);
/// The client's address (on its loopback), the source of its connections.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);
/// The routing table the agents replicate in these tests.
pub const TABLE: u32 = 100;
/// Longest any single wait of a test may take.
pub const WAIT: Duration = Duration::from_secs(20);

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
        "the Linux backend tests create network namespaces and need root (CI runs them as root)"
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

/// `ip route show table TABLE` in `ns`; empty while the table does not
/// exist (`ip` fails on a table without routes).
pub fn routes_in(ns: &str, table: u32) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "route", "show", "table", &table.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip: {e}"));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Polls `check` every 50 ms until it holds; false after `WAIT`.
pub fn wait_until(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// The nftables firewall of both `primary` and `shadow`: established and
/// related traffic passes, a new TCP connection only with a bare SYN,
/// everything else is dropped.
const FIREWALL: &str = "table inet fw {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        tcp flags & (syn | ack) == syn ct state new accept
    }
}";

/// The namespaces of one lab; deleted (with their veths) on drop.
pub struct FirewallLab {
    pub client: String,
    pub primary: String,
    pub shadow: String,
    pub server: String,
    names: Vec<String>,
}

impl FirewallLab {
    /// Builds the lab with traffic going through `primary`:
    ///
    /// ```text
    ///            in0 primary out0
    ///  client ─┤                  ├─ server
    ///            in0 shadow  out0
    /// ```
    /// `client` 198.19.1.1 and `server` 198.19.2.1 live on loopbacks and
    /// route to each other through one firewall, switched by
    /// [`FirewallLab::route_via_shadow`].
    pub fn build() -> FirewallLab {
        require_root();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let salt = nanos ^ (std::process::id() << 12) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("umbra-ag-{salt:08x}");
        let mut lab = FirewallLab {
            client: format!("{prefix}-client"),
            primary: format!("{prefix}-primary"),
            shadow: format!("{prefix}-shadow"),
            server: format!("{prefix}-server"),
            names: Vec::new(),
        };
        for name in [&lab.client, &lab.primary, &lab.shadow, &lab.server] {
            run(&["ip", "netns", "add", name]);
            lab.names.push(name.clone());
            run(&["ip", "-n", name, "link", "set", "lo", "up"]);
            for sysctl in [
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
                // The path of a connection moves between interfaces.
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ] {
                run_in(name, &["sysctl", "-qw", sysctl]);
            }
        }
        let (c, p, s, v) = (&lab.client, &lab.primary, &lab.shadow, &lab.server);
        link(c, "cp", "198.18.1.2/24", p, "in0", "198.18.1.1/24");
        link(c, "cs", "198.18.3.2/24", s, "in0", "198.18.3.1/24");
        link(p, "out0", "198.18.2.1/24", v, "sp", "198.18.2.2/24");
        link(s, "out0", "198.18.4.1/24", v, "ss", "198.18.4.2/24");
        run(&["ip", "-n", c, "addr", "add", "198.19.1.1/32", "dev", "lo"]);
        run(&["ip", "-n", v, "addr", "add", "198.19.2.1/32", "dev", "lo"]);
        for (fw, client_side, server_side) in [
            (p, "198.18.1.2", "198.18.2.2"),
            (s, "198.18.3.2", "198.18.4.2"),
        ] {
            run_in(fw, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            run(&[
                "ip",
                "-n",
                fw,
                "route",
                "add",
                "198.19.1.1/32",
                "via",
                client_side,
            ]);
            run(&[
                "ip",
                "-n",
                fw,
                "route",
                "add",
                "198.19.2.1/32",
                "via",
                server_side,
            ]);
            run_in(fw, &["nft", FIREWALL]);
            // The ruleset's `ct` expressions loaded conntrack, which owns
            // this sysctl: unknown mid-stream TCP is invalid, not picked up.
            run_in(
                fw,
                &["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"],
            );
        }
        lab.route("add", "198.18.1.1", "198.18.2.1");
        lab
    }

    fn route(&self, verb: &str, client_gateway: &str, server_gateway: &str) {
        for (ns, to, gateway, src) in [
            (&self.client, "198.19.2.1/32", client_gateway, "198.19.1.1"),
            (&self.server, "198.19.1.1/32", server_gateway, "198.19.2.1"),
        ] {
            run(&[
                "ip", "-n", ns, "route", verb, to, "via", gateway, "src", src,
            ]);
        }
    }

    /// Moves both directions of client–server traffic to the shadow and
    /// cuts the primary's links, as a failover would.
    pub fn fail_over_to_shadow(&self) {
        self.route("replace", "198.18.3.1", "198.18.4.1");
        for ifname in ["in0", "out0"] {
            run(&["ip", "-n", &self.primary, "link", "set", ifname, "down"]);
        }
    }

    /// Whether `conntrack -L` in `ns` lists an established TCP connection
    /// from the client's port `port` to the server.
    pub fn conntrack_cli_shows(&self, ns: &str, port: u16) -> bool {
        let sport = format!("sport={port}");
        run_in(ns, &["conntrack", "-L", "-p", "tcp"])
            .lines()
            .any(|line| {
                line.contains("ESTABLISHED")
                    && line.contains("src=198.19.1.1 dst=198.19.2.1")
                    && line.split_whitespace().any(|t| t == sport)
            })
    }

    /// A listener on the server and a connection to it from the client,
    /// both with read timeouts of `timeout`.
    pub fn connect(&self, timeout: Duration) -> (TcpStream, TcpStream) {
        let server_ns = NetNs::named(&self.server).expect("enter the server namespace");
        let listener = server_ns
            .run(|| TcpListener::bind(SocketAddr::new(IpAddr::V4(SERVER), 0)))
            .expect("server namespace thread")
            .expect("listen on the server");
        let addr = listener.local_addr().expect("listener address");
        let client_ns = NetNs::named(&self.client).expect("enter the client namespace");
        let client = client_ns
            .run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
            .expect("client namespace thread")
            .expect("connect through the firewall");
        let (server, peer) = listener.accept().expect("accept");
        assert_eq!(peer.ip(), IpAddr::V4(CLIENT));
        for stream in [&client, &server] {
            stream
                .set_read_timeout(Some(timeout))
                .expect("read timeout");
            stream.set_nodelay(true).expect("nodelay");
        }
        (client, server)
    }
}

fn link(a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
    run(&[
        "ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
    ]);
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        run(&["ip", "-n", ns, "addr", "add", addr, "dev", ifname]);
        run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
    }
}

impl Drop for FirewallLab {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// The agents of `primary` and `shadow` over their Linux backends, each
/// recording its device's changes on a runtime of its own; stopped on
/// drop.
pub struct Agents {
    pub primary: Arc<Agent>,
    pub shadow: Arc<Agent>,
    stop: CancellationToken,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Agents {
    pub fn start(lab: &FirewallLab) -> Agents {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let stop = CancellationToken::new();
        let agent = |ns: &str, node_id| {
            let backend = LinuxBackend::open(LinuxConfig {
                route_tables: vec![TABLE],
                poll_interval: Duration::from_millis(200),
                ..LinuxConfig::new(ns)
            })
            .expect("open the Linux backend");
            let agent = Agent::new(
                AgentConfig {
                    node_id,
                    ..AgentConfig::default()
                },
                Arc::new(backend),
            )
            .expect("agent");
            runtime.spawn(Arc::clone(&agent).follow_backend(stop.clone()));
            agent
        };
        let primary = agent(&lab.primary, 1);
        let shadow = agent(&lab.shadow, 2);
        Agents {
            primary,
            shadow,
            stop,
            runtime: Some(runtime),
        }
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// One-way replication from one agent to another, the minimum of what the
/// replication library does: the snapshot, then the change log, applied
/// in order.
pub struct Replication {
    from: Arc<Agent>,
    to: Arc<Agent>,
    after: u64,
    /// Every refusal, by key, for the test to check.
    pub rejected: BTreeMap<String, String>,
}

impl Replication {
    pub fn start(from: &Arc<Agent>, to: &Arc<Agent>) -> Replication {
        let snapshot = from.snapshot();
        let mut replication = Replication {
            from: Arc::clone(from),
            to: Arc::clone(to),
            after: snapshot.revision,
            rejected: BTreeMap::new(),
        };
        replication.apply(snapshot.entries);
        replication
    }

    /// Applies what changed since the last step: the latest version of
    /// each key, in the order of those versions.
    ///
    /// Coalesced because the agent compares each of its backend's reports
    /// of an Apply with what it holds after the whole batch: a batch with
    /// several versions of one key would have the reports of the earlier
    /// ones recorded as local changes of the receiving device.
    pub fn step(&mut self) {
        let changes = self
            .from
            .changes_after(self.after, 4096, Clone::clone)
            .expect("the log still holds our position");
        self.after += changes.len() as u64;
        let mut latest: BTreeMap<Key, usize> = BTreeMap::new();
        for (i, change) in changes.iter().enumerate() {
            latest.insert(change.key.clone(), i);
        }
        let coalesced = changes
            .into_iter()
            .enumerate()
            .filter(|(i, change)| latest.get(&change.key) == Some(i))
            .map(|(_, change)| change)
            .collect();
        self.apply(coalesced);
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let keys: Vec<String> = entries.iter().map(|e| format!("{:?}", e.key)).collect();
        let report = self.to.apply(entries).expect("apply a batch");
        for (key, outcome) in keys.into_iter().zip(report.outcomes) {
            if let Outcome::Rejected(why) = outcome {
                self.rejected.insert(key, why);
            }
        }
    }
}
