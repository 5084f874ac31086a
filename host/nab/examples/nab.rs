//! Runs `umbra eval nab` standalone, until the CLI wires it in:
//! `cargo run --release -p umbra-nab --example nab -- --data DIR --out DIR`.

use clap::Parser;

/// `umbra eval nab` as a standalone program.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    nab: umbra_nab::NabArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let report = umbra_nab::run(&cli.nab)?;
    print!("{report}");
    Ok(())
}
