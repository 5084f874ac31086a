//! Pipeline push: pushed once, skipped while the cookie matches.

use umbra_p4rt::{P4rtError, PipelineOutcome};

use crate::support::{COOKIE, Controller, Switch, p4info, schema, selector};

#[tokio::test]
async fn push_is_skipped_when_the_cookie_matches() {
    let switch = Switch::start().await;
    let controller = Controller::connect(switch.addr, 1).await;
    let client = &controller.client;
    assert_eq!(client.pipeline_cookie().await.unwrap(), None);
    assert!(matches!(
        client.read_all_tables().await,
        Err(P4rtError::NoPipeline)
    ));

    let outcome = client
        .push_pipeline(p4info(), b"device config".to_vec(), COOKIE)
        .await
        .unwrap();
    assert_eq!(outcome, PipelineOutcome::Pushed);
    assert_eq!(client.pipeline_cookie().await.unwrap(), Some(COOKIE));
    client.insert(selector(&schema(), 1, 1)).await.unwrap();

    // Same cookie: nothing sent, so the entry survives.
    let outcome = client
        .push_pipeline(p4info(), b"device config".to_vec(), COOKIE)
        .await
        .unwrap();
    assert_eq!(outcome, PipelineOutcome::Skipped);
    assert_eq!(client.read_all_tables().await.unwrap().len(), 1);

    // Another cookie: pushed, and the switch starts empty.
    let outcome = client
        .push_pipeline(p4info(), b"device config".to_vec(), COOKIE + 1)
        .await
        .unwrap();
    assert_eq!(outcome, PipelineOutcome::Pushed);
    assert_eq!(client.pipeline_cookie().await.unwrap(), Some(COOKIE + 1));
    assert!(client.read_all_tables().await.unwrap().is_empty());

    // Once the supervisor stopped, the client refuses to work.
    let client = client.clone();
    controller.stop().await;
    assert!(matches!(
        client.read_all_tables().await,
        Err(P4rtError::Shutdown)
    ));
    switch.stop().await;
}

#[tokio::test]
async fn a_pipeline_the_switch_refuses_is_an_error_and_not_adopted() {
    let switch = Switch::start().await;
    let controller = Controller::connect(switch.addr, 1).await;
    let mut other = p4info();
    // A program with one table less: not what this switch runs.
    other.tables.pop();
    let err = controller
        .client
        .push_pipeline(other, Vec::new(), 7)
        .await
        .expect_err("switch accepted a foreign program");
    assert!(
        matches!(&err, P4rtError::Rpc { rpc: "SetForwardingPipelineConfig", status } if status.code() == tonic::Code::InvalidArgument),
        "{err:?}"
    );
    assert!(matches!(
        controller.client.schema(),
        Err(P4rtError::NoPipeline)
    ));

    controller.stop().await;
    switch.stop().await;
}
