//! Name and id resolution over a P4Info: the one place where the host client
//! and the switch turn the names of umbra.p4 objects into P4Runtime ids.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::Arc,
};

use umbra_proto::p4::config::v1::{
    self as p4info, P4Info, Preamble, action_ref, counter_spec, match_field,
};

use crate::error::{ObjectKind, P4InfoError, Result};

/// How a match field is matched.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// Where a table may run an action (`ActionRef.scope`, from the P4
/// annotations `@tableonly` and `@defaultonly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionScope {
    /// In entries and as the default action (no annotation).
    TableAndDefault,
    /// In entries only (`@tableonly`).
    TableOnly,
    /// As the default action only (`@defaultonly`).
    DefaultOnly,
    /// Only as the group action of a one-shot action profile set: neither
    /// directly in entries nor as the default action.
    GroupAction,
}

impl ActionScope {
    /// The scope of a P4Info action reference, or `None` for a scope value
    /// this version of P4Runtime does not know.
    #[must_use]
    pub fn of(action_ref: &p4info::ActionRef) -> Option<Self> {
        match action_ref::Scope::try_from(action_ref.scope) {
            Ok(action_ref::Scope::TableAndDefault) => Some(Self::TableAndDefault),
            Ok(action_ref::Scope::TableOnly) => Some(Self::TableOnly),
            Ok(action_ref::Scope::DefaultOnly) => Some(Self::DefaultOnly),
            Ok(action_ref::Scope::GroupAction) => Some(Self::GroupAction),
            Err(_) => None,
        }
    }

    /// Whether entries may run the action directly.
    #[must_use]
    pub fn allows_entries(self) -> bool {
        matches!(self, Self::TableAndDefault | Self::TableOnly)
    }

    /// Whether the action may be the table's default action.
    #[must_use]
    pub fn allows_default(self) -> bool {
        matches!(self, Self::TableAndDefault | Self::DefaultOnly)
    }
}

impl fmt::Display for ActionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TableAndDefault => "table and default",
            Self::TableOnly => "@tableonly",
            Self::DefaultOnly => "@defaultonly",
            Self::GroupAction => "a group action",
        })
    }
}

/// An action a table can run, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionRefInfo {
    /// Id of the action.
    pub id: u32,
    /// Where the table may run it.
    pub scope: ActionScope,
}

/// A value given to an action parameter in the P4Info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionArgument {
    /// `Action.Param.param_id` of the parameter.
    pub param_id: u32,
    /// The value, a P4Runtime bytestring.
    pub value: Vec<u8>,
}

/// An action with its arguments, as the P4Info gives a table's initial
/// default action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionCallInfo {
    /// Id of the action.
    pub action_id: u32,
    /// One per parameter of the action, in P4Info order.
    pub arguments: Vec<ActionArgument>,
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
    /// Ids of the actions the table can run, in P4Info order: the ids of
    /// [`action_refs`](Self::action_refs), for callers that ignore scopes.
    pub action_ids: Vec<u32>,
    /// The actions the table can run with their scopes, in P4Info order.
    pub action_refs: Vec<ActionRefInfo>,
    /// The default action: the const one if the program fixes it, else the
    /// initial one (if the P4Info gives it).
    pub default_action_id: Option<u32>,
    /// The program fixes the default action.
    pub const_default_action: bool,
    /// The default action the table starts with, with its arguments, if
    /// the P4Info gives it.
    pub initial_default_action: Option<ActionCallInfo>,
    /// The program fixes the entries (`const entries`): the control plane
    /// cannot write them.
    pub is_const_table: bool,
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

    /// The key field with this id.
    #[must_use]
    pub fn match_field_by_id(&self, id: u32) -> Option<&MatchFieldInfo> {
        self.match_fields.iter().find(|f| f.id == id)
    }

    /// Whether entries need a priority (P4Runtime §9.1: the key has a
    /// ternary, range or optional field).
    #[must_use]
    pub fn needs_priority(&self) -> bool {
        self.match_fields.iter().any(|f| {
            matches!(
                f.match_kind,
                MatchKind::Ternary | MatchKind::Range | MatchKind::Optional
            )
        })
    }

    /// Whether the table can run the action with this id, in entries or as
    /// default action (scopes ignored).
    #[must_use]
    pub fn allows_action(&self, action_id: u32) -> bool {
        self.action_ids.contains(&action_id)
    }

    /// Where the table may run the action with this id; `None` when it
    /// cannot run it at all.
    #[must_use]
    pub fn action_scope(&self, action_id: u32) -> Option<ActionScope> {
        self.action_refs
            .iter()
            .find(|r| r.id == action_id)
            .map(|r| r.scope)
    }

    /// Whether entries of the table may run the action with this id (it is
    /// one of the table's actions, and not `@defaultonly` or a group
    /// action).
    #[must_use]
    pub fn allows_entry_action(&self, action_id: u32) -> bool {
        self.action_scope(action_id)
            .is_some_and(ActionScope::allows_entries)
    }

    /// Whether the action with this id may be the table's default action
    /// (it is one of the table's actions, and not `@tableonly` or a group
    /// action).
    #[must_use]
    pub fn allows_default_action(&self, action_id: u32) -> bool {
        self.action_scope(action_id)
            .is_some_and(ActionScope::allows_default)
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

    /// The parameter with this id.
    #[must_use]
    pub fn param_by_id(&self, id: u32) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.id == id)
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
    /// What the header is for: the argument of its
    /// `@controller_header("...")` annotation (`packet_in`, `packet_out`),
    /// or its name when it has none. p4c names the header after the
    /// annotation, but a P4Info written by hand need not.
    pub annotation_name: String,
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

    /// The field with this id.
    #[must_use]
    pub fn field_by_id(&self, id: u32) -> Option<&MetadataFieldInfo> {
        self.fields.iter().find(|f| f.id == id)
    }
}

/// The argument of a `@controller_header("...")` annotation among
/// `annotations`.
fn controller_header_annotation(annotations: &[String]) -> Option<&str> {
    annotations.iter().find_map(|annotation| {
        let argument = annotation
            .trim()
            .strip_prefix("@controller_header")?
            .trim_start()
            .strip_prefix('(')?
            .strip_suffix(')')?
            .trim();
        Some(argument.trim_matches('"'))
    })
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
    /// Index into `controller_headers` by annotation name.
    controller_headers_by_annotation: HashMap<String, usize>,
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

/// Reports arguments of a call of `action` (from the P4Info of table
/// `owner`) that name no parameter, name one twice, or leave one out.
fn check_arguments(
    owner: &str,
    action: &ActionInfo,
    arguments: &[ActionArgument],
    problems: &mut Vec<String>,
) {
    let what = format!("{owner}: initial default action {:?}", action.name);
    let mut given = HashSet::new();
    for argument in arguments {
        match action.param_by_id(argument.param_id) {
            None => problems.push(format!(
                "{what} has an argument for parameter id {}, which does not exist",
                argument.param_id
            )),
            Some(param) if !given.insert(param.id) => {
                problems.push(format!("{what} gives parameter {:?} twice", param.name));
            }
            Some(_) => {}
        }
    }
    for param in &action.params {
        if !given.contains(&param.id) {
            problems.push(format!("{what} lacks parameter {:?}", param.name));
        }
    }
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
    /// 0 or not unique, names are not unique within a kind, a table, direct
    /// counter or default action refers to an object that does not exist,
    /// a default action is `@tableonly`, the arguments of an initial
    /// default action do not match its parameters, or two controller
    /// headers have the same `@controller_header` name.
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
            if preamble.id == 0 {
                // Id 0 means "none" wherever P4Runtime refers to an object.
                problems.push(format!("{kind} {:?} has id 0", preamble.name));
            }
            if let Some((other_kind, other)) = ids.insert(preamble.id, (kind, &preamble.name)) {
                problems.push(format!(
                    "id {:#010x} is used twice: by {other_kind} {other:?} and by {kind} {:?}",
                    preamble.id, preamble.name
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
                let mut action_refs = Vec::with_capacity(table.action_refs.len());
                let mut seen = HashSet::new();
                for action_ref in &table.action_refs {
                    let action = action_ref.id;
                    if !action_ids.contains(&action) {
                        problems.push(format!(
                            "{owner} refers to action id {action:#010x}, which does not exist"
                        ));
                    }
                    if !seen.insert(action) {
                        problems.push(format!("{owner} refers to action id {action:#010x} twice"));
                    }
                    let scope = ActionScope::of(action_ref).unwrap_or_else(|| {
                        problems.push(format!(
                            "{owner}: action id {action:#010x} has unknown scope {}",
                            action_ref.scope
                        ));
                        ActionScope::TableAndDefault
                    });
                    action_refs.push(ActionRefInfo { id: action, scope });
                }
                let table_action_ids: Vec<u32> = action_refs.iter().map(|r| r.id).collect();
                let (default_action_id, const_default_action) = if table.const_default_action_id != 0
                {
                    (Some(table.const_default_action_id), true)
                } else {
                    (
                        table.initial_default_action.as_ref().map(|a| a.action_id),
                        false,
                    )
                };
                if let Some(default) = default_action_id {
                    match action_refs.iter().find(|r| r.id == default) {
                        None => problems.push(format!(
                            "{owner}: default action id {default:#010x} is not one of its actions"
                        )),
                        Some(r) if !r.scope.allows_default() => problems.push(format!(
                            "{owner}: default action id {default:#010x} is {}",
                            r.scope
                        )),
                        Some(_) => {}
                    }
                }
                let initial_default_action = table.initial_default_action.as_ref().map(|call| {
                    let call = ActionCallInfo {
                        action_id: call.action_id,
                        arguments: call
                            .arguments
                            .iter()
                            .map(|a| ActionArgument {
                                param_id: a.param_id,
                                value: a.value.clone(),
                            })
                            .collect(),
                    };
                    if let Some(action) = actions.iter().find(|a| a.id == call.action_id) {
                        check_arguments(&owner, action, &call.arguments, &mut problems);
                    }
                    call
                });
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
                    action_refs,
                    default_action_id,
                    const_default_action,
                    initial_default_action,
                    is_const_table: table.is_const_table,
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
                let annotations = h.preamble.as_ref().map_or(&[][..], |p| &p.annotations);
                let annotation_name = controller_header_annotation(annotations)
                    .map_or_else(|| name.clone(), str::to_owned);
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
                    annotation_name,
                    fields,
                }
            })
            .collect();

        let mut controller_headers_by_annotation = HashMap::new();
        for (i, header) in controller_headers.iter().enumerate() {
            if let Some(other) =
                controller_headers_by_annotation.insert(header.annotation_name.clone(), i)
            {
                problems.push(format!(
                    "controller headers {:?} and {:?} are both @controller_header({:?})",
                    controller_headers[other].name, header.name, header.annotation_name
                ));
            }
        }

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
            controller_headers_by_annotation,
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

    /// The action `action` (name or alias) as run by `table`, in entries or
    /// as default action: scopes are not checked here (see
    /// [`TableInfo::allows_entry_action`] and
    /// [`TableInfo::allows_default_action`]).
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

    /// The controller header annotated `@controller_header("<name>")`
    /// (`packet_in`, `packet_out`); a header without the annotation
    /// stands for its own name. See
    /// [`ControllerHeaderInfo::annotation_name`].
    ///
    /// # Errors
    ///
    /// [`P4InfoError::NotFound`], listing the annotation names there are.
    pub fn controller_header_by_annotation(&self, name: &str) -> Result<&ControllerHeaderInfo> {
        let headers = &self.inner.controller_headers;
        self.inner
            .controller_headers_by_annotation
            .get(name)
            .map(|&i| &headers.items[i])
            .ok_or_else(|| P4InfoError::NotFound {
                kind: ObjectKind::ControllerPacketMetadata,
                name: name.to_owned(),
                known: headers
                    .items
                    .iter()
                    .map(|h| h.annotation_name.clone())
                    .collect(),
            })
    }

    /// Every controller header, in P4Info order.
    #[must_use]
    pub fn controller_headers(&self) -> &[ControllerHeaderInfo] {
        &self.inner.controller_headers.items
    }
}
