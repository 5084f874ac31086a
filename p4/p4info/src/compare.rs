//! Structural comparison of two P4Infos: how the switch decides whether the
//! P4Info a controller sends describes umbra.p4.
//!
//! Objects are matched by fully qualified name and compared on what the
//! P4Runtime wire protocol and the pipeline's behaviour depend on:
//!
//! - every object: presence (both ways) and id;
//! - tables: match fields (name, id, bitwidth, match type), the actions they
//!   can run (by name) and each reference's scope, attached direct resources
//!   (by name), const default action, const-ness, initial entries, idle
//!   timeout behaviour and implementation (action profile, by name);
//! - actions: parameters (name, id, bitwidth);
//! - counters: unit and size; direct counters: unit and table (by name);
//! - controller packet metadata: fields (name, id, bitwidth);
//! - other kinds (meters, registers, digests, value sets, action profiles,
//!   externs): presence and id only. umbra.p4 has none, so any of them on
//!   either side is reported.
//!
//! Ignored, because p4c (or any other compiler) may legitimately emit them
//! differently for the same program and no P4Runtime message depends on
//! them: the order of objects, fields, parameters and action references;
//! aliases (a lookup convenience derived from the names); annotations,
//! annotation locations, structured annotations and documentation; table and
//! action profile sizes (a hint the target may round); `pkg_info` (compiler
//! and build metadata); `type_info` (umbra.p4 exposes no user-defined types,
//! and bitwidths are compared directly); initial default actions (older p4c
//! versions omit them, and the switch runs the program's own default) and
//! architecture-specific `other_properties`.

use std::{collections::HashMap, fmt};

use umbra_proto::p4::config::v1::{P4Info, Preamble, action_ref, table::IdleTimeoutBehavior};

use crate::{MatchKind, error::ObjectKind, index::CounterUnit};

/// One way in which a P4Info differs from the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// An object of the expected P4Info is absent from the actual one.
    Missing {
        /// Kind of the object.
        kind: ObjectKind,
        /// Its fully qualified name.
        name: String,
    },
    /// The actual P4Info has an object the expected one does not.
    Unexpected {
        /// Kind of the object.
        kind: ObjectKind,
        /// Its fully qualified name.
        name: String,
        /// Its id.
        id: u32,
    },
    /// An object present in both differs.
    Changed {
        /// Kind of the object.
        kind: ObjectKind,
        /// Its fully qualified name.
        name: String,
        /// What differs, as a sentence fragment naming actual and expected.
        detail: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { kind, name } => write!(f, "{kind} {name:?} is missing"),
            Self::Unexpected { kind, name, id } => {
                write!(f, "unexpected {kind} {name:?} (id {id:#010x})")
            }
            Self::Changed { kind, name, detail } => write!(f, "{kind} {name:?}: {detail}"),
        }
    }
}

/// Compares `actual` with `expected` and returns every difference that
/// matters (see the module documentation for what is ignored), in a stable
/// order: the expected P4Info's order, then unexpected objects in the
/// actual P4Info's order. Empty means `actual` describes the same program.
#[must_use]
pub fn compare(expected: &P4Info, actual: &P4Info) -> Vec<Difference> {
    let mut out = Vec::new();
    let e = Names::of(expected);
    let a = Names::of(actual);

    for pair in pair_up(&expected.tables, &actual.tables, |t| t.preamble.as_ref()) {
        let Some((exp, act, mut diff)) = pair.report(ObjectKind::Table, &mut out) else {
            continue;
        };
        compare_members(
            &mut diff,
            "match field",
            &exp.match_fields,
            &act.match_fields,
            |f| (f.name.as_str(), f.id),
            |f| {
                vec![
                    ("bitwidth", f.bitwidth.to_string()),
                    ("match type", MatchKind::of(f).to_string()),
                ]
            },
        );
        let exp_refs: Vec<(String, String)> = (exp.action_refs.iter())
            .map(|r| (e.action(r.id), scope(r.scope)))
            .collect();
        let act_refs: Vec<(String, String)> = (act.action_refs.iter())
            .map(|r| (a.action(r.id), scope(r.scope)))
            .collect();
        for (name, exp_scope) in &exp_refs {
            match act_refs.iter().find(|(n, _)| n == name) {
                None => diff.changed(format!("does not allow action {name:?}")),
                Some((_, act_scope)) if act_scope != exp_scope => diff.changed(format!(
                    "action {name:?} has scope {act_scope}, expected {exp_scope}"
                )),
                Some(_) => {}
            }
        }
        for (name, _) in &act_refs {
            if !exp_refs.iter().any(|(n, _)| n == name) {
                diff.changed(format!("allows unexpected action {name:?}"));
            }
        }
        let exp_res: Vec<String> = exp
            .direct_resource_ids
            .iter()
            .map(|&id| e.direct_resource(id))
            .collect();
        let act_res: Vec<String> = act
            .direct_resource_ids
            .iter()
            .map(|&id| a.direct_resource(id))
            .collect();
        for name in &exp_res {
            if !act_res.contains(name) {
                diff.changed(format!("has no direct resource {name:?}"));
            }
        }
        for name in &act_res {
            if !exp_res.contains(name) {
                diff.changed(format!("has unexpected direct resource {name:?}"));
            }
        }
        diff.attr(
            "const default action",
            optional_ref(exp.const_default_action_id, |id| e.action(id)),
            optional_ref(act.const_default_action_id, |id| a.action(id)),
        );
        diff.attr(
            "implementation",
            optional_ref(exp.implementation_id, |id| e.action_profile(id)),
            optional_ref(act.implementation_id, |id| a.action_profile(id)),
        );
        diff.attr("is_const_table", exp.is_const_table, act.is_const_table);
        diff.attr(
            "has_initial_entries",
            exp.has_initial_entries,
            act.has_initial_entries,
        );
        diff.attr(
            "idle timeout behavior",
            idle_timeout(exp.idle_timeout_behavior),
            idle_timeout(act.idle_timeout_behavior),
        );
    }

    for pair in pair_up(&expected.actions, &actual.actions, |x| x.preamble.as_ref()) {
        let Some((exp, act, mut diff)) = pair.report(ObjectKind::Action, &mut out) else {
            continue;
        };
        compare_members(
            &mut diff,
            "param",
            &exp.params,
            &act.params,
            |p| (p.name.as_str(), p.id),
            |p| vec![("bitwidth", p.bitwidth.to_string())],
        );
    }

    for pair in pair_up(&expected.counters, &actual.counters, |x| {
        x.preamble.as_ref()
    }) {
        let Some((exp, act, mut diff)) = pair.report(ObjectKind::Counter, &mut out) else {
            continue;
        };
        diff.attr(
            "unit",
            CounterUnit::of(exp.spec.as_ref()),
            CounterUnit::of(act.spec.as_ref()),
        );
        diff.attr("size", exp.size, act.size);
    }

    for pair in pair_up(&expected.direct_counters, &actual.direct_counters, |x| {
        x.preamble.as_ref()
    }) {
        let Some((exp, act, mut diff)) = pair.report(ObjectKind::DirectCounter, &mut out) else {
            continue;
        };
        diff.attr(
            "unit",
            CounterUnit::of(exp.spec.as_ref()),
            CounterUnit::of(act.spec.as_ref()),
        );
        let (exp_table, act_table) = (e.table(exp.direct_table_id), a.table(act.direct_table_id));
        if exp_table != act_table {
            diff.changed(format!(
                "is attached to table {act_table:?}, expected {exp_table:?}"
            ));
        }
    }

    for pair in pair_up(
        &expected.controller_packet_metadata,
        &actual.controller_packet_metadata,
        |x| x.preamble.as_ref(),
    ) {
        let Some((exp, act, mut diff)) =
            pair.report(ObjectKind::ControllerPacketMetadata, &mut out)
        else {
            continue;
        };
        compare_members(
            &mut diff,
            "metadata field",
            &exp.metadata,
            &act.metadata,
            |m| (m.name.as_str(), m.id),
            |m| vec![("bitwidth", m.bitwidth.to_string())],
        );
    }

    // Kinds umbra.p4 does not use: presence and id.
    let presence_only = |kind: ObjectKind| {
        let of = |p: &'_ P4Info| -> Vec<Option<Preamble>> {
            preambles(p)
                .into_iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, p)| p.cloned())
                .collect()
        };
        (of(expected), of(actual))
    };
    for kind in [
        ObjectKind::ActionProfile,
        ObjectKind::Meter,
        ObjectKind::DirectMeter,
        ObjectKind::ValueSet,
        ObjectKind::Register,
        ObjectKind::Digest,
        ObjectKind::Extern,
    ] {
        let (exp, act) = presence_only(kind);
        for pair in pair_up(&exp, &act, Option::as_ref) {
            // Only presence and id matter here, and `report` checks both.
            let _ = pair.report(kind, &mut out);
        }
    }
    out
}

/// Every object of a P4Info with its kind and preamble, in kind order.
pub(crate) fn preambles(p4info: &P4Info) -> Vec<(ObjectKind, Option<&Preamble>)> {
    let mut all = Vec::new();
    all.extend(
        p4info
            .tables
            .iter()
            .map(|x| (ObjectKind::Table, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .actions
            .iter()
            .map(|x| (ObjectKind::Action, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .action_profiles
            .iter()
            .map(|x| (ObjectKind::ActionProfile, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .counters
            .iter()
            .map(|x| (ObjectKind::Counter, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .direct_counters
            .iter()
            .map(|x| (ObjectKind::DirectCounter, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .meters
            .iter()
            .map(|x| (ObjectKind::Meter, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .direct_meters
            .iter()
            .map(|x| (ObjectKind::DirectMeter, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .controller_packet_metadata
            .iter()
            .map(|x| (ObjectKind::ControllerPacketMetadata, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .value_sets
            .iter()
            .map(|x| (ObjectKind::ValueSet, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .registers
            .iter()
            .map(|x| (ObjectKind::Register, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .digests
            .iter()
            .map(|x| (ObjectKind::Digest, x.preamble.as_ref())),
    );
    all.extend(
        p4info
            .externs
            .iter()
            .flat_map(|e| e.instances.iter())
            .map(|x| (ObjectKind::Extern, x.preamble.as_ref())),
    );
    all
}

/// Id-to-name maps of one P4Info, to compare references by name.
struct Names<'a> {
    tables: HashMap<u32, &'a str>,
    actions: HashMap<u32, &'a str>,
    action_profiles: HashMap<u32, &'a str>,
    direct_resources: HashMap<u32, &'a str>,
}

impl<'a> Names<'a> {
    fn of(p4info: &'a P4Info) -> Self {
        let map = |kinds: &[ObjectKind]| {
            preambles(p4info)
                .into_iter()
                .filter(|(k, _)| kinds.contains(k))
                .filter_map(|(_, p)| p.map(|p| (p.id, p.name.as_str())))
                .collect::<HashMap<_, _>>()
        };
        Self {
            tables: map(&[ObjectKind::Table]),
            actions: map(&[ObjectKind::Action]),
            action_profiles: map(&[ObjectKind::ActionProfile]),
            direct_resources: map(&[ObjectKind::DirectCounter, ObjectKind::DirectMeter]),
        }
    }

    fn lookup(map: &HashMap<u32, &str>, what: &str, id: u32) -> String {
        map.get(&id).map_or_else(
            || format!("<unknown {what} {id:#010x}>"),
            |n| (*n).to_owned(),
        )
    }

    fn table(&self, id: u32) -> String {
        Self::lookup(&self.tables, "table", id)
    }

    fn action(&self, id: u32) -> String {
        Self::lookup(&self.actions, "action", id)
    }

    fn action_profile(&self, id: u32) -> String {
        Self::lookup(&self.action_profiles, "action profile", id)
    }

    fn direct_resource(&self, id: u32) -> String {
        Self::lookup(&self.direct_resources, "direct resource", id)
    }
}

/// An expected object and the actual object of the same name, if any.
enum Pair<'a, T> {
    Both {
        expected: &'a T,
        actual: &'a T,
        name: &'a str,
        expected_id: u32,
        actual_id: u32,
    },
    Missing(&'a str),
    Unexpected(&'a str, u32),
}

impl<'a, T> Pair<'a, T> {
    /// Reports a missing or unexpected object into `out`; for a pair, compares
    /// the ids and hands back both objects with a collector for the rest.
    fn report<'o>(
        self,
        kind: ObjectKind,
        out: &'o mut Vec<Difference>,
    ) -> Option<(&'a T, &'a T, Changes<'o>)> {
        match self {
            Self::Missing(name) => {
                out.push(Difference::Missing {
                    kind,
                    name: name.to_owned(),
                });
                None
            }
            Self::Unexpected(name, id) => {
                out.push(Difference::Unexpected {
                    kind,
                    name: name.to_owned(),
                    id,
                });
                None
            }
            Self::Both {
                expected,
                actual,
                name,
                expected_id,
                actual_id,
            } => {
                let mut changes = Changes {
                    kind,
                    name: name.to_owned(),
                    out,
                };
                if expected_id != actual_id {
                    changes.changed(format!(
                        "has id {actual_id:#010x}, expected {expected_id:#010x}"
                    ));
                }
                Some((expected, actual, changes))
            }
        }
    }
}

/// Pairs objects by fully qualified name: expected order first (pairs and
/// missing objects), then unexpected objects in actual order.
fn pair_up<'a, T>(
    expected: &'a [T],
    actual: &'a [T],
    preamble: impl Fn(&'a T) -> Option<&'a Preamble>,
) -> Vec<Pair<'a, T>> {
    let ident = |x: &'a T| preamble(x).map_or(("", 0), |p| (p.name.as_str(), p.id));
    let mut used = vec![false; actual.len()];
    let mut pairs = Vec::new();
    for exp in expected {
        let (name, expected_id) = ident(exp);
        let found = actual
            .iter()
            .enumerate()
            .find(|(i, act)| !used[*i] && ident(act).0 == name);
        match found {
            Some((i, act)) => {
                used[i] = true;
                pairs.push(Pair::Both {
                    expected: exp,
                    actual: act,
                    name,
                    expected_id,
                    actual_id: ident(act).1,
                });
            }
            None => pairs.push(Pair::Missing(name)),
        }
    }
    for (act, used) in actual.iter().zip(used) {
        if !used {
            let (name, id) = ident(act);
            pairs.push(Pair::Unexpected(name, id));
        }
    }
    pairs
}

/// Records the differences of one object present on both sides.
struct Changes<'o> {
    kind: ObjectKind,
    name: String,
    out: &'o mut Vec<Difference>,
}

impl Changes<'_> {
    fn changed(&mut self, detail: String) {
        self.out.push(Difference::Changed {
            kind: self.kind,
            name: self.name.clone(),
            detail,
        });
    }

    fn attr<V: PartialEq + fmt::Display>(&mut self, what: &str, expected: V, actual: V) {
        if expected != actual {
            self.changed(format!("has {what} {actual}, expected {expected}"));
        }
    }
}

/// Compares the members (match fields, params, metadata fields) of two
/// objects by name: presence both ways, id, then `attrs`.
fn compare_members<M>(
    diff: &mut Changes<'_>,
    label: &str,
    expected: &[M],
    actual: &[M],
    ident: impl Fn(&M) -> (&str, u32),
    attrs: impl Fn(&M) -> Vec<(&'static str, String)>,
) {
    for exp in expected {
        let (name, id) = ident(exp);
        let Some(act) = actual.iter().find(|a| ident(a).0 == name) else {
            diff.changed(format!("{label} {name:?} is missing"));
            continue;
        };
        let act_id = ident(act).1;
        if act_id != id {
            diff.changed(format!("{label} {name:?} has id {act_id}, expected {id}"));
        }
        for ((what, exp_value), (_, act_value)) in attrs(exp).into_iter().zip(attrs(act)) {
            if exp_value != act_value {
                diff.changed(format!(
                    "{label} {name:?} has {what} {act_value}, expected {exp_value}"
                ));
            }
        }
    }
    for act in actual {
        let (name, id) = ident(act);
        if !expected.iter().any(|e| ident(e).0 == name) {
            diff.changed(format!("has unexpected {label} {name:?} (id {id})"));
        }
    }
}

fn scope(value: i32) -> String {
    action_ref::Scope::try_from(value).map_or_else(
        |_| format!("unknown ({value})"),
        |s| s.as_str_name().to_ascii_lowercase(),
    )
}

fn idle_timeout(value: i32) -> String {
    IdleTimeoutBehavior::try_from(value).map_or_else(
        |_| format!("unknown ({value})"),
        |b| b.as_str_name().to_ascii_lowercase(),
    )
}

/// A reference by id (0: none) as a quoted name or `none`.
fn optional_ref(id: u32, name: impl Fn(u32) -> String) -> String {
    if id == 0 {
        "none".to_owned()
    } else {
        format!("{:?}", name(id))
    }
}
