//! Connecting: unreachable switches and silent ones fail with typed errors,
//! the latter after the arbitration timeout.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_p4rt::{ClientConfig, P4RuntimeClient, P4rtError};

#[tokio::test]
async fn an_unreachable_switch_is_a_transient_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = P4RuntimeClient::connect(ClientConfig::new(addr.to_string()))
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, P4rtError::Connect { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test(start_paused = true)]
async fn a_silent_switch_times_out_arbitration() {
    // Accepts connections and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tracker, stop) = (TaskTracker::new(), CancellationToken::new());
    let token = stop.clone();
    tracker.spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                accepted = listener.accept() => held.extend(accepted.ok()),
            }
        }
    });
    tracker.close();

    let started = tokio::time::Instant::now();
    let err = P4RuntimeClient::connect(ClientConfig {
        arbitration_timeout: Duration::from_secs(3),
        ..ClientConfig::new(addr.to_string())
    })
    .await
    .expect_err("a silent switch cannot arbitrate");
    assert!(
        matches!(err, P4rtError::Timeout { what: "arbitration", after } if after == Duration::from_secs(3)),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));

    stop.cancel();
    tracker.wait().await;
}

#[tokio::test]
async fn invalid_configurations_are_refused_before_dialling() {
    let err = P4RuntimeClient::connect(ClientConfig {
        election_id: 0,
        event_capacity: 0,
        ..ClientConfig::new("127.0.0.1:1")
    })
    .await
    .expect_err("invalid config accepted");
    let P4rtError::Config { problems } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(problems.len(), 2, "{problems:#?}");
}
