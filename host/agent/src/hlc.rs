//! Hybrid logical clocks (Kulkarni et al., 2014): timestamps that follow
//! physical time, never go back, order causally related events across nodes
//! and never collide between nodes (the node id breaks ties).

use std::time::{SystemTime, UNIX_EPOCH};

/// A hybrid logical clock timestamp, ordered by (`wall_ms`, `logical`,
/// `node_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch: the largest physical time the
    /// issuing clock had seen.
    pub wall_ms: u64,
    /// Orders events within one `wall_ms`.
    pub logical: u32,
    /// The node that issued the timestamp.
    pub node_id: u64,
}

/// Milliseconds since the Unix epoch from the system clock.
pub fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The clock of one node. Not thread-safe by itself: the agent keeps it
/// under its state lock, where every timestamp is issued.
pub struct HybridClock {
    node_id: u64,
    wall_ms: u64,
    logical: u32,
    physical: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for HybridClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridClock")
            .field("node_id", &self.node_id)
            .field("last", &self.last())
            .finish_non_exhaustive()
    }
}

impl HybridClock {
    /// A clock for `node_id` on the system clock.
    pub fn new(node_id: u64) -> Self {
        Self::with_physical(node_id, system_ms)
    }

    /// A clock for `node_id` reading physical time (ms) from `physical`;
    /// tests pass a controllable one.
    pub fn with_physical(node_id: u64, physical: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self {
            node_id,
            wall_ms: 0,
            logical: 0,
            physical: Box::new(physical),
        }
    }

    /// This clock's node id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The last timestamp issued (or merged).
    pub fn last(&self) -> Hlc {
        Hlc {
            wall_ms: self.wall_ms,
            logical: self.logical,
            node_id: self.node_id,
        }
    }

    /// Physical time now, as this clock reads it.
    pub fn physical_ms(&self) -> u64 {
        (self.physical)()
    }

    /// A timestamp for a local event, greater than every timestamp this
    /// clock issued or merged before.
    pub fn now(&mut self) -> Hlc {
        let physical = (self.physical)();
        if physical > self.wall_ms {
            self.wall_ms = physical;
            self.logical = 0;
        } else {
            self.tick_logical();
        }
        self.last()
    }

    /// Merges a timestamp received from another node, so that every later
    /// local timestamp is greater than it; returns the merged timestamp.
    pub fn observe(&mut self, remote: Hlc) -> Hlc {
        let physical = (self.physical)();
        let wall = physical.max(self.wall_ms).max(remote.wall_ms);
        if wall == self.wall_ms && wall == remote.wall_ms {
            self.logical = self.logical.max(remote.logical);
            self.tick_logical();
        } else if wall == self.wall_ms {
            self.tick_logical();
        } else if wall == remote.wall_ms {
            self.wall_ms = wall;
            self.logical = remote.logical;
            self.tick_logical();
        } else {
            self.wall_ms = wall;
            self.logical = 0;
        }
        self.last()
    }

    fn tick_logical(&mut self) {
        // 2^32 events within one millisecond cannot happen from real
        // changes; should the counter still run out, borrow the next
        // millisecond rather than wrap (which would go back in time).
        match self.logical.checked_add(1) {
            Some(next) => self.logical = next,
            None => {
                self.wall_ms += 1;
                self.logical = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn manual(node: u64, start: u64) -> (HybridClock, Arc<AtomicU64>) {
        let time = Arc::new(AtomicU64::new(start));
        let read = Arc::clone(&time);
        (
            HybridClock::with_physical(node, move || read.load(Ordering::SeqCst)),
            time,
        )
    }

    #[test]
    fn local_timestamps_are_strictly_monotonic_even_when_physical_time_goes_back() {
        let (mut clock, time) = manual(1, 1_000);
        let mut last = clock.now();
        assert_eq!((last.wall_ms, last.logical, last.node_id), (1_000, 0, 1));
        for step in 0..1_000u64 {
            // Physical time stalls, goes back, then jumps ahead.
            time.store(
                match step % 3 {
                    0 => 1_000,
                    1 => 900,
                    _ => 1_000 + step,
                },
                Ordering::SeqCst,
            );
            let next = clock.now();
            assert!(next > last, "{next:?} after {last:?}");
            last = next;
        }
        time.store(50_000, Ordering::SeqCst);
        let jumped = clock.now();
        assert_eq!((jumped.wall_ms, jumped.logical), (50_000, 0));
    }

    #[test]
    fn observing_a_remote_timestamp_orders_later_events_after_it() {
        let (mut ours, _) = manual(1, 1_000);
        ours.now();
        // The remote clock runs 5 s ahead.
        let remote = Hlc {
            wall_ms: 6_000,
            logical: 7,
            node_id: 2,
        };
        let merged = ours.observe(remote);
        assert!(merged > remote);
        assert_eq!((merged.wall_ms, merged.logical), (6_000, 8));
        let next = ours.now();
        assert!(next > remote && next > merged);
        assert_eq!(next.wall_ms, 6_000, "physical time is still behind");

        // A remote timestamp behind ours only advances the counter.
        let stale = Hlc {
            wall_ms: 10,
            logical: 99,
            node_id: 2,
        };
        let after = ours.observe(stale);
        assert!(after > next && after > stale);

        // Physical time ahead of both wins and resets the counter.
        let (mut fresh, time) = manual(3, 1_000);
        time.store(20_000, Ordering::SeqCst);
        let merged = fresh.observe(remote);
        assert_eq!((merged.wall_ms, merged.logical), (20_000, 0));
    }

    #[test]
    fn equal_physical_and_logical_parts_are_ordered_by_node_id() {
        let (mut a, _) = manual(1, 5_000);
        let (mut b, _) = manual(2, 5_000);
        let (ta, tb) = (a.now(), b.now());
        assert_eq!((ta.wall_ms, ta.logical), (tb.wall_ms, tb.logical));
        assert_ne!(ta, tb);
        assert!(tb > ta, "node 2 wins the tie");
        // Ordering is (wall, logical, node): a later counter beats a higher
        // node id.
        let ta2 = a.now();
        assert!(ta2 > tb);
    }

    #[test]
    fn logical_counter_overflow_borrows_the_next_millisecond() {
        let (mut clock, _) = manual(1, 7);
        clock.now();
        clock.logical = u32::MAX;
        let next = clock.now();
        assert_eq!((next.wall_ms, next.logical), (8, 0));
    }
}
