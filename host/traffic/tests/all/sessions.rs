//! TCP sessions on loopback through a proxy that resets one connection or
//! pauses all of them.

use std::time::Duration;

use umbra_traffic::{SessionEchoServer, Sessions};

use crate::support::TcpProxy;

#[test]
fn a_reset_connection_is_reported_and_the_others_survive() {
    let server = SessionEchoServer::start(None, "127.0.0.1:0".parse().unwrap()).unwrap();
    let proxy = TcpProxy::start(server.local_addr());
    let sessions = Sessions::start(None, proxy.addr, 4, Duration::from_millis(10)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sessions.alive(), 4);
    proxy.reset_one();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(sessions.alive(), 3);
    let report = sessions.stop();

    assert_eq!(report.total, 4);
    assert_eq!(report.reset, 1, "{report:#?}");
    assert_eq!(report.survived, 3, "{report:#?}");
    assert!(report.errors.is_empty(), "{report:#?}");
    let reset = &report.resets[0];
    assert!((250.0..=700.0).contains(&reset.at_ms), "{reset:?}");
    assert!(
        report
            .per_session
            .iter()
            .filter(|s| s.survived)
            .all(|s| s.echoes > 50)
    );
    assert!(report.bytes_echoed > 0);
    server.stop();
}

#[test]
fn a_200_ms_pause_is_a_200_ms_stall_and_every_session_survives() {
    let server = SessionEchoServer::start(None, "127.0.0.1:0".parse().unwrap()).unwrap();
    let proxy = TcpProxy::start(server.local_addr());
    let sessions = Sessions::start(None, proxy.addr, 4, Duration::from_millis(10)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    proxy.pause(Duration::from_millis(200));
    std::thread::sleep(Duration::from_millis(900));
    let report = sessions.stop();

    assert_eq!(report.survived, 4, "{report:#?}");
    assert_eq!(report.reset, 0);
    assert!(
        (180.0..=320.0).contains(&report.longest_stall_ms),
        "stall {} ms",
        report.longest_stall_ms
    );
    assert!(
        (250.0..=450.0).contains(&report.longest_stall_at_ms),
        "stall at {} ms",
        report.longest_stall_at_ms
    );
    // Every session saw the pause, not just one.
    assert!(
        report
            .per_session
            .iter()
            .all(|s| s.longest_stall_ms >= 150.0),
        "{report:#?}"
    );
    server.stop();
}

#[test]
fn a_clean_run_has_no_long_stall() {
    let server = SessionEchoServer::start(None, "127.0.0.1:0".parse().unwrap()).unwrap();
    let sessions =
        Sessions::start(None, server.local_addr(), 3, Duration::from_millis(10)).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let report = sessions.stop();
    assert_eq!(report.survived, 3);
    assert!(report.longest_stall_ms < 100.0, "{report:#?}");
    assert_eq!(server.connections_accepted(), 3);
    server.stop();
}
