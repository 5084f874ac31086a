//! Anti-entropy: finds and repairs divergence the change streams cannot
//! see (a write on one side that never entered its change log's reach, an
//! entry lost on the device, a delete missed across a snapshot).
//!
//! A round compares the Digest of every partition on both sides; for the
//! partitions that differ it waits for the streams to catch up with the
//! revisions the comparison saw (so ordinary replication lag is not taken
//! for divergence), reads both sides' snapshots, and for each key of those
//! partitions writes the greater version to the side that lacks it — in
//! both directions, since the greatest version per key is what both sides
//! converge to anyway. A key one side lacks because it deleted it (its
//! tombstone is not in snapshots) is found when the other side's version
//! comes back SUPERSEDED; that side then gets a tombstone of exactly the
//! version it holds, which deletes it and loses to any later write.
//!
//! A side is the authority on the entries it originated: a key a side lacks
//! entirely while the other side's copy carries the lacking side's origin
//! was deleted where it was born, even when that side has already forgotten
//! the tombstone (tombstones are kept in bounded number), so the other
//! side's copy is deleted rather than written back — the resurrection a
//! bounded tombstone set would otherwise allow. This is the rule a
//! snapshot after a gap already follows (the source's snapshot decides).
//! Because B's snapshot is read after A's, a key A created in between may
//! be on B and not in A's snapshot: an orphan on B is confirmed by a
//! second snapshot of A, read after B's.
//!
//! Repairs are idempotent and only ever raise versions, so a round that
//! races with the streams does no harm: at worst it writes what the stream
//! would have written a moment later (counted, then, as a repair).
//! A round that finds differences reads, from each side, a snapshot of the
//! differing partitions only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use umbra_agent::model::{Key, Version};
use umbra_agent::wire::entry_from_wire;
use umbra_proto::umbra::device::v1 as pb;

use crate::device;
use crate::error::{ReplicateError, Result};
use crate::metrics::AntiEntropyMetrics;
use crate::peer::Peer;
use crate::stream::{StreamHandle, error_chain};

/// Tunables of anti-entropy.
#[derive(Debug, Clone)]
pub struct AntiEntropyConfig {
    /// Partitions the key space is split into (1..=65536).
    pub partitions: u32,
    /// Time between rounds.
    pub interval: Duration,
    /// Longest wait for a stream to catch up before comparing entries.
    pub catch_up: Duration,
    /// Most entries per Apply of a repair.
    pub apply_batch: usize,
    /// Entries per snapshot chunk.
    pub snapshot_chunk: u32,
}

impl Default for AntiEntropyConfig {
    fn default() -> Self {
        Self {
            partitions: 256,
            interval: Duration::from_secs(10),
            catch_up: Duration::from_secs(2),
            apply_batch: 8192,
            snapshot_chunk: 4096,
        }
    }
}

impl AntiEntropyConfig {
    /// Every problem with this configuration; none if it is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=65_536).contains(&self.partitions) {
            problems.push(format!(
                "partitions {} is not in 1..=65536",
                self.partitions
            ));
        }
        if self.interval.is_zero() {
            problems.push("the anti-entropy interval must be positive".into());
        }
        if self.apply_batch == 0 || self.snapshot_chunk == 0 {
            problems.push("apply_batch and snapshot_chunk must be at least 1".into());
        }
        problems
    }
}

/// What one round found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Partitions whose digests differed.
    pub mismatched: Vec<u32>,
    /// Partitions where a side still needed an entry written.
    pub divergent: Vec<u32>,
    /// Entries written to side A.
    pub written_to_a: u64,
    /// Entries written to side B.
    pub written_to_b: u64,
    /// Repair writes refused.
    pub rejected: u64,
}

/// Anti-entropy between two peers A and B.
#[derive(Debug)]
pub struct AntiEntropy {
    a: Peer,
    b: Peer,
    config: AntiEntropyConfig,
    a_to_b: Option<StreamHandle>,
    b_to_a: Option<StreamHandle>,
    metrics: Arc<AntiEntropyMetrics>,
}

/// One side's entries of the compared partitions, by key.
type Side = BTreeMap<Key, (Version, pb::Entry)>;

impl AntiEntropy {
    /// Anti-entropy between `a` and `b`.
    pub fn new(a: Peer, b: Peer, config: AntiEntropyConfig) -> Self {
        Self {
            a,
            b,
            config,
            a_to_b: None,
            b_to_a: None,
            metrics: Arc::default(),
        }
    }

    /// Waits for these streams to catch up before comparing entries, so
    /// that replication lag is not repaired as divergence.
    #[must_use]
    pub fn following(mut self, a_to_b: Option<StreamHandle>, b_to_a: Option<StreamHandle>) -> Self {
        self.a_to_b = a_to_b;
        self.b_to_a = b_to_a;
        self
    }

    /// The live counters.
    pub fn metrics(&self) -> Arc<AntiEntropyMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs a round every interval until `shutdown`; failed rounds are
    /// logged, counted and retried at the next interval.
    ///
    /// # Errors
    /// [`ReplicateError::InvalidOptions`] for an invalid configuration.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let problems = self.config.validate();
        if !problems.is_empty() {
            return Err(ReplicateError::InvalidOptions(problems));
        }
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = ticks.tick() => {}
            }
            let round = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                round = self.round() => round,
            };
            match round {
                Ok(report) if !report.divergent.is_empty() => tracing::warn!(
                    divergent = report.divergent.len(),
                    to_a = report.written_to_a,
                    to_b = report.written_to_b,
                    "anti-entropy repaired divergent partitions"
                ),
                Ok(_) => {}
                Err(error) => {
                    self.metrics.errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %error_chain(&error), "anti-entropy round failed");
                }
            }
        }
    }

    /// One round: compare digests, and repair the partitions that differ.
    ///
    /// # Errors
    /// [`ReplicateError::Rpc`] when a peer cannot be read or written,
    /// [`ReplicateError::Protocol`] when one answers nonsense.
    pub async fn round(&self) -> Result<RoundReport> {
        let count = self.config.partitions;
        let (mut a, mut b) = (self.a.client(), self.b.client());
        let (digest_a, digest_b) = tokio::try_join!(
            device::digest(&self.a, &mut a, count),
            device::digest(&self.b, &mut b, count)
        )?;
        let theirs: HashMap<u32, (&[u8], u64)> = digest_b
            .partitions
            .iter()
            .map(|p| (p.partition, (p.digest.as_slice(), p.count)))
            .collect();
        let mismatched: BTreeSet<u32> = digest_a
            .partitions
            .iter()
            .filter(|p| theirs.get(&p.partition) != Some(&(p.digest.as_slice(), p.count)))
            .map(|p| p.partition)
            .collect();
        let mut report = RoundReport {
            mismatched: mismatched.iter().copied().collect(),
            ..RoundReport::default()
        };
        self.metrics
            .mismatched_partitions
            .fetch_add(mismatched.len() as u64, Relaxed);
        if mismatched.is_empty() {
            self.metrics.rounds.fetch_add(1, Relaxed);
            return Ok(report);
        }

        // Let B → A catch up with what B had at the digest, then A → B with
        // what A has at its snapshot; a stream that does not catch up in
        // time only makes the round repair what it would have written.
        let deadline = Instant::now() + self.config.catch_up;
        if let Some(stream) = &self.b_to_a {
            let _ = stream
                .wait_until(digest_b.log_epoch, digest_b.revision, deadline)
                .await;
        }
        let wanted: Vec<u32> = mismatched.iter().copied().collect();
        let chunk = self.config.snapshot_chunk;
        let (revision_a, epoch_a, entries_a) =
            device::snapshot_partitions(&self.a, &mut a, chunk, count, wanted.clone()).await?;
        if let Some(stream) = &self.a_to_b {
            let _ = stream.wait_until(epoch_a, revision_a, deadline).await;
        }
        let (_, _, entries_b) =
            device::snapshot_partitions(&self.b, &mut b, chunk, count, wanted).await?;
        let side_a = side(entries_a, count, &mismatched);
        let side_b = side(entries_b, count, &mismatched);
        let (health_a, health_b) = tokio::try_join!(
            device::health(&self.a, &mut a),
            device::health(&self.b, &mut b)
        )?;

        // Each side's newer (or only) versions, for the other; but a key
        // the other side lacks and originated was deleted there: its copy
        // goes (as a tombstone) instead.
        let newer = |from: &Side, to: &Side, to_node: u64| {
            let mut write: Vec<(Key, bool, pb::Entry)> = Vec::new();
            let mut orphans: Vec<(Key, bool, pb::Entry)> = Vec::new();
            for (key, (version, entry)) in from {
                match to.get(key) {
                    Some((v, _)) if v >= version => {}
                    Some(_) => write.push((key.clone(), false, entry.clone())),
                    None if device::origin(entry) == to_node => {
                        orphans.push((key.clone(), false, device::tombstone_of(entry)));
                    }
                    None => write.push((key.clone(), true, entry.clone())),
                }
            }
            (write, orphans)
        };
        let (to_b, orphans_on_a) = newer(&side_a, &side_b, health_b.node_id);
        let (to_a, mut orphans_on_b) = newer(&side_b, &side_a, health_a.node_id);
        // B's snapshot was read after A's: a key A created in between can
        // be in B's (the stream brought it) and not in A's, new rather
        // than deleted. A key is an orphan on B only if A still lacks it
        // in a snapshot read after B's. (Orphans on A need no second look:
        // B's snapshot is the later one.)
        if !orphans_on_b.is_empty() {
            let partitions: BTreeSet<u32> = orphans_on_b
                .iter()
                .map(|(key, ..)| key.partition(count))
                .collect();
            let (_, _, again) = device::snapshot_partitions(
                &self.a,
                &mut a,
                chunk,
                count,
                partitions.iter().copied().collect(),
            )
            .await?;
            let again = side(again, count, &partitions);
            orphans_on_b.retain(|(key, ..)| !again.contains_key(key));
        }
        let mut needed: BTreeMap<u32, (u64, u64)> = BTreeMap::new(); // partition → (applied, rejected)
        let written_b = self
            .repair(&self.b, &mut b, &to_b, count, &mut needed)
            .await?;
        let written_a = self
            .repair(&self.a, &mut a, &to_a, count, &mut needed)
            .await?;
        // Keys a side lacks because it deleted them: delete them on the
        // other side too.
        let tombstones_b: Vec<(Key, bool, pb::Entry)> = written_a
            .deleted
            .into_iter()
            .map(|(key, entry)| (key, false, device::tombstone_of(&entry)))
            .chain(orphans_on_b)
            .collect();
        let tombstones_a: Vec<(Key, bool, pb::Entry)> = written_b
            .deleted
            .into_iter()
            .map(|(key, entry)| (key, false, device::tombstone_of(&entry)))
            .chain(orphans_on_a)
            .collect();
        let deleted_b = self
            .repair(&self.b, &mut b, &tombstones_b, count, &mut needed)
            .await?;
        let deleted_a = self
            .repair(&self.a, &mut a, &tombstones_a, count, &mut needed)
            .await?;

        report.written_to_a = written_a.applied + deleted_a.applied;
        report.written_to_b = written_b.applied + deleted_b.applied;
        report.rejected =
            written_a.rejected + written_b.rejected + deleted_a.rejected + deleted_b.rejected;
        report.divergent = needed
            .iter()
            .filter(|(_, (applied, rejected))| applied + rejected > 0)
            .map(|(p, _)| *p)
            .collect();
        let repaired = needed
            .values()
            .filter(|(applied, rejected)| *applied > 0 && *rejected == 0)
            .count();
        let m = &self.metrics;
        m.divergent_partitions
            .fetch_add(report.divergent.len() as u64, Relaxed);
        m.repaired_partitions.fetch_add(repaired as u64, Relaxed);
        m.repaired_entries
            .fetch_add(report.written_to_a + report.written_to_b, Relaxed);
        m.rejected_entries.fetch_add(report.rejected, Relaxed);
        m.rounds.fetch_add(1, Relaxed);
        Ok(report)
    }

    /// Writes `entries` to `peer`, counting per partition what was applied
    /// or refused; returns the counts and the keys the peer lacked but
    /// refused as superseded (it holds a tombstone newer than the entry).
    async fn repair(
        &self,
        peer: &Peer,
        client: &mut crate::peer::DeviceConn,
        entries: &[(Key, bool, pb::Entry)],
        count: u32,
        needed: &mut BTreeMap<u32, (u64, u64)>,
    ) -> Result<Repair> {
        let mut repair = Repair::default();
        if entries.is_empty() {
            return Ok(repair);
        }
        let wire = entries.iter().map(|(_, _, e)| e.clone()).collect();
        let (outcomes, _) = device::apply(peer, client, wire, self.config.apply_batch).await?;
        for ((key, lacked, entry), outcome) in entries.iter().zip(outcomes) {
            let slot = needed.entry(key.partition(count)).or_default();
            match outcome {
                pb::ApplyOutcome::Applied => {
                    slot.0 += 1;
                    repair.applied += 1;
                }
                pb::ApplyOutcome::Superseded if *lacked => {
                    repair.deleted.push((key.clone(), entry.clone()));
                }
                pb::ApplyOutcome::Rejected | pb::ApplyOutcome::Unspecified => {
                    slot.1 += 1;
                    repair.rejected += 1;
                }
                pb::ApplyOutcome::Unchanged | pb::ApplyOutcome::Superseded => {}
            }
        }
        Ok(repair)
    }
}

#[derive(Debug, Default)]
struct Repair {
    applied: u64,
    rejected: u64,
    deleted: Vec<(Key, pb::Entry)>,
}

/// The entries of `partitions` (among `count`) by key.
fn side(entries: Vec<pb::Entry>, count: u32, partitions: &BTreeSet<u32>) -> Side {
    entries
        .into_iter()
        .filter_map(|wire| {
            let entry = entry_from_wire(&wire).ok()?;
            partitions
                .contains(&entry.key.partition(count))
                .then_some((entry.key, (entry.version, wire)))
        })
        .collect()
}
