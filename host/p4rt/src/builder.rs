//! Builders that turn names and typed values into checked entities:
//! every table, match field, action, parameter and controller header field
//! is resolved through the [`P4Schema`], every value checked against its
//! bitwidth, and every problem reported at once by `build()`.
//!
//! ```no_run
//! # fn f(schema: &umbra_p4rt::P4Schema) -> umbra_p4rt::Result<()> {
//! let entry = schema
//!     .table("UmbraIngress.service_selector")
//!     .exact("service_id", 1u16)
//!     .action("UmbraIngress.set_active_device")
//!     .param("device", 2u8)
//!     .build()?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use umbra_p4info::TableInfo;

use crate::entity::{ActionCall, DefaultAction, EntryKey, FieldMatch, PacketOut, TableEntry};
use crate::error::{EntityProblem, P4rtError, Result};
use crate::schema::{MatchKind, P4Schema};
use crate::value::Value;

impl P4Schema {
    /// Starts a table entry (or an entry key, for deletes) of `table`.
    pub fn table(&self, table: &str) -> TableEntryBuilder<'_> {
        TableEntryBuilder {
            schema: self,
            table: table.to_owned(),
            matches: Vec::new(),
            priority: 0,
            action: ActionInput::default(),
        }
    }

    /// Starts the default action of `table`.
    pub fn default_action(&self, table: &str) -> DefaultActionBuilder<'_> {
        DefaultActionBuilder {
            schema: self,
            table: table.to_owned(),
            action: ActionInput::default(),
        }
    }

    /// Starts a packet-out carrying `payload`.
    pub fn packet_out(&self, payload: impl Into<Vec<u8>>) -> PacketOutBuilder<'_> {
        PacketOutBuilder {
            schema: self,
            payload: payload.into(),
            metadata: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum MatchInput {
    Exact(Value),
    Ternary(Value, Value),
    Lpm(Value, i32),
    Range(Value, Value),
    Optional(Value),
}

impl MatchInput {
    fn kind(&self) -> MatchKind {
        match self {
            Self::Exact(_) => MatchKind::Exact,
            Self::Ternary(..) => MatchKind::Ternary,
            Self::Lpm(..) => MatchKind::Lpm,
            Self::Range(..) => MatchKind::Range,
            Self::Optional(_) => MatchKind::Optional,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ActionInput {
    name: Option<String>,
    params: Vec<(String, Value)>,
}

/// Builds a [`TableEntry`] or an [`EntryKey`]; see [`P4Schema::table`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TableEntryBuilder<'a> {
    schema: &'a P4Schema,
    table: String,
    matches: Vec<(String, MatchInput)>,
    priority: i32,
    action: ActionInput,
}

impl TableEntryBuilder<'_> {
    /// Matches exact field `field` against `value`.
    pub fn exact(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.matches
            .push((field.to_owned(), MatchInput::Exact(value.into())));
        self
    }

    /// Matches ternary field `field`: `field & mask == value`.
    pub fn ternary(mut self, field: &str, value: impl Into<Value>, mask: impl Into<Value>) -> Self {
        self.matches.push((
            field.to_owned(),
            MatchInput::Ternary(value.into(), mask.into()),
        ));
        self
    }

    /// Matches LPM field `field` against the first `prefix_len` bits of
    /// `value`.
    pub fn lpm(mut self, field: &str, value: impl Into<Value>, prefix_len: i32) -> Self {
        self.matches
            .push((field.to_owned(), MatchInput::Lpm(value.into(), prefix_len)));
        self
    }

    /// Matches range field `field` against `low..=high`.
    pub fn range(mut self, field: &str, low: impl Into<Value>, high: impl Into<Value>) -> Self {
        self.matches
            .push((field.to_owned(), MatchInput::Range(low.into(), high.into())));
        self
    }

    /// Matches optional field `field` against `value`.
    pub fn optional(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.matches
            .push((field.to_owned(), MatchInput::Optional(value.into())));
        self
    }

    /// Sets the priority (tables with ternary, range or optional fields
    /// need one; higher wins).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the action the entry runs.
    pub fn action(mut self, action: &str) -> Self {
        self.action.name = Some(action.to_owned());
        self
    }

    /// Sets parameter `param` of the action.
    pub fn param(mut self, param: &str, value: impl Into<Value>) -> Self {
        self.action.params.push((param.to_owned(), value.into()));
        self
    }

    /// The entry.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] listing every problem: unknown table,
    /// match field, action or parameter, values too wide, missing exact
    /// fields or parameters, an action the table cannot run, a missing or
    /// superfluous priority.
    pub fn build(self) -> Result<TableEntry> {
        let mut problems = Vec::new();
        let table = self.resolve_table(&mut problems);
        let key = table.and_then(|t| self.resolve_key(t, &mut problems));
        let action =
            table.and_then(|t| resolve_action(self.schema, t, &self.action, false, &mut problems));
        match (key, action) {
            (Some(key), Some(action)) if problems.is_empty() => Ok(TableEntry { key, action }),
            _ => Err(P4rtError::InvalidEntity {
                what: format!("table entry of {:?}", self.table),
                problems,
            }),
        }
    }

    /// Only the key of the entry (for deletes and desired-state removal);
    /// an action given is ignored.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] as [`build`](Self::build), for the
    /// table, the match and the priority.
    pub fn key(self) -> Result<EntryKey> {
        let mut problems = Vec::new();
        let table = self.resolve_table(&mut problems);
        let key = table.and_then(|t| self.resolve_key(t, &mut problems));
        match key {
            Some(key) if problems.is_empty() => Ok(key),
            _ => Err(P4rtError::InvalidEntity {
                what: format!("entry key of {:?}", self.table),
                problems,
            }),
        }
    }

    fn resolve_table(&self, problems: &mut Vec<EntityProblem>) -> Option<&TableInfo> {
        self.schema
            .resolve_table(&self.table)
            .map_err(|p| problems.push(p))
            .ok()
    }

    fn resolve_key(
        &self,
        table: &TableInfo,
        problems: &mut Vec<EntityProblem>,
    ) -> Option<EntryKey> {
        let before = problems.len();
        if table.is_const_table {
            problems.push(EntityProblem::ConstTable {
                table: table.name.clone(),
            });
        }
        let mut matches = BTreeMap::new();
        for (name, input) in &self.matches {
            let Ok(field) = table.match_field(name) else {
                problems.push(EntityProblem::UnknownMatchField {
                    table: table.name.clone(),
                    field: name.clone(),
                    known: table.match_fields.iter().map(|f| f.name.clone()).collect(),
                });
                continue;
            };
            if matches.contains_key(name) {
                problems.push(EntityProblem::GivenTwice {
                    what: format!("match field {name:?}"),
                });
                continue;
            }
            if field.match_kind != input.kind() {
                problems.push(EntityProblem::WrongMatchKind {
                    table: table.name.clone(),
                    field: name.clone(),
                    expected: field.match_kind.clone(),
                    given: input.kind(),
                });
                continue;
            }
            let what = format!("match field {name:?}");
            let invalid = |reason: &str| EntityProblem::InvalidMatch {
                table: table.name.clone(),
                field: name.clone(),
                reason: reason.to_owned(),
            };
            let field_match = match input {
                MatchInput::Exact(value) => {
                    check_width(&what, value, field.bitwidth, problems);
                    FieldMatch::Exact {
                        value: value.clone(),
                    }
                }
                MatchInput::Optional(value) => {
                    check_width(&what, value, field.bitwidth, problems);
                    FieldMatch::Optional {
                        value: value.clone(),
                    }
                }
                MatchInput::Ternary(value, mask) => {
                    check_width(&what, value, field.bitwidth, problems);
                    check_width(&format!("mask of {what}"), mask, field.bitwidth, problems);
                    if mask.bits() == 0 {
                        problems.push(invalid("mask 0 is a wildcard: leave the field out"));
                    } else if and_not(value, mask) {
                        problems.push(invalid("the value has bits set outside the mask"));
                    }
                    FieldMatch::Ternary {
                        value: value.clone(),
                        mask: mask.clone(),
                    }
                }
                MatchInput::Lpm(value, prefix_len) => {
                    check_width(&what, value, field.bitwidth, problems);
                    let bitwidth = i64::from(field.bitwidth);
                    if *prefix_len < 0 || i64::from(*prefix_len) > bitwidth {
                        problems.push(EntityProblem::PrefixTooLong {
                            field: name.clone(),
                            prefix_len: *prefix_len,
                            bitwidth: field.bitwidth,
                        });
                    } else if *prefix_len == 0 {
                        problems.push(invalid(
                            "prefix length 0 is a wildcard: leave the field out",
                        ));
                    } else if trailing_zero_bits(value) < bitwidth - i64::from(*prefix_len) {
                        problems.push(invalid("the value has bits set past the prefix"));
                    }
                    FieldMatch::Lpm {
                        value: value.clone(),
                        prefix_len: *prefix_len,
                    }
                }
                MatchInput::Range(low, high) => {
                    check_width(&format!("low end of {what}"), low, field.bitwidth, problems);
                    check_width(
                        &format!("high end of {what}"),
                        high,
                        field.bitwidth,
                        problems,
                    );
                    if low.as_u128() > high.as_u128() {
                        problems.push(invalid("the range is empty (low > high)"));
                    }
                    FieldMatch::Range {
                        low: low.clone(),
                        high: high.clone(),
                    }
                }
            };
            matches.insert(name.clone(), field_match);
        }
        for field in &table.match_fields {
            if field.match_kind == MatchKind::Exact
                && !self.matches.iter().any(|(n, _)| *n == field.name)
            {
                problems.push(EntityProblem::MissingMatchField {
                    table: table.name.clone(),
                    field: field.name.clone(),
                });
            }
        }
        let needs_priority = table.needs_priority();
        if needs_priority != (self.priority > 0) || self.priority < 0 {
            problems.push(EntityProblem::Priority {
                table: table.name.clone(),
                required: needs_priority,
            });
        }
        (problems.len() == before).then(|| EntryKey {
            table: table.name.clone(),
            matches,
            priority: self.priority,
        })
    }
}

/// Builds a [`DefaultAction`]; see [`P4Schema::default_action`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DefaultActionBuilder<'a> {
    schema: &'a P4Schema,
    table: String,
    action: ActionInput,
}

impl DefaultActionBuilder<'_> {
    /// Sets the action run on a miss.
    pub fn action(mut self, action: &str) -> Self {
        self.action.name = Some(action.to_owned());
        self
    }

    /// Sets parameter `param` of the action.
    pub fn param(mut self, param: &str, value: impl Into<Value>) -> Self {
        self.action.params.push((param.to_owned(), value.into()));
        self
    }

    /// The default action.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] listing every problem: unknown table,
    /// action or parameter, values too wide, missing parameters, an action
    /// the table cannot run by default, a `const` default action.
    pub fn build(self) -> Result<DefaultAction> {
        let mut problems = Vec::new();
        let table = self
            .schema
            .resolve_table(&self.table)
            .map_err(|p| problems.push(p))
            .ok();
        if let Some(table) = table
            && table.const_default_action
        {
            problems.push(EntityProblem::ConstDefaultAction {
                table: table.name.clone(),
            });
        }
        let action =
            table.and_then(|t| resolve_action(self.schema, t, &self.action, true, &mut problems));
        match (table, action) {
            (Some(table), Some(action)) if problems.is_empty() => Ok(DefaultAction {
                table: table.name.clone(),
                action,
            }),
            _ => Err(P4rtError::InvalidEntity {
                what: format!("default action of {:?}", self.table),
                problems,
            }),
        }
    }
}

/// Builds a [`PacketOut`]; see [`P4Schema::packet_out`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PacketOutBuilder<'a> {
    schema: &'a P4Schema,
    payload: Vec<u8>,
    metadata: Vec<(String, Value)>,
}

impl PacketOutBuilder<'_> {
    /// Sets field `field` of the `packet_out` controller header. Fields
    /// not set are sent as 0 (v1model headers pad with `_pad` fields no one
    /// wants to spell out).
    pub fn metadata(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.metadata.push((field.to_owned(), value.into()));
        self
    }

    /// The packet.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] listing every problem: no `packet_out`
    /// header in the program, unknown fields, values too wide.
    pub fn build(self) -> Result<PacketOut> {
        let mut problems = Vec::new();
        let Some(header) = self.schema.packet_out_header() else {
            return Err(P4rtError::InvalidEntity {
                what: "packet-out".into(),
                problems: vec![EntityProblem::NoControllerHeader("packet_out")],
            });
        };
        let mut metadata = BTreeMap::new();
        for (name, value) in &self.metadata {
            let Ok(field) = header.field(name) else {
                problems.push(EntityProblem::UnknownMetadata {
                    header: header.name.clone(),
                    field: name.clone(),
                    known: header.fields.iter().map(|m| m.name.clone()).collect(),
                });
                continue;
            };
            if metadata.contains_key(name) {
                problems.push(EntityProblem::GivenTwice {
                    what: format!("packet_out field {name:?}"),
                });
                continue;
            }
            check_width(
                &format!("packet_out field {name:?}"),
                value,
                field.bitwidth,
                &mut problems,
            );
            metadata.insert(name.clone(), value.clone());
        }
        for field in &header.fields {
            metadata
                .entry(field.name.clone())
                .or_insert_with(|| Value::from(0u8));
        }
        if problems.is_empty() {
            Ok(PacketOut {
                payload: self.payload,
                metadata,
            })
        } else {
            Err(P4rtError::InvalidEntity {
                what: "packet-out".into(),
                problems,
            })
        }
    }
}

fn resolve_action(
    schema: &P4Schema,
    table: &TableInfo,
    input: &ActionInput,
    default: bool,
    problems: &mut Vec<EntityProblem>,
) -> Option<ActionCall> {
    let Some(name) = &input.name else {
        problems.push(EntityProblem::MissingAction {
            table: table.name.clone(),
        });
        return None;
    };
    let action = schema
        .resolve_action(name)
        .map_err(|p| problems.push(p))
        .ok()?;
    let before = problems.len();
    let allowed = if default {
        table.allows_default_action(action.id)
    } else {
        table.allows_entry_action(action.id)
    };
    if !allowed {
        problems.push(EntityProblem::ActionNotAllowed {
            table: table.name.clone(),
            action: action.name.clone(),
            context: if default {
                "as default action"
            } else {
                "in an entry"
            },
            allowed: schema.allowed_actions(table, default),
        });
    }
    let mut params = BTreeMap::new();
    for (param_name, value) in &input.params {
        let Ok(param) = action.param(param_name) else {
            problems.push(EntityProblem::UnknownParam {
                action: action.name.clone(),
                param: param_name.clone(),
                known: action.params.iter().map(|p| p.name.clone()).collect(),
            });
            continue;
        };
        if params.contains_key(param_name) {
            problems.push(EntityProblem::GivenTwice {
                what: format!("parameter {param_name:?}"),
            });
            continue;
        }
        check_width(
            &format!("parameter {param_name:?} of {:?}", action.name),
            value,
            param.bitwidth,
            problems,
        );
        params.insert(param.name.clone(), value.clone());
    }
    for param in &action.params {
        if !params.contains_key(&param.name) && !input.params.iter().any(|(n, _)| *n == param.name)
        {
            problems.push(EntityProblem::MissingParam {
                action: action.name.clone(),
                param: param.name.clone(),
            });
        }
    }
    (problems.len() == before).then(|| ActionCall {
        action: action.name.clone(),
        params,
    })
}

fn check_width(what: &str, value: &Value, bitwidth: u32, problems: &mut Vec<EntityProblem>) {
    if !value.fits(bitwidth) {
        problems.push(EntityProblem::ValueTooWide {
            what: what.to_owned(),
            value: value.to_string(),
            bits: value.bits(),
            bitwidth,
        });
    }
}

/// Whether `value` has a bit set that `mask` has clear.
fn and_not(value: &Value, mask: &Value) -> bool {
    let len = value.as_bytes().len().max(mask.as_bytes().len());
    let (Some(value), Some(mask)) = (value.padded(len), mask.padded(len)) else {
        return true;
    };
    value.iter().zip(&mask).any(|(v, m)| v & !m != 0)
}

/// Number of trailing zero bits of `value` (all of them for 0).
fn trailing_zero_bits(value: &Value) -> i64 {
    let mut zeros = 0i64;
    for byte in value.as_bytes().iter().rev() {
        if *byte == 0 {
            zeros += 8;
        } else {
            return zeros + i64::from(byte.trailing_zeros());
        }
    }
    i64::MAX
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::schema::ObjectKind;
    use crate::testing::umbra_schema;

    #[test]
    fn steering_entry_resolves_every_name() {
        let schema = umbra_schema();
        let entry = schema
            .table("service_selector")
            .exact("service_id", 1u16)
            .action("set_active_device")
            .param("device", 2u8)
            .build()
            .unwrap();
        // Aliases resolve to fully qualified names.
        assert_eq!(entry.table(), "UmbraIngress.service_selector");
        assert_eq!(entry.action().name(), "UmbraIngress.set_active_device");
        assert_eq!(
            entry.key().field("service_id"),
            Some(&FieldMatch::Exact {
                value: Value::from(1u8)
            })
        );
        assert_eq!(entry.action().param("device").unwrap().as_u64(), Some(2));
        assert_eq!(
            entry.to_string(),
            "UmbraIngress.service_selector[service_id=1] -> UmbraIngress.set_active_device(device=2)"
        );
    }

    #[test]
    fn sampling_entry_accepts_full_width_values() {
        let schema = umbra_schema();
        let entry = schema
            .table("UmbraIngress.mirror_sampling")
            .exact("ingress_port", 511u16)
            .action("UmbraIngress.sample_per_flow")
            .param("threshold", u32::MAX)
            .param("session", 7u32)
            .build()
            .unwrap();
        assert_eq!(
            entry.action().param("threshold").unwrap().as_bytes(),
            &[0xff; 4]
        );
    }

    #[test]
    fn unknown_names_are_all_reported_with_what_exists() {
        let schema = umbra_schema();
        let err = schema
            .table("UmbraIngress.service_selector")
            .exact("service", 1u16)
            .action("UmbraIngress.set_active_device")
            .param("devices", 2u8)
            .build()
            .unwrap_err();
        let problems = err.entity_problems();
        assert!(
            problems.contains(&EntityProblem::UnknownMatchField {
                table: "UmbraIngress.service_selector".into(),
                field: "service".into(),
                known: vec!["service_id".into()],
            }),
            "{err}"
        );
        assert!(
            problems.contains(&EntityProblem::UnknownParam {
                action: "UmbraIngress.set_active_device".into(),
                param: "devices".into(),
                known: vec!["device".into()],
            }),
            "{err}"
        );
        // The exact field and the parameter are then missing too.
        assert!(problems.iter().any(
            |p| matches!(p, EntityProblem::MissingMatchField { field, .. } if field == "service_id")
        ));
        assert!(
            problems.iter().any(
                |p| matches!(p, EntityProblem::MissingParam { param, .. } if param == "device")
            )
        );
        let text = err.to_string();
        assert!(text.contains("has no match field \"service\""), "{text}");

        let err = schema
            .table("UmbraIngress.selector")
            .exact("service_id", 1u16)
            .action("x")
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err.entity_problems(),
                [EntityProblem::UnknownName { kind: ObjectKind::Table, name, .. }] if name == "UmbraIngress.selector"
            ),
            "{err:?}"
        );

        let err = schema
            .table("service_selector")
            .exact("service_id", 1u16)
            .action("UmbraIngress.teleport")
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err.entity_problems(),
                [EntityProblem::UnknownName {
                    kind: ObjectKind::Action,
                    ..
                }]
            ),
            "{err:?}"
        );
    }

    #[test]
    fn values_too_wide_are_refused() {
        let schema = umbra_schema();
        // ingress_port is bit<9>: 512 needs 10 bits.
        let err = schema
            .table("port_classify")
            .exact("ingress_port", 512u16)
            .action("forward_to_port")
            .param("port", 0x1_0000u32)
            .build()
            .unwrap_err();
        let problems = err.entity_problems();
        assert_eq!(problems.len(), 2, "{err}");
        assert!(problems.contains(&EntityProblem::ValueTooWide {
            what: "match field \"ingress_port\"".into(),
            value: "512".into(),
            bits: 10,
            bitwidth: 9,
        }));
        assert!(problems.iter().any(|p| matches!(
            p,
            EntityProblem::ValueTooWide {
                bits: 17,
                bitwidth: 9,
                ..
            }
        )));
        // An IPv4 address does not fit an 8-bit parameter.
        let err = schema
            .table("service_selector")
            .exact("service_id", 1u16)
            .action("set_active_device")
            .param("device", Ipv4Addr::new(10, 0, 0, 1))
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("needs 28 bits but is 8 bits wide"),
            "{err}"
        );
    }

    #[test]
    fn actions_the_table_cannot_run_and_missing_pieces_are_refused() {
        let schema = umbra_schema();
        let err = schema
            .table("service_selector")
            .exact("service_id", 1u16)
            .action("UmbraIngress.steer_to_port")
            .param("port", 1u8)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err.entity_problems(),
                [EntityProblem::ActionNotAllowed { allowed, .. }] if allowed.len() == 2
            ),
            "{err:?}"
        );
        let err = schema
            .table("device_portmap")
            .exact("device", 1u8)
            .exact("device", 2u8)
            .build()
            .unwrap_err();
        let problems = err.entity_problems();
        assert!(problems.contains(&EntityProblem::GivenTwice {
            what: "match field \"device\"".into()
        }));
        assert!(problems.contains(&EntityProblem::MissingMatchField {
            table: "UmbraIngress.device_portmap".into(),
            field: "direction".into()
        }));
        assert!(problems.contains(&EntityProblem::MissingAction {
            table: "UmbraIngress.device_portmap".into()
        }));
        // Wrong match kind and a priority on an exact-only table.
        let err = schema
            .table("device_portmap")
            .ternary("device", 1u8, 0xffu8)
            .exact("direction", 0u8)
            .priority(10)
            .action("drop")
            .build()
            .unwrap_err();
        let problems = err.entity_problems();
        assert!(problems.iter().any(|p| matches!(
            p,
            EntityProblem::WrongMatchKind {
                expected: MatchKind::Exact,
                given: MatchKind::Ternary,
                ..
            }
        )));
        assert!(problems.contains(&EntityProblem::Priority {
            table: "UmbraIngress.device_portmap".into(),
            required: false
        }));
    }

    #[test]
    fn keys_need_no_action() {
        let schema = umbra_schema();
        let key = schema
            .table("device_portmap")
            .exact("device", 2u8)
            .exact("direction", 1u8)
            .key()
            .unwrap();
        let entry = schema
            .table("UmbraIngress.device_portmap")
            .exact("direction", 1u8)
            .exact("device", 2u8)
            .action("steer_to_port")
            .param("port", 4u16)
            .build()
            .unwrap();
        // Order of the match fields and spelling of the table do not matter.
        assert_eq!(&key, entry.key());
    }

    #[test]
    fn default_actions_respect_the_table() {
        let schema = umbra_schema();
        let default = schema
            .default_action("mirror_sampling")
            .action("sample_per_packet")
            .param("one_in_n", 100u32)
            .param("session", 5u32)
            .build()
            .unwrap();
        assert_eq!(default.table(), "UmbraIngress.mirror_sampling");
        assert_eq!(default.action().name(), "UmbraIngress.sample_per_packet");
        let err = schema
            .default_action("mirror_sampling")
            .action("drop")
            .build()
            .unwrap_err();
        assert!(matches!(
            err.entity_problems(),
            [EntityProblem::ActionNotAllowed {
                context: "as default action",
                ..
            }]
        ));
    }

    #[test]
    fn action_scopes_limit_entries_and_default_actions() {
        use umbra_proto::p4::config::v1::action_ref::Scope;
        // port_classify runs set_service, forward_to_port, punt_to_cpu and
        // drop; make forward_to_port @tableonly and punt_to_cpu @defaultonly.
        let mut p4info = umbra_schema().p4info().clone();
        let refs = &mut p4info.tables[0].action_refs;
        refs[1].scope = Scope::TableOnly.into();
        refs[2].scope = Scope::DefaultOnly.into();
        let schema = P4Schema::new(p4info).unwrap();

        let err = schema
            .table("port_classify")
            .exact("ingress_port", 1u16)
            .action("punt_to_cpu")
            .build()
            .unwrap_err();
        let [
            EntityProblem::ActionNotAllowed {
                context, allowed, ..
            },
        ] = err.entity_problems()
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(*context, "in an entry");
        assert_eq!(
            allowed,
            &[
                "UmbraIngress.set_service",
                "UmbraIngress.forward_to_port",
                "UmbraIngress.drop"
            ]
        );

        let err = schema
            .default_action("port_classify")
            .action("forward_to_port")
            .param("port", 1u16)
            .build()
            .unwrap_err();
        let [
            EntityProblem::ActionNotAllowed {
                context, allowed, ..
            },
        ] = err.entity_problems()
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(*context, "as default action");
        assert_eq!(
            allowed,
            &[
                "UmbraIngress.set_service",
                "UmbraIngress.punt_to_cpu",
                "UmbraIngress.drop"
            ]
        );
        // Each is fine where its scope allows it.
        assert!(
            schema
                .default_action("port_classify")
                .action("punt_to_cpu")
                .build()
                .is_ok()
        );
        assert!(
            schema
                .table("port_classify")
                .exact("ingress_port", 1u16)
                .action("forward_to_port")
                .param("port", 1u16)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn packet_out_fills_unset_fields_and_checks_widths() {
        let schema = umbra_schema();
        let packet = schema
            .packet_out(vec![1, 2, 3])
            .metadata("egress_port", 3u16)
            .build()
            .unwrap();
        assert_eq!(packet.metadata()["egress_port"].as_u64(), Some(3));
        assert_eq!(packet.metadata()["_pad"].as_u64(), Some(0));
        let err = schema
            .packet_out(vec![])
            .metadata("egress_port", 1024u16)
            .metadata("ingress_port", 1u8)
            .build()
            .unwrap_err();
        assert_eq!(err.entity_problems().len(), 2, "{err}");
    }

    #[test]
    fn match_helpers_detect_stray_bits() {
        assert!(and_not(&Value::from(0x0fu8), &Value::from(0xf0u8)));
        assert!(!and_not(&Value::from(0x10u8), &Value::from(0xf0u8)));
        assert!(!and_not(&Value::from(0x1000u16), &Value::from(0xff00u16)));
        assert_eq!(trailing_zero_bits(&Value::from(0x0100u16)), 8);
        assert_eq!(trailing_zero_bits(&Value::from(0x0a00_0000u32)), 25);
    }
}
