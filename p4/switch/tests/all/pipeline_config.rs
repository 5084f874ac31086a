//! SetForwardingPipelineConfig and GetForwardingPipelineConfig (spec
//! "SetForwardingPipelineConfig RPC", "GetForwardingPipelineConfig RPC"): every action, what each does to the forwarding state, which
//! P4Infos the switch accepts as umbra.p4's, and read-back per response
//! type.

use tonic::{Code, Status};
use umbra_p4info::{P4Info, umbra_p4info};
use umbra_proto::p4::config::v1::{Documentation, PkgInfo};
use umbra_proto::p4::v1::{
    CounterEntry, ForwardingPipelineConfig, GetForwardingPipelineConfigRequest, Index,
    forwarding_pipeline_config::Cookie, get_forwarding_pipeline_config_request::ResponseType,
    set_forwarding_pipeline_config_request::Action, update,
};

use crate::harness::{
    Client, DEVICE_ID, Session, Switch, bytes, call, classify, clone_session, clone_session_entity,
    config, counter_entity, counter_id, counts, default_entry, describe, insert, modify, read,
    select, set_pipeline, table, table_entry_entity,
};

/// GetForwardingPipelineConfig with `response_type`.
async fn get_config(
    client: &mut Client,
    response_type: ResponseType,
) -> Result<Option<ForwardingPipelineConfig>, Status> {
    client
        .get_forwarding_pipeline_config(GetForwardingPipelineConfigRequest {
            device_id: DEVICE_ID,
            response_type: response_type.into(),
        })
        .await
        .map(|response| response.into_inner().config)
}

async fn cookie(client: &mut Client) -> Option<u64> {
    get_config(client, ResponseType::CookieOnly)
        .await
        .expect("a pipeline is committed")
        .expect("config is set")
        .cookie
        .map(|c| c.cookie)
}

/// umbra.p4's P4Info as another p4c version might emit it: objects and
/// action references in another order, annotations, package info and
/// documentation added, table sizes changed. Nothing P4Runtime messages
/// depend on differs.
fn p4c_style_p4info() -> P4Info {
    let mut p4info = umbra_p4info().clone();
    p4info.pkg_info = Some(PkgInfo {
        name: "umbra.p4".into(),
        version: "2".into(),
        arch: "v1model".into(),
        doc: Some(Documentation {
            brief: "Umbra's data plane".into(),
            description: String::new(),
        }),
        annotations: vec!["@custom(\"x\")".into()],
        ..PkgInfo::default()
    });
    p4info.tables.reverse();
    p4info.actions.reverse();
    p4info.counters.reverse();
    p4info.direct_counters.reverse();
    p4info.controller_packet_metadata.reverse();
    for table in &mut p4info.tables {
        table.action_refs.reverse();
        for action_ref in &mut table.action_refs {
            action_ref.annotations.push("@proto_ref".into());
        }
        table.size *= 4;
        let preamble = table.preamble.as_mut().expect("preamble");
        preamble
            .annotations
            .push(format!("@name(\"{}\")", preamble.name));
        preamble.doc = Some(Documentation {
            brief: format!("the {} table", preamble.alias),
            description: String::new(),
        });
        for field in &mut table.match_fields {
            field.annotations.push(format!("@name(\"{}\")", field.name));
        }
    }
    for action in &mut p4info.actions {
        let preamble = action.preamble.as_mut().expect("preamble");
        preamble.annotations.push("@noWarn(\"unused\")".into());
        for param in &mut action.params {
            param.annotations.push("@tracked".into());
        }
    }
    p4info
}

/// The state VERIFY_AND_COMMIT clears and RECONCILE_AND_COMMIT keeps: a
/// table entry, a modified default entry, a clone session and a counter.
async fn install_state(session: &mut Session) {
    session
        .write_ok(vec![
            insert(classify(1, 10, 0)),
            modify(default_entry(
                "service_selector",
                Some(call("set_active_device", &[("device", bytes(3))])),
            )),
            crate::harness::update(
                update::Type::Insert,
                clone_session_entity(clone_session(5, &[(9, 1)])),
            ),
            crate::harness::update(
                update::Type::Modify,
                counter_entity(CounterEntry {
                    counter_id: counter_id("port_rx"),
                    index: Some(Index { index: 4 }),
                    data: Some(counts(3, 300)),
                }),
            ),
        ])
        .await;
}

/// (entries, default action id of service_selector, clone sessions,
/// port_rx[4]) as read back.
async fn state(session: &mut Session) -> (usize, u32, usize, (i64, i64)) {
    let entries = session.table_entries().await.len();
    let default = session
        .read_ok(vec![table_entry_entity(default_entry(
            "service_selector",
            None,
        ))])
        .await;
    let default = crate::harness::into_table_entry(default.into_iter().next().expect("default"));
    let default_action = match default.action.and_then(|a| a.r#type) {
        Some(umbra_proto::p4::v1::table_action::Type::Action(a)) => a.action_id,
        other => panic!("default entry without action: {other:?}"),
    };
    let sessions = session
        .read_ok(vec![clone_session_entity(clone_session(0, &[]))])
        .await
        .len();
    let counter = session
        .read_ok(vec![counter_entity(CounterEntry {
            counter_id: counter_id("port_rx"),
            index: Some(Index { index: 4 }),
            data: None,
        })])
        .await;
    let data = match &counter[..] {
        [
            umbra_proto::p4::v1::Entity {
                entity: Some(umbra_proto::p4::v1::entity::Entity::CounterEntry(c)),
            },
        ] => c.data.expect("data"),
        other => panic!("expected one counter entry, got {other:?}"),
    };
    (
        entries,
        default_action,
        sessions,
        (data.packet_count, data.byte_count),
    )
}

#[tokio::test]
async fn verify_checks_without_changing_anything() {
    let mut session = Session::start().await;
    install_state(&mut session).await;
    let before = state(&mut session).await;

    set_pipeline(
        &mut session.client,
        Action::Verify,
        Some(config(umbra_p4info().clone(), 99)),
    )
    .await
    .expect("umbra.p4 verifies");
    assert_eq!(state(&mut session).await, before);
    assert_eq!(cookie(&mut session.client).await, Some(1));

    let status = set_pipeline(&mut session.client, Action::Verify, None)
        .await
        .expect_err("no config");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        describe(&status)
    );
    let status = set_pipeline(
        &mut session.client,
        Action::Verify,
        Some(ForwardingPipelineConfig::default()),
    )
    .await
    .expect_err("no p4info");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        describe(&status)
    );
    let status = set_pipeline(
        &mut session.client,
        Action::Unspecified,
        Some(config(umbra_p4info().clone(), 3)),
    )
    .await
    .expect_err("no action");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        describe(&status)
    );
}

#[tokio::test]
async fn verify_alone_commits_nothing() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut primary = crate::harness::Controller::open(&mut client).await;
    primary
        .arbitrate(Some(crate::harness::PRIMARY_ID), "")
        .await;
    set_pipeline(
        &mut client,
        Action::Verify,
        Some(config(umbra_p4info().clone(), 1)),
    )
    .await
    .expect("verifies");
    let status = read(&mut client, vec![table_entry_entity(Default::default())])
        .await
        .expect_err("nothing committed");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        describe(&status)
    );
}

#[tokio::test]
async fn verify_and_commit_clears_the_forwarding_state() {
    let mut session = Session::start().await;
    install_state(&mut session).await;
    let drop_id = crate::harness::action_info("drop").id;
    assert_eq!(
        state(&mut session).await,
        (
            1,
            crate::harness::action_info("set_active_device").id,
            1,
            (3, 300)
        )
    );

    set_pipeline(
        &mut session.client,
        Action::VerifyAndCommit,
        Some(config(umbra_p4info().clone(), 2)),
    )
    .await
    .expect("commits");
    assert_eq!(
        state(&mut session).await,
        (0, drop_id, 0, (0, 0)),
        "entries, default actions, clone sessions and counters are reset"
    );
    assert_eq!(cookie(&mut session.client).await, Some(2));
}

#[tokio::test]
async fn reconcile_and_commit_keeps_the_forwarding_state() {
    let mut session = Session::start().await;
    install_state(&mut session).await;
    let before = state(&mut session).await;

    set_pipeline(
        &mut session.client,
        Action::ReconcileAndCommit,
        Some(config(p4c_style_p4info(), 3)),
    )
    .await
    .expect("reconciles");
    assert_eq!(state(&mut session).await, before);
    assert_eq!(cookie(&mut session.client).await, Some(3));
    // Still writable under the new config.
    session.write_ok(vec![insert(select(1, 2))]).await;

    let status = set_pipeline(&mut session.client, Action::ReconcileAndCommit, None)
        .await
        .expect_err("no config");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        describe(&status)
    );
}

#[tokio::test]
async fn verify_and_save_then_commit_realizes_the_saved_config() {
    let mut session = Session::start().await;
    install_state(&mut session).await;
    let before = state(&mut session).await;

    set_pipeline(
        &mut session.client,
        Action::VerifyAndSave,
        Some(config(p4c_style_p4info(), 5)),
    )
    .await
    .expect("saves");
    // Saving does not modify the forwarding state or the running config.
    assert_eq!(state(&mut session).await, before);
    assert_eq!(cookie(&mut session.client).await, Some(1));

    set_pipeline(&mut session.client, Action::Commit, None)
        .await
        .expect("commits the saved config");
    assert_eq!(cookie(&mut session.client).await, Some(5));
    let all = get_config(&mut session.client, ResponseType::All)
        .await
        .expect("get")
        .expect("set");
    assert_eq!(all.p4info, Some(p4c_style_p4info()));
    session.write_ok(vec![insert(select(1, 2))]).await;

    let status = set_pipeline(&mut session.client, Action::VerifyAndSave, None)
        .await
        .expect_err("no config");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        describe(&status)
    );
}

/// Spec "SetForwardingPipelineConfig RPC", COMMIT: "Returns a NOT_FOUND error if no saved config is found,
/// i.e. if no VERIFY_AND_SAVE action preceded this one."
#[tokio::test]
async fn commit_without_a_saved_config_is_not_found() {
    let mut session = Session::start().await;
    let status = set_pipeline(&mut session.client, Action::Commit, None)
        .await
        .expect_err("nothing saved");
    assert_eq!(status.code(), Code::NotFound, "{}", describe(&status));

    // A saved config can be committed once.
    set_pipeline(
        &mut session.client,
        Action::VerifyAndSave,
        Some(config(umbra_p4info().clone(), 6)),
    )
    .await
    .expect("saves");
    set_pipeline(&mut session.client, Action::Commit, None)
        .await
        .expect("commits");
    let status = set_pipeline(&mut session.client, Action::Commit, None)
        .await
        .expect_err("already committed");
    assert_eq!(status.code(), Code::NotFound, "{}", describe(&status));
}

/// Spec "SetForwardingPipelineConfig RPC", COMMIT: "Config should not be provided for this action type ...
/// Returns an INVALID_ARGUMENT error if a config is provided with this
/// message."
#[tokio::test]
async fn commit_with_a_config_is_invalid_argument() {
    let mut session = Session::start().await;
    set_pipeline(
        &mut session.client,
        Action::VerifyAndSave,
        Some(config(umbra_p4info().clone(), 6)),
    )
    .await
    .expect("saves");
    let status = set_pipeline(
        &mut session.client,
        Action::Commit,
        Some(config(umbra_p4info().clone(), 7)),
    )
    .await
    .expect_err("COMMIT takes no config");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        describe(&status)
    );
    assert_eq!(
        cookie(&mut session.client).await,
        Some(1),
        "nothing was committed"
    );
}

/// Spec "SetForwardingPipelineConfig RPC": after VERIFY_AND_SAVE "any subsequent Read / Write requests must
/// refer to fields in the new config", and COMMIT "realizes the last saved
/// config ... the forwarding state in the target is updated by replaying
/// the write requests to the target device since the last config was
/// saved". An entry written between the two therefore survives the COMMIT.
#[tokio::test]
async fn commit_replays_the_writes_made_since_the_save() {
    let mut session = Session::start().await;
    set_pipeline(
        &mut session.client,
        Action::VerifyAndSave,
        Some(config(umbra_p4info().clone(), 8)),
    )
    .await
    .expect("saves");
    session.write_ok(vec![insert(classify(2, 20, 1))]).await;
    set_pipeline(&mut session.client, Action::Commit, None)
        .await
        .expect("commits");
    assert_eq!(
        session.table_entries().await,
        vec![classify(2, 20, 1)],
        "the entry written after VERIFY_AND_SAVE is replayed by COMMIT"
    );
}

#[tokio::test]
async fn p4c_style_p4info_is_accepted() {
    let mut session = Session::start().await;
    let sent = config(p4c_style_p4info(), 0xC0FFEE);
    set_pipeline(
        &mut session.client,
        Action::VerifyAndCommit,
        Some(sent.clone()),
    )
    .await
    .unwrap_or_else(|status| panic!("p4c's P4Info is umbra.p4's: {}", describe(&status)));
    let got = get_config(&mut session.client, ResponseType::All)
        .await
        .expect("get")
        .expect("set");
    assert_eq!(got, sent, "the config reads back exactly as set");

    // The program works as before: ids are the same.
    session.write_ok(vec![insert(classify(3, 30, 1))]).await;
    assert_eq!(session.table_entries().await, vec![classify(3, 30, 1)]);
}

/// Match fields and parameters are identified by their ids (spec "P4Info
/// Objects": ids are unique within the table / action; "Read-Write
/// Symmetry": the order of repeated fields carries no meaning), and the
/// switch accepts a P4Info that lists them in another order. With every
/// action's parameters and every table's match fields listed in reverse, an
/// entry must still read back exactly as written (and be executed as
/// written).
#[tokio::test]
async fn reordered_fields_and_params_are_matched_by_id() {
    let mut session = Session::start().await;
    let mut p4info = umbra_p4info().clone();
    for action in &mut p4info.actions {
        action.params.reverse();
    }
    for table in &mut p4info.tables {
        table.match_fields.reverse();
    }
    set_pipeline(
        &mut session.client,
        Action::VerifyAndCommit,
        Some(config(p4info, 4)),
    )
    .await
    .unwrap_or_else(|status| panic!("only the order differs: {}", describe(&status)));

    let written = classify(3, 0x1234, 1);
    session.write_ok(vec![insert(written.clone())]).await;
    assert_eq!(session.table_entries().await, vec![written]);
}

#[tokio::test]
async fn p4infos_of_another_program_are_rejected_naming_the_difference() {
    let mut session = Session::start().await;
    session.write_ok(vec![insert(classify(1, 10, 0))]).await;

    let mut renamed = umbra_p4info().clone();
    let renamed_id = table("port_classify").id;
    for t in &mut renamed.tables {
        let preamble = t.preamble.as_mut().expect("preamble");
        if preamble.id == renamed_id {
            preamble.name = "UmbraIngress.port_classifier".into();
        }
    }

    let mut new_id = umbra_p4info().clone();
    let changed_id = table("mirror_truncate").id + 0x100;
    for t in &mut new_id.tables {
        let preamble = t.preamble.as_mut().expect("preamble");
        if preamble.name == "UmbraEgress.mirror_truncate" {
            preamble.id = changed_id;
        }
    }

    let mut wider = umbra_p4info().clone();
    for t in &mut wider.tables {
        if t.preamble.as_ref().expect("preamble").name == "UmbraIngress.service_selector" {
            t.match_fields[0].bitwidth = 32;
        }
    }

    let mut missing = umbra_p4info().clone();
    let punt = crate::harness::action_info("punt_to_cpu").id;
    missing
        .actions
        .retain(|a| a.preamble.as_ref().expect("preamble").id != punt);
    for t in &mut missing.tables {
        t.action_refs.retain(|r| r.id != punt);
    }

    let cases: Vec<(&str, P4Info, Vec<String>)> = vec![
        (
            "renamed table",
            renamed,
            vec![
                "UmbraIngress.port_classify\"".into(),
                "UmbraIngress.port_classifier".into(),
            ],
        ),
        (
            "changed id",
            new_id,
            vec![
                "UmbraEgress.mirror_truncate".into(),
                format!("{changed_id:#010x}"),
            ],
        ),
        (
            "changed bitwidth",
            wider,
            vec!["service_id".into(), "32".into(), "16".into()],
        ),
        (
            "missing action",
            missing,
            vec!["UmbraIngress.punt_to_cpu".into()],
        ),
    ];
    for (what, p4info, named) in cases {
        for action in [
            Action::Verify,
            Action::VerifyAndSave,
            Action::VerifyAndCommit,
            Action::ReconcileAndCommit,
        ] {
            let status = set_pipeline(
                &mut session.client,
                action,
                Some(config(p4info.clone(), 77)),
            )
            .await
            .expect_err(what);
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{what}: {}",
                describe(&status)
            );
            for name in &named {
                assert!(
                    status.message().contains(name.as_str()),
                    "{what}: the message names {name}: {}",
                    status.message()
                );
            }
        }
    }
    // The running pipeline is untouched.
    assert_eq!(cookie(&mut session.client).await, Some(1));
    assert_eq!(session.table_entries().await, vec![classify(1, 10, 0)]);
    let status = set_pipeline(&mut session.client, Action::Commit, None)
        .await
        .expect_err("the rejected configs were not saved");
    assert_ne!(status.code(), Code::Ok);
}

#[tokio::test]
async fn get_pipeline_config_returns_what_was_set_per_response_type() {
    let mut session = Session::start().await;
    let sent = config(p4c_style_p4info(), 0xC0FFEE);
    set_pipeline(
        &mut session.client,
        Action::VerifyAndCommit,
        Some(sent.clone()),
    )
    .await
    .expect("commits");

    let client = session.client.clone();
    let get = |t| {
        let mut client = client.clone();
        async move {
            get_config(&mut client, t)
                .await
                .expect("get")
                .expect("config is set")
        }
    };
    assert_eq!(get(ResponseType::All).await, sent);
    assert_eq!(
        get(ResponseType::CookieOnly).await,
        ForwardingPipelineConfig {
            cookie: Some(Cookie { cookie: 0xC0FFEE }),
            ..Default::default()
        }
    );
    assert_eq!(
        get(ResponseType::P4infoAndCookie).await,
        ForwardingPipelineConfig {
            p4info: sent.p4info.clone(),
            cookie: sent.cookie,
            ..Default::default()
        }
    );
    assert_eq!(
        get(ResponseType::DeviceConfigAndCookie).await,
        ForwardingPipelineConfig {
            p4_device_config: sent.p4_device_config.clone(),
            cookie: sent.cookie,
            ..Default::default()
        }
    );

    // A config without a cookie reads back without one.
    let uncookied = ForwardingPipelineConfig {
        cookie: None,
        ..config(umbra_p4info().clone(), 0)
    };
    set_pipeline(
        &mut session.client,
        Action::VerifyAndCommit,
        Some(uncookied.clone()),
    )
    .await
    .expect("commits");
    assert_eq!(get(ResponseType::All).await, uncookied);

    let status = session
        .client
        .get_forwarding_pipeline_config(GetForwardingPipelineConfigRequest {
            device_id: DEVICE_ID + 1,
            response_type: ResponseType::All.into(),
        })
        .await
        .expect_err("unknown device");
    assert_eq!(status.code(), Code::NotFound, "{}", describe(&status));
}

/// Spec "GetForwardingPipelineConfig RPC": "If a P4Runtime server is in a state where the
/// forwarding-pipeline config is not known, the top-level config field will
/// be unset in the response."
#[tokio::test]
async fn get_pipeline_config_before_any_is_unset() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let got = get_config(&mut client, ResponseType::All).await;
    match got {
        Ok(config) => assert_eq!(config, None),
        Err(status) => panic!("expected OK with config unset, got {}", describe(&status)),
    }
}
