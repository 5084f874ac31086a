//! The P4Runtime entities host code deals in, by name: table entries,
//! default actions, clone sessions, counter values and controller packets.
//!
//! Every name in them is fully qualified (resolved by a
//! [`P4Schema`](crate::P4Schema) when built or decoded) and every value is a
//! canonical [`Value`], so an entity read back from a switch compares equal
//! to the one written. They carry no P4Runtime id: ids are looked up when an
//! entity is encoded, in the schema of the pipeline in force.

use std::collections::BTreeMap;
use std::fmt;

use crate::value::Value;

/// How one field of a table entry is matched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldMatch {
    /// The field equals `value`.
    Exact {
        /// The value.
        value: Value,
    },
    /// `field & mask == value & mask`.
    Ternary {
        /// The value (already masked).
        value: Value,
        /// The mask.
        mask: Value,
    },
    /// The top `prefix_len` bits of the field equal those of `value`.
    Lpm {
        /// The value (bits past the prefix are zero).
        value: Value,
        /// Prefix length in bits.
        prefix_len: i32,
    },
    /// `low <= field <= high`.
    Range {
        /// Lowest value matched.
        low: Value,
        /// Highest value matched.
        high: Value,
    },
    /// The field equals `value` (an optional field left out of an entry is
    /// a wildcard).
    Optional {
        /// The value.
        value: Value,
    },
}

impl fmt::Display for FieldMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact { value } | Self::Optional { value } => write!(f, "{value}"),
            Self::Ternary { value, mask } => write!(f, "{value} &&& {mask}"),
            Self::Lpm { value, prefix_len } => write!(f, "{value}/{prefix_len}"),
            Self::Range { low, high } => write!(f, "{low}..={high}"),
        }
    }
}

/// What identifies a table entry: its table, its match and its priority
/// (P4Runtime §9.1). Two entries with the same key are the same entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryKey {
    pub(crate) table: String,
    pub(crate) matches: BTreeMap<String, FieldMatch>,
    pub(crate) priority: i32,
}

impl EntryKey {
    /// Fully qualified name of the table.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The match, by match field name. Fields left out (wildcards) are
    /// absent.
    #[must_use]
    pub fn matches(&self) -> &BTreeMap<String, FieldMatch> {
        &self.matches
    }

    /// How `field` is matched, if it is not a wildcard.
    #[must_use]
    pub fn field(&self, field: &str) -> Option<&FieldMatch> {
        self.matches.get(field)
    }

    /// The priority (0 for tables of only exact and LPM fields).
    #[must_use]
    pub fn priority(&self) -> i32 {
        self.priority
    }
}

impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.table)?;
        for (i, (name, m)) in self.matches.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={m}")?;
        }
        f.write_str("]")?;
        if self.priority != 0 {
            write!(f, " priority {}", self.priority)?;
        }
        Ok(())
    }
}

/// An action with its arguments, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionCall {
    pub(crate) action: String,
    pub(crate) params: BTreeMap<String, Value>,
}

impl ActionCall {
    /// Fully qualified name of the action.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.action
    }

    /// Arguments by parameter name.
    #[must_use]
    pub fn params(&self) -> &BTreeMap<String, Value> {
        &self.params
    }

    /// The argument of `param`.
    #[must_use]
    pub fn param(&self, param: &str) -> Option<&Value> {
        self.params.get(param)
    }
}

impl fmt::Display for ActionCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.action)?;
        for (i, (name, value)) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={value}")?;
        }
        f.write_str(")")
    }
}

/// A table entry: a key and the action it runs. Built with
/// [`P4Schema::table`](crate::P4Schema::table) or read from a switch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableEntry {
    pub(crate) key: EntryKey,
    pub(crate) action: ActionCall,
}

impl TableEntry {
    /// What identifies the entry.
    #[must_use]
    pub fn key(&self) -> &EntryKey {
        &self.key
    }

    /// Fully qualified name of the table.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.key.table
    }

    /// The action the entry runs.
    #[must_use]
    pub fn action(&self) -> &ActionCall {
        &self.action
    }
}

impl fmt::Display for TableEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.key, self.action)
    }
}

/// The action a table runs on a miss. Built with
/// [`P4Schema::default_action`](crate::P4Schema::default_action).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DefaultAction {
    pub(crate) table: String,
    pub(crate) action: ActionCall,
}

impl DefaultAction {
    /// Fully qualified name of the table.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The action.
    #[must_use]
    pub fn action(&self) -> &ActionCall {
        &self.action
    }
}

/// One copy a clone session makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Replica {
    /// Egress port of the copy.
    pub port: u32,
    /// Instance number, distinguishing copies to one port.
    pub instance: u32,
}

/// A clone session of the packet replication engine (the target of
/// `clone(CloneType.I2E, session)`). Built with [`CloneSession::builder`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloneSession {
    pub(crate) session_id: u32,
    /// Sorted: replicas are a set, so order must not make two sessions
    /// differ.
    pub(crate) replicas: Vec<Replica>,
    pub(crate) class_of_service: u32,
    pub(crate) packet_length_bytes: i32,
}

impl CloneSession {
    /// Starts building session `session_id` (not 0: 0 is the wildcard of
    /// reads).
    pub fn builder(session_id: u32) -> CloneSessionBuilder {
        CloneSessionBuilder {
            session: Self {
                session_id,
                replicas: Vec::new(),
                class_of_service: 0,
                packet_length_bytes: 0,
            },
        }
    }

    /// The session id.
    #[must_use]
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// The copies made, sorted by port then instance.
    #[must_use]
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// Class of service of the copies.
    #[must_use]
    pub fn class_of_service(&self) -> u32 {
        self.class_of_service
    }

    /// Length copies are truncated to, 0 for none. bmv2 refuses non-zero
    /// values; `umbra.p4` truncates in its egress instead.
    #[must_use]
    pub fn packet_length_bytes(&self) -> i32 {
        self.packet_length_bytes
    }
}

/// Builds a [`CloneSession`].
#[derive(Debug, Clone)]
#[must_use]
pub struct CloneSessionBuilder {
    session: CloneSession,
}

impl CloneSessionBuilder {
    /// Adds a copy to `port` with instance `instance`.
    pub fn replica(mut self, port: u32, instance: u32) -> Self {
        self.session.replicas.push(Replica { port, instance });
        self
    }

    /// Sets the class of service of the copies.
    pub fn class_of_service(mut self, class_of_service: u32) -> Self {
        self.session.class_of_service = class_of_service;
        self
    }

    /// Truncates copies to `length` bytes (0: no truncation).
    pub fn packet_length_bytes(mut self, length: i32) -> Self {
        self.session.packet_length_bytes = length;
        self
    }

    /// The session.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`](crate::P4rtError::InvalidEntity) listing
    /// every problem: session id 0, a negative length, a replica given
    /// twice.
    pub fn build(mut self) -> crate::Result<CloneSession> {
        use crate::error::EntityProblem;
        let id = self.session.session_id;
        let mut problems = Vec::new();
        let problem = |reason: String| EntityProblem::CloneSession {
            session_id: id,
            reason,
        };
        if id == 0 {
            problems.push(problem(
                "session id 0 is reserved (the read wildcard)".into(),
            ));
        }
        if self.session.packet_length_bytes < 0 {
            problems.push(problem(format!(
                "packet_length_bytes {} is negative",
                self.session.packet_length_bytes
            )));
        }
        self.session.replicas.sort_unstable();
        for pair in self.session.replicas.windows(2) {
            if pair[0] == pair[1] {
                problems.push(problem(format!(
                    "replica port {} instance {} given twice",
                    pair[0].port, pair[0].instance
                )));
            }
        }
        if problems.is_empty() {
            Ok(self.session)
        } else {
            Err(crate::P4rtError::InvalidEntity {
                what: format!("clone session {id}"),
                problems,
            })
        }
    }
}

/// Packet and byte counts of one counter cell or one table entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CounterData {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// A packet for the switch to send out, with its `packet_out` controller
/// header fields by name. Built with
/// [`P4Schema::packet_out`](crate::P4Schema::packet_out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub(crate) payload: Vec<u8>,
    pub(crate) metadata: BTreeMap<String, Value>,
}

impl PacketOut {
    /// The frame.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Controller header fields by name (every field of the header: the
    /// ones not given are 0).
    #[must_use]
    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }
}

/// A packet the switch sent to the controller, with its `packet_in`
/// controller header fields by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    /// The frame.
    pub payload: Vec<u8>,
    /// Controller header fields by name. Fields whose id the P4Info does
    /// not know (or every field, before a pipeline is known) are dropped.
    pub metadata: BTreeMap<String, Value>,
}

impl PacketIn {
    /// The controller header field `name`.
    #[must_use]
    pub fn metadata(&self, name: &str) -> Option<&Value> {
        self.metadata.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EntityProblem;

    #[test]
    fn clone_session_builder_sorts_replicas_and_reports_every_problem() {
        let session = CloneSession::builder(5)
            .replica(7, 2)
            .replica(3, 1)
            .packet_length_bytes(128)
            .build()
            .unwrap();
        assert_eq!(
            session.replicas(),
            [
                Replica {
                    port: 3,
                    instance: 1
                },
                Replica {
                    port: 7,
                    instance: 2
                }
            ]
        );
        assert_eq!(session.packet_length_bytes(), 128);

        let err = CloneSession::builder(0)
            .replica(1, 1)
            .replica(1, 1)
            .packet_length_bytes(-1)
            .build()
            .unwrap_err();
        let problems = err.entity_problems();
        assert_eq!(problems.len(), 3, "{err}");
        assert!(
            problems
                .iter()
                .all(|p| matches!(p, EntityProblem::CloneSession { session_id: 0, .. }))
        );
    }
}
