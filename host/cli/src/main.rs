//! `umbra`: the one binary. Each subcommand lives in its own crate; this file
//! only parses the command line, sets up logging and signals, and dispatches.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Umbra: predictive failover to a warm shadow device, through P4Runtime.
#[derive(Debug, Parser)]
#[command(name = "umbra", version, about, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `umbra_switch=debug`.
    #[arg(long, global = true, env = "UMBRA_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Umbra's software P4 switch: umbra.p4 on real interfaces, served over P4Runtime.
    Switch(umbra_switch::SwitchOptions),
}

/// Exit code for a usage or configuration error (BSD `EX_USAGE`).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("umbra: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
        let code = match cli.command {
            Command::Switch(options) => match umbra_switch::run(options, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error @ umbra_switch::SwitchError::InvalidOptions(_)) => {
                    eprintln!("umbra switch: {error}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(error) => {
                    eprintln!(
                        "umbra switch: {}",
                        anyhow::Error::from(error)
                            .chain()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(": ")
                    );
                    ExitCode::FAILURE
                }
            },
        };
        signals.abort();
        code
    })
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}
