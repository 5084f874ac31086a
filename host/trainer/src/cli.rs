//! `umbra model train`: flags, loading the traces, training and writing the model.

use std::path::PathBuf;

use anyhow::Context;

use crate::data::{self, Recording};
use crate::train::{TrainConfig, TrainReport, train};

/// Flags of `umbra model train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Directory of recorded or simulated traces (`umbra model generate` output).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Model file to write; the manifest goes next to it as `<stem>.manifest.json`.
    #[arg(long, value_name = "FILE", default_value = "model.onnx")]
    pub out: PathBuf,
    /// Seed for initialisation, the train/validation split and shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Maximum number of epochs.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// GRU hidden size.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Ticks per input window (40 ticks of 500 ms = 20 s of history).
    #[arg(long, default_value_t = 40)]
    pub window: usize,
    /// With N >= 1, also feed the shadow- and baseline-relative features
    /// (primary minus shadow; value minus its mean over the N ticks before
    /// the window), as the default model does; 0 leaves them out.
    #[arg(long = "baseline-ticks", default_value_t = 0)]
    pub baseline_ticks: usize,
    /// Predict failure within this many milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub horizon_ms: u64,
    /// Ticks between the ends of consecutive negative training windows.
    #[arg(long, default_value_t = 2)]
    pub stride: usize,
    /// Ticks between the ends of consecutive positive training windows
    /// (default: `--stride`).
    #[arg(long)]
    pub positive_stride: Option<usize>,
    /// Leave out windows of a fault further than the horizon from the failure
    /// (needs traces that record when the fault started).
    #[arg(long)]
    pub skip_early_fault: bool,
    /// Windows per gradient step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub learning_rate: f64,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Share of traces held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    /// Default alarm probability written to the manifest.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// Version string for the manifest (default: `gru-h<hidden>-w<window>-s<seed>`).
    #[arg(long)]
    pub model_version: Option<String>,
    /// Do not draw a progress bar (it is never drawn when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs `umbra model train`: reads the traces in `--data`, trains, writes the
/// model and its manifest, and returns what happened.
///
/// # Errors
/// Unreadable or unusable traces, an invalid configuration, or a file that
/// cannot be written; the message says which.
pub fn train_cmd(args: &TrainArgs) -> anyhow::Result<TrainReport> {
    let recordings = load_dir(&args.data)?;
    let config = TrainConfig {
        window: args.window,
        tick_ms: recordings.first().map_or(500, |r| r.tick_ms),
        horizon_ms: args.horizon_ms,
        stride: args.stride,
        positive_stride: args.positive_stride.unwrap_or(args.stride),
        skip_early_fault: args.skip_early_fault,
        hidden: args.hidden,
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        patience: args.patience,
        val_fraction: args.val_fraction,
        seed: args.seed,
        threshold: args.threshold,
        features: if args.baseline_ticks > 0 {
            let mut f = data::default_features(&umbra_scenario::METRICS);
            f.extend(data::relative_features());
            f
        } else {
            data::default_features(&umbra_scenario::METRICS)
        },
        baseline_ticks: args.baseline_ticks,
        model_version: args
            .model_version
            .clone()
            .unwrap_or_else(|| format!("gru-h{}-w{}-s{}", args.hidden, args.window, args.seed)),
        progress: !args.no_progress,
    };
    let trained = train(&recordings, &config)
        .with_context(|| format!("training on {}", args.data.display()))?;
    trained
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let mut report = trained.report;
    report.model_path = Some(args.out.clone());
    report.manifest_path = Some(umbra_model::Manifest::path_for(&args.out));
    Ok(report)
}

/// Reads every trace in `dir` with `umbra-scenario`'s reader.
fn load_dir(dir: &std::path::Path) -> anyhow::Result<Vec<Recording>> {
    let traces = umbra_scenario::read_dir(dir)
        .with_context(|| format!("reading traces from {}", dir.display()))?;
    anyhow::ensure!(!traces.is_empty(), "no traces in {}", dir.display());
    Ok(traces.iter().map(data::recording_from_trace).collect())
}
