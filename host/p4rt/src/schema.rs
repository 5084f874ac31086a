//! Name resolution through a P4Info: the only place where the names host
//! code uses (`UmbraIngress.service_selector`, `service_id`) become the
//! numeric ids P4Runtime carries, and back.
//!
//! A name is a fully qualified name (`UmbraIngress.drop`) or an alias
//! (`drop`) when no other object of its kind shares the alias. Ids are never
//! assumed: a P4Info compiled by p4c for bmv2 and the one of Umbra's software
//! switch resolve the same names to whatever ids they carry.
//!
//! The resolution itself is umbra-p4info's [`P4InfoIndex`], the one the
//! switch uses too; this module only turns its answers into the client's
//! [`EntityProblem`]s and [`P4rtError`]s.

use std::fmt;

use umbra_p4info::{
    ActionInfo, ControllerHeaderInfo, CounterInfo, P4InfoError, P4InfoIndex, TableInfo,
};
use umbra_proto::p4::config::v1 as cfg;

use crate::error::{EntityProblem, P4rtError, Result};

pub use umbra_p4info::MatchKind;

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

/// A P4Info indexed for name resolution: tables, actions, counters, direct
/// counters and controller headers by fully qualified name, by alias and by
/// id. Cheap to clone (the index is shared).
///
/// Builders of entities ([`table`](Self::table),
/// [`default_action`](Self::default_action),
/// [`packet_out`](Self::packet_out)) start here.
#[derive(Debug, Clone)]
pub struct P4Schema {
    index: P4InfoIndex,
}

impl From<P4InfoIndex> for P4Schema {
    /// The schema of an already indexed (hence consistent) P4Info.
    fn from(index: P4InfoIndex) -> Self {
        Self { index }
    }
}

impl P4Schema {
    /// Indexes `p4info`.
    ///
    /// # Errors
    ///
    /// [`P4rtError::P4Info`] listing every inconsistency the
    /// [`P4InfoIndex`] finds: zero or duplicate ids, duplicate names,
    /// actions, tables or parameters referenced but not defined.
    pub fn new(p4info: cfg::P4Info) -> Result<Self> {
        match P4InfoIndex::new(&p4info) {
            Ok(index) => Ok(Self { index }),
            Err(P4InfoError::Inconsistent { problems }) => Err(P4rtError::P4Info { problems }),
            // Indexing reports nothing else; should it one day, the
            // problem is still the P4Info's.
            Err(other) => Err(P4rtError::P4Info {
                problems: vec![other.to_string()],
            }),
        }
    }

    /// The index this schema resolves names with.
    #[must_use]
    pub fn index(&self) -> &P4InfoIndex {
        &self.index
    }

    /// The P4Info this schema indexes.
    #[must_use]
    pub fn p4info(&self) -> &cfg::P4Info {
        self.index.p4info()
    }

    /// Fully qualified names of the tables, in P4Info order.
    pub fn table_names(&self) -> impl Iterator<Item = &str> {
        self.index.tables().iter().map(|t| t.name.as_str())
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
        let index = &self.index;
        let found = match kind {
            ObjectKind::Table => index.table(name).map(|o| &o.name),
            ObjectKind::Action => index.action(name).map(|o| &o.name),
            ObjectKind::Counter => index.counter(name).map(|o| &o.name),
            ObjectKind::DirectCounter => index.direct_counter(name).map(|o| &o.name),
            ObjectKind::ControllerHeader => index.controller_header(name).map(|o| &o.name),
        };
        found
            .map(String::as_str)
            .map_err(|e| invalid(format!("{kind} {name:?}"), lookup_problem(kind, name, e)))
    }

    pub(crate) fn resolve_table(
        &self,
        name: &str,
    ) -> std::result::Result<&TableInfo, EntityProblem> {
        self.index
            .table(name)
            .map_err(|e| lookup_problem(ObjectKind::Table, name, e))
    }

    pub(crate) fn resolve_action(
        &self,
        name: &str,
    ) -> std::result::Result<&ActionInfo, EntityProblem> {
        self.index
            .action(name)
            .map_err(|e| lookup_problem(ObjectKind::Action, name, e))
    }

    pub(crate) fn resolve_counter(
        &self,
        name: &str,
    ) -> std::result::Result<&CounterInfo, EntityProblem> {
        self.index
            .counter(name)
            .map_err(|e| lookup_problem(ObjectKind::Counter, name, e))
    }

    /// Every table, in P4Info order.
    pub(crate) fn tables(&self) -> &[TableInfo] {
        self.index.tables()
    }

    pub(crate) fn table_by_id(&self, id: u32) -> Option<&TableInfo> {
        self.index.table_by_id(id).ok()
    }

    pub(crate) fn action_by_id(&self, id: u32) -> Option<&ActionInfo> {
        self.index.action_by_id(id).ok()
    }

    pub(crate) fn counter_by_id(&self, id: u32) -> Option<&CounterInfo> {
        self.index.counter_by_id(id).ok()
    }

    /// The `packet_in` controller header, if the program has one.
    pub(crate) fn packet_in_header(&self) -> Option<&ControllerHeaderInfo> {
        self.index.controller_header_by_annotation("packet_in").ok()
    }

    /// The `packet_out` controller header, if the program has one.
    pub(crate) fn packet_out_header(&self) -> Option<&ControllerHeaderInfo> {
        self.index
            .controller_header_by_annotation("packet_out")
            .ok()
    }

    /// Fully qualified names of the actions `table` may run in its entries
    /// or, with `default`, as its default action.
    pub(crate) fn allowed_actions(&self, table: &TableInfo, default: bool) -> Vec<String> {
        table
            .action_refs
            .iter()
            .filter(|r| {
                if default {
                    r.scope.allows_default()
                } else {
                    r.scope.allows_entries()
                }
            })
            .filter_map(|r| self.index.action_by_id(r.id).ok())
            .map(|a| a.name.clone())
            .collect()
    }
}

/// The problem of a failed look-up of `name` among the objects of `kind`.
fn lookup_problem(kind: ObjectKind, name: &str, error: P4InfoError) -> EntityProblem {
    match error {
        P4InfoError::AmbiguousAlias {
            alias, candidates, ..
        } => EntityProblem::AmbiguousAlias {
            kind,
            alias,
            candidates,
        },
        // Look-ups by name fail only with NotFound or AmbiguousAlias.
        other => EntityProblem::UnknownName {
            kind,
            name: name.to_owned(),
            known: match other {
                P4InfoError::NotFound { known, .. } => known,
                _ => Vec::new(),
            },
        },
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
        assert!(table.direct_counter_id.is_some());
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
