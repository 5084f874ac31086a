//! The StreamChannel's supervisor: dispatches what the switch sends on the
//! stream (packet-ins, mastership changes, stream errors) and, when the
//! stream ends, reconnects with backoff, re-arbitrates, re-pushes the
//! pipeline if the switch lost it, and reconciles the switch to the desired
//! state.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;
use umbra_proto::p4::v1 as p4;

use crate::backoff::Backoff;
use crate::client::{P4RuntimeClient, establish};
use crate::error::Result;
use crate::event::{ClientEvent, StreamError, StreamErrorKind};
use crate::wire;

/// Keeps a [`P4RuntimeClient`]'s stream alive; see [`run`](Self::run).
#[derive(Debug)]
pub struct StreamSupervisor {
    client: P4RuntimeClient,
    inbound: tonic::Streaming<p4::StreamMessageResponse>,
}

impl StreamSupervisor {
    pub(crate) fn new(
        client: P4RuntimeClient,
        inbound: tonic::Streaming<p4::StreamMessageResponse>,
    ) -> Self {
        Self { client, inbound }
    }

    /// Runs until `shutdown` is cancelled: forwards the stream's messages as
    /// [`ClientEvent`]s and, whenever the stream ends, reconnects (capped,
    /// jittered exponential backoff, forever), then synchronises the switch
    /// if this client is primary. On shutdown the stream is closed and the
    /// client's calls fail with
    /// [`P4rtError::Shutdown`](crate::P4rtError::Shutdown).
    ///
    /// # Errors
    ///
    /// None today: every failure is retried or reported as an event. The
    /// `Result` keeps the subsystem signature uniform.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let Self {
            client,
            mut inbound,
        } = self;
        let mut rng = StdRng::from_os_rng();
        loop {
            // Connected: dispatch until the stream ends.
            let reason = loop {
                let message = tokio::select! {
                    () = shutdown.cancelled() => {
                        client.mark_shut_down();
                        return Ok(());
                    }
                    message = inbound.message() => message,
                };
                match message {
                    Ok(Some(message)) => {
                        let dispatched = tokio::select! {
                            () = shutdown.cancelled() => None,
                            () = dispatch(&client, message) => Some(()),
                        };
                        if dispatched.is_none() {
                            client.mark_shut_down();
                            return Ok(());
                        }
                    }
                    Ok(None) => break "the switch closed the stream".to_owned(),
                    Err(status) => break format!("the stream failed: {status}"),
                }
            };
            client.mark_disconnected();
            tracing::warn!(%reason, "P4Runtime stream lost; reconnecting");
            if !emit(&client, ClientEvent::Disconnected { reason }, &shutdown).await {
                return Ok(());
            }

            // Disconnected: retry until connected and synchronised.
            let mut backoff = Backoff::new(client.config().backoff);
            inbound = loop {
                let delay = backoff.next_delay(&mut rng);
                let attempt = tokio::select! {
                    () = shutdown.cancelled() => None,
                    attempt = async {
                        tokio::time::sleep(delay).await;
                        let established = establish(client.config(), client.endpoint(), client.current_election_id())
                                .await?;
                        client.adopt(established).await
                    } => Some(attempt),
                };
                match attempt {
                    None => {
                        client.mark_shut_down();
                        return Ok(());
                    }
                    Some(Ok((inbound, event))) => {
                        tracing::info!("P4Runtime stream re-established");
                        if !emit(&client, event, &shutdown).await {
                            return Ok(());
                        }
                        break inbound;
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, ?delay, "reconnection attempt failed");
                    }
                }
            };
        }
    }
}

/// Emits a lifecycle event, waiting for room; `false` when shut down while
/// waiting.
async fn emit(client: &P4RuntimeClient, event: ClientEvent, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => {
            client.mark_shut_down();
            false
        }
        () = client.emit(event) => true,
    }
}

async fn dispatch(client: &P4RuntimeClient, message: p4::StreamMessageResponse) {
    use p4::stream_message_response::Update;
    match message.update {
        Some(Update::Arbitration(update)) => {
            let (event, became_primary) = client.record_arbitration(&update);
            if let Some(event) = event {
                client.emit(event).await;
            }
            if became_primary {
                let event = client.resynchronize().await;
                client.emit(event).await;
            }
        }
        Some(Update::Packet(packet)) => {
            let schema = client.current_schema();
            let packet = wire::decode_packet_in(schema.as_deref(), packet);
            client.emit_lossy(ClientEvent::PacketIn(packet));
        }
        Some(Update::Error(error)) => {
            use p4::stream_error::Details;
            let kind = match error.details {
                Some(Details::PacketOut(_)) => StreamErrorKind::PacketOut,
                Some(Details::DigestListAck(_)) => StreamErrorKind::DigestListAck,
                Some(Details::Other(_)) | None => StreamErrorKind::Other,
            };
            client.emit_lossy(ClientEvent::StreamError(StreamError {
                code: tonic::Code::from(error.canonical_code),
                message: error.message,
                space: error.space,
                space_code: error.code,
                kind,
            }));
        }
        Some(other) => tracing::debug!(?other, "stream message ignored"),
        None => {}
    }
}
