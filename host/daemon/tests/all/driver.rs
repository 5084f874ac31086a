//! The pair driver: failover end to end over a fabric, rollback, refusals,
//! and consistency under a fabric that fails at random.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use umbra_daemon::fabric::{ChaosFabric, Fabric, MemoryFabric};
use umbra_daemon::pair::{PairDriver, PairHandle, PairInput};
use umbra_daemon::replication::NoReplication;
use umbra_orchestrator::{Phase, Slot, Trigger};

use crate::support::{Recorder, spec, until};

fn manual() -> PairInput {
    PairInput::Trigger(Trigger::Manual { by: "test".into() })
}

/// Carries traffic through whatever device the selector names until
/// cancelled, as the pipeline would.
fn traffic(fabric: MemoryFabric, service: u16, stop: CancellationToken) {
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            fabric.carry(service, 1, 1);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

/// Installs pair `service` on `fabric` and runs its driver, as primary.
pub async fn start<F: Fabric + Clone>(
    fabric: F,
    service: u16,
    recorder: &Recorder,
    stop: &CancellationToken,
) -> PairHandle {
    let spec = spec(service);
    fabric.install(&spec.ports, Slot::A).await.expect("install");
    let (driver, handle) = PairDriver::new(spec, Slot::A, fabric, NoReplication, recorder.sink());
    tokio::spawn(driver.run(stop.clone()));
    handle
        .inputs
        .send(PairInput::Mastership { primary: true })
        .await
        .unwrap();
    handle
}

#[tokio::test]
async fn a_failover_moves_the_selector_verifies_and_swaps_roles() {
    let fabric = MemoryFabric::new();
    let (recorder, stop) = (Recorder::default(), CancellationToken::new());
    traffic(fabric.clone(), 1, stop.clone());
    let mut handle = start(fabric.clone(), 1, &recorder, &stop).await;
    until(&mut handle.view, |v| v.phase == Phase::Normal).await;
    assert_eq!(fabric.sampling_to(1), Some(2), "the standby is sampled to");

    handle.inputs.send(manual()).await.unwrap();
    until(&mut handle.view, |v| {
        v.failovers == 1 && v.phase == Phase::Normal
    })
    .await;

    assert_eq!(
        fabric.selector(1),
        Some(2),
        "the shadow (device 2) is active"
    );
    let view = handle.view.borrow().clone();
    assert_eq!(view.active, Slot::B);
    assert!(
        view.last_decision_to_redirect_ms
            .is_some_and(|ms| ms < 1_000.0)
    );
    assert_eq!(
        recorder.phases(),
        [
            "reconciling",
            // Replication starts with mastership: the standby is ready
            // once it holds the active device's state.
            "decommissioned",
            "normal",
            "preparing",
            "switching",
            "verifying",
            "decommissioned",
            "normal"
        ]
    );
    // Back to Normal with the old primary as the standby: sampled to again.
    tokio::time::timeout(Duration::from_secs(5), async {
        while fabric.sampling_to(1) != Some(1) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("sampling moves to the new standby");
    stop.cancel();
}

#[tokio::test]
async fn no_traffic_through_the_new_device_rolls_back_to_the_healthy_primary() {
    let fabric = MemoryFabric::new();
    let (recorder, stop) = (Recorder::default(), CancellationToken::new());
    let mut handle = start(fabric.clone(), 2, &recorder, &stop).await;
    until(&mut handle.view, |v| v.phase == Phase::Normal).await;

    handle.inputs.send(manual()).await.unwrap();
    until(&mut handle.view, |v| {
        v.phase == Phase::Normal
            && v.last_audit
                .as_ref()
                .is_some_and(|r| r.from == "rolling-back")
    })
    .await;
    assert_eq!(
        fabric.selector(2),
        Some(3),
        "the primary (device 3) is active again"
    );
    assert_eq!(handle.view.borrow().failovers, 0);
    assert!(recorder.phases().contains(&"rolling-back"));
    stop.cancel();
}

#[tokio::test]
async fn a_backup_host_refuses_to_fail_over_and_writes_nothing() {
    let fabric = MemoryFabric::new();
    let (recorder, stop) = (Recorder::default(), CancellationToken::new());
    let spec = spec(3);
    fabric.install(&spec.ports, Slot::A).await.unwrap();
    let (driver, mut handle) = PairDriver::new(
        spec,
        Slot::A,
        fabric.clone(),
        NoReplication,
        recorder.sink(),
    );
    tokio::spawn(driver.run(stop.clone()));
    handle.inputs.send(manual()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(handle.view.borrow().phase, Phase::Following);
    assert_eq!(fabric.selector(3), Some(5), "the selector was not touched");
    // Mastership gained: the switch's word is taken (another host had
    // flipped to the shadow meanwhile).
    fabric.set_selector(3, Some(6));
    handle
        .inputs
        .send(PairInput::Mastership { primary: true })
        .await
        .unwrap();
    until(&mut handle.view, |v| v.active == Slot::B && v.master).await;
    stop.cancel();
}

#[tokio::test]
async fn the_active_device_failing_triggers_a_reactive_failover() {
    let fabric = MemoryFabric::new();
    let (recorder, stop) = (Recorder::default(), CancellationToken::new());
    traffic(fabric.clone(), 4, stop.clone());
    let mut handle = start(fabric.clone(), 4, &recorder, &stop).await;
    until(&mut handle.view, |v| v.phase == Phase::Normal).await;
    handle
        .inputs
        .send(PairInput::Health {
            slot: Slot::A,
            healthy: false,
            reason: "agent NOT_SERVING".into(),
        })
        .await
        .unwrap();
    until(&mut handle.view, |v| {
        v.active == Slot::B && v.failovers == 1
    })
    .await;
    assert_eq!(fabric.selector(4), Some(8));
    let records = recorder.0.lock().unwrap();
    assert!(
        records
            .iter()
            .any(|(_, r)| r.why.contains("unhealthy: agent NOT_SERVING")),
        "the audit says why: {records:?}"
    );
    stop.cancel();
}

/// Whatever the fabric does, once it behaves again the pair settles with
/// the driver and the switch agreeing on the one active device.
#[tokio::test]
async fn under_a_failing_fabric_the_pair_ends_consistent() {
    for seed in 0..12_u64 {
        let memory = MemoryFabric::new();
        let chaos = ChaosFabric::new(memory.clone(), 0.3, seed);
        let (recorder, stop) = (Recorder::default(), CancellationToken::new());
        traffic(memory.clone(), 5, stop.clone());
        let spec = spec(5);
        memory.install(&spec.ports, Slot::A).await.unwrap();
        let (driver, mut handle) =
            PairDriver::new(spec, Slot::A, chaos, NoReplication, recorder.sink());
        tokio::spawn(driver.run(stop.clone()));
        handle
            .inputs
            .send(PairInput::Mastership { primary: true })
            .await
            .unwrap();
        for _ in 0..6 {
            handle.inputs.send(manual()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        // Quiet: no more triggers; every phase but Normal and
        // Decommissioned has a timeout, and the reads are retried.
        until(&mut handle.view, |v| {
            matches!(v.phase, Phase::Normal | Phase::Decommissioned { .. })
        })
        .await;
        let active = handle.view.borrow().active;
        let device = if active == Slot::A { 9 } else { 10 };
        assert_eq!(
            memory.selector(5),
            Some(device),
            "seed {seed}: driver and switch disagree; audit: {:?}",
            recorder.phases()
        );
        stop.cancel();
    }
}
