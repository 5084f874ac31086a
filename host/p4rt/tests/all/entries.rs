//! Writes and reads of table entries, default actions, clone sessions and
//! counters, with per-update errors.

use umbra_p4rt::{
    Atomicity, ClientConfig, CloneSession, CounterData, P4rtError, Replica, Update, Value,
};

use crate::support::{
    Controller, Switch, config, mirror_session, sampling, selector, sorted, steering,
    truncate_default,
};

#[tokio::test]
async fn steering_and_sampling_read_back_as_written_and_one_modify_flips() {
    let switch = Switch::start().await;
    let controller = Controller::primary_with_pipeline(switch.addr, 1).await;
    let client = &controller.client;
    let schema = client.schema().unwrap();

    let mut written = steering(&schema, 1);
    written.extend(sampling(&schema));
    client
        .write(
            written.iter().cloned().map(Update::InsertEntry).collect(),
            Atomicity::RollbackOnError,
        )
        .await
        .unwrap();
    assert_eq!(
        client.read_all_tables().await.unwrap(),
        sorted(written.clone())
    );
    assert_eq!(
        client
            .read_table("UmbraIngress.mirror_sampling")
            .await
            .unwrap(),
        sorted(sampling(&schema))
    );

    // Failover: one MODIFY of the selector.
    client.modify(selector(&schema, 1, 2)).await.unwrap();
    let selectors = client.read_table("service_selector").await.unwrap();
    assert_eq!(selectors, [selector(&schema, 1, 2)]);
    assert_eq!(
        selectors[0].action().param("device"),
        Some(&Value::from(2u8))
    );
    // Nothing else moved.
    let mut expected: Vec<_> = written
        .into_iter()
        .filter(|e| e.table() != "UmbraIngress.service_selector")
        .collect();
    expected.push(selector(&schema, 1, 2));
    assert_eq!(
        client.read_all_tables().await.unwrap(),
        sorted(expected.clone())
    );
    // The desired state follows the writes.
    assert_eq!(
        client
            .desired_state()
            .entries()
            .cloned()
            .collect::<Vec<_>>(),
        sorted(expected)
    );

    // Delete by key.
    client
        .delete(selector(&schema, 1, 2).key().clone())
        .await
        .unwrap();
    assert!(
        client
            .read_table("service_selector")
            .await
            .unwrap()
            .is_empty()
    );

    controller.stop().await;
    switch.stop().await;
}

#[tokio::test]
async fn per_update_errors_are_decoded_at_their_index() {
    let switch = Switch::start().await;
    let controller = Controller::primary_with_pipeline(switch.addr, 1).await;
    let client = &controller.client;
    let schema = client.schema().unwrap();
    client.insert(selector(&schema, 1, 1)).await.unwrap();

    // CONTINUE_ON_ERROR: the duplicate fails, its neighbours are applied.
    let err = client
        .write(
            vec![
                Update::InsertEntry(selector(&schema, 2, 1)),
                Update::InsertEntry(selector(&schema, 1, 2)),
                Update::InsertEntry(selector(&schema, 3, 1)),
            ],
            Atomicity::ContinueOnError,
        )
        .await
        .expect_err("duplicate insert accepted");
    let P4rtError::Write(write) = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(write.updates.len(), 3);
    assert_eq!(write.update(0).unwrap().code, tonic::Code::Ok);
    assert_eq!(write.update(1).unwrap().code, tonic::Code::AlreadyExists);
    assert!(!write.update(1).unwrap().message.is_empty());
    assert_eq!(write.update(2).unwrap().code, tonic::Code::Ok);
    assert_eq!(write.failures().map(|f| f.index).collect::<Vec<_>>(), [1]);
    let installed = client.read_table("service_selector").await.unwrap();
    assert_eq!(
        installed,
        [
            selector(&schema, 1, 1),
            selector(&schema, 2, 1),
            selector(&schema, 3, 1)
        ]
    );
    // Applied updates joined the desired state; the refused one did not
    // replace what was desired.
    assert_eq!(
        client
            .desired_state()
            .entries()
            .cloned()
            .collect::<Vec<_>>(),
        installed
    );

    // ROLLBACK_ON_ERROR: nothing applied, the innocent update is aborted.
    let err = client
        .write(
            vec![
                Update::InsertEntry(selector(&schema, 4, 1)),
                Update::InsertEntry(selector(&schema, 1, 2)),
            ],
            Atomicity::RollbackOnError,
        )
        .await
        .expect_err("duplicate insert accepted");
    let P4rtError::Write(write) = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(write.update(0).unwrap().code, tonic::Code::Aborted);
    assert_eq!(write.update(1).unwrap().code, tonic::Code::AlreadyExists);
    assert_eq!(
        client.read_table("service_selector").await.unwrap().len(),
        3
    );

    // Deleting what is not there.
    let err = client
        .delete(selector(&schema, 9, 1).key().clone())
        .await
        .expect_err("delete of a missing entry accepted");
    let P4rtError::Write(write) = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(write.update(0).unwrap().code, tonic::Code::NotFound);

    controller.stop().await;
    switch.stop().await;
}

#[tokio::test]
async fn large_batches_are_chunked_and_indices_stay_global() {
    let switch = Switch::start().await;
    let controller = Controller::connect_with(ClientConfig {
        max_updates_per_write: 2,
        ..config(switch.addr, 1)
    })
    .await;
    let client = &controller.client;
    client
        .push_pipeline(crate::support::p4info(), Vec::new(), 1)
        .await
        .unwrap();
    let schema = client.schema().unwrap();
    client.insert(selector(&schema, 4, 1)).await.unwrap();

    // Five updates in three requests; the duplicate is the fourth.
    let updates = (1..=5u16)
        .map(|service| Update::InsertEntry(selector(&schema, service, 1)))
        .collect();
    let err = client
        .write(updates, Atomicity::ContinueOnError)
        .await
        .expect_err("duplicate insert accepted");
    let P4rtError::Write(write) = &err else {
        panic!("unexpected {err:?}");
    };
    let codes: Vec<_> = write.updates.iter().map(|u| (u.index, u.code)).collect();
    assert_eq!(
        codes,
        [
            (0, tonic::Code::Ok),
            (1, tonic::Code::Ok),
            (2, tonic::Code::Ok),
            (3, tonic::Code::AlreadyExists),
            (4, tonic::Code::Ok),
        ]
    );
    assert_eq!(
        client.read_table("service_selector").await.unwrap().len(),
        5
    );

    controller.stop().await;
    switch.stop().await;
}

#[tokio::test]
async fn clone_sessions_and_default_actions_round_trip() {
    let switch = Switch::start().await;
    let controller = Controller::primary_with_pipeline(switch.addr, 1).await;
    let client = &controller.client;
    let schema = client.schema().unwrap();

    let session = CloneSession::builder(5)
        .replica(9, 1)
        .replica(10, 2)
        .packet_length_bytes(128)
        .build()
        .unwrap();
    client
        .write(
            vec![
                Update::InsertCloneSession(session.clone()),
                Update::SetDefaultAction(truncate_default(&schema)),
            ],
            Atomicity::ContinueOnError,
        )
        .await
        .unwrap();
    assert_eq!(
        client.read_clone_sessions().await.unwrap(),
        std::slice::from_ref(&session)
    );
    let default = client.read_default_action("mirror_truncate").await.unwrap();
    assert_eq!(default, truncate_default(&schema));

    // Modify the replicas, then delete.
    let moved = mirror_session();
    client
        .write(
            vec![Update::ModifyCloneSession(moved.clone())],
            Atomicity::ContinueOnError,
        )
        .await
        .unwrap();
    let read = client.read_clone_sessions().await.unwrap();
    assert_eq!(read, std::slice::from_ref(&moved));
    assert_eq!(
        read[0].replicas(),
        [Replica {
            port: 9,
            instance: 1
        }]
    );
    assert_eq!(client.desired_state().clone_sessions().count(), 1);
    client
        .write(
            vec![Update::DeleteCloneSession(5)],
            Atomicity::ContinueOnError,
        )
        .await
        .unwrap();
    assert!(client.read_clone_sessions().await.unwrap().is_empty());
    assert_eq!(client.desired_state().clone_sessions().count(), 0);

    // Untouched tables report the P4Info's initial default action.
    let default = client
        .read_default_action("service_selector")
        .await
        .unwrap();
    assert_eq!(default.action().name(), "UmbraIngress.drop");

    controller.stop().await;
    switch.stop().await;
}

#[tokio::test]
async fn counters_are_read_by_name() {
    let switch = Switch::start().await;
    let controller = Controller::primary_with_pipeline(switch.addr, 1).await;
    let client = &controller.client;
    let schema = client.schema().unwrap();

    // Indexed counters: one cell, all cells, and a write that shows up.
    let written = CounterData {
        packets: 3,
        bytes: 180,
    };
    client.set_counter("port_rx", 7, written).await.unwrap();
    assert_eq!(
        client
            .read_counter("UmbraIngress.port_rx", 7)
            .await
            .unwrap(),
        written
    );
    let cells = client.read_counters("port_rx").await.unwrap();
    assert_eq!(cells.len(), 512);
    assert_eq!(cells[&7], written);
    assert_eq!(cells[&8], CounterData::default());
    assert_eq!(
        client.read_counter("port_tx", 7).await.unwrap(),
        CounterData::default()
    );
    let err = client.read_counter("port_rx", 512).await.unwrap_err();
    assert!(err.to_string().contains("outside counter"), "{err}");
    let err = client.read_counter("port_rxx", 0).await.unwrap_err();
    assert!(!err.entity_problems().is_empty(), "{err:?}");

    // Direct counters of the steering table.
    let steering = steering(&schema, 1);
    for entry in &steering {
        client.insert(entry.clone()).await.unwrap();
    }
    let legs = client.read_direct_counters("device_portmap").await.unwrap();
    assert_eq!(legs.len(), 4);
    assert!(legs.iter().all(|(_, data)| *data == CounterData::default()));
    let leg = legs[0].0.key().clone();
    let counted = CounterData {
        packets: 10,
        bytes: 1000,
    };
    client.set_direct_counter(&leg, counted).await.unwrap();
    assert_eq!(client.read_direct_counter(&leg).await.unwrap(), counted);
    let legs = client.read_direct_counters("device_portmap").await.unwrap();
    assert_eq!(
        legs.iter().filter(|(_, data)| *data == counted).count(),
        1,
        "{legs:?}"
    );
    let err = client
        .read_direct_counters("service_selector")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no direct counter"), "{err}");

    controller.stop().await;
    switch.stop().await;
}
