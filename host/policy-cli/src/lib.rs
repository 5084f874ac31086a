//! `umbra policy new|build|test`: what a policy author runs to scaffold a
//! policy from the SDK's template, build it into a `wasm32-wasip2`
//! component, and run it on a case in the real sandbox.
//!
//! The `umbra` binary embeds [`PolicyCommand`] as its `policy` subcommand
//! and calls [`run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

mod cargo_build;
mod scaffold;
mod test_case;

pub use cargo_build::build;
pub use scaffold::{Scaffold, scaffold};
pub use test_case::{TestOptions, TestOutcome, TestReport, test_policy};

/// The kinds of policy, as a command-line value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Drift: observation in, drift score out.
    Drift,
    /// Correlation: observation in, correlation score and signals out.
    Correlation,
    /// Failover: drift, correlation and prediction in, go or hold out.
    Failover,
}

impl From<KindArg> for umbra_policy_logic::PolicyKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Drift => Self::Drift,
            KindArg::Correlation => Self::Correlation,
            KindArg::Failover => Self::Failover,
        }
    }
}

/// `umbra policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a new policy crate from the SDK's template.
    New {
        /// Name of the policy (and of its crate): lower-case letters, digits, `-` and `_`.
        name: String,
        /// Kind of policy.
        #[arg(long, value_enum, default_value = "drift")]
        kind: KindArg,
        /// Directory to create the policy in (the crate goes to DIR/NAME).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Path of the `umbra-policy-sdk` crate the policy depends on
        /// (default: the SDK of the source tree this `umbra` was built from).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Build a policy crate into a WebAssembly component (`cargo build --release --target wasm32-wasip2`) and print its path.
    Build {
        /// The policy crate.
        #[arg(long, default_value = ".")]
        path: PathBuf,
        /// Cargo's target directory (default: the crate's own `target/`).
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
    /// Run one evaluation of a policy in the real sandbox and print the decision and who made it.
    ///
    /// The decision goes to stdout as JSON, in the format --expect reads;
    /// who answered (the policy, or the fallback and the fault) to stderr.
    /// Exit status: 0 if the policy answered (and matched --expect), 1 if
    /// the answer differs from --expect, 2 if the policy was refused at load
    /// or faulted (the fallback's decision is printed, with the fault), 64
    /// on a usage error (unreadable or invalid case).
    Test {
        /// The policy component (`.wasm`).
        policy: PathBuf,
        /// The case: JSON `{"config": {...}, "input": {"observation": {...}}}` (or `"failover"`).
        #[arg(long)]
        input: PathBuf,
        /// The expected answer: JSON `{"drift": {...}}`, `{"correlation": {...}}` or `{"failover": {...}}`.
        #[arg(long)]
        expect: Option<PathBuf>,
        /// Configuration passed to `configure`, over the case's own (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
        config: Vec<(String, String)>,
        /// Deadline of the evaluation, in milliseconds.
        #[arg(long, default_value_t = 5.0)]
        deadline_ms: f64,
        /// Memory cap of the policy, in MiB.
        #[arg(long, default_value_t = 16)]
        memory_mib: u64,
        /// Absolute tolerance when comparing numbers with --expect.
        #[arg(long, default_value_t = 1e-9)]
        tolerance: f64,
        /// Print the whole report as JSON (decision, who answered, fault,
        /// differences) instead of the decision alone.
        #[arg(long)]
        report: bool,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Exit status of a usage error (BSD `EX_USAGE`).
const EXIT_USAGE: u8 = 64;

/// Runs a `umbra policy` command, printing results on stdout and problems
/// on stderr; returns the process's exit status. Blocking (it compiles
/// components and runs cargo): call it from `main` or `spawn_blocking`.
pub fn run(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::New {
            name,
            kind,
            dir,
            sdk_path,
        } => match scaffold(&name, kind.into(), &dir, sdk_path.as_deref()) {
            Ok(created) => {
                println!("{}", created.dir.display());
                eprintln!(
                    "created the {} policy `{name}`; next: `umbra policy build --path {}`",
                    created.kind,
                    created.dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("umbra policy new: {error:#}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        PolicyCommand::Build { path, target_dir } => match build(&path, target_dir.as_deref()) {
            Ok(wasm) => {
                println!("{}", wasm.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("umbra policy build: {error:#}");
                ExitCode::FAILURE
            }
        },
        PolicyCommand::Test {
            policy,
            input,
            expect,
            config,
            deadline_ms,
            memory_mib,
            tolerance,
            report,
        } => {
            let options = test_case::TestOptions {
                policy,
                input,
                expect,
                config,
                deadline: std::time::Duration::from_secs_f64(deadline_ms.max(0.0) / 1e3),
                memory_bytes: memory_mib << 20,
                tolerance,
            };
            match test_policy(&options) {
                Ok(outcome) => {
                    outcome.print(report);
                    ExitCode::from(outcome.exit_code())
                }
                Err(error) => {
                    eprintln!("umbra policy test: {error:#}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_pairs_parse() {
        assert_eq!(parse_pair("a=1").unwrap(), ("a".into(), "1".into()));
        assert_eq!(parse_pair("metrics=cpu,memory").unwrap().1, "cpu,memory");
        assert_eq!(parse_pair("x=a=b").unwrap(), ("x".into(), "a=b".into()));
        assert!(parse_pair("novalue").is_err());
        assert!(parse_pair("=1").is_err());
    }

    #[test]
    fn command_line_parses() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            command: PolicyCommand,
        }
        let cli = Cli::try_parse_from([
            "policy", "test", "p.wasm", "--input", "c.json", "--config", "a=1", "--config", "b=2",
        ])
        .unwrap();
        match cli.command {
            PolicyCommand::Test { config, expect, .. } => {
                assert_eq!(config.len(), 2);
                assert!(expect.is_none());
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["policy", "new", "my-drift", "--kind", "failover"]).unwrap();
        assert!(matches!(
            cli.command,
            PolicyCommand::New {
                kind: KindArg::Failover,
                ..
            }
        ));
    }
}
