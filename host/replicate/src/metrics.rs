//! Counters and gauges of replication, readable at any time without
//! locking: per stream ([`StreamMetrics`], read as a [`StreamStatus`]), per
//! anti-entropy loop ([`AntiEntropyMetrics`]), and the distribution of the
//! per-change replication lag ([`LagHistogram`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Width of one lag bucket.
const LAG_BUCKET_US: u64 = 100;
/// Buckets below the overflow one: 0 to 2 s in 0.1 ms steps.
const LAG_BUCKETS: usize = 20_000;

/// Distribution of replication lag: for each change applied on the
/// target, the time from when the source recorded it (the wall part of its
/// hybrid logical clock, so within a millisecond when the clocks of the
/// two machines agree) to when the target's Apply returned. Buckets of
/// 0.1 ms up to 2 s, then one overflow bucket.
pub struct LagHistogram {
    buckets: Box<[AtomicU64]>,
}

impl std::fmt::Debug for LagHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.snapshot();
        f.debug_struct("LagHistogram")
            .field("count", &snapshot.count())
            .field("p99", &snapshot.quantile(0.99))
            .finish()
    }
}

impl Default for LagHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..=LAG_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LagHistogram {
    /// Records `n` changes that each took `lag_us` microseconds.
    pub fn record(&self, lag_us: u64, n: u64) {
        let bucket = usize::try_from(lag_us / LAG_BUCKET_US)
            .unwrap_or(LAG_BUCKETS)
            .min(LAG_BUCKETS);
        self.buckets[bucket].fetch_add(n, Relaxed);
    }

    /// The counts now; subtract an earlier snapshot with
    /// [`LagSnapshot::since`] to look at a window.
    pub fn snapshot(&self) -> LagSnapshot {
        LagSnapshot {
            counts: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
        }
    }
}

/// The counts of a [`LagHistogram`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagSnapshot {
    counts: Vec<u64>,
}

impl LagSnapshot {
    /// Changes recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What was recorded after `earlier`.
    pub fn since(&self, earlier: &LagSnapshot) -> LagSnapshot {
        LagSnapshot {
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
        }
    }

    /// Adds `other`'s counts (to gather separate windows).
    pub fn add(&mut self, other: &LagSnapshot) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// The lag at or below which a fraction `q` (0..=1) of the changes were
    /// applied (the upper edge of its bucket; the overflow bucket reads as
    /// its lower edge, 2 s); `None` when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let edge = (i as u64 + u64::from(i < LAG_BUCKETS)) * LAG_BUCKET_US;
                return Some(Duration::from_micros(edge));
            }
        }
        Some(Duration::from_micros(LAG_BUCKETS as u64 * LAG_BUCKET_US))
    }

    /// Mean lag (bucket midpoints); `None` when nothing was recorded.
    pub fn mean(&self) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let sum: f64 = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, n)| (i as f64 + 0.5) * LAG_BUCKET_US as f64 * *n as f64)
            .sum();
        Some(Duration::from_micros((sum / total as f64) as u64))
    }
}

/// Live counters of one [`crate::ReplicationStream`]; see [`StreamStatus`]
/// for what each means.
#[derive(Debug, Default)]
pub struct StreamMetrics {
    pub(crate) connected: AtomicBool,
    pub(crate) source_epoch: AtomicU64,
    pub(crate) acked_revision: AtomicU64,
    pub(crate) source_head: AtomicU64,
    pub(crate) snapshot_revision: AtomicU64,
    pub(crate) newest_applied_wall_ms: AtomicU64,
    pub(crate) last_apply_lag_us: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) resnapshots: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) pipelined: AtomicU64,
    pub(crate) snapshot_forwarded: AtomicU64,
    pub(crate) snapshot_applied: AtomicU64,
    pub(crate) stale_removed: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) unchanged: AtomicU64,
    pub(crate) superseded: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) echo_suppressed: AtomicU64,
    /// Per-change lag of the change stream (snapshots are not included).
    pub lag: LagHistogram,
}

/// A stream's state and counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStatus {
    /// Both peers answered and the stream is following the source.
    pub connected: bool,
    /// The source log epoch `acked_revision` belongs to (0 before the first
    /// snapshot).
    pub source_epoch: u64,
    /// The last source revision the target has applied (its Apply
    /// returned).
    pub acked_revision: u64,
    /// The source's head revision as last seen (from its change stream and
    /// a periodic Health call).
    pub source_head: u64,
    /// `source_head - acked_revision`: changes not yet on the target.
    pub lag_revisions: u64,
    /// How old the newest applied change is while changes are pending (0
    /// when caught up): how far behind the source the target is, in time.
    pub time_lag: Duration,
    /// Lag of the newest change of the last applied batch, when its Apply
    /// returned.
    pub last_apply_lag: Duration,
    /// The revision of the last snapshot taken.
    pub snapshot_revision: u64,
    /// Snapshots taken, the first one included.
    pub snapshots: u64,
    /// Snapshots taken because the stream could not resume (the source's
    /// log no longer held the revision, the source or the target
    /// restarted).
    pub resnapshots: u64,
    /// Sessions that ended in an error (then retried).
    pub errors: u64,
    /// Change batches applied.
    pub batches: u64,
    /// Applies sent before an earlier one's answer was taken
    /// ([`crate::StreamConfig::apply_in_flight`]).
    pub pipelined: u64,
    /// Snapshot entries sent to the target.
    pub snapshot_forwarded: u64,
    /// Snapshot entries the target applied.
    pub snapshot_applied: u64,
    /// Entries deleted on the target after a snapshot because the source
    /// no longer had them.
    pub stale_removed: u64,
    /// Change-stream entries sent to the target.
    pub forwarded: u64,
    /// ... that the target applied.
    pub applied: u64,
    /// ... that the target already held (resent after a reconnect).
    pub unchanged: u64,
    /// ... for which the target held a newer version.
    pub superseded: u64,
    /// ... that the target refused.
    pub rejected: u64,
    /// Change-stream entries not sent because they originated on the
    /// target (they would echo).
    pub echo_suppressed: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

impl StreamMetrics {
    pub(crate) fn status(&self, last_error: Option<String>, now_ms: u64) -> StreamStatus {
        let acked = self.acked_revision.load(Relaxed);
        let head = self.source_head.load(Relaxed).max(acked);
        let lag_revisions = head - acked;
        let newest = self.newest_applied_wall_ms.load(Relaxed);
        let time_lag = if lag_revisions == 0 || newest == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(now_ms.saturating_sub(newest))
        };
        StreamStatus {
            connected: self.connected.load(Relaxed),
            source_epoch: self.source_epoch.load(Relaxed),
            acked_revision: acked,
            source_head: head,
            lag_revisions,
            time_lag,
            last_apply_lag: Duration::from_micros(self.last_apply_lag_us.load(Relaxed)),
            snapshot_revision: self.snapshot_revision.load(Relaxed),
            snapshots: self.snapshots.load(Relaxed),
            resnapshots: self.resnapshots.load(Relaxed),
            errors: self.errors.load(Relaxed),
            batches: self.batches.load(Relaxed),
            pipelined: self.pipelined.load(Relaxed),
            snapshot_forwarded: self.snapshot_forwarded.load(Relaxed),
            snapshot_applied: self.snapshot_applied.load(Relaxed),
            stale_removed: self.stale_removed.load(Relaxed),
            forwarded: self.forwarded.load(Relaxed),
            applied: self.applied.load(Relaxed),
            unchanged: self.unchanged.load(Relaxed),
            superseded: self.superseded.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            echo_suppressed: self.echo_suppressed.load(Relaxed),
            last_error,
        }
    }
}

/// Live counters of an [`crate::AntiEntropy`] loop.
#[derive(Debug, Default)]
pub struct AntiEntropyMetrics {
    pub(crate) rounds: AtomicU64,
    pub(crate) mismatched_partitions: AtomicU64,
    pub(crate) divergent_partitions: AtomicU64,
    pub(crate) repaired_partitions: AtomicU64,
    pub(crate) repaired_entries: AtomicU64,
    pub(crate) rejected_entries: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// Anti-entropy counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AntiEntropyStatus {
    /// Rounds completed.
    pub rounds: u64,
    /// Partitions whose digests differed (replication lag included).
    pub mismatched_partitions: u64,
    /// Partitions that really diverged: after waiting for the streams, one
    /// side still needed an entry written.
    pub divergent_partitions: u64,
    /// Divergent partitions where every needed write was applied.
    pub repaired_partitions: u64,
    /// Entries written by repairs.
    pub repaired_entries: u64,
    /// Repair writes a side refused.
    pub rejected_entries: u64,
    /// Rounds that failed (a peer unreachable).
    pub errors: u64,
}

impl AntiEntropyMetrics {
    /// The counters now.
    pub fn status(&self) -> AntiEntropyStatus {
        AntiEntropyStatus {
            rounds: self.rounds.load(Relaxed),
            mismatched_partitions: self.mismatched_partitions.load(Relaxed),
            divergent_partitions: self.divergent_partitions.load(Relaxed),
            repaired_partitions: self.repaired_partitions.load(Relaxed),
            repaired_entries: self.repaired_entries.load(Relaxed),
            rejected_entries: self.rejected_entries.load(Relaxed),
            errors: self.errors.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_bucket_edges() {
        let histogram = LagHistogram::default();
        assert_eq!(histogram.snapshot().quantile(0.99), None);
        histogram.record(50, 98); // 0.05 ms
        histogram.record(4_250, 1); // 4.25 ms
        histogram.record(10_000_000, 1); // 10 s: overflow
        let all = histogram.snapshot();
        assert_eq!(all.count(), 100);
        assert_eq!(all.quantile(0.5), Some(Duration::from_micros(100)));
        assert_eq!(all.quantile(0.99), Some(Duration::from_micros(4_300)));
        assert_eq!(all.quantile(1.0), Some(Duration::from_secs(2)));
        let before = histogram.snapshot();
        histogram.record(1_000, 3);
        let mut window = histogram.snapshot().since(&before);
        assert_eq!(window.count(), 3);
        window.add(&before);
        assert_eq!(window.count(), 103);
        let window = histogram.snapshot().since(&before);
        assert_eq!(window.quantile(0.99), Some(Duration::from_micros(1_100)));
    }
}
