//! Property test: arbitrary WriteRequests against one live switch. Whatever
//! is sent, the switch answers (no panic, no transport error); a failed
//! batch is UNKNOWN with exactly one `p4.v1.Error` per update, consistent
//! with the batch's atomicity; an all-or-nothing batch that fails changes
//! nothing; and a wildcard Read afterwards returns only well-formed,
//! canonical state that umbra.p4's P4Info allows.
//!
//! Requests are built from the P4Info's ids (by name, through the index)
//! most of the time, so that many updates get deep into validation and
//! state accumulates; the rest is random numbers and bytes.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use prost::Message as _;
use tonic::Code;
use umbra_p4info::{P4InfoIndex, umbra_p4info_index};
use umbra_proto::p4::v1::{
    self as p4, Action, ActionProfileMember, BackupReplica, CapabilitiesRequest, CloneSessionEntry,
    CounterData, CounterEntry, DigestEntry, DirectCounterEntry, Entity, ExternEntry, FieldMatch,
    Index, MeterConfig, MeterEntry, MulticastGroupEntry, PacketReplicationEngineEntry,
    RegisterEntry, Replica, TableAction, TableEntry, Update, ValueSetEntry, WriteRequest, action,
    entity, field_match, packet_replication_engine_entry, replica, table_action, table_entry,
    update, write_request,
};

use crate::harness::{
    Client, DEVICE_ID, PRIMARY_ID, Session, batch_errors, bytes, clone_session_entity,
    counter_entity, counter_id, describe, table_entry_entity, uint128,
};

/// Number of random batches; each is one Write plus a few Reads.
const CASES: u32 = 256;

fn index() -> &'static P4InfoIndex {
    umbra_p4info_index()
}

// -------------------------------------------------------------- strategies --

/// A bytestring: mostly small canonical values (so keys collide and MODIFY
/// and DELETE find entries), sometimes wide, padded, empty or random.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (0u64..8).prop_map(bytes),
        2 => (0u64..1024).prop_map(bytes),
        1 => any::<u64>().prop_map(bytes),
        1 => (1usize..4, 0u64..600).prop_map(|(pad, v)| {
            let mut b = vec![0; pad];
            b.extend(bytes(v));
            b
        }),
        1 => Just(Vec::new()),
        1 => proptest::collection::vec(any::<u8>(), 1..12),
    ]
}

/// An id from `known`, or 0, or anything.
fn id_from(known: Vec<u32>) -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => proptest::sample::select(known),
        1 => Just(0u32),
        1 => any::<u32>(),
    ]
}

/// A match field or parameter id: the P4Info's are 1 and 2.
fn member_id() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 1u32..=2, 1 => Just(0u32), 1 => any::<u32>()]
}

fn arbitrary_match() -> impl Strategy<Value = FieldMatch> {
    let kind = prop_oneof![
        8 => value().prop_map(|value| Some(field_match::FieldMatchType::Exact(field_match::Exact { value }))),
        1 => (value(), value()).prop_map(|(value, mask)| {
            Some(field_match::FieldMatchType::Ternary(field_match::Ternary { value, mask }))
        }),
        1 => (value(), -1i32..40).prop_map(|(value, prefix_len)| {
            Some(field_match::FieldMatchType::Lpm(field_match::Lpm { value, prefix_len }))
        }),
        1 => Just(None),
    ];
    (member_id(), kind).prop_map(|(field_id, field_match_type)| FieldMatch {
        field_id,
        field_match_type,
    })
}

fn arbitrary_action() -> impl Strategy<Value = Option<TableAction>> {
    let action_ids: Vec<u32> = index().actions().iter().map(|a| a.id).collect();
    prop_oneof![
        8 => (id_from(action_ids), proptest::collection::vec((member_id(), value()), 0..4))
            .prop_map(|(action_id, params)| {
                Some(TableAction {
                    r#type: Some(table_action::Type::Action(Action {
                        action_id,
                        params: params
                            .into_iter()
                            .map(|(param_id, value)| action::Param { param_id, value })
                            .collect(),
                    })),
                })
            }),
        1 => Just(None),
        1 => Just(Some(TableAction::default())),
        1 => any::<u32>().prop_map(|member| Some(TableAction {
            r#type: Some(table_action::Type::ActionProfileMemberId(member)),
        })),
    ]
}

/// An entry that is valid for its table (keys 0..8, parameters masked to
/// their widths).
fn well_formed_entry() -> impl Strategy<Value = TableEntry> {
    let tables = index().tables().len();
    (
        0..tables,
        any::<proptest::sample::Index>(),
        proptest::collection::vec(0u64..4, 2),
        proptest::collection::vec(any::<u64>(), 2),
        any::<bool>(),
    )
        .prop_map(|(t, pick, keys, params, small)| {
            let table = &index().tables()[t];
            let action = index()
                .action_by_id(*pick.get(&table.action_ids))
                .expect("the table's action");
            TableEntry {
                table_id: table.id,
                r#match: table
                    .match_fields
                    .iter()
                    .zip(&keys)
                    .map(|(f, k)| crate::harness::exact_id(f.id, bytes(*k)))
                    .collect(),
                action: Some(TableAction {
                    r#type: Some(table_action::Type::Action(Action {
                        action_id: action.id,
                        params: action
                            .params
                            .iter()
                            .zip(&params)
                            .map(|(p, v)| {
                                let mask = if p.bitwidth >= 64 {
                                    u64::MAX
                                } else {
                                    (1 << p.bitwidth) - 1
                                };
                                let v = if small { v % 4 } else { v & mask };
                                action::Param {
                                    param_id: p.id,
                                    value: bytes(v),
                                }
                            })
                            .collect(),
                    })),
                }),
                ..TableEntry::default()
            }
        })
}

fn arbitrary_entry() -> impl Strategy<Value = TableEntry> {
    let table_ids: Vec<u32> = index().tables().iter().map(|t| t.id).collect();
    (
        id_from(table_ids),
        proptest::collection::vec(arbitrary_match(), 0..4),
        arbitrary_action(),
    )
        .prop_map(|(table_id, r#match, action)| TableEntry {
            table_id,
            r#match,
            action,
            ..TableEntry::default()
        })
}

fn counter_data() -> impl Strategy<Value = Option<CounterData>> {
    // Non-negative only: negative counts are covered by
    // `write_validation::negative_counter_values_are_invalid_argument`.
    prop_oneof![
        6 => Just(None),
        1 => (0i64..1000, 0i64..100_000).prop_map(|(packet_count, byte_count)| {
            Some(CounterData { byte_count, packet_count })
        }),
        1 => (0..=i64::MAX, 0..=i64::MAX).prop_map(|(packet_count, byte_count)| {
            Some(CounterData { byte_count, packet_count })
        }),
    ]
}

/// A table entry, well-formed or not, with the optional fields sometimes
/// set (rarely to something the tables do not support).
fn any_table_entry() -> impl Strategy<Value = TableEntry> {
    let extras = (
        prop_oneof![30 => Just(0i32), 1 => any::<i32>()],
        prop_oneof![15 => Just(false), 1 => Just(true)],
        counter_data(),
        prop_oneof![3 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 0..6)],
        prop_oneof![30 => Just(0i64), 1 => any::<i64>()],
        prop_oneof![30 => Just(None), 1 => Just(Some(MeterConfig::default()))],
        prop_oneof![30 => Just(false), 1 => Just(true)],
        prop_oneof![30 => Just(None), 1 => Just(Some(table_entry::IdleTimeout::default()))],
    );
    (
        prop_oneof![6 => well_formed_entry(), 2 => arbitrary_entry()],
        extras,
    )
        .prop_map(
            |(
                entry,
                (priority, is_default, counter_data, metadata, idle, meter, is_const, since),
            )| {
                let mut entry = TableEntry {
                    priority,
                    is_default_action: is_default,
                    counter_data,
                    metadata,
                    idle_timeout_ns: idle,
                    meter_config: meter,
                    is_const,
                    time_since_last_hit: since,
                    ..entry
                };
                if is_default {
                    entry.r#match.clear();
                }
                entry
            },
        )
}

#[allow(deprecated)] // `EgressPort` is the spec's deprecated form, still accepted.
fn clone_session() -> impl Strategy<Value = CloneSessionEntry> {
    let port = prop_oneof![
        4 => value().prop_map(|v| Some(replica::PortKind::Port(v))),
        1 => (0u32..600).prop_map(|p| Some(replica::PortKind::EgressPort(p))),
        1 => Just(None),
    ];
    let replica = (
        port,
        prop_oneof![4 => 0u32..4, 1 => any::<u32>()],
        prop_oneof![9 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(port_kind, instance, backup)| Replica {
            instance,
            backup_replicas: if backup {
                vec![BackupReplica {
                    port: bytes(1),
                    instance: 0,
                }]
            } else {
                Vec::new()
            },
            port_kind,
        });
    (
        prop_oneof![8 => 0u32..6, 1 => any::<u32>()],
        proptest::collection::vec(replica, 0..3),
        0u32..8,
        prop_oneof![4 => 0i32..200, 1 => any::<i32>()],
    )
        .prop_map(
            |(session_id, replicas, class_of_service, packet_length_bytes)| CloneSessionEntry {
                session_id,
                replicas,
                class_of_service,
                packet_length_bytes,
            },
        )
}

fn any_entity() -> impl Strategy<Value = Option<Entity>> {
    let counter_ids: Vec<u32> = index().counters().iter().map(|c| c.id).collect();
    let wrap = |e: entity::Entity| Some(Entity { entity: Some(e) });
    let pre = |t: packet_replication_engine_entry::Type| {
        entity::Entity::PacketReplicationEngineEntry(PacketReplicationEngineEntry {
            r#type: Some(t),
        })
    };
    prop_oneof![
        16 => any_table_entry().prop_map(move |e| wrap(entity::Entity::TableEntry(e))),
        2 => (
            id_from(counter_ids),
            proptest::option::of(prop_oneof![4 => 0i64..600, 1 => any::<i64>()]),
            counter_data(),
        )
            .prop_map(move |(counter_id, index, data)| {
                wrap(entity::Entity::CounterEntry(CounterEntry {
                    counter_id,
                    index: index.map(|index| Index { index }),
                    data,
                }))
            }),
        2 => (proptest::option::of(any_table_entry()), counter_data()).prop_map(
            move |(table_entry, data)| {
                wrap(entity::Entity::DirectCounterEntry(DirectCounterEntry { table_entry, data }))
            }
        ),
        3 => clone_session().prop_map(move |s| {
            wrap(pre(packet_replication_engine_entry::Type::CloneSessionEntry(s)))
        }),
        1 => any::<u32>().prop_map(move |multicast_group_id| {
            wrap(pre(packet_replication_engine_entry::Type::MulticastGroupEntry(
                MulticastGroupEntry { multicast_group_id, ..Default::default() },
            )))
        }),
        1 => proptest::sample::select(vec![
            entity::Entity::ExternEntry(ExternEntry::default()),
            entity::Entity::ActionProfileMember(ActionProfileMember::default()),
            entity::Entity::MeterEntry(MeterEntry::default()),
            entity::Entity::ValueSetEntry(ValueSetEntry::default()),
            entity::Entity::RegisterEntry(RegisterEntry::default()),
            entity::Entity::DigestEntry(DigestEntry::default()),
            entity::Entity::PacketReplicationEngineEntry(PacketReplicationEngineEntry::default()),
        ])
        .prop_map(wrap),
        1 => Just(Some(Entity::default())),
        1 => Just(None),
    ]
}

fn any_update() -> impl Strategy<Value = Update> {
    let kind = prop_oneof![
        6 => Just(update::Type::Insert as i32),
        3 => Just(update::Type::Modify as i32),
        2 => Just(update::Type::Delete as i32),
        1 => Just(update::Type::Unspecified as i32),
        1 => any::<i32>(),
    ];
    (kind, any_entity()).prop_map(|(r#type, entity)| Update { r#type, entity })
}

fn any_write() -> impl Strategy<Value = WriteRequest> {
    let atomicity = prop_oneof![
        2 => Just(write_request::Atomicity::ContinueOnError as i32),
        1 => Just(write_request::Atomicity::RollbackOnError as i32),
        1 => Just(write_request::Atomicity::DataplaneAtomic as i32),
    ];
    (proptest::collection::vec(any_update(), 0..6), atomicity).prop_map(|(updates, atomicity)| {
        WriteRequest {
            device_id: DEVICE_ID,
            election_id: Some(uint128(PRIMARY_ID)),
            updates,
            atomicity,
            ..Default::default()
        }
    })
}

// -------------------------------------------------------------- invariants --

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

/// A bytestring is the canonical form (shortest, spec "Bytestrings") of a
/// value that fits `bitwidth` bits.
fn check_canonical(what: &str, value: &[u8], bitwidth: u32) -> Result<(), TestCaseError> {
    let canonical = match value {
        [] => false,
        [_] => true,
        [first, ..] => *first != 0,
    };
    if !canonical || value.len() > 8 {
        return Err(fail(format!("{what}: {value:02x?} is not canonical")));
    }
    let number = value.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    if bitwidth < 64 && number >> bitwidth != 0 {
        return Err(fail(format!(
            "{what}: {number} does not fit {bitwidth} bits"
        )));
    }
    Ok(())
}

fn check_counter(what: &str, data: &CounterData) -> Result<(), TestCaseError> {
    if data.packet_count < 0 || data.byte_count < 0 {
        return Err(fail(format!("{what}: negative counter {data:?}")));
    }
    Ok(())
}

/// The action of an entry or default entry is one of the table's, with
/// exactly its parameters, canonical.
fn check_action(
    what: &str,
    table: &umbra_p4info::TableInfo,
    action: Option<&TableAction>,
) -> Result<(), TestCaseError> {
    let Some(table_action::Type::Action(action)) = action.and_then(|a| a.r#type.as_ref()) else {
        return Err(fail(format!("{what}: no direct action: {action:?}")));
    };
    if !table.allows_action(action.action_id) {
        return Err(fail(format!(
            "{what}: action {:#x} is not the table's",
            action.action_id
        )));
    }
    let info = index()
        .action_by_id(action.action_id)
        .expect("known action");
    let ids: Vec<u32> = action.params.iter().map(|p| p.param_id).collect();
    let mut want: Vec<u32> = info.params.iter().map(|p| p.id).collect();
    let mut got = ids.clone();
    want.sort_unstable();
    got.sort_unstable();
    if got != want {
        return Err(fail(format!("{what}: params {ids:?}, expected {want:?}")));
    }
    for p in &action.params {
        let param = info
            .params
            .iter()
            .find(|i| i.id == p.param_id)
            .expect("checked");
        check_canonical(
            &format!("{what}: param {}", param.name),
            &p.value,
            param.bitwidth,
        )?;
    }
    Ok(())
}

/// A regular entry read back with counters requested.
fn check_entry(entry: &TableEntry) -> Result<(), TestCaseError> {
    let table = index()
        .table_by_id(entry.table_id)
        .map_err(|_| fail(format!("unknown table in {entry:?}")))?;
    let what = format!("entry of {}", table.name);
    if entry.priority != 0
        || entry.is_default_action
        || entry.is_const
        || entry.idle_timeout_ns != 0
        || entry.meter_config.is_some()
        || entry.meter_counter_data.is_some()
        || entry.time_since_last_hit.is_some()
    {
        return Err(fail(format!("{what}: unexpected fields in {entry:?}")));
    }
    let mut seen = HashSet::new();
    for m in &entry.r#match {
        let field = table
            .match_fields
            .iter()
            .find(|f| f.id == m.field_id)
            .ok_or_else(|| fail(format!("{what}: unknown field {}", m.field_id)))?;
        if !seen.insert(m.field_id) {
            return Err(fail(format!("{what}: field {} twice", field.name)));
        }
        match &m.field_match_type {
            Some(field_match::FieldMatchType::Exact(exact)) => check_canonical(
                &format!("{what}: field {}", field.name),
                &exact.value,
                field.bitwidth,
            )?,
            other => return Err(fail(format!("{what}: {other:?} is not an exact match"))),
        }
    }
    if seen.len() != table.match_fields.len() {
        return Err(fail(format!(
            "{what}: {} of {} fields",
            seen.len(),
            table.match_fields.len()
        )));
    }
    check_action(&what, table, entry.action.as_ref())?;
    match (&entry.counter_data, table.direct_counter_id) {
        (Some(data), Some(_)) => check_counter(&what, data),
        (None, None) => Ok(()),
        (data, counter) => Err(fail(format!(
            "{what}: counter data {data:?} with direct counter {counter:?}"
        ))),
    }
}

#[allow(deprecated)] // `EgressPort` is the spec's deprecated form, still accepted.
fn check_clone_session(session: &CloneSessionEntry) -> Result<(), TestCaseError> {
    let what = format!("clone session {}", session.session_id);
    if session.session_id == 0 || session.packet_length_bytes < 0 {
        return Err(fail(format!("{what}: {session:?}")));
    }
    for replica in &session.replicas {
        if !replica.backup_replicas.is_empty() || replica.instance > 0xffff {
            return Err(fail(format!("{what}: replica {replica:?}")));
        }
        match &replica.port_kind {
            Some(replica::PortKind::Port(port)) => check_canonical(&what, port, 9)?,
            Some(replica::PortKind::EgressPort(port)) if *port < 512 => {}
            other => return Err(fail(format!("{what}: port {other:?}"))),
        }
    }
    Ok(())
}

/// Table entries (with counters), default entries and clone sessions.
async fn read_state(client: &mut Client) -> Result<Vec<Entity>, TestCaseError> {
    crate::harness::read(
        client,
        vec![
            table_entry_entity(TableEntry {
                counter_data: Some(CounterData::default()),
                ..TableEntry::default()
            }),
            table_entry_entity(TableEntry {
                is_default_action: true,
                ..TableEntry::default()
            }),
            clone_session_entity(CloneSessionEntry::default()),
        ],
    )
    .await
    .map_err(|status| fail(format!("wildcard read failed: {}", describe(&status))))
}

/// Every indirect counter cell.
async fn read_counters(client: &mut Client) -> Result<Vec<Entity>, TestCaseError> {
    crate::harness::read(client, vec![counter_entity(CounterEntry::default())])
        .await
        .map_err(|status| fail(format!("counter read failed: {}", describe(&status))))
}

fn check_state(state: &[Entity]) -> Result<(), TestCaseError> {
    let mut keys = HashSet::new();
    let mut defaults = HashSet::new();
    let mut sessions = HashSet::new();
    for entity in state {
        match &entity.entity {
            Some(entity::Entity::TableEntry(e)) if e.is_default_action => {
                let table = index()
                    .table_by_id(e.table_id)
                    .map_err(|_| fail(format!("default entry of unknown table {e:?}")))?;
                if !e.r#match.is_empty() || e.priority != 0 || !defaults.insert(e.table_id) {
                    return Err(fail(format!("bad default entry {e:?}")));
                }
                check_action(
                    &format!("default entry of {}", table.name),
                    table,
                    e.action.as_ref(),
                )?;
            }
            Some(entity::Entity::TableEntry(e)) => {
                check_entry(e)?;
                let mut key = e.r#match.clone();
                key.sort_by_key(|m| m.field_id);
                if !keys.insert((
                    e.table_id,
                    key.iter().map(|m| m.encode_to_vec()).collect::<Vec<_>>(),
                )) {
                    return Err(fail(format!("entry read twice: {e:?}")));
                }
            }
            Some(entity::Entity::PacketReplicationEngineEntry(PacketReplicationEngineEntry {
                r#type: Some(packet_replication_engine_entry::Type::CloneSessionEntry(s)),
            })) => {
                check_clone_session(s)?;
                if !sessions.insert(s.session_id) {
                    return Err(fail(format!("clone session read twice: {s:?}")));
                }
            }
            other => return Err(fail(format!("unexpected entity {other:?}"))),
        }
    }
    if defaults.len() != index().tables().len() {
        return Err(fail(format!("{} default entries", defaults.len())));
    }
    Ok(())
}

/// The entities only one of two reads returned, for failure messages.
fn differences(before: &[Entity], after: &[Entity]) -> Vec<String> {
    let encoded = |entities: &[Entity]| -> HashSet<Vec<u8>> {
        entities.iter().map(|e| e.encode_to_vec()).collect()
    };
    let (b, a) = (encoded(before), encoded(after));
    let mut out: Vec<String> = before
        .iter()
        .filter(|e| !a.contains(&e.encode_to_vec()))
        .map(|e| format!("- {e:?}"))
        .collect();
    out.extend(
        after
            .iter()
            .filter(|e| !b.contains(&e.encode_to_vec()))
            .map(|e| format!("+ {e:?}")),
    );
    out
}

/// Sends one batch and checks the answer, the rollback, and the state.
async fn check_write(mut client: Client, request: WriteRequest) -> Result<(), TestCaseError> {
    let updates = request.updates.len();
    let atomicity = write_request::Atomicity::try_from(request.atomicity).expect("generated");
    let all_or_nothing = atomicity != write_request::Atomicity::ContinueOnError;
    let writes_counters = request.updates.iter().any(|u| {
        matches!(
            u.entity.as_ref().and_then(|e| e.entity.as_ref()),
            Some(entity::Entity::CounterEntry(_))
        )
    });
    let before = if all_or_nothing {
        let mut state = read_state(&mut client).await?;
        if writes_counters {
            state.extend(read_counters(&mut client).await?);
        }
        Some(state)
    } else {
        None
    };

    let result = client.write(request).await;
    if let Err(status) = &result {
        prop_assert_eq!(status.code(), Code::Unknown, "{}", describe(status));
        let errors: Vec<p4::Error> = batch_errors(status, updates);
        let codes: Vec<Code> = errors
            .iter()
            .map(|e| Code::from(e.canonical_code))
            .collect();
        prop_assert!(
            codes.iter().any(|c| !matches!(c, Code::Ok | Code::Aborted)),
            "a failed batch names a failed update: {:?}",
            codes
        );
        for (error, code) in errors.iter().zip(&codes) {
            prop_assert!(
                !matches!(code, Code::Unknown | Code::Internal | Code::Unavailable),
                "update failed with {:?}: {}",
                code,
                error.message
            );
            if all_or_nothing {
                prop_assert_ne!(*code, Code::Ok, "{:?}: no update succeeds", atomicity);
            } else {
                prop_assert_ne!(*code, Code::Aborted, "CONTINUE_ON_ERROR aborts nothing");
            }
        }
    }

    let mut after = read_state(&mut client).await?;
    check_state(&after)?;
    if let (Some(before), Err(_)) = (before, &result) {
        if writes_counters {
            after.extend(read_counters(&mut client).await?);
        }
        let changes = differences(&before, &after);
        prop_assert!(
            changes.is_empty(),
            "a failed {:?} batch changed the state:\n{}",
            atomicity,
            changes.join("\n")
        );
    }
    Ok(())
}

#[test]
fn arbitrary_write_requests_keep_the_switch_consistent() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let session = runtime.block_on(Session::start());
    let client = session.client.clone();

    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    });
    let outcome = runner.run(&any_write(), |request| {
        runtime.block_on(check_write(client.clone(), request))
    });
    if let Err(error) = outcome {
        match error {
            TestError::Fail(reason, request) => {
                panic!("{reason}\nminimal failing request: {request:#?}")
            }
            TestError::Abort(reason) => panic!("aborted: {reason}"),
        }
    }

    // Still answering, and every counter is a count.
    runtime.block_on(async {
        let mut client = session.switch.client().await;
        let capabilities = client
            .capabilities(CapabilitiesRequest {
                device_id: DEVICE_ID,
            })
            .await
            .expect("Capabilities after the fuzzing")
            .into_inner();
        assert_eq!(capabilities.p4runtime_api_version, "1.6.0");
        let counters = read_counters(&mut client).await.expect("counters");
        assert_eq!(counters.len(), 1024);
        for entity in counters {
            match entity.entity {
                Some(entity::Entity::CounterEntry(c)) => {
                    assert!(
                        c.counter_id == counter_id("port_rx")
                            || c.counter_id == counter_id("port_tx")
                    );
                    check_counter("counter", &c.data.expect("data")).expect("a count");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        session.switch.assert_serving();
    });
    drop(session);
}
