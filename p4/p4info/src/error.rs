//! The error type of the P4Info layer.

use std::fmt;

/// Result of the P4Info layer.
pub type Result<T, E = P4InfoError> = std::result::Result<T, E>;

/// The kinds of program object a P4Info describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A match-action table.
    Table,
    /// An action.
    Action,
    /// An action profile or action selector.
    ActionProfile,
    /// An indexed counter.
    Counter,
    /// A counter attached to a table.
    DirectCounter,
    /// An indexed meter.
    Meter,
    /// A meter attached to a table.
    DirectMeter,
    /// A controller header (`packet_in` / `packet_out`).
    ControllerPacketMetadata,
    /// A parser value set.
    ValueSet,
    /// A register array.
    Register,
    /// A digest.
    Digest,
    /// An instance of an architecture-specific extern.
    Extern,
}

impl ObjectKind {
    /// The P4Runtime id prefix (top byte of the id) of objects of this kind,
    /// or `None` for architecture-specific externs, whose prefix varies.
    #[must_use]
    pub fn id_prefix(self) -> Option<u8> {
        Some(match self {
            Self::Action => 0x01,
            Self::Table => 0x02,
            Self::ValueSet => 0x03,
            Self::ControllerPacketMetadata => 0x04,
            Self::ActionProfile => 0x11,
            Self::Counter => 0x12,
            Self::DirectCounter => 0x13,
            Self::Meter => 0x14,
            Self::DirectMeter => 0x15,
            Self::Register => 0x16,
            Self::Digest => 0x17,
            Self::Extern => return None,
        })
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Table => "table",
            Self::Action => "action",
            Self::ActionProfile => "action profile",
            Self::Counter => "counter",
            Self::DirectCounter => "direct counter",
            Self::Meter => "meter",
            Self::DirectMeter => "direct meter",
            Self::ControllerPacketMetadata => "controller packet metadata",
            Self::ValueSet => "value set",
            Self::Register => "register",
            Self::Digest => "digest",
            Self::Extern => "extern instance",
        })
    }
}

/// Errors of the P4Info layer: loading a P4Info and resolving names in it.
#[derive(Debug, thiserror::Error)]
pub enum P4InfoError {
    /// umbra-proto's embedded descriptor set cannot be loaded. This is a bug
    /// in umbra-proto's build, not in the input.
    #[error("umbra-proto's embedded descriptor set is unusable")]
    Descriptors(#[source] prost_reflect::DescriptorError),

    /// umbra-proto's embedded descriptor set lacks a message this crate
    /// needs. This is a bug in umbra-proto's build, not in the input.
    #[error("umbra-proto's descriptor set has no message {0}")]
    MissingDescriptor(&'static str),

    /// The text is not a valid text-format `p4.config.v1.P4Info` (syntax
    /// error, unknown field, wrong value type). Whoever wrote the text is at
    /// fault; `line` and `column` (1-based) point at the problem when the
    /// parser reports a position.
    #[error("invalid P4Info text{}: {source}", location(*.line, *.column))]
    TextFormat {
        /// Line of the problem, 1-based.
        line: Option<usize>,
        /// Column of the problem, 1-based, in characters.
        column: Option<usize>,
        /// The parser's error.
        #[source]
        source: prost_reflect::text_format::ParseError,
    },

    /// A parsed P4Info could not be converted to the generated type. This is
    /// a bug: umbra-proto's descriptors and generated code disagree.
    #[error("parsed P4Info does not convert to the generated type")]
    Transcode(#[source] prost::DecodeError),

    /// The P4Info contradicts itself (duplicate ids or names, references to
    /// objects that do not exist). Whoever produced the P4Info is at fault;
    /// every problem found is listed.
    #[error("inconsistent P4Info:\n  {}", .problems.join("\n  "))]
    Inconsistent {
        /// One sentence per problem.
        problems: Vec<String>,
    },

    /// No object of this kind has this fully qualified name or alias. The
    /// caller asked for something the program does not have: a typo, or a
    /// P4Info of another program.
    #[error("no {kind} named {name:?} in the P4Info (known: {})", list(.known))]
    NotFound {
        /// What was looked up.
        kind: ObjectKind,
        /// The name or alias asked for.
        name: String,
        /// Fully qualified names of the objects of this kind.
        known: Vec<String>,
    },

    /// Several objects of this kind share this alias (and none has it as
    /// fully qualified name). The caller must use a fully qualified name.
    #[error("{kind} alias {alias:?} is ambiguous: use one of {}", list(.candidates))]
    AmbiguousAlias {
        /// What was looked up.
        kind: ObjectKind,
        /// The alias asked for.
        alias: String,
        /// Fully qualified names of the objects sharing it.
        candidates: Vec<String>,
    },

    /// No object of this kind has this id. Usually a peer sent an id of
    /// another program (or of another kind of object).
    #[error("no {kind} with id {id:#010x} in the P4Info")]
    IdNotFound {
        /// What was looked up.
        kind: ObjectKind,
        /// The id asked for.
        id: u32,
    },

    /// The table has no match field of this name. The caller is at fault.
    #[error("table {table:?} has no match field {field:?} (it has: {})", list(.known))]
    MatchFieldNotFound {
        /// Fully qualified name of the table.
        table: String,
        /// The match field asked for.
        field: String,
        /// The table's match fields.
        known: Vec<String>,
    },

    /// The action has no parameter of this name. The caller is at fault.
    #[error("action {action:?} has no parameter {param:?} (it has: {})", list(.known))]
    ParamNotFound {
        /// Fully qualified name of the action.
        action: String,
        /// The parameter asked for.
        param: String,
        /// The action's parameters.
        known: Vec<String>,
    },

    /// The controller header has no field of this name. The caller is at
    /// fault.
    #[error("controller header {header:?} has no field {field:?} (it has: {})", list(.known))]
    MetadataFieldNotFound {
        /// Name of the controller header.
        header: String,
        /// The field asked for.
        field: String,
        /// The header's fields.
        known: Vec<String>,
    },

    /// The action exists but the table may not run it. The caller is at
    /// fault.
    #[error("table {table:?} cannot run action {action:?} (it can run: {})", list(.allowed))]
    ActionNotAllowed {
        /// Fully qualified name of the table.
        table: String,
        /// Fully qualified name of the action.
        action: String,
        /// Fully qualified names of the actions the table can run.
        allowed: Vec<String>,
    },

    /// The table has no direct counter. The caller is at fault.
    #[error("table {table:?} has no direct counter")]
    NoDirectCounter {
        /// Fully qualified name of the table.
        table: String,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
