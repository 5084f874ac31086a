//! The management API: every field of Status survives the wire, failover
//! is accepted / refused / NOT_FOUND, the token is enforced, and the
//! client's text shows the decision's explanation.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request};
use umbra_ops::{
    Control, Decision, DeviceHealth, FailoverRefused, HostInfo, HostStatus, PairStatus, Phase,
    PolicyReload, ReloadOutcome, Replication,
    client::{self, ClientArgs, FailoverArgs, StatusArgs},
};
use umbra_proto::umbra::management::v1::{self as pb, management_client::ManagementClient};

const EXPLANATION: &str = "probability 0.91 crossed 0.80; drift rising at 3.2 sigma/min";

fn pairs() -> Vec<PairStatus> {
    vec![
        PairStatus {
            name: "web".into(),
            switch: "tor-1".into(),
            phase: Phase::Verifying,
            active_device: "web-shadow".into(),
            standby_device: "web-primary".into(),
            standby_ready: false,
            p4runtime_primary: true,
            last_decision: Some(Decision {
                at_ms: 1_700_000_000_123,
                go: true,
                explanation: EXPLANATION.into(),
                drift_score: 4.25,
                correlation_score: 0.75,
                probability: Some(0.91),
                probability_threshold: 0.8,
                fallback: false,
            }),
            failovers_total: 3,
            last_failover_at_ms: Some(1_700_000_000_200),
            replication: Replication {
                lag_ms: 17,
                applied_total: 123_456,
                resnapshots: 2,
            },
            health: vec![
                DeviceHealth {
                    name: "web-primary".into(),
                    healthy: false,
                    reason: "HTTP 503 on /health".into(),
                },
                DeviceHealth {
                    name: "web-shadow".into(),
                    healthy: true,
                    reason: String::new(),
                },
            ],
        },
        PairStatus {
            name: "db".into(),
            switch: "tor-2".into(),
            phase: Phase::RollingBack,
            active_device: "db-primary".into(),
            standby_device: "db-shadow".into(),
            standby_ready: true,
            p4runtime_primary: false,
            last_decision: None,
            failovers_total: 0,
            last_failover_at_ms: None,
            replication: Replication::default(),
            health: vec![],
        },
    ]
}

fn host() -> HostInfo {
    HostInfo {
        name: "edge-1".into(),
        // Both halves of the 128-bit id are used.
        election_id: (7u128 << 64) | 42,
    }
}

/// A daemon that answers from fixed data and records what it was asked.
#[derive(Default)]
struct FakeDaemon {
    failovers: Mutex<Vec<(String, String, String)>>,
    model_paths: Mutex<Vec<Option<PathBuf>>>,
}

#[tonic::async_trait]
impl Control for FakeDaemon {
    fn host(&self) -> HostInfo {
        host()
    }

    fn status(&self) -> Vec<PairStatus> {
        pairs()
    }

    async fn failover(
        &self,
        pair: &str,
        by: &str,
        reason: &str,
    ) -> Result<String, FailoverRefused> {
        self.failovers
            .lock()
            .unwrap()
            .push((pair.into(), by.into(), reason.into()));
        match pair {
            "web" => Ok("failover of web started: draining replication".into()),
            "db" => Err(FailoverRefused::Refused(
                "cooldown: 40 s left since the last failover".into(),
            )),
            _ => Err(FailoverRefused::NotFound),
        }
    }

    async fn reload_policies(&self) -> Vec<PolicyReload> {
        vec![
            PolicyReload {
                kind: "drift".into(),
                source: "/etc/umbra/policies/drift.wasm".into(),
                version: "0.2.0".into(),
                outcome: ReloadOutcome::Loaded,
                error: None,
            },
            PolicyReload {
                kind: "failover".into(),
                source: "/etc/umbra/policies/failover.wasm".into(),
                version: String::new(),
                outcome: ReloadOutcome::Refused,
                error: Some("imports wasi:sockets".into()),
            },
        ]
    }

    async fn reload_model(&self, path: Option<PathBuf>) -> Result<String, String> {
        self.model_paths.lock().unwrap().push(path.clone());
        match path {
            None => Ok("gru-default 1.0".into()),
            Some(_) => Err("input shape [1, 32, 9] does not match the manifest".into()),
        }
    }
}

/// The API served on loopback by a fake daemon; `stop` cancels it and
/// checks it ends cleanly.
struct Served {
    addr: String,
    daemon: Arc<FakeDaemon>,
    shutdown: CancellationToken,
    task: JoinHandle<umbra_ops::Result<()>>,
}

impl Served {
    async fn start(token: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let daemon = Arc::new(FakeDaemon::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(umbra_ops::serve(
            listener,
            daemon.clone(),
            token.map(str::to_owned),
            shutdown.clone(),
        ));
        Self {
            addr,
            daemon,
            shutdown,
            task,
        }
    }

    fn args(&self) -> ClientArgs {
        ClientArgs {
            addr: self.addr.clone(),
            token_file: None,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("the server stops when cancelled")
            .unwrap();
        result.expect("the server ended cleanly");
    }
}

#[tokio::test]
async fn status_round_trips_every_field() {
    let served = Served::start(None).await;
    let json = client::status(
        &served.args(),
        &StatusArgs {
            pair: None,
            json: true,
        },
    )
    .await
    .unwrap();
    let decoded: HostStatus = serde_json::from_str(&json).unwrap();
    assert_eq!(
        decoded,
        HostStatus {
            host: host(),
            pairs: pairs()
        }
    );
    // The phase travels under its documented name.
    assert!(json.contains("\"rolling-back\""), "{json}");
    served.stop().await;
}

#[tokio::test]
async fn status_of_one_pair_filters_and_an_unknown_pair_is_not_found() {
    let served = Served::start(None).await;
    let mut raw = ManagementClient::connect(served.addr.clone())
        .await
        .unwrap();
    let one = raw
        .status(pb::StatusRequest {
            pair: Some("db".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.pairs.len(), 1);
    assert_eq!(one.pairs[0].name, "db");
    assert_eq!(one.pairs[0].phase, "rolling-back");
    let missing = raw
        .status(pb::StatusRequest {
            pair: Some("nope".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    served.stop().await;
}

#[tokio::test]
async fn the_status_table_shows_the_decision_and_its_explanation() {
    let served = Served::start(None).await;
    let text = client::status(&served.args(), &StatusArgs::default())
        .await
        .unwrap();
    assert!(text.contains(EXPLANATION), "{text}");
    assert!(text.contains("host edge-1"), "{text}");
    assert!(text.contains("FAIL OVER"), "{text}");
    assert!(text.contains("0.91/0.80"), "{text}");
    assert!(text.contains("0.91 >= threshold 0.80"), "{text}");
    assert!(text.contains("2023-11-14T22:13:20.123Z"), "{text}");
    assert!(
        text.contains("web-primary UNHEALTHY (HTTP 503 on /health)"),
        "{text}"
    );
    assert!(text.contains("17 ms"), "{text}");
    // The table has a row per pair with its phase.
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {text}"))
            .to_owned()
    };
    assert!(row("web").contains("verifying"), "{text}");
    assert!(row("db").contains("rolling-back"), "{text}");
    assert!(text.contains("last decision: none yet"), "{text}");
    served.stop().await;
}

#[tokio::test]
async fn failover_is_accepted_refused_or_not_found() {
    let served = Served::start(None).await;
    let args = served.args();
    let accepted = client::failover(
        &args,
        &FailoverArgs {
            pair: "web".into(),
            reason: "maintenance window".into(),
        },
    )
    .await
    .unwrap();
    assert!(accepted.contains("accepted"), "{accepted}");
    assert!(accepted.contains("draining replication"), "{accepted}");

    let refused = client::failover(
        &args,
        &FailoverArgs {
            pair: "db".into(),
            reason: "test".into(),
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("refused"), "{refused}");
    assert!(refused.contains("cooldown: 40 s left"), "{refused}");

    // Refusal is an answer, not an error, on the wire.
    let mut raw = ManagementClient::connect(served.addr.clone())
        .await
        .unwrap();
    let response = raw
        .failover(pb::FailoverRequest {
            pair: "db".into(),
            reason: "again".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!response.accepted);
    let unknown = raw
        .failover(pb::FailoverRequest {
            pair: "ghost".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("ghost"), "{}", unknown.message());
    let empty = raw
        .failover(pb::FailoverRequest::default())
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);

    // The daemon saw who asked (a loopback peer, no token) and why.
    let calls = served.daemon.failovers.lock().unwrap().clone();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[0].0, "web");
    assert_eq!(calls[0].2, "maintenance window");
    assert!(calls[0].1.starts_with("127.0.0.1:"), "{}", calls[0].1);
    assert!(!calls[0].1.contains("token"), "{}", calls[0].1);
    served.stop().await;
}

#[tokio::test]
async fn the_token_is_required_when_configured() {
    let served = Served::start(Some("s3cret")).await;
    let dir = tempfile::tempdir().unwrap();
    let write_token = |name: &str, token: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, token).unwrap();
        path
    };

    // Missing.
    let error = client::status(&served.args(), &StatusArgs::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing bearer token"), "{error}");
    let mut raw = ManagementClient::connect(served.addr.clone())
        .await
        .unwrap();
    let status = raw.status(pb::StatusRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // Wrong (a prefix of the right one, and a longer one).
    for wrong in ["s3cre", "s3cret2"] {
        let args = ClientArgs {
            token_file: Some(write_token("wrong", wrong)),
            ..served.args()
        };
        let error = client::status(&args, &StatusArgs::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid bearer token"), "{error}");
    }
    let mut request = Request::new(pb::StatusRequest::default());
    request
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        raw.status(request).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // Right (the file's trailing newline is ignored); the caller identity
    // says a token was presented.
    let args = ClientArgs {
        token_file: Some(write_token("right", "s3cret\n")),
        ..served.args()
    };
    let text = client::status(&args, &StatusArgs::default()).await.unwrap();
    assert!(text.contains(EXPLANATION), "{text}");
    client::failover(
        &args,
        &FailoverArgs {
            pair: "web".into(),
            reason: "r".into(),
        },
    )
    .await
    .unwrap();
    let calls = served.daemon.failovers.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        1,
        "only the authenticated call reached the daemon"
    );
    assert!(calls[0].1.ends_with("with token"), "{}", calls[0].1);
    served.stop().await;
}

#[tokio::test]
async fn an_unusable_token_is_refused_before_serving() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = umbra_ops::serve(
        listener,
        Arc::new(FakeDaemon::default()),
        Some("two words".into()),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, umbra_ops::OpsError::InvalidToken(_)),
        "{error}"
    );
}

#[tokio::test]
async fn reloads_report_each_outcome() {
    let served = Served::start(None).await;
    let args = served.args();
    let text = client::reload_policies(&args).await.unwrap();
    assert!(text.contains("drift"), "{text}");
    assert!(text.contains("loaded"), "{text}");
    assert!(text.contains("0.2.0"), "{text}");
    assert!(
        text.contains("/etc/umbra/policies/failover.wasm refused: imports wasi:sockets"),
        "{text}"
    );

    let ok = client::reload_model(&args, None).await.unwrap();
    assert!(ok.contains("gru-default 1.0"), "{ok}");
    let refused = client::reload_model(&args, Some(PathBuf::from("models/new.onnx")))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("does not match the manifest"), "{refused}");
    // A relative path is sent absolute.
    let paths = served.daemon.model_paths.lock().unwrap().clone();
    assert_eq!(paths[0], None);
    let sent = paths[1].clone().unwrap();
    assert!(
        sent.is_absolute() && sent.ends_with("models/new.onnx"),
        "{sent:?}"
    );
    served.stop().await;
}

#[tokio::test]
async fn an_unreachable_daemon_is_one_clear_line() {
    // A port that was just free: bind, note it, close it.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let args = ClientArgs {
        addr: format!("http://{addr}"),
        token_file: None,
    };
    let error = client::status(&args, &StatusArgs::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("cannot reach the umbra daemon at http://{addr}: ")),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
}
