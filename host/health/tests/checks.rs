//! Every probe against real peers on loopback: an HTTP server written
//! here (statuses, a slow answer, garbage, silence), the same behind TLS
//! with the test CA, TCP listeners and closed ports, and Debian's
//! PostgreSQL (started by `scripts/start-postgres.sh`, which the test
//! command runs).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use umbra_health::{CheckConfig, HealthWindow, Probe, run_check};

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(file)
}

/// Answers each connection by the request's path.
async fn serve(stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin) {
    let mut stream = stream;
    let mut request = Vec::new();
    let mut buf = [0u8; 512];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
    let reply: &[u8] = match path.as_str() {
        "/ok" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "/fail" => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        "/missing" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        }
        "/silent" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return;
        }
        _ => b"SSH-2.0-OpenSSH_9.2\r\n",
    };
    let _ = stream.write_all(reply).await;
    let _ = stream.shutdown().await;
}

async fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(stream));
        }
    });
    format!("http://{addr}")
}

async fn https_server() -> String {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(data("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(data("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve(tls).await;
                }
            });
        }
    });
    // The certificate is for `localhost` and 127.0.0.1.
    format!("https://localhost:{port}")
}

fn http(name: &str, url: String) -> CheckConfig {
    CheckConfig {
        name: name.into(),
        probe: Probe::Http {
            url,
            expect_status: None,
            max_latency_ms: None,
            ca_file: None,
        },
        timeout_ms: 2_000,
    }
}

fn with(check: CheckConfig, f: impl FnOnce(&mut Probe)) -> CheckConfig {
    let mut check = check;
    f(&mut check.probe);
    check
}

#[tokio::test]
async fn http_statuses_latency_bounds_garbage_and_silence() {
    let base = http_server().await;
    let ok = run_check(&http("web", format!("{base}/ok"))).await;
    assert!(ok.ok, "{ok:?}");
    assert_eq!(ok.status, Some(200));
    assert!(ok.latency_ms > 0.0 && ok.latency_ms < 2_000.0);

    let fail = run_check(&http("web", format!("{base}/fail"))).await;
    assert!(!fail.ok);
    assert_eq!(fail.status, Some(503));
    assert_eq!(fail.error.as_deref(), Some("status 503, expected 2xx"));

    // An expected 404 passes.
    let expected = with(http("web", format!("{base}/missing")), |p| {
        if let Probe::Http { expect_status, .. } = p {
            *expect_status = Some(404);
        }
    });
    assert!(run_check(&expected).await.ok);

    let bounded = with(http("web", format!("{base}/slow")), |p| {
        if let Probe::Http { max_latency_ms, .. } = p {
            *max_latency_ms = Some(100);
        }
    });
    let slow = run_check(&bounded).await;
    assert!(!slow.ok && slow.status == Some(200), "{slow:?}");
    assert!(slow.error.unwrap().contains("over the 100 ms bound"));

    let garbage = run_check(&http("web", format!("{base}/garbage"))).await;
    assert!(!garbage.ok && garbage.status.is_none());
    assert!(garbage.error.unwrap().contains("not an HTTP/1 response"));

    let mut silent = http("web", format!("{base}/silent"));
    silent.timeout_ms = 200;
    let silent = run_check(&silent).await;
    assert!(!silent.ok);
    assert_eq!(silent.error.as_deref(), Some("no answer within 200 ms"));
    assert!(silent.latency_ms >= 200.0);
}

#[tokio::test]
async fn https_with_the_right_ca_and_refused_without_it() {
    let base = https_server().await;
    let trusting = with(http("tls", format!("{base}/ok")), |p| {
        if let Probe::Http { ca_file, .. } = p {
            *ca_file = Some(data("ca.pem"));
        }
    });
    let ok = run_check(&trusting).await;
    assert!(ok.ok, "{ok:?}");
    assert_eq!(ok.status, Some(200));

    // The system's CAs do not know the test CA.
    let untrusting = run_check(&http("tls", format!("{base}/ok"))).await;
    assert!(!untrusting.ok);
    assert!(untrusting.error.unwrap().contains("TLS handshake"));
}

#[tokio::test]
async fn tcp_connects_and_refusals() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().to_string();
    // A port that was free a moment ago: bound, then released.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().to_string()
    };
    let tcp = |addr: String| CheckConfig {
        name: "tcp".into(),
        probe: Probe::Tcp { addr },
        timeout_ms: 1_000,
    };
    assert!(run_check(&tcp(open)).await.ok);
    let refused = run_check(&tcp(closed)).await;
    assert!(!refused.ok);
    assert!(refused.error.unwrap().contains("connect"));
}

fn postgres(conninfo: &str) -> CheckConfig {
    CheckConfig {
        name: "db".into(),
        probe: Probe::Postgres {
            conninfo: conninfo.into(),
        },
        timeout_ms: 3_000,
    }
}

#[tokio::test]
async fn postgres_select_1_and_what_failures_look_like() {
    let ok = run_check(&postgres(
        "host=127.0.0.1 port=5432 user=umbra password=umbra dbname=umbra",
    ))
    .await;
    assert!(
        ok.ok,
        "PostgreSQL must be up with role umbra (bash scripts/start-postgres.sh): {ok:?}"
    );
    assert_eq!(ok.db_connected, Some(true));

    let wrong = run_check(&postgres(
        "host=127.0.0.1 port=5432 user=umbra password=wrong dbname=umbra",
    ))
    .await;
    assert!(!wrong.ok);
    assert_eq!(wrong.db_connected, Some(false));
    assert!(
        wrong
            .error
            .as_deref()
            .unwrap()
            .contains("password authentication failed"),
        "{wrong:?}"
    );

    let no_db = run_check(&postgres(
        "host=127.0.0.1 port=5432 user=umbra password=umbra dbname=no_such_db",
    ))
    .await;
    assert!(!no_db.ok && no_db.db_connected == Some(false));
    assert!(no_db.error.unwrap().contains("no_such_db"));

    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let down = run_check(&postgres(&format!(
        "host=127.0.0.1 port={closed} user=umbra password=umbra dbname=umbra"
    )))
    .await;
    assert!(!down.ok && down.db_connected == Some(false));
}

#[tokio::test]
async fn a_window_of_runs_becomes_the_policy_record() {
    let base = http_server().await;
    let mut window = HealthWindow::new("web", 10);
    for path in ["/ok", "/fail", "/ok", "/fail", "/fail"] {
        window.push(run_check(&http("web", format!("{base}{path}"))).await);
    }
    let record = window.record().unwrap();
    assert_eq!(record.name, "web");
    assert!(!record.ok);
    assert_eq!(record.status_classes.success, 2);
    assert_eq!(record.status_classes.server_error, 3);
    assert_eq!(record.db_connected, None);
}

#[test]
fn configurations_report_every_problem() {
    let Err(umbra_health::Error::InvalidConfig(problems)) =
        CheckConfig::validate_all(&bad_checks())
    else {
        panic!("expected problems");
    };
    assert_eq!(
        problems,
        [
            r#"check "web": url "ftp://x/" is not http:// or https://"#,
            r#"check "web": expect_status 42 is not an HTTP status"#,
            r#"check "tcp": timeout_ms must be at least 1"#,
            r#"check "tcp": addr "nohostport" is not host:port"#,
            r#"check "db": bad conninfo: invalid connection string"#,
            r#"check name "web" is used twice"#,
        ]
    );

    // The configuration file form.
    let check: CheckConfig = serde_json::from_str(
        r#"{"name": "api", "kind": "http", "url": "https://198.18.0.10/healthz", "expect_status": 200, "timeout_ms": 500}"#,
    )
    .unwrap();
    assert!(check.problems().is_empty());
    assert!(
        serde_json::from_str::<CheckConfig>(
            r#"{"name": "x", "kind": "tcp", "addr": "a:1", "bogus": 1}"#
        )
        .is_err()
    );
}

fn bad_checks() -> Vec<CheckConfig> {
    vec![
        http("web", "ftp://x/".into()),
        with(http("web", "http://x/".into()), |p| {
            if let Probe::Http { expect_status, .. } = p {
                *expect_status = Some(42);
            }
        }),
        CheckConfig {
            name: "tcp".into(),
            probe: Probe::Tcp {
                addr: "nohostport".into(),
            },
            timeout_ms: 0,
        },
        postgres("host=127.0.0.1 port=notaport"),
    ]
}
