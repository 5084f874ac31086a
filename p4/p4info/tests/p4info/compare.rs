//! `compare` accepts P4Infos of umbra.p4 that differ only in what a compiler
//! may legitimately change, and reports each structural change precisely.

use umbra_p4info::{Difference, ObjectKind, P4Info, compare, umbra_p4info};
use umbra_proto::p4::config::v1::{
    Documentation, Meter, P4TypeInfo, PkgInfo, Preamble, SourceLocation, StructuredAnnotation,
    match_field,
};

fn umbra() -> P4Info {
    umbra_p4info().clone()
}

fn rendered(diffs: &[Difference]) -> Vec<String> {
    diffs.iter().map(ToString::to_string).collect()
}

fn table<'a>(p4info: &'a mut P4Info, name: &str) -> &'a mut umbra_proto::p4::config::v1::Table {
    p4info
        .tables
        .iter_mut()
        .find(|t| t.preamble.as_ref().unwrap().name == name)
        .unwrap()
}

fn action<'a>(p4info: &'a mut P4Info, name: &str) -> &'a mut umbra_proto::p4::config::v1::Action {
    p4info
        .actions
        .iter_mut()
        .find(|a| a.preamble.as_ref().unwrap().name == name)
        .unwrap()
}

fn annotate(preamble: Option<&mut Preamble>) {
    let preamble = preamble.unwrap();
    preamble.annotations.push("@brief(\"annotated\")".into());
    preamble.annotation_locations.push(SourceLocation {
        file: "umbra.p4".into(),
        line: 1,
        column: 1,
    });
    preamble.structured_annotations.push(StructuredAnnotation {
        name: "note".into(),
        ..Default::default()
    });
    preamble.doc = Some(Documentation {
        brief: "doc string".into(),
        description: "as p4c emits from comments".into(),
    });
}

#[test]
fn identical_p4infos_have_no_difference() {
    assert_eq!(compare(umbra_p4info(), umbra_p4info()), []);
}

#[test]
fn reordered_and_reannotated_copy_has_no_difference() {
    let mut other = umbra();
    other.tables.reverse();
    other.actions.reverse();
    other.counters.reverse();
    other.direct_counters.reverse();
    other.controller_packet_metadata.reverse();
    for t in &mut other.tables {
        t.match_fields.reverse();
        t.action_refs.reverse();
        t.direct_resource_ids.reverse();
        t.size *= 4;
        t.initial_default_action = None;
        for f in &mut t.match_fields {
            f.annotations.push("@format(HEX_STR)".into());
        }
        annotate(t.preamble.as_mut());
    }
    for a in &mut other.actions {
        a.params.reverse();
        for p in &mut a.params {
            p.doc = Some(Documentation {
                brief: "param".into(),
                ..Default::default()
            });
        }
        annotate(a.preamble.as_mut());
    }
    for c in &mut other.counters {
        annotate(c.preamble.as_mut());
    }
    for c in &mut other.direct_counters {
        annotate(c.preamble.as_mut());
    }
    for h in &mut other.controller_packet_metadata {
        h.metadata.reverse();
        annotate(h.preamble.as_mut());
    }
    other.actions[0].preamble.as_mut().unwrap().alias = "another_alias".into();
    other.pkg_info = Some(PkgInfo {
        name: "umbra".into(),
        version: "9.9".into(),
        arch: "v1model".into(),
        ..Default::default()
    });
    other.type_info = Some(P4TypeInfo {
        error: Some(umbra_proto::p4::config::v1::P4ErrorTypeSpec {
            members: vec!["NoError".into(), "PacketTooShort".into()],
        }),
        ..Default::default()
    });
    assert_ne!(&other, umbra_p4info());
    assert_eq!(compare(umbra_p4info(), &other), []);
}

#[test]
fn renamed_table_is_missing_and_unexpected() {
    let mut other = umbra();
    table(&mut other, "UmbraIngress.service_selector")
        .preamble
        .as_mut()
        .unwrap()
        .name = "UmbraIngress.service_chooser".into();
    let diffs = compare(umbra_p4info(), &other);
    assert_eq!(
        diffs,
        [
            Difference::Missing {
                kind: ObjectKind::Table,
                name: "UmbraIngress.service_selector".into()
            },
            Difference::Unexpected {
                kind: ObjectKind::Table,
                name: "UmbraIngress.service_chooser".into(),
                id: 0x0200_0102
            },
        ]
    );
    assert_eq!(
        rendered(&diffs),
        [
            r#"table "UmbraIngress.service_selector" is missing"#,
            r#"unexpected table "UmbraIngress.service_chooser" (id 0x02000102)"#,
        ]
    );
}

#[test]
fn changed_table_id_is_reported() {
    let mut other = umbra();
    table(&mut other, "UmbraIngress.mirror_sampling")
        .preamble
        .as_mut()
        .unwrap()
        .id = 0x0200_0114;
    assert_eq!(
        rendered(&compare(umbra_p4info(), &other)),
        [r#"table "UmbraIngress.mirror_sampling": has id 0x02000114, expected 0x02000104"#]
    );
}

#[test]
fn changed_action_id_is_reported_once() {
    // Renumbered consistently, as a compiler would: references follow, so
    // only the action's own id differs (references compare by name).
    let (old, new) = (0x0100_0204, 0x0100_02ff);
    let mut other = umbra();
    action(&mut other, "UmbraIngress.drop")
        .preamble
        .as_mut()
        .unwrap()
        .id = new;
    for t in &mut other.tables {
        for r in &mut t.action_refs {
            if r.id == old {
                r.id = new;
            }
        }
        if let Some(d) = t
            .initial_default_action
            .as_mut()
            .filter(|d| d.action_id == old)
        {
            d.action_id = new;
        }
    }
    assert_eq!(
        rendered(&compare(umbra_p4info(), &other)),
        [r#"action "UmbraIngress.drop": has id 0x010002ff, expected 0x01000204"#]
    );
}

#[test]
fn changed_bitwidth_is_reported() {
    let mut other = umbra();
    table(&mut other, "UmbraIngress.port_classify").match_fields[0].bitwidth = 8;
    assert_eq!(
        rendered(&compare(umbra_p4info(), &other)),
        [
            r#"table "UmbraIngress.port_classify": match field "ingress_port" has bitwidth 8, expected 9"#
        ]
    );
}

#[test]
fn missing_action_is_reported() {
    let mut other = umbra();
    let id = action(&mut other, "UmbraEgress.no_truncate")
        .preamble
        .as_ref()
        .unwrap()
        .id;
    other
        .actions
        .retain(|a| a.preamble.as_ref().unwrap().id != id);
    let t = table(&mut other, "UmbraEgress.mirror_truncate");
    t.action_refs.retain(|r| r.id != id);
    t.initial_default_action = None;
    assert_eq!(
        rendered(&compare(umbra_p4info(), &other)),
        [
            r#"table "UmbraEgress.mirror_truncate": does not allow action "UmbraEgress.no_truncate""#,
            r#"action "UmbraEgress.no_truncate" is missing"#,
        ]
    );
}

#[test]
fn extra_table_is_reported() {
    let mut other = umbra();
    let mut extra = table(&mut other, "UmbraEgress.mirror_truncate").clone();
    let preamble = extra.preamble.as_mut().unwrap();
    preamble.name = "UmbraEgress.extra".into();
    preamble.alias = "extra".into();
    preamble.id = 0x0200_0106;
    other.tables.push(extra);
    assert_eq!(
        compare(umbra_p4info(), &other),
        [Difference::Unexpected {
            kind: ObjectKind::Table,
            name: "UmbraEgress.extra".into(),
            id: 0x0200_0106
        }]
    );
}

#[test]
fn changed_match_type_is_reported() {
    let mut other = umbra();
    table(&mut other, "UmbraIngress.device_portmap").match_fields[1].r#match = Some(
        match_field::Match::MatchType(match_field::MatchType::Ternary.into()),
    );
    assert_eq!(
        rendered(&compare(umbra_p4info(), &other)),
        [
            r#"table "UmbraIngress.device_portmap": match field "direction" has match type ternary, expected exact"#
        ]
    );
}

#[test]
fn every_compared_attribute_is_reported_at_once() {
    let mut other = umbra();
    {
        let t = table(&mut other, "UmbraIngress.port_classify");
        t.match_fields[0].id = 2;
        t.match_fields[0].name = "port".into();
        t.action_refs[0].scope = umbra_proto::p4::config::v1::action_ref::Scope::TableOnly.into();
        t.action_refs.push(umbra_proto::p4::config::v1::ActionRef {
            id: 0x0100_0206,
            ..Default::default()
        });
        t.direct_resource_ids.clear();
        t.const_default_action_id = 0x0100_0204;
        t.idle_timeout_behavior =
            umbra_proto::p4::config::v1::table::IdleTimeoutBehavior::NotifyControl.into();
        t.is_const_table = true;
    }
    {
        let a = action(&mut other, "UmbraIngress.set_service");
        a.params[0].bitwidth = 12;
        a.params[1].id = 3;
        a.params.push(umbra_proto::p4::config::v1::action::Param {
            id: 4,
            name: "extra".into(),
            bitwidth: 1,
            ..Default::default()
        });
    }
    other.counters[1].size = 256;
    other.counters[1].spec.as_mut().unwrap().unit =
        umbra_proto::p4::config::v1::counter_spec::Unit::Packets.into();
    other.direct_counters[0].direct_table_id = 0x0200_0102;
    other.controller_packet_metadata[1].metadata[0].bitwidth = 16;
    other.controller_packet_metadata[0].metadata.pop();
    other.meters.push(Meter {
        preamble: Some(Preamble {
            id: 0x1400_0001,
            name: "UmbraIngress.police".into(),
            ..Default::default()
        }),
        ..Default::default()
    });

    assert_eq!(
        rendered(&compare(umbra_p4info(), &other)),
        [
            r#"table "UmbraIngress.port_classify": match field "ingress_port" is missing"#,
            r#"table "UmbraIngress.port_classify": has unexpected match field "port" (id 2)"#,
            r#"table "UmbraIngress.port_classify": action "UmbraIngress.set_service" has scope table_only, expected table_and_default"#,
            r#"table "UmbraIngress.port_classify": allows unexpected action "UmbraIngress.steer_to_port""#,
            r#"table "UmbraIngress.port_classify": has no direct resource "UmbraIngress.classify_hits""#,
            r#"table "UmbraIngress.port_classify": has const default action "UmbraIngress.drop", expected none"#,
            r#"table "UmbraIngress.port_classify": has is_const_table true, expected false"#,
            r#"table "UmbraIngress.port_classify": has idle timeout behavior notify_control, expected no_timeout"#,
            r#"action "UmbraIngress.set_service": param "service_id" has bitwidth 12, expected 16"#,
            r#"action "UmbraIngress.set_service": param "direction" has id 3, expected 2"#,
            r#"action "UmbraIngress.set_service": has unexpected param "extra" (id 4)"#,
            r#"counter "UmbraEgress.port_tx": has unit packets, expected packets and bytes"#,
            r#"counter "UmbraEgress.port_tx": has size 256, expected 512"#,
            r#"direct counter "UmbraIngress.classify_hits": is attached to table "UmbraIngress.service_selector", expected "UmbraIngress.port_classify""#,
            r#"controller packet metadata "packet_in": metadata field "_pad" is missing"#,
            r#"controller packet metadata "packet_out": metadata field "egress_port" has bitwidth 16, expected 9"#,
            r#"unexpected meter "UmbraIngress.police" (id 0x14000001)"#,
        ]
    );
}
