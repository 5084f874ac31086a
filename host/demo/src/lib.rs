//! `umbra demo`: the whole system on one machine. As root it builds the
//! failover lab of DESIGN.md (client, server, primary and shadow
//! stateful-firewall routers in network namespaces behind Umbra's
//! software switch), starts `umbra run`'s daemon on it with an embedded
//! configuration, sends the lab's traffic, injects a fault on the
//! primary that ramps into a hard failure, and watches the daemon fail
//! over before the failure. Without the privileges it runs the same
//! scenario on simulated devices and says so.
//!
//! Either way it ends with a [`Summary`] (optionally as JSON) and an
//! optional HTML report with the run's timeline.

#![forbid(unsafe_code)]

mod journal;
pub mod lab;
pub mod lab_cmd;
pub mod progress;
pub mod report;
pub mod sim;
pub mod timeline;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
pub use umbra_lab::failover_lab::FaultKind;

use crate::progress::Progress;
use crate::timeline::Timeline;

/// Which devices the demo runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The lab as root, simulated devices otherwise.
    Auto,
    /// The network-namespace lab (needs root).
    Lab,
    /// Simulated devices and switch, no privileges needed.
    Simulated,
}

/// A fault to inject, or none (a fault-free run, which must not fail
/// over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultChoice(pub Option<FaultKind>);

impl std::str::FromStr for FaultChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(Self(None));
        }
        s.parse::<FaultKind>()
            .map(|k| Self(Some(k)))
            .map_err(|e| format!("{e} (or none)"))
    }
}

impl std::fmt::Display for FaultChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(kind) => write!(f, "{kind}"),
            None => f.write_str("none"),
        }
    }
}

/// Options of `umbra demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// The fault injected on the primary: cpu|memory|loss|conntrack|http5xx|db, or none for a fault-free run.
    #[arg(long, default_value = "cpu")]
    pub fault: FaultChoice,
    /// Seed of the fault's jitter (and of the simulated scenario).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the demo runs: the namespace lab (root) or simulated devices.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,
    /// Write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Write an HTML report with the run's timeline to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Seconds of traffic before the fault starts (the engine learns its baselines).
    #[arg(long, default_value_t = 30)]
    pub warmup_s: u64,
    /// Seconds the fault takes to ramp from nothing to full, before the hard failure.
    #[arg(long, default_value_t = 40)]
    pub ramp_s: u64,
    /// Seconds a fault-free run lasts after its warm-up.
    #[arg(long, default_value_t = 60)]
    pub fault_free_s: u64,
    /// Run without state replication between the devices (the control: TCP sessions break at the failover).
    #[arg(long)]
    pub no_replication: bool,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            fault: FaultChoice(Some(FaultKind::Cpu)),
            seed: 1,
            mode: Mode::Auto,
            summary_json: None,
            report: None,
            warmup_s: 30,
            ramp_s: 40,
            fault_free_s: 60,
            no_replication: false,
        }
    }
}

impl DemoArgs {
    pub(crate) fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup_s)
    }

    pub(crate) fn ramp(&self) -> Duration {
        Duration::from_secs(self.ramp_s)
    }
}

/// How a run went: the figures DESIGN.md judges a failover by.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// `lab` (network namespaces, real packets) or `simulated`.
    pub mode: String,
    /// The fault injected, or `none`.
    pub fault: String,
    /// The seed.
    pub seed: u64,
    /// Whether a failover to the shadow was verified.
    pub failover_completed: bool,
    /// Failure onset minus failover completion (positive: the failover
    /// came first, predicted).
    pub lead_time_ms: Option<f64>,
    /// The longest gap in the probe stream around the failover.
    pub switchover_gap_ms: Option<f64>,
    /// Probes sent.
    pub probes_sent: u64,
    /// Probes never answered, over the whole run (a `loss` fault loses
    /// some before any failover: that is the fault, not the switchover).
    pub probes_lost: u64,
    /// Probes lost from the decision to the end of the verification
    /// (not measured on simulated devices).
    pub probes_lost_in_switchover: Option<u64>,
    /// Long-lived TCP sessions started.
    pub sessions_total: usize,
    /// Sessions never reset and still exchanging data at the end.
    pub sessions_survived: usize,
    /// The longest stall of any session.
    pub longest_session_stall_ms: f64,
    /// Failovers on a fault-free run, or before the fault started.
    pub false_failovers: u64,
    /// Failovers in all.
    pub failovers: u64,
    /// The decision's explanation (which signals crossed which thresholds).
    pub decision: Option<String>,
    /// From the decision to the acknowledged selector write.
    pub decision_to_redirect_ms: Option<f64>,
    /// When the fault started and the primary failed, since the run's start.
    pub fault_started_ms: Option<f64>,
    /// See `fault_started_ms`.
    pub failure_ms: Option<f64>,
    /// When the failover was verified, since the run's start.
    pub failover_ms: Option<f64>,
    /// Whether the run was interrupted (Ctrl-C) before its end.
    pub interrupted: bool,
}

impl Summary {
    /// The summary for people.
    #[must_use]
    pub fn text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
        let mut lines = vec![
            format!(
                "umbra demo ({}, fault {}, seed {}){}",
                self.mode,
                self.fault,
                self.seed,
                if self.interrupted {
                    " — interrupted"
                } else {
                    ""
                }
            ),
            format!(
                "  failover completed:     {}",
                if self.failover_completed { "yes" } else { "no" }
            ),
        ];
        if let Some(decision) = &self.decision {
            lines.push(format!("  decision:               {decision}"));
        }
        lines.extend([
            format!("  lead time:              {}", ms(self.lead_time_ms)),
            format!(
                "  decision to redirect:   {}",
                ms(self.decision_to_redirect_ms)
            ),
            format!("  switchover gap:         {}", ms(self.switchover_gap_ms)),
            format!(
                "  probes:                 {} sent, {} lost ({} in the switchover)",
                self.probes_sent,
                self.probes_lost,
                self.probes_lost_in_switchover
                    .map_or_else(|| "not measured".to_owned(), |n| n.to_string())
            ),
            format!(
                "  TCP sessions:           {} of {} survived, longest stall {:.1} ms",
                self.sessions_survived, self.sessions_total, self.longest_session_stall_ms
            ),
            format!(
                "  failovers:              {} ({} false)",
                self.failovers, self.false_failovers
            ),
        ]);
        lines.join("\n")
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The lab asked for without root.
    #[error(
        "the namespace lab needs root (network namespaces, veth pairs, cgroups); run with sudo, or use --mode simulated"
    )]
    NotRoot,
    /// The lab could not be built or torn down.
    #[error("the lab: {0}")]
    Lab(#[from] umbra_lab::LabError),
    /// The daemon did not start.
    #[error("umbra run: {0}")]
    Daemon(String),
    /// The traffic could not start.
    #[error("traffic: {0}")]
    Traffic(#[from] umbra_traffic::TrafficError),
    /// The simulated scenario could not run.
    #[error("simulation: {0}")]
    Simulation(String),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Something internal failed (a thread, the runtime).
    #[error("{0}")]
    Internal(String),
}

/// Whether this process runs as root.
#[must_use]
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A finished run: its summary and timeline.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The figures.
    pub summary: Summary,
    /// Everything observed.
    pub timeline: Timeline,
}

/// Runs the demo, blocking (it drives its own runtime and threads);
/// stops early and cleans up when `shutdown` is cancelled. Writes the
/// summary JSON and the report when asked.
///
/// # Errors
/// [`DemoError`]: the lab without root, the lab, the daemon or the
/// traffic failing to start, a file that cannot be written.
pub fn run(
    args: &DemoArgs,
    shutdown: &CancellationToken,
    progress: &mut dyn Progress,
) -> Result<Outcome, DemoError> {
    let lab = match args.mode {
        Mode::Lab => {
            if !is_root() {
                return Err(DemoError::NotRoot);
            }
            true
        }
        Mode::Simulated => false,
        Mode::Auto => is_root(),
    };
    if !lab && args.mode == Mode::Auto {
        progress.event(
            0.0,
            "not root: running the scenario on SIMULATED devices and a simulated switch \
             (no namespaces, no packets); run as root for the network-namespace lab",
        );
    }
    let outcome = if lab {
        lab::run(args, shutdown, progress)?
    } else {
        sim::run(args, shutdown, progress)?
    };
    progress.finish();
    if let Some(path) = &args.summary_json {
        let json = serde_json::to_string_pretty(&outcome.summary)
            .map_err(|e| DemoError::Internal(e.to_string()))?;
        write(path, json.as_bytes())?;
    }
    if let Some(path) = &args.report {
        write(path, report::html(&outcome).as_bytes())?;
    }
    Ok(outcome)
}

fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), DemoError> {
    std::fs::write(path, bytes).map_err(|source| DemoError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Milliseconds since the Unix epoch.
pub(crate) fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}
