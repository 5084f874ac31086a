//! Both directions: concurrent conflicting edits converge to the same
//! state every run (greatest HLC, node id breaking ties), and nothing
//! echoes back to where it came from.

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;
use umbra_proto::umbra::device::v1::ApplyOutcome;
use umbra_replicate::{Replicator, ReplicatorConfig, ReplicatorHandle, StreamStatus};

use crate::support::{Node, WAIT, apply, conntrack, count, mark_of, quiet, stream_config, version};

/// Drains both directions until neither has anything left.
async fn settle(handle: &ReplicatorHandle) {
    let backward = handle.backward.as_ref().expect("bidirectional");
    for _ in 0..3 {
        handle
            .drain_and_commit(None, WAIT)
            .await
            .expect("forward drains");
        backward
            .drain_and_commit(None, WAIT)
            .await
            .expect("backward drains");
    }
}

fn delta(after: &StreamStatus, before: &StreamStatus) -> (u64, u64, u64) {
    (
        after.forwarded - before.forwarded,
        after.applied - before.applied,
        after.echo_suppressed - before.echo_suppressed,
    )
}

/// One run: the final marks by port.
async fn conflicting_edits() -> BTreeMap<u16, Option<u32>> {
    let a = Node::primary(quiet()).await;
    let b = Node::shadow().await;
    let replicator = Replicator::new(
        a.peer("primary"),
        b.peer("shadow"),
        ReplicatorConfig {
            stream: stream_config(),
            bidirectional: true,
            anti_entropy: None,
        },
    );
    let handle = replicator.handle();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { replicator.run(stop).await.expect("replicator runs") }
    });
    settle(&handle).await;
    a.assert_same(&b, "initial states merged");
    let forward0 = handle.forward.status();
    let backward0 = handle.backward.as_ref().unwrap().status();

    // Same keys edited on both sides at once. Ports 0..60: same clock, so
    // the node id decides (B, node 2, wins); 60..90: A's clock is later;
    // 90..120: B deletes at the same clock as A's write (B wins: deleted).
    let t = umbra_agent::hlc::system_ms();
    let on_a: Vec<_> = (0..120u16)
        .map(|p| {
            conntrack(
                p,
                1,
                version(if (60..90).contains(&p) { t + 1 } else { t }, 1, false),
            )
        })
        .collect();
    let on_b: Vec<_> = (0..120u16)
        .map(|p| conntrack(p, 2, version(t, 2, p >= 90)))
        .collect();
    let (pa, pb) = (a.peer("primary"), b.peer("shadow"));
    let (outcomes_a, outcomes_b) = tokio::join!(apply(&pa, on_a), apply(&pb, on_b));
    settle(&handle).await;
    a.assert_same(&b, "converged");

    // No echo: each side's edits crossed once, and what one stream applied
    // was held back by the other.
    let forward = handle.forward.status();
    let backward = handle.backward.as_ref().unwrap().status();
    let (fwd_sent, fwd_applied, fwd_echo) = delta(&forward, &forward0);
    let (back_sent, back_applied, back_echo) = delta(&backward, &backward0);
    assert_eq!(
        fwd_sent,
        count(&outcomes_a, ApplyOutcome::Applied),
        "A's own edits, once"
    );
    assert_eq!(
        back_sent,
        count(&outcomes_b, ApplyOutcome::Applied),
        "B's own edits, once"
    );
    assert_eq!(back_echo, fwd_applied, "what A sent B is not sent back");
    assert_eq!(fwd_echo, back_applied, "what B sent A is not sent back");
    assert_eq!(forward.resnapshots + backward.resnapshots, 0);

    let marks: BTreeMap<u16, Option<u32>> =
        (0..120u16).map(|p| (p, mark_of(&a.agent, p))).collect();
    for p in 0..120u16 {
        assert_eq!(mark_of(&b.agent, p), marks[&p], "port {p}");
    }
    stop.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stops")
        .expect("task");
    marks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_edits_converge_the_same_way_every_run() {
    let first = conflicting_edits().await;
    let expected: BTreeMap<u16, Option<u32>> = (0..120u16)
        .map(|p| {
            let mark = match p {
                0..60 => Some(2),
                60..90 => Some(1),
                _ => None,
            };
            (p, mark)
        })
        .collect();
    assert_eq!(first, expected);
    for _ in 0..2 {
        assert_eq!(conflicting_edits().await, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_devices_churning_converge_without_echo() {
    use std::time::Duration;

    use umbra_agent::{AgentConfig, SimConfig};

    use crate::support::{SHADOW_BEHIND_MS, busy};

    let a = Node::primary(busy()).await;
    let b = Node::start(
        2,
        SimConfig {
            seed: 2,
            session_rate: 1_000.0,
            ..busy()
        },
        AgentConfig::default(),
        SHADOW_BEHIND_MS,
    )
    .await;
    let replicator = Replicator::new(
        a.peer("primary"),
        b.peer("shadow"),
        ReplicatorConfig {
            stream: stream_config(),
            bidirectional: true,
            anti_entropy: None,
        },
    );
    let handle = replicator.handle();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { replicator.run(stop).await.expect("replicator runs") }
    });
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    a.halt();
    b.halt();
    a.stop_churn().await;
    b.stop_churn().await;
    settle(&handle).await;
    a.assert_same_state(&b, "same keys and values");
    a.assert_same(&b, "identical");

    // Nothing bounces between them once the devices are still.
    let heads = (a.agent.head_revision(), b.agent.head_revision());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        heads,
        (a.agent.head_revision(), b.agent.head_revision()),
        "no echo"
    );
    let forward = handle.forward.status();
    let backward = handle.backward.as_ref().unwrap().status();
    assert!(
        forward.applied > 1_000 && backward.applied > 100,
        "{forward:?} {backward:?}"
    );
    assert!(forward.echo_suppressed > 0 && backward.echo_suppressed > 0);
    assert_eq!(forward.rejected + backward.rejected, 0);
    stop.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stops")
        .expect("task");
}
