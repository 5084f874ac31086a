//! Name and id resolution over a P4Info: the one place where the host client
//! and the switch turn the names of umbra.p4 objects into P4Runtime ids.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::Arc,
};

use umbra_proto::p4::config::v1::{self as p4info, P4Info, Preamble, counter_spec, match_field};

use crate::error::{ObjectKind, P4InfoError, Result};

/// How a match field is matched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// `exact`.
    Exact,
    /// `lpm`.
    Lpm,
    /// `ternary`.
    Ternary,
    /// `range`.
    Range,
    /// `optional`.
    Optional,
    /// A match kind the standard does not define, by name.
    Other(String),
    /// No match kind given (UNSPECIFIED).
    Unspecified,
    /// A MatchType value this version of P4Runtime does not know.
    Unrecognized(i32),
}

impl MatchKind {
    /// The match kind of a P4Info match field.
    #[must_use]
    pub fn of(field: &p4info::MatchField) -> Self {
        match &field.r#match {
            Some(match_field::Match::OtherMatchType(name)) => Self::Other(name.clone()),
            Some(match_field::Match::MatchType(value)) => {
                match match_field::MatchType::try_from(*value) {
                    Ok(match_field::MatchType::Exact) => Self::Exact,
                    Ok(match_field::MatchType::Lpm) => Self::Lpm,
                    Ok(match_field::MatchType::Ternary) => Self::Ternary,
                    Ok(match_field::MatchType::Range) => Self::Range,
                    Ok(match_field::MatchType::Optional) => Self::Optional,
                    Ok(match_field::MatchType::Unspecified) => Self::Unspecified,
                    Err(_) => Self::Unrecognized(*value),
                }
            }
            None => Self::Unspecified,
        }
    }
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
            Self::Unspecified => f.write_str("unspecified"),
            Self::Unrecognized(value) => write!(f, "unknown ({value})"),
        }
    }
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterUnit {
    /// No unit given (UNSPECIFIED).
    Unspecified,
    /// Bytes only.
    Bytes,
    /// Packets only.
    Packets,
    /// Packets and bytes.
    Both,
    /// A unit value this version of P4Runtime does not know.
    Unrecognized(i32),
}

impl CounterUnit {
    /// The unit of a P4Info counter spec (absent spec: unspecified).
    #[must_use]
    pub fn of(spec: Option<&p4info::CounterSpec>) -> Self {
        let Some(spec) = spec else {
            return Self::Unspecified;
        };
        match counter_spec::Unit::try_from(spec.unit) {
            Ok(counter_spec::Unit::Unspecified) => Self::Unspecified,
            Ok(counter_spec::Unit::Bytes) => Self::Bytes,
            Ok(counter_spec::Unit::Packets) => Self::Packets,
            Ok(counter_spec::Unit::Both) => Self::Both,
            Err(_) => Self::Unrecognized(spec.unit),
        }
    }
}

impl fmt::Display for CounterUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unspecified => f.write_str("unspecified"),
            Self::Bytes => f.write_str("bytes"),
            Self::Packets => f.write_str("packets"),
            Self::Both => f.write_str("packets and bytes"),
            Self::Unrecognized(value) => write!(f, "unknown ({value})"),
        }
    }
}

/// A field of a table key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchFieldInfo {
    /// `FieldMatch.field_id`.
    pub id: u32,
    /// Name of the key element.
    pub name: String,
    /// Width in bits.
    pub bitwidth: u32,
    /// How it is matched.
    pub match_kind: MatchKind,
}

/// A match-action table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// `TableEntry.table_id`.
    pub id: u32,
    /// Fully qualified name, e.g. `UmbraIngress.port_classify`.
    pub name: String,
    /// Short name, e.g. `port_classify`.
    pub alias: String,
    /// Key fields, in P4Info order.
    pub match_fields: Vec<MatchFieldInfo>,
    /// Ids of the actions the table can run, in P4Info order.
    pub action_ids: Vec<u32>,
    /// The default action: the const one if the program fixes it, else the
    /// initial one (if the P4Info gives it).
    pub default_action_id: Option<u32>,
    /// The program fixes the default action.
    pub const_default_action: bool,
    /// Id of the direct counter attached to the table.
    pub direct_counter_id: Option<u32>,
    /// Capacity requested by the program.
    pub size: i64,
}

impl TableInfo {
    /// The key field named `name`.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::MatchFieldNotFound`] when the table has no such field.
    pub fn match_field(&self, name: &str) -> Result<&MatchFieldInfo> {
        self.match_fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| P4InfoError::MatchFieldNotFound {
                table: self.name.clone(),
                field: name.to_owned(),
                known: self.match_fields.iter().map(|f| f.name.clone()).collect(),
            })
    }

    /// Whether the table can run the action with this id.
    #[must_use]
    pub fn allows_action(&self, action_id: u32) -> bool {
        self.action_ids.contains(&action_id)
    }
}

/// A control-plane parameter of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// `Action.Param.param_id`.
    pub id: u32,
    /// Parameter name.
    pub name: String,
    /// Width in bits.
    pub bitwidth: u32,
}

/// An action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInfo {
    /// `Action.action_id`.
    pub id: u32,
    /// Fully qualified name, e.g. `UmbraIngress.set_service`.
    pub name: String,
    /// Short name, e.g. `set_service`.
    pub alias: String,
    /// Parameters, in P4Info order.
    pub params: Vec<ParamInfo>,
}

impl ActionInfo {
    /// The parameter named `name`.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::ParamNotFound`] when the action has no such parameter.
    pub fn param(&self, name: &str) -> Result<&ParamInfo> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| P4InfoError::ParamNotFound {
                action: self.name.clone(),
                param: name.to_owned(),
                known: self.params.iter().map(|p| p.name.clone()).collect(),
            })
    }
}

/// An indexed counter array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterInfo {
    /// `CounterEntry.counter_id`.
    pub id: u32,
    /// Fully qualified name.
    pub name: String,
    /// Short name.
    pub alias: String,
    /// What it counts.
    pub unit: CounterUnit,
    /// Number of cells.
    pub size: i64,
}

/// A counter attached to a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectCounterInfo {
    /// Id of the direct counter.
    pub id: u32,
    /// Fully qualified name.
    pub name: String,
    /// Short name.
    pub alias: String,
    /// What it counts.
    pub unit: CounterUnit,
    /// Id of the table it is attached to.
    pub table_id: u32,
}

/// A field of a controller header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataFieldInfo {
    /// `PacketMetadata.metadata_id`.
    pub id: u32,
    /// Field name.
    pub name: String,
    /// Width in bits.
    pub bitwidth: u32,
}

/// A controller header (`packet_in` or `packet_out`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerHeaderInfo {
    /// Id of the header.
    pub id: u32,
    /// Name, from `@controller_header`.
    pub name: String,
    /// Short name (the same as `name` for p4c).
    pub alias: String,
    /// Fields, in header order.
    pub fields: Vec<MetadataFieldInfo>,
}

impl ControllerHeaderInfo {
    /// The field named `name`.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::MetadataFieldNotFound`] when the header has no such
    /// field.
    pub fn field(&self, name: &str) -> Result<&MetadataFieldInfo> {
        self.fields.iter().find(|f| f.name == name).ok_or_else(|| {
            P4InfoError::MetadataFieldNotFound {
                header: self.name.clone(),
                field: name.to_owned(),
                known: self.fields.iter().map(|f| f.name.clone()).collect(),
            }
        })
    }
}

/// Identity of an indexed object.
trait Object {
    fn id(&self) -> u32;
    fn name(&self) -> &str;
    fn alias(&self) -> &str;
}

macro_rules! impl_object {
    ($($ty:ty),*) => {$(
        impl Object for $ty {
            fn id(&self) -> u32 { self.id }
            fn name(&self) -> &str { &self.name }
            fn alias(&self) -> &str { &self.alias }
        }
    )*};
}
impl_object!(
    TableInfo,
    ActionInfo,
    CounterInfo,
    DirectCounterInfo,
    ControllerHeaderInfo
);

/// The objects of one kind, with their lookup maps.
#[derive(Debug)]
struct Registry<T> {
    kind: ObjectKind,
    items: Vec<T>,
    by_id: HashMap<u32, usize>,
    by_name: HashMap<String, usize>,
    by_alias: HashMap<String, Vec<usize>>,
}

impl<T: Object> Registry<T> {
    fn build(kind: ObjectKind, items: Vec<T>, problems: &mut Vec<String>) -> Self {
        let mut by_id = HashMap::new();
        let mut by_name = HashMap::new();
        let mut by_alias: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if item.name().is_empty() {
                problems.push(format!("{kind} with id {:#010x} has no name", item.id()));
            } else if by_name.insert(item.name().to_owned(), i).is_some() {
                problems.push(format!("two {kind}s are named {:?}", item.name()));
            }
            // Ids unique across kinds are checked by the caller.
            by_id.entry(item.id()).or_insert(i);
            if !item.alias().is_empty() {
                by_alias.entry(item.alias().to_owned()).or_default().push(i);
            }
        }
        Self {
            kind,
            items,
            by_id,
            by_name,
            by_alias,
        }
    }

    fn get(&self, name: &str) -> Result<&T> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(&self.items[i]);
        }
        match self.by_alias.get(name).map(Vec::as_slice) {
            Some(&[i]) => Ok(&self.items[i]),
            Some(several) => Err(P4InfoError::AmbiguousAlias {
                kind: self.kind,
                alias: name.to_owned(),
                candidates: several
                    .iter()
                    .map(|&i| self.items[i].name().to_owned())
                    .collect(),
            }),
            None => Err(P4InfoError::NotFound {
                kind: self.kind,
                name: name.to_owned(),
                known: self.items.iter().map(|o| o.name().to_owned()).collect(),
            }),
        }
    }

    fn get_by_id(&self, id: u32) -> Result<&T> {
        self.by_id
            .get(&id)
            .map(|&i| &self.items[i])
            .ok_or(P4InfoError::IdNotFound {
                kind: self.kind,
                id,
            })
    }
}

#[derive(Debug)]
struct Inner {
    p4info: P4Info,
    tables: Registry<TableInfo>,
    actions: Registry<ActionInfo>,
    counters: Registry<CounterInfo>,
    direct_counters: Registry<DirectCounterInfo>,
    controller_headers: Registry<ControllerHeaderInfo>,
}

/// Lookup of the tables, actions, counters, direct counters and controller
/// headers of a P4Info by fully qualified name, alias or id.
///
/// A fully qualified name always wins over an alias; an alias shared by
/// several objects of one kind must be spelled out in full. Cheap to clone
/// (the index is shared).
#[derive(Debug, Clone)]
pub struct P4InfoIndex {
    inner: Arc<Inner>,
}

fn preamble_of(preamble: Option<&Preamble>) -> (u32, String, String) {
    preamble.map_or((0, String::new(), String::new()), |p| {
        (p.id, p.name.clone(), p.alias.clone())
    })
}

fn bitwidth(what: impl FnOnce() -> String, bitwidth: i32, problems: &mut Vec<String>) -> u32 {
    u32::try_from(bitwidth).unwrap_or_else(|_| {
        problems.push(format!("{} has negative bitwidth {bitwidth}", what()));
        0
    })
}

/// Reports duplicate names or ids among the members of one object.
fn check_members<'a>(
    owner: &str,
    member: &str,
    members: impl Iterator<Item = (u32, &'a str)>,
    problems: &mut Vec<String>,
) {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for (id, name) in members {
        if !ids.insert(id) {
            problems.push(format!("{owner}: two {member}s have id {id}"));
        }
        if !names.insert(name) {
            problems.push(format!("{owner}: two {member}s are named {name:?}"));
        }
    }
}

impl P4InfoIndex {
    /// Indexes a P4Info, checking that it is consistent.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::Inconsistent`], listing every problem, when ids are
    /// not unique, names are not unique within a kind, or a table, direct
    /// counter or default action refers to an object that does not exist.
    pub fn new(p4info: &P4Info) -> Result<Self> {
        let mut problems = Vec::new();

        // Ids are unique across the whole program (the prefix tells kinds
        // apart, so a clash means two objects would be indistinguishable).
        let mut ids: HashMap<u32, (ObjectKind, &str)> = HashMap::new();
        for (kind, preamble) in crate::compare::preambles(p4info) {
            let Some(preamble) = preamble else {
                problems.push(format!("a {kind} has no preamble"));
                continue;
            };
            if let Some((other_kind, other)) = ids.insert(preamble.id, (kind, &preamble.name)) {
                problems.push(format!(
                    "{kind} {:?} and {other_kind} {other:?} share id {:#010x}",
                    preamble.name, preamble.id
                ));
            }
        }
        let direct_meter_ids: HashSet<u32> = p4info
            .direct_meters
            .iter()
            .filter_map(|m| m.preamble.as_ref().map(|p| p.id))
            .collect();
        let action_profile_ids: HashSet<u32> = p4info
            .action_profiles
            .iter()
            .filter_map(|m| m.preamble.as_ref().map(|p| p.id))
            .collect();

        let actions: Vec<ActionInfo> = p4info
            .actions
            .iter()
            .map(|action| {
                let (id, name, alias) = preamble_of(action.preamble.as_ref());
                let params = action
                    .params
                    .iter()
                    .map(|p| ParamInfo {
                        id: p.id,
                        name: p.name.clone(),
                        bitwidth: bitwidth(
                            || format!("action {name:?}: param {:?}", p.name),
                            p.bitwidth,
                            &mut problems,
                        ),
                    })
                    .collect::<Vec<_>>();
                check_members(
                    &format!("action {name:?}"),
                    "param",
                    params.iter().map(|p| (p.id, p.name.as_str())),
                    &mut problems,
                );
                ActionInfo {
                    id,
                    name,
                    alias,
                    params,
                }
            })
            .collect();
        let action_ids: HashSet<u32> = actions.iter().map(|a| a.id).collect();

        let direct_counters: Vec<DirectCounterInfo> = p4info
            .direct_counters
            .iter()
            .map(|c| {
                let (id, name, alias) = preamble_of(c.preamble.as_ref());
                DirectCounterInfo {
                    id,
                    name,
                    alias,
                    unit: CounterUnit::of(c.spec.as_ref()),
                    table_id: c.direct_table_id,
                }
            })
            .collect();
        let table_ids: HashSet<u32> = p4info
            .tables
            .iter()
            .filter_map(|t| t.preamble.as_ref().map(|p| p.id))
            .collect();
        for counter in &direct_counters {
            if !table_ids.contains(&counter.table_id) {
                problems.push(format!(
                    "direct counter {:?} is attached to table id {:#010x}, which does not exist",
                    counter.name, counter.table_id
                ));
            }
        }

        let tables: Vec<TableInfo> = p4info
            .tables
            .iter()
            .map(|table| {
                let (id, name, alias) = preamble_of(table.preamble.as_ref());
                let owner = format!("table {name:?}");
                let match_fields = table
                    .match_fields
                    .iter()
                    .map(|f| MatchFieldInfo {
                        id: f.id,
                        name: f.name.clone(),
                        bitwidth: bitwidth(
                            || format!("{owner}: match field {:?}", f.name),
                            f.bitwidth,
                            &mut problems,
                        ),
                        match_kind: MatchKind::of(f),
                    })
                    .collect::<Vec<_>>();
                check_members(
                    &owner,
                    "match field",
                    match_fields.iter().map(|f| (f.id, f.name.as_str())),
                    &mut problems,
                );
                let table_action_ids: Vec<u32> = table.action_refs.iter().map(|r| r.id).collect();
                let mut seen = HashSet::new();
                for &action in &table_action_ids {
                    if !action_ids.contains(&action) {
                        problems.push(format!(
                            "{owner} refers to action id {action:#010x}, which does not exist"
                        ));
                    }
                    if !seen.insert(action) {
                        problems.push(format!("{owner} refers to action id {action:#010x} twice"));
                    }
                }
                let (default_action_id, const_default_action) = if table.const_default_action_id != 0
                {
                    (Some(table.const_default_action_id), true)
                } else {
                    (
                        table.initial_default_action.as_ref().map(|a| a.action_id),
                        false,
                    )
                };
                if let Some(default) = default_action_id
                    && !table_action_ids.contains(&default)
                {
                    problems.push(format!(
                        "{owner}: default action id {default:#010x} is not one of its actions"
                    ));
                }
                let mut direct_counter_id = None;
                for &resource in &table.direct_resource_ids {
                    if let Some(counter) = direct_counters.iter().find(|c| c.id == resource) {
                        if counter.table_id != id {
                            problems.push(format!(
                                "{owner} lists direct counter {:?}, which is attached to table id {:#010x}",
                                counter.name, counter.table_id
                            ));
                        }
                        if direct_counter_id.replace(resource).is_some() {
                            problems.push(format!("{owner} has more than one direct counter"));
                        }
                    } else if !direct_meter_ids.contains(&resource) {
                        problems.push(format!(
                            "{owner} refers to direct resource id {resource:#010x}, which does not exist"
                        ));
                    }
                }
                if table.implementation_id != 0
                    && !action_profile_ids.contains(&table.implementation_id)
                {
                    problems.push(format!(
                        "{owner}: implementation id {:#010x} is not an action profile",
                        table.implementation_id
                    ));
                }
                TableInfo {
                    id,
                    name,
                    alias,
                    match_fields,
                    action_ids: table_action_ids,
                    default_action_id,
                    const_default_action,
                    direct_counter_id,
                    size: table.size,
                }
            })
            .collect();
        for counter in &direct_counters {
            if let Some(table) = tables.iter().find(|t| t.id == counter.table_id)
                && table.direct_counter_id != Some(counter.id)
            {
                problems.push(format!(
                    "direct counter {:?} is attached to table {:?}, which does not list it",
                    counter.name, table.name
                ));
            }
        }

        let counters: Vec<CounterInfo> = p4info
            .counters
            .iter()
            .map(|c| {
                let (id, name, alias) = preamble_of(c.preamble.as_ref());
                CounterInfo {
                    id,
                    name,
                    alias,
                    unit: CounterUnit::of(c.spec.as_ref()),
                    size: c.size,
                }
            })
            .collect();

        let controller_headers: Vec<ControllerHeaderInfo> = p4info
            .controller_packet_metadata
            .iter()
            .map(|h| {
                let (id, name, alias) = preamble_of(h.preamble.as_ref());
                let fields = h
                    .metadata
                    .iter()
                    .map(|m| MetadataFieldInfo {
                        id: m.id,
                        name: m.name.clone(),
                        bitwidth: bitwidth(
                            || format!("controller header {name:?}: field {:?}", m.name),
                            m.bitwidth,
                            &mut problems,
                        ),
                    })
                    .collect::<Vec<_>>();
                check_members(
                    &format!("controller header {name:?}"),
                    "field",
                    fields.iter().map(|f| (f.id, f.name.as_str())),
                    &mut problems,
                );
                ControllerHeaderInfo {
                    id,
                    name,
                    alias,
                    fields,
                }
            })
            .collect();

        let inner = Inner {
            p4info: p4info.clone(),
            tables: Registry::build(ObjectKind::Table, tables, &mut problems),
            actions: Registry::build(ObjectKind::Action, actions, &mut problems),
            counters: Registry::build(ObjectKind::Counter, counters, &mut problems),
            direct_counters: Registry::build(
                ObjectKind::DirectCounter,
                direct_counters,
                &mut problems,
            ),
            controller_headers: Registry::build(
                ObjectKind::ControllerPacketMetadata,
                controller_headers,
                &mut problems,
            ),
        };
        if !problems.is_empty() {
            return Err(P4InfoError::Inconsistent { problems });
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The indexed P4Info.
    #[must_use]
    pub fn p4info(&self) -> &P4Info {
        &self.inner.p4info
    }

    /// The table with this fully qualified name or alias.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`] or [`P4InfoError::AmbiguousAlias`].
    pub fn table(&self, name: &str) -> Result<&TableInfo> {
        self.inner.tables.get(name)
    }

    /// The table with this id.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::IdNotFound`].
    pub fn table_by_id(&self, id: u32) -> Result<&TableInfo> {
        self.inner.tables.get_by_id(id)
    }

    /// Every table, in P4Info order.
    #[must_use]
    pub fn tables(&self) -> &[TableInfo] {
        &self.inner.tables.items
    }

    /// The action with this fully qualified name or alias.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`] or [`P4InfoError::AmbiguousAlias`].
    pub fn action(&self, name: &str) -> Result<&ActionInfo> {
        self.inner.actions.get(name)
    }

    /// The action with this id.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::IdNotFound`].
    pub fn action_by_id(&self, id: u32) -> Result<&ActionInfo> {
        self.inner.actions.get_by_id(id)
    }

    /// Every action, in P4Info order.
    #[must_use]
    pub fn actions(&self) -> &[ActionInfo] {
        &self.inner.actions.items
    }

    /// The action `action` (name or alias) as run by `table`.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`] or [`P4InfoError::AmbiguousAlias`] for the
    /// table or the action, [`P4InfoError::ActionNotAllowed`] when the table
    /// cannot run it.
    pub fn table_action(&self, table: &str, action: &str) -> Result<&ActionInfo> {
        let table = self.table(table)?;
        let action = self.action(action)?;
        if table.allows_action(action.id) {
            Ok(action)
        } else {
            Err(P4InfoError::ActionNotAllowed {
                table: table.name.clone(),
                action: action.name.clone(),
                allowed: self.action_names(table),
            })
        }
    }

    /// The actions `table` can run, in P4Info order.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`] or [`P4InfoError::AmbiguousAlias`].
    pub fn table_actions(&self, table: &str) -> Result<Vec<&ActionInfo>> {
        let table = self.table(table)?;
        table
            .action_ids
            .iter()
            .map(|&id| self.action_by_id(id))
            .collect()
    }

    fn action_names(&self, table: &TableInfo) -> Vec<String> {
        table
            .action_ids
            .iter()
            .filter_map(|&id| self.action_by_id(id).ok())
            .map(|a| a.name.clone())
            .collect()
    }

    /// The counter with this fully qualified name or alias.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`] or [`P4InfoError::AmbiguousAlias`].
    pub fn counter(&self, name: &str) -> Result<&CounterInfo> {
        self.inner.counters.get(name)
    }

    /// The counter with this id.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::IdNotFound`].
    pub fn counter_by_id(&self, id: u32) -> Result<&CounterInfo> {
        self.inner.counters.get_by_id(id)
    }

    /// Every counter, in P4Info order.
    #[must_use]
    pub fn counters(&self) -> &[CounterInfo] {
        &self.inner.counters.items
    }

    /// The direct counter with this fully qualified name or alias.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`] or [`P4InfoError::AmbiguousAlias`].
    pub fn direct_counter(&self, name: &str) -> Result<&DirectCounterInfo> {
        self.inner.direct_counters.get(name)
    }

    /// The direct counter with this id.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::IdNotFound`].
    pub fn direct_counter_by_id(&self, id: u32) -> Result<&DirectCounterInfo> {
        self.inner.direct_counters.get_by_id(id)
    }

    /// Every direct counter, in P4Info order.
    #[must_use]
    pub fn direct_counters(&self) -> &[DirectCounterInfo] {
        &self.inner.direct_counters.items
    }

    /// The direct counter attached to `table` (name or alias).
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`] or [`P4InfoError::AmbiguousAlias`] for the
    /// table, [`P4InfoError::NoDirectCounter`] when it has none.
    pub fn table_direct_counter(&self, table: &str) -> Result<&DirectCounterInfo> {
        let table = self.table(table)?;
        match table.direct_counter_id {
            Some(id) => self.direct_counter_by_id(id),
            None => Err(P4InfoError::NoDirectCounter {
                table: table.name.clone(),
            }),
        }
    }

    /// The controller header with this name (`packet_in`, `packet_out`) or
    /// alias.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`] or [`P4InfoError::AmbiguousAlias`].
    pub fn controller_header(&self, name: &str) -> Result<&ControllerHeaderInfo> {
        self.inner.controller_headers.get(name)
    }

    /// The controller header with this id.
    ///
    /// # Errors
    ///
    /// [`P4InfoError::IdNotFound`].
    pub fn controller_header_by_id(&self, id: u32) -> Result<&ControllerHeaderInfo> {
        self.inner.controller_headers.get_by_id(id)
    }

    /// Every controller header, in P4Info order.
    #[must_use]
    pub fn controller_headers(&self) -> &[ControllerHeaderInfo] {
        &self.inner.controller_headers.items
    }
}
