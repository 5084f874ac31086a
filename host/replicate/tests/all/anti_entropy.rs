//! Anti-entropy finds divergence the streams cannot see and repairs it
//! both ways, deletes included.

use std::collections::BTreeSet;

use umbra_agent::AgentConfig;
use umbra_agent::wire::entry_from_wire;
use umbra_replicate::{AntiEntropy, AntiEntropyConfig};

use crate::support::{Node, apply, conntrack, mark_of, quiet, version};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repairs_a_divergence_introduced_on_one_side() {
    let a = Node::primary(quiet()).await;
    let b = Node::shadow().await;
    let (pa, pb) = (a.peer("primary"), b.peer("shadow"));
    let anti_entropy = AntiEntropy::new(
        pa.clone(),
        pb.clone(),
        AntiEntropyConfig {
            partitions: 64,
            ..AntiEntropyConfig::default()
        },
    );
    // The initial states differ (versions of the same routes): first round
    // brings them together.
    let first = anti_entropy.round().await.expect("round");
    assert!(!first.divergent.is_empty());
    a.assert_same(&b, "identical");
    let metrics = anti_entropy.metrics();
    let base = metrics.status();

    // Diverge, without any stream: port 1 is newer on A than on B; port 2
    // exists only on B; port 3 was deleted on A, but B still has it.
    let t = umbra_agent::hlc::system_ms();
    apply(&pa, vec![conntrack(1, 10, version(t, 1, false))]).await;
    apply(&pb, vec![conntrack(1, 90, version(t - 5_000, 1, false))]).await;
    apply(&pb, vec![conntrack(2, 20, version(t, 2, false))]).await;
    apply(&pa, vec![conntrack(3, 30, version(t, 1, false))]).await;
    apply(&pa, vec![conntrack(3, 30, version(t + 1, 1, true))]).await;
    apply(&pb, vec![conntrack(3, 30, version(t, 1, false))]).await;
    assert_ne!(a.digests(), b.digests());

    let report = anti_entropy.round().await.expect("round");
    let partitions: BTreeSet<u32> = [1, 2, 3]
        .into_iter()
        .map(|p| {
            entry_from_wire(&conntrack(p, 0, version(t, 1, false)))
                .expect("valid")
                .key
                .partition(64)
        })
        .collect();
    assert_eq!(
        report.divergent.iter().copied().collect::<BTreeSet<_>>(),
        partitions
    );
    assert_eq!(report.written_to_a, 1, "port 2 to A: {report:?}");
    assert_eq!(
        report.written_to_b, 2,
        "port 1 and port 3's delete to B: {report:?}"
    );
    assert_eq!(report.rejected, 0);
    a.assert_same(&b, "repaired");
    assert_eq!(mark_of(&b.agent, 1), Some(10));
    assert_eq!(mark_of(&a.agent, 2), Some(20));
    assert_eq!(mark_of(&b.agent, 3), None);

    let status = metrics.status();
    let found = (status.divergent_partitions - base.divergent_partitions) as usize;
    let repaired = (status.repaired_partitions - base.repaired_partitions) as usize;
    assert_eq!((found, repaired), (partitions.len(), partitions.len()));
    assert_eq!(status.repaired_entries - base.repaired_entries, 3);

    let quiet_round = anti_entropy.round().await.expect("round");
    assert!(quiet_round.mismatched.is_empty(), "{quiet_round:?}");
    assert_eq!(metrics.status().rounds, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_deleted_where_it_was_born_is_not_resurrected_once_its_tombstone_is_forgotten() {
    // A keeps a single tombstone: deleting a second key forgets the first.
    let a = Node::start(
        1,
        quiet(),
        AgentConfig {
            tombstones: 1,
            ..AgentConfig::default()
        },
        0,
    )
    .await;
    let b = Node::shadow().await;
    let (pa, pb) = (a.peer("primary"), b.peer("shadow"));
    let anti_entropy = AntiEntropy::new(
        pa.clone(),
        pb.clone(),
        AntiEntropyConfig {
            partitions: 16,
            ..AntiEntropyConfig::default()
        },
    );
    anti_entropy.round().await.expect("round");
    a.assert_same(&b, "identical");

    // Port 7 born on A (origin 1) and held by both; A deletes it, B misses
    // the delete; A then deletes port 8, forgetting port 7's tombstone.
    let t = umbra_agent::hlc::system_ms();
    let born = conntrack(7, 70, version(t, 1, false));
    apply(&pa, vec![born.clone()]).await;
    apply(&pb, vec![born]).await;
    apply(&pa, vec![conntrack(7, 70, version(t + 1, 1, true))]).await;
    apply(&pa, vec![conntrack(8, 80, version(t + 2, 1, true))]).await;
    // Without the origin rule, A would take port 7 back as an entry it
    // lacks (nothing left there says it was deleted).
    let report = anti_entropy.round().await.expect("round");
    assert_eq!(report.written_to_a, 0, "{report:?}");
    assert_eq!(report.written_to_b, 1, "port 7's delete to B: {report:?}");
    assert_eq!(mark_of(&a.agent, 7), None);
    assert_eq!(mark_of(&b.agent, 7), None);
    a.assert_same(&b, "repaired");

    // An entry A lacks that was born elsewhere is still written to A.
    apply(&pb, vec![conntrack(9, 90, version(t + 3, 2, false))]).await;
    let report = anti_entropy.round().await.expect("round");
    assert_eq!(report.written_to_a, 1, "{report:?}");
    assert_eq!(mark_of(&a.agent, 9), Some(90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replicator_runs_anti_entropy_and_reports_the_repairs() {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;
    use umbra_replicate::{Replicator, ReplicatorConfig};

    use crate::support::{WAIT, stream_config};

    let a = Node::primary(quiet()).await;
    let b = Node::shadow().await;
    let replicator = Replicator::new(
        a.peer("primary"),
        b.peer("shadow"),
        ReplicatorConfig {
            stream: stream_config(),
            bidirectional: false,
            anti_entropy: Some(AntiEntropyConfig {
                partitions: 64,
                interval: Duration::from_millis(100),
                ..AntiEntropyConfig::default()
            }),
        },
    );
    let handle = replicator.handle();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { replicator.run(stop).await.expect("replicator runs") }
    });
    handle.drain_and_commit(None, WAIT).await.expect("synced");
    let metrics = handle.anti_entropy.clone().expect("anti-entropy on");

    // An entry that appears on the shadow alone, stamped by a third node
    // (so the primary → shadow stream will never carry it, and neither side
    // is the authority on it): only anti-entropy can find it. (One stamped
    // with the primary's origin that the primary lacks would be deleted
    // instead: see the test above.)
    let t = umbra_agent::hlc::system_ms();
    apply(
        &b.peer("shadow"),
        vec![conntrack(7, 70, version(t - 1_000, 3, false))],
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while metrics.status().repaired_partitions == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            metrics.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.drain_and_commit(None, WAIT).await.expect("drained");
    assert_eq!(mark_of(&a.agent, 7), Some(70), "repaired onto the primary");
    a.assert_same(&b, "identical after the repair");
    let status = handle.status().anti_entropy.expect("anti-entropy status");
    assert_eq!(status.divergent_partitions, 1, "{status:?}");
    assert_eq!(status.repaired_partitions, 1, "{status:?}");
    assert_eq!(status.repaired_entries, 1, "{status:?}");
    assert_eq!(status.errors, 0, "{status:?}");
    stop.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stops")
        .expect("task");
}

/// A round compares A's snapshot with B's, read a moment later: keys A
/// creates in between reach B through the stream and are in B's snapshot
/// but not in A's. They carry A's origin, yet they are new, not deleted
/// on A: no round may delete them on B (nor, through B's tombstone, on A).
/// Keys are created on A in bursts every millisecond while rounds run back
/// to back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_born_during_a_round_are_not_taken_for_deleted_ones() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;
    use umbra_replicate::ReplicationStream;

    use crate::support::{WAIT, stream_config};

    let a = Node::primary(quiet()).await;
    let b = Node::shadow().await;
    let (pa, pb) = (a.peer("primary"), b.peer("shadow"));
    let stream = ReplicationStream::new(pa.clone(), pb.clone(), stream_config());
    let handle = stream.handle();
    let stop = CancellationToken::new();
    tokio::spawn(stream.run(stop.clone()));
    let anti_entropy = AntiEntropy::new(
        pa.clone(),
        pb.clone(),
        AntiEntropyConfig {
            partitions: 4,
            ..AntiEntropyConfig::default()
        },
    )
    .following(Some(handle.clone()), None);
    // Enough state that reading a snapshot takes a while, as a real
    // device's does: the window between the two snapshots widens.
    let t0 = umbra_agent::hlc::system_ms() - 60_000;
    for chunk in 0..20_u16 {
        let entries = (0..1_000_u16)
            .map(|i| {
                // Another service (port 80), so no key of the test's own.
                let mut entry = conntrack(chunk * 1_000 + i, 1, version(t0, 1, false));
                if let Some(umbra_proto::umbra::device::v1::entry::Entry::Conntrack(c)) =
                    &mut entry.entry
                {
                    c.original.as_mut().expect("original").destination_port = 80;
                    c.reply.as_mut().expect("reply").source_port = 80;
                }
                entry
            })
            .collect();
        apply(&pa, entries).await;
    }
    handle.drain_and_commit(None, WAIT).await.expect("drained");
    anti_entropy.round().await.expect("round");

    let born = Arc::new(AtomicU16::new(0));
    let writer = tokio::spawn({
        let (pa, born, stop) = (pa.clone(), Arc::clone(&born), stop.clone());
        async move {
            let t = umbra_agent::hlc::system_ms();
            // Bursts of 20, as a device's new connections come.
            for burst in 0..200_u16 {
                if stop.is_cancelled() {
                    break;
                }
                let ports = burst * 20 + 1..=burst * 20 + 20;
                let entries = ports
                    .clone()
                    .map(|port| conntrack(port, 1, version(t + u64::from(port), 1, false)))
                    .collect();
                apply(&pa, entries).await;
                born.store(*ports.end(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let mut rounds = 0;
    while !writer.is_finished() && rounds < 200 {
        anti_entropy.round().await.expect("round");
        rounds += 1;
    }
    writer.await.expect("writer");
    let born = born.load(Ordering::SeqCst);
    handle.drain_and_commit(None, WAIT).await.expect("drained");
    anti_entropy.round().await.expect("round");
    let lost_on_a: Vec<u16> = (1..=born)
        .filter(|&p| mark_of(&a.agent, p).is_none())
        .collect();
    let lost_on_b: Vec<u16> = (1..=born)
        .filter(|&p| mark_of(&b.agent, p).is_none())
        .collect();
    assert!(
        lost_on_a.is_empty() && lost_on_b.is_empty(),
        "{rounds} rounds over {born} new keys deleted {:?} on A and {:?} on B",
        lost_on_a,
        lost_on_b
    );
    eprintln!("{rounds} rounds over {born} new keys, none lost");
    stop.cancel();
}
