//! Conntrack over ctnetlink, against real traffic and the conntrack CLI.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use umbra_netlink::conntrack::{status, tcp_flag};
use umbra_netlink::{
    Applied, ConntrackEntry, ConntrackEvent, ConntrackEvents, ConntrackTuple, Error, L4Tuple,
    TcpInfo, TcpState,
};

use crate::cli::{CliEntry, conntrack_list};
use crate::lab::{Lab, run_in};
use nix_errno::Errno;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cli_matches(cli: &CliEntry, e: &ConntrackEntry) -> bool {
    cli.original == e.original && cli.zone == e.zone
}

/// client — router (masquerade) — server, plus an empty `shadow`.
struct Routed {
    lab: Lab,
    client: String,
    router: String,
    server: String,
    shadow: String,
}

fn routed_lab() -> Routed {
    let mut lab = Lab::new();
    let client = lab.ns("client");
    let router = lab.ns("router");
    let server = lab.ns("server");
    let shadow = lab.ns("shadow");
    lab.link(
        &client,
        "c0",
        "198.18.1.2/24",
        &router,
        "r0",
        "198.18.1.1/24",
    );
    lab.link(
        &router,
        "r1",
        "198.18.2.1/24",
        &server,
        "s0",
        "198.18.2.2/24",
    );
    crate::lab::run(&[
        "ip",
        "-n",
        &client,
        "route",
        "add",
        "default",
        "via",
        "198.18.1.1",
    ]);
    run_in(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // Masquerade towards the server: the reply tuple then differs from the
    // original (NAT), and the nat hook makes the router track connections.
    run_in(
        &router,
        &[
            "nft",
            "add table ip nat { chain post { type nat hook postrouting priority 100; oifname \"r1\" masquerade; }; }",
        ],
    );
    Routed {
        lab,
        client,
        router,
        server,
        shadow,
    }
}

#[test]
fn entries_from_real_nat_traffic_survive_a_create_in_another_namespace() {
    let t = routed_lab();
    let (client, server) = (t.lab.handle(&t.client), t.lab.handle(&t.server));
    let router = t.lab.handle(&t.router);
    let shadow = t.lab.handle(&t.shadow);

    // A TCP connection and a UDP exchange through the router.
    let listener = server
        .run(|| TcpListener::bind("198.18.2.2:0"))
        .unwrap()
        .unwrap();
    let server_addr = listener.local_addr().unwrap();
    let acceptor = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"world").unwrap();
        s
    });
    let mut stream = client
        .run(move || TcpStream::connect_timeout(&server_addr, Duration::from_secs(5)))
        .unwrap()
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).unwrap();
    let _server_side = acceptor.join().unwrap();
    let client_port = stream.local_addr().unwrap().port();

    let udp_server = server
        .run(|| UdpSocket::bind("198.18.2.2:0"))
        .unwrap()
        .unwrap();
    udp_server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let udp_addr = udp_server.local_addr().unwrap();
    let udp_client = client
        .run(|| UdpSocket::bind("198.18.1.2:0"))
        .unwrap()
        .unwrap();
    udp_client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    udp_client.send_to(b"ping", udp_addr).unwrap();
    let (_, from) = udp_server.recv_from(&mut buf).unwrap();
    udp_server.send_to(b"pong", from).unwrap();
    udp_client.recv_from(&mut buf).unwrap();

    // The router tracked both, with the reply going to its masquerade address.
    let mut entries = router.conntrack().dump().unwrap();
    let tcp = entries
        .iter()
        .find(|e| {
            e.original.protocol == 6
                && e.original.l4
                    == L4Tuple::Ports {
                        src: client_port,
                        dst: server_addr.port(),
                    }
        })
        .expect("router tracks the TCP connection")
        .clone();
    assert_eq!(tcp.original.src, ip("198.18.1.2"));
    assert_eq!(tcp.reply.src, ip("198.18.2.2"));
    assert_eq!(
        tcp.reply.dst,
        ip("198.18.2.1"),
        "masqueraded: NAT is in the reply tuple"
    );
    assert_eq!(tcp.tcp.map(|i| i.state), Some(TcpState::Established));
    assert!(tcp.status & status::SRC_NAT != 0);
    assert!(tcp.status & status::ASSURED != 0);
    assert!(
        entries
            .iter()
            .any(|e| e.original.protocol == 17 && e.reply.dst == ip("198.18.2.1")),
        "router tracks the UDP flow"
    );

    // Update: set a mark on the router's TCP entry, read it back.
    let mut marked = tcp.clone();
    marked.mark = 0x2a;
    marked.timeout = 4000;
    router.conntrack().update(&marked).unwrap();
    entries = router.conntrack().dump().unwrap();
    let tcp = entries
        .iter()
        .find(|e| e.original == tcp.original)
        .unwrap()
        .clone();
    assert_eq!(tcp.mark, 0x2a);
    assert!(
        (3990..=4000).contains(&tcp.timeout),
        "timeout {}",
        tcp.timeout
    );

    // Replicate everything to the shadow.
    let outcome = shadow.conntrack().create_batch(&entries).unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert_eq!((outcome.created, outcome.updated), (entries.len(), 0));

    let replicated = shadow.conntrack().dump().unwrap();
    assert_eq!(replicated.len(), entries.len());
    let cli = conntrack_list(&t.shadow);
    assert_eq!(cli.len(), entries.len(), "{cli:#?}");
    for src in &entries {
        let got = replicated
            .iter()
            .find(|e| e.original == src.original && e.zone == src.zone)
            .unwrap_or_else(|| panic!("{src:?} missing on the shadow"));
        assert_eq!(got.reply, src.reply, "reply tuple (NAT) preserved");
        assert_eq!(got.mark, src.mark);
        assert_eq!(got.tcp.map(|i| i.state), src.tcp.map(|i| i.state));
        assert!(got.timeout <= src.timeout && got.timeout + 10 >= src.timeout);
        let kept = status::SEEN_REPLY | status::ASSURED | status::SRC_NAT | status::DST_NAT;
        assert_eq!(got.status & kept, src.status & kept, "status of {src:?}");

        // The conntrack CLI, independent of our decoder, sees the same.
        let line = cli
            .iter()
            .find(|c| cli_matches(c, src))
            .unwrap_or_else(|| panic!("conntrack -L lacks {src:?}: {cli:#?}"));
        assert_eq!(line.reply, src.reply);
        assert_eq!(line.mark, src.mark);
        assert_eq!(line.state.as_deref(), src.tcp.map(|i| i.state.name()));
        assert!(line.timeout <= src.timeout && line.timeout + 10 >= src.timeout);
        assert_eq!(
            line.flags.contains(&"ASSURED".to_owned()),
            src.status & status::ASSURED != 0
        );
    }

    // Creating the same entries again is an idempotent upsert.
    let again = shadow.conntrack().create_batch(&entries).unwrap();
    assert!(again.failures.is_empty(), "{:?}", again.failures);
    assert_eq!((again.created, again.updated), (0, entries.len()));
    assert_eq!(shadow.conntrack().dump().unwrap().len(), entries.len());
    drop(stream);
}

fn synthetic() -> Vec<ConntrackEntry> {
    let udp = ConntrackTuple {
        src: ip("198.18.7.1"),
        dst: ip("198.18.7.2"),
        protocol: 17,
        l4: L4Tuple::Ports { src: 5353, dst: 53 },
    };
    let mut udp_zoned = ConntrackEntry::new(udp, 120);
    udp_zoned.zone = 7;
    udp_zoned.mark = 0xdead_beef;
    let icmp = ConntrackEntry::new(
        ConntrackTuple {
            src: ip("198.18.7.1"),
            dst: ip("198.18.7.3"),
            protocol: 1,
            l4: L4Tuple::Icmp {
                id: 77,
                kind: 8,
                code: 0,
            },
        },
        25,
    );
    let mut tcp6 = ConntrackEntry::new(
        ConntrackTuple {
            src: ip("2001:2::1"),
            dst: ip("2001:2::2"),
            protocol: 6,
            l4: L4Tuple::Ports {
                src: 40001,
                dst: 443,
            },
        },
        600,
    );
    tcp6.tcp = Some(TcpInfo {
        state: TcpState::Established,
        wscale_original: 7,
        wscale_reply: 7,
        flags_original: 0x03,
        flags_reply: 0x03,
    });
    // DNAT: the reply comes from the real server behind 198.18.7.2:8080.
    let mut dnat = ConntrackEntry::new(
        ConntrackTuple {
            src: ip("198.18.7.9"),
            dst: ip("198.18.7.2"),
            protocol: 6,
            l4: L4Tuple::Ports {
                src: 40002,
                dst: 80,
            },
        },
        300,
    );
    dnat.reply.src = ip("198.18.8.2");
    dnat.reply.l4 = L4Tuple::Ports {
        src: 8080,
        dst: 40002,
    };
    vec![udp_zoned, icmp, tcp6, dnat]
}

#[test]
fn synthetic_entries_create_update_delete_with_typed_errors() {
    let mut lab = Lab::new();
    let name = lab.ns("ct");
    let ns = lab.handle(&name);
    let ct = ns.conntrack();
    let entries = synthetic();
    for e in &entries {
        assert_eq!(ct.create(e).unwrap(), Applied::Created);
    }
    let cli = conntrack_list(&name);
    assert_eq!(cli.len(), entries.len(), "{cli:#?}");
    for e in &entries {
        let line = cli
            .iter()
            .find(|c| cli_matches(c, e))
            .unwrap_or_else(|| panic!("{e:?}"));
        assert_eq!(line.reply, e.reply, "{e:?}");
        assert_eq!(line.mark, e.mark);
        assert_eq!(line.state.as_deref(), e.tcp.map(|i| i.state.name()));
        assert!(line.timeout <= e.timeout && line.timeout + 5 >= e.timeout);
    }
    let dumped = ct.dump().unwrap();
    let dnat = dumped
        .iter()
        .find(|d| d.original == entries[3].original)
        .unwrap();
    assert!(
        dnat.status & status::DST_NAT != 0,
        "DNAT set up from the reply tuple"
    );
    let tcp6 = dumped
        .iter()
        .find(|d| d.original == entries[2].original)
        .unwrap();
    let info = tcp6.tcp.unwrap();
    assert_eq!((info.wscale_original, info.wscale_reply), (7, 7));
    assert_eq!(
        info.flags_original & 0x03,
        0x03,
        "window-scale and SACK flags kept"
    );

    // Upsert of an existing entry updates it in place.
    let mut changed = entries[0].clone();
    changed.mark = 7;
    changed.timeout = 1000;
    assert_eq!(ct.create(&changed).unwrap(), Applied::Updated);
    let line = conntrack_list(&name)
        .into_iter()
        .find(|c| cli_matches(c, &changed))
        .unwrap();
    assert_eq!(line.mark, 7);
    assert!(line.timeout > 900);

    // Wrong zone: no such entry. The kernel's errno comes back typed.
    let mut other_zone = entries[0].clone();
    other_zone.zone = 8;
    let err = ct.update(&other_zone).unwrap_err();
    assert_eq!(err.errno(), Some(nix_errno::ENOENT), "{err}");
    assert!(
        err.to_string().contains("no entry with this tuple"),
        "{err}"
    );

    // Clearing ASSURED is refused.
    let mut downgrade = entries[1].clone();
    downgrade.status = 0;
    let err = ct.update(&downgrade).unwrap_err();
    assert_eq!(err.errno(), Some(nix_errno::EBUSY), "{err}");

    // Delete; deleting again is ENOENT.
    ct.delete(&entries[0].original, entries[0].zone).unwrap();
    assert!(
        !conntrack_list(&name)
            .iter()
            .any(|c| cli_matches(c, &entries[0]))
    );
    let err = ct
        .delete(&entries[0].original, entries[0].zone)
        .unwrap_err();
    assert!(matches!(err, Error::Kernel { .. }), "{err}");
    assert_eq!(err.errno(), Some(nix_errno::ENOENT));
    assert_eq!(conntrack_list(&name).len(), entries.len() - 1);

    // A batch reports per-entry failures by index and applies the rest.
    let mut downgrade = entries[1].clone();
    downgrade.status = 0; // would clear ASSURED on the existing entry
    let mut fresh = entries[2].clone();
    fresh.original.src = ip("2001:2::99");
    fresh.reply = fresh.original.inverted();
    let outcome = ct.create_batch(&[downgrade, fresh.clone()]).unwrap();
    assert_eq!((outcome.created, outcome.updated), (1, 0));
    assert_eq!(outcome.failures.len(), 1);
    assert_eq!(outcome.failures[0].0, 0);
    assert_eq!(outcome.failures[0].1.errno(), Some(nix_errno::EBUSY));
    assert!(conntrack_list(&name).iter().any(|c| cli_matches(c, &fresh)));

    // A tuple mixing families is rejected before reaching the kernel.
    let mut mixed = fresh;
    mixed.original.src = ip("198.18.7.1");
    assert!(matches!(ct.create(&mixed), Err(Error::InvalidArgument(_))));
}

/// Setting TCP flags changes those flags only, in both directions, and
/// answers `ENOENT` for an entry that is gone.
#[test]
fn tcp_flags_are_set_without_touching_anything_else() {
    let mut lab = Lab::new();
    let name = lab.ns("ctflags");
    let ns = lab.handle(&name);
    let ct = ns.conntrack();
    let tcp6 = synthetic().swap_remove(2);
    let mut tcp4 = ConntrackEntry::new(
        ConntrackTuple {
            src: ip("198.18.7.1"),
            dst: ip("198.18.7.2"),
            protocol: 6,
            l4: L4Tuple::Ports {
                src: 40003,
                dst: 22,
            },
        },
        900,
    );
    tcp4.zone = 3;
    tcp4.mark = 42;
    for e in [&tcp6, &tcp4] {
        assert_eq!(ct.create(e).unwrap(), Applied::Created);
    }
    let gone = ConntrackTuple {
        src: ip("198.18.7.1"),
        dst: ip("198.18.7.4"),
        ..tcp4.original
    };
    let outcome = ct
        .set_tcp_flags(
            &[
                (tcp6.original, tcp6.zone),
                (tcp4.original, tcp4.zone),
                (gone, 0),
            ],
            tcp_flag::BE_LIBERAL,
        )
        .unwrap();
    assert_eq!(outcome.updated, 2);
    assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
    assert_eq!(outcome.failures[0].0, 2);
    assert_eq!(outcome.failures[0].1.errno(), Some(nix_errno::ENOENT));

    let dumped = ct.dump().unwrap();
    assert_eq!(dumped.len(), 2);
    for before in [&tcp6, &tcp4] {
        let after = dumped
            .iter()
            .find(|d| d.original == before.original)
            .unwrap();
        let (was, is) = (before.tcp.unwrap(), after.tcp.unwrap());
        assert_eq!(is.flags_original, was.flags_original | tcp_flag::BE_LIBERAL);
        assert_eq!(is.flags_reply, was.flags_reply | tcp_flag::BE_LIBERAL);
        assert_eq!(is.state, was.state);
        assert_eq!(
            (is.wscale_original, is.wscale_reply),
            (was.wscale_original, was.wscale_reply)
        );
        assert_eq!((after.zone, after.mark), (before.zone, before.mark));
        assert_eq!(
            after.status & status::ASSURED,
            before.status & status::ASSURED
        );
        assert!(after.timeout <= before.timeout && after.timeout + 5 >= before.timeout);
    }
}

/// Only the last request of each datagram asks for an ACK; a refused
/// request is still answered with its errno, wherever it sits, and every
/// request without an answer counts as applied.
#[test]
fn a_batch_reports_each_refused_entry_wherever_it_sits() {
    let mut lab = Lab::new();
    let name = lab.ns("ct");
    let ns = lab.handle(&name);
    let ct = ns.conntrack();
    let udp = |n: u32| {
        ConntrackEntry::new(
            ConntrackTuple {
                src: ip("198.18.9.1"),
                dst: IpAddr::from([198, 18, 10 + (n / 50_000) as u8, 1]),
                protocol: 17,
                l4: L4Tuple::Ports {
                    src: 4000,
                    dst: 1024 + (n % 50_000) as u16,
                },
            },
            120,
        )
    };
    // Existing entries whose status the batch would clear: refused on
    // update (EBUSY) after the create found them (EEXIST).
    let held = [udp(100_000), udp(100_001)];
    for e in &held {
        assert_eq!(ct.create(e).unwrap(), Applied::Created);
    }
    // ICMP destination unreachable has no reply type: refused on create.
    let unreachable = |n: u16| {
        ConntrackEntry::new(
            ConntrackTuple {
                src: ip("198.18.9.1"),
                dst: ip("198.18.9.2"),
                protocol: 1,
                l4: L4Tuple::Icmp {
                    id: n,
                    kind: 3,
                    code: 0,
                },
            },
            30,
        )
    };
    let n = 1300;
    let mut batch: Vec<ConntrackEntry> = (0..n).map(udp).collect();
    // The first datagram's first, middle and last request, the second
    // datagram's middle, and the very last entry of the batch (the last
    // two refused by the updates that follow their creates' EEXIST).
    let mut seen_reply_only = held[0].clone();
    seen_reply_only.status = status::SEEN_REPLY;
    let mut no_status = held[1].clone();
    no_status.status = 0;
    let refused: Vec<(usize, ConntrackEntry, Errno)> = vec![
        (0, unreachable(1), nix_errno::EINVAL),
        (300, seen_reply_only, nix_errno::EBUSY),
        (511, unreachable(2), nix_errno::EINVAL),
        (700, unreachable(3), nix_errno::EINVAL),
        (n as usize - 1, no_status, nix_errno::EBUSY),
    ];
    for (at, entry, _) in &refused {
        batch[*at] = entry.clone();
    }
    let outcome = ct.create_batch(&batch).unwrap();
    let failures: Vec<(usize, Option<Errno>)> = outcome
        .failures
        .iter()
        .map(|(i, e)| (*i, e.errno()))
        .collect();
    let expected: Vec<(usize, Option<Errno>)> = refused
        .iter()
        .map(|(i, _, errno)| (*i, Some(*errno)))
        .collect();
    assert_eq!(failures, expected);
    assert_eq!(
        (outcome.created, outcome.updated),
        (n as usize - refused.len(), 0)
    );
    let dumped: Vec<ConntrackTuple> = ct.dump().unwrap().into_iter().map(|e| e.original).collect();
    for (i, e) in batch.iter().enumerate() {
        let is_refused = refused.iter().any(|(at, _, _)| *at == i);
        let is_held = held.iter().any(|h| h.original == e.original);
        assert_eq!(
            dumped.contains(&e.original),
            !is_refused || is_held,
            "entry {i}: {e:?}"
        );
    }
    assert_eq!(
        dumped.len(),
        n as usize - 3,
        "the created ones and the two held"
    );
}

/// The errno values, so the test does not depend on nix directly.
mod nix_errno {
    pub use umbra_netlink::Errno;
    pub const ENOENT: Errno = Errno::ENOENT;
    pub const EBUSY: Errno = Errno::EBUSY;
    pub const EINVAL: Errno = Errno::EINVAL;
}

fn next_event(events: &ConntrackEvents) -> ConntrackEvent {
    events
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("an event within 5 s")
}

#[test]
fn events_report_new_update_destroy_and_overruns() {
    let mut lab = Lab::new();
    let name = lab.ns("events");
    let ns = lab.handle(&name);
    let ct = ns.conntrack();
    let events = ct.subscribe(1024, 1 << 20).unwrap();
    let entry = synthetic().remove(0);
    ct.create(&entry).unwrap();
    // The status bits come with the create: one event.
    match next_event(&events) {
        ConntrackEvent::New(e) => {
            assert_eq!(
                (e.original, e.reply, e.mark),
                (entry.original, entry.reply, entry.mark)
            );
            assert!(e.status & status::ASSURED != 0);
        }
        other => panic!("expected New, got {other:?}"),
    }
    let mut marked = entry.clone();
    marked.mark = 99;
    ct.update(&marked).unwrap();
    match next_event(&events) {
        ConntrackEvent::Update(e) => assert_eq!((e.original, e.mark), (entry.original, 99)),
        other => panic!("expected Update, got {other:?}"),
    }
    ct.delete(&entry.original, entry.zone).unwrap();
    match next_event(&events) {
        ConntrackEvent::Destroy(e) => assert_eq!(e.original, entry.original),
        other => panic!("expected Destroy, got {other:?}"),
    }
    drop(events);

    // A subscriber that does not keep up: a queue of 1 and a 64 KiB socket
    // buffer cannot hold the events of 3000 creates; the loss is reported.
    let slow = ct.subscribe(1, 64 << 10).unwrap();
    let many: Vec<ConntrackEntry> = (0..3000u16)
        .map(|i| {
            ConntrackEntry::new(
                ConntrackTuple {
                    src: ip("198.18.9.1"),
                    dst: ip("198.18.9.2"),
                    protocol: 17,
                    l4: L4Tuple::Ports {
                        src: 10000 + i,
                        dst: 53,
                    },
                },
                60,
            )
        })
        .collect();
    let outcome = ct.create_batch(&many).unwrap();
    assert_eq!(outcome.created, 3000);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen_overrun = false;
    let mut received = 0usize;
    while Instant::now() < deadline && received < 10_000 {
        match slow.recv_timeout(Duration::from_millis(500)).unwrap() {
            Some(ConntrackEvent::Overrun) => {
                seen_overrun = true;
                break;
            }
            Some(_) => received += 1,
            None => break,
        }
    }
    assert!(seen_overrun, "no Overrun after {received} events");
    assert!(received < 3000);
}

#[test]
fn a_subscription_can_skip_the_events_of_its_writers_creates_and_updates() {
    let mut lab = Lab::new();
    let name = lab.ns("skip");
    let writer = lab.handle(&name);
    let other = lab.handle(&name);
    let events = lab
        .handle(&name)
        .conntrack()
        .subscribe_skipping(1024, 1 << 20, writer.conntrack_writer())
        .unwrap();
    let entries = synthetic();
    // The writer's create and update make no event on this subscription...
    writer.conntrack().create(&entries[0]).unwrap();
    let mut marked = entries[0].clone();
    marked.mark = 99;
    writer.conntrack().update(&marked).unwrap();
    assert_ne!(
        writer.conntrack_writer().port(),
        0,
        "the writer's socket is open"
    );
    // ...another socket's create does, and so does the writer's delete.
    other.conntrack().create(&entries[1]).unwrap();
    match next_event(&events) {
        ConntrackEvent::New(e) => assert_eq!(e.original, entries[1].original),
        other => panic!("expected the other socket's New, got {other:?}"),
    }
    writer
        .conntrack()
        .delete(&entries[0].original, entries[0].zone)
        .unwrap();
    match next_event(&events) {
        ConntrackEvent::Destroy(e) => assert_eq!(e.original, entries[0].original),
        other => panic!("expected the writer's Destroy, got {other:?}"),
    }
    assert!(events.try_recv().unwrap().is_none());
    // The kernel dropped the writer's events (the socket filter on the
    // event socket): none reached the reader's own check.
    assert_eq!(events.skipped_by_reader(), 0);

    // A flow of the datapath makes an event (nlmsg_pid 0, the kernel's)
    // that the subscription keeps.
    run_in(
        &name,
        &[
            "nft",
            "add table ip t; add chain ip t c { type filter hook output priority 0; }; \
             add rule ip t c ct state new accept",
        ],
    );
    lab.handle(&name)
        .run(|| {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.send_to(b"x", "127.0.0.1:9").unwrap();
        })
        .unwrap();
    match next_event(&events) {
        ConntrackEvent::New(e) => {
            assert_eq!(e.original.protocol, 17);
            assert!(
                matches!(e.original.l4, L4Tuple::Ports { dst: 9, .. }),
                "{e:?}"
            );
        }
        other => panic!("expected the datapath flow's New, got {other:?}"),
    }
}

#[test]
fn the_skip_filter_follows_the_writers_socket_when_it_is_reopened() {
    let mut lab = Lab::new();
    let name = lab.ns("refilter");
    let writer = lab.handle(&name);
    let entries = synthetic();
    writer.conntrack().create(&entries[0]).unwrap();
    let first_port = writer.conntrack_writer().port();
    let events = lab
        .handle(&name)
        .conntrack()
        .subscribe_skipping(1024, 1 << 20, writer.conntrack_writer())
        .unwrap();
    // The handle goes (its socket closes); a new handle's socket may get
    // any port, the old one included: its writes are another writer's,
    // and come as events.
    let gone = writer.conntrack_writer();
    drop(writer);
    assert_eq!(gone.port(), 0, "a closed writer holds no port");
    let other = lab.handle(&name);
    other.conntrack().create(&entries[1]).unwrap();
    match next_event(&events) {
        ConntrackEvent::New(e) => assert_eq!(e.original, entries[1].original),
        event => panic!(
            "expected the new socket's New (old port {first_port}, new {}), got {event:?}",
            other.conntrack_writer().port()
        ),
    }
    assert_eq!(events.skipped_by_reader(), 0);
}

#[test]
fn labels_round_trip_where_the_namespace_uses_labels() {
    let mut lab = Lab::new();
    let with = lab.ns("labels");
    let without = lab.ns("nolabels");
    // A rule that uses ct label makes the kernel attach label storage.
    run_in(
        &with,
        &[
            "nft",
            "add table ip t; add chain ip t c { type filter hook prerouting priority 0; }; add rule ip t c ct label set 5",
        ],
    );
    let mut entry = synthetic().remove(1);
    entry.labels = (1 << 5) | (1 << 100);
    let ns = lab.handle(&with);
    ns.conntrack().create(&entry).unwrap();
    let got = ns.conntrack().dump().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, entry.labels);

    let err = lab.handle(&without).conntrack().create(&entry).unwrap_err();
    assert_eq!(err.errno(), Some(umbra_netlink::Errno::ENOSPC), "{err}");
    assert!(
        err.to_string().contains("connlabels are not enabled"),
        "{err}"
    );
}
