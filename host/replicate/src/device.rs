//! The calls replication makes to a device agent, with their results
//! checked against the protocol: Health, a whole Snapshot, Apply in
//! batches, Digest.

use std::time::{SystemTime, UNIX_EPOCH};

use umbra_proto::umbra::device::v1 as pb;

use crate::error::{ReplicateError, Result};
use crate::peer::{DeviceConn, Peer};

/// Microseconds since the Unix epoch from the system clock.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The wall part of an entry's version clock (ms since the Unix epoch).
pub(crate) fn wall_ms(entry: &pb::Entry) -> u64 {
    entry
        .version
        .as_ref()
        .and_then(|v| v.clock.as_ref())
        .map_or(0, |c| c.wall_ms)
}

/// The origin node of an entry.
pub(crate) fn origin(entry: &pb::Entry) -> u64 {
    entry.version.as_ref().map_or(0, |v| v.origin)
}

/// A tombstone for `entry`'s key with the same clock and origin: greater
/// than `entry`'s version (tombstone orders last) and not greater than any
/// version with a later clock, so it deletes exactly that version and
/// loses to every later write of the key.
pub(crate) fn tombstone_of(entry: &pb::Entry) -> pb::Entry {
    let mut tombstone = entry.clone();
    if let Some(version) = tombstone.version.as_mut() {
        version.tombstone = true;
    }
    tombstone
}

/// The peer's health.
pub(crate) async fn health(peer: &Peer, client: &mut DeviceConn) -> Result<pb::HealthResponse> {
    client
        .health(pb::HealthRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| ReplicateError::rpc(peer.name(), "Health", status))
}

/// Commits the device to take traffic over (after a drain, before a
/// redirect); `None` when the agent predates Commit (`UNIMPLEMENTED`):
/// its state stays as replicated.
pub(crate) async fn commit(
    peer: &Peer,
    client: &mut DeviceConn,
) -> Result<Option<pb::CommitResponse>> {
    match client.commit(pb::CommitRequest {}).await {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status) if status.code() == tonic::Code::Unimplemented => Ok(None),
        Err(status) => Err(ReplicateError::rpc(peer.name(), "Commit", status)),
    }
}

/// What Apply did with the entries it was given.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub applied: u64,
    pub unchanged: u64,
    pub superseded: u64,
    pub rejected: u64,
}

/// Applies `entries` in batches of at most `batch`; returns one outcome
/// per entry and the target's log epoch (of the last batch).
pub(crate) async fn apply(
    peer: &Peer,
    client: &mut DeviceConn,
    entries: Vec<pb::Entry>,
    batch: usize,
) -> Result<(Vec<pb::ApplyOutcome>, u64)> {
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut epoch = 0;
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let chunk: Vec<pb::Entry> = entries.by_ref().take(batch.max(1)).collect();
        let sent = chunk.len();
        let response = client
            .apply(pb::ApplyRequest { entries: chunk })
            .await
            .map_err(|status| ReplicateError::rpc(peer.name(), "Apply", status))?
            .into_inner();
        if response.results.len() != sent {
            return Err(ReplicateError::Protocol {
                peer: peer.name().to_owned(),
                what: format!(
                    "Apply of {sent} entries answered {} results",
                    response.results.len()
                ),
            });
        }
        epoch = response.log_epoch;
        outcomes.extend(response.results.iter().map(pb::EntryResult::outcome));
    }
    Ok((outcomes, epoch))
}

/// Counts outcomes.
pub(crate) fn tally(outcomes: &[pb::ApplyOutcome]) -> Tally {
    let mut tally = Tally::default();
    for outcome in outcomes {
        match outcome {
            pb::ApplyOutcome::Applied => tally.applied += 1,
            pb::ApplyOutcome::Unchanged => tally.unchanged += 1,
            pb::ApplyOutcome::Superseded => tally.superseded += 1,
            pb::ApplyOutcome::Rejected | pb::ApplyOutcome::Unspecified => tally.rejected += 1,
        }
    }
    tally
}

/// A whole snapshot: (revision, log epoch, live entries in key order).
pub(crate) async fn snapshot(
    peer: &Peer,
    client: &mut DeviceConn,
    chunk_size: u32,
) -> Result<(u64, u64, Vec<pb::Entry>)> {
    snapshot_of(
        peer,
        client,
        pb::SnapshotRequest {
            chunk_size,
            ..pb::SnapshotRequest::default()
        },
    )
    .await
}

/// The entries of `partitions` among `count`, as [`snapshot`] reads them.
pub(crate) async fn snapshot_partitions(
    peer: &Peer,
    client: &mut DeviceConn,
    chunk_size: u32,
    count: u32,
    partitions: Vec<u32>,
) -> Result<(u64, u64, Vec<pb::Entry>)> {
    let request = pb::SnapshotRequest {
        chunk_size,
        partition_count: count,
        partitions,
    };
    snapshot_of(peer, client, request).await
}

async fn snapshot_of(
    peer: &Peer,
    client: &mut DeviceConn,
    request: pb::SnapshotRequest,
) -> Result<(u64, u64, Vec<pb::Entry>)> {
    let mut stream = client
        .snapshot(request)
        .await
        .map_err(|status| ReplicateError::rpc(peer.name(), "Snapshot", status))?
        .into_inner();
    let mut header = None;
    let mut entries = Vec::new();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|status| ReplicateError::rpc(peer.name(), "Snapshot", status))?
    {
        let this = (chunk.revision, chunk.log_epoch);
        if *header.get_or_insert(this) != this {
            return Err(ReplicateError::Protocol {
                peer: peer.name().to_owned(),
                what: "snapshot chunks disagree on the revision".into(),
            });
        }
        entries.extend(chunk.entries);
        if chunk.last {
            let (revision, epoch) = this;
            return Ok((revision, epoch, entries));
        }
    }
    Err(ReplicateError::Protocol {
        peer: peer.name().to_owned(),
        what: "the snapshot ended without its last chunk".into(),
    })
}

/// Digests of every partition among `count`.
pub(crate) async fn digest(
    peer: &Peer,
    client: &mut DeviceConn,
    count: u32,
) -> Result<pb::DigestResponse> {
    client
        .digest(pb::DigestRequest {
            partition_count: count,
            partitions: Vec::new(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| ReplicateError::rpc(peer.name(), "Digest", status))
}
