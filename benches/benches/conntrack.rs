//! Conntrack entries created in a network namespace through `umbra-netlink`
//! (the shadow side of session replication): batches of 20,000 established
//! TCP entries with their status bits (SEEN_REPLY|ASSURED: a NEW plus a
//! status update each, the kernel refusing status on create), the same
//! without status bits (one NEW each), an upsert of existing entries, a
//! dump, and deletes (one request each). Target of issue 5: at least
//! 100,000 entries/s applied.
//!
//! Needs root (it creates and deletes a namespace `umbra-bench-ct-PID`).
//! Criterion reports the time per batch and, through `Throughput`, entries/s.

use std::net::Ipv4Addr;
use std::process::Command;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use umbra_netlink::{ConntrackEntry, ConntrackTuple, L4Tuple, NetNs, TcpInfo, TcpState};

const BATCH: u32 = 20_000;

/// Deletes the namespace on drop.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn entries(n: u32, with_status: bool) -> Vec<ConntrackEntry> {
    (0..n)
        .map(|i| {
            let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + (i >> 16));
            let original = ConntrackTuple {
                src: src.into(),
                dst: Ipv4Addr::new(198, 19, 0, 1).into(),
                protocol: 6,
                l4: L4Tuple::Ports {
                    src: (i & 0xffff) as u16,
                    dst: 443,
                },
            };
            let mut e = ConntrackEntry::new(original, 600);
            e.tcp = Some(TcpInfo::with_state(TcpState::Established));
            if !with_status {
                e.status = 0;
            }
            e
        })
        .collect()
}

fn bench_conntrack(c: &mut Criterion) {
    let name = format!("umbra-bench-ct-{}", std::process::id());
    let added = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .expect("run ip");
    assert!(added.success(), "ip netns add {name} failed: run as root");
    let _guard = Namespace(name.clone());
    let ns = NetNs::named(&name).expect("open the namespace");
    let ct = ns.conntrack();
    let batch = entries(BATCH, true);
    let bare = entries(BATCH, false);
    let flush = || {
        let flushed = Command::new("ip")
            .args(["netns", "exec", &name, "conntrack", "-F"])
            .output()
            .expect("run conntrack -F");
        assert!(flushed.status.success(), "conntrack -F failed");
    };

    let mut group = c.benchmark_group("conntrack");
    group
        .throughput(Throughput::Elements(u64::from(BATCH)))
        .sample_size(10);
    group.bench_function("create_established", |b| {
        b.iter_batched(
            flush,
            |()| {
                let outcome = ct.create_batch(&batch).expect("create");
                assert!(
                    outcome.failures.is_empty(),
                    "{} failures",
                    outcome.failures.len()
                );
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("create_without_status", |b| {
        b.iter_batched(
            flush,
            |()| {
                let outcome = ct.create_batch(&bare).expect("create");
                assert!(
                    outcome.failures.is_empty(),
                    "{} failures",
                    outcome.failures.len()
                );
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("delete_one_by_one", |b| {
        b.iter_batched(
            || {
                flush();
                let outcome = ct.create_batch(&batch).expect("create");
                assert!(
                    outcome.failures.is_empty(),
                    "{} failures",
                    outcome.failures.len()
                );
            },
            |()| {
                for e in &batch {
                    ct.delete(&e.original, e.zone).expect("delete");
                }
            },
            BatchSize::PerIteration,
        )
    });
    // The entries are there again for the next functions.
    flush();
    let created = ct.create_batch(&batch).expect("create");
    assert!(
        created.failures.is_empty(),
        "{} failures",
        created.failures.len()
    );
    group.bench_function("upsert_existing", |b| {
        b.iter(|| {
            let outcome = ct.create_batch(&batch).expect("upsert");
            assert_eq!(outcome.updated as u32, BATCH);
        })
    });
    group.bench_function("dump", |b| {
        b.iter(|| assert_eq!(ct.dump().expect("dump").len() as u32, BATCH))
    });
    group.finish();
}

criterion_group!(benches, bench_conntrack);
criterion_main!(benches);
