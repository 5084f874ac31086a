//! Client arbitration on StreamChannel (spec "Client Arbitration and
//! Controller Replication", "Client Arbitration Update") and who may Write
//! (spec "Write RPC": NOT_FOUND, then PERMISSION_DENIED, then
//! FAILED_PRECONDITION).

use tonic::Code;
use umbra_proto::p4::v1::{
    ReadRequest, Role, SetForwardingPipelineConfigRequest, WriteRequest,
    set_forwarding_pipeline_config_request, stream_message_request, write_request,
};

use crate::harness::{
    Controller, DEVICE_ID, PRIMARY_ID, Session, Switch, arbitration_status, classify, config,
    describe, insert, table_entry_entity, uint128,
};

/// A Write of nothing with this election id and role; before a pipeline is
/// committed it fails PRECONDITION exactly when the arbitration check passed.
async fn empty_write(
    client: &mut crate::harness::Client,
    role: &str,
    election_id: Option<u128>,
) -> Code {
    match client
        .write(WriteRequest {
            device_id: DEVICE_ID,
            role: role.to_owned(),
            election_id: election_id.map(uint128),
            updates: Vec::new(),
            atomicity: write_request::Atomicity::ContinueOnError.into(),
            ..Default::default()
        })
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn first_controller_is_primary_and_a_lower_id_is_told_who_is() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut b = Controller::open(&mut client).await;

    let update = a.arbitrate(Some(10), "").await;
    assert_eq!(update.device_id, DEVICE_ID);
    assert_eq!(update.role, None, "the default role is echoed as unset");
    assert_eq!(arbitration_status(&update), (Code::Ok, Some(10)));

    let update = b.arbitrate(Some(5), "").await;
    assert_eq!(
        arbitration_status(&update),
        (Code::AlreadyExists, Some(10)),
        "a backup learns the primary's election id"
    );
    assert_eq!(
        empty_write(&mut client, "", Some(10)).await,
        Code::FailedPrecondition
    );
    assert_eq!(
        empty_write(&mut client, "", Some(5)).await,
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn higher_election_id_takes_over_and_everyone_is_told() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut b = Controller::open(&mut client).await;
    let mut c = Controller::open(&mut client).await;
    a.arbitrate(Some(10), "").await;
    b.arbitrate(Some(5), "").await;

    let update = c.arbitrate(Some(20), "").await;
    assert_eq!(arbitration_status(&update), (Code::Ok, Some(20)));
    let old = a.next_arbitration().await;
    assert_eq!(
        arbitration_status(&old),
        (Code::AlreadyExists, Some(20)),
        "the old primary is demoted"
    );
    let backup = b.next_arbitration().await;
    assert_eq!(arbitration_status(&backup), (Code::AlreadyExists, Some(20)));

    assert_eq!(
        empty_write(&mut client, "", Some(10)).await,
        Code::PermissionDenied
    );
    assert_eq!(
        empty_write(&mut client, "", Some(20)).await,
        Code::FailedPrecondition
    );
}

#[tokio::test]
async fn primary_disconnect_leaves_backups_without_primary() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut b = Controller::open(&mut client).await;
    a.arbitrate(Some(10), "").await;
    b.arbitrate(Some(5), "").await;

    drop(a);
    let update = b.next_arbitration().await;
    assert_eq!(
        arbitration_status(&update),
        (Code::NotFound, Some(10)),
        "no primary; the highest id seen is still reported"
    );
    assert_eq!(
        empty_write(&mut client, "", Some(10)).await,
        Code::PermissionDenied
    );
    assert_eq!(
        empty_write(&mut client, "", Some(5)).await,
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn highest_election_id_ever_seen_decides_after_the_primary_left() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut b = Controller::open(&mut client).await;
    a.arbitrate(Some(10), "").await;
    b.arbitrate(Some(5), "").await;
    drop(a);
    b.next_arbitration().await;

    // A lower id does not become primary, neither re-arbitrating nor new.
    let update = b.arbitrate(Some(5), "").await;
    assert_eq!(arbitration_status(&update), (Code::NotFound, Some(10)));
    let mut d = Controller::open(&mut client).await;
    let update = d.arbitrate(Some(7), "").await;
    assert_eq!(arbitration_status(&update), (Code::NotFound, Some(10)));
    assert_eq!(
        empty_write(&mut client, "", Some(7)).await,
        Code::PermissionDenied
    );

    // The same highest id reconnecting is primary again; everyone is told.
    let mut a2 = Controller::open(&mut client).await;
    let update = a2.arbitrate(Some(10), "").await;
    assert_eq!(arbitration_status(&update), (Code::Ok, Some(10)));
    for backup in [&mut b, &mut d] {
        let update = backup.next_arbitration().await;
        assert_eq!(arbitration_status(&update), (Code::AlreadyExists, Some(10)));
    }
    assert_eq!(
        empty_write(&mut client, "", Some(10)).await,
        Code::FailedPrecondition
    );
}

#[tokio::test]
async fn primary_lowering_its_own_id_leaves_no_primary() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut b = Controller::open(&mut client).await;
    a.arbitrate(Some(10), "").await;
    b.arbitrate(Some(5), "").await;

    let update = a.arbitrate(Some(3), "").await;
    assert_eq!(arbitration_status(&update), (Code::NotFound, Some(10)));
    let update = b.next_arbitration().await;
    assert_eq!(arbitration_status(&update), (Code::NotFound, Some(10)));
    assert_eq!(
        empty_write(&mut client, "", Some(3)).await,
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn controller_without_election_id_is_a_backup() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let update = a.arbitrate(None, "").await;
    assert_eq!(
        arbitration_status(&update),
        (Code::NotFound, None),
        "no primary ever: election_id is left unset (spec: Client Arbitration Notifications)"
    );
    assert_eq!(
        empty_write(&mut client, "", None).await,
        Code::PermissionDenied
    );

    // Any id is higher than an unset one.
    let mut b = Controller::open(&mut client).await;
    let update = b.arbitrate(Some(0), "").await;
    assert_eq!(arbitration_status(&update), (Code::Ok, Some(0)));
    let update = a.next_arbitration().await;
    assert_eq!(arbitration_status(&update), (Code::AlreadyExists, Some(0)));
}

#[tokio::test]
async fn duplicate_election_id_closes_the_stream_with_invalid_argument() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut b = Controller::open(&mut client).await;
    a.arbitrate(Some(10), "").await;

    b.send_arbitration(DEVICE_ID, Some(10), "").await;
    let status = b.closed_with_error().await;
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        describe(&status)
    );

    // The primary is unaffected.
    assert_eq!(
        empty_write(&mut client, "", Some(10)).await,
        Code::FailedPrecondition
    );
    let update = a.arbitrate(Some(10), "").await;
    assert_eq!(arbitration_status(&update), (Code::Ok, Some(10)));
}

#[tokio::test]
async fn wrong_device_id_closes_the_stream_with_not_found() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    a.send_arbitration(DEVICE_ID + 1, Some(10), "").await;
    let status = a.closed_with_error().await;
    assert_eq!(status.code(), Code::NotFound, "{}", describe(&status));
    // It never became primary.
    assert_eq!(
        empty_write(&mut client, "", Some(10)).await,
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn roles_are_arbitrated_independently() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut b = Controller::open(&mut client).await;
    let mut c = Controller::open(&mut client).await;

    let update = a.arbitrate(Some(10), "steering").await;
    assert_eq!(arbitration_status(&update), (Code::Ok, Some(10)));
    assert_eq!(update.role.map(|r| r.name), Some("steering".to_owned()));
    // The same election id in another role is no duplicate.
    let update = b.arbitrate(Some(10), "telemetry").await;
    assert_eq!(arbitration_status(&update), (Code::Ok, Some(10)));
    let update = c.arbitrate(Some(5), "steering").await;
    assert_eq!(arbitration_status(&update), (Code::AlreadyExists, Some(10)));

    assert_eq!(
        empty_write(&mut client, "telemetry", Some(10)).await,
        Code::FailedPrecondition
    );
    assert_eq!(
        empty_write(&mut client, "steering", Some(10)).await,
        Code::FailedPrecondition
    );
    assert_eq!(
        empty_write(&mut client, "steering", Some(5)).await,
        Code::PermissionDenied
    );
    assert_eq!(
        empty_write(&mut client, "", Some(10)).await,
        Code::PermissionDenied,
        "the default role has no primary"
    );

    // The steering primary leaving tells steering's backup only.
    drop(a);
    let update = c.next_arbitration().await;
    assert_eq!(arbitration_status(&update), (Code::NotFound, Some(10)));
    let update = b.arbitrate(Some(10), "telemetry").await;
    assert_eq!(
        arbitration_status(&update),
        (Code::Ok, Some(10)),
        "telemetry's primary got no notification for steering's change"
    );
    assert_eq!(
        empty_write(&mut client, "steering", Some(10)).await,
        Code::PermissionDenied
    );
}

/// Spec "Rules for Handling MasterArbitrationUpdate Messages": when a
/// controller "becomes, or stays, primary" and "there was a previous
/// primary, including this controller", the server "notifies all controllers
/// other than the new primary client" and then the primary. A primary that
/// re-sends its arbitration therefore causes a notification to its backups.
#[tokio::test]
async fn primary_rearbitrating_notifies_the_backups() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut b = Controller::open(&mut client).await;
    a.arbitrate(Some(10), "").await;
    b.arbitrate(Some(5), "").await;

    let update = a.arbitrate(Some(10), "").await;
    assert_eq!(arbitration_status(&update), (Code::Ok, Some(10)));
    // Nothing else happens, so the backup's next message can only be that
    // advisory; without it this waits until WAIT and fails.
    let update = b.next_arbitration().await;
    assert_eq!(arbitration_status(&update), (Code::AlreadyExists, Some(10)));
}

/// Spec "Rules for Handling MasterArbitrationUpdate Messages" (2.b): a live controller naming another role is terminated with
/// FAILED_PRECONDITION.
#[tokio::test]
async fn changing_role_on_a_live_stream_is_failed_precondition() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    a.arbitrate(Some(10), "steering").await;
    a.send_arbitration(DEVICE_ID, Some(10), "telemetry").await;
    let status = a.closed_with_error().await;
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        describe(&status)
    );
}

/// Spec "Rules for Handling MasterArbitrationUpdate Messages" (2.a): a live controller naming another device id is terminated
/// with FAILED_PRECONDITION.
#[tokio::test]
async fn changing_device_on_a_live_stream_is_failed_precondition() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    a.arbitrate(Some(10), "").await;
    a.send_arbitration(DEVICE_ID + 1, Some(10), "").await;
    let status = a.closed_with_error().await;
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        describe(&status)
    );
}

/// Spec "Rules for Handling MasterArbitrationUpdate Messages" (1.c): a `role.config` that does not match the agreed scheme
/// (this switch agrees on none) is INVALID_ARGUMENT.
#[tokio::test]
async fn role_config_is_refused_with_invalid_argument() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut a = Controller::open(&mut client).await;
    let mut request = crate::harness::arbitration_request(DEVICE_ID, Some(10), "steering");
    if let Some(stream_message_request::Update::Arbitration(update)) = &mut request.update {
        update.role = Some(Role {
            name: "steering".into(),
            config: Some(prost_types::Any {
                type_url: "type.googleapis.com/umbra.RoleConfig".into(),
                value: vec![1, 2, 3],
            }),
            ..Role::default()
        });
    }
    a.send(request).await;
    let status = a.closed_with_error().await;
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        describe(&status)
    );
}

#[tokio::test]
async fn writes_and_pipeline_changes_need_the_primary() {
    let mut session = Session::start().await;
    let mut backup = Controller::open(&mut session.client).await;
    let update = backup.arbitrate(Some(PRIMARY_ID - 1), "").await;
    assert_eq!(
        arbitration_status(&update),
        (Code::AlreadyExists, Some(PRIMARY_ID))
    );

    let one = || vec![insert(classify(1, 1, 0))];
    for (election_id, why) in [
        (Some(PRIMARY_ID - 1), "a backup"),
        (None, "no election id"),
        (Some(PRIMARY_ID + 1), "an id nobody arbitrated with"),
    ] {
        let status = session
            .client
            .write(WriteRequest {
                device_id: DEVICE_ID,
                election_id: election_id.map(uint128),
                updates: one(),
                ..Default::default()
            })
            .await
            .expect_err(why);
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{why}: {}",
            describe(&status)
        );
        assert!(
            status.details().is_empty(),
            "RPC-wide errors carry no details"
        );
    }
    let status = session
        .client
        .write(WriteRequest {
            device_id: DEVICE_ID + 1,
            election_id: Some(uint128(PRIMARY_ID)),
            updates: one(),
            ..Default::default()
        })
        .await
        .expect_err("unknown device");
    assert_eq!(status.code(), Code::NotFound, "{}", describe(&status));

    let status = session
        .client
        .set_forwarding_pipeline_config(SetForwardingPipelineConfigRequest {
            device_id: DEVICE_ID,
            election_id: Some(uint128(PRIMARY_ID - 1)),
            action: set_forwarding_pipeline_config_request::Action::VerifyAndCommit.into(),
            config: Some(config(umbra_p4info::umbra_p4info().clone(), 2)),
            ..Default::default()
        })
        .await
        .expect_err("a backup cannot set the pipeline");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        describe(&status)
    );

    // Nothing was written, and reads need no arbitration at all.
    let mut reader = session.switch.client().await;
    let found = crate::harness::read(&mut reader, vec![table_entry_entity(Default::default())])
        .await
        .expect("anyone may read");
    assert!(found.is_empty(), "{found:?}");
    session.write_ok(one()).await;
}

#[tokio::test]
async fn write_and_read_before_any_pipeline_are_failed_precondition() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut primary = Controller::open(&mut client).await;
    primary.arbitrate(Some(PRIMARY_ID), "").await;

    let status = crate::harness::write(
        &mut client,
        vec![insert(classify(1, 1, 0))],
        write_request::Atomicity::ContinueOnError,
    )
    .await
    .expect_err("no pipeline");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        describe(&status)
    );

    let status = crate::harness::read(&mut client, vec![table_entry_entity(Default::default())])
        .await
        .expect_err("no pipeline");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        describe(&status)
    );

    // The device check comes first for reads as well.
    let status = client
        .read(ReadRequest {
            device_id: DEVICE_ID + 1,
            entities: vec![table_entry_entity(Default::default())],
            ..Default::default()
        })
        .await
        .expect_err("unknown device");
    assert_eq!(status.code(), Code::NotFound, "{}", describe(&status));

    // Arbitration is checked before the pipeline (spec "Write RPC" order).
    assert_eq!(
        empty_write(&mut client, "", Some(1)).await,
        Code::PermissionDenied
    );
}
