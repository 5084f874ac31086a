//! The must-show: a TCP connection through the primary firewall survives a
//! failover to the shadow because its conntrack entry was replicated by
//! the agents and the replicator, and stalls without replication; routes
//! and nftables changes replicate too.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use umbra_agent::model::{Entry, Key, L4};
use umbra_agent::{Agent, AgentConfig, AgentOptions, LinuxBackend, LinuxConfig};
use umbra_netlink::{ConntrackEntry, ConntrackTuple, L4Tuple, NetNs};

use crate::lab::{Agents, FirewallLab, Replication, TABLE, routes_in, run_in, wait_until};

/// The agent's entry of the client's TCP connection from `port`.
fn connection_entry(agent: &Agent, port: u16) -> Option<Entry> {
    agent.snapshot().entries.into_iter().find(|e| {
        matches!(&e.key, Key::Conntrack(k)
            if matches!(k.original.l4, L4::Ports { protocol: 6, source, .. } if source == port))
    })
}

/// Sends `message` each way and checks it arrives intact.
fn exchange(client: &mut TcpStream, server: &mut TcpStream, message: &[u8]) {
    client.write_all(message).expect("client writes");
    let mut got = vec![0; message.len()];
    server
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("server reads {:?}: {e}", String::from_utf8_lossy(message)));
    assert_eq!(got, message);
    server.write_all(&got).expect("server writes");
    client
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("client reads the echo: {e}"));
    assert_eq!(got, message);
}

#[test]
fn a_replicated_connection_survives_failover_to_the_shadow() {
    let lab = FirewallLab::build();
    let agents = Agents::start(&lab);
    let replication = Replication::start(&agents);

    let (mut client, mut server) = lab.connect(Duration::from_secs(10));
    exchange(&mut client, &mut server, b"through the primary");
    let port = client.local_addr().expect("client address").port();
    assert!(lab.conntrack_cli_shows(&lab.primary, port));
    // The shadow has seen no packet of the connection (the replicator may
    // already have carried the entry over, so its table is no proof; the
    // entry's origin, checked below, is).

    // (a) The primary's agent reported the entry; applied through the
    // shadow's agent it is in the shadow's kernel, as conntrack -L shows.
    assert!(
        wait_until(|| lab.conntrack_cli_shows(&lab.shadow, port)),
        "the connection never appeared in the shadow's conntrack table: {}",
        run_in(&lab.shadow, &["conntrack", "-L"])
    );
    assert_eq!(
        replication.rejected(),
        0,
        "{:#?}",
        replication.handle.status()
    );
    // The shadow's kernel echoed the write in events; its agent took them
    // for echoes, so the entry is still the primary's (origin 1) rather
    // than a local change that would replicate back.
    std::thread::sleep(Duration::from_millis(500));
    let entry = connection_entry(&agents.shadow, port).expect("the shadow's agent holds it");
    assert_eq!(
        entry.version.origin,
        agents.primary.node_id(),
        "shadow {entry:#?}\nprimary {:#?}",
        connection_entry(&agents.primary, port)
    );
    assert_eq!(
        Some(entry.value),
        connection_entry(&agents.primary, port).map(|e| e.value)
    );

    // The primary's metrics come from its namespace.
    let metrics = agents.primary.backend().metrics();
    assert!(metrics.conntrack_count >= 1, "{metrics:?}");
    assert!(metrics.conntrack_max >= metrics.conntrack_count);
    assert!(
        metrics
            .interfaces
            .iter()
            .any(|i| i.name == "in0" && i.rx_packets > 0 && i.tx_packets > 0),
        "{metrics:?}"
    );
    assert!(metrics.memory_total_bytes > 0);
    assert_eq!(agents.primary.health().problems, Vec::<String>::new());
    assert_eq!(agents.primary.health().backend, "linux");

    // (b) The next mid-stream packets go through the shadow only, and the
    // same stream carries on both ways.
    lab.fail_over_to_shadow();
    exchange(
        &mut client,
        &mut server,
        b"through the shadow after failover",
    );
    exchange(&mut client, &mut server, b"and still flowing");
    assert!(lab.conntrack_cli_shows(&lab.shadow, port));
}

#[test]
fn without_replication_the_shadow_drops_the_moved_connection() {
    let lab = FirewallLab::build();
    // The same agents run, but nothing is replicated.
    let _agents = Agents::start(&lab);

    let (mut client, mut server) = lab.connect(Duration::from_secs(3));
    exchange(&mut client, &mut server, b"through the primary");
    let port = client.local_addr().expect("client address").port();

    lab.fail_over_to_shadow();
    client.write_all(b"lost").expect("client writes");
    let mut buf = [0u8; 4];
    // A signal (a child of the agents' runtime exiting) interrupts a read
    // with a timeout instead of restarting it: read again.
    let error = loop {
        match server.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => break other,
        }
    }
    .expect_err("the shadow must drop mid-stream packets it has no state for");
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "the connection stalls (not reset): {error}"
    );
    assert!(!lab.conntrack_cli_shows(&lab.shadow, port));

    // The shadow does forward: a new connection through it works, so the
    // stall is the missing state, not the path.
    let (mut client, mut server) = lab.connect(Duration::from_secs(10));
    exchange(
        &mut client,
        &mut server,
        b"a new connection through the shadow",
    );
}

#[test]
fn a_route_and_an_nftables_change_on_the_primary_appear_on_the_shadow() {
    let lab = FirewallLab::build();
    let agents = Agents::start(&lab);
    let replication = Replication::start(&agents);
    let table = TABLE.to_string();
    let shadow_routes = || routes_in(&lab.shadow, TABLE);
    let shadow_fw = || run_in(&lab.shadow, &["nft", "list", "table", "inet", "fw"]);
    assert!(!shadow_routes().contains("198.19.9.0/24"));
    assert!(!shadow_fw().contains("5353"));

    run_in(
        &lab.primary,
        &[
            "ip",
            "route",
            "add",
            "198.19.9.0/24",
            "dev",
            "out0",
            "table",
            &table,
        ],
    );
    run_in(
        &lab.primary,
        &["nft", "add rule inet fw forward udp dport 5353 accept"],
    );
    assert!(
        wait_until(|| {
            shadow_routes().contains("198.19.9.0/24 dev out0")
                && shadow_fw().contains("udp dport 5353 accept")
        }),
        "shadow routes:\n{}\nshadow firewall:\n{}",
        shadow_routes(),
        shadow_fw()
    );
    // Applied on the shadow, the route and table are the primary's entries
    // there: the shadow's polls saw them as what was applied, not as local
    // changes.
    std::thread::sleep(Duration::from_millis(600));
    let replicated: Vec<Entry> = agents
        .shadow
        .snapshot()
        .entries
        .into_iter()
        .filter(|e| matches!(&e.key, Key::Route(_) | Key::NftTable(_)))
        .collect();
    assert!(replicated.len() >= 2, "{replicated:#?}");
    for entry in &replicated {
        assert_eq!(entry.version.origin, agents.primary.node_id(), "{entry:#?}");
    }
    // The firewall kept its other rules.
    assert!(shadow_fw().contains("ct state established,related accept"));

    // Deleting replicates too.
    run_in(
        &lab.primary,
        &[
            "ip",
            "route",
            "del",
            "198.19.9.0/24",
            "dev",
            "out0",
            "table",
            &table,
        ],
    );
    assert!(
        wait_until(|| !shadow_routes().contains("198.19.9.0/24")),
        "the route stayed on the shadow:\n{}",
        shadow_routes()
    );
    assert_eq!(
        replication.rejected(),
        0,
        "{:#?}",
        replication.handle.status()
    );
}

#[test]
fn with_replication_both_ways_a_change_on_the_shadow_appears_on_the_primary() {
    let lab = FirewallLab::build();
    let agents = Agents::start(&lab);
    let replication = Replication::start_bidirectional(&agents);
    let table = TABLE.to_string();
    let primary_routes = || routes_in(&lab.primary, TABLE);
    let primary_fw = || run_in(&lab.primary, &["nft", "list", "table", "inet", "fw"]);
    let shadow_routes = || routes_in(&lab.shadow, TABLE);
    assert!(!primary_routes().contains("198.19.7.0/24"));
    assert!(!primary_fw().contains("dport 4789"));

    run_in(
        &lab.shadow,
        &[
            "ip",
            "route",
            "add",
            "198.19.7.0/24",
            "dev",
            "out0",
            "table",
            &table,
        ],
    );
    run_in(
        &lab.shadow,
        &["nft", "add rule inet fw forward udp dport 4789 accept"],
    );
    assert!(
        wait_until(|| {
            primary_routes().contains("198.19.7.0/24 dev out0")
                && primary_fw().contains("udp dport 4789 accept")
        }),
        "primary routes:\n{}\nprimary firewall:\n{}",
        primary_routes(),
        primary_fw()
    );
    // And the other way at the same time: nothing echoes back and forth.
    run_in(
        &lab.primary,
        &[
            "ip",
            "route",
            "add",
            "198.19.8.0/24",
            "dev",
            "out0",
            "table",
            &table,
        ],
    );
    assert!(
        wait_until(|| shadow_routes().contains("198.19.8.0/24 dev out0")),
        "shadow routes:\n{}",
        shadow_routes()
    );
    std::thread::sleep(Duration::from_millis(600));
    for (agent, name) in [(&agents.primary, "primary"), (&agents.shadow, "shadow")] {
        let routes: Vec<Entry> = agent.snapshot().entries;
        for (prefix, origin) in [
            ("198.19.7.0/24", agents.shadow.node_id()),
            ("198.19.8.0/24", agents.primary.node_id()),
        ] {
            let entry = routes
                .iter()
                .find(|e| matches!(&e.key, Key::Route(r) if r.destination.to_string() == prefix))
                .unwrap_or_else(|| panic!("{name} lacks {prefix}: {routes:#?}"));
            assert_eq!(entry.version.origin, origin, "{name}: {entry:#?}");
        }
    }
    // The firewalls kept their other rules.
    assert!(primary_fw().contains("ct state established,related accept"));
    let status = replication.handle.status();
    assert_eq!(status.forward.rejected, 0, "{status:#?}");
}

#[test]
fn entries_the_kernel_refuses_are_rejected_one_by_one_and_the_rest_applied() {
    use umbra_agent::Outcome;
    use umbra_agent::model::{Prefix, RouteKey, RouteValue, Value, Version};

    let lab = FirewallLab::build();
    let agents = Agents::start(&lab);
    let route = |prefix: [u8; 4], interface: &str| {
        let key = Key::Route(RouteKey {
            table: TABLE,
            destination: Prefix::new(prefix.into(), 24).expect("prefix"),
            metric: 0,
        });
        let value = Value::Route(RouteValue {
            gateway: None,
            output_interface: interface.into(),
        });
        let version = Version {
            clock: agents.primary.now(),
            origin: 9,
            tombstone: false,
        };
        Entry::new(key, version, Some(value)).expect("entry")
    };
    let report = agents
        .primary
        .apply(vec![
            route([198, 19, 21, 0], "out0"),
            // No such interface in the namespace: the kernel says ENODEV.
            route([198, 19, 22, 0], "nosuch0"),
            route([198, 19, 23, 0], "out0"),
        ])
        .expect("apply");
    assert_eq!(report.outcomes[0], Outcome::Applied, "{report:?}");
    assert!(
        matches!(&report.outcomes[1], Outcome::Rejected(why) if why.contains("nosuch0") || why.to_lowercase().contains("no such device")),
        "{report:?}"
    );
    assert_eq!(report.outcomes[2], Outcome::Applied, "{report:?}");
    let routes = routes_in(&lab.primary, TABLE);
    assert!(
        routes.contains("198.19.21.0/24") && routes.contains("198.19.23.0/24"),
        "{routes}"
    );
    assert!(!routes.contains("198.19.22.0/24"), "{routes}");
    // The refused entry left no trace in the agent either, and the agent
    // still answers.
    let held = agents.primary.snapshot().entries;
    let has = |third: u8| {
        held.iter().any(|e| {
            matches!(&e.key, Key::Route(r) if r.destination.to_string() == format!("198.19.{third}.0/24"))
        })
    };
    assert!(has(21) && has(23) && !has(22));
    assert!(agents.primary.health().entries > 0);
}

#[tokio::test]
async fn umbra_agent_netns_serves_the_linux_device() {
    let lab = FirewallLab::build();
    let shutdown = CancellationToken::new();
    let options = AgentOptions {
        netns: Some(lab.primary.clone()),
        listen: "127.0.0.1:0".parse().expect("address"),
        allow_unauthenticated: true,
        ..AgentOptions::default()
    };
    let server = tokio::spawn(umbra_agent::run(options, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !server.is_finished(),
        "the agent stopped: {:?}",
        server.await
    );
    shutdown.cancel();
    server
        .await
        .expect("agent task")
        .expect("the agent served the namespace and stopped cleanly");
}

/// Conntrack entries of the agent on UDP port 53 from 198.18.9.1.
fn burst_entries(agent: &Agent) -> usize {
    agent
        .snapshot()
        .entries
        .iter()
        .filter(|e| {
            matches!(&e.key, Key::Conntrack(k)
                if k.original.source == std::net::IpAddr::from([198, 18, 9, 1])
                    && matches!(k.original.l4, L4::Ports { protocol: 17, destination: 53, .. }))
        })
        .count()
}

#[test]
fn a_burst_beyond_the_event_buffers_still_converges() {
    let lab = FirewallLab::build();
    // Event buffers far too small for the burst: the kernel drops events
    // (ENOBUFS) or the change queue overflows; either way the agent is
    // told changes were lost and resyncs from a dump.
    let backend = LinuxBackend::open(LinuxConfig {
        route_tables: vec![TABLE],
        event_queue: 1,
        event_socket_buffer: 64 << 10,
        change_queue: 64,
        ..LinuxConfig::new(lab.primary.clone())
    })
    .expect("open the Linux backend");
    let agent = Agent::new(AgentConfig::default(), Arc::new(backend)).expect("agent");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stop = CancellationToken::new();
    runtime.spawn(Arc::clone(&agent).follow_backend(stop.clone()));

    let ns = NetNs::named(&lab.primary).expect("enter the primary");
    let many: Vec<ConntrackEntry> = (0..3000u16)
        .map(|i| {
            ConntrackEntry::new(
                ConntrackTuple {
                    src: [198, 18, 9, 1].into(),
                    dst: [198, 18, 9, 2].into(),
                    protocol: 17,
                    l4: L4Tuple::Ports {
                        src: 10_000 + i,
                        dst: 53,
                    },
                },
                600,
            )
        })
        .collect();
    let outcome = ns
        .conntrack()
        .create_batch(&many)
        .expect("create the burst");
    assert_eq!(outcome.created, many.len());
    assert!(
        wait_until(|| burst_entries(&agent) == many.len()),
        "the agent holds {} of {} entries",
        burst_entries(&agent),
        many.len()
    );
    for entry in &many {
        ns.conntrack()
            .delete(&entry.original, entry.zone)
            .expect("delete");
    }
    assert!(
        wait_until(|| burst_entries(&agent) == 0),
        "the agent still holds {} deleted entries",
        burst_entries(&agent)
    );
    stop.cancel();
}
