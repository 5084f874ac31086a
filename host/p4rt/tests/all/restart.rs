//! Surviving a switch restart: reconnect, re-arbitrate, re-push the
//! pipeline when the switch lost it, and reconcile to exactly the desired
//! state.

use umbra_p4rt::{
    Atomicity, ClientEvent, CloneSession, P4rtError, PipelineOutcome, ReconcileReport, SyncReport,
    TableEntry, Update,
};

use crate::support::{
    COOKIE, Controller, Gate, Switch, mirror_session, sampling, schema, selector, sorted, steering,
    truncate_default,
};

/// The `Reconnected` event's synchronisation, skipping other events.
async fn reconnected(controller: &mut Controller) -> SyncReport {
    let (primary, sync) = controller
        .wait_for(|event| match event {
            ClientEvent::Reconnected { primary, sync } => Some((primary, sync)),
            _ => None,
        })
        .await;
    assert!(primary, "the only controller is primary again");
    sync.expect("a pipeline was pushed, so the client synchronises")
        .expect("synchronisation succeeds")
}

async fn disconnected(controller: &mut Controller) {
    controller
        .wait_for(|event| matches!(event, ClientEvent::Disconnected { .. }).then_some(()))
        .await;
}

#[tokio::test]
async fn restart_reconnects_and_reconciles_to_exactly_the_desired_state() {
    let schema = schema();
    let first = Switch::start().await;
    let address = first.addr;
    // The controller reaches the switch through a gate, so the test decides
    // when it may reach the restarted one.
    let gate = Gate::new(address).await;
    let mut controller = Controller::primary_with_pipeline(gate.addr, 10).await;
    let client = controller.client.clone();

    // Desired state: written through the client...
    let mut desired: Vec<TableEntry> = steering(&schema, 1);
    desired.extend(sampling(&schema));
    let mut updates: Vec<Update> = desired.iter().cloned().map(Update::InsertEntry).collect();
    updates.push(Update::InsertCloneSession(mirror_session()));
    updates.push(Update::SetDefaultAction(truncate_default(&schema)));
    client
        .write(updates, Atomicity::ContinueOnError)
        .await
        .unwrap();
    // ...and declared without writing (installed by the next reconcile).
    let declared = selector(&schema, 2, 2);
    client.set_desired_entry(declared.clone());
    desired.push(declared);
    let desired = sorted(desired);
    let report = client.reconcile().await.unwrap();
    assert_eq!(
        report,
        ReconcileReport {
            entries_inserted: 1,
            ..ReconcileReport::default()
        }
    );
    assert_eq!(client.read_all_tables().await.unwrap(), desired);
    assert!(client.reconcile().await.unwrap().is_noop());

    // The switch goes away.
    gate.set_open(false);
    first.stop().await;
    disconnected(&mut controller).await;
    assert!(!client.is_connected());
    assert!(matches!(
        client.insert(selector(&schema, 7, 1)).await,
        Err(P4rtError::Disconnected)
    ));

    // A fresh switch on the same address, set up by another controller
    // with the same pipeline cookie (so no push will wipe it): some desired
    // entries present, one with another action, garbage besides, a wrong
    // clone session and an extra one, and a changed default action.
    let second = Switch::start_on(address).await;
    assert_eq!(second.addr, address);
    let rogue = Controller::primary_with_pipeline(address, 5).await;
    let stale = [
        selector(&schema, 9, 2),
        schema
            .table("port_classify")
            .exact("ingress_port", 7u16)
            .action("punt_to_cpu")
            .build()
            .unwrap(),
    ];
    let mut garbage: Vec<Update> = desired[..3]
        .iter()
        .cloned()
        .map(Update::InsertEntry)
        .collect();
    garbage.push(Update::InsertEntry(selector(&schema, 1, 2))); // desired: device 1
    garbage.extend(stale.iter().cloned().map(Update::InsertEntry));
    garbage.push(Update::InsertCloneSession(
        CloneSession::builder(5).replica(4, 1).build().unwrap(),
    ));
    garbage.push(Update::InsertCloneSession(
        CloneSession::builder(6).replica(9, 1).build().unwrap(),
    ));
    garbage.push(Update::SetDefaultAction(
        schema
            .default_action("service_selector")
            .action("set_active_device")
            .param("device", 3u8)
            .build()
            .unwrap(),
    ));
    rogue
        .client
        .write(garbage, Atomicity::ContinueOnError)
        .await
        .unwrap();
    let present = rogue.client.read_all_tables().await.unwrap();
    let already_right = present.iter().filter(|e| desired.contains(e)).count();
    let same_key_other_action = present
        .iter()
        .filter(|e| !desired.contains(e) && desired.iter().any(|d| d.key() == e.key()))
        .count();
    assert_eq!(same_key_other_action, 1);

    // Let the controller in: it reconnects, becomes primary (its election
    // id is higher), finds the cookie unchanged and reconciles.
    gate.set_open(true);
    let sync = reconnected(&mut controller).await;
    assert_eq!(sync.pipeline, PipelineOutcome::Skipped);
    assert_eq!(
        sync.reconcile,
        ReconcileReport {
            entries_deleted: stale.len(),
            entries_modified: 1,
            entries_inserted: desired.len() - already_right - 1,
            // service_selector reset to drop(), mirror_truncate set again.
            default_actions_set: 2,
            clone_sessions_deleted: 1,
            clone_sessions_modified: 1,
            clone_sessions_inserted: 0,
        }
    );
    assert!(client.is_primary());
    assert_exactly_desired(&controller, &desired).await;
    // The rogue saw it lose mastership; its writes are refused now.
    assert!(matches!(
        rogue.client.insert(selector(&schema, 8, 1)).await,
        Err(P4rtError::NotPrimary(_))
    ));
    rogue.stop().await;

    // Another restart, this time to an empty switch: the pipeline is pushed
    // again and everything inserted.
    second.stop().await;
    disconnected(&mut controller).await;
    let third = Switch::start_on(address).await;
    let sync = reconnected(&mut controller).await;
    assert_eq!(sync.pipeline, PipelineOutcome::Pushed);
    assert_eq!(sync.reconcile.entries_inserted, desired.len());
    assert_eq!(sync.reconcile.entries_deleted, 0);
    assert_eq!(sync.reconcile.clone_sessions_inserted, 1);
    assert_eq!(client.pipeline_cookie().await.unwrap(), Some(COOKIE));
    assert_exactly_desired(&controller, &desired).await;

    // Writes work again and join the desired state.
    client.insert(selector(&schema, 7, 1)).await.unwrap();
    assert!(client.reconcile().await.unwrap().is_noop());

    controller.stop().await;
    gate.stop().await;
    third.stop().await;
}

async fn assert_exactly_desired(controller: &Controller, desired: &[TableEntry]) {
    let client = &controller.client;
    let schema = client.schema().unwrap();
    let installed = client.read_all_tables().await.unwrap();
    assert_eq!(
        installed, desired,
        "no duplicate, no stale, nothing missing"
    );
    assert_eq!(
        client.read_clone_sessions().await.unwrap(),
        [mirror_session()]
    );
    assert_eq!(
        client.read_default_action("mirror_truncate").await.unwrap(),
        truncate_default(&schema)
    );
    assert_eq!(
        client
            .read_default_action("service_selector")
            .await
            .unwrap()
            .action()
            .name(),
        "UmbraIngress.drop"
    );
    assert!(
        client.reconcile().await.unwrap().is_noop(),
        "a second reconcile has nothing to do"
    );
}
