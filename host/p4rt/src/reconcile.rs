//! The desired state of a switch and the difference that brings what is
//! installed to it.
//!
//! The client owns a [`DesiredState`]: the owner declares it (entry by entry
//! or wholesale) and every successful write through the client updates it.
//! Reconciling reads what the switch holds and writes only the difference:
//! deletes of what should not be there, modifies of what differs, inserts of
//! what is missing, so that afterwards the switch holds exactly the desired
//! state — nothing stale, nothing duplicated, nothing missing.

use std::collections::{BTreeMap, BTreeSet};

use umbra_proto::p4::v1 as p4;

use crate::entity::{ActionCall, CloneSession, DefaultAction, EntryKey, TableEntry};
use crate::error::Result;
use crate::schema::P4Schema;
use crate::wire::{self, Update};

/// What the switch should hold: table entries (by key), default actions (by
/// table) and clone sessions (by id). Tables without a declared default
/// action should run the one the P4Info starts them with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    entries: BTreeMap<EntryKey, TableEntry>,
    default_actions: BTreeMap<String, DefaultAction>,
    clone_sessions: BTreeMap<u32, CloneSession>,
}

impl DesiredState {
    /// Nothing installed.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `entry`, replacing the entry of the same key; returns the
    /// replaced one.
    pub fn insert_entry(&mut self, entry: TableEntry) -> Option<TableEntry> {
        self.entries.insert(entry.key.clone(), entry)
    }

    /// Withdraws the entry of `key`; returns it.
    pub fn remove_entry(&mut self, key: &EntryKey) -> Option<TableEntry> {
        self.entries.remove(key)
    }

    /// The entry declared for `key`.
    #[must_use]
    pub fn entry(&self, key: &EntryKey) -> Option<&TableEntry> {
        self.entries.get(key)
    }

    /// Every declared entry, ordered by key.
    pub fn entries(&self) -> impl Iterator<Item = &TableEntry> {
        self.entries.values()
    }

    /// Declares the default action of its table; returns the replaced one.
    pub fn set_default_action(&mut self, default: DefaultAction) -> Option<DefaultAction> {
        self.default_actions.insert(default.table.clone(), default)
    }

    /// Withdraws the default action declared for `table` (fully qualified
    /// name): the table goes back to the P4Info's initial default action.
    pub fn remove_default_action(&mut self, table: &str) -> Option<DefaultAction> {
        self.default_actions.remove(table)
    }

    /// Every declared default action, ordered by table.
    pub fn default_actions(&self) -> impl Iterator<Item = &DefaultAction> {
        self.default_actions.values()
    }

    /// Declares a clone session, replacing the one of the same id.
    pub fn insert_clone_session(&mut self, session: CloneSession) -> Option<CloneSession> {
        self.clone_sessions.insert(session.session_id, session)
    }

    /// Withdraws clone session `session_id`.
    pub fn remove_clone_session(&mut self, session_id: u32) -> Option<CloneSession> {
        self.clone_sessions.remove(&session_id)
    }

    /// Every declared clone session, ordered by id.
    pub fn clone_sessions(&self) -> impl Iterator<Item = &CloneSession> {
        self.clone_sessions.values()
    }

    /// Records an update the switch applied.
    pub(crate) fn apply(&mut self, update: &Update) {
        match update {
            Update::InsertEntry(entry) | Update::ModifyEntry(entry) => {
                self.insert_entry(entry.clone());
            }
            Update::DeleteEntry(key) => {
                self.remove_entry(key);
            }
            Update::SetDefaultAction(default) => {
                self.set_default_action(default.clone());
            }
            Update::InsertCloneSession(session) | Update::ModifyCloneSession(session) => {
                self.insert_clone_session(session.clone());
            }
            Update::DeleteCloneSession(id) => {
                self.remove_clone_session(*id);
            }
        }
    }
}

/// What a reconciliation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Entries installed but not desired (or not decodable), deleted.
    pub entries_deleted: usize,
    /// Entries installed with another action than desired, modified.
    pub entries_modified: usize,
    /// Entries desired but missing, inserted.
    pub entries_inserted: usize,
    /// Default actions set.
    pub default_actions_set: usize,
    /// Clone sessions installed but not desired, deleted.
    pub clone_sessions_deleted: usize,
    /// Clone sessions installed differently than desired, modified.
    pub clone_sessions_modified: usize,
    /// Clone sessions desired but missing, inserted.
    pub clone_sessions_inserted: usize,
}

impl ReconcileReport {
    /// How many updates were written.
    #[must_use]
    pub fn changes(&self) -> usize {
        self.entries_deleted
            + self.entries_modified
            + self.entries_inserted
            + self.default_actions_set
            + self.clone_sessions_deleted
            + self.clone_sessions_modified
            + self.clone_sessions_inserted
    }

    /// Whether the switch already held the desired state.
    #[must_use]
    pub fn is_noop(&self) -> bool {
        self.changes() == 0
    }
}

/// What a switch holds, as read.
#[derive(Debug, Default)]
pub(crate) struct Installed {
    pub entries: Vec<TableEntry>,
    /// Entries that do not decode with the schema; deleted as read.
    pub undecodable: Vec<p4::TableEntry>,
    /// Default action per table (fully qualified name), or `None` when the
    /// switch cannot read default entries: then declared default actions
    /// are written blindly and the others left alone.
    pub default_actions: Option<BTreeMap<String, ActionCall>>,
    pub clone_sessions: Vec<CloneSession>,
}

/// The updates that bring `installed` to `desired`, in a safe order:
/// deletes first (they free table space), clone sessions before the entries
/// that may sample into them, default actions last.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub updates: Vec<p4::Update>,
    pub report: ReconcileReport,
}

pub(crate) fn plan(
    schema: &P4Schema,
    desired: &DesiredState,
    installed: &Installed,
) -> Result<Plan> {
    use p4::update::Type;
    let mut plan = Plan::default();
    let push = |plan: &mut Plan, kind: Type, entity: p4::Entity| {
        plan.updates.push(p4::Update {
            r#type: kind.into(),
            entity: Some(entity),
        });
    };

    // Installed entries by key; a key seen twice (a broken switch) keeps the
    // first and deletes the others.
    let mut installed_entries: BTreeMap<&EntryKey, &TableEntry> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for entry in &installed.entries {
        if installed_entries.insert(&entry.key, entry).is_some() {
            duplicates.push(entry);
        }
    }

    // 1. Deletes of stale entries.
    for raw in &installed.undecodable {
        push(
            &mut plan,
            Type::Delete,
            wire::table_entity(p4::TableEntry {
                table_id: raw.table_id,
                r#match: raw.r#match.clone(),
                priority: raw.priority,
                ..p4::TableEntry::default()
            }),
        );
        plan.report.entries_deleted += 1;
    }
    for (key, _) in installed_entries
        .iter()
        .filter(|(key, _)| !desired.entries.contains_key(**key))
    {
        push(
            &mut plan,
            Type::Delete,
            wire::table_entity(wire::encode_key(schema, key)?),
        );
        plan.report.entries_deleted += 1;
    }

    // 2. Clone sessions.
    let installed_sessions: BTreeMap<u32, &CloneSession> = installed
        .clone_sessions
        .iter()
        .map(|s| (s.session_id, s))
        .collect();
    for id in installed_sessions.keys() {
        if !desired.clone_sessions.contains_key(id) {
            push(
                &mut plan,
                Type::Delete,
                wire::clone_session_entity(p4::CloneSessionEntry {
                    session_id: *id,
                    ..p4::CloneSessionEntry::default()
                }),
            );
            plan.report.clone_sessions_deleted += 1;
        }
    }
    for (id, session) in &desired.clone_sessions {
        match installed_sessions.get(id) {
            Some(current) if *current == session => {}
            Some(_) => {
                push(&mut plan, Type::Modify, wire::clone_entity(session));
                plan.report.clone_sessions_modified += 1;
            }
            None => {
                push(&mut plan, Type::Insert, wire::clone_entity(session));
                plan.report.clone_sessions_inserted += 1;
            }
        }
    }

    // 3. Entries that differ, then missing entries.
    for (key, entry) in &desired.entries {
        if let Some(current) = installed_entries.get(key)
            && current.action != entry.action
        {
            push(
                &mut plan,
                Type::Modify,
                wire::table_entity(wire::encode_entry(schema, entry)?),
            );
            plan.report.entries_modified += 1;
        }
    }
    for (key, entry) in &desired.entries {
        if !installed_entries.contains_key(key) {
            push(
                &mut plan,
                Type::Insert,
                wire::table_entity(wire::encode_entry(schema, entry)?),
            );
            plan.report.entries_inserted += 1;
        }
    }
    // A duplicate's key is desired or not; either way one copy too many is
    // installed, and deleting it by key would delete both: rare enough
    // (only a broken switch does it) to be logged and left alone.
    for entry in duplicates {
        tracing::warn!(entry = %entry, "the switch reports this entry twice");
    }

    // 4. Default actions.
    match &installed.default_actions {
        Some(current) => {
            let declared: BTreeSet<&str> =
                desired.default_actions.keys().map(String::as_str).collect();
            for table in schema.tables() {
                if table.const_default_action {
                    continue;
                }
                let want = match desired.default_actions.get(&table.name) {
                    Some(default) => Some(default.action.clone()),
                    None => wire::initial_default_action(schema, table),
                };
                let Some(want) = want else { continue };
                let have = current.get(&table.name);
                // A table the switch said nothing about is only written
                // when a default action was declared for it.
                let write = match have {
                    Some(have) => *have != want,
                    None => declared.contains(table.name.as_str()),
                };
                if write {
                    let default = DefaultAction {
                        table: table.name.clone(),
                        action: want,
                    };
                    push(
                        &mut plan,
                        Type::Modify,
                        wire::table_entity(wire::encode_default_action(schema, &default)?),
                    );
                    plan.report.default_actions_set += 1;
                }
            }
        }
        None => {
            for default in desired.default_actions.values() {
                push(
                    &mut plan,
                    Type::Modify,
                    wire::table_entity(wire::encode_default_action(schema, default)?),
                );
                plan.report.default_actions_set += 1;
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::umbra_schema;

    fn selector(schema: &P4Schema, service: u16, device: u8) -> TableEntry {
        schema
            .table("service_selector")
            .exact("service_id", service)
            .action("set_active_device")
            .param("device", device)
            .build()
            .unwrap()
    }

    fn kinds(plan: &Plan) -> Vec<(p4::update::Type, bool)> {
        plan.updates
            .iter()
            .map(|u| {
                let clone = matches!(
                    u.entity.as_ref().and_then(|e| e.entity.as_ref()),
                    Some(p4::entity::Entity::PacketReplicationEngineEntry(_))
                );
                (u.r#type(), clone)
            })
            .collect()
    }

    #[test]
    fn nothing_to_do_when_installed_equals_desired() {
        let schema = umbra_schema();
        let mut desired = DesiredState::new();
        desired.insert_entry(selector(&schema, 1, 1));
        let session = CloneSession::builder(5).replica(9, 1).build().unwrap();
        desired.insert_clone_session(session.clone());
        let installed = Installed {
            entries: vec![selector(&schema, 1, 1)],
            clone_sessions: vec![session],
            ..Installed::default()
        };
        let plan = plan(&schema, &desired, &installed).unwrap();
        assert!(plan.report.is_noop(), "{:?}", plan.report);
        assert!(plan.updates.is_empty());
    }

    #[test]
    fn deletes_stale_modifies_differing_inserts_missing_in_that_order() {
        let schema = umbra_schema();
        let mut desired = DesiredState::new();
        desired.insert_entry(selector(&schema, 1, 2)); // installed with device 1
        desired.insert_entry(selector(&schema, 2, 1)); // missing
        desired.insert_clone_session(CloneSession::builder(5).replica(9, 1).build().unwrap());
        let installed = Installed {
            entries: vec![selector(&schema, 1, 1), selector(&schema, 3, 1)], // 3 is stale
            undecodable: vec![p4::TableEntry {
                table_id: 0x0200_0fff,
                ..p4::TableEntry::default()
            }],
            clone_sessions: vec![
                CloneSession::builder(5).replica(8, 1).build().unwrap(),
                CloneSession::builder(6).replica(8, 1).build().unwrap(),
            ],
            default_actions: None,
        };
        let plan = plan(&schema, &desired, &installed).unwrap();
        use p4::update::Type::{Delete, Insert, Modify};
        assert_eq!(
            kinds(&plan),
            [
                (Delete, false), // undecodable
                (Delete, false), // service 3
                (Delete, true),  // session 6
                (Modify, true),  // session 5
                (Modify, false), // service 1
                (Insert, false), // service 2
            ]
        );
        assert_eq!(
            plan.report,
            ReconcileReport {
                entries_deleted: 2,
                entries_modified: 1,
                entries_inserted: 1,
                default_actions_set: 0,
                clone_sessions_deleted: 1,
                clone_sessions_modified: 1,
                clone_sessions_inserted: 0,
            }
        );
    }

    #[test]
    fn default_actions_are_reset_or_set_only_where_they_differ() {
        let schema = umbra_schema();
        let mut desired = DesiredState::new();
        desired.set_default_action(
            schema
                .default_action("mirror_sampling")
                .action("sample_per_packet")
                .param("one_in_n", 50u32)
                .param("session", 5u32)
                .build()
                .unwrap(),
        );
        let initial = |table: &str| {
            let info = schema.resolve_table(table).unwrap();
            wire::initial_default_action(&schema, info).unwrap()
        };
        let mut current: BTreeMap<String, ActionCall> = schema
            .table_names()
            .map(|t| (t.to_owned(), initial(t)))
            .collect();
        // Garbage: service_selector's default was changed behind our back.
        current.insert(
            "UmbraIngress.service_selector".into(),
            schema
                .default_action("service_selector")
                .action("set_active_device")
                .param("device", 9u8)
                .build()
                .unwrap()
                .action,
        );
        let installed = Installed {
            default_actions: Some(current),
            ..Installed::default()
        };
        let plan = plan(&schema, &desired, &installed).unwrap();
        // mirror_sampling set as declared, service_selector reset to drop().
        assert_eq!(plan.report.default_actions_set, 2, "{:?}", plan.report);
        assert_eq!(plan.updates.len(), 2);

        // A switch that cannot read defaults gets the declared ones only.
        let blind = Installed::default();
        let plan = super::plan(&schema, &desired, &blind).unwrap();
        assert_eq!(plan.report.default_actions_set, 1);
    }

    #[test]
    fn applied_updates_change_the_desired_state() {
        let schema = umbra_schema();
        let mut desired = DesiredState::new();
        let entry = selector(&schema, 1, 1);
        desired.apply(&Update::InsertEntry(entry.clone()));
        desired.apply(&Update::ModifyEntry(selector(&schema, 1, 2)));
        assert_eq!(
            desired.entry(entry.key()).unwrap().action().param("device"),
            Some(&crate::Value::from(2u8))
        );
        desired.apply(&Update::DeleteEntry(entry.key().clone()));
        assert_eq!(desired.entries().count(), 0);
        desired.apply(&Update::InsertCloneSession(
            CloneSession::builder(3).build().unwrap(),
        ));
        desired.apply(&Update::DeleteCloneSession(3));
        assert_eq!(desired.clone_sessions().count(), 0);
    }
}
