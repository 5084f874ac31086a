//! TLS towards the switch: the client verifies the switch against the
//! configured CA and presents its own certificate (mutual TLS). A
//! TLS-terminating front with the fixtures of `tests/data/tls` stands
//! before the plain software switch.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_p4rt::{P4RuntimeClient, P4rtError, PipelineOutcome, TlsConfig};

use crate::support::{COOKIE, Controller, Switch, config, p4info};

const CA: &[u8] = include_bytes!("../data/tls/ca.pem");
const SWITCH_CERT: &[u8] = include_bytes!("../data/tls/switch.pem");
const SWITCH_KEY: &[u8] = include_bytes!("../data/tls/switch.key");
const CONTROLLER_CERT: &[u8] = include_bytes!("../data/tls/controller.pem");
const CONTROLLER_KEY: &[u8] = include_bytes!("../data/tls/controller.key");

/// Terminates mutual TLS on a fresh port and forwards to `target`.
struct TlsFront {
    addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl TlsFront {
    async fn start(target: SocketAddr) -> Self {
        let provider = Arc::new(crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(CA) {
            roots.add(cert.unwrap()).unwrap();
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .unwrap();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(SWITCH_CERT)
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(SWITCH_KEY).unwrap();
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(server));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        let (token, connections) = (shutdown.clone(), tracker.clone());
        tracker.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((tcp, _)) = accepted else { continue };
                let (acceptor, token) = (acceptor.clone(), token.clone());
                connections.spawn(async move {
                    // A client the verifier refuses fails here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut tls, &mut plain) => {}
                    }
                });
            }
        });
        Self {
            addr,
            shutdown,
            tracker,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// The error and all its sources, for matching on what the TLS stack said.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause} ({cause:?})"));
        source = cause.source();
    }
    text
}

fn tls(identity: bool) -> TlsConfig {
    TlsConfig {
        ca_certificate_pem: CA.to_vec(),
        client_certificate_pem: identity.then(|| CONTROLLER_CERT.to_vec()),
        client_key_pem: identity.then(|| CONTROLLER_KEY.to_vec()),
        domain_name: Some("localhost".into()),
    }
}

#[tokio::test]
async fn mutual_tls_connects_and_a_missing_client_certificate_is_refused() {
    let switch = Switch::start().await;
    let front = TlsFront::start(switch.addr).await;

    let controller = Controller::connect_with(umbra_p4rt::ClientConfig {
        tls: Some(tls(true)),
        ..config(front.addr, 1)
    })
    .await;
    assert!(controller.client.is_primary());
    let outcome = controller
        .client
        .push_pipeline(p4info(), Vec::new(), COOKIE)
        .await
        .unwrap();
    assert_eq!(outcome, PipelineOutcome::Pushed);

    // Without its certificate the controller does not get through.
    let err = P4RuntimeClient::connect(umbra_p4rt::ClientConfig {
        tls: Some(tls(false)),
        ..config(front.addr, 2)
    })
    .await
    .expect_err("the front requires a client certificate");
    assert!(
        matches!(
            err,
            P4rtError::Rpc {
                rpc: "StreamChannel",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        chain(&err).contains("CertificateRequired"),
        "{}",
        chain(&err)
    );

    // Nor does one that speaks plaintext to a TLS port.
    let err = P4RuntimeClient::connect(config(front.addr, 3))
        .await
        .expect_err("plaintext to a TLS port");
    assert!(
        !matches!(err, P4rtError::Config { .. }),
        "refused by the peer, not by validation: {err:?}"
    );

    controller.stop().await;
    front.stop().await;
    switch.stop().await;
}
