//! Conversions between the named entities of this crate and the P4Runtime
//! messages, through a [`P4Schema`]. Encoding fails on names the schema does
//! not have (an entity built for another P4Info); decoding fails on ids it
//! does not have (a switch running another program), as
//! [`P4rtError::Decode`].

use std::collections::BTreeMap;

use umbra_p4info::TableInfo;
use umbra_proto::p4::v1 as p4;

use crate::entity::{
    ActionCall, CloneSession, CounterData, DefaultAction, EntryKey, FieldMatch, PacketIn,
    PacketOut, Replica, TableEntry,
};
use crate::error::{EntityProblem, P4rtError, Result};
use crate::schema::{P4Schema, invalid};
use crate::value::Value;

/// One change to the switch state, for
/// [`write`](crate::P4RuntimeClient::write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Adds an entry (ALREADY_EXISTS if its key is installed).
    InsertEntry(TableEntry),
    /// Changes the action of an installed entry (NOT_FOUND if absent).
    ModifyEntry(TableEntry),
    /// Removes an installed entry (NOT_FOUND if absent).
    DeleteEntry(EntryKey),
    /// Sets the action a table runs on a miss (a MODIFY of its default
    /// entry, the only update the spec allows on it).
    SetDefaultAction(DefaultAction),
    /// Adds a clone session.
    InsertCloneSession(CloneSession),
    /// Replaces a clone session's replicas and truncation.
    ModifyCloneSession(CloneSession),
    /// Removes a clone session, by session id.
    DeleteCloneSession(u32),
}

/// What the switch does when an update of a batch fails (P4Runtime §12.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Atomicity {
    /// Apply every update that can be applied; report the others.
    #[default]
    ContinueOnError,
    /// Apply all updates or, if one fails, none.
    RollbackOnError,
    /// As `RollbackOnError`, and packets see either none or all of the
    /// batch. Servers that cannot do it answer UNIMPLEMENTED.
    DataplaneAtomic,
}

impl Atomicity {
    pub(crate) fn to_proto(self) -> p4::write_request::Atomicity {
        match self {
            Self::ContinueOnError => p4::write_request::Atomicity::ContinueOnError,
            Self::RollbackOnError => p4::write_request::Atomicity::RollbackOnError,
            Self::DataplaneAtomic => p4::write_request::Atomicity::DataplaneAtomic,
        }
    }
}

pub(crate) fn encode_update(schema: &P4Schema, update: &Update) -> Result<p4::Update> {
    use p4::update::Type;
    let (kind, entity) = match update {
        Update::InsertEntry(entry) => (Type::Insert, table_entity(encode_entry(schema, entry)?)),
        Update::ModifyEntry(entry) => (Type::Modify, table_entity(encode_entry(schema, entry)?)),
        Update::DeleteEntry(key) => (Type::Delete, table_entity(encode_key(schema, key)?)),
        Update::SetDefaultAction(default) => (
            Type::Modify,
            table_entity(encode_default_action(schema, default)?),
        ),
        Update::InsertCloneSession(session) => (Type::Insert, clone_entity(session)),
        Update::ModifyCloneSession(session) => (Type::Modify, clone_entity(session)),
        Update::DeleteCloneSession(id) => (
            Type::Delete,
            clone_entity(&CloneSession {
                session_id: *id,
                replicas: Vec::new(),
                class_of_service: 0,
                packet_length_bytes: 0,
            }),
        ),
    };
    Ok(p4::Update {
        r#type: kind.into(),
        entity: Some(entity),
    })
}

pub(crate) fn table_entity(entry: p4::TableEntry) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::TableEntry(entry)),
    }
}

pub(crate) fn clone_entity(session: &CloneSession) -> p4::Entity {
    clone_session_entity(encode_clone_session(session))
}

pub(crate) fn clone_session_entity(entry: p4::CloneSessionEntry) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::PacketReplicationEngineEntry(
            p4::PacketReplicationEngineEntry {
                r#type: Some(p4::packet_replication_engine_entry::Type::CloneSessionEntry(entry)),
            },
        )),
    }
}

fn table_of<'s>(schema: &'s P4Schema, name: &str, what: &str) -> Result<&'s TableInfo> {
    schema
        .resolve_table(name)
        .map_err(|p| invalid(format!("{what} of {name:?}"), p))
}

pub(crate) fn encode_key(schema: &P4Schema, key: &EntryKey) -> Result<p4::TableEntry> {
    let table = table_of(schema, &key.table, "entry")?;
    let mut fields = Vec::with_capacity(key.matches.len());
    // In P4Info order, which is what servers that compare messages verbatim
    // expect.
    for info in &table.match_fields {
        let Some(m) = key.matches.get(&info.name) else {
            continue;
        };
        use p4::field_match::{Exact, FieldMatchType, Lpm, Optional, Range, Ternary};
        let kind = match m {
            FieldMatch::Exact { value } => FieldMatchType::Exact(Exact {
                value: value.as_bytes().to_vec(),
            }),
            FieldMatch::Ternary { value, mask } => FieldMatchType::Ternary(Ternary {
                value: value.as_bytes().to_vec(),
                mask: mask.as_bytes().to_vec(),
            }),
            FieldMatch::Lpm { value, prefix_len } => FieldMatchType::Lpm(Lpm {
                value: value.as_bytes().to_vec(),
                prefix_len: *prefix_len,
            }),
            FieldMatch::Range { low, high } => FieldMatchType::Range(Range {
                low: low.as_bytes().to_vec(),
                high: high.as_bytes().to_vec(),
            }),
            FieldMatch::Optional { value } => FieldMatchType::Optional(Optional {
                value: value.as_bytes().to_vec(),
            }),
        };
        fields.push(p4::FieldMatch {
            field_id: info.id,
            field_match_type: Some(kind),
        });
    }
    if let Some(unknown) = key
        .matches
        .keys()
        .find(|name| table.match_field(name).is_err())
    {
        return Err(invalid(
            format!("entry of {:?}", key.table),
            EntityProblem::UnknownMatchField {
                table: table.name.clone(),
                field: unknown.clone(),
                known: table.match_fields.iter().map(|f| f.name.clone()).collect(),
            },
        ));
    }
    Ok(p4::TableEntry {
        table_id: table.id,
        r#match: fields,
        priority: key.priority,
        ..p4::TableEntry::default()
    })
}

pub(crate) fn encode_entry(schema: &P4Schema, entry: &TableEntry) -> Result<p4::TableEntry> {
    let mut proto = encode_key(schema, &entry.key)?;
    proto.action = Some(p4::TableAction {
        r#type: Some(p4::table_action::Type::Action(encode_action(
            schema,
            &entry.action,
        )?)),
    });
    Ok(proto)
}

pub(crate) fn encode_default_action(
    schema: &P4Schema,
    default: &DefaultAction,
) -> Result<p4::TableEntry> {
    let table = table_of(schema, &default.table, "default action")?;
    Ok(p4::TableEntry {
        table_id: table.id,
        is_default_action: true,
        action: Some(p4::TableAction {
            r#type: Some(p4::table_action::Type::Action(encode_action(
                schema,
                &default.action,
            )?)),
        }),
        ..p4::TableEntry::default()
    })
}

fn encode_action(schema: &P4Schema, call: &ActionCall) -> Result<p4::Action> {
    let action = schema
        .resolve_action(&call.action)
        .map_err(|p| invalid(format!("action {:?}", call.action), p))?;
    let mut params = Vec::with_capacity(call.params.len());
    for info in &action.params {
        if let Some(value) = call.params.get(&info.name) {
            params.push(p4::action::Param {
                param_id: info.id,
                value: value.as_bytes().to_vec(),
            });
        }
    }
    if let Some(unknown) = call.params.keys().find(|n| action.param(n).is_err()) {
        return Err(invalid(
            format!("action {:?}", call.action),
            EntityProblem::UnknownParam {
                action: action.name.clone(),
                param: unknown.clone(),
                known: action.params.iter().map(|p| p.name.clone()).collect(),
            },
        ));
    }
    Ok(p4::Action {
        action_id: action.id,
        params,
    })
}

pub(crate) fn encode_clone_session(session: &CloneSession) -> p4::CloneSessionEntry {
    p4::CloneSessionEntry {
        session_id: session.session_id,
        replicas: session
            .replicas
            .iter()
            .map(|r| p4::Replica {
                // `egress_port` (deprecated since 1.4 in favour of the
                // `port` bytestring) is what every server understands.
                #[allow(deprecated)]
                port_kind: Some(p4::replica::PortKind::EgressPort(r.port)),
                instance: r.instance,
                backup_replicas: Vec::new(),
            })
            .collect(),
        class_of_service: session.class_of_service,
        packet_length_bytes: session.packet_length_bytes,
    }
}

pub(crate) fn decode_clone_session(entry: &p4::CloneSessionEntry) -> Result<CloneSession> {
    let mut replicas = Vec::with_capacity(entry.replicas.len());
    for replica in &entry.replicas {
        #[allow(deprecated)]
        let port = match &replica.port_kind {
            Some(p4::replica::PortKind::EgressPort(port)) => *port,
            Some(p4::replica::PortKind::Port(bytes)) => Value::from_be_bytes(bytes)
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| {
                    P4rtError::Decode(format!(
                        "clone session {}: replica port {bytes:02x?} is not a port number",
                        entry.session_id
                    ))
                })?,
            None => {
                return Err(P4rtError::Decode(format!(
                    "clone session {}: replica without a port",
                    entry.session_id
                )));
            }
        };
        replicas.push(Replica {
            port,
            instance: replica.instance,
        });
    }
    replicas.sort_unstable();
    Ok(CloneSession {
        session_id: entry.session_id,
        replicas,
        class_of_service: entry.class_of_service,
        packet_length_bytes: entry.packet_length_bytes,
    })
}

/// What a read table entry is: a regular entry or a table's default entry.
#[derive(Debug)]
pub(crate) enum DecodedEntry {
    Entry(TableEntry),
    Default(DefaultAction),
}

pub(crate) fn decode_table_entry(
    schema: &P4Schema,
    proto: &p4::TableEntry,
) -> Result<DecodedEntry> {
    let table = schema
        .table_by_id(proto.table_id)
        .ok_or_else(|| P4rtError::Decode(format!("unknown table id {:#010x}", proto.table_id)))?;
    let action = match proto.action.as_ref().and_then(|a| a.r#type.as_ref()) {
        Some(p4::table_action::Type::Action(action)) => decode_action(schema, action)?,
        Some(_) => {
            return Err(P4rtError::Decode(format!(
                "entry of {:?} uses an action profile, which this client does not handle",
                table.name
            )));
        }
        None => {
            return Err(P4rtError::Decode(format!(
                "entry of {:?} has no action",
                table.name
            )));
        }
    };
    if proto.is_default_action {
        return Ok(DecodedEntry::Default(DefaultAction {
            table: table.name.clone(),
            action,
        }));
    }
    let mut matches = BTreeMap::new();
    for field in &proto.r#match {
        let info = table.match_field_by_id(field.field_id).ok_or_else(|| {
            P4rtError::Decode(format!(
                "table {:?} has no match field id {}",
                table.name, field.field_id
            ))
        })?;
        use p4::field_match::FieldMatchType as T;
        let m = match &field.field_match_type {
            Some(T::Exact(e)) => FieldMatch::Exact {
                value: Value::from_be_bytes(&e.value),
            },
            Some(T::Ternary(t)) => FieldMatch::Ternary {
                value: Value::from_be_bytes(&t.value),
                mask: Value::from_be_bytes(&t.mask),
            },
            Some(T::Lpm(l)) => FieldMatch::Lpm {
                value: Value::from_be_bytes(&l.value),
                prefix_len: l.prefix_len,
            },
            Some(T::Range(r)) => FieldMatch::Range {
                low: Value::from_be_bytes(&r.low),
                high: Value::from_be_bytes(&r.high),
            },
            Some(T::Optional(o)) => FieldMatch::Optional {
                value: Value::from_be_bytes(&o.value),
            },
            Some(T::Other(_)) | None => {
                return Err(P4rtError::Decode(format!(
                    "match field {:?} of table {:?} has a match kind this client does not handle",
                    info.name, table.name
                )));
            }
        };
        matches.insert(info.name.clone(), m);
    }
    Ok(DecodedEntry::Entry(TableEntry {
        key: EntryKey {
            table: table.name.clone(),
            matches,
            priority: proto.priority,
        },
        action,
    }))
}

pub(crate) fn decode_action(schema: &P4Schema, proto: &p4::Action) -> Result<ActionCall> {
    let action = schema
        .action_by_id(proto.action_id)
        .ok_or_else(|| P4rtError::Decode(format!("unknown action id {:#010x}", proto.action_id)))?;
    let mut params = BTreeMap::new();
    for param in &proto.params {
        let info = action.param_by_id(param.param_id).ok_or_else(|| {
            P4rtError::Decode(format!(
                "action {:?} has no parameter id {}",
                action.name, param.param_id
            ))
        })?;
        params.insert(info.name.clone(), Value::from_be_bytes(&param.value));
    }
    Ok(ActionCall {
        action: action.name.clone(),
        params,
    })
}

/// The default action `table` starts with, from the P4Info
/// (`initial_default_action`), if the P4Info says.
pub(crate) fn initial_default_action(schema: &P4Schema, table: &TableInfo) -> Option<ActionCall> {
    let initial = table.initial_default_action.as_ref()?;
    let action = decode_action(
        schema,
        &p4::Action {
            action_id: initial.action_id,
            params: initial
                .arguments
                .iter()
                .map(|a| p4::action::Param {
                    param_id: a.param_id,
                    value: a.value.clone(),
                })
                .collect(),
        },
    )
    .ok()?;
    Some(action)
}

pub(crate) fn encode_packet_out(schema: &P4Schema, packet: &PacketOut) -> Result<p4::PacketOut> {
    let header = schema.packet_out_header().ok_or_else(|| {
        invalid(
            "packet-out".into(),
            EntityProblem::NoControllerHeader("packet_out"),
        )
    })?;
    let mut metadata = Vec::with_capacity(header.fields.len());
    for field in &header.fields {
        let value = packet
            .metadata
            .get(&field.name)
            .cloned()
            .unwrap_or_else(|| Value::from(0u8));
        metadata.push(p4::PacketMetadata {
            metadata_id: field.id,
            value: value.as_bytes().to_vec(),
        });
    }
    Ok(p4::PacketOut {
        payload: packet.payload.clone(),
        metadata,
    })
}

pub(crate) fn decode_packet_in(schema: Option<&P4Schema>, packet: p4::PacketIn) -> PacketIn {
    let header = schema.and_then(P4Schema::packet_in_header);
    let metadata = packet
        .metadata
        .iter()
        .filter_map(|m| {
            let field = header?.field_by_id(m.metadata_id)?;
            Some((field.name.clone(), Value::from_be_bytes(&m.value)))
        })
        .collect();
    PacketIn {
        payload: packet.payload,
        metadata,
    }
}

pub(crate) fn decode_counter_data(data: Option<&p4::CounterData>) -> CounterData {
    let data = data.copied().unwrap_or_default();
    CounterData {
        packets: u64::try_from(data.packet_count).unwrap_or(0),
        bytes: u64::try_from(data.byte_count).unwrap_or(0),
    }
}

pub(crate) fn encode_counter_data(data: CounterData) -> p4::CounterData {
    p4::CounterData {
        packet_count: i64::try_from(data.packets).unwrap_or(i64::MAX),
        byte_count: i64::try_from(data.bytes).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::umbra_schema;

    #[test]
    fn entries_round_trip_through_the_wire_form() {
        let schema = umbra_schema();
        let entry = schema
            .table("device_portmap")
            .exact("device", 2u8)
            .exact("direction", 1u8)
            .action("steer_to_port")
            .param("port", 300u16)
            .build()
            .unwrap();
        let mut proto = encode_entry(&schema, &entry).unwrap();
        // Ids come from the P4Info, not from this crate.
        let p4info_table = &schema.p4info().tables[2];
        assert_eq!(proto.table_id, p4info_table.preamble.as_ref().unwrap().id);
        assert_eq!(proto.r#match.len(), 2);
        assert_eq!(proto.r#match[0].field_id, 1);
        // A switch answering with padded bytestrings decodes to the same
        // entry.
        if let Some(p4::field_match::FieldMatchType::Exact(e)) =
            &mut proto.r#match[0].field_match_type
        {
            e.value = vec![0, 0, 2];
        }
        let DecodedEntry::Entry(back) = decode_table_entry(&schema, &proto).unwrap() else {
            panic!("decoded as a default entry");
        };
        assert_eq!(back, entry);
    }

    #[test]
    fn clone_sessions_send_egress_port_and_accept_both_port_kinds() {
        let session = CloneSession::builder(9)
            .replica(4, 1)
            .packet_length_bytes(64)
            .build()
            .unwrap();
        let mut proto = encode_clone_session(&session);
        #[allow(deprecated)]
        {
            assert_eq!(
                proto.replicas[0].port_kind,
                Some(p4::replica::PortKind::EgressPort(4))
            );
        }
        assert_eq!(decode_clone_session(&proto).unwrap(), session);
        proto.replicas[0].port_kind = Some(p4::replica::PortKind::Port(vec![0, 4]));
        assert_eq!(decode_clone_session(&proto).unwrap(), session);
        proto.replicas[0].port_kind = Some(p4::replica::PortKind::Port(vec![1; 9]));
        assert!(matches!(
            decode_clone_session(&proto),
            Err(P4rtError::Decode(_))
        ));
    }

    #[test]
    fn unknown_ids_do_not_decode() {
        let schema = umbra_schema();
        let proto = p4::TableEntry {
            table_id: 0x0200_0fff,
            ..p4::TableEntry::default()
        };
        let err = decode_table_entry(&schema, &proto).unwrap_err();
        assert!(
            err.to_string().contains("unknown table id 0x02000fff"),
            "{err}"
        );
    }

    #[test]
    fn initial_default_actions_come_from_the_p4info() {
        let schema = umbra_schema();
        let table = schema.resolve_table("mirror_sampling").unwrap();
        let initial = initial_default_action(&schema, table).unwrap();
        assert_eq!(initial.name(), "UmbraIngress.no_sampling");
    }

    #[test]
    fn packet_io_metadata_by_name() {
        let schema = umbra_schema();
        let packet = schema
            .packet_out(vec![0xaa; 14])
            .metadata("egress_port", 7u16)
            .build()
            .unwrap();
        let proto = encode_packet_out(&schema, &packet).unwrap();
        assert_eq!(proto.metadata.len(), 2);
        assert_eq!(proto.metadata[0].value, vec![7]);

        let packet_in = decode_packet_in(
            Some(&schema),
            p4::PacketIn {
                payload: vec![1, 2],
                metadata: vec![p4::PacketMetadata {
                    metadata_id: 1,
                    value: vec![0x01, 0x00],
                }],
            },
        );
        assert_eq!(
            packet_in.metadata("ingress_port").unwrap().as_u64(),
            Some(256)
        );
    }
}
