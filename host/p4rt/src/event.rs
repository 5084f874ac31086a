//! What the client tells its owner: packets from the switch, mastership
//! changes, the switch's stream errors, and the connection's life.

use crate::client::PipelineOutcome;
use crate::entity::PacketIn;
use crate::error::P4rtError;
use crate::reconcile::ReconcileReport;

/// One event of the client, received from the bounded channel returned by
/// [`P4RuntimeClient::connect`](crate::P4RuntimeClient::connect).
///
/// When the channel is full, [`PacketIn`](Self::PacketIn) and
/// [`StreamError`](Self::StreamError) events are dropped and counted
/// ([`P4RuntimeClient::dropped_events`](crate::P4RuntimeClient::dropped_events)):
/// blocking would stall the stream, and with it arbitration, for the sake of
/// data. The other events are rare and describe state the owner must not
/// miss, so the supervisor waits for room: an owner that keeps the receiver
/// must keep draining it (or drop it, which discards every event).
#[derive(Debug)]
pub enum ClientEvent {
    /// A packet the switch sent to the controller (only the primary gets
    /// them).
    PacketIn(PacketIn),
    /// This client became primary or stopped being it, or the primary's
    /// election id changed.
    MastershipChanged {
        /// Whether this client is now the primary.
        primary: bool,
        /// Election id of the primary as the switch reports it (the highest
        /// seen when there is no primary); `None` if it reported none.
        election_id: Option<u128>,
        /// No controller is primary: the primary went away (a backup may
        /// take over by arbitrating at least as high as `election_id`).
        vacant: bool,
    },
    /// The switch reported an error on the stream (a packet-out it could
    /// not send, for instance).
    StreamError(StreamError),
    /// The stream to the switch ended; the supervisor is reconnecting.
    /// Writes fail with [`P4rtError::Disconnected`] until
    /// [`Reconnected`](Self::Reconnected).
    Disconnected {
        /// Why the stream ended.
        reason: String,
    },
    /// The stream is back: the client re-arbitrated and, if primary,
    /// re-pushed the pipeline if the switch's cookie differed and reconciled
    /// the switch to the desired state.
    Reconnected {
        /// Whether this client is the primary.
        primary: bool,
        /// The pipeline check and reconciliation; `None` when not primary
        /// or when no pipeline was pushed yet. An error here is not retried:
        /// it is of the desired state (a full table, say), not of the
        /// connection (those are retried before this event).
        sync: Option<Result<SyncReport, P4rtError>>,
    },
    /// This client became primary on a live stream (the controller with a
    /// higher election id went away and this one re-arbitrated, or the
    /// switch promoted it) and synchronised the switch as after a
    /// reconnection; `None` when no pipeline was pushed yet.
    Resynchronized {
        /// The pipeline check and reconciliation.
        sync: Option<Result<SyncReport, P4rtError>>,
    },
}

/// What a synchronisation after (re)gaining the switch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// Whether the pipeline had to be pushed again.
    pub pipeline: PipelineOutcome,
    /// What reconciling changed.
    pub reconcile: ReconcileReport,
}

/// A `p4.v1.StreamError` from the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// Canonical gRPC code.
    pub code: tonic::Code,
    /// The switch's explanation.
    pub message: String,
    /// Error space of `space_code`.
    pub space: String,
    /// Target-specific code.
    pub space_code: i32,
    /// Which kind of stream message failed.
    pub kind: StreamErrorKind,
}

/// Which kind of stream message a [`StreamError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamErrorKind {
    /// A packet-out.
    PacketOut,
    /// A digest list acknowledgement.
    DigestListAck,
    /// Something else, or unspecified.
    Other,
}
