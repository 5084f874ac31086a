//! `drain_and_commit` returns only once the shadow holds the primary's
//! changes.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use umbra_replicate::{Committed, ReplicateError, Replicator, ReplicatorConfig};

use crate::support::{Node, WAIT, apply, conntrack, mark_of, quiet, stream_config, version};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_returns_only_after_the_shadow_has_the_entries() {
    let primary = Node::primary(quiet()).await;
    let mut shadow = Node::shadow().await;
    let replicator = Replicator::new(
        primary.peer("primary"),
        shadow.peer("shadow"),
        ReplicatorConfig {
            stream: stream_config(),
            bidirectional: false,
            anti_entropy: None,
        },
    );
    let handle = replicator.handle();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { replicator.run(stop).await.expect("replicator runs") }
    });
    handle
        .drain_and_commit(None, WAIT)
        .await
        .expect("initial sync");

    shadow.stop_serving().await;
    let t = umbra_agent::hlc::system_ms();
    let entries: Vec<_> = (0..500u16)
        .map(|p| conntrack(p, 7, version(t, 1, false)))
        .collect();
    apply(&primary.peer("primary"), entries).await;
    let head = primary.agent.head_revision();

    let error = handle
        .drain_and_commit(None, Duration::from_millis(300))
        .await
        .expect_err("the shadow is away");
    assert!(
        matches!(error, ReplicateError::DrainTimeout { target, .. } if target == head),
        "{error}"
    );
    assert_eq!(mark_of(&shadow.agent, 499), None);

    shadow.serve_again().await;
    let report = handle.drain_and_commit(None, WAIT).await.expect("drains");
    // Checked right away: the shadow already holds everything.
    assert!(report.revision >= head);
    // Simulated sessions carry no sequence windows: committed, nothing to
    // relax.
    assert_eq!(
        report.committed,
        Some(Committed {
            entries: 0,
            vanished: 0
        })
    );
    for port in [0, 250, 499] {
        assert_eq!(mark_of(&shadow.agent, port), Some(7), "port {port}");
    }
    primary.assert_same(&shadow, "identical");

    stop.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stops")
        .expect("task");
    let stopped = handle.drain_and_commit(Some(head + 1), WAIT).await;
    assert!(
        matches!(stopped, Err(ReplicateError::Stopped)),
        "{stopped:?}"
    );
}
