//! The change log: every change the agent records, numbered by consecutive
//! revisions from 1, bounded (the oldest changes are dropped first), so a
//! watcher can resume after any revision the log still holds.

use std::collections::VecDeque;

use crate::error::{AgentError, Result};
use crate::model::Entry;

/// A bounded, revisioned log of changes. Kept under the agent's state lock.
#[derive(Debug)]
pub struct ChangeLog {
    epoch: u64,
    capacity: usize,
    /// Revision of `changes[0]` (head + 1 when empty).
    first: u64,
    changes: VecDeque<Entry>,
}

impl ChangeLog {
    /// An empty log of `epoch` holding at most `capacity` (at least 1)
    /// changes.
    pub fn new(epoch: u64, capacity: usize) -> Self {
        Self {
            epoch,
            capacity: capacity.max(1),
            first: 1,
            changes: VecDeque::new(),
        }
    }

    /// The log's epoch: revisions are only comparable within one.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last revision recorded; 0 before the first change.
    pub fn head(&self) -> u64 {
        self.first + self.changes.len() as u64 - 1
    }

    /// The oldest revision still held; `head() + 1` when the log is empty.
    pub fn oldest(&self) -> u64 {
        self.first
    }

    /// Records a change and returns its revision, dropping the oldest change
    /// when the log is full.
    pub fn append(&mut self, entry: Entry) -> u64 {
        if self.changes.len() == self.capacity {
            self.changes.pop_front();
            self.first += 1;
        }
        self.changes.push_back(entry);
        self.head()
    }

    /// Checks that a watcher holding everything up to `after` can resume
    /// here.
    ///
    /// # Errors
    /// [`AgentError::RevisionTooOld`] when revision `after + 1` was dropped;
    /// [`AgentError::UnknownRevision`] when `after` is beyond the head or
    /// `epoch` (unless 0) is not this log's.
    pub fn check_resume(&self, after: u64, epoch: u64) -> Result<()> {
        if (epoch != 0 && epoch != self.epoch) || after > self.head() {
            return Err(AgentError::UnknownRevision {
                requested: after,
                epoch,
                current_epoch: self.epoch,
                head: self.head(),
            });
        }
        if after + 1 < self.first {
            return Err(AgentError::RevisionTooOld {
                requested: after + 1,
                oldest: self.first,
            });
        }
        Ok(())
    }

    /// Up to `max` changes after revision `after`, applying `f` to each
    /// (so callers convert without cloning twice); empty when `after` is
    /// the head.
    ///
    /// # Errors
    /// As [`ChangeLog::check_resume`].
    pub fn read_after<T>(
        &self,
        after: u64,
        max: usize,
        f: impl FnMut(&Entry) -> T,
    ) -> Result<Vec<T>> {
        self.check_resume(after, 0)?;
        let start = usize::try_from(after + 1 - self.first).unwrap_or(usize::MAX);
        Ok(self.changes.range(start..).take(max).map(f).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::model::{Key, NftFamily, NftTableKey, Version};

    fn change(n: u64) -> Entry {
        Entry::new(
            Key::NftTable(NftTableKey {
                family: NftFamily::Inet,
                name: format!("t{n}"),
            }),
            Version {
                clock: Hlc {
                    wall_ms: n,
                    logical: 0,
                    node_id: 1,
                },
                origin: 1,
                tombstone: true,
            },
            None,
        )
        .unwrap()
    }

    fn names(entries: &[Entry]) -> Vec<u64> {
        entries
            .iter()
            .map(|e| match &e.key {
                Key::NftTable(k) => k.name[1..].parse().unwrap(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn revisions_are_consecutive_and_reads_resume_exactly() {
        let mut log = ChangeLog::new(9, 100);
        assert_eq!((log.head(), log.oldest()), (0, 1));
        assert!(log.read_after(0, 10, Clone::clone).unwrap().is_empty());
        for n in 1..=10 {
            assert_eq!(log.append(change(n)), n);
        }
        assert_eq!(
            names(&log.read_after(0, 3, Clone::clone).unwrap()),
            [1, 2, 3]
        );
        assert_eq!(
            names(&log.read_after(3, 100, Clone::clone).unwrap()),
            (4..=10).collect::<Vec<_>>()
        );
        assert!(log.read_after(10, 100, Clone::clone).unwrap().is_empty());
        assert!(matches!(
            log.read_after(11, 1, Clone::clone),
            Err(AgentError::UnknownRevision { head: 10, .. })
        ));
        assert!(log.check_resume(5, 9).is_ok());
        assert!(matches!(
            log.check_resume(5, 8),
            Err(AgentError::UnknownRevision {
                current_epoch: 9,
                ..
            })
        ));
    }

    #[test]
    fn a_full_log_drops_the_oldest_and_says_what_remains() {
        let mut log = ChangeLog::new(1, 4);
        for n in 1..=10 {
            log.append(change(n));
        }
        assert_eq!((log.oldest(), log.head()), (7, 10));
        // Revision 6 is the last one a resumer may hold.
        assert_eq!(
            names(&log.read_after(6, 100, Clone::clone).unwrap()),
            [7, 8, 9, 10]
        );
        let err = log.read_after(5, 100, Clone::clone).unwrap_err();
        assert!(matches!(
            err,
            AgentError::RevisionTooOld {
                requested: 6,
                oldest: 7
            }
        ));
        assert!(err.to_string().contains("oldest revision available is 7"));
    }
}
