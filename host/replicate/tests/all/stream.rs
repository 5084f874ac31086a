//! One direction under churn: convergence, resuming after the replicator
//! and the shadow restart (nothing lost, nothing applied twice), and
//! automatic resnapshots.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use umbra_agent::AgentConfig;
use umbra_replicate::{Replicator, ReplicatorConfig, ReplicatorHandle};

use crate::support::{Node, WAIT, assert_converged, busy, stream_config};

fn config() -> ReplicatorConfig {
    ReplicatorConfig {
        stream: stream_config(),
        anti_entropy: None,
        bidirectional: false,
    }
}

/// [`config`] with one Apply at a time: the shadow applies the batches
/// strictly in revision order.
fn strict() -> ReplicatorConfig {
    let mut config = config();
    config.stream.apply_in_flight = 1;
    config
}

fn start(
    replicator: Replicator,
) -> (
    ReplicatorHandle,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let handle = replicator.handle();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { replicator.run(stop).await.expect("replicator runs") }
    });
    (handle, stop, task)
}

/// Waits (at most [`WAIT`]) until the stream has applied changes after
/// its snapshot.
async fn streaming(handle: &ReplicatorHandle) {
    tokio::time::timeout(WAIT, async {
        while handle.forward.status().applied == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no change applied: {:?}", handle.forward.status()));
}

/// A churning primary replicated to a fresh shadow with `config`: the
/// snapshot, then the stream until the churn stops; returns once the
/// shadow has drained everything and both sides hold the same state.
async fn replicate_churn(
    config: ReplicatorConfig,
) -> (
    Node,
    Node,
    ReplicatorHandle,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let shadow = Node::shadow().await;
    let primary = Node::primary(busy()).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // state before the snapshot
    let (handle, token, task) = start(Replicator::new(
        primary.peer("primary"),
        shadow.peer("shadow"),
        config,
    ));
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    streaming(&handle).await;
    primary.stop_churn().await;
    let drained = handle
        .drain_and_commit(None, WAIT)
        .await
        .expect("the shadow catches up");
    assert_eq!(drained.revision, primary.agent.head_revision());
    assert_converged(&primary, &shadow).await;
    (primary, shadow, handle, token, task)
}

async fn stop(stop: CancellationToken, task: tokio::task::JoinHandle<()>) {
    stop.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("replicator stops")
        .expect("replicator task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_stream_converge_under_churn() {
    let (primary, _shadow, handle, token, task) = replicate_churn(strict()).await;
    assert!(primary.entries() > 100, "the device churned");

    let status = handle.status().forward;
    assert_eq!(status.snapshots, 1, "{status:?}");
    assert_eq!(status.resnapshots, 0, "{status:?}");
    assert!(status.snapshot_applied > 0, "{status:?}");
    assert!(
        status.applied > 1_000,
        "the stream carried the churn: {status:?}"
    );
    assert_eq!(status.rejected + status.superseded, 0, "{status:?}");
    // Every change after the snapshot was applied exactly once.
    assert_eq!(
        status.applied,
        status.acked_revision - status.snapshot_revision
    );
    assert_eq!(status.lag_revisions, 0);
    let lag = handle.forward.metrics().lag.snapshot();
    assert_eq!(lag.count(), status.forwarded, "one lag sample per change");
    assert!(lag.quantile(0.99).is_some());
    assert_eq!(status.pipelined, 0, "one Apply at a time: {status:?}");
    stop(token, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_in_flight_together_converge_and_acknowledge_every_revision_once() {
    let mut config = config();
    // Small batches: many Applies, so they overlap under churn.
    config.stream.watch_batch = 16;
    config.stream.apply_batch = 32;
    config.stream.apply_in_flight = 3;
    let (_primary, _shadow, handle, token, task) = replicate_churn(config).await;

    let status = handle.status().forward;
    assert!(
        status.pipelined > 0,
        "Applies were sent before earlier ones were answered: {status:?}"
    );
    assert_eq!(status.rejected, 0, "{status:?}");
    // Every change after the snapshot has exactly one outcome: applied, or
    // superseded where the shadow served a later write of its key first.
    assert_eq!(
        status.applied + status.superseded,
        status.acked_revision - status.snapshot_revision,
        "{status:?}"
    );
    assert_eq!(status.lag_revisions, 0);
    stop(token, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_the_replicator_and_the_shadow_restart() {
    let mut shadow = Node::shadow().await;
    let primary = Node::primary(busy()).await;
    let (first, token, task) = start(Replicator::new(
        primary.peer("primary"),
        shadow.peer("shadow"),
        config(),
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    streaming(&first).await;
    stop(token, task).await;
    let before = first.forward.status();
    let point = first.forward.resume_point().expect("a position");
    assert!(before.applied > 0, "{before:?}");

    // The primary churns on while no replicator runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (second, token, task) = start(
        Replicator::new(primary.peer("primary"), shadow.peer("shadow"), config())
            .resume_from(point),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resumed = second.forward.status().applied;
    tokio::time::timeout(WAIT, async {
        while second.forward.status().applied == resumed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the resumed stream applies changes");
    // The shadow's agent goes away mid-stream and comes back.
    shadow.stop_serving().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    shadow.serve_again().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    primary.stop_churn().await;
    second
        .drain_and_commit(None, WAIT)
        .await
        .expect("the shadow catches up");
    assert_converged(&primary, &shadow).await;

    let after = second.forward.status();
    assert_eq!(after.snapshots, 0, "resumed, no snapshot: {after:?}");
    assert!(
        after.errors >= 1,
        "the shadow's absence was noticed: {after:?}"
    );
    let changes = after.acked_revision - before.snapshot_revision;
    // Each change was applied once; what was resent after the restarts
    // (in flight when they happened) found the shadow already holding it.
    assert!(
        before.applied + after.applied <= changes,
        "{before:?} {after:?}"
    );
    assert_eq!(
        before.applied + after.applied + after.unchanged + after.superseded,
        changes,
        "{before:?} {after:?}"
    );
    assert!(
        after.unchanged + after.superseded <= 2 * stream_config().apply_batch as u64,
        "only in-flight batches are resent: {after:?}"
    );
    assert_eq!(before.rejected + after.rejected, 0);
    stop(token, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_too_old_takes_a_fresh_snapshot() {
    let mut shadow = Node::shadow().await;
    let primary = Node::start(
        1,
        busy(),
        AgentConfig {
            change_log: 256,
            ..AgentConfig::default()
        },
        0,
    )
    .await;
    let (handle, token, task) = start(Replicator::new(
        primary.peer("primary"),
        shadow.peer("shadow"),
        config(),
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    shadow.stop_serving().await;
    // Thousands of changes: far more than the primary's log holds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shadow.serve_again().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    primary.stop_churn().await;
    handle
        .drain_and_commit(None, WAIT)
        .await
        .expect("the shadow catches up");
    assert_converged(&primary, &shadow).await;
    let status = handle.status().forward;
    assert!(status.resnapshots >= 1, "{status:?}");
    assert_eq!(status.snapshots, status.resnapshots + 1, "{status:?}");
    stop(token, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_that_lost_its_state_gets_a_fresh_snapshot() {
    let mut shadow = Node::shadow().await;
    let primary = Node::primary(busy()).await;
    let (handle, token, task) = start(Replicator::new(
        primary.peer("primary"),
        shadow.peer("shadow"),
        config(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    shadow.replace().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    primary.stop_churn().await;
    handle
        .drain_and_commit(None, WAIT)
        .await
        .expect("the shadow catches up");
    assert_converged(&primary, &shadow).await;
    let status = handle.status().forward;
    assert_eq!(status.resnapshots, 1, "{status:?}");
    stop(token, task).await;
}
