//! Telemetry of many protected pairs from a few generated fault-free
//! traces (umbra-scenario): pair `p` replays trace `p % traces` from its
//! own offset, so pairs see different moments of the same day.

use std::time::Duration;

use umbra_scenario::{Device, ScenarioConfig, Trace, generate_trace};

/// The traces' tick, and so the benchmarks' clock step.
pub const TICK_MS: i64 = 500;

/// Generated traces and the pairs' positions in them.
pub struct Replay {
    traces: Vec<Trace>,
}

impl Replay {
    /// `traces` fault-free traces of three hours each, from `seed`.
    ///
    /// # Panics
    /// If the generator fails (a bug in the benchmark's settings).
    #[must_use]
    pub fn fault_free(traces: usize, seed: u64) -> Self {
        let config = ScenarioConfig {
            seed,
            faulty_traces: 0,
            fault_free_traces: traces,
            trace_duration: Duration::from_secs(3 * 3600),
            ..ScenarioConfig::default()
        };
        Self {
            traces: (0..traces)
                .map(|i| generate_trace(&config, i).expect("generate a trace"))
                .collect(),
        }
    }

    /// The trace pair `pair` replays and its index there at `tick`.
    #[must_use]
    pub fn at(&self, pair: usize, tick: usize) -> (&Trace, usize) {
        let n = self.traces.len();
        let trace = &self.traces[pair % n];
        let offset = (pair / n) * 37;
        (trace, (offset + tick) % trace.len())
    }

    /// Pair `pair`'s value of metric `metric` (its index in
    /// [`umbra_scenario::METRICS`]) on `device` at `tick`.
    #[must_use]
    pub fn value(&self, pair: usize, device: Device, metric: usize, tick: usize) -> Option<f64> {
        let (trace, at) = self.at(pair, tick);
        trace.series_at(device, metric)[at]
    }

    /// The clock at `tick`, in ms since the Unix epoch.
    #[must_use]
    pub fn now_ms(tick: usize) -> i64 {
        1_700_000_000_000 + i64::try_from(tick).unwrap_or(i64::MAX) * TICK_MS
    }
}
