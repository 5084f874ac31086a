//! Bytes that are no P4Runtime at all: undecodable StreamChannel messages
//! (sent with a raw codec through `tonic::client::Grpc`) and junk on a raw
//! TCP connection. The switch drops the offender and keeps serving everyone
//! else.

use bytes::{Buf as _, BufMut as _};
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use umbra_proto::p4::v1::{CapabilitiesRequest, StreamMessageResponse, stream_message_response};

use crate::harness::{
    Controller, DEVICE_ID, PRIMARY_ID, Session, WAIT, arbitration_request, arbitration_status,
    classify, describe, insert,
};

/// Sends and receives message bodies as they are, without protobuf.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len).to_vec()))
    }
}

/// Opens StreamChannel on a fresh connection; what is sent on the returned
/// queue goes out as raw message bodies. The request stream stays open
/// until the queue is dropped, so that only the switch ends the call early.
async fn open_raw_stream_channel(
    session: &Session,
) -> (mpsc::Sender<Vec<u8>>, Result<Streaming<Vec<u8>>, Status>) {
    let channel = Channel::from_shared(format!("http://{}", session.switch.addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let (tx, rx) = mpsc::channel(8);
    let response = tokio::time::timeout(
        WAIT,
        grpc.streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            PathAndQuery::from_static("/p4.v1.P4Runtime/StreamChannel"),
            RawCodec,
        ),
    )
    .await
    .expect("StreamChannel answers in time");
    (tx, response.map(tonic::Response::into_inner))
}

/// Every response body until the switch ends the stream, and how it ended
/// (`None`: OK).
async fn drain(stream: &mut Streaming<Vec<u8>>) -> (Vec<Vec<u8>>, Option<Status>) {
    let mut received = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, stream.message()).await {
            Ok(Ok(Some(body))) => received.push(body),
            Ok(Ok(None)) => return (received, None),
            Ok(Err(status)) => return (received, Some(status)),
            Err(_) => panic!("the switch kept a stream of garbage open for {WAIT:?}"),
        }
    }
}

/// Sends `garbage` on a fresh raw StreamChannel and returns what came back.
async fn raw_stream_channel(session: &Session, garbage: Vec<u8>) -> (Vec<Vec<u8>>, Option<Status>) {
    let (tx, stream) = open_raw_stream_channel(session).await;
    tx.send(garbage).await.expect("queue");
    let result = match stream {
        Ok(mut stream) => drain(&mut stream).await,
        Err(status) => (Vec::new(), Some(status)),
    };
    drop(tx);
    result
}

/// Bodies that do not decode as a StreamMessageRequest.
fn undecodable() -> Vec<Vec<u8>> {
    vec![
        vec![0xff; 11],                     // a varint that never ends
        vec![0x0a, 0x05, 0x08],             // field 1, 5 bytes announced, 1 given
        vec![0x0f],                         // wire type 7 does not exist
        vec![0x0a, 0x02, 0x1a, 0x7f],       // arbitration whose election id overflows
        b"GET / HTTP/1.1\r\n\r\n".to_vec(), // field 8, wire type 7
    ]
}

/// The switch still answers: Capabilities, the primary's writes, and a new
/// controller's arbitration.
async fn assert_still_serving(session: &mut Session) {
    session.switch.assert_serving();
    let mut fresh = session.switch.client().await;
    let capabilities = fresh
        .capabilities(CapabilitiesRequest {
            device_id: DEVICE_ID,
        })
        .await
        .expect("Capabilities")
        .into_inner();
    assert!(!capabilities.p4runtime_api_version.is_empty());
    session.write_ok(vec![insert(classify(7, 7, 0))]).await;
    session
        .write_ok(vec![crate::harness::delete(classify(7, 0, 0))])
        .await;
    let mut backup = Controller::open(&mut fresh).await;
    let update = backup.arbitrate(Some(PRIMARY_ID - 1), "").await;
    assert_eq!(
        arbitration_status(&update),
        (Code::AlreadyExists, Some(PRIMARY_ID))
    );
}

/// After the primary's stream broke: the switch answers Capabilities and
/// refuses the old primary's writes.
async fn assert_still_serving_without_primary(session: &mut Session) {
    session.switch.assert_serving();
    let mut fresh = session.switch.client().await;
    fresh
        .capabilities(CapabilitiesRequest {
            device_id: DEVICE_ID,
        })
        .await
        .expect("Capabilities");
    let status = session
        .write(vec![insert(classify(7, 7, 0))])
        .await
        .expect_err("there is no primary");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        describe(&status)
    );
}

#[tokio::test]
async fn undecodable_stream_messages_end_only_their_stream() {
    let mut session = Session::start().await;
    for garbage in undecodable() {
        assert!(
            umbra_proto::p4::v1::StreamMessageRequest::decode(garbage.as_slice()).is_err(),
            "{garbage:?} must not decode"
        );
        let (received, end) = raw_stream_channel(&session, garbage.clone()).await;
        assert!(
            received.is_empty(),
            "{garbage:?}: unexpected answers {received:?}"
        );
        if let Some(status) = end {
            assert_ne!(status.code(), Code::Ok, "{}", describe(&status));
        }
        assert_still_serving(&mut session).await;
    }
}

#[tokio::test]
async fn garbage_after_arbitration_breaks_that_controller_only() {
    let mut session = Session::start().await;
    let mut backup = Controller::open(&mut session.client).await;
    backup.arbitrate(Some(PRIMARY_ID - 1), "").await;

    // A controller becomes primary over the raw stream.
    let (tx, stream) = open_raw_stream_channel(&session).await;
    let mut stream = stream.expect("StreamChannel");
    let arbitrate = arbitration_request(DEVICE_ID, Some(PRIMARY_ID + 1), "").encode_to_vec();
    tx.send(arbitrate).await.expect("queue");
    let answer = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("answered in time")
        .expect("no error")
        .expect("an answer");
    match StreamMessageResponse::decode(answer.as_slice())
        .expect("a StreamMessageResponse")
        .update
    {
        Some(stream_message_response::Update::Arbitration(update)) => {
            assert_eq!(
                arbitration_status(&update),
                (Code::Ok, Some(PRIMARY_ID + 1))
            );
        }
        other => panic!("expected the arbitration answer, got {other:?}"),
    }
    for controller in [&mut session.primary, &mut backup] {
        let update = controller.next_arbitration().await;
        assert_eq!(
            arbitration_status(&update),
            (Code::AlreadyExists, Some(PRIMARY_ID + 1))
        );
    }

    // Junk on that stream ends it, and with it that primaryship.
    tx.send(vec![0xff; 11]).await.expect("queue");
    let (received, end) = drain(&mut stream).await;
    assert!(received.is_empty(), "unexpected answers {received:?}");
    if let Some(status) = end {
        assert_ne!(status.code(), Code::Ok, "{}", describe(&status));
    }
    for controller in [&mut session.primary, &mut backup] {
        let update = controller.next_arbitration().await;
        assert_eq!(
            arbitration_status(&update),
            (Code::NotFound, Some(PRIMARY_ID + 1))
        );
    }
    assert_still_serving_without_primary(&mut session).await;
}

#[tokio::test]
async fn junk_on_a_raw_connection_is_dropped() {
    let mut session = Session::start().await;
    let junk: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: switch\r\n\r\n".to_vec(),
        (0..=255u8).cycle().take(4096).collect(),
        // The HTTP/2 preface followed by a frame of an unknown, huge length.
        [
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice(),
            &[0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01],
            &[0xab; 64],
        ]
        .concat(),
        // The preface, then a HEADERS frame whose HPACK block is garbage.
        [
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice(),
            &[0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00],
            &[0x00, 0x00, 0x08, 0x01, 0x05, 0x00, 0x00, 0x00, 0x01],
            &[0xff; 8],
        ]
        .concat(),
    ];
    for bytes in junk {
        let mut tcp = TcpStream::connect(session.switch.addr())
            .await
            .expect("connect");
        tcp.write_all(&bytes).await.expect("write");
        // The switch answers with an error (or nothing) and closes.
        let mut sink = Vec::new();
        let closed = tokio::time::timeout(WAIT, tcp.read_to_end(&mut sink)).await;
        assert!(
            closed.is_ok(),
            "the switch kept a junk connection open for {WAIT:?}"
        );
        assert_still_serving(&mut session).await;
    }
}
