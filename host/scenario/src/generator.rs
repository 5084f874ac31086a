//! The seeded scenario generator: faults on the primary that ramp into a hard
//! failure, and fault-free traces with diurnal load, noise, benign surges and
//! missing samples.
//!
//! Reproducibility: trace `i` of a config is drawn from a ChaCha8 stream keyed
//! by `(seed, i)` alone (never from a thread or OS RNG), so the same config
//! gives byte-identical traces, and any one trace can be regenerated on its own
//! ([`generate_trace`]) — which is how 100 device-days of fault-free data are
//! evaluated without holding them in memory. (The model uses `exp`, `ln`,
//! `powf` and `cos` from the platform's maths library; values are rounded to
//! a few decimals before they are stored, so a last-bit difference between
//! two platforms' libraries would only rarely show.)
//!
//! # The simulated device pair
//!
//! Each trace draws its own device: link capacity (100 Mbit/s to 10 Gbit/s),
//! peak utilisation, packet size, idle and peak CPU, memory baseline, session
//! count and conntrack table size, HTTP request rate, health-check latency, so
//! absolute levels differ between traces. A load curve drives everything:
//! a diurnal shape (trough around 03:00, peak around 15:00 local time, quieter
//! weekends) times a slow random walk times benign surges. Couplings on the
//! primary: throughput and packet rates follow load; CPU follows utilisation;
//! sessions follow load with a lag and conntrack fill follows sessions; memory
//! follows sessions; health latency grows with CPU queueing, memory pressure,
//! packet loss and database timeouts; 5xx follow CPU saturation and database
//! outages; drops follow loss and overload; TCP resets follow churn, loss and
//! a full conntrack table. The shadow receives the primary's mirrored traffic
//! and replicated sessions and answers its own health checks; it never
//! develops a fault. Surges hit both devices, because the shadow sees the
//! mirrored traffic, so a predictor can tell load from illness.
//!
//! # Faults
//!
//! A fault starts at a random tick and ramps for a duration drawn
//! log-uniformly from `[ramp_min, ramp_max]`, with a per-trace curvature (from
//! linear to sharply accelerating). Every fault makes health latency rise
//! before the failure:
//!
//! - `cpu-exhaustion`: CPU climbs to saturation; past 90 % latency
//!   (queueing), drops and 5xx follow.
//! - `memory-leak`: memory climbs to 100 %; past 85 % latency and CPU rise
//!   (swapping, reclaim).
//! - `packet-loss`: netem-style loss climbs to 70 %: drops, retransmission
//!   latency, TCP resets and timeouts (5xx) rise, tx and mirrored traffic fall.
//! - `conntrack-exhaustion`: sessions leak until the table is full and CPU
//!   rises; past 97 % new connections are dropped, so drops, resets, 5xx and
//!   health latency (SYN retries) jump.
//! - `http-5xx-ramp`: the 5xx share climbs to 95 % and latency rises (slow
//!   backends).
//! - `db-connection-failure`: database checks fail in outages that come more
//!   often and last longer, with 5xx and latency jumps during each; over the
//!   last tenth of the ramp the database is gone for good.
//!
//! At the end of the ramp — the failure
//! onset — the primary stops: it forwards nothing (tx 0, every received packet
//! dropped), health checks time out (missing latency), HTTP and database
//! checks go to 0, and its own exporter either stops (missing samples) or
//! freezes (the last values repeat). The shadow then stops receiving mirrored
//! traffic.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::trace::{Columns, METRIC_COUNT, m};
use crate::{Error, Result, ScenarioKind, Trace, TraceMeta};

/// Monday 2025-01-06 00:00:00 UTC: traces start within the week after it, so
/// time-of-day and time-of-week baselines see every bucket.
const EPOCH_MS: i64 = 1_736_121_600_000;
const DAY_MS: f64 = 86_400_000.0;
const WEEK_MS: i64 = 7 * 86_400_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioConfig {
    /// Seed of the whole run; trace `i` depends only on `(seed, i)`.
    pub seed: u64,
    /// Milliseconds between two ticks.
    pub tick_ms: i64,
    /// Number of faulty traces (indices `0..faulty_traces`).
    pub faulty_traces: usize,
    /// Number of fault-free traces (the indices after the faulty ones).
    pub fault_free_traces: usize,
    /// Length of every trace.
    pub trace_duration: Duration,
    /// Fault kinds the faulty traces cycle through (trace `i` gets
    /// `fault_kinds[i % len]`), so kinds are balanced.
    pub fault_kinds: Vec<ScenarioKind>,
    /// Shortest fault ramp (fault start to failure onset).
    pub ramp_min: Duration,
    /// Longest fault ramp.
    pub ramp_max: Duration,
    /// How long a faulty trace goes on after the failure onset (at least).
    pub post_failure: Duration,
    /// Shortest history before a fault starts.
    pub min_history: Duration,
    /// Per device and tick, the chance that a gap of missing samples (1 to
    /// 10 ticks) starts; half as often again a single metric is missing.
    pub missing_rate: f64,
    /// Mean number of benign traffic surges per hour (they hit both devices).
    pub surges_per_hour: f64,
    /// Mean number of short benign CPU blips on the primary per hour (a
    /// control-plane job: tens of seconds, never a failure).
    pub blips_per_hour: f64,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            tick_ms: 500,
            faulty_traces: 60,
            fault_free_traces: 20,
            trace_duration: Duration::from_secs(3600),
            fault_kinds: ScenarioKind::FAULTS.to_vec(),
            ramp_min: Duration::from_secs(20),
            ramp_max: Duration::from_secs(600),
            post_failure: Duration::from_secs(60),
            min_history: Duration::from_secs(300),
            missing_rate: 0.001,
            surges_per_hour: 1.0,
            blips_per_hour: 0.5,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ScenarioConfig {
    /// Checks the config, listing every problem.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] with every problem found.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.tick_ms <= 0 {
            problems.push(format!("tick_ms must be positive, got {}", self.tick_ms));
        }
        if self.trace_duration.is_zero() || ms(self.trace_duration) < self.tick_ms.max(1) {
            problems.push("trace_duration must hold at least one tick".to_owned());
        }
        if self.faulty_traces > 0 {
            if self.fault_kinds.is_empty() {
                problems.push("fault_kinds is empty but faulty traces are asked for".to_owned());
            }
            if self.fault_kinds.contains(&ScenarioKind::FaultFree) {
                problems.push("fault_kinds must not contain fault-free".to_owned());
            }
            if self.ramp_min.is_zero() || self.ramp_min > self.ramp_max {
                problems.push(format!(
                    "need 0 < ramp_min <= ramp_max, got {:?} and {:?}",
                    self.ramp_min, self.ramp_max
                ));
            }
            let needed = self.min_history + self.ramp_max + self.post_failure;
            if self.trace_duration < needed {
                problems.push(format!(
                    "trace_duration {:?} is shorter than min_history + ramp_max + post_failure = {needed:?}",
                    self.trace_duration
                ));
            }
            if self.post_failure < Duration::from_millis(self.tick_ms.max(0) as u64) {
                problems.push("post_failure must hold at least one tick".to_owned());
            }
        }
        if !(0.0..0.5).contains(&self.missing_rate) {
            problems.push(format!(
                "missing_rate must be in [0, 0.5), got {}",
                self.missing_rate
            ));
        }
        for (name, v) in [
            ("surges_per_hour", self.surges_per_hour),
            ("blips_per_hour", self.blips_per_hour),
        ] {
            if !(v.is_finite() && (0.0..=60.0).contains(&v)) {
                problems.push(format!("{name} must be in [0, 60], got {v}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig { problems })
        }
    }

    /// Total number of traces.
    #[must_use]
    pub fn trace_count(&self) -> usize {
        self.faulty_traces + self.fault_free_traces
    }

    /// The kind of trace `index`.
    #[must_use]
    pub fn kind_of(&self, index: usize) -> ScenarioKind {
        if index < self.faulty_traces && !self.fault_kinds.is_empty() {
            self.fault_kinds[index % self.fault_kinds.len()]
        } else {
            ScenarioKind::FaultFree
        }
    }

    /// The name of trace `index`: `fault-0007-memory-leak` or `clean-0003`.
    #[must_use]
    pub fn trace_name(&self, index: usize) -> String {
        if index < self.faulty_traces {
            format!("fault-{index:04}-{}", self.kind_of(index))
        } else {
            format!("clean-{:04}", index - self.faulty_traces)
        }
    }
}

/// Generates every trace of `config`: the faulty ones, then the fault-free
/// ones. Holds them all in memory; for large runs use [`generate_trace`].
///
/// # Errors
///
/// [`Error::InvalidConfig`] if the config is invalid.
pub fn generate(config: &ScenarioConfig) -> Result<Vec<Trace>> {
    config.validate()?;
    (0..config.trace_count())
        .map(|i| generate_trace(config, i))
        .collect()
}

/// Generates trace `index` of `config` alone (the same trace [`generate`]
/// puts at that position).
///
/// # Errors
///
/// [`Error::InvalidConfig`] if the config is invalid or `index` is out of
/// range.
pub fn generate_trace(config: &ScenarioConfig, index: usize) -> Result<Trace> {
    config.validate()?;
    if index >= config.trace_count() {
        return Err(Error::InvalidConfig {
            problems: vec![format!(
                "trace index {index} out of range: the config has {} traces",
                config.trace_count()
            )],
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(index as u64);
    Ok(Simulation::new(config, index, &mut rng).run(&mut rng))
}

/// A uniform draw in `[lo, hi)`.
fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// A log-uniform draw in `[lo, hi)`.
fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    uniform(rng, lo.ln(), hi.ln()).exp()
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// Rounds to a multiple of `1 / scale` (`scale` 1e4: four decimals), so the
/// CSV stays short and reading it back gives the very same values.
fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

/// First-order autoregressive noise with unit stationary variance and a time
/// constant in ticks.
#[derive(Debug, Clone, Copy)]
struct Ar1 {
    phi: f64,
    innovation: f64,
    x: f64,
}

impl Ar1 {
    fn new(tau_ticks: f64, rng: &mut ChaCha8Rng) -> Self {
        let phi = (-1.0 / tau_ticks.max(1e-3)).exp();
        Self {
            phi,
            innovation: (1.0 - phi * phi).sqrt(),
            x: normal(rng),
        }
    }

    fn step(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        self.x = self.phi * self.x + self.innovation * normal(rng);
        self.x
    }
}

/// A bump in time: rises, holds, decays (ticks), with an amplitude.
#[derive(Debug, Clone, Copy)]
struct Bump {
    start: f64,
    rise: f64,
    hold: f64,
    decay: f64,
    amplitude: f64,
}

impl Bump {
    fn at(&self, tick: f64) -> f64 {
        let t = tick - self.start;
        if t <= 0.0 {
            0.0
        } else if t < self.rise {
            self.amplitude * t / self.rise
        } else if t < self.rise + self.hold {
            self.amplitude
        } else if t < self.rise + self.hold + self.decay {
            self.amplitude * (1.0 - (t - self.rise - self.hold) / self.decay)
        } else {
            0.0
        }
    }

    fn end(&self) -> f64 {
        self.start + self.rise + self.hold + self.decay
    }
}

/// How far above its daily peak the slow random walk of the load can take
/// the sessions (the walk's ±8 % steps, with room for a long excursion).
const SESSIONS_HEADROOM: f64 = 1.4;
/// The highest conntrack fill benign load may reach on the primary (the
/// shadow's table is 0.9-1.2 times the primary's, so at most ~0.9 there).
const BENIGN_FILL: f64 = 0.8;

/// The highest load factor `1 + Σ surges` over the trace's `n` ticks.
fn peak_surge(surges: &[Bump], n: usize) -> f64 {
    let mut next = 0;
    (0..n)
        .map(|tick| bump_sum(surges, &mut next, tick as f64))
        .fold(0.0, f64::max)
        + 1.0
}

/// Draws a Poisson process of bumps over `n` ticks.
fn bumps(
    rng: &mut ChaCha8Rng,
    n: usize,
    per_tick: f64,
    shape: impl Fn(&mut ChaCha8Rng) -> (f64, f64, f64, f64),
) -> Vec<Bump> {
    let mut out = Vec::new();
    if per_tick <= 0.0 {
        return out;
    }
    let mut t = 0.0;
    loop {
        t += -(1.0 - rng.random::<f64>()).ln() / per_tick;
        if t >= n as f64 {
            return out;
        }
        let (rise, hold, decay, amplitude) = shape(rng);
        out.push(Bump {
            start: t,
            rise,
            hold,
            decay,
            amplitude,
        });
    }
}

/// The sum of the bumps active at `tick`; drops bumps that are over (they are
/// sorted by start).
fn bump_sum(bumps: &[Bump], next: &mut usize, tick: f64) -> f64 {
    while *next < bumps.len() && bumps[*next].end() < tick {
        *next += 1;
    }
    bumps[*next..]
        .iter()
        .take_while(|b| b.start < tick)
        .map(|b| b.at(tick))
        .sum()
}

/// How the primary's own exporter behaves once the device has failed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DeadExporter {
    /// Samples stop: missing.
    Silent,
    /// The exporter hangs and repeats its last values.
    Frozen,
}

/// A fault in progress on the primary.
#[derive(Debug, Clone, Copy)]
struct Fault {
    kind: ScenarioKind,
    start_tick: usize,
    onset_tick: usize,
    /// Curvature of the ramp: progress is `p^curvature`.
    curvature: f64,
    exporter: DeadExporter,
}

impl Fault {
    /// Progress of the ramp in `[0, 1]` at `tick`: 0 up to the start, 1 at
    /// the onset.
    fn progress(&self, tick: usize) -> f64 {
        if tick < self.start_tick {
            return 0.0;
        }
        let p = (tick - self.start_tick) as f64 / (self.onset_tick - self.start_tick).max(1) as f64;
        p.min(1.0)
    }

    /// Severity in `[0, 1]` at `tick`: the progress bent by the curvature.
    fn severity(&self, tick: usize) -> f64 {
        self.progress(tick).powf(self.curvature)
    }
}

/// The per-trace device pair: its parameters, noise state and fault.
struct Simulation {
    meta: TraceMeta,
    n: usize,
    tick_ms: i64,
    start_ms: i64,
    /// Hours added to UTC to get the pair's local time.
    tz_hours: f64,
    capacity_bps: f64,
    peak_util: f64,
    packet_bytes: f64,
    cpu_idle: f64,
    cpu_per_util: f64,
    memory_base: f64,
    memory_per_fill: f64,
    sessions_peak: f64,
    conntrack_max: f64,
    http_rps_peak: f64,
    base_error: f64,
    latency_base_ms: f64,
    resets_per_session: f64,
    mirror_share: f64,
    flow_share: f64,
    shadow_cpu_idle: f64,
    shadow_cpu_per_util: f64,
    shadow_memory_base: f64,
    shadow_latency_ms: f64,
    shadow_probe_rps: f64,
    shadow_conntrack_max: f64,
    missing_rate: f64,
    surges: Vec<Bump>,
    blips: Vec<Bump>,
    fault: Option<Fault>,
}

impl Simulation {
    fn new(config: &ScenarioConfig, index: usize, rng: &mut ChaCha8Rng) -> Self {
        let tick_ms = config.tick_ms;
        let n = usize::try_from((ms(config.trace_duration) / tick_ms).max(1)).unwrap_or(1);
        let ticks_per_hour = 3_600_000.0 / tick_ms as f64;
        let start_ms = EPOCH_MS + (rng.random_range(0..WEEK_MS) / tick_ms) * tick_ms;
        let kind = config.kind_of(index);

        let peak_util = uniform(rng, 0.25, 0.6);
        let cpu_idle = uniform(rng, 0.03, 0.1);
        let cpu_peak = uniform(rng, 0.3, 0.6);
        let sessions_peak = log_uniform(rng, 2_000.0, 200_000.0);
        let surges = bumps(rng, n, config.surges_per_hour / ticks_per_hour, |rng| {
            let secs =
                |rng: &mut ChaCha8Rng, lo, hi| log_uniform(rng, lo, hi) * 1000.0 / tick_ms as f64;
            (
                secs(rng, 5.0, 60.0),
                secs(rng, 30.0, 600.0),
                secs(rng, 30.0, 300.0),
                uniform(rng, 0.2, 1.2),
            )
        });
        let blips = bumps(rng, n, config.blips_per_hour / ticks_per_hour, |rng| {
            let secs =
                |rng: &mut ChaCha8Rng, lo, hi| uniform(rng, lo, hi) * 1000.0 / tick_ms as f64;
            (
                secs(rng, 1.0, 5.0),
                secs(rng, 5.0, 40.0),
                secs(rng, 2.0, 10.0),
                uniform(rng, 0.1, 0.35),
            )
        });

        let fault = kind.is_fault().then(|| {
            let ramp_ms = log_uniform(
                rng,
                ms(config.ramp_min) as f64,
                ms(config.ramp_max) as f64 + 1.0,
            )
            .min(ms(config.ramp_max) as f64);
            let ramp_ticks = ((ramp_ms / tick_ms as f64).round() as usize).max(1);
            let history = usize::try_from(ms(config.min_history) / tick_ms).unwrap_or(0);
            let post = usize::try_from(ms(config.post_failure) / tick_ms)
                .unwrap_or(1)
                .max(1);
            // validate() guarantees history + ramp_max + post fits; rounding
            // can still eat a tick, hence the saturating arithmetic.
            let latest_start = n.saturating_sub(ramp_ticks + post).max(history);
            let start_tick = rng.random_range(history..=latest_start);
            let onset_tick = (start_tick + ramp_ticks).min(n - 1);
            Fault {
                kind,
                start_tick,
                onset_tick,
                curvature: log_uniform(rng, 0.7, 3.0),
                exporter: if rng.random::<f64>() < 0.7 {
                    DeadExporter::Silent
                } else {
                    DeadExporter::Frozen
                },
            }
        });

        // The table holds 20-50 % of the daily peak's sessions, and is never
        // smaller than what the trace's own worst surge needs: benign load
        // stays within capacity. A full table drops new connections and
        // turns requests into 5xx, a failure, which a fault-free trace must
        // not contain (nor teach a model to ignore).
        let conntrack_max = (sessions_peak / uniform(rng, 0.2, 0.5))
            .max(sessions_peak * SESSIONS_HEADROOM * peak_surge(&surges, n) / BENIGN_FILL);
        let at = |tick: usize| start_ms + tick as i64 * tick_ms;
        let meta = TraceMeta {
            name: config.trace_name(index),
            seed: config.seed,
            kind,
            tick_ms,
            fault_start_ms: fault.map(|f| at(f.start_tick)),
            failure_onset_ms: fault.map(|f| at(f.onset_tick)),
            device_days: n as f64 * tick_ms as f64 / DAY_MS,
        };
        Self {
            meta,
            n,
            tick_ms,
            start_ms,
            tz_hours: rng.random_range(-8..=9) as f64,
            capacity_bps: log_uniform(rng, 1e8, 1e10),
            peak_util,
            packet_bytes: uniform(rng, 400.0, 1100.0),
            cpu_idle,
            cpu_per_util: (cpu_peak - cpu_idle) / peak_util,
            memory_base: uniform(rng, 0.2, 0.5),
            memory_per_fill: uniform(rng, 0.05, 0.2),
            sessions_peak,
            conntrack_max,
            http_rps_peak: log_uniform(rng, 50.0, 2_000.0),
            base_error: log_uniform(rng, 0.0005, 0.01),
            latency_base_ms: log_uniform(rng, 0.5, 5.0),
            resets_per_session: log_uniform(rng, 0.0005, 0.005),
            mirror_share: uniform(rng, 0.05, 0.3),
            flow_share: uniform(rng, 0.3, 0.9),
            shadow_cpu_idle: uniform(rng, 0.02, 0.08),
            shadow_cpu_per_util: uniform(rng, 0.1, 0.4),
            shadow_memory_base: uniform(rng, 0.15, 0.4),
            shadow_latency_ms: log_uniform(rng, 0.3, 3.0),
            shadow_probe_rps: uniform(rng, 1.0, 10.0),
            shadow_conntrack_max: conntrack_max * uniform(rng, 0.9, 1.2),
            missing_rate: config.missing_rate,
            surges,
            blips,
            fault,
        }
    }

    /// The diurnal and weekly load shape at `t_ms`, in about `[0.3, 1]`.
    fn diurnal(&self, t_ms: i64) -> f64 {
        let local_days = (t_ms - EPOCH_MS) as f64 / DAY_MS + self.tz_hours / 24.0;
        let hour = local_days.rem_euclid(1.0) * 24.0;
        let weekday = local_days.rem_euclid(7.0).floor();
        let daily = (0.5 - 0.5 * (std::f64::consts::TAU * (hour - 3.0) / 24.0).cos()).powf(1.3);
        let weekend = if weekday >= 5.0 { 0.75 } else { 1.0 };
        (0.3 + 0.7 * daily) * weekend
    }

    fn run(self, rng: &mut ChaCha8Rng) -> Trace {
        use m::*;
        let n = self.n;
        let ticks_per_sec = 1000.0 / self.tick_ms as f64;
        let mut p: Columns = std::array::from_fn(|_| Vec::with_capacity(n));
        let mut s: Columns = std::array::from_fn(|_| Vec::with_capacity(n));
        let timestamps: Vec<i64> = (0..n)
            .map(|i| self.start_ms + i as i64 * self.tick_ms)
            .collect();

        // Slow wander of the load (20 min), sessions' lag behind load (1 min).
        let mut wander = Ar1::new(1200.0 * ticks_per_sec, rng);
        // Exponential smoothing weights per tick, stable for any tick length.
        let smoothing = |tau_secs: f64| 1.0 - (-1.0 / (tau_secs * ticks_per_sec)).exp();
        let session_alpha = smoothing(60.0);
        let replication_alpha = smoothing(2.0);
        let forget_alpha = smoothing(300.0);
        // Fast per-metric noise, a few seconds of memory.
        let mut noise_p: [Ar1; METRIC_COUNT] =
            std::array::from_fn(|_| Ar1::new(4.0 * ticks_per_sec, rng));
        let mut noise_s: [Ar1; METRIC_COUNT] =
            std::array::from_fn(|_| Ar1::new(4.0 * ticks_per_sec, rng));
        let mut surge_next = 0;
        let mut blip_next = 0;

        let mut sessions_load = self.diurnal(self.start_ms);
        let mut shadow_sessions = sessions_load * self.sessions_peak;
        let mut leaked_sessions: f64 = 0.0;
        let mut db_down = false;
        let mut last_primary = [None; METRIC_COUNT];
        let mut gap = [0_u32; 2];

        for (tick, &t_ms) in timestamps.iter().enumerate() {
            let tick_f = tick as f64;
            let surge = bump_sum(&self.surges, &mut surge_next, tick_f);
            let blip = bump_sum(&self.blips, &mut blip_next, tick_f);
            let load =
                self.diurnal(t_ms) * (1.0 + 0.08 * wander.step(rng)).max(0.2) * (1.0 + surge);
            sessions_load += session_alpha * (load - sessions_load);
            let mut np = [0.0; METRIC_COUNT];
            let mut ns = [0.0; METRIC_COUNT];
            for k in 0..METRIC_COUNT {
                np[k] = noise_p[k].step(rng);
                ns[k] = noise_s[k].step(rng);
            }
            let jitter = |z: f64, sd: f64| (1.0 + sd * z).max(0.0);

            let fault = self.fault;
            let kind = fault.map_or(ScenarioKind::FaultFree, |f| f.kind);
            let sev = fault.map_or(0.0, |f| f.severity(tick));
            let dead = fault.is_some_and(|f| tick >= f.onset_tick);
            let sev_of = |k: ScenarioKind| if kind == k { sev } else { 0.0 };

            // --- Primary, healthy part driven by load. ---
            let util = (self.peak_util * load).min(0.97);
            let offered_bps = self.capacity_bps * util * jitter(np[RX_BPS], 0.02);
            let offered_pps = offered_bps / (8.0 * self.packet_bytes) * jitter(np[RX_PPS], 0.02);

            let memory_leak = sev_of(ScenarioKind::MemoryLeak);
            let leak_target = sev_of(ScenarioKind::ConntrackExhaustion) * self.conntrack_max * 1.1;
            leaked_sessions = leaked_sessions.max(leak_target);
            let sessions =
                self.sessions_peak * sessions_load * jitter(np[SESSIONS], 0.01) + leaked_sessions;
            let fill = (sessions / self.conntrack_max).min(1.0);
            let table_full = ((fill - 0.97) / 0.03).clamp(0.0, 1.0);

            let memory_base = self.memory_base + self.memory_per_fill * fill + 0.005 * np[MEMORY];
            let memory = (memory_base + memory_leak * (1.0 - memory_base + 0.02)).clamp(0.0, 1.0);
            let memory_pressure = ((memory - 0.85) / 0.15).clamp(0.0, 1.0);

            let cpu_healthy = self.cpu_idle + self.cpu_per_util * util + blip;
            let cpu_fault = sev_of(ScenarioKind::CpuExhaustion) * (1.05 - cpu_healthy).max(0.0)
                + 0.3 * memory_pressure
                + 0.2 * sev_of(ScenarioKind::ConntrackExhaustion);
            let cpu = (cpu_healthy + cpu_fault + 0.015 * np[CPU]).clamp(0.0, 1.0);
            let saturation = ((cpu - 0.9) / 0.1).clamp(0.0, 1.0);

            let netem_loss = 0.7 * sev_of(ScenarioKind::PacketLoss);
            let loss =
                (1e-5 + netem_loss + 0.15 * saturation * saturation + 0.05 * table_full).min(1.0);

            // Database health: outages start more often and last longer as
            // the fault grows.
            let db_sev = sev_of(ScenarioKind::DbConnectionFailure);
            // Over the last tenth of the ramp the database is gone for good;
            // the service dies at the onset.
            let db_gone = kind == ScenarioKind::DbConnectionFailure
                && fault.is_some_and(|f| f.progress(tick) >= 0.9);
            let flip: f64 = rng.random();
            db_down = if db_gone {
                true
            } else if db_down {
                flip >= 0.3 * (1.0 - db_sev).powi(2) + 0.01
            } else {
                flip < 0.05 * db_sev + 0.4 * db_sev * db_sev
            };
            let db_down_now = db_down;

            let requests = self.http_rps_peak * load * jitter(np[HTTP_2XX], 0.03);
            let error_share = (self.base_error
                + 0.3 * saturation * saturation
                + 0.95 * sev_of(ScenarioKind::Http5xxRamp)
                + if db_down_now { 0.6 } else { 0.0 }
                + 0.5 * table_full
                + 0.3 * netem_loss)
                .min(1.0);

            let queueing = 1.0 / (1.0 - cpu.min(0.97)) - 1.0;
            let latency = self.latency_base_ms
                * (1.0 + 0.5 * queueing)
                * (1.0 + 8.0 * memory_pressure * memory_pressure)
                * (1.0 + 40.0 * netem_loss)
                * (1.0 + 20.0 * sev_of(ScenarioKind::Http5xxRamp).powi(2))
                * (1.0 + 300.0 * table_full * table_full)
                // Failing database connections: retries and pool waits.
                * (1.0 + 6.0 * db_sev * db_sev)
                * (0.08 * np[HEALTH_LATENCY_MS]).exp()
                + if db_down_now {
                    uniform(rng, 50.0, 500.0)
                } else {
                    0.0
                };

            let churn = sessions.min(self.conntrack_max) * self.resets_per_session;
            let resets = churn * jitter(np[TCP_RESETS], 0.1)
                + sessions * netem_loss * 0.01
                + table_full * self.sessions_peak * 0.02;

            let mut row = [None; METRIC_COUNT];
            if dead {
                // The device has stopped: the switch still sees traffic
                // arriving, nothing leaves, checks fail.
                let exporter = fault.map_or(DeadExporter::Silent, |f| f.exporter);
                for k in [
                    CPU,
                    MEMORY,
                    SESSIONS,
                    CONNTRACK_FILL,
                    MIRROR_FLOWS,
                    TCP_RESETS,
                ] {
                    row[k] = match exporter {
                        DeadExporter::Silent => None,
                        DeadExporter::Frozen => last_primary[k],
                    };
                }
                row[RX_BPS] = Some(round(offered_bps, 1.0));
                row[RX_PPS] = Some(round(offered_pps, 10.0));
                row[TX_BPS] = Some(0.0);
                row[TX_PPS] = Some(0.0);
                row[DROPS] = Some(round(offered_pps, 100.0));
                row[HEALTH_LATENCY_MS] = None;
                row[HTTP_2XX] = Some(0.0);
                row[HTTP_5XX] = Some(0.0);
                row[DB_UP] = Some(0.0);
                row[MIRROR_PPS] = Some(0.0);
            } else {
                let drops = offered_pps * loss;
                row[CPU] = Some(round(cpu, 1e4));
                row[MEMORY] = Some(round(memory, 1e4));
                row[RX_BPS] = Some(round(offered_bps, 1.0));
                row[RX_PPS] = Some(round(offered_pps, 10.0));
                row[TX_BPS] = Some(round(offered_bps * (1.0 - loss), 1.0));
                row[TX_PPS] = Some(round(offered_pps - drops, 10.0));
                row[DROPS] = Some(round(drops, 100.0));
                row[SESSIONS] = Some(sessions.min(self.conntrack_max).round());
                row[CONNTRACK_FILL] = Some(round(fill, 1e4));
                row[HEALTH_LATENCY_MS] = Some(round(latency, 1e3));
                row[HTTP_2XX] = Some(round(requests * (1.0 - error_share), 100.0));
                row[HTTP_5XX] = Some(round(
                    requests * error_share * jitter(np[HTTP_5XX], 0.1),
                    100.0,
                ));
                row[DB_UP] = Some(if db_down_now { 0.0 } else { 1.0 });
                row[MIRROR_PPS] = Some(round(offered_pps * (1.0 - loss) * self.mirror_share, 10.0));
                row[MIRROR_FLOWS] = Some(
                    (sessions.min(self.conntrack_max)
                        * self.flow_share
                        * jitter(np[MIRROR_FLOWS], 0.01))
                    .round(),
                );
                row[TCP_RESETS] = Some(round(resets, 100.0));
                last_primary = row;
            }

            // --- Shadow: mirrored traffic, replicated sessions, own checks. ---
            let mirrored_pps = row[MIRROR_PPS].unwrap_or(0.0);
            let mirrored_bps = mirrored_pps * 8.0 * self.packet_bytes * jitter(ns[RX_BPS], 0.02);
            let mirror_util = mirrored_bps / self.capacity_bps;
            // Only established sessions are replicated: the shadow follows the
            // healthy session count and forgets sessions slowly once the
            // primary is gone.
            let replicated_target = if dead {
                0.0
            } else {
                self.sessions_peak * sessions_load
            };
            let alpha = if dead {
                forget_alpha
            } else {
                replication_alpha
            };
            shadow_sessions += alpha * (replicated_target - shadow_sessions);
            let shadow_sessions_now =
                (shadow_sessions * jitter(ns[SESSIONS], 0.01)).min(self.shadow_conntrack_max);
            let shadow_fill = shadow_sessions_now / self.shadow_conntrack_max;
            let shadow_cpu = (self.shadow_cpu_idle
                + self.shadow_cpu_per_util * mirror_util * 10.0
                + 0.01 * ns[CPU])
                .clamp(0.0, 1.0);
            let probes = self.shadow_probe_rps * jitter(ns[HTTP_2XX], 0.05);
            let mut shadow_row = [None; METRIC_COUNT];
            shadow_row[CPU] = Some(round(shadow_cpu, 1e4));
            shadow_row[MEMORY] = Some(round(
                (self.shadow_memory_base + self.memory_per_fill * shadow_fill + 0.005 * ns[MEMORY])
                    .clamp(0.0, 1.0),
                1e4,
            ));
            shadow_row[RX_BPS] = Some(round(mirrored_bps, 1.0));
            shadow_row[RX_PPS] = Some(round(mirrored_pps * jitter(ns[RX_PPS], 0.005), 10.0));
            shadow_row[TX_BPS] = Some(round(probes * 8.0 * 300.0, 1.0));
            shadow_row[TX_PPS] = Some(round(probes * 2.0, 10.0));
            shadow_row[DROPS] = Some(round(mirrored_pps * 1e-5 * jitter(ns[DROPS], 0.5), 100.0));
            shadow_row[SESSIONS] = Some(shadow_sessions_now.round());
            shadow_row[CONNTRACK_FILL] = Some(round(shadow_fill, 1e4));
            shadow_row[HEALTH_LATENCY_MS] = Some(round(
                self.shadow_latency_ms
                    * (1.0 + 0.5 * shadow_cpu)
                    * (0.08 * ns[HEALTH_LATENCY_MS]).exp(),
                1e3,
            ));
            shadow_row[HTTP_2XX] = Some(round(probes, 100.0));
            shadow_row[HTTP_5XX] = Some(0.0);
            shadow_row[DB_UP] = Some(1.0);
            shadow_row[MIRROR_PPS] = Some(round(mirrored_pps, 10.0));
            shadow_row[MIRROR_FLOWS] = Some(if dead {
                0.0
            } else {
                row[MIRROR_FLOWS].unwrap_or(0.0)
            });
            shadow_row[TCP_RESETS] = Some(round(
                shadow_sessions_now * self.resets_per_session * 0.1 * jitter(ns[TCP_RESETS], 0.2),
                100.0,
            ));

            // --- Missing samples: scrape gaps and single lost metrics. ---
            for (d, row) in [&mut row, &mut shadow_row].into_iter().enumerate() {
                if gap[d] > 0 {
                    gap[d] -= 1;
                    *row = [None; METRIC_COUNT];
                    continue;
                }
                let draw: f64 = rng.random();
                if draw < self.missing_rate {
                    gap[d] = rng.random_range(0..10);
                    *row = [None; METRIC_COUNT];
                } else if draw < 1.5 * self.missing_rate {
                    row[rng.random_range(0..METRIC_COUNT)] = None;
                }
            }

            for k in 0..METRIC_COUNT {
                p[k].push(row[k]);
                s[k].push(shadow_row[k]);
            }
        }
        Trace::from_parts(self.meta, timestamps, [p, s])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device::{Primary, Shadow};

    fn small(faulty: usize, fault_free: usize) -> ScenarioConfig {
        ScenarioConfig {
            faulty_traces: faulty,
            fault_free_traces: fault_free,
            trace_duration: Duration::from_secs(20 * 60),
            ..ScenarioConfig::default()
        }
    }

    fn present(s: &[Option<f64>]) -> Vec<f64> {
        s.iter().flatten().copied().collect()
    }

    fn median(mut v: Vec<f64>) -> f64 {
        assert!(!v.is_empty());
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    #[test]
    fn config_problems_are_all_listed() {
        let bad = ScenarioConfig {
            tick_ms: 0,
            fault_kinds: vec![ScenarioKind::FaultFree],
            ramp_min: Duration::from_secs(100),
            ramp_max: Duration::from_secs(10),
            missing_rate: 0.9,
            surges_per_hour: -1.0,
            ..ScenarioConfig::default()
        };
        let Err(Error::InvalidConfig { problems }) = bad.validate() else {
            panic!("expected InvalidConfig");
        };
        let all = problems.join("\n");
        for needle in [
            "tick_ms",
            "fault-free",
            "ramp_min",
            "missing_rate",
            "surges_per_hour",
        ] {
            assert!(all.contains(needle), "{needle} missing from {all}");
        }
        let short = ScenarioConfig {
            trace_duration: Duration::from_secs(300),
            ..ScenarioConfig::default()
        };
        assert!(
            short
                .validate()
                .unwrap_err()
                .to_string()
                .contains("shorter than")
        );
        assert!(ScenarioConfig::default().validate().is_ok());
        assert!(
            generate_trace(&small(1, 1), 2).is_err(),
            "index out of range"
        );
    }

    #[test]
    fn names_and_kinds_cycle_through_the_fault_kinds() {
        let c = small(7, 2);
        assert_eq!(c.trace_name(0), "fault-0000-cpu-exhaustion");
        assert_eq!(c.trace_name(6), "fault-0006-cpu-exhaustion");
        assert_eq!(c.trace_name(5), "fault-0005-db-connection-failure");
        assert_eq!(c.trace_name(8), "clean-0001");
        assert_eq!(c.kind_of(3), ScenarioKind::ConntrackExhaustion);
        assert_eq!(c.kind_of(7), ScenarioKind::FaultFree);
        let traces = generate(&small(2, 1)).unwrap();
        let kinds: Vec<ScenarioKind> = traces.iter().map(|t| t.meta().kind).collect();
        assert_eq!(
            kinds,
            [
                ScenarioKind::CpuExhaustion,
                ScenarioKind::MemoryLeak,
                ScenarioKind::FaultFree
            ]
        );
    }

    #[test]
    fn one_trace_alone_equals_the_same_trace_in_the_batch() {
        let c = small(3, 2);
        let all = generate(&c).unwrap();
        assert_eq!(generate_trace(&c, 4).unwrap(), all[4]);
        assert_eq!(generate_trace(&c, 1).unwrap(), all[1]);
        assert_ne!(all[3].series(Primary, "cpu"), all[4].series(Primary, "cpu"));
        let reseeded = ScenarioConfig { seed: 1, ..c };
        assert_ne!(generate_trace(&reseeded, 4).unwrap(), all[4]);
    }

    /// Every fault kind, with several draws of ramp speed and device.
    fn faulty_traces() -> Vec<Trace> {
        let c = ScenarioConfig {
            seed: 11,
            faulty_traces: 6 * 4,
            fault_free_traces: 0,
            ..small(0, 0)
        };
        generate(&c).unwrap()
    }

    #[test]
    fn every_fault_reaches_a_hard_failure_after_it_starts() {
        let traces = faulty_traces();
        for kind in ScenarioKind::FAULTS {
            assert!(
                traces.iter().any(|t| t.meta().kind == kind),
                "{kind} generated"
            );
        }
        for t in &traces {
            let m = t.meta();
            let (start, onset) = (m.fault_start_ms.unwrap(), m.failure_onset_ms.unwrap());
            let ramp = onset - start;
            assert!(
                (20_000..=600_000).contains(&ramp),
                "{}: ramp {ramp} ms",
                m.name
            );
            assert!(
                start - t.start_ms() >= 300_000,
                "{}: five minutes of history",
                m.name
            );
            let (s, o) = (t.tick_at(start), t.tick_at(onset));
            assert!(t.len() - o >= 120, "{}: a minute after the failure", m.name);

            let tx = t.series(Primary, "tx-pps");
            let latency = t.series(Primary, "health-latency-ms");
            let db = t.series(Primary, "db-up");
            // Healthy before the fault: forwarding, answering health checks.
            assert!(tx[..s].iter().flatten().all(|&v| v > 0.0), "{}", m.name);
            assert!(present(&latency[..s]).len() > s * 9 / 10, "{}", m.name);
            // Dead from the onset on: nothing forwarded, checks time out.
            for i in o..t.len() {
                assert!(
                    matches!(tx[i], Some(0.0) | None),
                    "{} tick {i}: tx {:?}",
                    m.name,
                    tx[i]
                );
                assert_eq!(latency[i], None, "{} tick {i}", m.name);
                assert!(matches!(db[i], Some(0.0) | None), "{} tick {i}", m.name);
            }
            // The shadow stays healthy throughout.
            assert!(present(t.series(Shadow, "db-up")).iter().all(|&v| v == 1.0));
            assert!(
                present(t.series(Shadow, "http-5xx-rate"))
                    .iter()
                    .all(|&v| v == 0.0)
            );
            assert!(present(t.series(Shadow, "health-latency-ms")).len() > t.len() * 9 / 10);
        }
    }

    #[test]
    fn each_fault_shows_its_signature_and_latency_rises_before_the_failure() {
        for t in faulty_traces() {
            let m = t.meta();
            let (s, o) = (
                t.tick_at(m.fault_start_ms.unwrap()),
                t.tick_at(m.failure_onset_ms.unwrap()),
            );
            // The last 5% of the ramp (at least 4 ticks) versus the healthy past.
            let late = o - ((o - s) / 20).max(4)..o;
            let healthy = 0..s;
            let at = |metric: &str, range: std::ops::Range<usize>| {
                present(&t.series(Primary, metric)[range])
            };
            let late_latency = median(at("health-latency-ms", late.clone()));
            let base_latency = median(at("health-latency-ms", healthy.clone()));
            assert!(
                late_latency > 2.0 * base_latency,
                "{}: latency {late_latency} vs {base_latency}",
                m.name
            );
            let late_mean = |metric: &str| mean(&at(metric, late.clone()));
            match m.kind {
                ScenarioKind::CpuExhaustion => assert!(late_mean("cpu") > 0.9, "{}", m.name),
                ScenarioKind::MemoryLeak => assert!(late_mean("memory") > 0.9, "{}", m.name),
                ScenarioKind::PacketLoss => {
                    assert!(late_mean("drops") > 0.4 * late_mean("rx-pps"), "{}", m.name);
                }
                ScenarioKind::ConntrackExhaustion => {
                    assert!(late_mean("conntrack-fill") > 0.95, "{}", m.name);
                    assert!(
                        late_mean("tcp-resets") > 3.0 * mean(&at("tcp-resets", healthy.clone()))
                    );
                }
                ScenarioKind::Http5xxRamp => {
                    let (ok, err) = (late_mean("http-2xx-rate"), late_mean("http-5xx-rate"));
                    assert!(err > 2.0 * ok, "{}: 5xx {err} vs 2xx {ok}", m.name);
                }
                ScenarioKind::DbConnectionFailure => {
                    // Gone for good over the last tenth of the ramp.
                    let last_tenth = o - (o - s) / 10..o;
                    let up = at("db-up", last_tenth.clone());
                    assert!(
                        up.iter().all(|&v| v == 0.0),
                        "{}: db up {up:?} over {last_tenth:?}",
                        m.name
                    );
                    assert!(mean(&at("db-up", healthy.clone())) == 1.0, "{}", m.name);
                }
                ScenarioKind::FaultFree => unreachable!(),
            }
        }
    }

    #[test]
    fn fault_free_traces_never_fail() {
        let c = ScenarioConfig {
            seed: 5,
            surges_per_hour: 6.0,
            blips_per_hour: 6.0,
            ..small(0, 6)
        };
        for t in generate(&c).unwrap() {
            let m = t.meta();
            assert_eq!(
                (m.kind, m.fault_start_ms, m.failure_onset_ms),
                (ScenarioKind::FaultFree, None, None)
            );
            assert!((m.device_days - 20.0 / (24.0 * 60.0)).abs() < 1e-12);
            assert!(
                present(t.series(Primary, "tx-pps"))
                    .iter()
                    .all(|&v| v > 0.0),
                "{}",
                m.name
            );
            assert!(
                present(t.series(Primary, "db-up"))
                    .iter()
                    .all(|&v| v == 1.0),
                "{}",
                m.name
            );
            let cpu = present(t.series(Primary, "cpu"));
            assert!(cpu.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn surges_hit_both_devices() {
        // A busy hour of surges: the shadow's mirrored traffic follows the
        // primary's, so the two move together.
        let c = ScenarioConfig {
            seed: 3,
            surges_per_hour: 20.0,
            missing_rate: 0.0,
            trace_duration: Duration::from_secs(3600),
            ..small(0, 3)
        };
        for t in generate(&c).unwrap() {
            let p = present(t.series(Primary, "rx-pps"));
            let s = present(t.series(Shadow, "rx-pps"));
            let (mp, ms) = (mean(&p), mean(&s));
            let cov: f64 = p.iter().zip(&s).map(|(a, b)| (a - mp) * (b - ms)).sum();
            let var = |v: &[f64], m: f64| v.iter().map(|a| (a - m) * (a - m)).sum::<f64>();
            let r = cov / (var(&p, mp) * var(&s, ms)).sqrt();
            assert!(r > 0.9, "{}: correlation {r}", t.name());
            let (lo, hi) = p
                .iter()
                .fold((f64::MAX, 0.0_f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            assert!(
                hi > 1.4 * lo,
                "{}: surges move the load ({lo}..{hi})",
                t.name()
            );
        }
    }

    #[test]
    fn benign_load_never_fills_the_conntrack_table() {
        // Many overlapping surges at the daily peak: sessions climb, but a
        // fault-free device's table always has room (a full table is a
        // failure: new connections dropped, 5xx).
        let c = ScenarioConfig {
            seed: 11,
            tick_ms: 5_000,
            surges_per_hour: 20.0,
            missing_rate: 0.0,
            trace_duration: Duration::from_secs(4 * 3600),
            ..small(0, 40)
        };
        let mut highest: f64 = 0.0;
        for t in generate(&c).unwrap() {
            for device in [Primary, Shadow] {
                let fill = present(t.series(device, "conntrack-fill"));
                let top = fill.iter().copied().fold(0.0, f64::max);
                assert!(top < 0.95, "{} {device:?}: fill reaches {top}", t.name());
                highest = highest.max(top);
            }
        }
        // The surges do load the table: the bound is not met by an idle one.
        assert!(highest > 0.5, "highest fill {highest}");
    }

    #[test]
    fn load_follows_a_daily_cycle_and_levels_differ_between_traces() {
        let c = ScenarioConfig {
            seed: 9,
            tick_ms: 60_000,
            surges_per_hour: 0.0,
            trace_duration: Duration::from_secs(2 * 86_400),
            ..small(0, 8)
        };
        let traces = generate(&c).unwrap();
        let mut means = Vec::new();
        for t in &traces {
            // Hourly means of rx-bps over two days: the busiest hour well
            // above the quietest.
            let rx = t.series(Primary, "rx-bps");
            let hourly: Vec<f64> = rx.chunks(60).map(|h| mean(&present(h))).collect();
            let (lo, hi) = hourly
                .iter()
                .fold((f64::MAX, 0.0_f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            assert!(hi > 2.0 * lo, "{}: diurnal swing {lo}..{hi}", t.name());
            means.push(mean(&present(rx)));
        }
        let (lo, hi) = means
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(hi > 5.0 * lo, "capacity varies per trace: {lo}..{hi}");
    }

    #[test]
    fn samples_go_missing_at_about_the_configured_rate() {
        let count_missing = |missing_rate: f64| {
            let c = ScenarioConfig {
                missing_rate,
                trace_duration: Duration::from_secs(3600),
                ..small(0, 2)
            };
            let traces = generate(&c).unwrap();
            let total: usize = traces.iter().map(|t| t.len() * 2).sum();
            let missing: usize = traces
                .iter()
                .flat_map(|t| [t.series(Primary, "sessions"), t.series(Shadow, "sessions")])
                .map(|s| s.iter().filter(|v| v.is_none()).count())
                .sum();
            missing as f64 / total as f64
        };
        assert_eq!(count_missing(0.0), 0.0);
        // Gaps of 1..=10 ticks (mean 5.5) start at 1% of ticks.
        let share = count_missing(0.01);
        assert!((0.03..0.09).contains(&share), "missing share {share}");
    }
}
