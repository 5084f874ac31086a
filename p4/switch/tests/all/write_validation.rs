//! Write validation (spec "TableEntry", "Default Entry", "Direct Resources",
//! "CounterEntry & DirectCounterEntry", "CloneSessionEntry", "Write RPC"):
//! every kind of bad input alone and mixed with good updates, one
//! `p4.v1.Error` per update in order, and the well-formed edge cases that
//! must be accepted.

use tonic::Code;
use umbra_p4info::umbra_p4info_index;
use umbra_proto::p4::v1::{
    Action, ActionProfileActionSet, ActionProfileGroup, ActionProfileMember, BackupReplica,
    CounterEntry, DigestEntry, DirectCounterEntry, DirectMeterEntry, Entity, ExternEntry,
    FieldMatch, Index, MeterConfig, MeterEntry, MulticastGroupEntry, PacketReplicationEngineEntry,
    RegisterEntry, Replica, TableAction, TableEntry, Update, ValueSetEntry, action, entity,
    field_match, packet_replication_engine_entry, replica, table_action, table_entry, update,
};

use crate::harness::{
    Session, action_info, assert_codes, bytes, call, classify, clone_session, clone_session_entity,
    counter_entity, counter_id, counts, default_entry, delete, direct_counter_entity, entry, exact,
    exact_id, field_id, insert, into_table_entry, modify, param_id, select, sorted, steer, table,
    table_entry_entity,
};

fn raw(kind: i32, entity: Option<Entity>) -> Update {
    Update {
        r#type: kind,
        entity,
    }
}

fn wrap(entity: entity::Entity) -> Entity {
    Entity {
        entity: Some(entity),
    }
}

fn pre(t: packet_replication_engine_entry::Type) -> Entity {
    wrap(entity::Entity::PacketReplicationEngineEntry(
        PacketReplicationEngineEntry { r#type: Some(t) },
    ))
}

fn clone_update(kind: update::Type, session: umbra_proto::p4::v1::CloneSessionEntry) -> Update {
    crate::harness::update(kind, clone_session_entity(session))
}

fn port_match(value: Vec<u8>) -> Vec<FieldMatch> {
    vec![exact("port_classify", "ingress_port", value)]
}

/// An `Action` of `action_name` with raw (id, value) params.
fn raw_call(action_id: u32, params: Vec<(u32, Vec<u8>)>) -> TableAction {
    TableAction {
        r#type: Some(table_action::Type::Action(Action {
            action_id,
            params: params
                .into_iter()
                .map(|(param_id, value)| action::Param { param_id, value })
                .collect(),
        })),
    }
}

/// An id of `prefix`'s kind that the P4Info does not have.
fn unknown_id(prefix: u32) -> u32 {
    let id = (prefix << 24) | 0x00ff_fff0;
    assert!(umbra_p4info_index().table_by_id(id).is_err());
    assert!(umbra_p4info_index().action_by_id(id).is_err());
    assert!(umbra_p4info_index().counter_by_id(id).is_err());
    id
}

fn forward(port: Vec<u8>) -> TableAction {
    call("forward_to_port", &[("port", port)])
}

/// Every kind of bad update with the code the spec gives it. The session has
/// `classify(1, 10, 0)` and clone session 5 installed.
fn bad_updates() -> Vec<(&'static str, Update, Code)> {
    use Code::*;
    use update::Type::{Delete, Insert, Modify, Unspecified};
    let set_service = action_info("set_service").id;
    let service_id = param_id("set_service", "service_id");
    let direction = param_id("set_service", "direction");
    let with = |f: &dyn Fn(&mut TableEntry)| {
        let mut e = classify(40, 1, 0);
        f(&mut e);
        insert(e)
    };
    let field = field_id("port_classify", "ingress_port");
    vec![
        (
            "unknown table id",
            with(&|e| e.table_id = unknown_id(0x02)),
            NotFound,
        ),
        ("table id 0", with(&|e| e.table_id = 0), InvalidArgument),
        (
            "unknown match field id",
            with(&|e| e.r#match = vec![exact_id(field + 8, bytes(40))]),
            InvalidArgument,
        ),
        (
            "missing exact match field",
            insert(entry(
                "device_portmap",
                vec![exact("device_portmap", "device", bytes(1))],
                Some(call("steer_to_port", &[("port", bytes(2))])),
            )),
            InvalidArgument,
        ),
        (
            "no match at all",
            with(&|e| e.r#match.clear()),
            InvalidArgument,
        ),
        (
            "duplicate match field",
            with(&|e| e.r#match = vec![exact_id(field, bytes(40)), exact_id(field, bytes(41))]),
            InvalidArgument,
        ),
        (
            "ternary match on an exact field",
            with(&|e| {
                e.r#match = vec![FieldMatch {
                    field_id: field,
                    field_match_type: Some(field_match::FieldMatchType::Ternary(
                        field_match::Ternary {
                            value: bytes(40),
                            mask: bytes(0x1ff),
                        },
                    )),
                }]
            }),
            InvalidArgument,
        ),
        (
            "LPM match on an exact field",
            with(&|e| {
                e.r#match = vec![FieldMatch {
                    field_id: field,
                    field_match_type: Some(field_match::FieldMatchType::Lpm(field_match::Lpm {
                        value: bytes(40),
                        prefix_len: 9,
                    })),
                }]
            }),
            InvalidArgument,
        ),
        (
            "match without a kind",
            with(&|e| {
                e.r#match = vec![FieldMatch {
                    field_id: field,
                    field_match_type: None,
                }]
            }),
            InvalidArgument,
        ),
        (
            "match value too wide",
            with(&|e| e.r#match = port_match(bytes(512))),
            OutOfRange,
        ),
        (
            "match value of 9 bytes",
            with(&|e| e.r#match = port_match(vec![1; 9])),
            OutOfRange,
        ),
        (
            "empty match bytestring",
            with(&|e| e.r#match = port_match(Vec::new())),
            InvalidArgument,
        ),
        (
            "non-zero priority",
            with(&|e| e.priority = 10),
            InvalidArgument,
        ),
        (
            "action of another table",
            with(&|e| e.action = Some(call("set_active_device", &[("device", bytes(1))]))),
            InvalidArgument,
        ),
        (
            "INSERT without action",
            with(&|e| e.action = None),
            InvalidArgument,
        ),
        (
            "action with nothing set",
            with(&|e| e.action = Some(TableAction::default())),
            InvalidArgument,
        ),
        (
            "action profile member",
            with(&|e| {
                e.action = Some(TableAction {
                    r#type: Some(table_action::Type::ActionProfileMemberId(1)),
                })
            }),
            InvalidArgument,
        ),
        (
            "action profile group",
            with(&|e| {
                e.action = Some(TableAction {
                    r#type: Some(table_action::Type::ActionProfileGroupId(1)),
                })
            }),
            InvalidArgument,
        ),
        (
            "one-shot action set",
            with(&|e| {
                e.action = Some(TableAction {
                    r#type: Some(table_action::Type::ActionProfileActionSet(
                        ActionProfileActionSet::default(),
                    )),
                })
            }),
            InvalidArgument,
        ),
        (
            "missing param",
            with(&|e| e.action = Some(raw_call(set_service, vec![(service_id, bytes(1))]))),
            InvalidArgument,
        ),
        (
            "unknown param id",
            with(&|e| {
                e.action = Some(raw_call(
                    set_service,
                    vec![
                        (service_id, bytes(1)),
                        (direction, bytes(0)),
                        (direction + 5, bytes(0)),
                    ],
                ))
            }),
            InvalidArgument,
        ),
        (
            "duplicate param",
            with(&|e| {
                e.action = Some(raw_call(
                    set_service,
                    vec![
                        (service_id, bytes(1)),
                        (direction, bytes(0)),
                        (service_id, bytes(2)),
                    ],
                ))
            }),
            InvalidArgument,
        ),
        (
            "param too wide",
            with(&|e| e.action = Some(forward(bytes(512)))),
            OutOfRange,
        ),
        (
            "empty param bytestring",
            with(&|e| e.action = Some(forward(Vec::new()))),
            InvalidArgument,
        ),
        (
            "param for a parameterless action",
            with(&|e| e.action = Some(raw_call(action_info("drop").id, vec![(1, bytes(0))]))),
            InvalidArgument,
        ),
        (
            "duplicate INSERT",
            insert(classify(1, 11, 1)),
            AlreadyExists,
        ),
        (
            "MODIFY of a missing entry",
            modify(classify(41, 1, 0)),
            NotFound,
        ),
        (
            "DELETE of a missing entry",
            delete(classify(41, 1, 0)),
            NotFound,
        ),
        (
            "UNSPECIFIED update type",
            raw(
                Unspecified as i32,
                Some(table_entry_entity(classify(42, 1, 0))),
            ),
            InvalidArgument,
        ),
        (
            "unknown update type",
            raw(9, Some(table_entry_entity(classify(42, 1, 0)))),
            InvalidArgument,
        ),
        (
            "update without entity",
            raw(Insert as i32, None),
            InvalidArgument,
        ),
        (
            "empty entity",
            raw(Insert as i32, Some(Entity::default())),
            InvalidArgument,
        ),
        (
            "extern entry",
            raw(
                Insert as i32,
                Some(wrap(entity::Entity::ExternEntry(ExternEntry::default()))),
            ),
            Unimplemented,
        ),
        (
            "action profile member entity",
            raw(
                Insert as i32,
                Some(wrap(entity::Entity::ActionProfileMember(
                    ActionProfileMember::default(),
                ))),
            ),
            Unimplemented,
        ),
        (
            "action profile group entity",
            raw(
                Insert as i32,
                Some(wrap(entity::Entity::ActionProfileGroup(
                    ActionProfileGroup::default(),
                ))),
            ),
            Unimplemented,
        ),
        (
            "meter entry",
            raw(
                Modify as i32,
                Some(wrap(entity::Entity::MeterEntry(MeterEntry::default()))),
            ),
            Unimplemented,
        ),
        (
            "direct meter entry",
            raw(
                Modify as i32,
                Some(wrap(entity::Entity::DirectMeterEntry(
                    DirectMeterEntry::default(),
                ))),
            ),
            Unimplemented,
        ),
        (
            "value set entry",
            raw(
                Modify as i32,
                Some(wrap(
                    entity::Entity::ValueSetEntry(ValueSetEntry::default()),
                )),
            ),
            Unimplemented,
        ),
        (
            "register entry",
            raw(
                Modify as i32,
                Some(wrap(
                    entity::Entity::RegisterEntry(RegisterEntry::default()),
                )),
            ),
            Unimplemented,
        ),
        (
            "digest entry",
            raw(
                Insert as i32,
                Some(wrap(entity::Entity::DigestEntry(DigestEntry::default()))),
            ),
            Unimplemented,
        ),
        (
            "multicast group",
            raw(
                Insert as i32,
                Some(pre(
                    packet_replication_engine_entry::Type::MulticastGroupEntry(
                        MulticastGroupEntry {
                            multicast_group_id: 1,
                            ..Default::default()
                        },
                    ),
                )),
            ),
            Unimplemented,
        ),
        (
            "replication entry without a type",
            raw(
                Insert as i32,
                Some(wrap(entity::Entity::PacketReplicationEngineEntry(
                    PacketReplicationEngineEntry::default(),
                ))),
            ),
            InvalidArgument,
        ),
        (
            "INSERT of the default entry",
            insert(default_entry(
                "port_classify",
                Some(call("punt_to_cpu", &[])),
            )),
            InvalidArgument,
        ),
        (
            "DELETE of the default entry",
            delete(default_entry("port_classify", None)),
            InvalidArgument,
        ),
        (
            "default entry with a match",
            modify(TableEntry {
                r#match: port_match(bytes(1)),
                ..default_entry("port_classify", Some(call("punt_to_cpu", &[])))
            }),
            InvalidArgument,
        ),
        (
            "default entry with another table's action",
            modify(default_entry(
                "port_classify",
                Some(call("no_sampling", &[])),
            )),
            InvalidArgument,
        ),
        (
            "default entry of an unknown table",
            modify(TableEntry {
                table_id: unknown_id(0x02),
                ..default_entry("port_classify", None)
            }),
            NotFound,
        ),
        (
            "idle timeout on a table without",
            with(&|e| e.idle_timeout_ns = 1_000_000),
            InvalidArgument,
        ),
        (
            "meter config on a table without a meter",
            with(&|e| e.meter_config = Some(MeterConfig::default())),
            InvalidArgument,
        ),
        (
            "counter data on a table without a direct counter",
            insert(TableEntry {
                counter_data: Some(counts(1, 1)),
                ..select(40, 1)
            }),
            InvalidArgument,
        ),
        (
            "counter INSERT",
            crate::harness::update(
                Insert,
                counter_entity(CounterEntry {
                    counter_id: counter_id("port_rx"),
                    index: Some(Index { index: 1 }),
                    data: Some(counts(1, 1)),
                }),
            ),
            InvalidArgument,
        ),
        (
            "counter DELETE",
            crate::harness::update(
                Delete,
                counter_entity(CounterEntry {
                    counter_id: counter_id("port_rx"),
                    index: Some(Index { index: 1 }),
                    data: None,
                }),
            ),
            InvalidArgument,
        ),
        (
            "unknown counter id",
            crate::harness::update(
                Modify,
                counter_entity(CounterEntry {
                    counter_id: unknown_id(0x12),
                    index: Some(Index { index: 1 }),
                    data: Some(counts(1, 1)),
                }),
            ),
            NotFound,
        ),
        (
            "counter index beyond the array",
            crate::harness::update(
                Modify,
                counter_entity(CounterEntry {
                    counter_id: counter_id("port_tx"),
                    index: Some(Index { index: 512 }),
                    data: Some(counts(1, 1)),
                }),
            ),
            OutOfRange,
        ),
        (
            "direct counter INSERT",
            crate::harness::update(
                Insert,
                direct_counter_entity(DirectCounterEntry {
                    table_entry: Some(classify(1, 10, 0)),
                    data: Some(counts(1, 1)),
                }),
            ),
            InvalidArgument,
        ),
        (
            "direct counter of a table without one",
            crate::harness::update(
                Modify,
                direct_counter_entity(DirectCounterEntry {
                    table_entry: Some(select(1, 1)),
                    data: Some(counts(1, 1)),
                }),
            ),
            InvalidArgument,
        ),
        (
            "direct counter of a missing entry",
            crate::harness::update(
                Modify,
                direct_counter_entity(DirectCounterEntry {
                    table_entry: Some(classify(43, 1, 0)),
                    data: Some(counts(1, 1)),
                }),
            ),
            NotFound,
        ),
        (
            "direct counter without a table entry",
            crate::harness::update(
                Modify,
                direct_counter_entity(DirectCounterEntry {
                    table_entry: None,
                    data: Some(counts(1, 1)),
                }),
            ),
            InvalidArgument,
        ),
        (
            "clone session 0",
            clone_update(Insert, clone_session(0, &[(1, 0)])),
            InvalidArgument,
        ),
        (
            "duplicate clone session",
            clone_update(Insert, clone_session(5, &[(1, 0)])),
            AlreadyExists,
        ),
        (
            "MODIFY of a missing clone session",
            clone_update(Modify, clone_session(6, &[(1, 0)])),
            NotFound,
        ),
        (
            "DELETE of a missing clone session",
            clone_update(Delete, clone_session(6, &[])),
            NotFound,
        ),
        (
            "replica without a port",
            clone_update(Insert, {
                let mut s = clone_session(7, &[(1, 0)]);
                s.replicas[0].port_kind = None;
                s
            }),
            InvalidArgument,
        ),
        (
            "replica port too wide",
            clone_update(Insert, clone_session(7, &[(512, 0)])),
            OutOfRange,
        ),
        (
            "replica port empty",
            clone_update(Insert, {
                let mut s = clone_session(7, &[(1, 0)]);
                s.replicas[0].port_kind = Some(replica::PortKind::Port(Vec::new()));
                s
            }),
            InvalidArgument,
        ),
        (
            "backup replicas",
            clone_update(Insert, {
                let mut s = clone_session(7, &[(1, 0)]);
                s.replicas[0].backup_replicas = vec![BackupReplica {
                    port: bytes(2),
                    instance: 0,
                }];
                s
            }),
            Unimplemented,
        ),
        (
            "negative packet length",
            clone_update(Insert, {
                let mut s = clone_session(7, &[(1, 0)]);
                s.packet_length_bytes = -1;
                s
            }),
            InvalidArgument,
        ),
        (
            "duplicate replica",
            clone_update(Insert, clone_session(7, &[(1, 0), (1, 0)])),
            InvalidArgument,
        ),
    ]
}

async fn prepared() -> Session {
    let mut session = Session::start().await;
    session
        .write_ok(vec![
            insert(classify(1, 10, 0)),
            clone_update(update::Type::Insert, clone_session(5, &[(9, 1)])),
        ])
        .await;
    session
}

#[tokio::test]
async fn each_bad_update_alone_fails_with_its_code() {
    let mut session = prepared().await;
    let before = session.table_entries().await;
    for (what, bad, code) in bad_updates() {
        let result = session.write(vec![bad]).await;
        let codes = crate::harness::update_codes(&result, 1);
        assert_eq!(
            codes,
            vec![code],
            "{what}: {:?}",
            result.err().map(|s| crate::harness::batch_errors(&s, 1))
        );
    }
    assert_eq!(session.table_entries().await, before, "nothing was written");
    let sessions = session
        .read_ok(vec![clone_session_entity(clone_session(0, &[]))])
        .await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
}

#[tokio::test]
async fn bad_updates_mixed_with_good_ones_are_reported_in_order() {
    let mut session = prepared().await;
    let bad = bad_updates();
    let mut updates = Vec::new();
    let mut expected = Vec::new();
    let mut good = Vec::new();
    for (i, (_, update, code)) in bad.into_iter().enumerate() {
        let entry = select(1000 + i as u64, (i % 256) as u64);
        good.push(entry.clone());
        updates.push(insert(entry));
        expected.push(Code::Ok);
        updates.push(update);
        expected.push(code);
    }
    let result = session.write(updates).await;
    assert_codes(&result, &expected);

    good.push(classify(1, 10, 0));
    assert_eq!(
        sorted(session.table_entries().await),
        sorted(good),
        "exactly the good updates were applied"
    );
}

#[tokio::test]
async fn a_full_table_is_resource_exhausted() {
    let mut session = Session::start().await;
    let size = table("port_classify").size as u64;
    assert_eq!(size, 64);
    let updates: Vec<Update> = (0..=size)
        .map(|port| insert(classify(port, port, 0)))
        .collect();
    let mut expected = vec![Code::Ok; size as usize];
    expected.push(Code::ResourceExhausted);
    assert_codes(&session.write(updates).await, &expected);
    assert_eq!(session.table_entries().await.len(), size as usize);

    assert_codes(
        &session.write(vec![insert(classify(100, 1, 0))]).await,
        &[Code::ResourceExhausted],
    );
    // Deleting one makes room again, within the same batch.
    assert_codes(
        &session
            .write(vec![delete(classify(0, 0, 0)), insert(classify(100, 1, 0))])
            .await,
        &[Code::Ok, Code::Ok],
    );
}

#[tokio::test]
async fn padded_bytestrings_are_accepted_and_read_back_canonical() {
    let mut session = Session::start().await;
    let padded = entry(
        "port_classify",
        port_match(vec![0, 0, 0, 5]),
        Some(call(
            "set_service",
            &[
                ("service_id", vec![0, 0, 0x01, 0x02]),
                ("direction", vec![0, 0]),
            ],
        )),
    );
    session.write_ok(vec![insert(padded.clone())]).await;
    assert_eq!(session.table_entries().await, vec![classify(5, 0x0102, 0)]);

    // The padded and the canonical form name the same entry.
    assert_codes(
        &session.write(vec![insert(classify(5, 1, 1))]).await,
        &[Code::AlreadyExists],
    );
    let one = session
        .read_ok(vec![table_entry_entity(TableEntry {
            table_id: table("port_classify").id,
            r#match: port_match(vec![0, 5]),
            ..Default::default()
        })])
        .await;
    assert_eq!(
        one.into_iter().map(into_table_entry).collect::<Vec<_>>(),
        vec![classify(5, 0x0102, 0)]
    );
    session.write_ok(vec![delete(padded)]).await;
    assert!(session.table_entries().await.is_empty());

    // Zero is one zero byte, however it was sent.
    session
        .write_ok(vec![insert(entry(
            "device_portmap",
            vec![
                exact("device_portmap", "device", vec![0, 0]),
                exact("device_portmap", "direction", vec![0]),
            ],
            Some(call("steer_to_port", &[("port", vec![0, 0, 0])])),
        ))])
        .await;
    assert_eq!(session.table_entries().await, vec![steer(0, 0, 0)]);
}

#[tokio::test]
async fn modify_replaces_the_action_and_metadata_and_delete_removes() {
    let mut session = Session::start().await;
    let mut first = classify(3, 30, 0);
    first.metadata = b"first".to_vec();
    session.write_ok(vec![insert(first.clone())]).await;
    assert_eq!(session.table_entries().await, vec![first]);

    let mut second = entry(
        "port_classify",
        port_match(bytes(3)),
        Some(forward(bytes(7))),
    );
    second.metadata = b"second".to_vec();
    session.write_ok(vec![modify(second.clone())]).await;
    assert_eq!(session.table_entries().await, vec![second]);

    session.write_ok(vec![delete(classify(3, 0, 0))]).await;
    assert!(session.table_entries().await.is_empty());
    assert_codes(
        &session.write(vec![delete(classify(3, 0, 0))]).await,
        &[Code::NotFound],
    );
}

/// Spec "TableEntry": "When deleting an entry, these key fields (along with
/// is_default_action) are the only fields considered by the server. All
/// other fields must be ignored, even if they have nonsensical values (such
/// as an invalid action field)."
#[tokio::test]
async fn delete_ignores_an_invalid_action() {
    let mut session = Session::start().await;
    session.write_ok(vec![insert(classify(3, 30, 0))]).await;
    let mut nonsense = classify(3, 0, 0);
    nonsense.action = Some(raw_call(0x01ab_cdef, vec![(77, Vec::new())]));
    nonsense.metadata = b"whatever".to_vec();
    session.write_ok(vec![delete(nonsense)]).await;
    assert!(session.table_entries().await.is_empty());
}

/// Same rule as above, for the other non-key fields: a DELETE carrying a
/// counter value (on a table without direct counter), an idle timeout or a
/// meter config deletes the entry.
#[tokio::test]
async fn delete_ignores_every_non_key_field() {
    let mut session = Session::start().await;
    session
        .write_ok(vec![
            insert(select(1, 1)),
            insert(select(2, 1)),
            insert(select(3, 1)),
        ])
        .await;
    let result = session
        .write(vec![
            delete(TableEntry {
                counter_data: Some(counts(1, 1)),
                ..select(1, 1)
            }),
            delete(TableEntry {
                idle_timeout_ns: 5,
                ..select(2, 1)
            }),
            delete(TableEntry {
                meter_config: Some(MeterConfig::default()),
                ..select(3, 1)
            }),
        ])
        .await;
    assert_codes(&result, &[Code::Ok, Code::Ok, Code::Ok]);
    assert!(session.table_entries().await.is_empty());
}

/// Spec "Action Specification": the action "may be left unset for MODIFY
/// updates, in which case the action specification for the table entry will
/// not be modified". Combined with "Direct Resources" (MODIFY with
/// counter_data set writes the counter), this is how a controller resets a
/// direct counter through the TableEntry.
#[tokio::test]
async fn modify_without_action_keeps_the_action() {
    let mut session = Session::start().await;
    session.write_ok(vec![insert(classify(3, 30, 1))]).await;
    let result = session
        .write(vec![modify(TableEntry {
            counter_data: Some(counts(4, 400)),
            ..entry("port_classify", port_match(bytes(3)), None)
        })])
        .await;
    assert_codes(&result, &[Code::Ok]);
    let read = session
        .read_ok(vec![table_entry_entity(TableEntry {
            table_id: table("port_classify").id,
            counter_data: Some(counts(0, 0)),
            ..Default::default()
        })])
        .await;
    let read: Vec<TableEntry> = read.into_iter().map(into_table_entry).collect();
    assert_eq!(
        read,
        vec![TableEntry {
            counter_data: Some(counts(4, 400)),
            ..classify(3, 30, 1)
        }]
    );
}

/// Spec "TableEntry": "The is_const field must be false in any INSERT,
/// MODIFY, or DELETE write request of a table entry. If it is true, the
/// server must reject the operation and return an INVALID_ARGUMENT error."
#[tokio::test]
async fn is_const_in_a_write_is_invalid_argument() {
    let mut session = Session::start().await;
    session.write_ok(vec![insert(select(2, 1))]).await;
    let result = session
        .write(vec![
            insert(TableEntry {
                is_const: true,
                ..select(1, 1)
            }),
            modify(TableEntry {
                is_const: true,
                ..select(2, 3)
            }),
            delete(TableEntry {
                is_const: true,
                ..select(2, 1)
            }),
        ])
        .await;
    assert_codes(&result, &[Code::InvalidArgument; 3]);
    assert_eq!(session.table_entries().await, vec![select(2, 1)]);
}

/// Spec "Default Entry": with is_default_action "the priority field must be
/// set to zero, otherwise the P4Runtime server must return an
/// INVALID_ARGUMENT error"; spec "Idle-timeout": "When the
/// is_default_action flag is set ..., idle_timeout_ns must be set to 0 ...
/// it must return an INVALID_ARGUMENT error".
#[tokio::test]
async fn default_entry_with_priority_or_idle_timeout_is_invalid_argument() {
    let mut session = Session::start().await;
    let result = session
        .write(vec![
            modify(TableEntry {
                priority: 3,
                ..default_entry("port_classify", Some(call("punt_to_cpu", &[])))
            }),
            modify(TableEntry {
                idle_timeout_ns: 1_000,
                ..default_entry("service_selector", Some(call("drop", &[])))
            }),
        ])
        .await;
    assert_codes(&result, &[Code::InvalidArgument, Code::InvalidArgument]);
}

/// Spec "Idle-timeout": if the table does not support idle timeout, the
/// server "must return an INVALID_ARGUMENT error code if ...
/// time_since_last_hit is set".
#[tokio::test]
async fn time_since_last_hit_in_a_write_is_invalid_argument() {
    let mut session = Session::start().await;
    let result = session
        .write(vec![insert(TableEntry {
            time_since_last_hit: Some(table_entry::IdleTimeout { elapsed_ns: 0 }),
            ..select(1, 1)
        })])
        .await;
    assert_codes(&result, &[Code::InvalidArgument]);
}

/// Spec "Action Specification": "the action_id ... must match one of the
/// possible action choices for the table, or the server must return an
/// INVALID_ARGUMENT error code" — an id that is no action at all does not
/// match either.
#[tokio::test]
async fn unknown_action_id_is_invalid_argument() {
    let mut session = Session::start().await;
    let result = session
        .write(vec![insert(TableEntry {
            action: Some(raw_call(unknown_id(0x01), Vec::new())),
            ..classify(1, 1, 0)
        })])
        .await;
    assert_codes(&result, &[Code::InvalidArgument]);
}

#[tokio::test]
async fn default_entry_is_modified_and_reset() {
    let mut session = Session::start().await;
    let read_default = |session: &mut Session| {
        let mut client = session.client.clone();
        async move {
            let found = crate::harness::read(
                &mut client,
                vec![table_entry_entity(default_entry("port_classify", None))],
            )
            .await
            .expect("read");
            let found: Vec<TableEntry> = found.into_iter().map(into_table_entry).collect();
            assert_eq!(found.len(), 1, "{found:?}");
            found.into_iter().next().expect("one")
        }
    };
    let initial = read_default(&mut session).await;
    assert_eq!(
        initial,
        default_entry("port_classify", Some(call("drop", &[])))
    );

    let forward_9 = default_entry("port_classify", Some(forward(bytes(9))));
    session.write_ok(vec![modify(forward_9.clone())]).await;
    assert_eq!(read_default(&mut session).await, forward_9);
    assert!(
        session.table_entries().await.is_empty(),
        "no regular entry appeared"
    );

    // MODIFY without action restores the program's default.
    session
        .write_ok(vec![modify(default_entry("port_classify", None))])
        .await;
    assert_eq!(read_default(&mut session).await, initial);
}

/// Spec "CounterEntry": on MODIFY "the counter value is not modified if this
/// Protobuf field [data] is not set"; "DirectCounterEntry": "if this Protobuf
/// field is not set, the counter value is not modified".
#[tokio::test]
async fn counter_modify_without_data_keeps_the_value() {
    let mut session = Session::start().await;
    let port_rx = counter_id("port_rx");
    session
        .write_ok(vec![
            insert(TableEntry {
                counter_data: Some(counts(2, 200)),
                ..classify(3, 30, 1)
            }),
            crate::harness::update(
                update::Type::Modify,
                counter_entity(CounterEntry {
                    counter_id: port_rx,
                    index: Some(Index { index: 3 }),
                    data: Some(counts(5, 500)),
                }),
            ),
        ])
        .await;
    session
        .write_ok(vec![
            crate::harness::update(
                update::Type::Modify,
                direct_counter_entity(DirectCounterEntry {
                    table_entry: Some(classify(3, 0, 0)),
                    data: None,
                }),
            ),
            crate::harness::update(
                update::Type::Modify,
                counter_entity(CounterEntry {
                    counter_id: port_rx,
                    index: Some(Index { index: 3 }),
                    data: None,
                }),
            ),
        ])
        .await;
    let read = session
        .read_ok(vec![
            direct_counter_entity(DirectCounterEntry::default()),
            counter_entity(CounterEntry {
                counter_id: port_rx,
                index: Some(Index { index: 3 }),
                data: None,
            }),
        ])
        .await;
    let values: Vec<_> = read
        .into_iter()
        .map(|e| match e.entity {
            Some(entity::Entity::DirectCounterEntry(d)) => d.data,
            Some(entity::Entity::CounterEntry(c)) => c.data,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(values, vec![Some(counts(2, 200)), Some(counts(5, 500))]);
}

/// Spec "CounterEntry", MODIFY: "If index is omitted all counter values in
/// the array will be set to the value provided by the client."
#[tokio::test]
async fn counter_modify_without_index_sets_every_cell() {
    let mut session = Session::start().await;
    let port_tx = counter_id("port_tx");
    let result = session
        .write(vec![crate::harness::update(
            update::Type::Modify,
            counter_entity(CounterEntry {
                counter_id: port_tx,
                index: None,
                data: Some(counts(1, 64)),
            }),
        )])
        .await;
    assert_codes(&result, &[Code::Ok]);
    let read = session
        .read_ok(vec![counter_entity(CounterEntry {
            counter_id: port_tx,
            index: None,
            data: None,
        })])
        .await;
    assert_eq!(read.len(), 512);
    for e in read {
        match e.entity {
            Some(entity::Entity::CounterEntry(c)) => {
                assert_eq!(c.data, Some(counts(1, 64)), "{c:?}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Spec "CounterEntry", MODIFY: "The server must return INVALID_ARGUMENT for
/// a negative index value and OUT_OF_RANGE if the index value exceeds the
/// size of the counter array."
#[tokio::test]
async fn negative_counter_index_is_invalid_argument() {
    let mut session = Session::start().await;
    let result = session
        .write(vec![crate::harness::update(
            update::Type::Modify,
            counter_entity(CounterEntry {
                counter_id: counter_id("port_rx"),
                index: Some(Index { index: -1 }),
                data: Some(counts(1, 1)),
            }),
        )])
        .await;
    assert_codes(&result, &[Code::InvalidArgument]);
}

/// Not spelled out by the spec, but a negative packet or byte count is no
/// count: today an indirect counter silently stores 0 and a direct counter
/// stores (and reads back) the negative number. Both should be refused.
#[tokio::test]
async fn negative_counter_values_are_invalid_argument() {
    let mut session = Session::start().await;
    session.write_ok(vec![insert(classify(3, 30, 1))]).await;
    let result = session
        .write(vec![
            crate::harness::update(
                update::Type::Modify,
                counter_entity(CounterEntry {
                    counter_id: counter_id("port_rx"),
                    index: Some(Index { index: 1 }),
                    data: Some(counts(-1, 10)),
                }),
            ),
            crate::harness::update(
                update::Type::Modify,
                direct_counter_entity(DirectCounterEntry {
                    table_entry: Some(classify(3, 0, 0)),
                    data: Some(counts(10, -1)),
                }),
            ),
            insert(TableEntry {
                counter_data: Some(counts(-5, 0)),
                ..classify(4, 30, 1)
            }),
        ])
        .await;
    assert_codes(&result, &[Code::InvalidArgument; 3]);
}

/// Spec "CloneSessionEntry", INSERT: "The replica instance ID is also a
/// uint32, and its value may not exceed the maximum allowed by the target
/// for the EgressInstance_t type ..., or the server must also return an
/// INVALID_ARGUMENT error." (v1model: 16 bits.)
#[tokio::test]
async fn clone_session_instance_too_wide_is_invalid_argument() {
    let mut session = Session::start().await;
    let mut s = clone_session(3, &[(1, 0)]);
    s.replicas[0].instance = 0x1_0000;
    let result = session
        .write(vec![clone_update(update::Type::Insert, s)])
        .await;
    assert_codes(&result, &[Code::InvalidArgument]);
}

#[tokio::test]
#[allow(deprecated)] // `EgressPort` is the spec's deprecated form, still accepted.
async fn clone_sessions_are_inserted_modified_and_deleted() {
    let mut session = Session::start().await;
    let mut deprecated_port = clone_session(4, &[]);
    deprecated_port.replicas.push(Replica {
        instance: 2,
        backup_replicas: Vec::new(),
        port_kind: Some(replica::PortKind::EgressPort(12)),
    });
    session
        .write_ok(vec![
            clone_update(update::Type::Insert, clone_session(3, &[(1, 0), (2, 1)])),
            clone_update(update::Type::Insert, deprecated_port.clone()),
        ])
        .await;
    let mut modified = clone_session(3, &[(7, 0)]);
    modified.packet_length_bytes = 128;
    modified.class_of_service = 2;
    session
        .write_ok(vec![clone_update(update::Type::Modify, modified.clone())])
        .await;
    let read = session
        .read_ok(vec![clone_session_entity(clone_session(0, &[]))])
        .await;
    let mut sessions: Vec<_> = read
        .into_iter()
        .map(|e| match e.entity {
            Some(entity::Entity::PacketReplicationEngineEntry(PacketReplicationEngineEntry {
                r#type: Some(packet_replication_engine_entry::Type::CloneSessionEntry(s)),
            })) => s,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    sessions.sort_by_key(|s| s.session_id);
    assert_eq!(sessions, vec![modified, deprecated_port]);

    session
        .write_ok(vec![clone_update(
            update::Type::Delete,
            clone_session(3, &[]),
        )])
        .await;
    let left = session
        .read_ok(vec![clone_session_entity(clone_session(0, &[]))])
        .await;
    assert_eq!(left.len(), 1);
}

#[tokio::test]
async fn an_empty_batch_succeeds() {
    let mut session = Session::start().await;
    session.write_ok(Vec::new()).await;
    assert!(session.table_entries().await.is_empty());
}

#[tokio::test]
async fn unknown_atomicity_is_invalid_argument_for_the_batch() {
    let mut session = Session::start().await;
    let status = session
        .client
        .write(umbra_proto::p4::v1::WriteRequest {
            device_id: crate::harness::DEVICE_ID,
            election_id: Some(crate::harness::uint128(crate::harness::PRIMARY_ID)),
            updates: vec![insert(select(1, 1))],
            atomicity: 42,
            ..Default::default()
        })
        .await
        .expect_err("unknown atomicity");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        crate::harness::describe(&status)
    );
    assert!(
        status.details().is_empty(),
        "an RPC-wide error carries no p4.v1.Errors"
    );
    assert!(session.table_entries().await.is_empty());
}
