//! Prints, for one generated trace, the predictor's failure probability at
//! every tick beside the metrics a reader needs to see why: how a false alarm
//! of `umbra model eval` is looked at.
//!
//! `cargo run --release -p umbra-trainer --example trace-probabilities --
//!  SEED FAULTY FAULT_FREE MINUTES INDEX [MODEL.onnx] [FROM_S TO_S]`
//!
//! The first four arguments are `umbra model eval`'s `--seed`, `--faulty`,
//! `--fault-free` and `--duration` (in minutes): the generator draws trace
//! `INDEX` of that set exactly as the evaluation did. Output is CSV: seconds
//! into the trace, probability (empty before the first full window), then
//! primary and shadow CPU and receive rate, the primary's sessions and 5xx
//! rate.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use umbra_model::Predictor;
use umbra_scenario::ScenarioConfig;
use umbra_trainer::TraceUpto;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> anyhow::Result<T> {
    args.get(i)
        .with_context(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| anyhow::anyhow!("bad {what}: {}", args[i]))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed: u64 = arg(&args, 0, "SEED")?;
    let faulty: usize = arg(&args, 1, "FAULTY")?;
    let fault_free: usize = arg(&args, 2, "FAULT_FREE")?;
    let minutes: u64 = arg(&args, 3, "MINUTES")?;
    let index: usize = arg(&args, 4, "INDEX")?;
    let model = args.get(5).map_or_else(
        || PathBuf::from("host/model/default/umbra-gru.onnx"),
        PathBuf::from,
    );
    let from_s: f64 = args.get(6).map_or(Ok(0.0), |_| arg(&args, 6, "FROM_S"))?;
    let to_s: f64 = args
        .get(7)
        .map_or(Ok(f64::MAX), |_| arg(&args, 7, "TO_S"))?;

    // The same settings `umbra model eval` derives from its flags.
    let defaults = ScenarioConfig::default();
    let duration = Duration::from_secs(minutes * 60);
    let config = ScenarioConfig {
        seed,
        faulty_traces: faulty,
        fault_free_traces: fault_free,
        trace_duration: duration,
        min_history: defaults
            .min_history
            .min(duration.saturating_sub(defaults.ramp_max + defaults.post_failure)),
        ..defaults
    };
    let trace = umbra_scenario::generate_trace(&config, index)?;
    let mut predictor = Predictor::load(&model)?;
    let window = predictor.manifest().window;
    let tick_s = trace.tick_ms() as f64 / 1000.0;
    let series = |device, metric| trace.series(device, metric);
    let (p, s) = (
        umbra_scenario::Device::Primary,
        umbra_scenario::Device::Shadow,
    );
    let columns = [
        ("p.cpu", series(p, "cpu")),
        ("s.cpu", series(s, "cpu")),
        ("p.rx-pps", series(p, "rx-pps")),
        ("s.rx-pps", series(s, "rx-pps")),
        ("p.sessions", series(p, "sessions")),
        ("p.5xx", series(p, "http-5xx-rate")),
    ];
    println!(
        "# {} ({:?})",
        trace.name(),
        trace.meta().failure_onset_ms.map(|t| t - trace.start_ms())
    );
    print!("t_s,probability");
    for (name, _) in &columns {
        print!(",{name}");
    }
    println!();
    for end in 0..trace.len() {
        let t = end as f64 * tick_s;
        if t < from_s || t > to_s {
            continue;
        }
        let probability = if end + 1 >= window {
            let view = TraceUpto { trace: &trace, end };
            let p = predictor.predict_sources(&[&view])?[0];
            format!("{p:.5}")
        } else {
            String::new()
        };
        print!("{t:.1},{probability}");
        for (_, values) in &columns {
            match values[end] {
                Some(v) => print!(",{v:.4}"),
                None => print!(","),
            }
        }
        println!();
    }
    Ok(())
}
