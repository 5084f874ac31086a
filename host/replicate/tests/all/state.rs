//! `umbra replicate --state FILE`: the resume point survives a restart of
//! the replicator, which then resumes the stream instead of taking a
//! snapshot; without the file it takes one.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use umbra_replicate::{ReplicateArgs, ReplicatorHandle, StateFile};

use crate::support::{Node, TOKEN, WAIT, apply, conntrack, quiet, version};

fn args(primary: &Node, shadow: &Node, dir: &std::path::Path, state: bool) -> ReplicateArgs {
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).expect("write the token");
    ReplicateArgs {
        primary: primary.addr.to_string(),
        shadow: shadow.addr.to_string(),
        token_file: Some(token),
        primary_ca: None,
        primary_cert: None,
        primary_key: None,
        primary_server_name: None,
        shadow_ca: None,
        shadow_cert: None,
        shadow_key: None,
        shadow_server_name: None,
        state: state.then(|| dir.join("resume")),
        bidirectional: false,
        anti_entropy_ms: 0,
        partitions: 256,
        status_ms: 0,
        apply_in_flight: 2,
    }
}

/// Runs `umbra replicate` until the shadow has applied the primary's head,
/// then stops it; returns the stream's status at the end.
async fn replicate_until_caught_up(
    primary: &Node,
    args: ReplicateArgs,
) -> umbra_replicate::StreamStatus {
    let shutdown = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<ReplicatorHandle>();
    let run = tokio::spawn(umbra_replicate::run_observed(
        args,
        shutdown.clone(),
        move |handle| {
            let _ = tx.send(handle);
        },
    ));
    let handle = rx.await.expect("the replicator's handle");
    let head = primary.agent.head_revision();
    let deadline = Instant::now() + WAIT;
    while handle.forward.status().acked_revision < head {
        assert!(Instant::now() < deadline, "{:#?}", handle.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    run.await
        .expect("replicate task")
        .expect("umbra replicate stops cleanly");
    handle.forward.status()
}

#[tokio::test]
async fn the_resume_point_survives_a_restart_of_umbra_replicate() {
    let primary = Node::primary(quiet()).await;
    let shadow = Node::shadow().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let now = umbra_agent::hlc::system_ms();
    let writer = primary.peer("primary");

    // First run: a snapshot, and the point is saved.
    let first =
        replicate_until_caught_up(&primary, args(&primary, &shadow, dir.path(), true)).await;
    assert_eq!(first.snapshots, 1, "{first:#?}");
    let saved = StateFile::new(dir.path().join("resume"))
        .load()
        .expect("a readable state file")
        .expect("a saved point");
    assert_eq!(saved.revision, first.acked_revision);
    assert_eq!(saved.source_epoch, primary.agent.epoch());

    // The primary changes while no replicator runs.
    let entries = (0..50)
        .map(|port| conntrack(port, 1, version(now + 1, 1, false)))
        .collect();
    apply(&writer, entries).await;

    // Second run from the saved point: no snapshot, only the changes.
    let second =
        replicate_until_caught_up(&primary, args(&primary, &shadow, dir.path(), true)).await;
    assert_eq!(second.snapshots, 0, "resumed from the file: {second:#?}");
    assert_eq!(second.applied, 50, "{second:#?}");
    primary.assert_same(&shadow, "after the resumed run");
    let resaved = StateFile::new(dir.path().join("resume"))
        .load()
        .expect("readable")
        .expect("saved");
    assert_eq!(resaved.revision, primary.agent.head_revision());

    // The control: without the file the same restart takes a snapshot.
    let third =
        replicate_until_caught_up(&primary, args(&primary, &shadow, dir.path(), false)).await;
    assert_eq!(third.snapshots, 1, "{third:#?}");
}
