//! Snapshot + Watch: a consistent, ordered stream (no gap, no duplicate)
//! under session churn; resuming after the client goes away; the bounded
//! log's documented statuses.

use std::time::Duration;

use tokio_stream::StreamExt as _;
use tonic::Code;
use umbra_agent::AgentConfig;
use umbra_proto::umbra::device::v1 as pb;

use crate::support::{
    Client, Harness, Replica, WAIT, apply_change, busy, conntrack, quiet, snapshot, token_only,
    version,
};

/// Follows the change stream from `after` into `replica` until the
/// replica has reached `until`, checking that revisions are consecutive.
async fn follow(
    client: &mut Client,
    epoch: u64,
    after: u64,
    until: u64,
    replica: &mut Replica,
) -> u64 {
    let mut stream = client
        .watch(pb::WatchRequest {
            from_revision: after,
            log_epoch: epoch,
            max_batch: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut last = after;
    while last < until {
        let batch = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a batch in time")
            .expect("the stream goes on")
            .unwrap_or_else(|status| panic!("watch failed at revision {last}: {status:?}"));
        assert_eq!(batch.first_revision, last + 1, "gap or duplicate");
        assert_eq!(batch.log_epoch, epoch);
        assert!(!batch.entries.is_empty(), "empty batch");
        last += batch.entries.len() as u64;
        for entry in batch.entries {
            apply_change(replica, entry);
        }
    }
    last
}

/// Waits until the agent has recorded everything the stopped device
/// reported, and returns the head revision.
async fn settle(client: &mut Client) -> u64 {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let head = client
            .health(pb::HealthRequest {})
            .await
            .expect("health")
            .into_inner()
            .head_revision;
        if head == last {
            return head;
        }
        last = head;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_plus_watch_reproduces_the_state_under_churn() {
    let harness = Harness::start(busy(), AgentConfig::default(), token_only()).await;
    // Let sessions accumulate.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut client = harness.client().await;
    let (revision, epoch, mut replica) = snapshot(&mut client).await;
    assert!(revision > 0);
    let sessions = replica
        .values()
        .filter(|e| matches!(e.entry, Some(pb::entry::Entry::Conntrack(_))))
        .count();
    assert!(sessions > 100, "churn made sessions: {sessions}");

    // Follow the churn for a while, then stop it and catch up.
    let watched = follow(
        &mut client,
        epoch,
        revision,
        revision + 10_000,
        &mut replica,
    )
    .await;
    harness.stop_churn();
    let head = settle(&mut client).await;
    follow(&mut client, epoch, watched, head, &mut replica).await;

    // The replica built from snapshot + changes is the agent's state.
    let (now, _, fresh) = snapshot(&mut client).await;
    assert_eq!(now, head, "nothing changed after churn stopped");
    assert_eq!(replica.len(), fresh.len());
    assert!(replica == fresh, "replica diverged from the agent");
    // And the agent's state is the device's.
    assert_eq!(
        fresh.len(),
        harness.sim.session_count() + 5,
        "4 routes + 1 nft table + the sessions"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_after_the_last_revision_when_the_client_went_away() {
    let harness = Harness::start(busy(), AgentConfig::default(), token_only()).await;
    let (revision, epoch, mut replica) = snapshot(&mut harness.client().await).await;

    // A first client reads some changes and vanishes (channel dropped).
    let last = {
        let mut client = harness.client().await;
        follow(&mut client, epoch, revision, revision + 2_000, &mut replica).await
    };
    // Its cancelled stream must not disturb the agent; a new connection
    // resumes exactly after `last`.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut client = harness.client().await;
    let resumed = follow(&mut client, epoch, last, last + 2_000, &mut replica).await;
    assert!(resumed >= last + 2_000);

    harness.stop_churn();
    let head = settle(&mut client).await;
    follow(&mut client, epoch, resumed, head, &mut replica).await;
    let (_, _, fresh) = snapshot(&mut client).await;
    assert!(replica == fresh, "resumed replica diverged");
    harness.stop().await;
}

#[tokio::test]
async fn a_revision_the_log_dropped_is_out_of_range_with_the_oldest_available() {
    let harness = Harness::start(
        quiet(),
        AgentConfig {
            change_log: 100,
            ..AgentConfig::default()
        },
        token_only(),
    )
    .await;
    let mut client = harness.client().await;
    let (revision, epoch, _) = snapshot(&mut client).await;
    // 250 changes through a log of 100.
    for chunk in 0..5u16 {
        let entries = (0..50)
            .map(|i| conntrack(chunk * 50 + i + 1, version(9, 0, false)))
            .collect();
        client
            .apply(pb::ApplyRequest { entries })
            .await
            .expect("apply");
    }
    let head = revision + 250;
    let health = client
        .health(pb::HealthRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.head_revision, head);
    assert_eq!(health.oldest_revision, head - 99);

    let status = client
        .watch(pb::WatchRequest {
            from_revision: revision,
            log_epoch: epoch,
            max_batch: 0,
        })
        .await
        .expect_err("too old");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("oldest revision available is {}", head - 99)),
        "{status:?}"
    );
    assert_eq!(
        status.metadata().get("umbra-oldest-revision").unwrap(),
        &(head - 99).to_string()
    );
    // The oldest resumable point works.
    let mut stream = client
        .watch(pb::WatchRequest {
            from_revision: head - 100,
            log_epoch: epoch,
            max_batch: 0,
        })
        .await
        .expect("resumable")
        .into_inner();
    let batch = stream.next().await.unwrap().unwrap();
    assert_eq!(
        (batch.first_revision, batch.entries.len()),
        (head - 99, 100)
    );

    // Another epoch (an agent restarted since) or a revision from the
    // future: FAILED_PRECONDITION.
    for (from_revision, log_epoch) in [(head, epoch.wrapping_add(1)), (head + 1, epoch)] {
        let status = client
            .watch(pb::WatchRequest {
                from_revision,
                log_epoch,
                max_batch: 0,
            })
            .await
            .expect_err("unknown revision");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains("take a fresh snapshot"));
    }
    harness.stop().await;
}

#[tokio::test]
async fn a_watcher_that_falls_behind_the_log_gets_out_of_range_mid_stream() {
    let harness = Harness::start(
        quiet(),
        AgentConfig {
            change_log: 50,
            ..AgentConfig::default()
        },
        token_only(),
    )
    .await;
    let mut client = harness.client().await;
    let (revision, epoch, _) = snapshot(&mut client).await;
    let mut stream = client
        .watch(pb::WatchRequest {
            from_revision: revision,
            log_epoch: epoch,
            max_batch: 1,
        })
        .await
        .expect("watch")
        .into_inner();
    // The watcher reads nothing while 2 000 changes go through a log of 50.
    let mut writer = harness.client().await;
    for chunk in 0..20u16 {
        let entries = (0..100)
            .map(|i| conntrack(chunk * 100 + i + 1, version(9, 0, false)))
            .collect();
        writer.apply(pb::ApplyRequest { entries }).await.unwrap();
    }
    let mut next = revision + 1;
    let status = loop {
        match tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("in time")
        {
            Some(Ok(batch)) => {
                assert_eq!(batch.first_revision, next, "no gap before the end");
                next += batch.entries.len() as u64;
            }
            Some(Err(status)) => break status,
            None => panic!("the stream ended without a status"),
        }
    };
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("take a fresh snapshot"));
    harness.stop().await;
}
