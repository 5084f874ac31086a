//! What the index keeps beyond names and ids, on a small P4Info written for
//! it: action scopes (`@tableonly`, `@defaultonly`), the arguments of
//! initial default actions, and controller headers by their
//! `@controller_header` name; and the problems it reports about them.

use umbra_p4info::{
    ActionArgument, ActionCallInfo, ActionRefInfo, ActionScope, MatchKind, ObjectKind, P4Info,
    P4InfoError, P4InfoIndex, parse_text, umbra_p4info_index,
};

const SET: u32 = 0x0100_0001;
const HIT: u32 = 0x0100_0002;
const MISS: u32 = 0x0100_0003;

/// One table whose three actions have the three scopes, a `@defaultonly`
/// initial default action with an argument, and controller headers named
/// by annotation (`C.cpu_in_t`) and by name only (`packet_out`).
const SCOPED: &str = r#"
tables {
  preamble { id: 33554433 name: "C.acl" alias: "acl" }
  match_fields { id: 1 name: "proto" bitwidth: 8 match_type: TERNARY }
  match_fields { id: 2 name: "port" bitwidth: 16 match_type: EXACT }
  action_refs { id: 16777217 }
  action_refs { id: 16777218 scope: TABLE_ONLY }
  action_refs { id: 16777219 scope: DEFAULT_ONLY }
  initial_default_action {
    action_id: 16777219
    arguments { param_id: 1 value: "\x05" }
  }
  is_const_table: true
  size: 16
}
tables {
  preamble { id: 33554434 name: "C.plain" alias: "plain" }
  match_fields { id: 1 name: "port" bitwidth: 16 match_type: LPM }
  action_refs { id: 16777218 }
  const_default_action_id: 16777218
  initial_default_action { action_id: 16777218 }
  size: 16
}
actions {
  preamble { id: 16777217 name: "C.set" alias: "set" }
  params { id: 1 name: "value" bitwidth: 8 }
}
actions { preamble { id: 16777218 name: "C.hit" alias: "hit" } }
actions {
  preamble { id: 16777219 name: "C.miss" alias: "miss" }
  params { id: 1 name: "reason" bitwidth: 8 }
}
controller_packet_metadata {
  preamble {
    id: 67108865
    name: "C.cpu_in_t"
    alias: "cpu_in_t"
    annotations: "@controller_header( \"packet_in\" )"
  }
  metadata { id: 1 name: "ingress_port" bitwidth: 9 }
  metadata { id: 2 name: "reason" bitwidth: 7 }
}
controller_packet_metadata {
  preamble { id: 67108866 name: "packet_out" alias: "packet_out" }
  metadata { id: 1 name: "egress_port" bitwidth: 9 }
}
"#;

fn scoped() -> P4Info {
    parse_text(SCOPED).expect("SCOPED parses")
}

fn problems(p4info: &P4Info) -> Vec<String> {
    match P4InfoIndex::new(p4info) {
        Err(P4InfoError::Inconsistent { problems }) => problems,
        other => panic!("expected an inconsistent P4Info, got {other:?}"),
    }
}

#[test]
fn action_scopes_say_where_a_table_runs_an_action() {
    let index = P4InfoIndex::new(&scoped()).unwrap();
    let acl = index.table("acl").unwrap();
    assert_eq!(
        acl.action_refs,
        [
            ActionRefInfo {
                id: SET,
                scope: ActionScope::TableAndDefault
            },
            ActionRefInfo {
                id: HIT,
                scope: ActionScope::TableOnly
            },
            ActionRefInfo {
                id: MISS,
                scope: ActionScope::DefaultOnly
            },
        ]
    );
    // The scope-blind view is unchanged.
    assert_eq!(acl.action_ids, [SET, HIT, MISS]);
    assert!([SET, HIT, MISS].iter().all(|&id| acl.allows_action(id)));
    assert!(index.table_action("acl", "miss").is_ok());

    let entry: Vec<bool> = [SET, HIT, MISS]
        .iter()
        .map(|&id| acl.allows_entry_action(id))
        .collect();
    let default: Vec<bool> = [SET, HIT, MISS]
        .iter()
        .map(|&id| acl.allows_default_action(id))
        .collect();
    assert_eq!(entry, [true, true, false]);
    assert_eq!(default, [true, false, true]);
    assert_eq!(acl.action_scope(HIT), Some(ActionScope::TableOnly));

    // An action the table does not list is allowed nowhere.
    let plain = index.table("plain").unwrap();
    assert_eq!(plain.action_scope(SET), None);
    assert!(!plain.allows_entry_action(SET) && !plain.allows_default_action(SET));
}

#[test]
fn tables_keep_initial_default_arguments_and_constness() {
    let index = P4InfoIndex::new(&scoped()).unwrap();
    let acl = index.table("C.acl").unwrap();
    assert_eq!(
        acl.initial_default_action,
        Some(ActionCallInfo {
            action_id: MISS,
            arguments: vec![ActionArgument {
                param_id: 1,
                value: vec![5],
            }],
        })
    );
    assert_eq!(acl.default_action_id, Some(MISS));
    assert!(!acl.const_default_action);
    assert!(acl.is_const_table);
    // A ternary field needs a priority; ids resolve back to fields.
    assert!(acl.needs_priority());
    assert_eq!(acl.match_field_by_id(1).unwrap().name, "proto");
    assert_eq!(
        acl.match_field_by_id(2).unwrap().match_kind,
        MatchKind::Exact
    );
    assert!(acl.match_field_by_id(3).is_none());

    let plain = index.table("plain").unwrap();
    assert!(plain.const_default_action && !plain.is_const_table);
    assert!(!plain.needs_priority(), "LPM alone needs no priority");
    let initial = plain.initial_default_action.as_ref().unwrap();
    assert_eq!((initial.action_id, initial.arguments.len()), (HIT, 0));

    let miss = index.action_by_id(MISS).unwrap();
    assert_eq!(miss.param_by_id(1).unwrap().name, "reason");
    assert!(miss.param_by_id(2).is_none());
}

#[test]
fn controller_headers_resolve_by_their_annotation_name() {
    let index = P4InfoIndex::new(&scoped()).unwrap();
    // Annotated: found by the annotation, whatever the header is named.
    let packet_in = index.controller_header_by_annotation("packet_in").unwrap();
    assert_eq!(packet_in.name, "C.cpu_in_t");
    assert_eq!(packet_in.annotation_name, "packet_in");
    assert_eq!(packet_in.field_by_id(2).unwrap().name, "reason");
    assert!(packet_in.field_by_id(3).is_none());
    // The annotation is not a name.
    assert!(index.controller_header("packet_in").is_err());
    // Not annotated: its name stands for the annotation.
    let packet_out = index.controller_header_by_annotation("packet_out").unwrap();
    assert_eq!(packet_out.id, 0x0400_0002);

    let err = index.controller_header_by_annotation("digest").unwrap_err();
    assert!(
        matches!(
            &err,
            P4InfoError::NotFound { kind: ObjectKind::ControllerPacketMetadata, name, known }
                if name == "digest" && known == &["packet_in", "packet_out"]
        ),
        "{err:?}"
    );

    // umbra.p4's headers are annotated with their own names.
    let umbra = umbra_p4info_index();
    for name in ["packet_in", "packet_out"] {
        let header = umbra.controller_header_by_annotation(name).unwrap();
        assert_eq!(header.name, name);
        assert_eq!(header.id, umbra.controller_header(name).unwrap().id);
    }
}

#[test]
fn umbra_tables_have_unscoped_actions_and_argumentless_initial_defaults() {
    let index = umbra_p4info_index();
    for table in index.tables() {
        assert!(
            table
                .action_refs
                .iter()
                .all(|r| r.scope == ActionScope::TableAndDefault),
            "{}",
            table.name
        );
        assert!(!table.is_const_table, "{}", table.name);
        let initial = table.initial_default_action.as_ref().unwrap();
        assert_eq!(Some(initial.action_id), table.default_action_id);
        assert!(initial.arguments.is_empty(), "{}", table.name);
    }
    let sampling = index.table("mirror_sampling").unwrap();
    assert_eq!(
        sampling.initial_default_action.as_ref().unwrap().action_id,
        index.action("no_sampling").unwrap().id
    );
}

#[test]
fn bad_scopes_arguments_annotations_and_zero_ids_are_all_reported() {
    let mut p4info = scoped();
    let acl = &mut p4info.tables[0];
    // The initial default action is @tableonly, and its two arguments are
    // for a parameter `hit` does not have.
    let initial = acl.initial_default_action.as_mut().unwrap();
    initial.action_id = HIT;
    initial.arguments.push(initial.arguments[0].clone());
    // A scope this version of P4Runtime does not know.
    acl.action_refs[0].scope = 9;
    // Two headers for packet_out.
    let mut second = p4info.controller_packet_metadata[1].clone();
    let preamble = second.preamble.as_mut().unwrap();
    preamble.id = 0x0400_0003;
    preamble.name = "C.cpu_out_t".into();
    preamble
        .annotations
        .push(r#"@controller_header("packet_out")"#.into());
    p4info.controller_packet_metadata.push(second);
    // Id 0 is "none" in P4Runtime.
    p4info.tables[1].preamble.as_mut().unwrap().id = 0;
    assert_eq!(
        problems(&p4info),
        [
            r#"table "C.plain" has id 0"#,
            r#"table "C.acl": action id 0x01000001 has unknown scope 9"#,
            r#"table "C.acl": default action id 0x01000002 is @tableonly"#,
            r#"table "C.acl": initial default action "C.hit" has an argument for parameter id 1, which does not exist"#,
            r#"table "C.acl": initial default action "C.hit" has an argument for parameter id 1, which does not exist"#,
            r#"controller headers "packet_out" and "C.cpu_out_t" are both @controller_header("packet_out")"#,
        ]
    );

    // Arguments of an existing parameter: given twice, or left out.
    let mut p4info = scoped();
    let initial = p4info.tables[0].initial_default_action.as_mut().unwrap();
    initial.arguments.push(initial.arguments[0].clone());
    assert_eq!(
        problems(&p4info),
        [r#"table "C.acl": initial default action "C.miss" gives parameter "reason" twice"#]
    );
    p4info.tables[0]
        .initial_default_action
        .as_mut()
        .unwrap()
        .arguments
        .clear();
    assert_eq!(
        problems(&p4info),
        [r#"table "C.acl": initial default action "C.miss" lacks parameter "reason""#]
    );
}
