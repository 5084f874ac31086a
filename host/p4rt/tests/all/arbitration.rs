//! Mastership: the highest election id is primary, the backup learns it
//! lost, and its writes are refused with a typed error.

use umbra_p4rt::{ClientEvent, P4RuntimeClient, P4rtError, StreamErrorKind};

use crate::support::{Controller, Switch, config, schema, selector};

#[tokio::test]
async fn higher_election_id_is_primary_and_the_backup_cannot_write() {
    let switch = Switch::start().await;
    let mut low = Controller::primary_with_pipeline(switch.addr, 1).await;
    assert!(low.client.is_primary());
    assert_eq!(low.client.primary_election_id(), Some(1));

    let high = Controller::primary_with_pipeline(switch.addr, 2).await;
    assert!(high.client.is_primary());

    // The first controller is told it lost mastership, and to whom.
    let (primary, election_id) = low
        .wait_for(|event| match event {
            ClientEvent::MastershipChanged {
                primary,
                election_id,
                ..
            } => Some((primary, election_id)),
            _ => None,
        })
        .await;
    assert!(!primary);
    assert_eq!(election_id, Some(2));
    assert!(!low.client.is_primary());

    // The backup's write reaches the switch and is refused as not primary.
    let schema = schema();
    let err = low
        .client
        .insert(selector(&schema, 1, 1))
        .await
        .expect_err("a backup's write must fail");
    assert!(matches!(err, P4rtError::NotPrimary(_)), "{err:?}");
    assert!(
        low.client.desired_state().entries().next().is_none(),
        "a refused write is not desired state"
    );
    // A backup's packet-out is refused on the stream.
    let packet = schema
        .packet_out(vec![0; 60])
        .metadata("egress_port", 255u16)
        .build()
        .unwrap();
    low.client.send_packet_out(&packet).await.unwrap();
    let error = low
        .wait_for(|event| match event {
            ClientEvent::StreamError(error) => Some(error),
            _ => None,
        })
        .await;
    assert_eq!(error.code, tonic::Code::PermissionDenied);
    assert_eq!(error.kind, StreamErrorKind::PacketOut);

    // The primary's goes through.
    high.client.insert(selector(&schema, 1, 1)).await.unwrap();
    assert_eq!(
        low.client
            .read_table("service_selector")
            .await
            .unwrap()
            .len(),
        1
    );

    // A second controller with the primary's election id is refused.
    let err = P4RuntimeClient::connect(config(switch.addr, 2))
        .await
        .expect_err("duplicate election id accepted");
    let P4rtError::Arbitration(status) = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    high.stop().await;
    low.stop().await;
    switch.stop().await;
}
