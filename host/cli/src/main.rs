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
    /// Run the host daemon: protect the pairs of a configuration (P4Runtime, replication, prediction, failover).
    Run(umbra_daemon::run::RunArgs),
    /// Run Umbra's software P4 switch: umbra.p4 on real interfaces, served over P4Runtime.
    Switch(umbra_switch::SwitchOptions),
    /// Run a device agent serving umbra.device.v1 (state snapshot, change stream, apply, metrics).
    Agent(umbra_agent::AgentOptions),
    /// Replicate device state from a primary agent to a shadow agent (or both ways), with anti-entropy.
    Replicate(umbra_replicate::ReplicateArgs),
    /// The whole lab with a predictive failover: a fault ramps on the primary, the daemon fails over before it fails (simulated devices without root).
    Demo(umbra_demo::DemoArgs),
    /// The failover lab on its own (root): `umbra lab up` (until Ctrl-C, with a configuration for `umbra run`), `umbra lab down` (remove leftovers).
    #[command(subcommand)]
    Lab(umbra_demo::lab_cmd::LabCommand),
    /// Write, build and test policies: `umbra policy new|build|test`; `umbra policy reload` asks the daemon.
    #[command(subcommand)]
    Policy(PolicyVerb),
    /// Show the running daemon's pairs: phase, active device, last decision and why, replication, health.
    Status {
        #[command(flatten)]
        client: umbra_ops::client::ClientArgs,
        #[command(flatten)]
        args: umbra_ops::client::StatusArgs,
    },
    /// Ask the running daemon to fail a pair over to its standby now.
    Failover {
        #[command(flatten)]
        client: umbra_ops::client::ClientArgs,
        #[command(flatten)]
        args: umbra_ops::client::FailoverArgs,
    },
    /// Generate scenarios, train and evaluate the failure predictor, learn correlation rules: `umbra model generate|train|eval|rules`.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Score detectors on benchmark data: `umbra eval nab`.
    #[command(subcommand)]
    Eval(EvalCommand),
}

/// `umbra policy ...`: authoring verbs, and reload on the running daemon.
#[derive(Debug, Subcommand)]
enum PolicyVerb {
    #[command(flatten)]
    Author(umbra_policy_cli::PolicyCommand),
    /// Ask the running daemon to reload its policies.
    Reload(umbra_ops::client::ClientArgs),
}

/// `umbra model ...`.
#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Write seeded, reproducible telemetry scenarios (faults ramping into failures, fault-free traces) to a directory.
    Generate(umbra_scenario::GenerateArgs),
    /// Train the GRU failure predictor on a scenario directory and write a standard ONNX file plus its manifest.
    Train(umbra_trainer::TrainArgs),
    /// Learn co-rise rules for the correlation policy: metric pairs that rise together before failures, never otherwise.
    Rules(umbra_correlate::RulesArgs),
    /// Evaluate the predictor, the drift detector and the failover rule on held-out scenarios (event-wise).
    Eval(umbra_trainer::EvalArgs),
    /// Ask the running daemon to reload its model (the configured path, or --path); a model that does not fit is refused and the old one keeps serving.
    Reload {
        #[command(flatten)]
        client: umbra_ops::client::ClientArgs,
        /// An .onnx file (its manifest next to it) instead of the configured one.
        #[arg(long)]
        path: Option<std::path::PathBuf>,
    },
}

/// `umbra eval ...`.
#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Run the drift detector over NAB-format data, write its scores and score them with Umbra's NAB scorer.
    Nab(umbra_nab::NabArgs),
}

/// Exit code for a usage or configuration error (BSD `EX_USAGE`).
const EXIT_USAGE: u8 = 64;
/// Exit code of a command stopped by SIGINT or SIGTERM (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

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
    let code = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
        let code = match cli.command {
            Command::Run(args) => match umbra_daemon::run::run_cmd(args, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(umbra_daemon::run::RunError::Config(error)) => {
                    eprintln!("umbra run: invalid configuration:\n{error}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(error) => {
                    eprintln!("umbra run: {}", chain(&error));
                    ExitCode::FAILURE
                }
            },
            Command::Switch(options) => match umbra_switch::run(options, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error @ umbra_switch::SwitchError::InvalidOptions(_)) => {
                    eprintln!("umbra switch: {error}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(error) => {
                    eprintln!("umbra switch: {}", chain(&error));
                    ExitCode::FAILURE
                }
            },
            Command::Agent(options) => match umbra_agent::run(options, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error @ umbra_agent::AgentError::InvalidOptions(_)) => {
                    eprintln!("umbra agent: {error}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(error) => {
                    eprintln!("umbra agent: {}", chain(&error));
                    ExitCode::FAILURE
                }
            },
            Command::Replicate(args) => match umbra_replicate::run(args, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error @ umbra_replicate::ReplicateError::InvalidOptions(_)) => {
                    eprintln!("umbra replicate: {error}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(error) => {
                    eprintln!("umbra replicate: {}", chain(&error));
                    ExitCode::FAILURE
                }
            },
            Command::Demo(args) => demo(args, shutdown).await,
            Command::Lab(command) => {
                let stop = shutdown.clone();
                match tokio::task::spawn_blocking(move || umbra_demo::lab_cmd::run(&command, &stop))
                    .await
                {
                    Ok(Ok(())) => ExitCode::SUCCESS,
                    Ok(Err(error @ umbra_demo::DemoError::NotRoot)) => {
                        eprintln!("umbra lab: {error}");
                        ExitCode::from(EXIT_USAGE)
                    }
                    Ok(Err(error)) => {
                        eprintln!("umbra lab: {}", chain(&error));
                        ExitCode::FAILURE
                    }
                    Err(error) => {
                        eprintln!("umbra lab: {error}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Policy(PolicyVerb::Author(command)) => {
                tokio::task::spawn_blocking(move || umbra_policy_cli::run(command))
                    .await
                    .unwrap_or(ExitCode::FAILURE)
            }
            Command::Policy(PolicyVerb::Reload(client)) => {
                printed(umbra_ops::client::reload_policies(&client).await)
            }
            Command::Status { client, args } => {
                printed(umbra_ops::client::status(&client, &args).await)
            }
            Command::Failover { client, args } => {
                printed(umbra_ops::client::failover(&client, &args).await)
            }
            Command::Model(ModelCommand::Reload { client, path }) => {
                printed(umbra_ops::client::reload_model(&client, path).await)
            }
            Command::Model(command) => {
                blocking("umbra model", shutdown, move || model(command)).await
            }
            Command::Eval(EvalCommand::Nab(args)) => {
                blocking("umbra eval nab", shutdown, move || {
                    let report = umbra_nab::run(&args)?;
                    println!("{report}");
                    Ok(())
                })
                .await
            }
        };
        signals.abort();
        code
    });
    // A CPU-bound command interrupted by a signal is still running on its
    // blocking thread: do not wait for it.
    runtime.shutdown_background();
    code
}

/// `umbra model generate|train|eval|rules`.
fn model(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Generate(args) => umbra_scenario::generate_cmd(&args),
        ModelCommand::Rules(args) => umbra_correlate::rules_cmd(&args).map(|_| ()),
        ModelCommand::Eval(args) => {
            let report = umbra_trainer::eval_cmd(&args)?;
            println!("{report}");
            Ok(())
        }
        ModelCommand::Train(args) => {
            let report = umbra_trainer::train_cmd(&args)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        ModelCommand::Reload { .. } => unreachable!("answered by the daemon, not run here"),
    }
}

/// Runs a CPU-bound command off the async runtime; an error is printed with
/// its causes and exits 1; SIGINT or SIGTERM stops it (exit 130), whatever
/// it was doing.
async fn blocking(
    name: &'static str,
    shutdown: CancellationToken,
    f: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> ExitCode {
    let result = tokio::select! {
        result = tokio::task::spawn_blocking(f) => result,
        () = shutdown.cancelled() => {
            eprintln!("{name}: interrupted");
            return ExitCode::from(EXIT_INTERRUPTED);
        }
    };
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `umbra demo` on a thread of its own (it drives its own runtime)
/// and prints its summary.
async fn demo(args: umbra_demo::DemoArgs, shutdown: CancellationToken) -> ExitCode {
    let stop = shutdown.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut console = umbra_demo::progress::Console::stdout();
        umbra_demo::run(&args, &stop, &mut console)
    })
    .await;
    match outcome {
        Ok(Ok(outcome)) => {
            println!("\n{}", outcome.summary.text());
            if outcome.summary.interrupted {
                ExitCode::from(EXIT_INTERRUPTED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok(Err(error @ umbra_demo::DemoError::NotRoot)) => {
            eprintln!("umbra demo: {error}");
            ExitCode::from(EXIT_USAGE)
        }
        Ok(Err(error)) => {
            eprintln!("umbra demo: {}", chain(&error));
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("umbra demo: {error}");
            ExitCode::FAILURE
        }
    }
}

fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
/// Prints a management client's answer, or its error (exit code 1).
fn printed(answer: anyhow::Result<String>) -> ExitCode {
    match answer {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("umbra: {error:#}");
            ExitCode::FAILURE
        }
    }
}

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
