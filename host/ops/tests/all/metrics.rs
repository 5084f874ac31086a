//! The metrics endpoint, scraped over HTTP on loopback and parsed: names,
//! labels and values follow the updates; other paths are 404.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;
use umbra_ops::{Metrics, Phase, serve_metrics};

/// One HTTP/1.1 GET; returns the status code, the Content-Type and the
/// body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8(response).unwrap()
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the endpoint answers");
    let (head, body) = response.split_once("\r\n\r\n").expect("a full response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// Parses the text exposition into `series -> value` (series as printed,
/// name with its labels), checking every line is a comment or a sample.
fn parse(body: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "duplicate series {series}"
        );
    }
    samples
}

#[tokio::test]
async fn the_endpoint_serves_every_metric_and_follows_updates() {
    let metrics = Arc::new(Metrics::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_metrics(listener, metrics.clone(), shutdown.clone()));

    let web = metrics.pair("web");
    web.set_drift_score(1.5);
    web.set_correlation_score(0.25);
    web.set_probability(0.125);
    web.set_phase(Phase::Normal);
    web.set_active_device("web-primary", "web-shadow");
    web.decision();
    web.set_replication_lag("to-standby", 0.02);
    metrics.policy_fault("drift");
    metrics.p4runtime_error("tor-1");
    metrics.observe_decision_to_redirect(0.003);

    let (status, content_type, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let before = parse(&body);
    let value = |samples: &BTreeMap<String, f64>, series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
    };
    assert_eq!(value(&before, r#"umbra_drift_score{pair="web"}"#), 1.5);
    assert_eq!(
        value(&before, r#"umbra_correlation_score{pair="web"}"#),
        0.25
    );
    assert_eq!(
        value(&before, r#"umbra_failure_probability{pair="web"}"#),
        0.125
    );
    assert_eq!(
        value(&before, r#"umbra_pair_phase{pair="web",phase="normal"}"#),
        1.0
    );
    assert_eq!(
        value(&before, r#"umbra_pair_phase{pair="web",phase="switching"}"#),
        0.0
    );
    assert_eq!(
        value(
            &before,
            r#"umbra_active_device{pair="web",device="web-primary"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &before,
            r#"umbra_active_device{pair="web",device="web-shadow"}"#
        ),
        0.0
    );
    assert_eq!(value(&before, r#"umbra_decisions_total{pair="web"}"#), 1.0);
    assert_eq!(
        value(
            &before,
            r#"umbra_replication_lag_seconds{pair="web",direction="to-standby"}"#
        ),
        0.02
    );
    assert_eq!(
        value(&before, r#"umbra_policy_faults_total{policy="drift"}"#),
        1.0
    );
    assert_eq!(
        value(&before, r#"umbra_p4runtime_errors_total{switch="tor-1"}"#),
        1.0
    );
    assert_eq!(
        value(&before, "umbra_decision_to_redirect_seconds_count"),
        1.0
    );
    assert_eq!(
        value(&before, "umbra_decision_to_redirect_seconds_sum"),
        0.003
    );
    assert_eq!(
        value(
            &before,
            r#"umbra_decision_to_redirect_seconds_bucket{le="0.004"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &before,
            r#"umbra_decision_to_redirect_seconds_bucket{le="0.002"}"#
        ),
        0.0
    );
    assert!(
        !before
            .keys()
            .any(|k| k.starts_with("umbra_failovers_total"))
    );
    assert!(
        body.contains("# TYPE umbra_decisions_total counter"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE umbra_decision_to_redirect_seconds histogram"),
        "{body}"
    );

    // A failover: probability up, phase and active device change, counters
    // move.
    web.set_probability(0.93);
    web.set_phase(Phase::Switching);
    web.failover("probability");
    web.set_active_device("web-shadow", "web-primary");
    web.decision();
    metrics.pair("db").set_probability(0.01);

    let (_, _, body) = get(addr, "/metrics").await;
    let after = parse(&body);
    assert_eq!(
        value(&after, r#"umbra_failure_probability{pair="web"}"#),
        0.93
    );
    assert_eq!(
        value(&after, r#"umbra_failure_probability{pair="db"}"#),
        0.01
    );
    assert_eq!(
        value(&after, r#"umbra_pair_phase{pair="web",phase="normal"}"#),
        0.0
    );
    assert_eq!(
        value(&after, r#"umbra_pair_phase{pair="web",phase="switching"}"#),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"umbra_active_device{pair="web",device="web-primary"}"#
        ),
        0.0
    );
    assert_eq!(
        value(
            &after,
            r#"umbra_active_device{pair="web",device="web-shadow"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"umbra_failovers_total{pair="web",trigger="probability"}"#
        ),
        1.0
    );
    assert_eq!(value(&after, r#"umbra_decisions_total{pair="web"}"#), 2.0);

    // Anything but /metrics is not found.
    for path in ["/", "/metric", "/metrics/extra", "/status"] {
        let (status, _, _) = get(addr, path).await;
        assert_eq!(status, 404, "{path}");
    }

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the endpoint stops when cancelled")
        .unwrap()
        .unwrap();
}
