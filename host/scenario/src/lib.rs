//! Seeded, reproducible telemetry scenarios: faults ramping into hard failures and fault-free traces.
//!
//! - [`trace`]: the [`Trace`] model (one primary/shadow pair sampled at a fixed
//!   tick) and its on-disk format, `NAME.csv` + `NAME.json` in a data directory.
//! - [`generator`]: the seeded scenario generator ([`generate`]).
//! - [`eval`]: detector-agnostic, event-wise evaluation of alarms against traces.
//! - [`cli`]: the `umbra model generate` command-line pieces.

#![forbid(unsafe_code)]

pub mod cli;
pub mod eval;
pub mod generator;
pub mod trace;

use std::path::PathBuf;

pub use cli::{GenerateArgs, generate_cmd, parse_duration};
pub use eval::{EvalConfig, EvalReport, Evaluator, Summary, TraceOutcome, evaluate, judge};
pub use generator::{ScenarioConfig, generate, generate_trace};
pub use trace::{
    Device, METRIC_COUNT, METRICS, ScenarioKind, Trace, TraceMeta, metric_index, read_dir,
    read_trace, trace_names, write_dir, write_trace,
};

/// Errors of the scenario crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed. The environment (permissions, disk,
    /// a missing directory) is at fault.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A data file is malformed. Whoever wrote the file is at fault.
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        /// The offending file.
        path: PathBuf,
        /// 1-based line number (0 when the problem concerns the whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A trace's metadata file is not valid JSON for [`TraceMeta`]. Whoever
    /// wrote the file is at fault; the source carries line and column.
    #[error("{}: invalid trace metadata: {source}", path.display())]
    Meta {
        /// The offending `NAME.json`.
        path: PathBuf,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A trace built in memory is inconsistent (series of different lengths,
    /// irregular timestamps, non-finite values...). The caller is at fault.
    #[error("invalid trace {name:?}: {message}")]
    InvalidTrace {
        /// The trace's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A metric name is not one of [`METRICS`]. The caller is at fault.
    #[error("unknown metric {0:?}")]
    UnknownMetric(String),
    /// A [`ScenarioConfig`] is invalid; every problem is listed. The caller is
    /// at fault.
    #[error("invalid scenario config: {}", problems.join("; "))]
    InvalidConfig {
        /// Every problem found.
        problems: Vec<String>,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
