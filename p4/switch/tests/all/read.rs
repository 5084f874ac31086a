//! Read (spec "Read RPC", "Wildcard Reads" of each entity): table entries of
//! all tables, one table or one key, default entries, direct counters
//! through TableEntry and DirectCounterEntry, indirect counters and clone
//! sessions, and how failing requests are reported.

use tonic::{Code, Status};
use umbra_proto::p4::v1::{
    CloneSessionEntry, CounterData, CounterEntry, DirectCounterEntry, Entity, Index,
    MulticastGroupEntry, PacketReplicationEngineEntry, RegisterEntry, TableEntry, entity,
    packet_replication_engine_entry, replica, update,
};

use crate::harness::{
    Session, batch_errors, bytes, call, classify, clone_session, clone_session_entity,
    counter_entity, counter_id, counts, default_entry, describe, direct_counter_entity, exact,
    insert, into_table_entry, read, select, sorted, steer, table, table_entry_entity,
};

async fn with_entries() -> Session {
    let mut session = Session::start().await;
    session
        .write_ok(vec![
            insert(TableEntry {
                counter_data: Some(counts(3, 300)),
                ..classify(1, 10, 0)
            }),
            insert(classify(2, 20, 1)),
            insert(select(10, 1)),
            insert(steer(1, 0, 5)),
        ])
        .await;
    session
}

fn table_filter(name: &str) -> TableEntry {
    TableEntry {
        table_id: table(name).id,
        ..TableEntry::default()
    }
}

fn entries(found: Vec<Entity>) -> Vec<TableEntry> {
    found.into_iter().map(into_table_entry).collect()
}

fn direct_counters(found: Vec<Entity>) -> Vec<DirectCounterEntry> {
    found
        .into_iter()
        .map(|e| match e.entity {
            Some(entity::Entity::DirectCounterEntry(d)) => d,
            other => panic!("expected a direct counter entry, got {other:?}"),
        })
        .collect()
}

fn counter_entries(found: Vec<Entity>) -> Vec<CounterEntry> {
    found
        .into_iter()
        .map(|e| match e.entity {
            Some(entity::Entity::CounterEntry(c)) => c,
            other => panic!("expected a counter entry, got {other:?}"),
        })
        .collect()
}

fn clone_sessions(found: Vec<Entity>) -> Vec<CloneSessionEntry> {
    let mut sessions: Vec<CloneSessionEntry> = found
        .into_iter()
        .map(|e| match e.entity {
            Some(entity::Entity::PacketReplicationEngineEntry(PacketReplicationEngineEntry {
                r#type: Some(packet_replication_engine_entry::Type::CloneSessionEntry(s)),
            })) => s,
            other => panic!("expected a clone session, got {other:?}"),
        })
        .collect();
    sessions.sort_by_key(|s| s.session_id);
    sessions
}

/// The code a Read with one failing request reports: the spec's batch form
/// (UNKNOWN with one `p4.v1.Error`) or, for a single request, that code as
/// the RPC's status — both say the same.
fn single_read_code(status: &Status) -> Code {
    if status.code() == Code::Unknown && !status.details().is_empty() {
        Code::from(batch_errors(status, 1)[0].canonical_code)
    } else {
        status.code()
    }
}

#[tokio::test]
async fn wildcard_reads_select_all_tables_one_table_or_one_entry() {
    let mut session = with_entries().await;
    let all = vec![
        classify(1, 10, 0),
        classify(2, 20, 1),
        select(10, 1),
        steer(1, 0, 5),
    ];
    assert_eq!(sorted(session.table_entries().await), sorted(all.clone()));

    let classify_only = session
        .read_ok(vec![table_entry_entity(table_filter("port_classify"))])
        .await;
    assert_eq!(sorted(entries(classify_only)), sorted(all[..2].to_vec()));

    let none = session
        .read_ok(vec![table_entry_entity(table_filter("mirror_truncate"))])
        .await;
    assert!(none.is_empty(), "{none:?}");

    let one = session
        .read_ok(vec![table_entry_entity(TableEntry {
            r#match: vec![
                exact("device_portmap", "direction", bytes(0)),
                exact("device_portmap", "device", bytes(1)),
            ],
            ..table_filter("device_portmap")
        })])
        .await;
    assert_eq!(
        entries(one),
        vec![steer(1, 0, 5)],
        "match fields in any order"
    );

    // Several requests in one Read: their results, in request order.
    let both = session
        .read_ok(vec![
            table_entry_entity(table_filter("service_selector")),
            table_entry_entity(table_filter("device_portmap")),
        ])
        .await;
    assert_eq!(entries(both), vec![select(10, 1), steer(1, 0, 5)]);
}

#[tokio::test]
async fn default_entries_are_read_per_table_and_for_all_tables() {
    let mut session = Session::start().await;
    let all = session
        .read_ok(vec![table_entry_entity(TableEntry {
            is_default_action: true,
            ..TableEntry::default()
        })])
        .await;
    let mut expected = Vec::new();
    for (name, action) in [
        ("port_classify", "drop"),
        ("service_selector", "drop"),
        ("device_portmap", "drop"),
        ("mirror_sampling", "no_sampling"),
        ("mirror_truncate", "no_truncate"),
    ] {
        expected.push(default_entry(name, Some(call(action, &[]))));
    }
    assert_eq!(
        expected.len(),
        umbra_p4info::umbra_p4info_index().tables().len()
    );
    assert_eq!(sorted(entries(all)), sorted(expected));

    let one = session
        .read_ok(vec![table_entry_entity(TableEntry {
            is_default_action: true,
            ..table_filter("mirror_sampling")
        })])
        .await;
    assert_eq!(
        entries(one),
        vec![default_entry(
            "mirror_sampling",
            Some(call("no_sampling", &[]))
        )]
    );
    assert!(
        session.table_entries().await.is_empty(),
        "defaults are no regular entries"
    );
}

#[tokio::test]
async fn direct_counters_are_read_through_table_entries_and_direct_counter_entries() {
    let mut session = with_entries().await;

    // counter_data set in the filter asks for the counters (spec "Direct
    // Resources"); tables without a direct counter have none.
    let with_counters = session
        .read_ok(vec![table_entry_entity(TableEntry {
            counter_data: Some(CounterData::default()),
            ..TableEntry::default()
        })])
        .await;
    assert_eq!(
        sorted(entries(with_counters)),
        sorted(vec![
            TableEntry {
                counter_data: Some(counts(3, 300)),
                ..classify(1, 10, 0)
            },
            TableEntry {
                counter_data: Some(counts(0, 0)),
                ..classify(2, 20, 1)
            },
            select(10, 1),
            TableEntry {
                counter_data: Some(counts(0, 0)),
                ..steer(1, 0, 5)
            },
        ])
    );

    // Written through DirectCounterEntry, read through both.
    session
        .write_ok(vec![crate::harness::update(
            update::Type::Modify,
            direct_counter_entity(DirectCounterEntry {
                table_entry: Some(steer(1, 0, 0)),
                data: Some(counts(7, 700)),
            }),
        )])
        .await;
    let key = |e: TableEntry| TableEntry {
        table_id: e.table_id,
        r#match: e.r#match,
        ..TableEntry::default()
    };
    let all = direct_counters(
        session
            .read_ok(vec![direct_counter_entity(DirectCounterEntry::default())])
            .await,
    );
    let mut all: Vec<(TableEntry, Option<CounterData>)> = all
        .into_iter()
        .map(|d| (d.table_entry.expect("key"), d.data))
        .collect();
    all.sort_by_key(|(e, _)| format!("{e:?}"));
    let mut wanted = vec![
        (key(classify(1, 0, 0)), Some(counts(3, 300))),
        (key(classify(2, 0, 0)), Some(counts(0, 0))),
        (key(steer(1, 0, 0)), Some(counts(7, 700))),
    ];
    wanted.sort_by_key(|(e, _)| format!("{e:?}"));
    assert_eq!(all, wanted);

    let one_table = direct_counters(
        session
            .read_ok(vec![direct_counter_entity(DirectCounterEntry {
                table_entry: Some(table_filter("device_portmap")),
                data: None,
            })])
            .await,
    );
    assert_eq!(one_table.len(), 1);
    assert_eq!(one_table[0].data, Some(counts(7, 700)));

    let one_entry = direct_counters(
        session
            .read_ok(vec![direct_counter_entity(DirectCounterEntry {
                table_entry: Some(key(classify(1, 0, 0))),
                data: None,
            })])
            .await,
    );
    assert_eq!(
        one_entry,
        vec![DirectCounterEntry {
            table_entry: Some(key(classify(1, 0, 0))),
            data: Some(counts(3, 300)),
        }]
    );

    let via_entry = session
        .read_ok(vec![table_entry_entity(TableEntry {
            counter_data: Some(CounterData::default()),
            ..key(steer(1, 0, 0))
        })])
        .await;
    assert_eq!(
        entries(via_entry),
        vec![TableEntry {
            counter_data: Some(counts(7, 700)),
            ..steer(1, 0, 5)
        }]
    );
}

#[tokio::test]
async fn indirect_counters_are_read_by_index_by_counter_and_all() {
    let mut session = Session::start().await;
    let (rx, tx) = (counter_id("port_rx"), counter_id("port_tx"));
    let set = |id, index, data| {
        crate::harness::update(
            update::Type::Modify,
            counter_entity(CounterEntry {
                counter_id: id,
                index: Some(Index { index }),
                data: Some(data),
            }),
        )
    };
    session
        .write_ok(vec![set(rx, 5, counts(1, 2)), set(tx, 511, counts(3, 4))])
        .await;

    let one = counter_entries(
        session
            .read_ok(vec![counter_entity(CounterEntry {
                counter_id: rx,
                index: Some(Index { index: 5 }),
                data: None,
            })])
            .await,
    );
    assert_eq!(
        one,
        vec![CounterEntry {
            counter_id: rx,
            index: Some(Index { index: 5 }),
            data: Some(counts(1, 2)),
        }]
    );
    // `index {}` is index 0, not a wildcard (spec "Default-valued Fields").
    let zero = counter_entries(
        session
            .read_ok(vec![counter_entity(CounterEntry {
                counter_id: rx,
                index: Some(Index::default()),
                data: None,
            })])
            .await,
    );
    assert_eq!(zero.len(), 1);
    assert_eq!(zero[0].data, Some(counts(0, 0)));

    let whole = counter_entries(
        session
            .read_ok(vec![counter_entity(CounterEntry {
                counter_id: tx,
                index: None,
                data: None,
            })])
            .await,
    );
    let mut indexes: Vec<i64> = whole
        .iter()
        .map(|c| c.index.expect("index").index)
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..512).collect::<Vec<i64>>());
    for c in &whole {
        let expected = if c.index == Some(Index { index: 511 }) {
            counts(3, 4)
        } else {
            counts(0, 0)
        };
        assert_eq!(c.counter_id, tx);
        assert_eq!(c.data, Some(expected), "{c:?}");
    }

    let every = counter_entries(
        session
            .read_ok(vec![counter_entity(CounterEntry::default())])
            .await,
    );
    assert_eq!(every.len(), 1024);
    let nonzero: Vec<&CounterEntry> = every
        .iter()
        .filter(|c| c.data != Some(counts(0, 0)))
        .collect();
    assert_eq!(nonzero.len(), 2, "{nonzero:?}");
}

#[tokio::test]
async fn clone_sessions_are_read_all_or_one() {
    let mut session = Session::start().await;
    let a = clone_session(3, &[(1, 0), (2, 5)]);
    let b = CloneSessionEntry {
        packet_length_bytes: 64,
        class_of_service: 1,
        ..clone_session(9, &[(7, 0)])
    };
    for s in [&a, &b] {
        session
            .write_ok(vec![crate::harness::update(
                update::Type::Insert,
                clone_session_entity(s.clone()),
            )])
            .await;
    }
    let all = clone_sessions(
        session
            .read_ok(vec![clone_session_entity(clone_session(0, &[]))])
            .await,
    );
    assert_eq!(all, vec![a, b.clone()]);
    let one = clone_sessions(
        session
            .read_ok(vec![clone_session_entity(CloneSessionEntry {
                session_id: 9,
                ..Default::default()
            })])
            .await,
    );
    assert_eq!(one, vec![b]);
}

/// Spec "Bytestrings" / "Read-Write Symmetry": the server answers with the
/// shortest bytestring, whatever padding the write used. A clone session's
/// replica port is such a bytestring.
#[tokio::test]
async fn clone_session_ports_read_back_canonical() {
    let mut session = Session::start().await;
    let mut padded = clone_session(3, &[(7, 0)]);
    padded.replicas[0].port_kind = Some(replica::PortKind::Port(vec![0, 0, 7]));
    session
        .write_ok(vec![crate::harness::update(
            update::Type::Insert,
            clone_session_entity(padded),
        )])
        .await;
    let all = clone_sessions(
        session
            .read_ok(vec![clone_session_entity(clone_session(0, &[]))])
            .await,
    );
    assert_eq!(all, vec![clone_session(3, &[(7, 0)])]);
}

/// Spec "Wildcard Reads" (TableEntry): `action` (by action_id) and `metadata`
/// filter the results when set.
#[tokio::test]
async fn table_reads_filter_by_action_and_metadata() {
    let mut session = Session::start().await;
    let tagged = TableEntry {
        metadata: b"tag".to_vec(),
        ..classify(3, 1, 0)
    };
    let punt = crate::harness::entry(
        "port_classify",
        vec![exact("port_classify", "ingress_port", bytes(4))],
        Some(call("punt_to_cpu", &[])),
    );
    session
        .write_ok(vec![
            insert(classify(1, 1, 0)),
            insert(tagged.clone()),
            insert(punt.clone()),
        ])
        .await;

    let by_action = session
        .read_ok(vec![table_entry_entity(TableEntry {
            action: Some(call("punt_to_cpu", &[])),
            ..table_filter("port_classify")
        })])
        .await;
    assert_eq!(entries(by_action), vec![punt], "filtered by action id");

    let by_metadata = session
        .read_ok(vec![table_entry_entity(TableEntry {
            metadata: b"tag".to_vec(),
            ..table_filter("port_classify")
        })])
        .await;
    assert_eq!(entries(by_metadata), vec![tagged], "filtered by metadata");
}

/// Spec "Wildcard Reads" (TableEntry): with a match key "the match will be
/// exact, which means at most one entry will be returned" — a key nothing
/// is installed under selects nothing; it is not an error.
#[tokio::test]
async fn reading_a_key_that_is_not_installed_returns_nothing() {
    let mut session = with_entries().await;
    let found = read(
        &mut session.client,
        vec![table_entry_entity(TableEntry {
            r#match: vec![exact("port_classify", "ingress_port", bytes(60))],
            ..table_filter("port_classify")
        })],
    )
    .await;
    match found {
        Ok(found) => assert!(found.is_empty(), "{found:?}"),
        Err(status) => panic!("expected no entity and OK, got {}", describe(&status)),
    }
}

/// Spec "DirectCounterEntry": "The table_entry.match field must match the
/// TableEntry whose counter is being read. If no such entry is found, the
/// server returns the error code NOT_FOUND."
#[tokio::test]
async fn reading_the_direct_counter_of_a_missing_entry_is_not_found() {
    let mut session = with_entries().await;
    let result = read(
        &mut session.client,
        vec![direct_counter_entity(DirectCounterEntry {
            table_entry: Some(TableEntry {
                r#match: vec![exact("port_classify", "ingress_port", bytes(60))],
                ..table_filter("port_classify")
            }),
            data: None,
        })],
    )
    .await;
    match result {
        Ok(found) => panic!("expected NOT_FOUND, got OK with {found:?}"),
        Err(status) => assert_eq!(
            single_read_code(&status),
            Code::NotFound,
            "{}",
            describe(&status)
        ),
    }
}

#[tokio::test]
async fn bad_read_requests_fail_with_their_code() {
    let mut session = with_entries().await;
    let cases: Vec<(&str, Entity, Code)> = vec![
        (
            "unknown table",
            table_entry_entity(TableEntry {
                table_id: table("port_classify").id + 0x100,
                ..TableEntry::default()
            }),
            Code::NotFound,
        ),
        (
            "bad match field",
            table_entry_entity(TableEntry {
                r#match: vec![crate::harness::exact_id(9, bytes(1))],
                ..table_filter("port_classify")
            }),
            Code::InvalidArgument,
        ),
        (
            "match value too wide",
            table_entry_entity(TableEntry {
                r#match: vec![exact("port_classify", "ingress_port", bytes(600))],
                ..table_filter("port_classify")
            }),
            Code::OutOfRange,
        ),
        ("empty entity", Entity::default(), Code::InvalidArgument),
        (
            "unknown counter",
            counter_entity(CounterEntry {
                counter_id: counter_id("port_rx") + 0x100,
                ..CounterEntry::default()
            }),
            Code::NotFound,
        ),
        (
            "counter index beyond the array",
            counter_entity(CounterEntry {
                counter_id: counter_id("port_rx"),
                index: Some(Index { index: 512 }),
                data: None,
            }),
            Code::OutOfRange,
        ),
        (
            "direct counter of a table without one",
            direct_counter_entity(DirectCounterEntry {
                table_entry: Some(table_filter("service_selector")),
                data: None,
            }),
            Code::InvalidArgument,
        ),
        (
            "register",
            Entity {
                entity: Some(entity::Entity::RegisterEntry(RegisterEntry::default())),
            },
            Code::Unimplemented,
        ),
        (
            "multicast groups",
            Entity {
                entity: Some(entity::Entity::PacketReplicationEngineEntry(
                    PacketReplicationEngineEntry {
                        r#type: Some(packet_replication_engine_entry::Type::MulticastGroupEntry(
                            MulticastGroupEntry::default(),
                        )),
                    },
                )),
            },
            Code::Unimplemented,
        ),
        (
            "replication entry without a type",
            Entity {
                entity: Some(entity::Entity::PacketReplicationEngineEntry(
                    PacketReplicationEngineEntry::default(),
                )),
            },
            Code::InvalidArgument,
        ),
    ];
    for (what, request, code) in cases {
        match read(&mut session.client, vec![request]).await {
            Ok(found) => panic!("{what}: expected {code:?}, got OK with {found:?}"),
            Err(status) => assert_eq!(
                single_read_code(&status),
                code,
                "{what}: {}",
                describe(&status)
            ),
        }
    }
}

/// Spec "Read RPC", Batch Processing: each request is validated on its own;
/// the entities of the valid ones are returned, and the status is UNKNOWN
/// with one `p4.v1.Error` per request in order ("This behavior also matches
/// Write RPC").
#[tokio::test]
async fn a_failing_read_request_does_not_hide_the_others() {
    let mut session = with_entries().await;
    let mut client = session.client.clone();
    let mut stream = client
        .read(umbra_proto::p4::v1::ReadRequest {
            device_id: crate::harness::DEVICE_ID,
            entities: vec![
                table_entry_entity(table_filter("service_selector")),
                Entity {
                    entity: Some(entity::Entity::RegisterEntry(RegisterEntry::default())),
                },
                table_entry_entity(table_filter("device_portmap")),
            ],
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner);
    let mut found = Vec::new();
    let status = loop {
        let next = match &mut stream {
            Ok(stream) => stream.message().await,
            Err(status) => Err(status.clone()),
        };
        match next {
            Ok(Some(response)) => found.extend(response.entities),
            Ok(None) => panic!("expected the read to fail, it succeeded with {found:?}"),
            Err(status) => break status,
        }
    };
    let codes: Vec<Code> = batch_errors(&status, 3)
        .iter()
        .map(|e| Code::from(e.canonical_code))
        .collect();
    assert_eq!(codes, vec![Code::Ok, Code::Unimplemented, Code::Ok]);
    assert_eq!(entries(found), vec![select(10, 1), steer(1, 0, 5)]);
    assert!(!session.table_entries().await.is_empty());
}

/// A Read is answered as soon as it is served. The switch's accepted
/// connections must not wait on Nagle's algorithm: with TCP_NODELAY unset
/// on the server side, every Read whose answer spans several writes stalls
/// for the peer's delayed ACK (~40 ms on Linux), so a controller's resync
/// of N tables costs N × 40 ms. Twenty Reads of twenty entries take a few
/// milliseconds on a loopback connection; the bound below leaves a wide
/// margin for a loaded machine and still catches one stall per Read.
#[tokio::test]
async fn reads_are_not_stalled_by_delayed_acks() {
    let mut session = Session::start().await;
    let entries: Vec<_> = (0..20)
        .map(|port| insert(classify(port, port, 0)))
        .collect();
    session.write_ok(entries).await;
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(session.table_entries().await.len(), 20);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_millis(400),
        "20 Reads of 20 entries took {elapsed:?}"
    );
}
