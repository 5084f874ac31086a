//! A P4 table with exact-match keys of at most 16 bits, as every table of
//! `umbra.p4` has: a direct-indexed slot array (key → entry) over a dense
//! entry vector, so a lookup is two loads and no hashing.
//!
//! Each entry owns its direct counter cell; the cell is only counted and
//! reported when the table has a `direct_counter` in the program.

use std::fmt;

use crate::counter::{CounterCell, CounterData};
use crate::error::{PipelineError, Result};

/// An exact-match key that maps to a dense slot number below
/// `1 << key_bits` of the table it keys (see [`ExactTable::new`]).
pub trait TableKey: Copy + Eq + fmt::Debug {
    /// The key as one integer: the concatenation of its fields.
    fn slot(self) -> usize;
}

impl TableKey for u16 {
    #[inline]
    fn slot(self) -> usize {
        usize::from(self)
    }
}

/// An action (with its parameters) that a table can run.
pub trait TableAction: Copy + Eq + fmt::Debug {
    /// Checks that every parameter fits its bit width in the program.
    ///
    /// # Errors
    /// [`PipelineError::ValueOutOfRange`] naming the offending parameter.
    fn validate(&self) -> Result<()>;
}

/// One installed entry as read by the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableEntry<K, A> {
    /// The match key.
    pub key: K,
    /// The action and its parameters.
    pub action: A,
    /// The entry's direct counter, if the table has one.
    pub counter: Option<CounterData>,
}

#[derive(Debug, Clone)]
struct Entry<K, A> {
    key: K,
    action: A,
    counter: CounterCell,
}

/// Marks an empty slot in [`ExactTable::slots`].
const EMPTY_SLOT: u16 = u16::MAX;

/// An exact-match table: typed keys and actions, a capacity, a default
/// action and optionally a direct counter.
#[derive(Debug, Clone)]
pub struct ExactTable<K, A> {
    name: &'static str,
    key_field: &'static str,
    key_bits: u32,
    size: usize,
    has_direct_counter: bool,
    initial_default: A,
    default_action: A,
    /// Slot (the key as an integer) → index into `entries`, or `EMPTY_SLOT`.
    slots: Box<[u16]>,
    entries: Vec<Entry<K, A>>,
}

impl<K: TableKey, A: TableAction> ExactTable<K, A> {
    /// Creates an empty table.
    ///
    /// `key_bits` is the total width of the key fields (at most 16),
    /// `size` the table's `size` in the program (below 65535) and
    /// `default_action` its `default_action`.
    ///
    /// # Panics
    /// If `key_bits > 16` or `size >= 65535`: the program's tables are
    /// constructed once with constants, so this is a programming error.
    pub fn new(
        name: &'static str,
        key_field: &'static str,
        key_bits: u32,
        size: usize,
        has_direct_counter: bool,
        default_action: A,
    ) -> Self {
        assert!(key_bits <= 16 && size < usize::from(EMPTY_SLOT));
        Self {
            name,
            key_field,
            key_bits,
            size,
            has_direct_counter,
            initial_default: default_action,
            default_action,
            slots: vec![EMPTY_SLOT; 1 << key_bits].into_boxed_slice(),
            entries: Vec::with_capacity(size),
        }
    }

    /// The table's name in the P4 program (its P4Info alias).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The table's capacity (`size` in the program).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of installed entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is installed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the table has a direct counter in the program.
    pub fn has_direct_counter(&self) -> bool {
        self.has_direct_counter
    }

    /// Installs an entry.
    ///
    /// # Errors
    /// [`PipelineError::ValueOutOfRange`] if the key or a parameter does not
    /// fit the program's widths, [`PipelineError::EntryExists`] if the key is
    /// installed, [`PipelineError::TableFull`] if the table is at capacity.
    pub fn insert(&mut self, key: K, action: A) -> Result<()> {
        let slot = self.checked_slot(key)?;
        action.validate()?;
        if self.slots[slot] != EMPTY_SLOT {
            return Err(PipelineError::EntryExists {
                table: self.name,
                key: format!("{key:?}"),
            });
        }
        if self.entries.len() >= self.size {
            return Err(PipelineError::TableFull {
                table: self.name,
                size: self.size,
            });
        }
        // `size < EMPTY_SLOT`, so the index always fits and never collides.
        self.slots[slot] = self.entries.len() as u16;
        self.entries.push(Entry {
            key,
            action,
            counter: CounterCell::default(),
        });
        Ok(())
    }

    /// Replaces the action of an installed entry; its direct counter keeps
    /// counting from where it was (bmv2 and P4Runtime behaviour).
    ///
    /// # Errors
    /// [`PipelineError::ValueOutOfRange`] for an out-of-range key or
    /// parameter, [`PipelineError::EntryNotFound`] if the key is not
    /// installed.
    pub fn modify(&mut self, key: K, action: A) -> Result<()> {
        action.validate()?;
        let index = self.index_of(key)?;
        self.entries[index].action = action;
        Ok(())
    }

    /// Removes an entry.
    ///
    /// # Errors
    /// [`PipelineError::ValueOutOfRange`] for an out-of-range key,
    /// [`PipelineError::EntryNotFound`] if the key is not installed.
    pub fn delete(&mut self, key: K) -> Result<()> {
        let index = self.index_of(key)?;
        self.slots[key.slot()] = EMPTY_SLOT;
        self.entries.swap_remove(index);
        if let Some(moved) = self.entries.get(index) {
            self.slots[moved.key.slot()] = index as u16;
        }
        Ok(())
    }

    /// Reads one entry.
    ///
    /// # Errors
    /// [`PipelineError::ValueOutOfRange`] for an out-of-range key,
    /// [`PipelineError::EntryNotFound`] if the key is not installed.
    pub fn get(&self, key: K) -> Result<TableEntry<K, A>> {
        let index = self.index_of(key)?;
        Ok(self.view(&self.entries[index]))
    }

    /// Reads every entry with its direct counter (wildcard read). The order
    /// is unspecified.
    pub fn entries(&self) -> Vec<TableEntry<K, A>> {
        self.entries.iter().map(|e| self.view(e)).collect()
    }

    /// The action run on a miss.
    pub fn default_action(&self) -> A {
        self.default_action
    }

    /// Sets the action run on a miss.
    ///
    /// # Errors
    /// [`PipelineError::ValueOutOfRange`] if a parameter does not fit.
    pub fn set_default_action(&mut self, action: A) -> Result<()> {
        action.validate()?;
        self.default_action = action;
        Ok(())
    }

    /// Restores the program's default action (P4Runtime default-entry reset).
    pub fn reset_default_action(&mut self) {
        self.default_action = self.initial_default;
    }

    /// Reads the direct counter of an entry.
    ///
    /// # Errors
    /// [`PipelineError::NoDirectCounter`] if the table has none, otherwise as
    /// [`ExactTable::get`].
    pub fn direct_counter(&self, key: K) -> Result<CounterData> {
        Ok(self.counter_cell(key)?.read())
    }

    /// Overwrites the direct counter of an entry. Takes `&self`: counters are
    /// atomics, so this works under the read lock too.
    ///
    /// # Errors
    /// As [`ExactTable::direct_counter`].
    pub fn set_direct_counter(&self, key: K, data: CounterData) -> Result<()> {
        self.counter_cell(key)?.write(data);
        Ok(())
    }

    /// Removes every entry and restores the default action (pipeline
    /// re-commit).
    pub fn reset(&mut self) {
        for entry in &self.entries {
            self.slots[entry.key.slot()] = EMPTY_SLOT;
        }
        self.entries.clear();
        self.default_action = self.initial_default;
    }

    /// Looks `key` up as the data plane does: counts the direct counter on a
    /// hit and returns the action to run (the default action on a miss).
    #[inline]
    pub(crate) fn apply(&self, key: K, ingress_bytes: u64) -> A {
        match self.slots.get(key.slot()).copied() {
            Some(index) if index != EMPTY_SLOT => {
                let entry = &self.entries[usize::from(index)];
                if self.has_direct_counter {
                    entry.counter.count(ingress_bytes);
                }
                entry.action
            }
            _ => self.default_action,
        }
    }

    fn counter_cell(&self, key: K) -> Result<&CounterCell> {
        if !self.has_direct_counter {
            return Err(PipelineError::NoDirectCounter { table: self.name });
        }
        let index = self.index_of(key)?;
        Ok(&self.entries[index].counter)
    }

    fn view(&self, entry: &Entry<K, A>) -> TableEntry<K, A> {
        TableEntry {
            key: entry.key,
            action: entry.action,
            counter: self.has_direct_counter.then(|| entry.counter.read()),
        }
    }

    fn checked_slot(&self, key: K) -> Result<usize> {
        let slot = key.slot();
        if slot >> self.key_bits != 0 {
            return Err(PipelineError::ValueOutOfRange {
                what: self.key_field,
                value: slot as u64,
                bits: self.key_bits,
            });
        }
        Ok(slot)
    }

    fn index_of(&self, key: K) -> Result<usize> {
        let slot = self.checked_slot(key)?;
        match self.slots[slot] {
            EMPTY_SLOT => Err(PipelineError::EntryNotFound {
                table: self.name,
                key: format!("{key:?}"),
            }),
            index => Ok(usize::from(index)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Act(u16);

    impl TableAction for Act {
        fn validate(&self) -> Result<()> {
            if self.0 >= 512 {
                return Err(PipelineError::ValueOutOfRange {
                    what: "port",
                    value: self.0.into(),
                    bits: 9,
                });
            }
            Ok(())
        }
    }

    fn table(size: usize) -> ExactTable<u16, Act> {
        ExactTable::new("t", "ingress_port", 9, size, true, Act(0))
    }

    #[test]
    fn insert_modify_delete_and_errors() {
        let mut t = table(2);
        t.insert(1, Act(10)).unwrap();
        assert!(matches!(
            t.insert(1, Act(11)),
            Err(PipelineError::EntryExists { .. })
        ));
        t.insert(2, Act(20)).unwrap();
        assert_eq!(
            t.insert(3, Act(30)),
            Err(PipelineError::TableFull {
                table: "t",
                size: 2
            })
        );
        assert!(matches!(
            t.insert(512, Act(1)),
            Err(PipelineError::ValueOutOfRange { bits: 9, .. })
        ));
        assert!(matches!(
            t.insert(4, Act(512)),
            Err(PipelineError::ValueOutOfRange { .. })
        ));
        t.modify(1, Act(12)).unwrap();
        assert!(matches!(
            t.modify(5, Act(1)),
            Err(PipelineError::EntryNotFound { .. })
        ));
        assert_eq!(t.apply(1, 100), Act(12));
        assert_eq!(t.apply(7, 100), Act(0), "miss runs the default action");
        t.delete(1).unwrap();
        assert!(matches!(
            t.delete(1),
            Err(PipelineError::EntryNotFound { .. })
        ));
        // The moved entry is still found after swap_remove.
        assert_eq!(t.apply(2, 100), Act(20));
        assert_eq!(
            t.get(2).unwrap().counter,
            Some(CounterData {
                packets: 1,
                bytes: 100
            })
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn direct_counter_counts_hits_only_and_survives_modify() {
        let mut t = table(4);
        t.insert(3, Act(1)).unwrap();
        t.apply(3, 60);
        t.apply(4, 60);
        t.modify(3, Act(2)).unwrap();
        t.apply(3, 40);
        assert_eq!(
            t.direct_counter(3).unwrap(),
            CounterData {
                packets: 2,
                bytes: 100
            }
        );
        t.set_direct_counter(
            3,
            CounterData {
                packets: 9,
                bytes: 8,
            },
        )
        .unwrap();
        assert_eq!(
            t.entries()[0].counter,
            Some(CounterData {
                packets: 9,
                bytes: 8
            })
        );
        let uncounted: ExactTable<u16, Act> = ExactTable::new("u", "k", 9, 4, false, Act(0));
        assert_eq!(
            uncounted.direct_counter(3),
            Err(PipelineError::NoDirectCounter { table: "u" })
        );
    }

    #[test]
    fn reset_clears_entries_and_default() {
        let mut t = table(4);
        t.insert(3, Act(1)).unwrap();
        t.set_default_action(Act(5)).unwrap();
        t.reset();
        assert!(t.is_empty());
        assert_eq!(t.apply(3, 1), Act(0));
        t.insert(3, Act(2)).unwrap();
        assert_eq!(t.apply(3, 1), Act(2));
    }
}
