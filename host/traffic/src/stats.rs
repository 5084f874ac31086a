//! Small measurement helpers shared by the generators: a bounded latency
//! sample with percentiles, and durations as milliseconds for reports.

use std::time::Duration;

/// A duration as fractional milliseconds, the unit of every `*_ms` report
/// field.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Latency samples in microseconds, bounded: the first [`Self::CAPACITY`]
/// are all kept, later ones replace a pseudo-random earlier one (reservoir
/// sampling), so percentiles stay representative of a long run while memory
/// stays fixed.
#[derive(Debug, Clone)]
pub struct LatencySamples {
    samples_us: Vec<u32>,
    seen: u64,
    rng_state: u64,
}

impl Default for LatencySamples {
    fn default() -> Self {
        Self {
            samples_us: Vec::new(),
            seen: 0,
            // Any non-zero seed; the sample only needs to be unbiased, not
            // unpredictable.
            rng_state: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl LatencySamples {
    /// How many samples are kept at most (4 MiB).
    pub const CAPACITY: usize = 1 << 20;

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.seen += 1;
        if self.samples_us.len() < Self::CAPACITY {
            self.samples_us.push(us);
            return;
        }
        // xorshift64: cheap and good enough to pick a slot uniformly.
        self.rng_state ^= self.rng_state << 13;
        self.rng_state ^= self.rng_state >> 7;
        self.rng_state ^= self.rng_state << 17;
        let slot = self.rng_state % self.seen;
        if let Ok(slot) = usize::try_from(slot)
            && slot < self.samples_us.len()
        {
            self.samples_us[slot] = us;
        }
    }

    /// How many latencies were recorded (not only kept).
    pub fn count(&self) -> u64 {
        self.seen
    }

    /// The `q` quantile (0..=1, nearest rank) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.samples_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.samples_us.clone();
        sorted.sort_unstable();
        let rank = (q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64).round() as usize;
        f64::from(sorted[rank]) / 1e3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let mut samples = LatencySamples::default();
        for ms in 1..=100 {
            samples.record(Duration::from_millis(ms));
        }
        assert_eq!(samples.quantile_ms(0.5), 51.0);
        assert_eq!(samples.quantile_ms(0.99), 99.0);
        assert_eq!(samples.quantile_ms(0.0), 1.0);
        assert_eq!(LatencySamples::default().quantile_ms(0.5), 0.0);
    }
}
