//! Black-box tests of the trainer: train a tiny model, export it, and check
//! the file three ways (the ONNX checker accepts it; Python onnxruntime,
//! umbra-model's ort path and the trainer's own candle forward pass give the
//! same probabilities); determinism; `train_cmd` on a directory of traces.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use umbra_model::Device;
use umbra_model::{Manifest, Predictor};
use umbra_scenario::{METRICS, ScenarioKind, Trace, TraceMeta};
use umbra_trainer::data::{self, Recording};
use umbra_trainer::{TrainArgs, synthetic, train, train_cmd};

fn python() -> PathBuf {
    std::env::var_os("UMBRA_VENV")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
            PathBuf::from,
        )
        .join("bin/python")
}

#[derive(serde::Deserialize)]
struct PythonCheck {
    output: Vec<f32>,
    output_shape: Vec<usize>,
    opset: i64,
    input_dims: Vec<serde_json::Value>,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

fn python_check(model: &Path, x: &[f32], shape: [usize; 3]) -> Result<PythonCheck> {
    let input = model.with_extension("input.json");
    let output = model.with_extension("python.json");
    std::fs::write(
        &input,
        serde_json::to_vec(&serde_json::json!({ "shape": shape, "input": x }))?,
    )?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_onnx.py");
    let out = Command::new(python())
        .arg(script)
        .arg(model)
        .arg(&input)
        .arg(&output)
        .output()
        .context("running tests/check_onnx.py")?;
    ensure!(
        out.status.success(),
        "check_onnx.py failed (checker or onnxruntime rejected the model):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&std::fs::read(output)?)?)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn exported_model_passes_the_checker_and_three_runtimes_agree() -> Result<()> {
    let recordings = synthetic::recordings(16, 160, 5);
    let config = synthetic::quick_config(5);
    let trained = train(&recordings, &config)?;
    let dir = tempfile::tempdir()?;
    let model = dir.path().join("tiny.onnx");
    trained.save(&model)?;
    assert_eq!(
        Manifest::load(&Manifest::path_for(&model))?,
        trained.manifest
    );

    // Inputs: windows of unseen traces, built by the manifest like the server does.
    let held_out = synthetic::recordings(4, 160, 77);
    let all: Vec<(usize, &Recording)> = held_out.iter().enumerate().collect();
    let windows = data::windows(&all, &trained.manifest, 3)?;
    let rows = windows.len();
    let (w, f) = (config.window, config.features.len());
    assert!(rows > 50 && windows.positives() > 0, "{rows} rows");

    let candle = trained.predict(&windows.x, rows)?;

    let python = python_check(&model, &windows.x, [rows, w, f])?;
    assert_eq!(python.opset, 17);
    assert_eq!(python.inputs, ["window"]);
    assert_eq!(python.outputs, ["p_fail"]);
    assert_eq!(
        python.input_dims,
        [serde_json::json!("batch"), w.into(), f.into()]
    );
    assert_eq!(python.output_shape, [rows, 1]);

    let mut predictor = Predictor::load(&model)?;
    let input = ndarray::Array3::from_shape_vec((rows, w, f), windows.x.clone())?;
    let ort = predictor.predict(input.view())?;

    let d1 = max_abs_diff(&candle, &python.output);
    let d2 = max_abs_diff(&ort, &python.output);
    let d3 = max_abs_diff(&candle, &ort);
    assert!(
        d1 <= 1e-5 && d2 <= 1e-5 && d3 <= 1e-5,
        "candle/python {d1}, ort/python {d2}, candle/ort {d3}"
    );
    // The outputs are real predictions, not a constant.
    let (lo, hi) = candle
        .iter()
        .fold((1.0f32, 0.0f32), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
    assert!(hi - lo > 0.5, "probabilities span only [{lo}, {hi}]");
    Ok(())
}

#[test]
fn training_is_deterministic_for_a_seed() -> Result<()> {
    let recordings = synthetic::recordings(8, 120, 21);
    let mut config = synthetic::quick_config(21);
    config.epochs = 3;
    let a = train(&recordings, &config)?;
    let b = train(&recordings, &config)?;
    assert_eq!(a.onnx_bytes()?, b.onnx_bytes()?);
    assert_eq!(a.manifest, b.manifest);
    assert_eq!(a.report.history, b.report.history);

    config.seed = 22;
    let c = train(&recordings, &config)?;
    assert_ne!(a.onnx_bytes()?, c.onnx_bytes()?);
    Ok(())
}

/// A synthetic recording as an `umbra-scenario` trace: the metrics the
/// recording has are copied, every other metric is a constant.
fn as_trace(r: &Recording, start_ms: i64) -> Trace {
    let ticks = r.series(Device::Primary, "cpu").unwrap().len();
    let device = |d: Device| -> Vec<Vec<Option<f64>>> {
        METRICS
            .iter()
            .map(|m| {
                r.series(d, m)
                    .map_or_else(|| vec![Some(1.0); ticks], <[_]>::to_vec)
            })
            .collect()
    };
    let onset = r.failure_onset_ms.map(|o| start_ms + o as i64);
    let meta = TraceMeta {
        name: r.name.clone(),
        seed: 0,
        kind: if onset.is_some() {
            ScenarioKind::CpuExhaustion
        } else {
            ScenarioKind::FaultFree
        },
        tick_ms: r.tick_ms as i64,
        fault_start_ms: onset.map(|o| o - 20_000),
        failure_onset_ms: onset,
        device_days: ticks as f64 * r.tick_ms as f64 / 86_400_000.0,
    };
    let timestamps = (0..ticks as i64)
        .map(|i| start_ms + i * r.tick_ms as i64)
        .collect();
    Trace::new(
        meta,
        timestamps,
        device(Device::Primary),
        device(Device::Shadow),
    )
    .unwrap()
}

#[test]
fn train_cmd_trains_on_a_trace_directory_and_writes_a_loadable_model() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("traces");
    // Unix-ms timestamps: the onset must be taken relative to the first tick.
    let traces: Vec<Trace> = synthetic::recordings(8, 140, 3)
        .iter()
        .map(|r| as_trace(r, 1_700_000_000_000))
        .collect();
    umbra_scenario::write_dir(&data, &traces)?;
    let out = dir.path().join("models/default.onnx");
    let args = TrainArgs {
        data: data.clone(),
        out: out.clone(),
        seed: 1,
        epochs: 3,
        hidden: 4,
        window: 8,
        horizon_ms: 10_000,
        stride: 4,
        batch_size: 64,
        learning_rate: 0.01,
        patience: 5,
        val_fraction: 0.25,
        threshold: 0.4,
        model_version: None,
        no_progress: true,
    };
    let report = train_cmd(&args)?;
    assert_eq!(report.model_path.as_deref(), Some(out.as_path()));
    assert_eq!((report.train_traces, report.val_traces), (6, 2));
    assert_eq!(report.epochs_run, 3);
    assert!(report.train_positives > 0 && report.train_positives < report.train_windows);

    let predictor = Predictor::load(&out)?;
    let m = predictor.manifest();
    assert_eq!(m.model_version, "gru-h4-w8-s1");
    assert_eq!(
        (m.window, m.tick_ms, m.horizon_ms, m.threshold),
        (8, 500, 10_000, 0.4)
    );
    // Every primary metric, then the shadow's readiness metrics.
    assert_eq!(m.features.len(), 16 + 6);
    assert_eq!(m.features[0].name, "primary.cpu");
    assert_eq!(m.features[16].name, "shadow.cpu");
    assert_eq!(m.training.as_ref().unwrap()["seed"], 1);

    // A directory without traces is an error naming it.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty)?;
    let err = train_cmd(&TrainArgs {
        data: empty,
        ..args
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("empty"), "{err:#}");
    Ok(())
}
