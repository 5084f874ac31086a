//! The training loop: weighted binary cross-entropy on labelled windows,
//! AdamW, early stopping on the validation traces, deterministic for a seed.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use umbra_model::Manifest;

use crate::data::{self, FeatureSpec, Recording, Windows};
use crate::export::{self, ExportOptions};
use crate::model::GruClassifier;
use crate::{Error, Result};

/// Everything that shapes a training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Ticks per input window.
    pub window: usize,
    /// Milliseconds per tick; every recording must match.
    pub tick_ms: u64,
    /// A window is positive when the failure onset is at most this far after its last tick.
    pub horizon_ms: u64,
    /// Ticks between the ends of two consecutive negative training windows.
    pub stride: usize,
    /// Ticks between the ends of two consecutive positive training windows.
    pub positive_stride: usize,
    /// Leave out windows of a fault that are further than the horizon from
    /// the failure (see [`data::Cut::skip_early_fault`]).
    pub skip_early_fault: bool,
    /// GRU hidden size.
    pub hidden: usize,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Windows per gradient step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Stop after this many epochs without a better validation loss.
    pub patience: usize,
    /// Share of traces held out for validation (split by trace).
    pub val_fraction: f64,
    /// Seeds initialisation, the split and the shuffling.
    pub seed: u64,
    /// Default alarm probability written to the manifest.
    pub threshold: f64,
    /// The input features, in order.
    pub features: Vec<FeatureSpec>,
    /// Ticks before the window that the `*-vs-baseline` features average
    /// (written to the manifest); 0 when no feature uses a baseline.
    pub baseline_ticks: usize,
    /// Version string written to the manifest and the model's metadata.
    pub model_version: String,
    /// Draw a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
}

impl TrainConfig {
    fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                p.push(msg.to_owned());
            }
        };
        check(self.window >= 1, "window must be at least 1 tick");
        check(self.tick_ms >= 1, "tick must be at least 1 ms");
        check(self.horizon_ms >= 1, "horizon must be at least 1 ms");
        check(self.hidden >= 1, "hidden size must be at least 1");
        check(self.epochs >= 1, "epochs must be at least 1");
        check(self.batch_size >= 1, "batch size must be at least 1");
        check(
            self.learning_rate.is_finite() && self.learning_rate > 0.0,
            "learning rate must be finite and > 0",
        );
        check(
            (0.0..1.0).contains(&self.val_fraction),
            "validation fraction must be in [0, 1)",
        );
        check(
            (0.0..=1.0).contains(&self.threshold),
            "threshold must be in [0, 1]",
        );
        check(
            !self.features.is_empty(),
            "at least one feature is required",
        );
        p
    }
}

/// Loss and ranking quality after one epoch.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean weighted loss over the epoch's training batches.
    pub train_loss: f64,
    /// Weighted loss on the validation windows, if there are any.
    pub val_loss: Option<f64>,
    /// Area under the ROC curve on the validation windows, if both classes occur.
    pub val_auc: Option<f64>,
}

/// What a training run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Where the model was written (set by [`crate::train_cmd`]).
    pub model_path: Option<std::path::PathBuf>,
    /// Where the manifest was written (set by [`crate::train_cmd`]).
    pub manifest_path: Option<std::path::PathBuf>,
    /// Training traces.
    pub train_traces: usize,
    /// Validation traces.
    pub val_traces: usize,
    /// Training windows.
    pub train_windows: usize,
    /// Positive training windows.
    pub train_positives: usize,
    /// Validation windows.
    pub val_windows: usize,
    /// Positive validation windows.
    pub val_positives: usize,
    /// Weight of a positive window in the loss (negatives / positives).
    pub pos_weight: f64,
    /// Epochs run before stopping.
    pub epochs_run: usize,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Per-epoch losses.
    pub history: Vec<EpochStats>,
    /// Wall-clock time of the run, in milliseconds.
    pub elapsed_ms: u64,
}

impl TrainReport {
    /// The stats of the kept epoch.
    #[must_use]
    pub fn best(&self) -> Option<&EpochStats> {
        self.history.iter().find(|e| e.epoch == self.best_epoch)
    }
}

/// A trained model with its manifest, ready to export.
pub struct Trained {
    /// The classifier with the best epoch's weights.
    pub model: GruClassifier,
    /// The manifest, with fitted scaling and a training record.
    pub manifest: Manifest,
    /// What the run did.
    pub report: TrainReport,
}

impl Trained {
    /// The ONNX file for this model.
    ///
    /// # Errors
    /// Candle errors reading the weights.
    pub fn onnx_bytes(&self) -> Result<Vec<u8>> {
        let weights = self.model.weights()?;
        Ok(export::to_bytes(
            &weights,
            &ExportOptions {
                input: self.manifest.input.clone(),
                output: self.manifest.output.clone(),
                window: self.manifest.window,
                model_version: self.manifest.model_version.clone(),
            },
        ))
    }

    /// Writes `out` (the `.onnx` file) and its manifest next to it.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be written, [`Error::Model`] if the
    /// manifest does not validate.
    pub fn save(&self, out: &Path) -> Result<()> {
        let bytes = self.onnx_bytes()?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(out, bytes).map_err(|source| Error::Io {
            path: out.to_path_buf(),
            source,
        })?;
        self.manifest.save(&Manifest::path_for(out))?;
        Ok(())
    }

    /// Failure probabilities from the trainer's own (candle) forward pass for
    /// windows built with the manifest: `x` is `[rows, window, features]` row-major.
    ///
    /// # Errors
    /// Candle errors, for example a slice of the wrong length.
    pub fn predict(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.model.predict(x, rows, self.manifest.window)
    }
}

/// Numerically stable weighted binary cross-entropy on logits:
/// `sum(w * (max(x, 0) - x * y + ln(1 + e^-|x|))) / sum(w)`.
fn weighted_bce(logits: &Tensor, y: &Tensor, w: &Tensor) -> Result<Tensor> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let per = ((logits.relu()? - (logits * y)?)? + softplus)?;
    Ok((per * w)?.sum_all()?.broadcast_div(&w.sum_all()?)?)
}

/// The same loss in f64 over plain slices, for evaluation.
fn weighted_bce_f64(logits: &[f32], y: &[f32], pos_weight: f64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (&x, &y) in logits.iter().zip(y) {
        let (x, y) = (f64::from(x), f64::from(y));
        let w = if y > 0.5 { pos_weight } else { 1.0 };
        num += w * (x.max(0.0) - x * y + (-x.abs()).exp().ln_1p());
        den += w;
    }
    if den > 0.0 { num / den } else { 0.0 }
}

/// Area under the ROC curve (Mann–Whitney U with ties counted half);
/// `None` unless both classes are present.
#[must_use]
pub fn auc(scores: &[f32], labels: &[f32]) -> Option<f64> {
    let mut pairs: Vec<(f32, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &l)| (s, l > 0.5))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n_pos = pairs.iter().filter(|p| p.1).count();
    let n_neg = pairs.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    // Sum of positive ranks, with tied scores sharing their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

fn gather(w: &Windows, rows: &[usize], row_len: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x = Vec::with_capacity(rows.len() * row_len);
    let mut y = Vec::with_capacity(rows.len());
    for &r in rows {
        x.extend_from_slice(&w.x[r * row_len..(r + 1) * row_len]);
        y.push(w.y[r]);
    }
    (x, y)
}

/// Logits for every window, in batches.
fn logits_all(model: &GruClassifier, w: &Windows, window: usize) -> Result<Vec<f32>> {
    let row_len = window * model.features();
    let mut out = Vec::with_capacity(w.len());
    for start in (0..w.len()).step_by(1024) {
        let end = (start + 1024).min(w.len());
        let x = Tensor::from_slice(
            &w.x[start * row_len..end * row_len],
            (end - start, window, model.features()),
            &Device::Cpu,
        )?;
        out.extend(model.logits(&x)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// Trains a classifier on `recordings`.
///
/// Traces are split by trace into training and validation; feature scaling is
/// fitted on the training traces; windows are labelled by whether the failure
/// onset falls within the horizon. Positives are weighted by
/// negatives/positives in the loss so the rare class counts as much as the
/// common one. After each epoch the validation loss is measured; training stops
/// after `patience` epochs without improvement and the best epoch's weights
/// are kept (without validation traces, the training loss stands in).
///
/// # Errors
/// [`Error::InvalidConfig`] for a bad configuration, [`Error::Data`] when the
/// traces cannot be used (missing metrics, wrong tick, no positive or no
/// negative training window), candle errors from training.
pub fn train(recordings: &[Recording], config: &TrainConfig) -> Result<Trained> {
    let started = Instant::now();
    let problems = config.validate();
    if !problems.is_empty() {
        return Err(Error::InvalidConfig(problems));
    }
    if recordings.is_empty() {
        return Err(Error::Data("no traces to train on".to_owned()));
    }
    let (train_ids, val_ids) = data::split_by_trace(recordings, config.val_fraction, config.seed);
    let train_recs: Vec<(usize, &Recording)> =
        train_ids.iter().map(|&i| (i, &recordings[i])).collect();
    let val_recs: Vec<(usize, &Recording)> = val_ids.iter().map(|&i| (i, &recordings[i])).collect();
    let fit_on: Vec<&Recording> = train_recs.iter().map(|(_, r)| *r).collect();
    let features = data::fit_features(
        &fit_on,
        &config.features,
        config.window,
        config.baseline_ticks,
    )?;

    let mut manifest = Manifest {
        format: umbra_model::manifest::FORMAT,
        model_version: config.model_version.clone(),
        input: "window".to_owned(),
        output: "p_fail".to_owned(),
        window: config.window,
        tick_ms: config.tick_ms,
        horizon_ms: config.horizon_ms,
        threshold: config.threshold,
        baseline_ticks: config.baseline_ticks,
        features,
        training: None,
    };
    let problems = manifest.validate();
    if !problems.is_empty() {
        return Err(Error::InvalidConfig(problems));
    }

    let cut = data::Cut {
        stride: config.stride,
        positive_stride: config.positive_stride,
        skip_early_fault: config.skip_early_fault,
    };
    let train_w = data::windows_cut(&train_recs, &manifest, cut)?;
    let val_w = data::windows_cut(&val_recs, &manifest, cut)?;
    let positives = train_w.positives();
    let negatives = train_w.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(Error::Data(format!(
            "training windows need both classes: {positives} positive, {negatives} negative \
             (are there failing and fault-free traces longer than the window?)"
        )));
    }
    let pos_weight = negatives as f64 / positives as f64;
    tracing::info!(
        train_windows = train_w.len(),
        positives,
        val_windows = val_w.len(),
        pos_weight,
        "training data ready"
    );

    let model = GruClassifier::new(manifest.features.len(), config.hidden, config.seed)?;
    let mut opt = AdamW::new(
        model.vars(),
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: 1e-4,
            ..ParamsAdamW::default()
        },
    )?;
    let row_len = config.window * manifest.features.len();
    let batches_per_epoch = train_w.len().div_ceil(config.batch_size);
    let bar = if config.progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new((batches_per_epoch * config.epochs) as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    // Shuffling has its own stream so changing the split logic cannot
    // silently change the batch order for the same seed, and vice versa.
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x5EED_0FBA_7C4E);
    let mut order: Vec<usize> = (0..train_w.len()).collect();
    let mut history = Vec::new();
    // (score, epoch, weights) of the best epoch so far.
    let mut best: Option<(f64, usize, crate::model::Snapshot)> = None;
    let mut since_best = 0;
    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for batch in order.chunks(config.batch_size) {
            let (x, y) = gather(&train_w, batch, row_len);
            let w: Vec<f32> = y
                .iter()
                .map(|&y| if y > 0.5 { pos_weight as f32 } else { 1.0 })
                .collect();
            let n = batch.len();
            let x = Tensor::from_vec(x, (n, config.window, manifest.features.len()), &Device::Cpu)?;
            let y = Tensor::from_vec(y, (n, 1), &Device::Cpu)?;
            let w = Tensor::from_vec(w, (n, 1), &Device::Cpu)?;
            let loss = weighted_bce(&model.logits(&x)?, &y, &w)?;
            opt.backward_step(&loss)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            bar.inc(1);
        }
        let train_loss = loss_sum / batches_per_epoch as f64;
        let (val_loss, val_auc) = if val_w.is_empty() {
            (None, None)
        } else {
            let logits = logits_all(&model, &val_w, config.window)?;
            (
                Some(weighted_bce_f64(&logits, &val_w.y, pos_weight)),
                auc(&logits, &val_w.y),
            )
        };
        let stats = EpochStats {
            epoch,
            train_loss,
            val_loss,
            val_auc,
        };
        bar.set_message(format!(
            "epoch {epoch} train {train_loss:.4} val {}",
            val_loss.map_or("-".to_owned(), |v| format!("{v:.4}"))
        ));
        tracing::debug!(?stats, "epoch done");
        history.push(stats);
        let score = val_loss.unwrap_or(train_loss);
        if best.as_ref().is_none_or(|(b, _, _)| score < *b) {
            best = Some((score, epoch, model.snapshot()?));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= config.patience {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let (_, best_epoch, snapshot) = best.expect("at least one epoch ran");
    model.restore(&snapshot)?;

    let report = TrainReport {
        model_path: None,
        manifest_path: None,
        train_traces: train_recs.len(),
        val_traces: val_recs.len(),
        train_windows: train_w.len(),
        train_positives: positives,
        val_windows: val_w.len(),
        val_positives: val_w.positives(),
        pos_weight,
        epochs_run: history.len(),
        best_epoch,
        history,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    // The training record leaves out wall-clock time so the same seed and data
    // give byte-identical files.
    let best_stats = report.best().cloned();
    let mut record = serde_json::Map::new();
    record.insert(
        "trainer".into(),
        concat!("umbra-trainer ", env!("CARGO_PKG_VERSION")).into(),
    );
    record.insert("seed".into(), config.seed.into());
    record.insert("hidden".into(), config.hidden.into());
    record.insert("stride".into(), config.stride.into());
    record.insert("positive_stride".into(), config.positive_stride.into());
    record.insert("skip_early_fault".into(), config.skip_early_fault.into());
    record.insert("batch_size".into(), config.batch_size.into());
    record.insert("learning_rate".into(), config.learning_rate.into());
    record.insert("train_traces".into(), report.train_traces.into());
    record.insert("val_traces".into(), report.val_traces.into());
    record.insert("train_windows".into(), report.train_windows.into());
    record.insert("train_positives".into(), report.train_positives.into());
    record.insert("val_windows".into(), report.val_windows.into());
    record.insert("val_positives".into(), report.val_positives.into());
    record.insert("epochs_run".into(), report.epochs_run.into());
    record.insert("best_epoch".into(), best_epoch.into());
    if let Some(stats) = best_stats {
        record.insert("train_loss".into(), stats.train_loss.into());
        if let Some(v) = stats.val_loss {
            record.insert("val_loss".into(), v.into());
        }
        if let Some(v) = stats.val_auc {
            record.insert("val_auc".into(), v.into());
        }
    }
    manifest.training = Some(record);
    Ok(Trained {
        model,
        manifest,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn auc_counts_ties_half_and_needs_both_classes() {
        assert_eq!(auc(&[0.1, 0.9], &[0.0, 1.0]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.1], &[0.0, 1.0]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5], &[0.0, 1.0]), Some(0.5));
        assert_eq!(auc(&[0.1, 0.2, 0.3], &[0.0, 1.0, 0.0]), Some(0.5));
        assert_eq!(auc(&[0.1, 0.2], &[1.0, 1.0]), None);
    }

    #[test]
    fn bce_matches_the_f64_formula() {
        let logits = [-3.0f32, 0.0, 2.5, 40.0];
        let y = [0.0f32, 1.0, 1.0, 0.0];
        let w: Vec<f32> = y.iter().map(|&y| if y > 0.5 { 3.0 } else { 1.0 }).collect();
        let t = |v: &[f32]| Tensor::from_slice(v, (v.len(), 1), &Device::Cpu).unwrap();
        let got = weighted_bce(&t(&logits), &t(&y), &t(&w))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let want = weighted_bce_f64(&logits, &y, 3.0);
        assert!((f64::from(got) - want).abs() < 1e-5, "{got} vs {want}");
        assert!(want.is_finite() && want > 0.0);
    }

    #[test]
    fn invalid_config_lists_every_problem() {
        let mut c = synthetic::quick_config(1);
        c.window = 0;
        c.hidden = 0;
        c.val_fraction = 1.5;
        let Err(Error::InvalidConfig(problems)) = train(&synthetic::recordings(4, 60, 1), &c)
        else {
            panic!("expected InvalidConfig");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    /// The tiny model learns: the loss falls and it ranks failing windows
    /// above healthy ones on traces it never saw.
    #[test]
    fn tiny_model_separates_the_classes() {
        let recordings = synthetic::recordings(16, 160, 11);
        let trained = train(&recordings, &synthetic::quick_config(3)).unwrap();
        let h = &trained.report.history;
        let first = h.first().unwrap().train_loss;
        let best = trained.report.best().unwrap();
        assert!(
            best.train_loss < 0.8 * first,
            "loss {first} -> {}",
            best.train_loss
        );

        let held_out = synthetic::recordings(8, 160, 999);
        let all: Vec<(usize, &Recording)> = held_out.iter().enumerate().collect();
        let w = data::windows(&all, &trained.manifest, 2).unwrap();
        let p = trained.predict(&w.x, w.len()).unwrap();
        let score = auc(&p, &w.y).unwrap();
        assert!(score > 0.8, "held-out AUC {score}");
    }
}
