//! The firewall lab: `client` and `server` joined through two stateful
//! firewalls in parallel, `primary` and `shadow`, in throwaway namespaces
//! (`umbra-ag-<random>-<role>`) that are removed on drop; and two agents
//! over the firewalls, served on loopback gRPC, with the real replicator
//! (`umbra-replicate`) between them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use umbra_agent::{Agent, AgentConfig, LinuxBackend, LinuxConfig, Security};
use umbra_netlink::NetNs;
use umbra_replicate::{Peer, Replicator, ReplicatorConfig, ReplicatorHandle, StreamConfig};

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

/// One agent over a namespace's Linux backend, served on loopback gRPC
/// until stopped.
pub struct ServedAgent {
    pub agent: Arc<Agent>,
    pub addr: SocketAddr,
    stop: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl ServedAgent {
    /// Opens `ns`'s backend and serves a new agent (new epoch, state read
    /// from the kernel) at `addr` (port 0: any).
    pub fn start(runtime: &Runtime, ns: &str, node_id: u64, addr: SocketAddr) -> ServedAgent {
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
        ServedAgent::serve(runtime, agent, addr)
    }

    /// Serves `agent` at `addr` (the agent keeps its log and epoch across
    /// a stop and a serve: what a cut link looks like to replication).
    pub fn serve(runtime: &Runtime, agent: Arc<Agent>, addr: SocketAddr) -> ServedAgent {
        let listener = runtime.block_on(async {
            // The port of a stopped agent may take a moment to be free.
            let deadline = Instant::now() + WAIT;
            loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(listener) => return listener,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("bind {addr}: {e}"),
                }
            }
        });
        let addr = listener.local_addr().expect("listener address");
        let stop = CancellationToken::new();
        let security = Security {
            allow_unauthenticated: true,
            ..Security::default()
        };
        let server = runtime.spawn({
            let (agent, stop) = (Arc::clone(&agent), stop.clone());
            async move {
                umbra_agent::serve(listener, agent, security, stop)
                    .await
                    .expect("the agent serves");
            }
        });
        ServedAgent {
            agent,
            addr,
            stop,
            server: Some(server),
        }
    }

    /// Stops serving (and following the device); returns the agent.
    pub fn stop(mut self, runtime: &Runtime) -> Arc<Agent> {
        self.halt(runtime);
        Arc::clone(&self.agent)
    }

    fn halt(&mut self, runtime: &Runtime) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            runtime
                .block_on(async { tokio::time::timeout(WAIT, server).await })
                .expect("the agent stops in time")
                .expect("the agent task");
        }
    }
}

impl Drop for ServedAgent {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The agents of `primary` and `shadow` over their Linux backends, served
/// on loopback gRPC from a runtime of their own; stopped on drop.
pub struct Agents {
    pub primary: Arc<Agent>,
    pub shadow: Arc<Agent>,
    pub primary_served: Option<ServedAgent>,
    pub shadow_served: Option<ServedAgent>,
    pub runtime: Option<Runtime>,
}

impl Agents {
    pub fn start(lab: &FirewallLab) -> Agents {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let primary = ServedAgent::start(&runtime, &lab.primary, 1, any);
        let shadow = ServedAgent::start(&runtime, &lab.shadow, 2, any);
        Agents {
            primary: Arc::clone(&primary.agent),
            shadow: Arc::clone(&shadow.agent),
            primary_served: Some(primary),
            shadow_served: Some(shadow),
            runtime: Some(runtime),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("runtime")
    }

    /// Kills the shadow's agent (its log and epoch go with it), runs
    /// `down_for`, and starts a new one on the same address, which reads
    /// the kernel afresh.
    pub fn restart_shadow(&mut self, lab: &FirewallLab, down_for: impl FnOnce()) {
        let served = self.shadow_served.take().expect("shadow served");
        let addr = served.addr;
        drop(served.stop(self.runtime()));
        down_for();
        let shadow = ServedAgent::start(self.runtime(), &lab.shadow, 2, addr);
        self.shadow = Arc::clone(&shadow.agent);
        self.shadow_served = Some(shadow);
    }

    /// [`Agents::restart_shadow`] for the primary's agent.
    pub fn restart_primary(&mut self, lab: &FirewallLab, down_for: impl FnOnce()) {
        let served = self.primary_served.take().expect("primary served");
        let addr = served.addr;
        drop(served.stop(self.runtime()));
        down_for();
        let primary = ServedAgent::start(self.runtime(), &lab.primary, 1, addr);
        self.primary = Arc::clone(&primary.agent);
        self.primary_served = Some(primary);
    }

    /// Cuts the primary's agent off (its gRPC server stops, the agent and
    /// its log stay), runs `meanwhile`, and serves it again on the same
    /// address.
    pub fn cut_primary(&mut self, meanwhile: impl FnOnce()) {
        let served = self.primary_served.take().expect("primary served");
        let addr = served.addr;
        let agent = served.stop(self.runtime());
        meanwhile();
        let served = ServedAgent::serve(self.runtime(), agent, addr);
        self.primary_served = Some(served);
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        self.primary_served.take();
        self.shadow_served.take();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// The real replicator (`umbra-replicate`) from the primary's agent to the
/// shadow's, over loopback gRPC, on the agents' runtime.
pub struct Replication {
    pub handle: ReplicatorHandle,
    stop: CancellationToken,
}

impl Replication {
    pub fn start(agents: &Agents) -> Replication {
        Self::start_with(agents, false)
    }

    /// Both directions: changes made on the shadow reach the primary too.
    pub fn start_bidirectional(agents: &Agents) -> Replication {
        Self::start_with(agents, true)
    }

    fn start_with(agents: &Agents, bidirectional: bool) -> Replication {
        // Lazy channels are made inside a runtime.
        let _runtime = agents.runtime().enter();
        let peer = |name: &str, served: &Option<ServedAgent>| {
            let addr = served.as_ref().expect("served").addr;
            Peer::connect_lazy(name, &addr.to_string(), None).expect("peer")
        };
        let replicator = Replicator::new(
            peer("primary", &agents.primary_served),
            peer("shadow", &agents.shadow_served),
            ReplicatorConfig {
                stream: StreamConfig {
                    // Reconnect quickly after the faults the tests make.
                    backoff_max: Duration::from_millis(300),
                    ..StreamConfig::default()
                },
                anti_entropy: None,
                bidirectional,
            },
        );
        let handle = replicator.handle();
        let stop = CancellationToken::new();
        agents.runtime().spawn(replicator.run(stop.clone()));
        Replication { handle, stop }
    }

    /// Entries the shadow refused so far.
    pub fn rejected(&self) -> u64 {
        self.handle.status().forward.rejected
    }

    /// Waits until the shadow has applied everything the primary holds now.
    pub fn drain(&self, agents: &Agents) {
        agents
            .runtime()
            .block_on(self.handle.drain_and_commit(None, WAIT))
            .unwrap_or_else(|e| panic!("drain: {e} ({:#?})", self.handle.status()));
    }
}

impl Drop for Replication {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
