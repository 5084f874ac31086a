//! Trains the shipped default model from scratch: generates the training
//! traces with `umbra-scenario` (fixed seeds), trains the GRU and writes
//! `<out>` + `<stem>.manifest.json`. Same binary and thread count, same bytes.
//!
//! `cargo run --release -p umbra-trainer --example train-default -- [OUT.onnx]`
//! (`scripts/train-default-model.sh` is the one command that runs it).
//!
//! Held-out evaluation (`umbra model eval`) uses other
//! seeds: the generator draws trace `i` from `(seed, i)` alone, so seeds 1
//! and 2 used here never produce a trace of the evaluation's seed 1000 (nor
//! of seed 500, on which the alarm threshold was chosen).

use std::path::PathBuf;
use std::time::Duration;

use umbra_scenario::ScenarioConfig;
use umbra_trainer::data::{self, Recording};
use umbra_trainer::{TrainConfig, train};

/// Seed of the faulty training traces.
const FAULTY_SEED: u64 = 1;
/// Seed of the fault-free training traces.
const FAULT_FREE_SEED: u64 = 2;
/// Seed of initialisation, split and shuffling.
const TRAIN_SEED: u64 = 7;
/// Faulty traces, 20 minutes each (the fault ramps 20 s to 10 min).
const FAULTY: usize = 1500;
const FAULTY_MINUTES: u64 = 20;
/// Fault-free traces, one hour each.
const FAULT_FREE: usize = 600;
const FAULT_FREE_MINUTES: u64 = 60;
/// Benign look-alikes per hour: a CPU blip on the primary, a traffic surge
/// on both devices. They are what a predictor confuses with the start of a
/// fault, so the training traces hold several times the defaults' share.
const BLIPS_PER_HOUR: f64 = 6.0;
const SURGES_PER_HOUR: f64 = 6.0;
/// The alarm probability written to the manifest: chosen on validation
/// traces of seed 500 (60 faults, 1 200 fault-free hours; neither trained on
/// nor the evaluation's seed 1000) with `umbra model eval --sweep`, as the
/// highest probability that keeps 90 % of faults caught 5 s ahead by the
/// failover rule (hysteresis 3): 95 % there, 85 % at 0.9995.
const THRESHOLD: f64 = 0.999;
/// Ticks per input window (500 ms each).
const WINDOW: usize = 80;
/// Ticks before the window whose mean is the baseline of the
/// `*-vs-baseline` features: 10 minutes, longer than most surges' rise and
/// hold, so a surge stands out against it.
const BASELINE_TICKS: usize = 1200;

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).map_or_else(
        || PathBuf::from("host/model/default/umbra-gru.onnx"),
        PathBuf::from,
    );
    let defaults = ScenarioConfig {
        blips_per_hour: BLIPS_PER_HOUR,
        surges_per_hour: SURGES_PER_HOUR,
        ..ScenarioConfig::default()
    };
    let faulty_config = ScenarioConfig {
        seed: FAULTY_SEED,
        faulty_traces: FAULTY,
        fault_free_traces: 0,
        trace_duration: Duration::from_secs(FAULTY_MINUTES * 60),
        ..defaults.clone()
    };
    let fault_free_config = ScenarioConfig {
        seed: FAULT_FREE_SEED,
        faulty_traces: 0,
        fault_free_traces: FAULT_FREE,
        trace_duration: Duration::from_secs(FAULT_FREE_MINUTES * 60),
        ..defaults
    };
    let mut recordings: Vec<Recording> = Vec::with_capacity(FAULTY + FAULT_FREE);
    for config in [&faulty_config, &fault_free_config] {
        for i in 0..config.trace_count() {
            let trace = umbra_scenario::generate_trace(config, i)?;
            let mut r = data::recording_from_trace(&trace);
            r.name = format!("s{}-{}", config.seed, r.name);
            recordings.push(r);
        }
    }
    eprintln!("{} training traces generated", recordings.len());

    let (window, hidden) = (WINDOW, 24);
    let config = TrainConfig {
        window,
        tick_ms: 500,
        horizon_ms: 30_000,
        // Negatives every 12 s, every other positive tick; windows of a
        // fault further than the horizon from the failure are left out.
        stride: 24,
        positive_stride: 2,
        skip_early_fault: true,
        hidden,
        epochs: 6,
        batch_size: 128,
        learning_rate: 1e-3,
        patience: 3,
        val_fraction: 0.2,
        seed: TRAIN_SEED,
        threshold: THRESHOLD,
        features: data::default_features(&umbra_scenario::METRICS)
            .into_iter()
            .chain(data::relative_features())
            .collect(),
        baseline_ticks: BASELINE_TICKS,
        model_version: format!("umbra-gru-default-h{hidden}-w{window}"),
        progress: true,
    };
    let mut trained = train(&recordings, &config)?;
    if let Some(record) = trained.manifest.training.as_mut() {
        record.insert(
            "data".into(),
            serde_json::json!({
                "generator": "umbra-scenario",
                "blips_per_hour": BLIPS_PER_HOUR,
                "surges_per_hour": SURGES_PER_HOUR,
                "faulty": { "seed": FAULTY_SEED, "traces": FAULTY, "minutes": FAULTY_MINUTES },
                "fault_free": { "seed": FAULT_FREE_SEED, "traces": FAULT_FREE, "minutes": FAULT_FREE_MINUTES },
            }),
        );
        record.insert(
            "recipe".into(),
            "scripts/train-default-model.sh (host/trainer/examples/train-default.rs)".into(),
        );
    }
    trained.save(&out)?;
    let mut report = trained.report;
    report.model_path = Some(out.clone());
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
