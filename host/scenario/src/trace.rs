//! The [`Trace`] model — one protected primary/shadow pair sampled at a fixed
//! tick — and its on-disk format.
//!
//! # Metrics and units
//!
//! Every device reports the sixteen [`METRICS`], in this order:
//!
//! | metric | unit |
//! | --- | --- |
//! | `cpu` | fraction of CPU capacity busy, in \[0, 1\] |
//! | `memory` | fraction of memory in use, in \[0, 1\] |
//! | `rx-bps`, `tx-bps` | bits per second received / transmitted |
//! | `rx-pps`, `tx-pps` | packets per second received / transmitted |
//! | `drops` | packets dropped per second |
//! | `sessions` | tracked sessions (a count, not a rate) |
//! | `conntrack-fill` | fraction of the conntrack table in use, in \[0, 1\] |
//! | `health-latency-ms` | health-check round-trip time in milliseconds |
//! | `http-2xx-rate`, `http-5xx-rate` | HTTP responses per second by status class |
//! | `db-up` | database health check: 1 up, 0 down |
//! | `mirror-pps` | mirrored packets per second (sent by the primary, received by the shadow) |
//! | `mirror-flows` | distinct flows in the mirrored traffic (a count) |
//! | `tcp-resets` | TCP resets per second |
//!
//! A missing sample is `None`; values are always finite (never NaN).
//!
//! # On disk
//!
//! A data directory holds, per trace, `NAME.csv` and `NAME.json`. The CSV has
//! the header `timestamp_ms,primary.cpu,…,primary.tcp-resets,shadow.cpu,…,shadow.tcp-resets`
//! and one row per tick; an empty cell is a missing sample. The JSON is the
//! [`TraceMeta`]. Timestamps are Unix milliseconds, one tick apart.

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Number of canonical metrics per device.
pub const METRIC_COUNT: usize = 16;

/// The canonical metrics, in column order. Units are in the module docs.
pub const METRICS: [&str; METRIC_COUNT] = [
    "cpu",
    "memory",
    "rx-bps",
    "tx-bps",
    "rx-pps",
    "tx-pps",
    "drops",
    "sessions",
    "conntrack-fill",
    "health-latency-ms",
    "http-2xx-rate",
    "http-5xx-rate",
    "db-up",
    "mirror-pps",
    "mirror-flows",
    "tcp-resets",
];

/// Column indices of [`METRICS`], so code can name a metric without a lookup.
pub(crate) mod m {
    pub const CPU: usize = 0;
    pub const MEMORY: usize = 1;
    pub const RX_BPS: usize = 2;
    pub const TX_BPS: usize = 3;
    pub const RX_PPS: usize = 4;
    pub const TX_PPS: usize = 5;
    pub const DROPS: usize = 6;
    pub const SESSIONS: usize = 7;
    pub const CONNTRACK_FILL: usize = 8;
    pub const HEALTH_LATENCY_MS: usize = 9;
    pub const HTTP_2XX: usize = 10;
    pub const HTTP_5XX: usize = 11;
    pub const DB_UP: usize = 12;
    pub const MIRROR_PPS: usize = 13;
    pub const MIRROR_FLOWS: usize = 14;
    pub const TCP_RESETS: usize = 15;
}

/// The position of `name` in [`METRICS`], or `None` if it is not canonical.
#[must_use]
pub fn metric_index(name: &str) -> Option<usize> {
    METRICS.iter().position(|m| *m == name)
}

/// One device of a protected pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Device {
    /// The device carrying traffic; faults are injected here.
    Primary,
    /// The standby device; it sees mirrored traffic and stays healthy.
    Shadow,
}

impl Device {
    /// Both devices, in column order.
    pub const ALL: [Device; 2] = [Device::Primary, Device::Shadow];

    /// The name used in CSV headers and feature names (`primary`, `shadow`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Shadow => "shadow",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Primary => 0,
            Self::Shadow => 1,
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens in a trace: nothing, or one fault on the primary that ramps
/// into a hard failure.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioKind {
    /// No fault: diurnal load, noise, benign surges, missing samples.
    FaultFree,
    /// CPU use ramps to saturation (a runaway process); latency, drops and
    /// 5xx follow, then the device stops.
    CpuExhaustion,
    /// Memory use climbs until the device runs out and stops.
    MemoryLeak,
    /// Packet loss rises (netem-style) until nothing gets through.
    PacketLoss,
    /// The conntrack table fills; new sessions are dropped, then the device
    /// stops.
    ConntrackExhaustion,
    /// The served HTTP application returns more and more 5xx, then dies.
    #[serde(rename = "http-5xx-ramp")]
    #[value(name = "http-5xx-ramp")]
    Http5xxRamp,
    /// Database health checks fail more and more often, then for good.
    DbConnectionFailure,
}

impl ScenarioKind {
    /// Every kind, fault-free first.
    pub const ALL: [ScenarioKind; 7] = [
        ScenarioKind::FaultFree,
        ScenarioKind::CpuExhaustion,
        ScenarioKind::MemoryLeak,
        ScenarioKind::PacketLoss,
        ScenarioKind::ConntrackExhaustion,
        ScenarioKind::Http5xxRamp,
        ScenarioKind::DbConnectionFailure,
    ];

    /// The fault kinds (every kind but [`ScenarioKind::FaultFree`]).
    pub const FAULTS: [ScenarioKind; 6] = [
        ScenarioKind::CpuExhaustion,
        ScenarioKind::MemoryLeak,
        ScenarioKind::PacketLoss,
        ScenarioKind::ConntrackExhaustion,
        ScenarioKind::Http5xxRamp,
        ScenarioKind::DbConnectionFailure,
    ];

    /// The kebab-case name used in metadata and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FaultFree => "fault-free",
            Self::CpuExhaustion => "cpu-exhaustion",
            Self::MemoryLeak => "memory-leak",
            Self::PacketLoss => "packet-loss",
            Self::ConntrackExhaustion => "conntrack-exhaustion",
            Self::Http5xxRamp => "http-5xx-ramp",
            Self::DbConnectionFailure => "db-connection-failure",
        }
    }

    /// Whether this kind injects a fault.
    #[must_use]
    pub fn is_fault(self) -> bool {
        self != Self::FaultFree
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScenarioKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown scenario kind {s:?}"))
    }
}

/// What a trace is: its name, how it was made and, for a faulty trace, when
/// the fault started and when the primary hard-failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceMeta {
    /// The trace's name, also its file stem (`NAME.csv`, `NAME.json`).
    pub name: String,
    /// Seed of the generator run that made it (0 for recorded traces).
    pub seed: u64,
    /// Fault-free, or which fault.
    pub kind: ScenarioKind,
    /// Milliseconds between two ticks.
    pub tick_ms: i64,
    /// When the fault started ramping (Unix ms); `None` when fault-free.
    pub fault_start_ms: Option<i64>,
    /// When the primary hard-failed (Unix ms); `None` when fault-free.
    pub failure_onset_ms: Option<i64>,
    /// How much monitored time the trace holds, in days of one protected
    /// device (ticks × tick / 1 day); used for "false alarms per device-day".
    pub device_days: f64,
}

/// Per-device columns: one `Vec` per metric, each with one entry per tick.
pub(crate) type Columns = [Vec<Option<f64>>; METRIC_COUNT];

/// One protected pair (primary + shadow) sampled at a fixed tick.
///
/// Invariants, checked by [`Trace::new`] and [`read_dir`]: at least one tick;
/// timestamps start at [`Trace::start_ms`] and step by exactly `tick_ms`;
/// every series has one entry per tick; every value is finite.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    meta: TraceMeta,
    timestamps_ms: Vec<i64>,
    columns: [Columns; 2],
}

impl Trace {
    /// Builds a trace from per-metric series, in [`METRICS`] order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTrace`] if the name is not a plain file stem, there is
    /// not exactly one series per metric, a series' length differs from the
    /// number of timestamps, timestamps are not one `tick_ms` apart, a value
    /// is not finite, or the fault times contradict the kind.
    pub fn new(
        meta: TraceMeta,
        timestamps_ms: Vec<i64>,
        primary: Vec<Vec<Option<f64>>>,
        shadow: Vec<Vec<Option<f64>>>,
    ) -> Result<Self> {
        let invalid = |message: String| Error::InvalidTrace {
            name: meta.name.clone(),
            message,
        };
        let to_columns = |device: Device, v: Vec<Vec<Option<f64>>>| -> Result<Columns> {
            let n = v.len();
            Columns::try_from(v)
                .map_err(|_| invalid(format!("{device} has {n} series, expected {METRIC_COUNT}")))
        };
        let columns = [
            to_columns(Device::Primary, primary)?,
            to_columns(Device::Shadow, shadow)?,
        ];
        let trace = Self {
            meta,
            timestamps_ms,
            columns,
        };
        trace.validate()?;
        Ok(trace)
    }

    /// Built by the generator, which upholds the invariants; still checked in
    /// debug builds.
    pub(crate) fn from_parts(
        meta: TraceMeta,
        timestamps_ms: Vec<i64>,
        columns: [Columns; 2],
    ) -> Self {
        let trace = Self {
            meta,
            timestamps_ms,
            columns,
        };
        debug_assert!(trace.validate().is_ok(), "{:?}", trace.validate());
        trace
    }

    fn validate(&self) -> Result<()> {
        let invalid = |message: String| {
            Err(Error::InvalidTrace {
                name: self.meta.name.clone(),
                message,
            })
        };
        let name = &self.meta.name;
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\', '\0'])
            || name.contains(char::is_whitespace)
        {
            return invalid("name must be a non-empty file stem without separators, whitespace or a leading dot".into());
        }
        if self.meta.tick_ms <= 0 {
            return invalid(format!(
                "tick_ms must be positive, got {}",
                self.meta.tick_ms
            ));
        }
        let Some(&start) = self.timestamps_ms.first() else {
            return invalid("a trace needs at least one tick".into());
        };
        for (i, &t) in self.timestamps_ms.iter().enumerate() {
            let expected = start + i as i64 * self.meta.tick_ms;
            if t != expected {
                return invalid(format!(
                    "timestamp #{i} is {t}, expected {expected} (one tick of {} ms apart)",
                    self.meta.tick_ms
                ));
            }
        }
        let n = self.timestamps_ms.len();
        for device in Device::ALL {
            for (metric, series) in METRICS.iter().zip(&self.columns[device.index()]) {
                if series.len() != n {
                    return invalid(format!(
                        "{device}.{metric} has {} values for {n} ticks",
                        series.len()
                    ));
                }
                if let Some(i) = series
                    .iter()
                    .position(|v| v.is_some_and(|x| !x.is_finite()))
                {
                    return invalid(format!("{device}.{metric} is not finite at tick #{i}"));
                }
            }
        }
        let m = &self.meta;
        match (m.kind.is_fault(), m.fault_start_ms, m.failure_onset_ms) {
            (false, None, None) => {}
            (false, _, _) => {
                return invalid("a fault-free trace has no fault start or failure onset".into());
            }
            (true, Some(s), Some(o)) if s <= o => {}
            (true, Some(s), Some(o)) => {
                return invalid(format!("fault start {s} is after failure onset {o}"));
            }
            (true, _, _) => {
                return invalid(
                    "a faulty trace needs both fault_start_ms and failure_onset_ms".into(),
                );
            }
        }
        if !(m.device_days.is_finite() && m.device_days >= 0.0) {
            return invalid(format!(
                "device_days must be finite and >= 0, got {}",
                m.device_days
            ));
        }
        Ok(())
    }

    /// The trace's metadata.
    #[must_use]
    pub fn meta(&self) -> &TraceMeta {
        &self.meta
    }

    /// The trace's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// Milliseconds between two ticks.
    #[must_use]
    pub fn tick_ms(&self) -> i64 {
        self.meta.tick_ms
    }

    /// Timestamp of the first tick (Unix ms).
    #[must_use]
    pub fn start_ms(&self) -> i64 {
        self.timestamps_ms[0]
    }

    /// Timestamp of every tick (Unix ms), one tick apart.
    #[must_use]
    pub fn timestamps_ms(&self) -> &[i64] {
        &self.timestamps_ms
    }

    /// Number of ticks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.timestamps_ms.len()
    }

    /// Always false: a trace has at least one tick.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.timestamps_ms.is_empty()
    }

    /// The series of `metric` (a name from [`METRICS`]) on `device`, one
    /// entry per tick, `None` where the sample is missing.
    ///
    /// # Panics
    ///
    /// If `metric` is not in [`METRICS`]; use [`Trace::try_series`] for names
    /// that come from input.
    #[must_use]
    pub fn series(&self, device: Device, metric: &str) -> &[Option<f64>] {
        match self.try_series(device, metric) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Trace::series`], for metric names that come from input.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMetric`] if `metric` is not in [`METRICS`].
    pub fn try_series(&self, device: Device, metric: &str) -> Result<&[Option<f64>]> {
        let i = metric_index(metric).ok_or_else(|| Error::UnknownMetric(metric.to_owned()))?;
        Ok(self.series_at(device, i))
    }

    /// The series of the metric at position `metric` of [`METRICS`].
    ///
    /// # Panics
    ///
    /// If `metric >= METRIC_COUNT`.
    #[must_use]
    pub fn series_at(&self, device: Device, metric: usize) -> &[Option<f64>] {
        &self.columns[device.index()][metric]
    }

    /// The index of the first tick at or after `t_ms`, clamped to `len()`.
    #[must_use]
    pub fn tick_at(&self, t_ms: i64) -> usize {
        let offset = t_ms - self.start_ms();
        if offset <= 0 {
            return 0;
        }
        let i = (offset + self.meta.tick_ms - 1) / self.meta.tick_ms;
        usize::try_from(i).unwrap_or(usize::MAX).min(self.len())
    }
}

/// The CSV header line (without the newline).
fn csv_header() -> String {
    let mut h = String::from("timestamp_ms");
    for device in Device::ALL {
        for metric in METRICS {
            h.push(',');
            h.push_str(device.as_str());
            h.push('.');
            h.push_str(metric);
        }
    }
    h
}

/// Appends `v` in a form that parses back to exactly `v`.
///
/// Formatting floats dominates writing a data directory, so values with at
/// most four decimals (everything the generator writes) take an integer fast
/// path: the decimal `n / 10^4` parses to the double nearest to it, which is
/// `n / 1e4` computed in floating point, which the check below says is `v`.
/// Anything else gets the shortest round-tripping form from `Display`.
fn push_value(line: &mut String, v: f64) {
    use std::fmt::Write as _;
    const SCALE: f64 = 1e4;
    // Below 2^53 / 1e4 the scaled value is an exact integer in f64.
    if v.abs() < 9e11 {
        let n = (v * SCALE).round();
        if n / SCALE == v && n != 0.0 {
            let n = n as i64;
            if n < 0 {
                line.push('-');
            }
            let (int, frac) = (n.unsigned_abs() / 10_000, n.unsigned_abs() % 10_000);
            write!(line, "{int}").expect("writing to a String cannot fail");
            if frac != 0 {
                line.push('.');
                let mut frac = frac;
                let mut divisor = 1000;
                while frac != 0 {
                    let digit = u8::try_from(frac / divisor).expect("a decimal digit");
                    line.push(char::from(b'0' + digit));
                    frac %= divisor;
                    divisor /= 10;
                }
            }
            return;
        }
    }
    write!(line, "{v}").expect("writing to a String cannot fail");
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `trace` into `dir` as `NAME.csv` and `NAME.json`, replacing any
/// files of the same name. `dir` must exist.
///
/// Output is byte-for-byte a function of the trace: values are written in
/// their shortest round-tripping form, so [`read_trace`] gives back an equal
/// trace.
///
/// # Errors
///
/// [`Error::Io`] if a file cannot be written.
pub fn write_trace(dir: &Path, trace: &Trace) -> Result<()> {
    let csv_path = dir.join(format!("{}.csv", trace.name()));
    let file = fs::File::create(&csv_path).map_err(io_err(&csv_path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut line = String::with_capacity(512);
    line.push_str(&csv_header());
    line.push('\n');
    for (i, t) in trace.timestamps_ms.iter().enumerate() {
        use std::fmt::Write as _;
        write!(line, "{t}").expect("writing to a String cannot fail");
        for columns in &trace.columns {
            for series in columns {
                line.push(',');
                if let Some(v) = series[i] {
                    push_value(&mut line, v);
                }
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(io_err(&csv_path))?;
        line.clear();
    }
    out.flush().map_err(io_err(&csv_path))?;

    let json_path = dir.join(format!("{}.json", trace.name()));
    let mut json = serde_json::to_string_pretty(&trace.meta).expect("TraceMeta always serializes");
    json.push('\n');
    fs::write(&json_path, json).map_err(io_err(&json_path))?;
    Ok(())
}

/// Creates `dir` (and its parents) if needed and writes every trace into it
/// with [`write_trace`].
///
/// # Errors
///
/// [`Error::Io`] if the directory or a file cannot be written, and
/// [`Error::InvalidTrace`] if two traces share a name.
pub fn write_dir(dir: &Path, traces: &[Trace]) -> Result<()> {
    let mut names: Vec<&str> = traces.iter().map(Trace::name).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::InvalidTrace {
            name: w[0].to_owned(),
            message: "two traces share this name".into(),
        });
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    for trace in traces {
        write_trace(dir, trace)?;
    }
    Ok(())
}

/// The names of the traces in `dir`, sorted: the stems of its `*.json`
/// files. Lets a caller stream a large directory with [`read_trace`].
///
/// # Errors
///
/// [`Error::Io`] if the directory cannot be listed, and
/// [`Error::Malformed`] if a `NAME.csv` has no `NAME.json` or the other way
/// round.
pub fn trace_names(dir: &Path) -> Result<Vec<String>> {
    let mut json = Vec::new();
    let mut csv = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        match ext {
            "json" => json.push(stem.to_owned()),
            "csv" => csv.push(stem.to_owned()),
            _ => {}
        }
    }
    json.sort();
    csv.sort();
    for name in &csv {
        if json.binary_search(name).is_err() {
            return Err(Error::Malformed {
                path: dir.join(format!("{name}.csv")),
                line: 0,
                message: format!("no metadata file {name}.json next to it"),
            });
        }
    }
    for name in &json {
        if csv.binary_search(name).is_err() {
            return Err(Error::Malformed {
                path: dir.join(format!("{name}.json")),
                line: 0,
                message: format!("no data file {name}.csv next to it"),
            });
        }
    }
    Ok(json)
}

/// Reads the trace `name` (`NAME.json` + `NAME.csv`) from `dir`.
///
/// # Errors
///
/// [`Error::Io`] if a file cannot be read, [`Error::Meta`] if the JSON is not
/// a [`TraceMeta`], and [`Error::Malformed`] (with file and line) if the CSV
/// has a wrong header, a row with the wrong number of cells, an unparsable or
/// non-finite number, or timestamps that are not one tick apart, or if the
/// metadata contradicts itself or its file name.
pub fn read_trace(dir: &Path, name: &str) -> Result<Trace> {
    let json_path = dir.join(format!("{name}.json"));
    let text = fs::read_to_string(&json_path).map_err(io_err(&json_path))?;
    let meta: TraceMeta = serde_json::from_str(&text).map_err(|source| Error::Meta {
        path: json_path.clone(),
        source,
    })?;
    if meta.name != name {
        return Err(Error::Malformed {
            path: json_path,
            line: 0,
            message: format!(
                "metadata names the trace {:?}, the file is {name:?}",
                meta.name
            ),
        });
    }

    let csv_path = dir.join(format!("{name}.csv"));
    let malformed = |line: usize, message: String| Error::Malformed {
        path: csv_path.clone(),
        line,
        message,
    };
    let file = fs::File::open(&csv_path).map_err(io_err(&csv_path))?;
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    let header = match lines.next() {
        Some(line) => line.map_err(io_err(&csv_path))?,
        None => return Err(malformed(1, "empty file, expected a header".into())),
    };
    let expected = csv_header();
    if header.trim_end_matches('\r') != expected {
        let found: Vec<&str> = header.trim_end_matches('\r').split(',').collect();
        let wanted: Vec<&str> = expected.split(',').collect();
        let message = match found.iter().zip(&wanted).position(|(f, w)| f != w) {
            Some(i) => format!(
                "header column {} is {:?}, expected {:?}",
                i + 1,
                found[i],
                wanted[i]
            ),
            None => format!(
                "header has {} columns, expected {}",
                found.len(),
                wanted.len()
            ),
        };
        return Err(malformed(1, message));
    }

    let mut timestamps = Vec::new();
    let mut columns: [Columns; 2] = std::array::from_fn(|_| std::array::from_fn(|_| Vec::new()));
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        let line = line.map_err(io_err(&csv_path))?;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            return Err(malformed(line_no, "empty line".into()));
        }
        let mut cells = line.split(',');
        let ts = cells.next().unwrap_or_default();
        let t: i64 = ts
            .parse()
            .map_err(|_| malformed(line_no, format!("timestamp_ms {ts:?} is not an integer")))?;
        if let Some(&prev) = timestamps.last()
            && t != prev + meta.tick_ms
        {
            return Err(malformed(
                line_no,
                format!(
                    "timestamp {t} is not one tick ({} ms) after {prev}",
                    meta.tick_ms
                ),
            ));
        }
        timestamps.push(t);
        let mut n = 1;
        for (d, device) in Device::ALL.into_iter().enumerate() {
            for (k, metric) in METRICS.iter().enumerate() {
                let Some(cell) = cells.next() else {
                    return Err(malformed(
                        line_no,
                        format!("{n} cells, expected {}", 1 + 2 * METRIC_COUNT),
                    ));
                };
                n += 1;
                let value = if cell.is_empty() {
                    None
                } else {
                    let v: f64 = cell.parse().map_err(|_| {
                        malformed(
                            line_no,
                            format!("{device}.{metric}: {cell:?} is not a number"),
                        )
                    })?;
                    if !v.is_finite() {
                        return Err(malformed(
                            line_no,
                            format!("{device}.{metric}: {cell:?} is not finite"),
                        ));
                    }
                    Some(v)
                };
                columns[d][k].push(value);
            }
        }
        let extra = cells.count();
        if extra > 0 {
            return Err(malformed(
                line_no,
                format!("{} cells, expected {}", n + extra, 1 + 2 * METRIC_COUNT),
            ));
        }
    }
    if timestamps.is_empty() {
        return Err(malformed(2, "no data rows".into()));
    }
    let trace = Trace {
        meta,
        timestamps_ms: timestamps,
        columns,
    };
    // Row-level problems were reported above with their line; what is left
    // is the metadata contradicting itself (kind vs fault times, tick_ms).
    trace.validate().map_err(|e| Error::Malformed {
        path: dir.join(format!("{name}.json")),
        line: 0,
        message: match e {
            Error::InvalidTrace { message, .. } => message,
            other => other.to_string(),
        },
    })?;
    Ok(trace)
}

/// Reads every trace in `dir`, sorted by name.
///
/// # Errors
///
/// As [`trace_names`] and [`read_trace`].
pub fn read_dir(dir: &Path) -> Result<Vec<Trace>> {
    trace_names(dir)?
        .iter()
        .map(|name| read_trace(dir, name))
        .collect()
}

/// Paths of the two files of trace `name` in `dir`: (`NAME.csv`, `NAME.json`).
#[must_use]
pub fn trace_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.csv")),
        dir.join(format!("{name}.json")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, kind: ScenarioKind, fault: Option<(i64, i64)>) -> TraceMeta {
        TraceMeta {
            name: name.into(),
            seed: 7,
            kind,
            tick_ms: 500,
            fault_start_ms: fault.map(|f| f.0),
            failure_onset_ms: fault.map(|f| f.1),
            device_days: 3.0 * 500.0 / 86_400_000.0,
        }
    }

    fn small(name: &str) -> Trace {
        let ts = vec![1000, 1500, 2000];
        let col = |base: f64| -> Vec<Vec<Option<f64>>> {
            (0..METRIC_COUNT)
                .map(|k| vec![Some(base + k as f64), None, Some(0.125)])
                .collect()
        };
        Trace::new(
            meta(name, ScenarioKind::MemoryLeak, Some((1000, 2000))),
            ts,
            col(1.0),
            col(100.5),
        )
        .unwrap()
    }

    #[test]
    fn series_accessors_find_the_right_column() {
        let t = small("a");
        assert_eq!(
            t.series(Device::Primary, "cpu"),
            &[Some(1.0), None, Some(0.125)]
        );
        assert_eq!(t.series(Device::Shadow, "tcp-resets")[0], Some(115.5));
        assert_eq!(t.series(Device::Primary, "memory")[0], Some(2.0));
        assert!(matches!(
            t.try_series(Device::Primary, "gpu"),
            Err(Error::UnknownMetric(m)) if m == "gpu"
        ));
        assert_eq!(t.start_ms(), 1000);
        assert_eq!(t.len(), 3);
        assert_eq!(t.tick_at(1001), 1);
        assert_eq!(t.tick_at(0), 0);
        assert_eq!(t.tick_at(99_999), 3);
    }

    #[test]
    fn new_rejects_inconsistent_traces() {
        let ok_cols = || vec![vec![Some(1.0); 2]; METRIC_COUNT];
        let m = meta("x", ScenarioKind::FaultFree, None);
        let err = |r: Result<Trace>| r.unwrap_err().to_string();
        // Irregular timestamps.
        assert!(
            err(Trace::new(m.clone(), vec![0, 400], ok_cols(), ok_cols())).contains("timestamp #1")
        );
        // Too few series.
        assert!(
            err(Trace::new(
                m.clone(),
                vec![0, 500],
                vec![vec![None; 2]; 3],
                ok_cols()
            ))
            .contains("3 series")
        );
        // Length mismatch.
        let mut short = ok_cols();
        short[4].pop();
        assert!(
            err(Trace::new(m.clone(), vec![0, 500], ok_cols(), short)).contains("shadow.rx-pps")
        );
        // NaN.
        let mut nan = ok_cols();
        nan[0][1] = Some(f64::NAN);
        assert!(err(Trace::new(m.clone(), vec![0, 500], nan, ok_cols())).contains("not finite"));
        // Fault-free with fault times.
        let bad = meta("x", ScenarioKind::FaultFree, Some((0, 500)));
        assert!(err(Trace::new(bad, vec![0, 500], ok_cols(), ok_cols())).contains("fault-free"));
        // Fault without times.
        let bad = meta("x", ScenarioKind::CpuExhaustion, None);
        assert!(err(Trace::new(bad, vec![0, 500], ok_cols(), ok_cols())).contains("needs both"));
        // Path in the name.
        let bad = meta("../x", ScenarioKind::FaultFree, None);
        assert!(err(Trace::new(bad, vec![0, 500], ok_cols(), ok_cols())).contains("file stem"));
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let traces = vec![small("b"), small("a")];
        write_dir(dir.path(), &traces).unwrap();
        let back = read_dir(dir.path()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], traces[1], "sorted by name");
        assert_eq!(back[1], traces[0]);
        let csv = fs::read_to_string(dir.path().join("a.csv")).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next().unwrap(), csv_header());
        assert!(csv_header().starts_with("timestamp_ms,primary.cpu,primary.memory,"));
        assert!(csv_header().ends_with(",shadow.mirror-flows,shadow.tcp-resets"));
        let row2: Vec<&str> = lines.nth(1).unwrap().split(',').collect();
        assert_eq!(row2[0], "1500");
        assert!(
            row2[1..].iter().all(|c| c.is_empty()),
            "missing samples are empty cells"
        );
    }

    #[test]
    fn values_are_written_so_they_read_back_exactly() {
        let values = [
            0.4567,
            0.1,
            -2.5,
            12_345_678_901.0,
            1e-7,
            0.0,
            -0.0,
            1.0 / 3.0,
            9e11,
            1e300,
            0.0001,
            -0.0001,
            123.05,
        ];
        for v in values {
            let mut s = String::new();
            push_value(&mut s, v);
            assert_eq!(s.parse::<f64>().unwrap(), v, "{v} written as {s}");
        }
        let text = |v: f64| {
            let mut s = String::new();
            push_value(&mut s, v);
            s
        };
        assert_eq!(text(0.4567), "0.4567");
        assert_eq!(text(0.1), "0.1");
        assert_eq!(text(-2.5), "-2.5");
        assert_eq!(text(17.0), "17");
        assert_eq!(text(-0.0001), "-0.0001");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_dir(dir.path(), &[small("a"), small("a")]).unwrap_err();
        assert!(e.to_string().contains("share"), "{e}");
    }

    /// Writes `a` and then lets `edit` corrupt its CSV or JSON.
    fn corrupted(edit: impl FnOnce(&mut String, &mut String)) -> String {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), &[small("a")]).unwrap();
        let (csv_path, json_path) = trace_paths(dir.path(), "a");
        let mut csv = fs::read_to_string(&csv_path).unwrap();
        let mut json = fs::read_to_string(&json_path).unwrap();
        edit(&mut csv, &mut json);
        fs::write(&csv_path, csv).unwrap();
        fs::write(&json_path, json).unwrap();
        read_dir(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn malformed_files_are_reported_with_file_and_line() {
        let e = corrupted(|csv, _| *csv = csv.replacen("primary.memory", "primary.mem", 1));
        assert!(
            e.contains("a.csv:1:") && e.contains("column 3") && e.contains("primary.memory"),
            "{e}"
        );

        let e = corrupted(|csv, _| *csv = csv.replacen("\n1500,", "\n1500,abc", 1));
        assert!(
            e.contains("a.csv:3:") && e.contains("primary.cpu") && e.contains("abc"),
            "{e}"
        );

        let e = corrupted(|csv, _| *csv = csv.replacen("\n2000,", "\n2000,1,", 1));
        assert!(
            e.contains("a.csv:4:") && e.contains("34 cells, expected 33"),
            "{e}"
        );

        let e = corrupted(|csv, _| *csv = csv.replacen("\n2000,", "\n2100,", 1));
        assert!(e.contains("a.csv:4:") && e.contains("not one tick"), "{e}");

        let e = corrupted(|csv, _| *csv = csv.replacen("\n1500,", "\n1500,inf", 1));
        assert!(e.contains("a.csv:3:") && e.contains("not finite"), "{e}");

        let e = corrupted(|csv, _| {
            let header = csv.lines().next().unwrap().to_owned();
            *csv = format!("{header}\n");
        });
        assert!(e.contains("a.csv:2:") && e.contains("no data rows"), "{e}");

        let e = corrupted(|_, json| *json = json.replace("\"memory-leak\"", "\"meltdown\""));
        assert!(e.contains("a.json") && e.contains("line"), "{e}");

        let e = corrupted(|_, json| *json = json.replace("\"name\": \"a\"", "\"name\": \"b\""));
        assert!(e.contains("a.json") && e.contains("\"b\""), "{e}");

        let e = corrupted(|_, json| {
            *json = json.replace("\"fault_start_ms\": 1000", "\"fault_start_ms\": 9000")
        });
        assert!(
            e.contains("a.json") && e.contains("after failure onset"),
            "{e}"
        );
    }

    #[test]
    fn orphan_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), &[small("a")]).unwrap();
        fs::remove_file(dir.path().join("a.json")).unwrap();
        let e = read_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a.csv") && e.contains("no metadata"), "{e}");
    }

    #[test]
    fn kinds_parse_and_print_kebab_case() {
        for k in ScenarioKind::ALL {
            assert_eq!(k.as_str().parse::<ScenarioKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert!("cpu".parse::<ScenarioKind>().is_err());
        assert_eq!(metric_index("tcp-resets"), Some(15));
        assert_eq!(METRICS[m::HEALTH_LATENCY_MS], "health-latency-ms");
        assert_eq!(METRICS[m::MIRROR_FLOWS], "mirror-flows");
    }
}
