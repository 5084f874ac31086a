//! Replication A → B over loopback gRPC between two device agents over the
//! simulated backend: session changes replicated per second (target
//! ≥ 100,000/s) and the lag of each change from being recorded on A to
//! being applied on B (target p99 ≤ 10 ms).
//!
//! - `throughput`: each iteration records `BATCH` new conntrack entries on
//!   A at once (new versions of the same sessions every iteration) and
//!   waits until B has applied them all (`drain_and_commit`); the measured
//!   time covers recording, the Watch stream, the Applies and the drain.
//! - `lag_p99_under_churn`: A's simulated device churns sessions (about
//!   20,000 changes/s); each iteration waits 200 ms and reports the p99
//!   lag of the changes applied in that window as its "time", so
//!   criterion's estimate is the mean of the windows' p99. The lag is
//!   measured with the wall part of each change's HLC stamp (recorded on
//!   A, ms resolution: up to 1 ms too high) against B's Apply returning.
//!   A summary line (p50, p99, max window p99, changes/s) is printed at
//!   the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::sync::CancellationToken;
use umbra_agent::{Agent, SimConfig};
use umbra_benches::agent::sim_agent;
use umbra_proto::umbra::device::v1 as pb;
use umbra_replicate::{Peer, Replicator, ReplicatorConfig, ReplicatorHandle};

const BATCH: usize = 20_000;
const WAIT: Duration = Duration::from_secs(60);

struct Pair {
    a: Arc<Agent>,
    b: Arc<Agent>,
    handle: ReplicatorHandle,
    shutdown: CancellationToken,
}

/// A (churning per `sim_a`) → B (idle), replicating and caught up.
async fn pair(sim_a: SimConfig) -> Pair {
    let shutdown = CancellationToken::new();
    let idle = SimConfig {
        session_rate: 0.0,
        ..SimConfig::default()
    };
    let (b, addr_b) = sim_agent(2, idle, &shutdown).await;
    // B's initial routes and nftables table must be older than A's, so
    // that A's win and both end up identical.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (a, addr_a) = sim_agent(1, sim_a, &shutdown).await;
    let peer = |name: &str, addr: SocketAddr| {
        Peer::connect_lazy(name, &addr.to_string(), None).expect("peer")
    };
    let replicator = Replicator::new(
        peer("primary", addr_a),
        peer("shadow", addr_b),
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
    Pair {
        a,
        b,
        handle,
        shutdown,
    }
}

/// Session `i` as a conntrack entry with `version`.
fn session(i: usize, version: pb::Version) -> pb::Entry {
    let (host, port) = ((i / 50_000) as u8, 1024 + (i % 50_000) as u32);
    let original = pb::Tuple {
        source: vec![198, 18, 200, host].into(),
        destination: vec![198, 19, 0, 10].into(),
        protocol: 6,
        source_port: port,
        destination_port: 443,
        ..pb::Tuple::default()
    };
    let reply = pb::Tuple {
        source: original.destination.clone(),
        destination: original.source.clone(),
        source_port: 443,
        destination_port: port,
        ..original.clone()
    };
    pb::Entry {
        version: Some(version),
        entry: Some(pb::entry::Entry::Conntrack(pb::Conntrack {
            original: Some(original),
            reply: Some(reply),
            zone: 0,
            mark: 0,
            status: 0xe,
            timeout_seconds: 432_000,
            tcp_state: pb::TcpState::Established.into(),
            labels: Vec::new(),
        })),
    }
}

fn replication(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // Throughput.
    let quiet = SimConfig {
        session_rate: 0.0,
        ..SimConfig::default()
    };
    let pair_t = runtime.block_on(pair(quiet));
    let mut group = c.benchmark_group("replication");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("throughput", |bench| {
        bench.iter_custom(|iterations| {
            runtime.block_on(async {
                let mut measured = Duration::ZERO;
                for _ in 0..iterations {
                    let entries: Vec<_> = (0..BATCH)
                        .map(|i| {
                            let clock = pair_t.a.now();
                            let version = pb::Version {
                                clock: Some(pb::Hlc {
                                    wall_ms: clock.wall_ms,
                                    logical: clock.logical,
                                    node_id: clock.node_id,
                                }),
                                origin: pair_t.a.node_id(),
                                tombstone: false,
                            };
                            umbra_agent::wire::entry_from_wire(&session(i, version))
                                .expect("valid entry")
                        })
                        .collect();
                    let started = Instant::now();
                    let mut entries = entries.into_iter().peekable();
                    while entries.peek().is_some() {
                        let chunk: Vec<_> = entries.by_ref().take(10_000).collect();
                        pair_t.a.apply(chunk).expect("recorded on A");
                    }
                    let head = pair_t.a.head_revision();
                    pair_t
                        .handle
                        .drain_and_commit(Some(head), WAIT)
                        .await
                        .expect("B catches up");
                    measured += started.elapsed();
                }
                measured
            })
        });
    });
    let status = pair_t.handle.forward.status();
    assert_eq!(status.rejected, 0, "{status:?}");
    let (on_a, on_b) = (
        pair_t.a.digest(64, &[]).expect("digest").partitions,
        pair_t.b.digest(64, &[]).expect("digest").partitions,
    );
    // Not asserted: see the agent's echo bug in this crate's report (B
    // re-stamps some applied entries as its own, which then supersede A's
    // next version of the key).
    eprintln!(
        "replication throughput: {} entries applied on B, {} superseded, {} of 64 partitions differ",
        status.applied,
        status.superseded,
        on_a.iter().zip(&on_b).filter(|(x, y)| x != y).count(),
    );
    pair_t.shutdown.cancel();

    // Lag under churn.
    let churn = SimConfig {
        session_rate: 4_000.0,
        mean_session_lifetime: Duration::from_millis(200),
        tick: Duration::from_millis(2),
        ..SimConfig::default()
    };
    let pair_l = runtime.block_on(pair(churn));
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
    let lag = &pair_l.handle.forward.metrics().lag;
    let mut windows = lag.snapshot().since(&lag.snapshot());
    let mut window_time = Duration::ZERO;
    let mut worst = Duration::ZERO;
    group.throughput(Throughput::Elements(1));
    group.bench_function("lag_p99_under_churn", |bench| {
        bench.iter_custom(|iterations| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let (before, started) = (lag.snapshot(), Instant::now());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let window = lag.snapshot().since(&before);
                    window_time += started.elapsed();
                    let p99 = window.quantile(0.99).unwrap_or_default();
                    windows.add(&window);
                    worst = worst.max(p99);
                    total += p99;
                }
                total
            })
        });
    });
    group.finish();
    // Only the measured windows: criterion's own analysis between them
    // competes for the same two cores.
    eprintln!(
        "replication lag under churn: {} changes in the measured windows at {:.0}/s, \
         p50 {:?}, p99 {:?}, max {:?}, worst window p99 {:?}; status {:?}",
        windows.count(),
        windows.count() as f64 / window_time.as_secs_f64(),
        windows.quantile(0.5).unwrap_or_default(),
        windows.quantile(0.99).unwrap_or_default(),
        windows.quantile(1.0).unwrap_or_default(),
        worst,
        pair_l.handle.forward.status(),
    );
    let _ = &pair_l.b;
    pair_l.shutdown.cancel();
}

criterion_group!(benches, replication);
criterion_main!(benches);
