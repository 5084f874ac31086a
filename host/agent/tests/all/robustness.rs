//! The agent keeps serving when clients send garbage or disappear in the
//! middle of a stream.

use bytes::{Buf as _, BufMut as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_stream::StreamExt as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Status};
use umbra_agent::AgentConfig;
use umbra_proto::umbra::device::v1 as pb;

use crate::support::{
    Harness, TOKEN, WAIT, busy, conntrack, outcomes, snapshot, token_only, version,
};

/// Sends and receives message bodies as they are, without protobuf.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len).to_vec()))
    }
}

#[tokio::test]
async fn garbage_requests_are_refused_and_the_agent_keeps_serving() {
    let harness = Harness::simple().await;

    // An Apply whose body is no protobuf.
    let mut grpc = tonic::client::Grpc::new(harness.channel().await);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(vec![0xff, 0xff, 0xff, 0x0f, 0x42, 0x13]);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let status = grpc
        .unary(
            request,
            PathAndQuery::from_static("/umbra.device.v1.Device/Apply"),
            RawCodec,
        )
        .await
        .expect_err("undecodable");
    assert_ne!(status.code(), Code::Ok);

    // Junk on a raw TCP connection: the agent closes it.
    let mut tcp = TcpStream::connect(harness.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\x01\x02 not http/2 at all")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut sink))
        .await
        .expect("the agent closes the connection");
    drop(read);

    // Everyone else is still served.
    let mut client = harness.client().await;
    let response = client
        .apply(pb::ApplyRequest {
            entries: vec![conntrack(45_000, version(5, 0, false))],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&response), [pb::ApplyOutcome::Applied]);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_vanishing_mid_stream_do_not_disturb_the_agent() {
    let harness = Harness::start(busy(), AgentConfig::default(), token_only()).await;
    for _ in 0..5 {
        let mut client = harness.client().await;
        let (revision, epoch, _) = snapshot(&mut client).await;
        let mut changes = client
            .watch(pb::WatchRequest {
                from_revision: revision,
                log_epoch: epoch,
                max_batch: 16,
            })
            .await
            .unwrap()
            .into_inner();
        let first = changes.next().await.unwrap().unwrap();
        assert_eq!(first.first_revision, revision + 1);
        let mut metrics = client
            .metrics(pb::MetricsRequest { interval_ms: 10 })
            .await
            .unwrap()
            .into_inner();
        metrics.next().await.unwrap().unwrap();
        let mut chunks = client
            .snapshot(pb::SnapshotRequest {
                chunk_size: 1,
                ..pb::SnapshotRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        chunks.next().await.unwrap().unwrap();
        // Everything dropped mid-stream with the connection.
    }
    let mut client = harness.client().await;
    let health = client
        .health(pb::HealthRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), pb::ServingStatus::Serving);
    assert_eq!(health.backend, "sim");
    assert!(health.head_revision > 0);
    let (revision, _, _) = snapshot(&mut client).await;
    assert!(revision >= health.head_revision);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_session_load() {
    let harness = Harness::start(busy(), AgentConfig::default(), token_only()).await;
    let mut client = harness.client().await;
    let mut samples = client
        .metrics(pb::MetricsRequest { interval_ms: 100 })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    for _ in 0..4 {
        last = Some(samples.next().await.unwrap().unwrap());
    }
    let sample = last.unwrap();
    let gauge = |name: &str| {
        sample
            .metrics
            .iter()
            .find(|m| m.name == name && m.interface.is_empty())
            .unwrap_or_else(|| panic!("{name} missing"))
            .value
    };
    for name in [
        "cpu",
        "memory",
        "rx-bps",
        "tx-bps",
        "rx-pps",
        "tx-pps",
        "drops",
        "sessions",
        "conntrack-fill",
    ] {
        gauge(name);
    }
    assert!(sample.conntrack_count > 100, "{sample:?}");
    assert_eq!(gauge("sessions"), sample.conntrack_count as f64);
    assert!(gauge("rx-pps") > 0.0, "traffic follows sessions");
    assert!(gauge("cpu") > 0.02);
    assert!(sample.timestamp_ms > 1_600_000_000_000);
    assert_eq!(sample.interfaces.len(), 2);
    harness.stop().await;
}
