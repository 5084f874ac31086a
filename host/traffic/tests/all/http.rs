//! The HTTP server's fault knobs as seen by the load.

use std::time::Duration;

use umbra_traffic::{HttpLoad, HttpServer};

#[test]
fn an_error_fraction_of_half_fails_half_the_requests() {
    let server = HttpServer::start(None, "127.0.0.1:0".parse().unwrap()).unwrap();
    server.faults().set_error_fraction(0.5);
    let load = HttpLoad::start(None, &server.url(), 100).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let report = load.stop();
    let stats = server.stop();

    assert!(report.requests >= 50, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.ok_2xx + report.server_errors_5xx, report.requests);
    assert!(
        (0.4..=0.6).contains(&report.server_error_rate),
        "{report:?}"
    );
    assert!(report.status_counts.contains_key(&500) && report.status_counts.contains_key(&503));
    assert_eq!(stats.errors_injected, report.server_errors_5xx);
    assert_eq!(stats.ok, report.ok_2xx);
}

#[test]
fn extra_latency_shows_in_the_load_latency_and_no_fault_means_all_ok() {
    let server = HttpServer::start(None, "127.0.0.1:0".parse().unwrap()).unwrap();
    let load = HttpLoad::start(None, &server.url(), 50).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let clean = load.stop();
    assert!(clean.requests >= 10);
    assert_eq!(clean.ok_2xx, clean.requests, "{clean:?}");
    assert!(clean.latency_p50_ms < 40.0, "{clean:?}");

    server.faults().set_extra_latency(Duration::from_millis(60));
    let load = HttpLoad::start(None, &server.url(), 50).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let slow = load.stop();
    assert!(slow.requests >= 5);
    assert!(slow.latency_p50_ms >= 60.0, "{slow:?}");
    assert_eq!(slow.ok_2xx, slow.requests, "{slow:?}");
}

#[test]
fn other_paths_are_not_found() {
    let server = HttpServer::start(None, "127.0.0.1:0".parse().unwrap()).unwrap();
    let target = format!("http://{}/missing", server.local_addr());
    let load = HttpLoad::start(None, &target, 20).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    assert!(report.requests >= 3);
    assert_eq!(report.status_counts.get(&404), Some(&report.requests));
    assert_eq!(report.ok_2xx, 0);
}

#[test]
fn a_closed_port_counts_as_errors_not_answers() {
    // Bind then drop: the port is (almost certainly) closed afterwards.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let load = HttpLoad::start(None, &addr.to_string(), 20).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    assert!(report.requests >= 3);
    assert_eq!(report.errors, report.requests, "{report:?}");
    assert!(report.last_error.is_some());
}
