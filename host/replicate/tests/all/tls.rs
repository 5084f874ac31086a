//! `umbra replicate` towards agents that require mutual TLS, with the
//! agent crate's test certificates: the CA-signed client replicates, a
//! client without a certificate or with one from another CA does not.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use umbra_agent::{AgentConfig, Security, ServerTls};
use umbra_replicate::ReplicateArgs;

use crate::support::{Node, SHADOW_BEHIND_MS, WAIT, quiet};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../agent/tests/data/tls")
        .join(name)
}

/// Agents that admit only clients whose certificate chains to the test CA.
fn mutual_tls() -> Security {
    let read = |name| std::fs::read(fixture(name)).expect("TLS fixture");
    Security {
        tls: Some(ServerTls {
            certificate_pem: read("agent.pem"),
            key_pem: read("agent.key"),
            client_ca_pem: Some(read("ca.pem")),
        }),
        ..Security::default()
    }
}

async fn nodes() -> (Node, Node) {
    let shadow = Node::start_secured(
        2,
        quiet(),
        AgentConfig::default(),
        SHADOW_BEHIND_MS,
        mutual_tls(),
    )
    .await;
    let primary = Node::start_secured(1, quiet(), AgentConfig::default(), 0, mutual_tls()).await;
    (primary, shadow)
}

/// `umbra replicate` between them, presenting `identity` (certificate and
/// key fixture names) to both.
fn args(primary: &Node, shadow: &Node, identity: Option<(&str, &str)>) -> ReplicateArgs {
    let cert = identity.map(|(cert, _)| fixture(cert));
    let key = identity.map(|(_, key)| fixture(key));
    ReplicateArgs {
        primary: primary.addr.to_string(),
        shadow: shadow.addr.to_string(),
        token_file: None,
        primary_ca: Some(fixture("ca.pem")),
        primary_cert: cert.clone(),
        primary_key: key.clone(),
        // The agent's certificate names localhost and 127.0.0.1.
        primary_server_name: Some("localhost".into()),
        shadow_ca: Some(fixture("ca.pem")),
        shadow_cert: cert,
        shadow_key: key,
        shadow_server_name: None,
        state: None,
        bidirectional: false,
        anti_entropy_ms: 0,
        partitions: 256,
        status_ms: 0,
        apply_in_flight: 2,
    }
}

/// Runs `umbra replicate` with `args` until the shadow holds the
/// primary's state or `limit` passes; whether it did.
async fn replicates(primary: &Node, shadow: &Node, args: ReplicateArgs, limit: Duration) -> bool {
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(umbra_replicate::run(args, shutdown.clone()));
    let deadline = Instant::now() + limit;
    let mut same = false;
    while Instant::now() < deadline && !same {
        tokio::time::sleep(Duration::from_millis(50)).await;
        same = primary.digests() == shadow.digests();
    }
    shutdown.cancel();
    run.await
        .expect("replicate task")
        .expect("umbra replicate runs and stops cleanly");
    same
}

#[tokio::test]
async fn umbra_replicate_with_the_ca_signed_client_certificate_replicates() {
    let (primary, shadow) = nodes().await;
    assert_ne!(primary.digests(), shadow.digests(), "they start different");
    let args = args(&primary, &shadow, Some(("client.pem", "client.key")));
    assert!(replicates(&primary, &shadow, args, WAIT).await);
    primary.assert_same(&shadow, "after replication over mutual TLS");
}

#[tokio::test]
async fn umbra_replicate_without_a_trusted_client_certificate_is_refused() {
    let (primary, shadow) = nodes().await;
    for identity in [None, Some(("rogue.pem", "rogue.key"))] {
        let args = args(&primary, &shadow, identity);
        assert!(
            !replicates(&primary, &shadow, args, Duration::from_secs(2)).await,
            "replicated with {identity:?}"
        );
    }
    // A CA that did not sign the agent's certificate is refused too.
    let mut wrong_ca = args(&primary, &shadow, Some(("client.pem", "client.key")));
    wrong_ca.primary_ca = Some(fixture("rogue.pem"));
    wrong_ca.shadow_ca = Some(fixture("rogue.pem"));
    assert!(!replicates(&primary, &shadow, wrong_ca, Duration::from_secs(2)).await);
}
