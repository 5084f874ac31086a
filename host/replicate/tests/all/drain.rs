//! `drain_and_commit` returns only once the shadow holds the primary's
//! changes.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use umbra_proto::umbra::device::v1 as pb;
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

/// An agent that predates Commit: every method but Commit is the real
/// agent's, Commit answers `UNIMPLEMENTED`.
struct WithoutCommit(umbra_agent::DeviceService);

#[tonic::async_trait]
impl pb::device_server::Device for WithoutCommit {
    type SnapshotStream = <umbra_agent::DeviceService as pb::device_server::Device>::SnapshotStream;
    type WatchStream = <umbra_agent::DeviceService as pb::device_server::Device>::WatchStream;
    type MetricsStream = <umbra_agent::DeviceService as pb::device_server::Device>::MetricsStream;

    async fn snapshot(
        &self,
        request: tonic::Request<pb::SnapshotRequest>,
    ) -> Result<tonic::Response<Self::SnapshotStream>, tonic::Status> {
        self.0.snapshot(request).await
    }

    async fn watch(
        &self,
        request: tonic::Request<pb::WatchRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        self.0.watch(request).await
    }

    async fn apply(
        &self,
        request: tonic::Request<pb::ApplyRequest>,
    ) -> Result<tonic::Response<pb::ApplyResponse>, tonic::Status> {
        self.0.apply(request).await
    }

    async fn metrics(
        &self,
        request: tonic::Request<pb::MetricsRequest>,
    ) -> Result<tonic::Response<Self::MetricsStream>, tonic::Status> {
        self.0.metrics(request).await
    }

    async fn health(
        &self,
        request: tonic::Request<pb::HealthRequest>,
    ) -> Result<tonic::Response<pb::HealthResponse>, tonic::Status> {
        self.0.health(request).await
    }

    async fn digest(
        &self,
        request: tonic::Request<pb::DigestRequest>,
    ) -> Result<tonic::Response<pb::DigestResponse>, tonic::Status> {
        self.0.digest(request).await
    }

    async fn commit(
        &self,
        _request: tonic::Request<pb::CommitRequest>,
    ) -> Result<tonic::Response<pb::CommitResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("this agent has no Commit"))
    }
}

/// Against an agent without Commit the drain still completes, everything
/// applied, and says the target committed nothing (`None`), not zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_commit_is_drained_and_reported_uncommitted() {
    let primary = Node::primary(quiet()).await;
    let shadow = Node::shadow().await;
    // The shadow's agent again, served without Commit.
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service =
        umbra_agent::DeviceService::new(std::sync::Arc::clone(&shadow.agent), stop.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::device_server::DeviceServer::new(WithoutCommit(service)))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop.clone().cancelled_owned(),
            ),
    );
    let target = umbra_replicate::Peer::connect_lazy("old shadow", &format!("http://{addr}"), None)
        .expect("peer");
    let replicator = Replicator::new(
        primary.peer("primary"),
        target,
        ReplicatorConfig {
            stream: stream_config(),
            bidirectional: false,
            anti_entropy: None,
        },
    );
    let handle = replicator.handle();
    tokio::spawn(replicator.run(stop.clone()));
    let t = umbra_agent::hlc::system_ms();
    apply(
        &primary.peer("primary"),
        vec![conntrack(5, 50, version(t, 1, false))],
    )
    .await;
    let report = handle.drain_and_commit(None, WAIT).await.expect("drains");
    assert_eq!(report.committed, None, "{report:?}");
    assert_eq!(mark_of(&shadow.agent, 5), Some(50));
    stop.cancel();
}
