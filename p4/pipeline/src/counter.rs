//! Packet-and-byte counters: the cells behind `direct_counter` and the arrays
//! behind `counter(512, CounterType.packets_and_bytes)`.
//!
//! Cells are pairs of relaxed atomics: the hot path counts with two
//! `fetch_add`s under the pipeline's read lock and never waits. A reader may
//! see the packet count of a packet before its bytes; P4Runtime gives no
//! stronger guarantee and neither does bmv2.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{PipelineError, Result};

/// A snapshot of one counter cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CounterData {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// One lock-free packets-and-bytes counter cell.
#[derive(Debug, Default)]
pub struct CounterCell {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl CounterCell {
    /// Counts one packet of `bytes` bytes.
    #[inline]
    pub fn count(&self, bytes: u64) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Reads the cell.
    pub fn read(&self) -> CounterData {
        CounterData {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Overwrites the cell (P4Runtime counter write).
    pub fn write(&self, data: CounterData) {
        self.packets.store(data.packets, Ordering::Relaxed);
        self.bytes.store(data.bytes, Ordering::Relaxed);
    }
}

impl Clone for CounterCell {
    /// Snapshots the values into a new, independent cell.
    fn clone(&self) -> Self {
        let cell = CounterCell::default();
        cell.write(self.read());
        cell
    }
}

/// An indirect counter array (`counter(size, packets_and_bytes)`), indexed by
/// the program (here: by port number).
#[derive(Debug)]
pub struct IndirectCounter {
    name: &'static str,
    cells: Box<[CounterCell]>,
}

impl IndirectCounter {
    /// Creates an array of `size` zeroed cells named `name` (for errors).
    pub fn new(name: &'static str, size: usize) -> Self {
        Self {
            name,
            cells: (0..size).map(|_| CounterCell::default()).collect(),
        }
    }

    /// The counter's name in the P4 program (e.g. `port_rx`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Number of cells.
    pub fn size(&self) -> usize {
        self.cells.len()
    }

    /// Counts one packet in cell `index`; an index outside the array is
    /// ignored, as bmv2 ignores an out-of-range `count()`.
    #[inline]
    pub fn count(&self, index: usize, bytes: u64) {
        if let Some(cell) = self.cells.get(index) {
            cell.count(bytes);
        }
    }

    /// Reads cell `index`.
    ///
    /// # Errors
    /// [`PipelineError::CounterIndexOutOfRange`] if `index` is outside the
    /// array.
    pub fn read(&self, index: u64) -> Result<CounterData> {
        Ok(self.cell(index)?.read())
    }

    /// Reads every cell, in index order.
    pub fn read_all(&self) -> Vec<CounterData> {
        self.cells.iter().map(CounterCell::read).collect()
    }

    /// Overwrites cell `index`.
    ///
    /// # Errors
    /// [`PipelineError::CounterIndexOutOfRange`] if `index` is outside the
    /// array.
    pub fn write(&self, index: u64, data: CounterData) -> Result<()> {
        self.cell(index)?.write(data);
        Ok(())
    }

    /// Zeroes every cell (pipeline re-commit).
    pub fn reset(&self) {
        for cell in self.cells.iter() {
            cell.write(CounterData::default());
        }
    }

    fn cell(&self, index: u64) -> Result<&CounterCell> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.cells.get(i))
            .ok_or(PipelineError::CounterIndexOutOfRange {
                counter: self.name,
                index,
                size: self.cells.len(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_counts_packets_and_bytes_and_can_be_overwritten() {
        let cell = CounterCell::default();
        cell.count(60);
        cell.count(1500);
        assert_eq!(
            cell.read(),
            CounterData {
                packets: 2,
                bytes: 1560
            }
        );
        cell.write(CounterData {
            packets: 7,
            bytes: 9,
        });
        assert_eq!(
            cell.clone().read(),
            CounterData {
                packets: 7,
                bytes: 9
            }
        );
    }

    #[test]
    fn indirect_counter_rejects_out_of_range_indexes() {
        let counter = IndirectCounter::new("port_rx", 512);
        counter.count(511, 64);
        counter.count(512, 64); // ignored, like bmv2
        assert_eq!(counter.read(511).unwrap().packets, 1);
        assert_eq!(
            counter.read(512),
            Err(PipelineError::CounterIndexOutOfRange {
                counter: "port_rx",
                index: 512,
                size: 512
            })
        );
        assert!(counter.write(u64::MAX, CounterData::default()).is_err());
        assert_eq!(counter.read_all().iter().map(|c| c.packets).sum::<u64>(), 1);
        counter.reset();
        assert_eq!(counter.read(511).unwrap(), CounterData::default());
    }
}
