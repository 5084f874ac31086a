//! `umbra.p4` as P4Runtime sees it: validation of P4Runtime entities against
//! the committed P4Info (spec §9 error codes) and their translation to the
//! typed tables of `umbra-pipeline`, and back for reads.
//!
//! Every id comes from the committed P4Info, looked up by the *names* of the
//! program's objects; the P4Info was checked to be `umbra.p4`'s before it was
//! committed, so the lookups cannot miss.

use std::collections::HashMap;

use tonic::Code;
use umbra_p4info::{ControllerHeaderInfo, P4Info, P4InfoIndex, TableInfo};
use umbra_pipeline::{
    CloneSession, CounterData as PipelineCounterData, DevicePortmapAction, DevicePortmapKey,
    MirrorSamplingAction, MirrorTruncateAction, PortClassifyAction, Replica, ServiceSelectorAction,
    Tables,
};
use umbra_proto::p4::v1::{
    self as p4, CloneSessionEntry, CounterData, FieldMatch, PacketMetadata, TableEntry,
    field_match, replica, table_action,
};

use crate::codec;

/// A refused entity: the canonical code the spec gives the problem and a
/// message for the controller. Becomes one `p4.v1.Error` of a Write answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityError {
    /// gRPC canonical code.
    pub code: Code,
    /// What is wrong, naming the object by name.
    pub message: String,
}

impl EntityError {
    /// An error with this code.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An INVALID_ARGUMENT error: the client sent something malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }
}

/// Result of validating or applying one entity.
pub type EntityResult<T> = std::result::Result<T, EntityError>;

/// The tables of `umbra.p4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableKind {
    /// `UmbraIngress.port_classify`.
    PortClassify,
    /// `UmbraIngress.service_selector`.
    ServiceSelector,
    /// `UmbraIngress.device_portmap`.
    DevicePortmap,
    /// `UmbraIngress.mirror_sampling`.
    MirrorSampling,
    /// `UmbraEgress.mirror_truncate`.
    MirrorTruncate,
}

impl TableKind {
    const ALL: [(TableKind, &'static str); 5] = [
        (TableKind::PortClassify, "UmbraIngress.port_classify"),
        (TableKind::ServiceSelector, "UmbraIngress.service_selector"),
        (TableKind::DevicePortmap, "UmbraIngress.device_portmap"),
        (TableKind::MirrorSampling, "UmbraIngress.mirror_sampling"),
        (TableKind::MirrorTruncate, "UmbraEgress.mirror_truncate"),
    ];
}

/// The actions of `umbra.p4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ActionKind {
    SetService,
    ForwardToPort,
    PuntToCpu,
    Drop,
    SetActiveDevice,
    SteerToPort,
    SamplePerPacket,
    SamplePerFlow,
    NoSampling,
    TruncateMirror,
    NoTruncate,
}

impl ActionKind {
    const ALL: [(ActionKind, &'static str); 11] = [
        (ActionKind::SetService, "UmbraIngress.set_service"),
        (ActionKind::ForwardToPort, "UmbraIngress.forward_to_port"),
        (ActionKind::PuntToCpu, "UmbraIngress.punt_to_cpu"),
        (ActionKind::Drop, "UmbraIngress.drop"),
        (
            ActionKind::SetActiveDevice,
            "UmbraIngress.set_active_device",
        ),
        (ActionKind::SteerToPort, "UmbraIngress.steer_to_port"),
        (
            ActionKind::SamplePerPacket,
            "UmbraIngress.sample_per_packet",
        ),
        (ActionKind::SamplePerFlow, "UmbraIngress.sample_per_flow"),
        (ActionKind::NoSampling, "UmbraIngress.no_sampling"),
        (ActionKind::TruncateMirror, "UmbraEgress.truncate_mirror"),
        (ActionKind::NoTruncate, "UmbraEgress.no_truncate"),
    ];
}

/// The indirect counters of `umbra.p4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterKind {
    /// `UmbraIngress.port_rx`, indexed by ingress port.
    PortRx,
    /// `UmbraEgress.port_tx`, indexed by egress port.
    PortTx,
}

/// One validated table key, in match-field order of the P4Info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey {
    /// The table.
    pub table: TableKind,
    /// The table's P4Runtime id.
    pub table_id: u32,
    /// The key in the pipeline's typed form.
    pub key: KeyValue,
}

/// A table key of one of the program's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    /// A 9-bit port (port_classify, mirror_sampling, mirror_truncate).
    Port(u16),
    /// A 16-bit service id (service_selector).
    Service(u16),
    /// (device, direction) (device_portmap).
    DeviceDirection(u8, u8),
}

/// An action call of one of the program's tables in typed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedAction {
    /// An action of port_classify.
    PortClassify(PortClassifyAction),
    /// An action of service_selector.
    ServiceSelector(ServiceSelectorAction),
    /// An action of device_portmap.
    DevicePortmap(DevicePortmapAction),
    /// An action of mirror_sampling.
    MirrorSampling(MirrorSamplingAction),
    /// An action of mirror_truncate.
    MirrorTruncate(MirrorTruncateAction),
}

/// `umbra.p4`'s P4Info, indexed for request handling: the generic index
/// plus which id is which object of the program.
#[derive(Debug, Clone)]
pub struct Program {
    p4info: P4Info,
    index: P4InfoIndex,
    table_kinds: HashMap<u32, TableKind>,
    table_ids: HashMap<TableKind, u32>,
    action_kinds: HashMap<u32, ActionKind>,
    action_ids: HashMap<ActionKind, u32>,
    counters: HashMap<u32, CounterKind>,
    packet_in: ControllerHeaderInfo,
    packet_out: ControllerHeaderInfo,
}

impl Program {
    /// Indexes a P4Info that was already compared equal to `umbra.p4`'s.
    ///
    /// # Errors
    /// A message naming the object of `umbra.p4` that the P4Info lacks, or
    /// its inconsistencies.
    pub fn new(p4info: P4Info) -> Result<Self, String> {
        let index = P4InfoIndex::new(&p4info).map_err(|e| e.to_string())?;
        let mut table_kinds = HashMap::new();
        let mut table_ids = HashMap::new();
        for (kind, name) in TableKind::ALL {
            let id = index.table(name).map_err(|e| e.to_string())?.id;
            table_kinds.insert(id, kind);
            table_ids.insert(kind, id);
        }
        let mut action_kinds = HashMap::new();
        let mut action_ids = HashMap::new();
        for (kind, name) in ActionKind::ALL {
            let id = index.action(name).map_err(|e| e.to_string())?.id;
            action_kinds.insert(id, kind);
            action_ids.insert(kind, id);
        }
        let mut counters = HashMap::new();
        for (kind, name) in [
            (CounterKind::PortRx, "UmbraIngress.port_rx"),
            (CounterKind::PortTx, "UmbraEgress.port_tx"),
        ] {
            counters.insert(index.counter(name).map_err(|e| e.to_string())?.id, kind);
        }
        // A P4Info may list metadata in any order; the bits on the wire are
        // in the order the program's header declares its fields.
        let header = |name: &str, layout: [&str; 2]| {
            let mut header = index
                .controller_header(name)
                .cloned()
                .map_err(|e| e.to_string())?;
            header
                .fields
                .sort_by_key(|f| layout.iter().position(|n| *n == f.name));
            Ok::<_, String>(header)
        };
        let packet_in = header("packet_in", ["ingress_port", "_pad"])?;
        let packet_out = header("packet_out", ["egress_port", "_pad"])?;
        Ok(Self {
            p4info,
            index,
            table_kinds,
            table_ids,
            action_kinds,
            action_ids,
            counters,
            packet_in,
            packet_out,
        })
    }

    /// The P4Info this program was built from.
    pub fn p4info(&self) -> &P4Info {
        &self.p4info
    }

    /// Every table id, in a stable order.
    pub fn table_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.table_kinds.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Every indirect counter id, in a stable order.
    pub fn counter_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.counters.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The indirect counter with this id.
    ///
    /// # Errors
    /// NOT_FOUND for an id that is not a counter of the program.
    pub fn counter(&self, id: u32) -> EntityResult<CounterKind> {
        self.counters
            .get(&id)
            .copied()
            .ok_or_else(|| EntityError::new(Code::NotFound, format!("no counter has id {id}")))
    }

    fn table(&self, table_id: u32) -> EntityResult<(TableKind, &TableInfo)> {
        if table_id == 0 {
            return Err(EntityError::invalid(
                "table_id 0 is a wildcard, only valid in Read",
            ));
        }
        match (
            self.table_kinds.get(&table_id),
            self.index.table_by_id(table_id),
        ) {
            (Some(kind), Ok(info)) => Ok((*kind, info)),
            _ => Err(EntityError::new(
                Code::NotFound,
                format!("no table has id {table_id}"),
            )),
        }
    }

    /// Whether a table id names a table with a direct counter.
    pub fn has_direct_counter(&self, table_id: u32) -> bool {
        self.index
            .table_by_id(table_id)
            .is_ok_and(|t| t.direct_counter_id.is_some())
    }

    /// Validates the match of a (non-default) table entry and returns its key.
    ///
    /// # Errors
    /// The spec's codes: NOT_FOUND for an unknown table, INVALID_ARGUMENT for
    /// unknown, duplicate, missing or non-exact match fields and a non-zero
    /// priority, OUT_OF_RANGE for a value wider than its field.
    pub fn entry_key(&self, entry: &TableEntry) -> EntityResult<EntryKey> {
        let (kind, table) = self.table(entry.table_id)?;
        if entry.priority != 0 {
            return Err(EntityError::invalid(format!(
                "table {:?} has only exact match fields, so priority must be 0 (got {})",
                table.name, entry.priority
            )));
        }
        let mut values: Vec<Option<u64>> = vec![None; table.match_fields.len()];
        for FieldMatch {
            field_id,
            field_match_type,
        } in &entry.r#match
        {
            let position = table
                .match_fields
                .iter()
                .position(|f| f.id == *field_id)
                .ok_or_else(|| {
                    EntityError::invalid(format!(
                        "table {:?} has no match field with id {field_id}",
                        table.name
                    ))
                })?;
            let field = &table.match_fields[position];
            if values[position].is_some() {
                return Err(EntityError::invalid(format!(
                    "match field {:?} of table {:?} is given twice",
                    field.name, table.name
                )));
            }
            let value = match field_match_type {
                Some(field_match::FieldMatchType::Exact(exact)) => {
                    codec::decode(&exact.value, field.bitwidth).map_err(|e| {
                        EntityError::new(
                            e.code(),
                            format!(
                                "match field {:?} of table {:?}: {e}",
                                field.name, table.name
                            ),
                        )
                    })?
                }
                Some(_) => {
                    return Err(EntityError::invalid(format!(
                        "match field {:?} of table {:?} is EXACT; other match kinds are invalid",
                        field.name, table.name
                    )));
                }
                None => {
                    return Err(EntityError::invalid(format!(
                        "match field {:?} of table {:?} has no value",
                        field.name, table.name
                    )));
                }
            };
            values[position] = Some(value);
        }
        let missing: Vec<&str> = table
            .match_fields
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(f, _)| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(EntityError::invalid(format!(
                "table {:?}: exact match field(s) {missing:?} missing (exact fields cannot be omitted)",
                table.name
            )));
        }
        // Fields are taken by name, never by position: a P4Info may list
        // them in any order. Widths are checked above, so the narrowing
        // casts are exact.
        let value = |name: &str| by_name(&table.match_fields, &values, |f| &f.name, name);
        let key = match kind {
            TableKind::ServiceSelector => KeyValue::Service(value("service_id") as u16),
            TableKind::DevicePortmap => {
                KeyValue::DeviceDirection(value("device") as u8, value("direction") as u8)
            }
            TableKind::PortClassify | TableKind::MirrorSampling => {
                KeyValue::Port(value("ingress_port") as u16)
            }
            TableKind::MirrorTruncate => KeyValue::Port(value("egress_port") as u16),
        };
        Ok(EntryKey {
            table: kind,
            table_id: entry.table_id,
            key,
        })
    }

    /// Validates the action of an entry of `table_id` and types it.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a missing action, an action profile action, an
    /// action the table does not have, unknown, duplicate or missing
    /// params; NOT_FOUND for an unknown action id; OUT_OF_RANGE for a value
    /// too wide.
    pub fn entry_action(
        &self,
        table_id: u32,
        action: Option<&p4::TableAction>,
    ) -> EntityResult<TypedAction> {
        let (table_kind, table) = self.table(table_id)?;
        let action = match action.and_then(|a| a.r#type.as_ref()) {
            Some(table_action::Type::Action(action)) => action,
            Some(_) => {
                return Err(EntityError::invalid(format!(
                    "table {:?} has no action profile; give a direct action",
                    table.name
                )));
            }
            None => {
                return Err(EntityError::invalid(format!(
                    "an entry of table {:?} needs an action",
                    table.name
                )));
            }
        };
        let (kind, info) = match (
            self.action_kinds.get(&action.action_id),
            self.index.action_by_id(action.action_id),
        ) {
            (Some(kind), Ok(info)) => (*kind, info),
            _ => {
                return Err(EntityError::invalid(format!(
                    "no action has id {}",
                    action.action_id
                )));
            }
        };
        if !table.action_ids.contains(&action.action_id) {
            return Err(EntityError::invalid(format!(
                "action {:?} is not an action of table {:?}",
                info.name, table.name
            )));
        }
        let mut values: Vec<Option<u64>> = vec![None; info.params.len()];
        for param in &action.params {
            let position = info
                .params
                .iter()
                .position(|p| p.id == param.param_id)
                .ok_or_else(|| {
                    EntityError::invalid(format!(
                        "action {:?} has no param with id {}",
                        info.name, param.param_id
                    ))
                })?;
            let field = &info.params[position];
            if values[position].is_some() {
                return Err(EntityError::invalid(format!(
                    "param {:?} of action {:?} is given twice",
                    field.name, info.name
                )));
            }
            values[position] = Some(codec::decode(&param.value, field.bitwidth).map_err(|e| {
                EntityError::new(
                    e.code(),
                    format!("param {:?} of action {:?}: {e}", field.name, info.name),
                )
            })?);
        }
        let missing: Vec<&str> = info
            .params
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(f, _)| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(EntityError::invalid(format!(
                "action {:?}: param(s) {missing:?} missing",
                info.name
            )));
        }
        // Params are taken by name, never by position (see `entry_key`).
        let p = |name: &str| by_name(&info.params, &values, |f| &f.name, name);
        Ok(match kind {
            ActionKind::SetService => TypedAction::PortClassify(PortClassifyAction::SetService {
                service_id: p("service_id") as u16,
                direction: p("direction") as u8,
            }),
            ActionKind::ForwardToPort => {
                TypedAction::PortClassify(PortClassifyAction::ForwardToPort {
                    port: p("port") as u16,
                })
            }
            ActionKind::PuntToCpu => TypedAction::PortClassify(PortClassifyAction::PuntToCpu),
            ActionKind::Drop => match table_kind {
                TableKind::PortClassify => TypedAction::PortClassify(PortClassifyAction::Drop),
                TableKind::ServiceSelector => {
                    TypedAction::ServiceSelector(ServiceSelectorAction::Drop)
                }
                TableKind::DevicePortmap => TypedAction::DevicePortmap(DevicePortmapAction::Drop),
                TableKind::MirrorSampling | TableKind::MirrorTruncate => {
                    unreachable!("the P4Info gives drop only to the steering tables")
                }
            },
            ActionKind::SetActiveDevice => {
                TypedAction::ServiceSelector(ServiceSelectorAction::SetActiveDevice {
                    device: p("device") as u8,
                })
            }
            ActionKind::SteerToPort => {
                TypedAction::DevicePortmap(DevicePortmapAction::SteerToPort {
                    port: p("port") as u16,
                })
            }
            ActionKind::SamplePerPacket => {
                TypedAction::MirrorSampling(MirrorSamplingAction::SamplePerPacket {
                    one_in_n: p("one_in_n") as u32,
                    session: p("session") as u32,
                })
            }
            ActionKind::SamplePerFlow => {
                TypedAction::MirrorSampling(MirrorSamplingAction::SamplePerFlow {
                    threshold: p("threshold") as u32,
                    session: p("session") as u32,
                })
            }
            ActionKind::NoSampling => TypedAction::MirrorSampling(MirrorSamplingAction::NoSampling),
            ActionKind::TruncateMirror => {
                TypedAction::MirrorTruncate(MirrorTruncateAction::TruncateMirror {
                    length: p("length") as u32,
                })
            }
            ActionKind::NoTruncate => TypedAction::MirrorTruncate(MirrorTruncateAction::NoTruncate),
        })
    }

    /// The P4Runtime form of a typed action (canonical bytestrings).
    pub fn action_message(&self, action: TypedAction) -> p4::TableAction {
        let (kind, params): (ActionKind, Vec<(&str, u64)>) = match action {
            TypedAction::PortClassify(a) => match a {
                PortClassifyAction::SetService {
                    service_id,
                    direction,
                } => (
                    ActionKind::SetService,
                    vec![
                        ("service_id", service_id.into()),
                        ("direction", direction.into()),
                    ],
                ),
                PortClassifyAction::ForwardToPort { port } => {
                    (ActionKind::ForwardToPort, vec![("port", port.into())])
                }
                PortClassifyAction::PuntToCpu => (ActionKind::PuntToCpu, vec![]),
                PortClassifyAction::Drop => (ActionKind::Drop, vec![]),
            },
            TypedAction::ServiceSelector(a) => match a {
                ServiceSelectorAction::SetActiveDevice { device } => {
                    (ActionKind::SetActiveDevice, vec![("device", device.into())])
                }
                ServiceSelectorAction::Drop => (ActionKind::Drop, vec![]),
            },
            TypedAction::DevicePortmap(a) => match a {
                DevicePortmapAction::SteerToPort { port } => {
                    (ActionKind::SteerToPort, vec![("port", port.into())])
                }
                DevicePortmapAction::Drop => (ActionKind::Drop, vec![]),
            },
            TypedAction::MirrorSampling(a) => match a {
                MirrorSamplingAction::SamplePerPacket { one_in_n, session } => (
                    ActionKind::SamplePerPacket,
                    vec![("one_in_n", one_in_n.into()), ("session", session.into())],
                ),
                MirrorSamplingAction::SamplePerFlow { threshold, session } => (
                    ActionKind::SamplePerFlow,
                    vec![("threshold", threshold.into()), ("session", session.into())],
                ),
                MirrorSamplingAction::NoSampling => (ActionKind::NoSampling, vec![]),
            },
            TypedAction::MirrorTruncate(a) => match a {
                MirrorTruncateAction::TruncateMirror { length } => {
                    (ActionKind::TruncateMirror, vec![("length", length.into())])
                }
                MirrorTruncateAction::NoTruncate => (ActionKind::NoTruncate, vec![]),
            },
        };
        let action_id = self.action_ids[&kind];
        let info = self
            .index
            .action_by_id(action_id)
            .expect("every action kind was resolved at construction");
        p4::TableAction {
            r#type: Some(table_action::Type::Action(p4::Action {
                action_id,
                params: {
                    // In id order, whatever order the P4Info lists them in.
                    let mut params: Vec<p4::action::Param> = info
                        .params
                        .iter()
                        .map(|field| p4::action::Param {
                            param_id: field.id,
                            value: codec::encode(named(&params, &field.name)),
                        })
                        .collect();
                    params.sort_by_key(|p| p.param_id);
                    params
                },
            })),
        }
    }

    /// The P4Runtime match of a key (canonical bytestrings).
    pub fn match_message(&self, key: &EntryKey) -> Vec<FieldMatch> {
        let values: Vec<(&str, u64)> = match (key.table, key.key) {
            (TableKind::MirrorTruncate, KeyValue::Port(port)) => vec![("egress_port", port.into())],
            (_, KeyValue::Port(port)) => vec![("ingress_port", port.into())],
            (_, KeyValue::Service(service)) => vec![("service_id", service.into())],
            (_, KeyValue::DeviceDirection(device, direction)) => {
                vec![("device", device.into()), ("direction", direction.into())]
            }
        };
        let table = self
            .index
            .table_by_id(key.table_id)
            .expect("keys are built from known tables");
        let mut fields: Vec<FieldMatch> = table
            .match_fields
            .iter()
            .map(|field| FieldMatch {
                field_id: field.id,
                field_match_type: Some(field_match::FieldMatchType::Exact(field_match::Exact {
                    value: codec::encode(named(&values, &field.name)),
                })),
            })
            .collect();
        // In id order, whatever order the P4Info lists them in.
        fields.sort_by_key(|f| f.field_id);
        fields
    }

    /// Whether `action` belongs to table `kind` (a typed action of another
    /// table cannot come out of [`Self::entry_action`], but a default-action
    /// write is checked here too).
    fn action_fits(kind: TableKind, action: &TypedAction) -> bool {
        matches!(
            (kind, action),
            (TableKind::PortClassify, TypedAction::PortClassify(_))
                | (TableKind::ServiceSelector, TypedAction::ServiceSelector(_))
                | (TableKind::DevicePortmap, TypedAction::DevicePortmap(_))
                | (TableKind::MirrorSampling, TypedAction::MirrorSampling(_))
                | (TableKind::MirrorTruncate, TypedAction::MirrorTruncate(_))
        )
    }

    /// The kind of a table id.
    ///
    /// # Errors
    /// As [`Self::entry_key`] for the table id.
    pub fn table_kind(&self, table_id: u32) -> EntityResult<TableKind> {
        self.table(table_id).map(|(kind, _)| kind)
    }

    /// The name of a table id (for messages).
    pub fn table_name(&self, table_id: u32) -> &str {
        self.index
            .table_by_id(table_id)
            .map_or("?", |t| t.name.as_str())
    }

    /// The initial default action of a table, typed.
    pub fn initial_default(&self, table_id: u32) -> EntityResult<TypedAction> {
        let (_, table) = self.table(table_id)?;
        let action_id = table.default_action_id.ok_or_else(|| {
            EntityError::invalid(format!("table {:?} has no default action", table.name))
        })?;
        let action = p4::TableAction {
            r#type: Some(table_action::Type::Action(p4::Action {
                action_id,
                params: Vec::new(),
            })),
        };
        self.entry_action(table_id, Some(&action))
    }

    /// The id of table `kind`.
    pub fn table_id(&self, kind: TableKind) -> u32 {
        self.table_ids[&kind]
    }

    /// Decodes a PacketOut's metadata into the `packet_out` header bytes
    /// that `umbra.p4`'s parser expects on the CPU port.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for unknown, duplicate or missing metadata, or a
    /// value too wide.
    pub fn packet_out_header(&self, metadata: &[PacketMetadata]) -> EntityResult<Vec<u8>> {
        let mut values: Vec<Option<u64>> = vec![None; self.packet_out.fields.len()];
        for m in metadata {
            let position = self
                .packet_out
                .fields
                .iter()
                .position(|f| f.id == m.metadata_id)
                .ok_or_else(|| {
                    EntityError::invalid(format!(
                        "packet_out has no metadata with id {}",
                        m.metadata_id
                    ))
                })?;
            let field = &self.packet_out.fields[position];
            if values[position].is_some() {
                return Err(EntityError::invalid(format!(
                    "packet_out metadata {:?} given twice",
                    field.name
                )));
            }
            values[position] = Some(codec::decode(&m.value, field.bitwidth).map_err(|e| {
                EntityError::invalid(format!("packet_out metadata {:?}: {e}", field.name))
            })?);
        }
        // Padding fields may be omitted (they are zero); anything else not.
        let mut fields = Vec::with_capacity(self.packet_out.fields.len());
        for (field, value) in self.packet_out.fields.iter().zip(values) {
            match value {
                Some(value) => fields.push((field.bitwidth, value)),
                None if field.name.starts_with('_') => fields.push((field.bitwidth, 0)),
                None => {
                    return Err(EntityError::invalid(format!(
                        "packet_out metadata {:?} missing",
                        field.name
                    )));
                }
            }
        }
        Ok(pack_bits(&fields))
    }

    /// Splits a frame the pipeline sent to the CPU port into the `packet_in`
    /// metadata and the payload. `None` if the frame is shorter than the
    /// header (the pipeline never emits such a frame).
    pub fn packet_in(&self, frame: &[u8]) -> Option<(Vec<PacketMetadata>, Vec<u8>)> {
        let bits: u32 = self.packet_in.fields.iter().map(|f| f.bitwidth).sum();
        let len = bits.div_ceil(8) as usize;
        if frame.len() < len {
            return None;
        }
        let widths: Vec<u32> = self.packet_in.fields.iter().map(|f| f.bitwidth).collect();
        let values = unpack_bits(&frame[..len], &widths);
        let metadata = self
            .packet_in
            .fields
            .iter()
            .zip(values)
            // Every field, padding included, as bmv2 sends them.
            .map(|(field, value)| PacketMetadata {
                metadata_id: field.id,
                value: codec::encode(value),
            })
            .collect();
        Some((metadata, frame[len..].to_vec()))
    }
}

/// The value of the field `name` among validated `values` (in the order of
/// `fields`). The P4Info was compared to umbra.p4's by name, so every name
/// the program uses exists.
fn by_name<F>(
    fields: &[F],
    values: &[Option<u64>],
    name_of: impl Fn(&F) -> &String,
    name: &str,
) -> u64 {
    fields
        .iter()
        .zip(values)
        .find(|(field, _)| name_of(field) == name)
        .and_then(|(_, value)| *value)
        .expect("the committed P4Info has every field of umbra.p4, each validated")
}

/// The value named `name` in a typed entity's (name, value) list.
fn named(values: &[(&str, u64)], name: &str) -> u64 {
    values
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .expect("the committed P4Info has exactly umbra.p4's fields")
}

/// Packs fields of the given widths (MSB first, as a P4 header) into bytes.
fn pack_bits(fields: &[(u32, u64)]) -> Vec<u8> {
    let total: u32 = fields.iter().map(|(w, _)| w).sum();
    let mut acc: u128 = 0;
    for (width, value) in fields {
        acc = (acc << width) | u128::from(*value);
    }
    let len = total.div_ceil(8);
    acc <<= len * 8 - total;
    (0..len)
        .rev()
        .map(|i| (acc >> (i * 8)) as u8)
        .collect::<Vec<u8>>()
}

/// Unpacks fields of the given widths (MSB first) from bytes.
fn unpack_bits(bytes: &[u8], widths: &[u32]) -> Vec<u64> {
    let acc = bytes.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b));
    let total: u32 = widths.iter().sum();
    let mut shift = bytes.len() as u32 * 8 - total;
    let mut values: Vec<u64> = widths
        .iter()
        .rev()
        .map(|width| {
            let value = (acc >> shift) & ((1u128 << width) - 1);
            shift += width;
            value as u64
        })
        .collect();
    values.reverse();
    values
}

/// Applies typed operations to the pipeline's tables. Wraps the pipeline's
/// errors into the spec's codes.
pub struct TableWriter<'a> {
    /// The tables, under the pipeline's write lock.
    pub tables: &'a mut Tables,
}

/// The spec's code for a refusal by the pipeline.
pub fn pipeline_error(error: umbra_pipeline::PipelineError) -> EntityError {
    use umbra_pipeline::PipelineError as E;
    let code = match &error {
        E::EntryExists { .. } | E::CloneSessionExists { .. } => Code::AlreadyExists,
        E::EntryNotFound { .. } | E::CloneSessionNotFound { .. } => Code::NotFound,
        E::TableFull { .. } | E::TooManyCloneSessions { .. } => Code::ResourceExhausted,
        E::ValueOutOfRange { .. } | E::CounterIndexOutOfRange { .. } => Code::OutOfRange,
        _ => Code::InvalidArgument,
    };
    EntityError::new(code, error.to_string())
}

/// What an update does to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOp {
    /// Add an entry.
    Insert,
    /// Change an entry's action.
    Modify,
    /// Remove an entry.
    Delete,
}

impl TableWriter<'_> {
    /// Inserts, modifies or deletes one entry.
    ///
    /// # Errors
    /// ALREADY_EXISTS, NOT_FOUND, RESOURCE_EXHAUSTED as the spec says.
    pub fn apply(
        &mut self,
        op: TableOp,
        key: EntryKey,
        action: Option<TypedAction>,
    ) -> EntityResult<()> {
        let t = &mut *self.tables;
        macro_rules! run {
            ($table:ident, $k:expr, $variant:ident) => {{
                let k = $k;
                match (op, action) {
                    (TableOp::Insert, Some(TypedAction::$variant(a))) => t.$table.insert(k, a),
                    (TableOp::Modify, Some(TypedAction::$variant(a))) => t.$table.modify(k, a),
                    (TableOp::Delete, _) => t.$table.delete(k),
                    _ => {
                        return Err(EntityError::invalid(
                            "the action does not belong to the entry's table",
                        ));
                    }
                }
            }};
        }
        let result = match (key.table, key.key) {
            (TableKind::PortClassify, KeyValue::Port(p)) => run!(port_classify, p, PortClassify),
            (TableKind::ServiceSelector, KeyValue::Service(s)) => {
                run!(service_selector, s, ServiceSelector)
            }
            (TableKind::DevicePortmap, KeyValue::DeviceDirection(device, direction)) => run!(
                device_portmap,
                DevicePortmapKey { device, direction },
                DevicePortmap
            ),
            (TableKind::MirrorSampling, KeyValue::Port(p)) => {
                run!(mirror_sampling, p, MirrorSampling)
            }
            (TableKind::MirrorTruncate, KeyValue::Port(p)) => {
                run!(mirror_truncate, p, MirrorTruncate)
            }
            _ => unreachable!("keys are built for their table by Program::entry_key"),
        };
        result.map_err(pipeline_error)
    }

    /// Sets (or, with `None`, restores) the default action of a table.
    ///
    /// # Errors
    /// INVALID_ARGUMENT if the action is not one of the table's.
    pub fn set_default(
        &mut self,
        table: TableKind,
        action: Option<TypedAction>,
    ) -> EntityResult<()> {
        let t = &mut *self.tables;
        if let Some(action) = &action
            && !Program::action_fits(table, action)
        {
            return Err(EntityError::invalid(
                "the default action does not belong to the table",
            ));
        }
        let result = match (table, action) {
            (TableKind::PortClassify, Some(TypedAction::PortClassify(a))) => {
                t.port_classify.set_default_action(a)
            }
            (TableKind::ServiceSelector, Some(TypedAction::ServiceSelector(a))) => {
                t.service_selector.set_default_action(a)
            }
            (TableKind::DevicePortmap, Some(TypedAction::DevicePortmap(a))) => {
                t.device_portmap.set_default_action(a)
            }
            (TableKind::MirrorSampling, Some(TypedAction::MirrorSampling(a))) => {
                t.mirror_sampling.set_default_action(a)
            }
            (TableKind::MirrorTruncate, Some(TypedAction::MirrorTruncate(a))) => {
                t.mirror_truncate.set_default_action(a)
            }
            (TableKind::PortClassify, None) => {
                t.port_classify.reset_default_action();
                Ok(())
            }
            (TableKind::ServiceSelector, None) => {
                t.service_selector.reset_default_action();
                Ok(())
            }
            (TableKind::DevicePortmap, None) => {
                t.device_portmap.reset_default_action();
                Ok(())
            }
            (TableKind::MirrorSampling, None) => {
                t.mirror_sampling.reset_default_action();
                Ok(())
            }
            (TableKind::MirrorTruncate, None) => {
                t.mirror_truncate.reset_default_action();
                Ok(())
            }
            _ => unreachable!("checked by action_fits"),
        };
        result.map_err(pipeline_error)
    }

    /// Sets the direct counter of an entry.
    ///
    /// # Errors
    /// NOT_FOUND for a missing entry, INVALID_ARGUMENT for a table without a
    /// direct counter.
    pub fn set_direct_counter(&mut self, key: EntryKey, data: &CounterData) -> EntityResult<()> {
        let data = PipelineCounterData {
            packets: data.packet_count as u64,
            bytes: data.byte_count as u64,
        };
        let t = &*self.tables;
        let result = match key.key {
            KeyValue::Port(p) if key.table == TableKind::PortClassify => {
                t.port_classify.set_direct_counter(p, data)
            }
            KeyValue::DeviceDirection(device, direction) => t
                .device_portmap
                .set_direct_counter(DevicePortmapKey { device, direction }, data),
            _ => {
                return Err(EntityError::invalid(
                    "this table has no direct counter".to_owned(),
                ));
            }
        };
        result.map_err(pipeline_error)
    }
}

/// Reads the action and direct counter of an installed entry.
pub fn installed(tables: &Tables, key: &EntryKey) -> Option<(TypedAction, Option<CounterData>)> {
    fn counter(data: Option<PipelineCounterData>) -> Option<CounterData> {
        data.map(|d| CounterData {
            byte_count: d.bytes as i64,
            packet_count: d.packets as i64,
        })
    }
    match key.key {
        KeyValue::Port(p) => match key.table {
            TableKind::PortClassify => tables
                .port_classify
                .get(p)
                .ok()
                .map(|e| (TypedAction::PortClassify(e.action), counter(e.counter))),
            TableKind::MirrorSampling => tables
                .mirror_sampling
                .get(p)
                .ok()
                .map(|e| (TypedAction::MirrorSampling(e.action), None)),
            TableKind::MirrorTruncate => tables
                .mirror_truncate
                .get(p)
                .ok()
                .map(|e| (TypedAction::MirrorTruncate(e.action), None)),
            _ => None,
        },
        KeyValue::Service(s) => tables
            .service_selector
            .get(s)
            .ok()
            .map(|e| (TypedAction::ServiceSelector(e.action), None)),
        KeyValue::DeviceDirection(device, direction) => tables
            .device_portmap
            .get(DevicePortmapKey { device, direction })
            .ok()
            .map(|e| (TypedAction::DevicePortmap(e.action), counter(e.counter))),
    }
}

/// The current default action of a table.
pub fn default_action(tables: &Tables, table: TableKind) -> TypedAction {
    match table {
        TableKind::PortClassify => TypedAction::PortClassify(tables.port_classify.default_action()),
        TableKind::ServiceSelector => {
            TypedAction::ServiceSelector(tables.service_selector.default_action())
        }
        TableKind::DevicePortmap => {
            TypedAction::DevicePortmap(tables.device_portmap.default_action())
        }
        TableKind::MirrorSampling => {
            TypedAction::MirrorSampling(tables.mirror_sampling.default_action())
        }
        TableKind::MirrorTruncate => {
            TypedAction::MirrorTruncate(tables.mirror_truncate.default_action())
        }
    }
}

/// Validates a CloneSessionEntry and types it.
///
/// # Errors
/// INVALID_ARGUMENT for session id 0 or a replica without a port;
/// OUT_OF_RANGE for a port or instance too wide.
pub fn clone_session(entry: &CloneSessionEntry) -> EntityResult<CloneSession> {
    if entry.session_id == 0 {
        return Err(EntityError::invalid("clone session id 0 is not valid"));
    }
    let mut replicas = Vec::with_capacity(entry.replicas.len());
    for replica in &entry.replicas {
        #[allow(deprecated)]
        let port = match &replica.port_kind {
            Some(replica::PortKind::EgressPort(port)) => u64::from(*port),
            Some(replica::PortKind::Port(bytes)) => codec::decode(bytes, umbra_pipeline::PORT_BITS)
                .map_err(|e| {
                    EntityError::new(
                        e.code(),
                        format!("replica port of clone session {}: {e}", entry.session_id),
                    )
                })?,
            None => {
                return Err(EntityError::invalid(format!(
                    "a replica of clone session {} has no port",
                    entry.session_id
                )));
            }
        };
        if port > u64::from(umbra_pipeline::DROP_PORT) {
            return Err(EntityError::new(
                Code::OutOfRange,
                format!(
                    "replica port {port} of clone session {} does not fit in 9 bits",
                    entry.session_id
                ),
            ));
        }
        if replica.instance > u32::from(u16::MAX) {
            return Err(EntityError::invalid(format!(
                "replica instance {} of clone session {} does not fit in 16 bits (egress_rid)",
                replica.instance, entry.session_id
            )));
        }
        if !replica.backup_replicas.is_empty() {
            return Err(EntityError::new(
                Code::Unimplemented,
                "backup replicas are not supported by this switch",
            ));
        }
        replicas.push(Replica {
            egress_port: port as u16,
            instance: replica.instance as u16,
        });
    }
    Ok(CloneSession {
        session_id: entry.session_id,
        replicas,
        class_of_service: entry.class_of_service,
        packet_length_bytes: u32::try_from(entry.packet_length_bytes).map_err(|_| {
            EntityError::invalid(format!(
                "packet_length_bytes {} of clone session {} is negative",
                entry.packet_length_bytes, entry.session_id
            ))
        })?,
    })
}

/// A clone session as reads return it: replica ports in canonical form,
/// in whichever of the two port fields the client used.
pub fn canonical_clone_session(entry: &CloneSessionEntry) -> CloneSessionEntry {
    let mut entry = entry.clone();
    for replica in &mut entry.replicas {
        if let Some(replica::PortKind::Port(bytes)) = &mut replica.port_kind
            && let Ok(port) = codec::decode(bytes, umbra_pipeline::PORT_BITS)
        {
            *bytes = codec::encode(port);
        }
    }
    entry
}

/// Converts a counter cell to the P4Runtime form.
pub fn counter_data(data: PipelineCounterData) -> CounterData {
    CounterData {
        byte_count: data.bytes as i64,
        packet_count: data.packets as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_packing_matches_the_controller_headers() {
        // packet_out: egress_port (9 bits) = 0x1ab, _pad (7 bits) = 0.
        assert_eq!(pack_bits(&[(9, 0x1ab), (7, 0)]), vec![0xd5, 0x80]);
        assert_eq!(unpack_bits(&[0xd5, 0x80], &[9, 7]), vec![0x1ab, 0]);
        assert_eq!(pack_bits(&[(9, 3), (7, 0)]), vec![0x01, 0x80]);
    }
}
