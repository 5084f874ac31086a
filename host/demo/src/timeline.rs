//! What a demo run saw, point by point: the primary's and the shadow's
//! metrics, the engine's scores against their thresholds, the pair's
//! phase and the traffic. The report plots it; the summary is read off
//! it.

use serde::Serialize;

/// One observation of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Point {
    /// Since the run's start.
    pub t_ms: f64,
    /// The device carrying traffic (`primary` or `shadow`).
    pub active: String,
    /// The pair's phase (`normal`, `preparing`, ...).
    pub phase: String,
    /// The drift score, 0..1.
    pub drift: f64,
    /// The predictor's probability, once it holds its window.
    pub probability: Option<f64>,
    /// Whether the engine was still warming up.
    pub warming: bool,
    /// The fault's intensity, 0..1.
    pub fault_level: f64,
    /// The primary's CPU use, fraction of the machine.
    pub primary_cpu: f64,
    /// The primary's memory use, fraction of its limit.
    pub primary_memory: f64,
    /// The primary's conntrack table fill, 0..1.
    pub primary_conntrack_fill: f64,
    /// The primary's drops per second (interfaces).
    pub primary_drops: f64,
    /// The shadow's CPU use.
    pub shadow_cpu: f64,
    /// Probes sent so far.
    pub probes_sent: u64,
    /// Probes echoed so far.
    pub probes_received: u64,
    /// Time since the last echo.
    pub probe_gap_ms: f64,
    /// Long-lived TCP sessions still exchanging data.
    pub sessions_alive: usize,
    /// Sessions reset or failed.
    pub sessions_failed: usize,
    /// HTTP 5xx answers so far.
    pub http_5xx: u64,
}

/// Something that happened at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Since the run's start.
    pub t_ms: f64,
    /// What happened.
    pub what: String,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// The probability threshold in force.
    pub probability_threshold: f64,
    /// The drift threshold in force.
    pub drift_threshold: f64,
    /// Every observation, in order.
    pub points: Vec<Point>,
    /// Every event, in order.
    pub events: Vec<Event>,
}

impl Timeline {
    /// Records an event at `t_ms`.
    pub fn event(&mut self, t_ms: f64, what: impl Into<String>) {
        self.events.push(Event {
            t_ms,
            what: what.into(),
        });
    }
}
