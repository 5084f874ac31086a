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
