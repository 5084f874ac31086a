//! New connections per second through a namespace router, replicated to a
//! shadow without loss (issue 5's Linux conntrack target: at least 100,000
//! new connections/s).
//!
//! ```text
//!  gen ── 198.18.20.0/24 ── router ── 198.18.21.0/24 ── sink
//!  (UDP load)               (primary: Linux agent)       (drops)
//!                              │ gRPC Watch (loopback)
//!                          Replicator
//!                              │ gRPC Apply
//!                           shadow (Linux agent)
//! ```
//!
//! Each iteration sends `FLOWS` UDP datagrams from `gen`, each to its own
//! destination (address in 198.19.0.0/16 and port): every one is a new
//! 5-tuple, so a new conntrack entry in the router. The router's agent
//! picks the entries up from the kernel's events (or, if the kernel drops
//! events, from the re-dump that follows), the [`Replicator`] carries them
//! over loopback gRPC to the shadow's agent, which creates them in the
//! shadow's kernel. The measured time runs from the first datagram to the
//! moment the shadow's agent has applied all `FLOWS` entries; criterion's
//! throughput is then new connections replicated per second.
//!
//! Each iteration also prints the CPU time the whole process used in the
//! measured time (every thread, user and kernel, the router's forwarding
//! in the generator's threads included; not softirq work that lands in
//! `ksoftirqd`): divided by the time, the cores the figure took, which
//! tells a CPU-bound run (on a shared machine: bound by what the other
//! load leaves) from one that waits.
//!
//! `conntrack_flows/kernel_only` is the ceiling to compare with: the same
//! generator through the same router (namespaces of its own) with no
//! agent, no conntrack event listener and no replication, timed until the
//! router's table holds every flow. What the replicated figure lacks of it
//! is what replication costs on this machine. A filter after `--` (say
//! `-- kernel_only`) runs one of the two without building the other's lab.
//!
//! After each iteration (outside the measured time) both kernels' tables
//! are dumped and every flow must be in both: the router's (the load was
//! real) and the shadow's (nothing was lost); `conntrack -C` in each
//! namespace gives the kernel's own count. The tables are then flushed
//! for the next iteration, which uses new tuples.
//!
//! Needs root (it creates namespaces `umbra-bcf-PID-*`, removed on exit);
//! without it the bench prints why and measures nothing. `UMBRA_BENCH_FLOWS`
//! overrides the flows per iteration (default 100,000);
//! `UMBRA_BENCH_EVENT_BUFFER` the agents' conntrack event socket buffer in
//! bytes (default 64 MiB): a small one makes the kernel drop events
//! (`ENOBUFS`), and the flows then reach the shadow through the agent's
//! re-dump and diff instead.
//!
//! ```sh
//! sudo -E nice -n 5 cargo bench -p umbra-replicate --bench conntrack_flows
//! ```

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use umbra_agent::{Agent, AgentConfig, LinuxBackend, LinuxConfig, Security};
use umbra_netlink::{L4Tuple, NetNs};
use umbra_replicate::{Peer, Replicator, ReplicatorConfig, ReplicatorHandle};

/// The generator's address; the source of every flow.
const GEN: Ipv4Addr = Ipv4Addr::new(198, 18, 20, 2);
/// The source port of the generator's first thread, the next one its
/// second's (flows differ by destination).
const SOURCE_PORT: u16 = 4000;
/// Destination ports per destination address.
const PORTS: u32 = 50_000;
/// Longest wait for any one step.
const WAIT: Duration = Duration::from_secs(120);

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Flow `i`'s destination.
fn destination(i: u64) -> SocketAddrV4 {
    let host = (i / u64::from(PORTS)) as u32 & 0xffff;
    let port = 1024 + (i % u64::from(PORTS)) as u16;
    SocketAddrV4::new(
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) | host),
        port,
    )
}

/// The lab's namespaces, deleted (with their veths) on drop.
struct Lab {
    gen_ns: String,
    router: String,
    sink: String,
    shadow: String,
}

impl Lab {
    /// Builds the namespaces `umbra-bcf-PID-TAG-*`.
    fn build(tag: &str) -> Lab {
        let prefix = format!("umbra-bcf-{}-{tag}", std::process::id());
        let lab = Lab {
            gen_ns: format!("{prefix}-gen"),
            router: format!("{prefix}-router"),
            sink: format!("{prefix}-sink"),
            shadow: format!("{prefix}-shadow"),
        };
        // From here a panic drops `lab`, which deletes what was made.
        for ns in [&lab.gen_ns, &lab.router, &lab.sink, &lab.shadow] {
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let (g, r, s) = (&lab.gen_ns, &lab.router, &lab.sink);
        for (a, a_if, a_addr, b, b_if, b_addr) in [
            (g, "g0", "198.18.20.2/24", r, "in0", "198.18.20.1/24"),
            (r, "out0", "198.18.21.1/24", s, "s0", "198.18.21.2/24"),
        ] {
            run(&[
                "ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if,
                "netns", b,
            ]);
            for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
                run(&["ip", "-n", ns, "addr", "add", addr, "dev", ifname]);
                run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
            }
        }
        run(&[
            "ip",
            "-n",
            g,
            "route",
            "add",
            "198.19.0.0/16",
            "via",
            "198.18.20.1",
        ]);
        run(&[
            "ip",
            "-n",
            r,
            "route",
            "add",
            "198.19.0.0/16",
            "via",
            "198.18.21.2",
        ]);
        run(&[
            "ip",
            "netns",
            "exec",
            r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        // A `ct` expression makes the router track connections; the sink
        // does not forward, so it drops the datagrams without a word.
        run(&[
            "ip",
            "netns",
            "exec",
            r,
            "nft",
            "table inet fw { chain forward { type filter hook forward priority 0; \
             policy accept; ct state new accept; }; }",
        ]);
        // Both namespaces' tables must hold an iteration's flows.
        let max: u64 = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let wanted = flows() + 10_000;
        if max < wanted {
            // Only the initial namespace may change it (read-only in others).
            run(&[
                "sysctl",
                "-qw",
                &format!("net.netfilter.nf_conntrack_max={wanted}"),
            ]);
        }
        // No neighbour resolution in the measured time.
        run(&[
            "ip",
            "netns",
            "exec",
            g,
            "ping",
            "-c1",
            "-W2",
            "198.18.20.1",
        ]);
        run(&[
            "ip",
            "netns",
            "exec",
            r,
            "ping",
            "-c1",
            "-W2",
            "198.18.21.2",
        ]);
        lab.flush();
        lab
    }

    fn flush(&self) {
        for ns in [&self.router, &self.shadow] {
            run(&["ip", "netns", "exec", ns, "conntrack", "-F"]);
        }
    }

    /// `conntrack -C` in `ns`: the kernel's count of its entries.
    fn cli_count(&self, ns: &str) -> u64 {
        run(&["ip", "netns", "exec", ns, "conntrack", "-C"])
            .trim()
            .parse()
            .expect("conntrack -C prints a number")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.gen_ns, &self.router, &self.sink, &self.shadow] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn flows() -> u64 {
    std::env::var("UMBRA_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

struct Replication {
    router: Arc<Agent>,
    shadow: Arc<Agent>,
    handle: ReplicatorHandle,
    shutdown: CancellationToken,
}

async fn agent(ns: &str, node_id: u64, shutdown: &CancellationToken) -> (Arc<Agent>, SocketAddr) {
    let mut config = LinuxConfig::new(ns);
    if let Some(bytes) = std::env::var("UMBRA_BENCH_EVENT_BUFFER")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.event_socket_buffer = bytes;
    }
    let backend = LinuxBackend::open(config).expect("Linux backend");
    let agent = Agent::new(
        AgentConfig {
            node_id,
            ..AgentConfig::default()
        },
        Arc::new(backend),
    )
    .expect("agent");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let security = Security {
        allow_unauthenticated: true,
        ..Security::default()
    };
    tokio::spawn(umbra_agent::serve(
        listener,
        Arc::clone(&agent),
        security,
        shutdown.clone(),
    ));
    (agent, addr)
}

async fn replication(lab: &Lab) -> Replication {
    let shutdown = CancellationToken::new();
    let (shadow, shadow_addr) = agent(&lab.shadow, 2, &shutdown).await;
    let (router, router_addr) = agent(&lab.router, 1, &shutdown).await;
    let peer = |name: &str, addr: SocketAddr| {
        Peer::connect_lazy(name, &addr.to_string(), None).expect("peer")
    };
    // Anti-entropy off: the figure is the stream's alone.
    let replicator = Replicator::new(
        peer("primary", router_addr),
        peer("shadow", shadow_addr),
        ReplicatorConfig {
            anti_entropy: None,
            ..ReplicatorConfig::default()
        },
    );
    let handle = replicator.handle();
    tokio::spawn(replicator.run(shutdown.clone()));
    handle
        .drain_and_commit(None, WAIT)
        .await
        .expect("initial sync");
    Replication {
        router,
        shadow,
        handle,
        shutdown,
    }
}

/// Sends one datagram per flow `first..first + n` from the generator, half
/// from each of its two threads (each with a namespace handle, so a thread
/// of its own, and a source port of its own), [`BATCH`] datagrams per
/// `sendmmsg(2)`, each to its own destination.
fn generate(gen_ns: &[NetNs; 2], first: u64, n: u64) {
    let half = n / 2;
    std::thread::scope(|scope| {
        for (part, ns) in gen_ns.iter().enumerate() {
            let (from, to) = if part == 0 {
                (first, first + half)
            } else {
                (first + half, first + n)
            };
            let port = SOURCE_PORT + part as u16;
            scope.spawn(move || {
                ns.run(move || send_flows(port, from, to))
                    .expect("generator thread");
            });
        }
    });
}

/// Datagrams per `sendmmsg(2)` of the generator.
const BATCH: usize = 512;

/// Sends one 16-byte datagram to each of flows `from..to`'s destinations
/// from `GEN:port`.
fn send_flows(port: u16, from: u64, to: u64) {
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, sendmmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let socket = UdpSocket::bind(SocketAddrV4::new(GEN, port)).expect("bind");
    let payload = [0u8; 16];
    let slices = vec![[IoSlice::new(&payload)]; BATCH];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let mut next = from;
    let mut stalls = 0;
    while next < to {
        let count = (to - next).min(BATCH as u64);
        let addrs: Vec<Option<SockaddrIn>> = (next..next + count)
            .map(|i| Some(SockaddrIn::from(destination(i))))
            .collect();
        match sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &slices,
            &addrs,
            [],
            MsgFlags::empty(),
        ) {
            // A datagram the kernel did not take is sent again from
            // there: every flow must reach the router.
            Ok(results) => {
                let sent = results.count() as u64;
                next += sent;
                if sent == 0 {
                    stalls += 1;
                }
            }
            // A full socket buffer is the generator outrunning the veth;
            // retry rather than lose the flow.
            Err(e) => {
                stalls += 1;
                assert!(stalls < 100_000, "sendmmsg to {}: {e}", destination(next));
                std::thread::yield_now();
            }
        }
        assert!(stalls < 100_000, "sendmmsg sends nothing");
    }
}

/// The UDP flows from the generator in `ns`'s conntrack table.
fn flows_in(ns: &NetNs) -> HashSet<SocketAddrV4> {
    ns.conntrack()
        .dump()
        .expect("dump conntrack")
        .into_iter()
        .filter(|e| e.original.protocol == 17 && e.original.src == GEN)
        .filter_map(|e| match (e.original.dst, e.original.l4) {
            (std::net::IpAddr::V4(dst), L4Tuple::Ports { dst: port, .. }) => {
                Some(SocketAddrV4::new(dst, port))
            }
            _ => None,
        })
        .collect()
}

/// CPU time the whole process (generator, agents, replicator: every
/// thread, in user space and in the kernel) has used so far.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let seconds = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    seconds(usage.user_time()) + seconds(usage.system_time())
}

/// With `UMBRA_BENCH_PERF_CTL` naming the control FIFO of a
/// `perf record --control fifo:FIFO -D -1`, tells perf to `enable` or
/// `disable` sampling, so that a profile covers the measured time only
/// (not the lab's checks and flushes between iterations).
fn perf_control(command: &str) {
    use std::io::Write as _;
    if let Ok(path) = std::env::var("UMBRA_BENCH_PERF_CTL") {
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("perf control FIFO {path}: {e}"));
        fifo.write_all(format!("{command}\n").as_bytes())
            .unwrap_or_else(|e| panic!("perf control FIFO {path}: {e}"));
    }
}

/// Polls `done` every 2 ms; panics after [`WAIT`].
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Whether criterion's filter (the arguments after `--` that are not
/// options) lets benchmark `id` run: a lab is only built for a benchmark
/// that runs. Criterion matches its filter as a regular expression; a
/// plain substring is what these two names need.
fn selected(id: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| id.contains(f.as_str()))
}

/// `net.netfilter.nf_conntrack_count` of `ns`: the entries in its table,
/// read from the namespace's own sysctl (cheap: no dump).
fn conntrack_count(ns: &NetNs) -> u64 {
    ns.run(|| std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count"))
        .expect("namespace thread")
        .expect("nf_conntrack_count")
        .trim()
        .parse()
        .expect("a number")
}

/// The ceiling the replicated figure is measured against: the same
/// generator through the same router, with no agent, no event listener and
/// no replication. The measured time runs from the first datagram to the
/// moment the router's table holds all `FLOWS` entries (its
/// `nf_conntrack_count`, polled every 0.2 ms); every flow is then checked
/// in a dump, as in the replicated run.
/// The `conntrack_flows` group: `n` flows per iteration, each iteration
/// timed by the benchmark itself (a few, long ones).
fn flows_group(c: &mut Criterion, n: u64) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group("conntrack_flows");
    group
        .throughput(Throughput::Elements(n))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    group
}

fn kernel_only(c: &mut Criterion) {
    if !selected("conntrack_flows/kernel_only") {
        return;
    }
    if !is_root() {
        println!("conntrack_flows/kernel_only: skipped, it needs root");
        return;
    }
    let n = flows();
    let lab = Lab::build("k");
    let gen_ns = [
        NetNs::named(&lab.gen_ns).expect("generator namespace"),
        NetNs::named(&lab.gen_ns).expect("generator namespace"),
    ];
    let router_ns = NetNs::named(&lab.router).expect("router namespace");
    let mut next_flow = 0u64;
    let mut rates = Vec::new();

    let mut group = flows_group(c, n);
    group.bench_function("kernel_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let first = next_flow;
                next_flow += n;
                let base = conntrack_count(&router_ns);
                let cpu_before = cpu_time();
                let start = Instant::now();
                generate(&gen_ns, first, n);
                let sent = start.elapsed();
                let deadline = start + WAIT;
                while conntrack_count(&router_ns) < base + n {
                    assert!(
                        Instant::now() < deadline,
                        "the router never tracked every flow"
                    );
                    std::thread::sleep(Duration::from_micros(200));
                }
                let elapsed = start.elapsed();
                let cpu = cpu_time().saturating_sub(cpu_before);
                total += elapsed;
                rates.push(n as f64 / elapsed.as_secs_f64());

                // Outside the measured time: every flow is in the router.
                let expected: HashSet<SocketAddrV4> = (first..first + n).map(destination).collect();
                let missing = expected.difference(&flows_in(&router_ns)).count();
                println!(
                    "conntrack_flows/kernel_only: {n} flows sent in {sent:.2?}, all in the \
                     router's table after {elapsed:.2?} ({:.0}/s); missing {missing}; CPU \
                     time meanwhile {cpu:.2?} ({:.2} cores, softirq work in ksoftirqd not \
                     counted)",
                    n as f64 / elapsed.as_secs_f64(),
                    cpu.as_secs_f64() / elapsed.as_secs_f64()
                );
                assert_eq!(missing, 0, "flows the router never tracked");

                lab.flush();
                let deadline = Instant::now() + WAIT;
                while conntrack_count(&router_ns) != 0 {
                    assert!(Instant::now() < deadline, "the flush never finished");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            total
        });
    });
    group.finish();
    rates.sort_by(f64::total_cmp);
    if let (Some(low), Some(high)) = (rates.first(), rates.last()) {
        println!(
            "conntrack_flows/kernel_only: {} iterations of {n} flows, no agents; new \
             connections tracked per second: min {low:.0}, median {:.0}, max {high:.0}",
            rates.len(),
            rates[rates.len() / 2]
        );
    }
}

fn conntrack_flows(c: &mut Criterion) {
    if !selected("conntrack_flows/new_flows_replicated") {
        return;
    }
    if !is_root() {
        println!(
            "conntrack_flows: skipped, it creates network namespaces and needs root \
             (sudo -E cargo bench -p umbra-replicate --bench conntrack_flows)"
        );
        return;
    }
    let n = flows();
    let lab = Lab::build("r");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let repl = runtime.block_on(replication(&lab));
    let gen_ns = [
        NetNs::named(&lab.gen_ns).expect("generator namespace"),
        NetNs::named(&lab.gen_ns).expect("generator namespace"),
    ];
    let router_ns = NetNs::named(&lab.router).expect("router namespace");
    let shadow_ns = NetNs::named(&lab.shadow).expect("shadow namespace");
    // Routes and the nftables table: what the agents hold besides flows.
    let router_base = repl.router.live_entries();
    let shadow_base = repl.shadow.live_entries();
    let mut next_flow = 0u64;
    let mut rates = Vec::new();

    let mut group = flows_group(c, n);
    group.bench_function("new_flows_replicated", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let first = next_flow;
                next_flow += n;
                let batches_before = repl.handle.status().forward.batches;
                let cpu_before = cpu_time();
                perf_control("enable");
                let start = Instant::now();
                generate(&gen_ns, first, n);
                let sent = start.elapsed();
                let mut on_router = None;
                runtime.block_on(wait_for("the shadow to hold every flow", || {
                    if on_router.is_none() && repl.router.live_entries() >= router_base + n {
                        on_router = Some(start.elapsed());
                    }
                    repl.shadow.live_entries() >= shadow_base + n
                }));
                let on_router = on_router.unwrap_or_else(|| start.elapsed());
                let elapsed = start.elapsed();
                perf_control("disable");
                let cpu = cpu_time().saturating_sub(cpu_before);
                let applies = repl.handle.status().forward.batches - batches_before;
                total += elapsed;
                rates.push(n as f64 / elapsed.as_secs_f64());

                // Outside the measured time: every flow is in both kernels.
                let expected: HashSet<SocketAddrV4> = (first..first + n).map(destination).collect();
                let router_flows = flows_in(&router_ns);
                let shadow_flows = flows_in(&shadow_ns);
                let missing_router = expected.difference(&router_flows).count();
                let missing_shadow = expected.difference(&shadow_flows).count();
                let (router_cli, shadow_cli) =
                    (lab.cli_count(&lab.router), lab.cli_count(&lab.shadow));
                println!(
                    "conntrack_flows: {n} flows sent in {sent:.2?}, recorded by the \
                     router's agent after {on_router:.2?}, on the shadow after {elapsed:.2?} ({:.0}/s); conntrack -C router {router_cli}, shadow \
                     {shadow_cli}; missing: router {missing_router}, shadow {missing_shadow}; \
                     CPU time meanwhile {cpu:.2?} ({:.2} cores); {applies} change batches \
                     applied ({:.0} entries each)",
                    n as f64 / elapsed.as_secs_f64(),
                    cpu.as_secs_f64() / elapsed.as_secs_f64(),
                    n as f64 / applies.max(1) as f64
                );
                assert_eq!(missing_router, 0, "flows the router never tracked");
                assert_eq!(missing_shadow, 0, "flows lost on the way to the shadow");
                assert!(router_cli >= n && shadow_cli >= n, "conntrack -C disagrees");

                // Clean up for the next iteration.
                lab.flush();
                runtime.block_on(async {
                    wait_for("the agents to forget the flows", || {
                        repl.router.live_entries() == router_base
                            && repl.shadow.live_entries() == shadow_base
                    })
                    .await;
                    repl.handle
                        .drain_and_commit(None, WAIT)
                        .await
                        .expect("replication caught up");
                });
            }
            total
        });
    });
    group.finish();
    rates.sort_by(f64::total_cmp);
    if let (Some(low), Some(high)) = (rates.first(), rates.last()) {
        println!(
            "conntrack_flows: {} iterations of {n} flows, every flow on the shadow; \
             new connections replicated per second: min {low:.0}, median {:.0}, max {high:.0}",
            rates.len(),
            rates[rates.len() / 2]
        );
    }
    repl.shutdown.cancel();
    runtime.shutdown_timeout(Duration::from_secs(5));
}

criterion_group!(benches, kernel_only, conntrack_flows);
criterion_main!(benches);
