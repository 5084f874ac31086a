//! Trains on synthetic traces with the production window and hidden size and
//! prints the report: a smoke run and a timing reference.
//!
//! `cargo run -p umbra-trainer --example synthetic --release -- TRACES TICKS [OUT.onnx]`

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let traces: usize = args.next().map_or(Ok(40), |a| a.parse())?;
    let ticks: usize = args.next().map_or(Ok(1200), |a| a.parse())?;
    let out = args.next();
    let recordings = umbra_trainer::synthetic::recordings(traces, ticks, 1);
    let mut config = umbra_trainer::synthetic::quick_config(1);
    config.window = 40;
    config.hidden = 32;
    config.horizon_ms = 30_000;
    config.batch_size = 128;
    config.learning_rate = 3e-3;
    config.epochs = 30;
    config.patience = 5;
    config.progress = true;
    let trained = umbra_trainer::train(&recordings, &config)?;
    if let Some(out) = out {
        trained.save(std::path::Path::new(&out))?;
    }
    println!("{}", serde_json::to_string_pretty(&trained.report)?);
    Ok(())
}
