//! Packet-out and stream error reporting on StreamChannel (spec "Packet
//! I/O", "Stream Error Reporting"): refused packet-outs are answered with a
//! StreamError naming the packet, and the stream and switch carry on.

use tonic::Code;
use umbra_p4info::umbra_p4info_index;
use umbra_proto::p4::v1::{
    DigestListAck, DigestListAckError, PacketMetadata, PacketOut, PacketOutError,
    StreamMessageRequest, StreamOtherError, stream_error, stream_message_request,
    stream_message_response,
};

use crate::harness::{
    Controller, PRIMARY_ID, Session, Switch, arbitration_status, bytes, classify, insert,
};

fn metadata_id(field: &str) -> u32 {
    umbra_p4info_index()
        .controller_header("packet_out")
        .and_then(|h| h.field(field))
        .unwrap_or_else(|e| panic!("{e}"))
        .id
}

fn packet_out(metadata: Vec<(u32, Vec<u8>)>) -> PacketOut {
    PacketOut {
        payload: vec![0xff; 60],
        metadata: metadata
            .into_iter()
            .map(|(metadata_id, value)| PacketMetadata { metadata_id, value })
            .collect(),
    }
}

fn valid_packet_out() -> PacketOut {
    packet_out(vec![
        (metadata_id("egress_port"), bytes(3)),
        (metadata_id("_pad"), bytes(0)),
    ])
}

fn send_packet(packet: PacketOut) -> StreamMessageRequest {
    StreamMessageRequest {
        update: Some(stream_message_request::Update::Packet(packet)),
    }
}

/// Asserts that `controller`'s next message is a StreamError for `packet`
/// with `code`.
async fn expect_packet_error(controller: &mut Controller, packet: &PacketOut, code: Code) {
    let error = controller.next_error().await;
    assert_eq!(Code::from(error.canonical_code), code, "{error:?}");
    assert!(!error.message.is_empty());
    assert_eq!(
        error.details,
        Some(stream_error::Details::PacketOut(PacketOutError {
            packet_out: Some(packet.clone()),
        })),
        "the error names the packet-out"
    );
}

/// A packet-out that fails everywhere (unknown metadata id), recognisable
/// by its payload.
fn marker() -> PacketOut {
    PacketOut {
        payload: b"marker".to_vec(),
        metadata: vec![PacketMetadata {
            metadata_id: 0x7777,
            value: bytes(1),
        }],
    }
}

/// Proves no stream error is pending on `controller`'s stream: stream
/// errors are sent in the order of the messages that caused them, so the
/// next error after sending a marker must be the marker's. `code` is the
/// marker's expected code (INVALID_ARGUMENT for the primary, else
/// PERMISSION_DENIED or FAILED_PRECONDITION). Mastership updates, which the
/// switch may interleave anywhere, are skipped.
async fn expect_no_error_pending(controller: &mut Controller, code: Code) {
    controller.send(send_packet(marker())).await;
    loop {
        match controller.next().await.update {
            Some(stream_message_response::Update::Arbitration(_)) => continue,
            Some(stream_message_response::Update::Error(error)) => {
                assert_eq!(
                    error.details,
                    Some(stream_error::Details::PacketOut(PacketOutError {
                        packet_out: Some(marker()),
                    })),
                    "an earlier message raised an error: {error:?}"
                );
                assert_eq!(Code::from(error.canonical_code), code, "{error:?}");
                return;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn packet_out_from_a_backup_is_permission_denied() {
    let mut session = Session::start().await;
    let mut backup = Controller::open(&mut session.client).await;
    backup.arbitrate(Some(PRIMARY_ID - 1), "").await;
    let mut stranger = Controller::open(&mut session.client).await;

    let packet = valid_packet_out();
    backup.send(send_packet(packet.clone())).await;
    expect_packet_error(&mut backup, &packet, Code::PermissionDenied).await;
    stranger.send(send_packet(packet.clone())).await;
    expect_packet_error(&mut stranger, &packet, Code::PermissionDenied).await;

    // Both streams, the primary and the switch carry on.
    expect_no_error_pending(&mut backup, Code::PermissionDenied).await;
    expect_no_error_pending(&mut stranger, Code::PermissionDenied).await;
    let update = backup.arbitrate(Some(PRIMARY_ID - 1), "").await;
    assert_eq!(
        arbitration_status(&update),
        (Code::AlreadyExists, Some(PRIMARY_ID))
    );
    session.primary.send(send_packet(packet)).await;
    expect_no_error_pending(&mut session.primary, Code::InvalidArgument).await;
    session.write_ok(vec![insert(classify(1, 1, 0))]).await;
    session.switch.assert_serving();
}

#[tokio::test]
async fn malformed_packet_out_metadata_is_invalid_argument() {
    let mut session = Session::start().await;
    let port = metadata_id("egress_port");
    let pad = metadata_id("_pad");
    let malformed = [
        packet_out(vec![
            (port, bytes(3)),
            (pad, bytes(0)),
            (pad + 10, bytes(1)),
        ]),
        packet_out(vec![(port, bytes(3)), (port, bytes(4))]),
        packet_out(vec![(port, bytes(512)), (pad, bytes(0))]),
        packet_out(vec![(port, bytes(3)), (pad, bytes(0x80))]),
        packet_out(vec![(port, Vec::new()), (pad, bytes(0))]),
        packet_out(vec![(pad, bytes(0))]),
        packet_out(Vec::new()),
    ];
    for packet in &malformed {
        session.primary.send(send_packet(packet.clone())).await;
        expect_packet_error(&mut session.primary, packet, Code::InvalidArgument).await;
    }

    // Well-formed packet-outs (padding may be left out) raise nothing.
    session.primary.send(send_packet(valid_packet_out())).await;
    session
        .primary
        .send(send_packet(packet_out(vec![(port, vec![0, 0, 9])])))
        .await;
    expect_no_error_pending(&mut session.primary, Code::InvalidArgument).await;
    session.write_ok(vec![insert(classify(1, 1, 0))]).await;
    session.switch.assert_serving();
}

#[tokio::test]
async fn packet_out_before_a_pipeline_is_failed_precondition() {
    let switch = Switch::start().await;
    let mut client = switch.client().await;
    let mut primary = Controller::open(&mut client).await;
    primary.arbitrate(Some(PRIMARY_ID), "").await;
    let packet = valid_packet_out();
    primary.send(send_packet(packet.clone())).await;
    expect_packet_error(&mut primary, &packet, Code::FailedPrecondition).await;
    expect_no_error_pending(&mut primary, Code::FailedPrecondition).await;
}

#[tokio::test]
async fn an_empty_stream_message_is_invalid_argument() {
    let mut session = Session::start().await;
    session.primary.send(StreamMessageRequest::default()).await;
    let error = session.primary.next_error().await;
    assert_eq!(
        Code::from(error.canonical_code),
        Code::InvalidArgument,
        "{error:?}"
    );
    expect_no_error_pending(&mut session.primary, Code::InvalidArgument).await;
}

/// Spec "Stream Error Reporting": "The server is required to set the
/// appropriate field in the oneof [details] so that the client can identify
/// which type of stream message is responsible for the error (packet_out,
/// digest_list_ack or other)".
#[tokio::test]
async fn stream_errors_name_the_kind_of_message_that_failed() {
    let mut session = Session::start().await;
    let ack = DigestListAck {
        digest_id: 0x1700_0001,
        list_id: 4,
    };
    session
        .primary
        .send(StreamMessageRequest {
            update: Some(stream_message_request::Update::DigestAck(ack)),
        })
        .await;
    let error = session.primary.next_error().await;
    assert_eq!(
        Code::from(error.canonical_code),
        Code::InvalidArgument,
        "{error:?}"
    );
    assert!(
        matches!(
            error.details,
            Some(stream_error::Details::DigestListAck(
                DigestListAckError { .. }
            ))
        ),
        "details name the digest ack: {error:?}"
    );
    if let Some(stream_error::Details::DigestListAck(details)) = &error.details {
        assert!(matches!(
            details.digest_list_ack,
            None | Some(DigestListAck { list_id: 4, .. })
        ));
    }

    let other = prost_types::Any {
        type_url: "type.googleapis.com/umbra.Nothing".into(),
        value: vec![1, 2],
    };
    session
        .primary
        .send(StreamMessageRequest {
            update: Some(stream_message_request::Update::Other(other)),
        })
        .await;
    let error = session.primary.next_error().await;
    assert_eq!(
        Code::from(error.canonical_code),
        Code::Unimplemented,
        "{error:?}"
    );
    assert!(
        matches!(
            error.details,
            Some(stream_error::Details::Other(StreamOtherError { .. }))
        ),
        "details name the extension message: {error:?}"
    );
    expect_no_error_pending(&mut session.primary, Code::InvalidArgument).await;
}
