//! The embedded P4Info of umbra.p4 loads, and every object of umbra.p4
//! resolves by fully qualified name, alias and id.

use umbra_p4info::{
    CounterUnit, MatchKind, ObjectKind, P4InfoError, P4InfoIndex, UMBRA_P4INFO_TXTPB, parse_text,
    umbra_p4info, umbra_p4info_index,
};

/// (fully qualified name, alias, id) of every table of umbra.p4.
const TABLES: &[(&str, &str, u32)] = &[
    ("UmbraIngress.port_classify", "port_classify", 0x0200_0101),
    (
        "UmbraIngress.service_selector",
        "service_selector",
        0x0200_0102,
    ),
    ("UmbraIngress.device_portmap", "device_portmap", 0x0200_0103),
    (
        "UmbraIngress.mirror_sampling",
        "mirror_sampling",
        0x0200_0104,
    ),
    (
        "UmbraEgress.mirror_truncate",
        "mirror_truncate",
        0x0200_0105,
    ),
];

/// (fully qualified name, alias, id, params as (name, id, bitwidth)).
type ActionRow = (
    &'static str,
    &'static str,
    u32,
    &'static [(&'static str, u32, u32)],
);
const ACTIONS: &[ActionRow] = &[
    (
        "UmbraIngress.set_service",
        "set_service",
        0x0100_0201,
        &[("service_id", 1, 16), ("direction", 2, 8)],
    ),
    (
        "UmbraIngress.forward_to_port",
        "forward_to_port",
        0x0100_0202,
        &[("port", 1, 9)],
    ),
    ("UmbraIngress.punt_to_cpu", "punt_to_cpu", 0x0100_0203, &[]),
    ("UmbraIngress.drop", "drop", 0x0100_0204, &[]),
    (
        "UmbraIngress.set_active_device",
        "set_active_device",
        0x0100_0205,
        &[("device", 1, 8)],
    ),
    (
        "UmbraIngress.steer_to_port",
        "steer_to_port",
        0x0100_0206,
        &[("port", 1, 9)],
    ),
    (
        "UmbraIngress.sample_per_packet",
        "sample_per_packet",
        0x0100_0207,
        &[("one_in_n", 1, 32), ("session", 2, 32)],
    ),
    (
        "UmbraIngress.sample_per_flow",
        "sample_per_flow",
        0x0100_0208,
        &[("threshold", 1, 32), ("session", 2, 32)],
    ),
    ("UmbraIngress.no_sampling", "no_sampling", 0x0100_0209, &[]),
    (
        "UmbraEgress.truncate_mirror",
        "truncate_mirror",
        0x0100_020a,
        &[("length", 1, 32)],
    ),
    ("UmbraEgress.no_truncate", "no_truncate", 0x0100_020b, &[]),
];

const COUNTERS: &[(&str, &str, u32)] = &[
    ("UmbraIngress.port_rx", "port_rx", 0x1200_0301),
    ("UmbraEgress.port_tx", "port_tx", 0x1200_0302),
];

/// (fully qualified name, alias, id, table it is attached to).
const DIRECT_COUNTERS: &[(&str, &str, u32, &str)] = &[
    (
        "UmbraIngress.classify_hits",
        "classify_hits",
        0x1300_0401,
        "UmbraIngress.port_classify",
    ),
    (
        "UmbraIngress.steer_hits",
        "steer_hits",
        0x1300_0402,
        "UmbraIngress.device_portmap",
    ),
];

/// (name, id, first field as (name, id, bitwidth)).
const CONTROLLER_HEADERS: &[(&str, u32, (&str, u32, u32))] = &[
    ("packet_in", 0x0400_0501, ("ingress_port", 1, 9)),
    ("packet_out", 0x0400_0502, ("egress_port", 1, 9)),
];

#[test]
fn embedded_txtpb_parses() {
    let p4info = umbra_p4info();
    assert_eq!(p4info.tables.len(), TABLES.len());
    assert_eq!(p4info.actions.len(), ACTIONS.len());
    assert_eq!(p4info.counters.len(), COUNTERS.len());
    assert_eq!(p4info.direct_counters.len(), DIRECT_COUNTERS.len());
    assert_eq!(
        p4info.controller_packet_metadata.len(),
        CONTROLLER_HEADERS.len()
    );
    assert_eq!(
        p4info.pkg_info.as_ref().map(|p| p.arch.as_str()),
        Some("v1model")
    );
    assert_eq!(&parse_text(UMBRA_P4INFO_TXTPB).unwrap(), p4info);
    // The index is consistent, and built from the same P4Info.
    assert_eq!(umbra_p4info_index().p4info(), p4info);
}

#[test]
fn every_table_resolves_by_name_alias_and_id() {
    let index = umbra_p4info_index();
    assert_eq!(index.tables().len(), TABLES.len());
    for &(name, alias, id) in TABLES {
        assert_eq!(index.table(name).unwrap().id, id, "{name}");
        assert_eq!(index.table(alias).unwrap().id, id, "{alias}");
        let table = index.table_by_id(id).unwrap();
        assert_eq!((table.name.as_str(), table.alias.as_str()), (name, alias));
    }
}

#[test]
fn every_action_and_param_resolves() {
    let index = umbra_p4info_index();
    assert_eq!(index.actions().len(), ACTIONS.len());
    for &(name, alias, id, params) in ACTIONS {
        assert_eq!(index.action(name).unwrap().id, id, "{name}");
        let action = index.action(alias).unwrap();
        assert_eq!(action.id, id, "{alias}");
        assert_eq!(index.action_by_id(id).unwrap().name, name);
        assert_eq!(action.params.len(), params.len(), "{name}");
        for &(param, param_id, bitwidth) in params {
            let info = action.param(param).unwrap();
            assert_eq!(
                (info.id, info.bitwidth),
                (param_id, bitwidth),
                "{name}.{param}"
            );
        }
    }
}

#[test]
fn every_counter_and_direct_counter_resolves() {
    let index = umbra_p4info_index();
    assert_eq!(index.counters().len(), COUNTERS.len());
    for &(name, alias, id) in COUNTERS {
        let counter = index.counter(name).unwrap();
        assert_eq!(
            (counter.id, counter.size, counter.unit),
            (id, 512, CounterUnit::Both)
        );
        assert_eq!(index.counter(alias).unwrap().id, id);
        assert_eq!(index.counter_by_id(id).unwrap().name, name);
    }
    assert_eq!(index.direct_counters().len(), DIRECT_COUNTERS.len());
    for &(name, alias, id, table) in DIRECT_COUNTERS {
        let counter = index.direct_counter(name).unwrap();
        assert_eq!(counter.id, id);
        assert_eq!(counter.unit, CounterUnit::Both);
        assert_eq!(counter.table_id, index.table(table).unwrap().id);
        assert_eq!(index.direct_counter(alias).unwrap().id, id);
        assert_eq!(index.direct_counter_by_id(id).unwrap().name, name);
        assert_eq!(index.table_direct_counter(table).unwrap().id, id);
    }
    let err = index.table_direct_counter("service_selector").unwrap_err();
    assert!(
        matches!(err, P4InfoError::NoDirectCounter { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        r#"table "UmbraIngress.service_selector" has no direct counter"#
    );
}

#[test]
fn every_controller_header_and_field_resolves() {
    let index = umbra_p4info_index();
    assert_eq!(index.controller_headers().len(), CONTROLLER_HEADERS.len());
    for &(name, id, (field, field_id, bitwidth)) in CONTROLLER_HEADERS {
        let header = index.controller_header(name).unwrap();
        assert_eq!(header.id, id);
        assert_eq!(index.controller_header_by_id(id).unwrap().name, name);
        let info = header.field(field).unwrap();
        assert_eq!((info.id, info.bitwidth), (field_id, bitwidth));
        let pad = header.field("_pad").unwrap();
        assert_eq!((pad.id, pad.bitwidth), (2, 7));
    }
}

#[test]
fn match_fields_and_table_actions_resolve() {
    let index = umbra_p4info_index();
    let classify = index.table("port_classify").unwrap();
    let port = classify.match_field("ingress_port").unwrap();
    assert_eq!(
        (port.id, port.bitwidth, &port.match_kind),
        (1, 9, &MatchKind::Exact)
    );
    assert_eq!(classify.size, 64);
    assert_eq!(
        classify.default_action_id,
        Some(index.action("drop").unwrap().id)
    );
    let portmap = index.table("UmbraIngress.device_portmap").unwrap();
    assert_eq!(portmap.match_field("device").unwrap().id, 1);
    assert_eq!(portmap.match_field("direction").unwrap().id, 2);

    let names = |table: &str| -> Vec<String> {
        index
            .table_actions(table)
            .unwrap()
            .into_iter()
            .map(|a| a.alias.clone())
            .collect()
    };
    assert_eq!(
        names("port_classify"),
        ["set_service", "forward_to_port", "punt_to_cpu", "drop"]
    );
    assert_eq!(names("service_selector"), ["set_active_device", "drop"]);
    assert_eq!(names("mirror_truncate"), ["truncate_mirror", "no_truncate"]);

    assert_eq!(
        index
            .table_action("service_selector", "set_active_device")
            .unwrap()
            .id,
        0x0100_0205
    );
    let err = index
        .table_action("service_selector", "steer_to_port")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"table "UmbraIngress.service_selector" cannot run action "UmbraIngress.steer_to_port" (it can run: "UmbraIngress.set_active_device", "UmbraIngress.drop")"#
    );
}

#[test]
fn unknown_names_are_reported_with_what_exists() {
    let index = umbra_p4info_index();
    let err = index.counter("port_rxx").unwrap_err();
    assert!(
        matches!(&err, P4InfoError::NotFound { kind: ObjectKind::Counter, name, .. } if name == "port_rxx"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        r#"no counter named "port_rxx" in the P4Info (known: "UmbraIngress.port_rx", "UmbraEgress.port_tx")"#
    );
    // Names are not shared across kinds.
    assert!(index.action("port_classify").is_err());
    assert!(matches!(
        index.table_by_id(0x0100_0201),
        Err(P4InfoError::IdNotFound {
            kind: ObjectKind::Table,
            id: 0x0100_0201
        })
    ));
    assert_eq!(
        index
            .table("port_classify")
            .unwrap()
            .match_field("egress_port")
            .unwrap_err()
            .to_string(),
        r#"table "UmbraIngress.port_classify" has no match field "egress_port" (it has: "ingress_port")"#
    );
    assert_eq!(
        index
            .action("set_service")
            .unwrap()
            .param("service")
            .unwrap_err()
            .to_string(),
        r#"action "UmbraIngress.set_service" has no parameter "service" (it has: "service_id", "direction")"#
    );
    assert_eq!(
        index
            .controller_header("packet_in")
            .unwrap()
            .field("egress_port")
            .unwrap_err()
            .to_string(),
        r#"controller header "packet_in" has no field "egress_port" (it has: "ingress_port", "_pad")"#
    );
}

#[test]
fn ambiguous_aliases_need_the_full_name() {
    let mut p4info = umbra_p4info().clone();
    // A second `drop`, in the egress control.
    let mut drop = p4info.actions[3].clone();
    let preamble = drop.preamble.as_mut().unwrap();
    assert_eq!(preamble.alias, "drop");
    preamble.name = "UmbraEgress.drop".into();
    preamble.id = 0x0100_020c;
    p4info.actions.push(drop);
    let index = P4InfoIndex::new(&p4info).unwrap();
    let err = index.action("drop").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"action alias "drop" is ambiguous: use one of "UmbraIngress.drop", "UmbraEgress.drop""#
    );
    assert_eq!(index.action("UmbraEgress.drop").unwrap().id, 0x0100_020c);
    // The index is shared, not copied, by clones.
    let clone = index.clone();
    assert_eq!(clone.action("UmbraIngress.drop").unwrap().id, 0x0100_0204);
}

#[test]
fn inconsistent_p4info_is_rejected_with_every_problem() {
    let mut p4info = umbra_p4info().clone();
    // Duplicate id, dangling action ref, dangling direct counter table,
    // duplicate match field id.
    p4info.actions[1].preamble.as_mut().unwrap().id = 0x0100_0201;
    p4info.tables[1].action_refs[0].id = 0x0100_0299;
    p4info.direct_counters[1].direct_table_id = 0x0200_0199;
    p4info.tables[2].match_fields[1].id = 1;
    let err = P4InfoIndex::new(&p4info).unwrap_err();
    let P4InfoError::Inconsistent { problems } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(
        problems,
        &[
            r#"id 0x01000201 is used twice: by action "UmbraIngress.set_service" and by action "UmbraIngress.forward_to_port""#,
            r#"direct counter "UmbraIngress.steer_hits" is attached to table id 0x02000199, which does not exist"#,
            // forward_to_port's old id now dangles too.
            r#"table "UmbraIngress.port_classify" refers to action id 0x01000202, which does not exist"#,
            r#"table "UmbraIngress.service_selector" refers to action id 0x01000299, which does not exist"#,
            r#"table "UmbraIngress.device_portmap": two match fields have id 1"#,
            r#"table "UmbraIngress.device_portmap" lists direct counter "UmbraIngress.steer_hits", which is attached to table id 0x02000199"#,
        ],
        "{err}"
    );
}
