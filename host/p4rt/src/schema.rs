//! Name resolution through a P4Info: the only place where the names host
//! code uses (`UmbraIngress.service_selector`, `service_id`) become the
//! numeric ids P4Runtime carries, and back.
//!
//! A name is a fully qualified name (`UmbraIngress.drop`) or an alias
//! (`drop`) when no other object of its kind shares the alias. Ids are never
//! assumed: a P4Info compiled by p4c for bmv2 and the one of Umbra's software
//! switch resolve the same names to whatever ids they carry.

use std::collections::HashMap;
use std::fmt;

use umbra_proto::p4::config::v1 as cfg;

use crate::error::{EntityProblem, P4rtError, Result};

/// The kinds of program object this client resolves by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A match-action table.
    Table,
    /// An action.
    Action,
    /// An indexed counter.
    Counter,
    /// A counter attached to a table.
    DirectCounter,
    /// A controller header (`packet_in` / `packet_out`).
    ControllerHeader,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Table => "table",
            Self::Action => "action",
            Self::Counter => "counter",
            Self::DirectCounter => "direct counter",
            Self::ControllerHeader => "controller header",
        })
    }
}

/// How a table matches a field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKind {
    /// Exact value.
    Exact,
    /// Longest prefix.
    Lpm,
    /// Value and mask.
    Ternary,
    /// Inclusive range.
    Range,
    /// Exact value or wildcard.
    Optional,
    /// An architecture-specific match kind this client cannot build.
    Other(String),
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact => f.write_str("exact"),
            Self::Lpm => f.write_str("lpm"),
            Self::Ternary => f.write_str("ternary"),
            Self::Range => f.write_str("range"),
            Self::Optional => f.write_str("optional"),
            Self::Other(name) => write!(f, "{name:?}"),
        }
    }
}

/// Which entries of its table an action may appear in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionScope {
    TableAndDefault,
    TableOnly,
    DefaultOnly,
}

#[derive(Debug)]
pub(crate) struct MatchFieldInfo {
    pub id: u32,
    pub name: String,
    pub bitwidth: u32,
    pub kind: MatchKind,
}

#[derive(Debug)]
pub(crate) struct TableInfo {
    pub id: u32,
    pub name: String,
    pub match_fields: Vec<MatchFieldInfo>,
    /// Index into `P4Schema::actions`, with the scope.
    pub actions: Vec<(usize, ActionScope)>,
    pub const_default_action: Option<usize>,
    pub initial_default_action: Option<cfg::TableActionCall>,
    pub direct_counter: Option<usize>,
    pub is_const: bool,
}

impl TableInfo {
    pub fn match_field(&self, name: &str) -> Option<&MatchFieldInfo> {
        self.match_fields.iter().find(|f| f.name == name)
    }

    pub fn match_field_by_id(&self, id: u32) -> Option<&MatchFieldInfo> {
        self.match_fields.iter().find(|f| f.id == id)
    }

    /// Whether entries need a priority (P4Runtime §9.1: any ternary, range
    /// or optional field).
    pub fn needs_priority(&self) -> bool {
        self.match_fields.iter().any(|f| {
            matches!(
                f.kind,
                MatchKind::Ternary | MatchKind::Range | MatchKind::Optional
            )
        })
    }
}

#[derive(Debug)]
pub(crate) struct ParamInfo {
    pub id: u32,
    pub name: String,
    pub bitwidth: u32,
}

#[derive(Debug)]
pub(crate) struct ActionInfo {
    pub id: u32,
    pub name: String,
    pub params: Vec<ParamInfo>,
}

impl ActionInfo {
    pub fn param(&self, name: &str) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn param_by_id(&self, id: u32) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.id == id)
    }
}

#[derive(Debug)]
pub(crate) struct CounterInfo {
    pub id: u32,
    pub name: String,
    pub size: i64,
}

#[derive(Debug)]
pub(crate) struct DirectCounterInfo {
    pub name: String,
}

#[derive(Debug)]
pub(crate) struct HeaderInfo {
    pub name: String,
    pub metadata: Vec<ParamInfo>,
}

impl HeaderInfo {
    pub fn field(&self, name: &str) -> Option<&ParamInfo> {
        self.metadata.iter().find(|p| p.name == name)
    }

    pub fn field_by_id(&self, id: u32) -> Option<&ParamInfo> {
        self.metadata.iter().find(|p| p.id == id)
    }
}

/// Where a name leads.
#[derive(Debug, Clone)]
enum Resolution {
    One(usize),
    Ambiguous(Vec<usize>),
}

/// A P4Info indexed for name resolution: tables, actions, counters, direct
/// counters and controller headers by fully qualified name, by alias and by
/// id.
///
/// Builders of entities ([`table`](Self::table),
/// [`default_action`](Self::default_action),
/// [`packet_out`](Self::packet_out)) start here.
#[derive(Debug)]
pub struct P4Schema {
    p4info: cfg::P4Info,
    pub(crate) tables: Vec<TableInfo>,
    pub(crate) actions: Vec<ActionInfo>,
    pub(crate) counters: Vec<CounterInfo>,
    pub(crate) direct_counters: Vec<DirectCounterInfo>,
    pub(crate) headers: Vec<HeaderInfo>,
    packet_in: Option<usize>,
    packet_out: Option<usize>,
    names: HashMap<(ObjectKind, String), Resolution>,
    ids: HashMap<(ObjectKind, u32), usize>,
}

impl P4Schema {
    /// Indexes `p4info`.
    ///
    /// # Errors
    ///
    /// [`P4rtError::P4Info`] listing every inconsistency: duplicate ids or
    /// names, actions or tables referenced but not defined, zero ids.
    pub fn new(p4info: cfg::P4Info) -> Result<Self> {
        let mut problems = Vec::new();
        let mut names: HashMap<(ObjectKind, String), Resolution> = HashMap::new();
        let mut ids: HashMap<(ObjectKind, u32), usize> = HashMap::new();

        let mut register = |kind: ObjectKind,
                            preamble: Option<&cfg::Preamble>,
                            index: usize,
                            problems: &mut Vec<String>| {
            let Some(preamble) = preamble else {
                problems.push(format!("{kind} #{index} has no preamble"));
                return (0, String::new());
            };
            if preamble.id == 0 {
                problems.push(format!("{kind} {:?} has id 0", preamble.name));
            }
            if ids.insert((kind, preamble.id), index).is_some() {
                problems.push(format!(
                    "{kind} id {:#010x} is used twice (again by {:?})",
                    preamble.id, preamble.name
                ));
            }
            if names
                .insert((kind, preamble.name.clone()), Resolution::One(index))
                .is_some()
            {
                problems.push(format!("{kind} name {:?} is used twice", preamble.name));
            }
            (preamble.id, preamble.name.clone())
        };

        let mut actions = Vec::new();
        for (index, action) in p4info.actions.iter().enumerate() {
            let (id, name) = register(
                ObjectKind::Action,
                action.preamble.as_ref(),
                index,
                &mut problems,
            );
            let params = action
                .params
                .iter()
                .map(|p| ParamInfo {
                    id: p.id,
                    name: p.name.clone(),
                    bitwidth: u32::try_from(p.bitwidth).unwrap_or(0),
                })
                .collect::<Vec<_>>();
            check_unique(
                &format!("action {name:?}"),
                "parameter",
                &params,
                &mut problems,
            );
            actions.push(ActionInfo { id, name, params });
        }

        let mut counters = Vec::new();
        for (index, counter) in p4info.counters.iter().enumerate() {
            let (id, name) = register(
                ObjectKind::Counter,
                counter.preamble.as_ref(),
                index,
                &mut problems,
            );
            counters.push(CounterInfo {
                id,
                name,
                size: counter.size,
            });
        }

        let mut headers = Vec::new();
        let (mut packet_in, mut packet_out) = (None, None);
        for (index, header) in p4info.controller_packet_metadata.iter().enumerate() {
            let (_, name) = register(
                ObjectKind::ControllerHeader,
                header.preamble.as_ref(),
                index,
                &mut problems,
            );
            let annotations = header
                .preamble
                .as_ref()
                .map(|p| p.annotations.as_slice())
                .unwrap_or_default();
            let role = controller_header_role(&name, annotations);
            match role {
                Some("packet_in") => packet_in = Some(index),
                Some("packet_out") => packet_out = Some(index),
                _ => {}
            }
            let metadata = header
                .metadata
                .iter()
                .map(|m| ParamInfo {
                    id: m.id,
                    name: m.name.clone(),
                    bitwidth: u32::try_from(m.bitwidth).unwrap_or(0),
                })
                .collect::<Vec<_>>();
            check_unique(
                &format!("controller header {name:?}"),
                "field",
                &metadata,
                &mut problems,
            );
            headers.push(HeaderInfo { name, metadata });
        }

        let mut tables = Vec::new();
        for (index, table) in p4info.tables.iter().enumerate() {
            let (id, name) = register(
                ObjectKind::Table,
                table.preamble.as_ref(),
                index,
                &mut problems,
            );
            let match_fields = table
                .match_fields
                .iter()
                .map(|f| MatchFieldInfo {
                    id: f.id,
                    name: f.name.clone(),
                    bitwidth: u32::try_from(f.bitwidth).unwrap_or(0),
                    kind: match &f.r#match {
                        Some(cfg::match_field::Match::MatchType(t)) => {
                            use cfg::match_field::MatchType as T;
                            match T::try_from(*t) {
                                Ok(T::Exact) => MatchKind::Exact,
                                Ok(T::Lpm) => MatchKind::Lpm,
                                Ok(T::Ternary) => MatchKind::Ternary,
                                Ok(T::Range) => MatchKind::Range,
                                Ok(T::Optional) => MatchKind::Optional,
                                _ => MatchKind::Other(format!("match type {t}")),
                            }
                        }
                        Some(cfg::match_field::Match::OtherMatchType(other)) => {
                            MatchKind::Other(other.clone())
                        }
                        None => MatchKind::Other("unspecified".into()),
                    },
                })
                .collect::<Vec<_>>();
            {
                let as_params: Vec<ParamInfo> = match_fields
                    .iter()
                    .map(|f| ParamInfo {
                        id: f.id,
                        name: f.name.clone(),
                        bitwidth: f.bitwidth,
                    })
                    .collect();
                check_unique(
                    &format!("table {name:?}"),
                    "match field",
                    &as_params,
                    &mut problems,
                );
            }
            let mut table_actions = Vec::new();
            for action_ref in &table.action_refs {
                let Some(action) = actions.iter().position(|a| a.id == action_ref.id) else {
                    problems.push(format!(
                        "table {name:?} refers to action id {:#010x}, which does not exist",
                        action_ref.id
                    ));
                    continue;
                };
                use cfg::action_ref::Scope;
                let scope = match Scope::try_from(action_ref.scope) {
                    Ok(Scope::TableOnly) => ActionScope::TableOnly,
                    Ok(Scope::DefaultOnly) => ActionScope::DefaultOnly,
                    _ => ActionScope::TableAndDefault,
                };
                table_actions.push((action, scope));
            }
            let const_default_action = if table.const_default_action_id == 0 {
                None
            } else {
                let found = actions
                    .iter()
                    .position(|a| a.id == table.const_default_action_id);
                if found.is_none() {
                    problems.push(format!(
                        "table {name:?} has const default action id {:#010x}, which does not exist",
                        table.const_default_action_id
                    ));
                }
                found
            };
            tables.push(TableInfo {
                id,
                name,
                match_fields,
                actions: table_actions,
                const_default_action,
                initial_default_action: table.initial_default_action.clone(),
                direct_counter: None,
                is_const: table.is_const_table,
            });
        }

        let mut direct_counters = Vec::new();
        for (index, counter) in p4info.direct_counters.iter().enumerate() {
            let (_, name) = register(
                ObjectKind::DirectCounter,
                counter.preamble.as_ref(),
                index,
                &mut problems,
            );
            match tables.iter_mut().find(|t| t.id == counter.direct_table_id) {
                Some(table) => table.direct_counter = Some(index),
                None => problems.push(format!(
                    "direct counter {name:?} is attached to table id {:#010x}, which does not exist",
                    counter.direct_table_id
                )),
            }
            direct_counters.push(DirectCounterInfo { name });
        }

        // Aliases, after every fully qualified name is known: an alias never
        // shadows a fully qualified name, and a shared alias is ambiguous.
        let preambles = p4info
            .tables
            .iter()
            .map(|t| (ObjectKind::Table, t.preamble.as_ref()))
            .enumerate()
            .chain(
                p4info
                    .actions
                    .iter()
                    .map(|a| (ObjectKind::Action, a.preamble.as_ref()))
                    .enumerate(),
            )
            .chain(
                p4info
                    .counters
                    .iter()
                    .map(|c| (ObjectKind::Counter, c.preamble.as_ref()))
                    .enumerate(),
            )
            .chain(
                p4info
                    .direct_counters
                    .iter()
                    .map(|c| (ObjectKind::DirectCounter, c.preamble.as_ref()))
                    .enumerate(),
            )
            .chain(
                p4info
                    .controller_packet_metadata
                    .iter()
                    .map(|c| (ObjectKind::ControllerHeader, c.preamble.as_ref()))
                    .enumerate(),
            )
            .collect::<Vec<_>>();
        let mut aliases: HashMap<(ObjectKind, String), Vec<usize>> = HashMap::new();
        for (index, (kind, preamble)) in preambles {
            let Some(preamble) = preamble else { continue };
            // p4c also accepts the name with its leading control stripped
            // only through the alias, so that is all we index.
            if !preamble.alias.is_empty() && preamble.alias != preamble.name {
                aliases
                    .entry((kind, preamble.alias.clone()))
                    .or_default()
                    .push(index);
            }
        }
        for (key, indices) in aliases {
            if names.contains_key(&key) {
                continue;
            }
            let resolution = if indices.len() == 1 {
                Resolution::One(indices[0])
            } else {
                Resolution::Ambiguous(indices)
            };
            names.insert(key, resolution);
        }

        if !problems.is_empty() {
            return Err(P4rtError::P4Info { problems });
        }
        Ok(Self {
            p4info,
            tables,
            actions,
            counters,
            direct_counters,
            headers,
            packet_in,
            packet_out,
            names,
            ids,
        })
    }

    /// The P4Info this schema indexes.
    #[must_use]
    pub fn p4info(&self) -> &cfg::P4Info {
        &self.p4info
    }

    /// Fully qualified names of the tables, in P4Info order.
    pub fn table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.iter().map(|t| t.name.as_str())
    }

    /// Fully qualified names of the match fields of `table`, in P4Info
    /// order.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] when there is no such table.
    pub fn match_field_names(&self, table: &str) -> Result<Vec<&str>> {
        let table = self
            .resolve_table(table)
            .map_err(|p| invalid(format!("table {table:?}"), p))?;
        Ok(table.match_fields.iter().map(|f| f.name.as_str()).collect())
    }

    /// The fully qualified name of the object of `kind` that `name` (fully
    /// qualified or alias) designates.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] with [`EntityProblem::UnknownName`] or
    /// [`EntityProblem::AmbiguousAlias`].
    pub fn resolve(&self, kind: ObjectKind, name: &str) -> Result<&str> {
        let index = self
            .index_of(kind, name)
            .map_err(|p| invalid(format!("{kind} {name:?}"), p))?;
        Ok(self.name_at(kind, index))
    }

    fn name_at(&self, kind: ObjectKind, index: usize) -> &str {
        match kind {
            ObjectKind::Table => &self.tables[index].name,
            ObjectKind::Action => &self.actions[index].name,
            ObjectKind::Counter => &self.counters[index].name,
            ObjectKind::DirectCounter => &self.direct_counters[index].name,
            ObjectKind::ControllerHeader => &self.headers[index].name,
        }
    }

    fn names_of(&self, kind: ObjectKind) -> Vec<String> {
        let count = match kind {
            ObjectKind::Table => self.tables.len(),
            ObjectKind::Action => self.actions.len(),
            ObjectKind::Counter => self.counters.len(),
            ObjectKind::DirectCounter => self.direct_counters.len(),
            ObjectKind::ControllerHeader => self.headers.len(),
        };
        (0..count)
            .map(|i| self.name_at(kind, i).to_owned())
            .collect()
    }

    pub(crate) fn index_of(
        &self,
        kind: ObjectKind,
        name: &str,
    ) -> std::result::Result<usize, EntityProblem> {
        match self.names.get(&(kind, name.to_owned())) {
            Some(Resolution::One(index)) => Ok(*index),
            Some(Resolution::Ambiguous(indices)) => Err(EntityProblem::AmbiguousAlias {
                kind,
                alias: name.to_owned(),
                candidates: indices
                    .iter()
                    .map(|i| self.name_at(kind, *i).to_owned())
                    .collect(),
            }),
            None => Err(EntityProblem::UnknownName {
                kind,
                name: name.to_owned(),
                known: self.names_of(kind),
            }),
        }
    }

    pub(crate) fn resolve_table(
        &self,
        name: &str,
    ) -> std::result::Result<&TableInfo, EntityProblem> {
        self.index_of(ObjectKind::Table, name)
            .map(|i| &self.tables[i])
    }

    pub(crate) fn resolve_action(
        &self,
        name: &str,
    ) -> std::result::Result<(usize, &ActionInfo), EntityProblem> {
        self.index_of(ObjectKind::Action, name)
            .map(|i| (i, &self.actions[i]))
    }

    pub(crate) fn resolve_counter(
        &self,
        name: &str,
    ) -> std::result::Result<&CounterInfo, EntityProblem> {
        self.index_of(ObjectKind::Counter, name)
            .map(|i| &self.counters[i])
    }

    pub(crate) fn table_by_id(&self, id: u32) -> Option<&TableInfo> {
        self.ids
            .get(&(ObjectKind::Table, id))
            .map(|i| &self.tables[*i])
    }

    pub(crate) fn action_by_id(&self, id: u32) -> Option<&ActionInfo> {
        self.ids
            .get(&(ObjectKind::Action, id))
            .map(|i| &self.actions[*i])
    }

    pub(crate) fn counter_by_id(&self, id: u32) -> Option<&CounterInfo> {
        self.ids
            .get(&(ObjectKind::Counter, id))
            .map(|i| &self.counters[*i])
    }

    /// The `packet_in` controller header, if the program has one.
    pub(crate) fn packet_in_header(&self) -> Option<&HeaderInfo> {
        self.packet_in.map(|i| &self.headers[i])
    }

    /// The `packet_out` controller header, if the program has one.
    pub(crate) fn packet_out_header(&self) -> Option<&HeaderInfo> {
        self.packet_out.map(|i| &self.headers[i])
    }

    /// Fully qualified names of the actions `table` may run in `scope`.
    pub(crate) fn allowed_actions(&self, table: &TableInfo, default: bool) -> Vec<String> {
        table
            .actions
            .iter()
            .filter(|(_, scope)| {
                if default {
                    *scope != ActionScope::TableOnly
                } else {
                    *scope != ActionScope::DefaultOnly
                }
            })
            .map(|(a, _)| self.actions[*a].name.clone())
            .collect()
    }
}

/// The role of a controller header: its `@controller_header("...")`
/// annotation, or its name when it has none.
fn controller_header_role<'a>(name: &'a str, annotations: &'a [String]) -> Option<&'a str> {
    for annotation in annotations {
        let Some(rest) = annotation.trim().strip_prefix("@controller_header(") else {
            continue;
        };
        let inner = rest.trim_end_matches(')').trim().trim_matches('"');
        return match inner {
            "packet_in" => Some("packet_in"),
            "packet_out" => Some("packet_out"),
            _ => None,
        };
    }
    match name {
        "packet_in" => Some("packet_in"),
        "packet_out" => Some("packet_out"),
        _ => None,
    }
}

fn check_unique(owner: &str, what: &str, items: &[ParamInfo], problems: &mut Vec<String>) {
    for (i, item) in items.iter().enumerate() {
        if items[..i].iter().any(|p| p.id == item.id) {
            problems.push(format!("{owner} has {what} id {} twice", item.id));
        }
        if items[..i].iter().any(|p| p.name == item.name) {
            problems.push(format!("{owner} has {what} {:?} twice", item.name));
        }
    }
}

pub(crate) fn invalid(what: String, problem: EntityProblem) -> P4rtError {
    P4rtError::InvalidEntity {
        what,
        problems: vec![problem],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::umbra_schema;

    #[test]
    fn resolves_fully_qualified_names_and_aliases() {
        let schema = umbra_schema();
        assert_eq!(
            schema
                .resolve(ObjectKind::Table, "service_selector")
                .unwrap(),
            "UmbraIngress.service_selector"
        );
        assert_eq!(
            schema
                .resolve(ObjectKind::Table, "UmbraEgress.mirror_truncate")
                .unwrap(),
            "UmbraEgress.mirror_truncate"
        );
        assert_eq!(
            schema.resolve(ObjectKind::Counter, "port_tx").unwrap(),
            "UmbraEgress.port_tx"
        );
        assert!(schema.packet_in_header().is_some());
        assert_eq!(schema.packet_out_header().unwrap().name, "packet_out");
        let table = schema.resolve_table("device_portmap").unwrap();
        assert!(table.direct_counter.is_some());
        assert_eq!(
            schema.match_field_names("device_portmap").unwrap(),
            ["device", "direction"]
        );
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let schema = umbra_schema();
        let err = schema
            .resolve(ObjectKind::Table, "UmbraIngress.nope")
            .unwrap_err();
        let [EntityProblem::UnknownName { kind, name, known }] = err.entity_problems() else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(*kind, ObjectKind::Table);
        assert_eq!(name, "UmbraIngress.nope");
        assert_eq!(known.len(), 5);
        assert!(
            err.to_string().contains("UmbraIngress.service_selector"),
            "{err}"
        );
    }

    #[test]
    fn shared_aliases_are_ambiguous_and_inconsistencies_are_all_reported() {
        let mut p4info = umbra_schema().p4info().clone();
        // Two actions with the alias "drop".
        let mut second = p4info.actions[3].clone();
        let preamble = second.preamble.as_mut().unwrap();
        preamble.id = 0x0100_0fff;
        preamble.name = "UmbraEgress.drop".into();
        p4info.actions.push(second);
        let schema = P4Schema::new(p4info.clone()).unwrap();
        let err = schema.resolve(ObjectKind::Action, "drop").unwrap_err();
        assert!(
            matches!(
                err.entity_problems(),
                [EntityProblem::AmbiguousAlias { candidates, .. }] if candidates.len() == 2
            ),
            "{err:?}"
        );
        // Fully qualified names still resolve.
        assert!(
            schema
                .resolve(ObjectKind::Action, "UmbraEgress.drop")
                .is_ok()
        );

        // A duplicate id and a dangling action reference: both reported.
        p4info.actions[1].preamble.as_mut().unwrap().id =
            p4info.actions[0].preamble.as_ref().unwrap().id;
        let Err(P4rtError::P4Info { problems }) = P4Schema::new(p4info) else {
            panic!("inconsistent P4Info accepted");
        };
        assert!(problems.len() >= 2, "{problems:#?}");
        assert!(
            problems.iter().any(|p| p.contains("used twice")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("does not exist")),
            "{problems:#?}"
        );
    }
}
