//! Packet-out and packet-in, with controller metadata by name.

use umbra_p4rt::ClientEvent;

use crate::support::{Controller, Switch};

#[tokio::test]
async fn packet_out_to_the_cpu_port_comes_back_as_packet_in() {
    let switch = Switch::start().await;
    let mut controller = Controller::primary_with_pipeline(switch.addr, 1).await;
    let schema = controller.client.schema().unwrap();
    let mut frame = vec![0xff; 12];
    frame.extend_from_slice(&[0x88, 0xb5]);
    frame.extend_from_slice(b"umbra packet-out test payload......................");
    // umbra.p4 sends a packet-out through its `egress_port`; the CPU port
    // sends it back to the controller.
    let packet = schema
        .packet_out(frame.clone())
        .metadata("egress_port", 255u16)
        .build()
        .unwrap();
    controller.client.send_packet_out(&packet).await.unwrap();

    let packet_in = controller
        .wait_for(|event| match event {
            ClientEvent::PacketIn(packet) => Some(packet),
            _ => None,
        })
        .await;
    assert_eq!(packet_in.payload, frame);
    assert_eq!(
        packet_in.metadata("ingress_port").and_then(|v| v.as_u64()),
        Some(255)
    );
    // The packet went through the pipeline's port counters (whether the
    // 2-byte controller header is counted is the switch's business).
    let rx = controller
        .client
        .read_counter("port_rx", 255)
        .await
        .unwrap();
    assert_eq!(rx.packets, 1, "{rx:?}");
    assert!(rx.bytes >= frame.len() as u64, "{rx:?}");
    assert_eq!(controller.client.dropped_events(), 0);

    controller.stop().await;
    switch.stop().await;
}

#[tokio::test]
async fn packet_ins_beyond_the_event_capacity_are_dropped_and_counted() {
    let switch = Switch::start().await;
    let mut controller = Controller::connect_with(umbra_p4rt::ClientConfig {
        event_capacity: 1,
        ..crate::support::config(switch.addr, 1)
    })
    .await;
    controller
        .client
        .push_pipeline(crate::support::p4info(), Vec::new(), 1)
        .await
        .unwrap();
    let schema = controller.client.schema().unwrap();
    let packet = schema
        .packet_out(vec![0xee; 60])
        .metadata("egress_port", 255u16)
        .build()
        .unwrap();
    // Nobody reads events meanwhile: one fits, the others are dropped
    // rather than stalling the stream.
    for _ in 0..3 {
        controller.client.send_packet_out(&packet).await.unwrap();
    }
    tokio::time::timeout(crate::support::PATIENCE, async {
        while controller.client.dropped_events() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("two packet-ins dropped");
    assert!(matches!(
        controller.events.try_recv(),
        Ok(ClientEvent::PacketIn(_))
    ));
    assert!(controller.events.try_recv().is_err());
    // The stream is still alive: the next packet-in arrives.
    controller.client.send_packet_out(&packet).await.unwrap();
    controller
        .wait_for(|event| matches!(event, ClientEvent::PacketIn(_)).then_some(()))
        .await;
    assert_eq!(controller.client.dropped_events(), 2);

    controller.stop().await;
    switch.stop().await;
}
