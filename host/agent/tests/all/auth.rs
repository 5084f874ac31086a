//! Authentication: the bearer token on every RPC, and mutual TLS whose
//! client certificate must chain to the configured CA.

use tokio_stream::StreamExt as _;
use tonic::Code;
use umbra_agent::{AgentConfig, BearerToken, Security, ServerTls};
use umbra_proto::umbra::device::v1 as pb;
use umbra_proto::umbra::device::v1::device_client::DeviceClient;

use crate::support::{Harness, TOKEN, conntrack, outcomes, quiet, tls_channel, version};

const CA: &[u8] = include_bytes!("../data/tls/ca.pem");
const AGENT_CERT: &[u8] = include_bytes!("../data/tls/agent.pem");
const AGENT_KEY: &[u8] = include_bytes!("../data/tls/agent.key");
const CLIENT_CERT: &[u8] = include_bytes!("../data/tls/client.pem");
const CLIENT_KEY: &[u8] = include_bytes!("../data/tls/client.key");
const ROGUE_CERT: &[u8] = include_bytes!("../data/tls/rogue.pem");
const ROGUE_KEY: &[u8] = include_bytes!("../data/tls/rogue.key");

fn mutual_tls(token: Option<&str>) -> Security {
    Security {
        token: token.map(Into::into),
        tls: Some(ServerTls {
            certificate_pem: AGENT_CERT.to_vec(),
            key_pem: AGENT_KEY.to_vec(),
            client_ca_pem: Some(CA.to_vec()),
        }),
        allow_unauthenticated: false,
    }
}

fn apply_request() -> pb::ApplyRequest {
    pb::ApplyRequest {
        entries: vec![conntrack(44_000, version(5, 0, false))],
    }
}

#[tokio::test]
async fn calls_without_the_right_token_are_unauthenticated_and_change_nothing() {
    let harness = Harness::simple().await;
    let head = harness.agent.head_revision();

    let mut anonymous = DeviceClient::new(harness.channel().await);
    let status = anonymous
        .apply(apply_request())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = anonymous
        .snapshot(pb::SnapshotRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = anonymous
        .watch(pb::WatchRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);

    for wrong in [
        "",
        "correct horse battery stapl",
        "correct horse battery staple!",
    ] {
        let mut client = harness.client_with(wrong).await;
        let status = client
            .apply(apply_request())
            .await
            .expect_err("wrong token");
        assert_eq!(status.code(), Code::Unauthenticated, "{wrong:?}");
        let status = client
            .watch(pb::WatchRequest::default())
            .await
            .expect_err("wrong token");
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    assert_eq!(harness.agent.head_revision(), head, "nothing was applied");
    assert_eq!(harness.sim.session_count(), 0);

    let mut client = harness.client().await;
    let response = client.apply(apply_request()).await.unwrap().into_inner();
    assert_eq!(outcomes(&response), [pb::ApplyOutcome::Applied]);
    harness.stop().await;
}

#[tokio::test]
async fn mutual_tls_admits_the_ca_signed_client_and_refuses_others() {
    let harness = Harness::start(quiet(), AgentConfig::default(), mutual_tls(None)).await;

    let channel = tls_channel(harness.addr, CA, Some((CLIENT_CERT, CLIENT_KEY)))
        .await
        .expect("the CA-signed client connects");
    let mut client = DeviceClient::new(channel);
    let response = client.apply(apply_request()).await.unwrap().into_inner();
    assert_eq!(outcomes(&response), [pb::ApplyOutcome::Applied]);
    let mut chunks = client
        .snapshot(pb::SnapshotRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(chunks.next().await.unwrap().is_ok());
    let head = harness.agent.head_revision();

    // A certificate from another CA, or none: no call gets through.
    for identity in [Some((ROGUE_CERT, ROGUE_KEY)), None] {
        let refused = match tls_channel(harness.addr, CA, identity).await {
            Err(_) => true,
            Ok(channel) => DeviceClient::new(channel)
                .apply(pb::ApplyRequest {
                    entries: vec![conntrack(44_001, version(5, 0, false))],
                })
                .await
                .is_err(),
        };
        assert!(refused, "identity {:?} got through", identity.is_some());
    }
    // Plaintext to the TLS port fails too.
    let plain = harness.channel_lazy();
    assert!(
        DeviceClient::new(plain)
            .health(pb::HealthRequest {})
            .await
            .is_err()
    );
    assert_eq!(harness.agent.head_revision(), head, "nothing was applied");
    assert_eq!(harness.sim.session_count(), 1);
    harness.stop().await;
}

#[tokio::test]
async fn mutual_tls_and_a_token_are_both_required_when_both_are_configured() {
    let harness = Harness::start(quiet(), AgentConfig::default(), mutual_tls(Some(TOKEN))).await;
    let channel = tls_channel(harness.addr, CA, Some((CLIENT_CERT, CLIENT_KEY)))
        .await
        .expect("connects");
    let status = DeviceClient::new(channel.clone())
        .apply(apply_request())
        .await
        .expect_err("certificate without token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut client = DeviceClient::with_interceptor(channel, BearerToken::new(TOKEN).unwrap());
    let response = client.apply(apply_request()).await.unwrap().into_inner();
    assert_eq!(outcomes(&response), [pb::ApplyOutcome::Applied]);
    harness.stop().await;
}
