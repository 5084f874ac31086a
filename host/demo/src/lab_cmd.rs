//! `umbra lab up|down`: the failover lab on its own, for driving it with
//! `umbra run` by hand (the demo does all of it in one go).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use umbra_lab::failover_lab::{FailoverLab, FailoverLabOptions, FaultPlan};

use crate::{DemoError, FaultChoice};

/// `umbra lab ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LabCommand {
    /// Build the failover lab (root) and keep it up until Ctrl-C; writes a configuration for `umbra run`.
    Up(LabUpArgs),
    /// Remove what labs of processes that are gone left behind (namespaces, their processes, cgroups).
    Down,
}

/// Options of `umbra lab up`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabUpArgs {
    /// Where to write the configuration of `umbra run` for this lab (its audit log and state go next to it).
    #[arg(long, default_value = "umbra-lab.toml")]
    pub config_out: PathBuf,
    /// Inject this fault on the primary: cpu|memory|loss|conntrack|http5xx|db (none: no fault).
    #[arg(long, default_value = "none")]
    pub fault: FaultChoice,
    /// Seed of the fault's jitter.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds after the lab is up before the fault starts.
    #[arg(long, default_value_t = 60)]
    pub fault_after_s: u64,
    /// Seconds the fault ramps before the hard failure.
    #[arg(long, default_value_t = 40)]
    pub ramp_s: u64,
    /// Run without state replication in the written configuration.
    #[arg(long)]
    pub no_replication: bool,
}

/// Runs `umbra lab up|down`, blocking; `up` returns when `shutdown` is
/// cancelled, after tearing the lab down.
///
/// # Errors
/// Not root, the lab cannot be built, a file cannot be written.
pub fn run(command: &LabCommand, shutdown: &CancellationToken) -> Result<(), DemoError> {
    if !crate::is_root() {
        return Err(DemoError::NotRoot);
    }
    match command {
        LabCommand::Down => {
            let swept = umbra_lab::sweep::sweep()
                .map_err(|e| DemoError::Internal(format!("ip netns list: {e}")))?;
            println!(
                "removed {} namespaces, {} cgroups, killed {} processes",
                swept.namespaces.len(),
                swept.cgroups.len(),
                swept.processes
            );
            for name in &swept.namespaces {
                println!("  namespace {name}");
            }
            for path in &swept.cgroups {
                println!("  cgroup {}", path.display());
            }
            for failure in &swept.failures {
                eprintln!("  could not remove: {failure}");
            }
            Ok(())
        }
        LabCommand::Up(args) => up(args, shutdown),
    }
}

fn up(args: &LabUpArgs, shutdown: &CancellationToken) -> Result<(), DemoError> {
    let lab = FailoverLab::up(FailoverLabOptions::default())?;
    let info = lab.info();
    let path = std::path::absolute(&args.config_out).map_err(|source| DemoError::Write {
        path: args.config_out.clone(),
        source,
    })?;
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
    let text = crate::lab::config_text(&info, &dir, !args.no_replication);
    std::fs::write(&path, text).map_err(|source| DemoError::Write {
        path: path.clone(),
        source,
    })?;
    let json = serde_json::to_string_pretty(&info).unwrap_or_default();
    println!("failover lab up:\n{json}");
    println!(
        "\nconfiguration for the daemon: {}\n  umbra run --config {}\ntraffic from the client namespace, e.g.\n  ip netns exec {} ping {}\nCtrl-C tears the lab down.",
        path.display(),
        path.display(),
        info.namespaces.client,
        info.addresses.server
    );
    let started = Instant::now();
    let mut fault = None;
    while !shutdown.is_cancelled() {
        std::thread::sleep(Duration::from_millis(100));
        if let (FaultChoice(Some(kind)), None) = (args.fault, &fault)
            && started.elapsed() >= Duration::from_secs(args.fault_after_s)
        {
            println!(
                "injecting {kind} on the primary (seed {}), ramping over {} s, then a hard failure",
                args.seed, args.ramp_s
            );
            fault = Some(lab.inject(
                kind,
                FaultPlan {
                    seed: args.seed,
                    ramp: Duration::from_secs(args.ramp_s),
                    then_fail: true,
                },
            )?);
        }
    }
    if let Some(handle) = fault {
        let _ = handle.stop();
    }
    println!("tearing the lab down");
    lab.down();
    Ok(())
}
