//! The device behind the agent: the [`Backend`] trait, the bounded queue its
//! local changes travel in, and what it reports as metrics and health.
//!
//! A backend is the device's own state (the kernel for the Linux backend,
//! memory for [`sim`], a network namespace for [`linux`]); the agent keeps versions and the change log on top.
//! Every change of the device, local or applied, is reported on the
//! [`ChangeQueue`] in the order the device made it; the agent drops reports
//! that match what it already holds, so applied entries do not come back as
//! local changes, and a report that raced an Apply still converges on what
//! the device holds.

pub mod linux;
pub mod sim;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::error::Result;
use crate::model::{Key, LocalChange, Rejected, Value};

/// A device whose state the agent serves.
///
/// Methods are synchronous and called under the agent's state lock (lock
/// order: agent state, then the backend's own locks); they must not block
/// for long. The Linux backend talks netlink to its local kernel, which
/// answers in microseconds.
pub trait Backend: Send + Sync + 'static {
    /// Short name of the kind (`sim`, `linux`), for health.
    fn kind(&self) -> &'static str;

    /// Every entry the device holds now.
    ///
    /// # Errors
    /// [`crate::AgentError::Backend`] when the state cannot be read.
    fn snapshot(&self) -> Result<Vec<(Key, Value)>>;

    /// Writes one entry into the device: `Some` creates or replaces the
    /// key's value, `None` deletes it (deleting an absent key succeeds).
    /// The change is also reported on [`Backend::changes`].
    ///
    /// # Errors
    /// [`Rejected`] with the reason when the device refuses the entry
    /// (unknown table or interface, table full); the device is unchanged.
    fn apply(&self, key: &Key, value: Option<&Value>) -> Result<(), Rejected>;

    /// Writes entries in order, each as [`Backend::apply`] would: one
    /// result per entry, in order. A device that can batch its writes
    /// overrides this (the Linux backend sends conntrack entries hundreds
    /// per netlink message instead of one round trip each).
    fn apply_batch(&self, entries: &[(&Key, Option<&Value>)]) -> Vec<Result<(), Rejected>> {
        entries
            .iter()
            .map(|(key, value)| self.apply(key, *value))
            .collect()
    }

    /// The queue the device's changes are reported on, in order.
    fn changes(&self) -> Arc<ChangeQueue>;

    /// Counters and gauges now.
    fn metrics(&self) -> MetricsReading;

    /// Problems the device has now; empty when healthy.
    fn problems(&self) -> Vec<String>;

    /// Commits the device to take traffic over (failover calls it on the
    /// standby after the drain, before redirecting): state it still tracks
    /// in a way only valid for traffic it forwarded itself is relaxed as
    /// replicated state already is. For the Linux backend, TCP conntrack
    /// entries still tracking sequence windows are made liberal; a device
    /// without such state commits nothing. Called without the agent's
    /// state lock; idempotent. (No default: a wrapping backend must pass
    /// it on.)
    ///
    /// # Errors
    /// [`crate::AgentError::Backend`] when the device cannot be written.
    fn commit(&self) -> Result<CommitReport>;
}

/// What [`Backend::commit`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Entries relaxed.
    pub committed: u64,
    /// Entries that ended before they were reached.
    pub vanished: u64,
}

/// Cumulative counters of one interface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterfaceReading {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets dropped on receive.
    pub rx_drops: u64,
    /// Packets dropped on send.
    pub tx_drops: u64,
}

/// What a backend measures at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsReading {
    /// CPU use, fraction of all CPUs (0..1).
    pub cpu: f64,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Memory of the device, bytes.
    pub memory_total_bytes: u64,
    /// Per-interface counters.
    pub interfaces: Vec<InterfaceReading>,
    /// Conntrack entries.
    pub conntrack_count: u64,
    /// Conntrack table size.
    pub conntrack_max: u64,
}

/// What the agent takes from a [`ChangeQueue`].
#[derive(Debug, PartialEq)]
pub enum Delivery {
    /// The next changes, in order.
    Changes(Vec<LocalChange>),
    /// The queue overflowed and changes were lost (like netlink's
    /// `ENOBUFS`): the agent must compare the device's snapshot with what
    /// it holds.
    Lost,
}

#[derive(Debug, Default)]
struct QueueState {
    changes: VecDeque<LocalChange>,
    lost: bool,
}

/// A bounded queue of a device's changes, one producer (the device) and one
/// consumer (the agent). When full, the queued changes are discarded and
/// the consumer is told they were lost, so it resynchronises from a
/// snapshot: the device never waits for the agent.
#[derive(Debug)]
pub struct ChangeQueue {
    capacity: usize,
    // Synchronous: no `.await` happens under this lock.
    state: Mutex<QueueState>,
    ready: Notify,
}

impl ChangeQueue {
    /// A queue of at most `capacity` (at least 1) changes.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queued changes.
    pub fn len(&self) -> usize {
        self.lock().changes.len()
    }

    /// Whether no change is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Reports a change; on overflow everything queued is discarded and
    /// marked lost.
    pub fn push(&self, change: LocalChange) {
        let mut state = self.lock();
        // Only the first report after the consumer emptied the queue wakes
        // it: waking it for every report would have it contend for the
        // agent's lock once per change.
        let wake = state.changes.is_empty() && !state.lost;
        if state.lost {
            // A resync will read the device anyway.
        } else if state.changes.len() >= self.capacity {
            state.changes.clear();
            state.lost = true;
        } else {
            state.changes.push_back(change);
        }
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    /// Reports changes in order, as [`ChangeQueue::push`] of each would,
    /// under one lock.
    pub fn push_all(&self, changes: impl IntoIterator<Item = LocalChange>) {
        let mut state = self.lock();
        let wake = state.changes.is_empty() && !state.lost;
        let mut pushed = false;
        for change in changes {
            if state.lost {
                // A resync will read the device anyway.
                break;
            }
            if state.changes.len() >= self.capacity {
                state.changes.clear();
                state.lost = true;
            } else {
                state.changes.push_back(change);
            }
            pushed = true;
        }
        drop(state);
        if wake && pushed {
            self.ready.notify_one();
        }
    }

    /// Reports that the device lost changes on its side (like netlink's
    /// `ENOBUFS` on its event socket): what is queued is discarded and the
    /// consumer resyncs from a snapshot.
    pub fn mark_lost(&self) {
        let mut state = self.lock();
        let wake = state.changes.is_empty() && !state.lost;
        state.changes.clear();
        state.lost = true;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    /// Takes up to `max` changes, or [`Delivery::Lost`], without waiting;
    /// `None` when nothing is queued.
    pub fn try_take(&self, max: usize) -> Option<Delivery> {
        let mut state = self.lock();
        if state.lost {
            state.lost = false;
            state.changes.clear();
            return Some(Delivery::Lost);
        }
        if state.changes.is_empty() {
            return None;
        }
        let n = max.min(state.changes.len());
        Some(Delivery::Changes(state.changes.drain(..n).collect()))
    }

    /// Waits for changes and takes up to `max`.
    pub async fn take(&self, max: usize) -> Delivery {
        loop {
            // `notify_one` stores a permit when nobody waits, so a push
            // between `try_take` and `notified` is not missed.
            if let Some(delivery) = self.try_take(max) {
                return delivery;
            }
            self.ready.notified().await;
        }
    }

    /// Discards what is queued (the consumer is about to read a snapshot
    /// that contains it).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.changes.clear();
        state.lost = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NftFamily, NftTableKey};

    fn change(n: usize) -> LocalChange {
        LocalChange {
            key: Key::NftTable(NftTableKey {
                family: NftFamily::Ip,
                name: n.to_string(),
            }),
            value: None,
        }
    }

    #[tokio::test]
    async fn the_queue_delivers_in_order_and_reports_overflow_as_lost() {
        let queue = ChangeQueue::new(3);
        assert!(queue.try_take(10).is_none());
        queue.push(change(1));
        queue.push(change(2));
        assert_eq!(
            queue.take(10).await,
            Delivery::Changes(vec![change(1), change(2)])
        );
        for n in 0..4 {
            queue.push(change(n));
        }
        assert_eq!(queue.take(10).await, Delivery::Lost);
        assert!(queue.try_take(10).is_none(), "lost is reported once");
        queue.push(change(9));
        assert_eq!(queue.take(10).await, Delivery::Changes(vec![change(9)]));
        queue.push_all([change(12), change(13)]);
        assert_eq!(
            queue.take(10).await,
            Delivery::Changes(vec![change(12), change(13)])
        );
        queue.push_all((0..4).map(change));
        assert_eq!(
            queue.take(10).await,
            Delivery::Lost,
            "push_all overflows too"
        );
        queue.push(change(10));
        queue.mark_lost();
        queue.push(change(11));
        assert_eq!(queue.take(10).await, Delivery::Lost);
        assert!(
            queue.try_take(10).is_none(),
            "queued changes went with the loss"
        );
    }
}
