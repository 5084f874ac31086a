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
use umbra_trainer::{EvalArgs, TrainArgs, eval_cmd, synthetic, train, train_cmd};

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
        baseline_ticks: 0,
        horizon_ms: 10_000,
        stride: 4,
        positive_stride: None,
        skip_early_fault: false,
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

/// A tiny model over every scenario metric (window 4, hidden 2), trained
/// on a few short generated traces: enough to exercise `eval_cmd` quickly.
fn tiny_scenario_model(dir: &Path) -> Result<PathBuf> {
    let traces = umbra_scenario::generate(&short_scenarios(5, 3, 1))?;
    let recordings: Vec<Recording> = traces.iter().map(data::recording_from_trace).collect();
    let config = umbra_trainer::TrainConfig {
        window: 4,
        hidden: 2,
        epochs: 1,
        stride: 8,
        positive_stride: 2,
        // The relative features too, so the ort path and `eval_cmd` see them.
        features: data::default_features(&METRICS)
            .into_iter()
            .chain(data::relative_features())
            .collect(),
        baseline_ticks: 20,
        ..synthetic::quick_config(5)
    };
    let trained = train(&recordings, &config)?;
    let path = dir.join("tiny-scenario.onnx");
    trained.save(&path)?;
    Ok(path)
}

/// Short generated traces: 8 minutes, ramps of 20 to 60 s.
fn short_scenarios(seed: u64, faulty: usize, fault_free: usize) -> umbra_scenario::ScenarioConfig {
    umbra_scenario::ScenarioConfig {
        seed,
        faulty_traces: faulty,
        fault_free_traces: fault_free,
        trace_duration: std::time::Duration::from_secs(8 * 60),
        ramp_min: std::time::Duration::from_secs(20),
        ramp_max: std::time::Duration::from_secs(60),
        ..umbra_scenario::ScenarioConfig::default()
    }
}

fn eval_args(model: &Path, failover: &[(&str, &str)]) -> EvalArgs {
    EvalArgs {
        model: Some(model.to_path_buf()),
        seed: 77,
        faulty: 2,
        fault_free: 1,
        duration: std::time::Duration::from_secs(8 * 60),
        ramp_min: std::time::Duration::from_secs(20),
        ramp_max: std::time::Duration::from_secs(60),
        failover: failover
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        jobs: Some(2),
        ..EvalArgs::default()
    }
}

/// The evaluation's numbers are consistent with what the deciders did: an
/// always-on decider catches every fault from its very start and raises
/// one false alarm per fault-free trace; a never-on one catches nothing and
/// raises nothing; with hysteresis 1 and no cooldown or cap the failover rule
/// goes exactly when the probability does.
#[test]
fn eval_cmd_scores_always_and_never_alarming_deciders_consistently() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = tiny_scenario_model(dir.path())?;
    let json = dir.path().join("eval.json");
    let always = eval_cmd(&EvalArgs {
        json: Some(json.clone()),
        ..eval_args(
            &model,
            &[
                ("probability-threshold", "0"),
                ("drift-threshold", "0"),
                ("hysteresis", "1"),
                ("corroborated-hysteresis", "1"),
                ("cooldown-ms", "0"),
                ("max-per-hour", "100000"),
            ],
        )
    })?;
    assert_eq!(always.traces, 3);
    assert_eq!(always.ticks, 3 * 960);
    let generated = umbra_scenario::generate(&umbra_scenario::ScenarioConfig {
        min_history: std::time::Duration::from_secs(5 * 60),
        ..short_scenarios(77, 2, 1)
    })?;
    for report in [
        &always.predictor,
        &always.drift,
        &always.combined,
        &always.probability_rule,
    ] {
        let all = &report.overall;
        assert_eq!((all.faults, all.detected), (2, 2));
        assert_eq!(all.recall, Some(1.0));
        assert_eq!(all.in_time_share, Some(1.0));
        // One continuous alarm: false on the fault-free trace only.
        assert_eq!(all.fault_free_false_alarms, 1);
        assert_eq!(all.false_alarms, 1);
        assert_eq!(all.precision, Some(2.0 / 3.0));
        let days = 8.0 / (24.0 * 60.0);
        assert!((all.false_alarms_per_device_day.unwrap() - 1.0 / days).abs() < 1e-9);
        // The first alarm in the fault window is at the fault's start.
        for (outcome, trace) in report.traces.iter().zip(&generated) {
            let meta = trace.meta();
            assert_eq!(outcome.name, meta.name);
            if let (Some(start), Some(onset)) = (meta.fault_start_ms, meta.failure_onset_ms) {
                assert_eq!(outcome.lead_ms, Some(onset - start), "{}", meta.name);
            }
        }
    }
    assert_eq!(always.combined.traces, always.predictor.traces);
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    for key in ["predictor", "drift", "combined", "probability_rule"] {
        assert_eq!(written[key]["overall"]["detected"], 2, "{key}");
    }
    let table = always.to_string();
    assert!(
        table.contains("predictor")
            && table.contains("drift detector")
            && table.contains("combined"),
        "{table}"
    );

    let never = eval_cmd(&eval_args(
        &model,
        &[("probability-threshold", "1"), ("drift-threshold", "1")],
    ))?;
    for report in [&never.predictor, &never.probability_rule] {
        let all = &report.overall;
        assert_eq!((all.faults, all.detected, all.false_alarms), (2, 0, 0));
        assert_eq!((all.recall, all.precision), (Some(0.0), None));
        assert_eq!(all.false_alarms_per_device_day, Some(0.0));
        assert_eq!(all.lead_median_ms, None);
    }
    // Same traces, the drift detector still ran and is judged on its own.
    assert_eq!(never.drift.overall.faults, 2);

    // The default cooldown holds the rule back where the probability alone
    // keeps alarming: at most one go per five minutes of an 8-minute trace.
    let cooled = eval_cmd(&eval_args(&model, &[("probability-threshold", "0")]))?;
    for outcome in &cooled.combined.traces {
        assert!(outcome.alarm_events <= 2, "{outcome:?}");
    }
    Ok(())
}

#[test]
fn eval_cmd_refuses_bad_settings_and_a_missing_model() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nope.onnx");
    let err = eval_cmd(&eval_args(&missing, &[])).unwrap_err();
    assert!(format!("{err:#}").contains("nope.manifest.json"), "{err:#}");
    let model = tiny_scenario_model(dir.path())?;
    let err = eval_cmd(&eval_args(&model, &[("hysteresis", "0")])).unwrap_err();
    assert!(format!("{err:#}").contains("hysteresis"), "{err:#}");
    let err = eval_cmd(&EvalArgs {
        data: Some(dir.path().join("empty")),
        ..eval_args(&model, &[])
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("empty"), "{err:#}");
    Ok(())
}

/// Training straight from generated traces (what
/// `scripts/train-default-model.sh` does) gives the same bytes twice.
#[test]
fn training_on_generated_traces_is_byte_identical() -> Result<()> {
    let traces = umbra_scenario::generate(&short_scenarios(9, 2, 1))?;
    let recordings: Vec<Recording> = traces.iter().map(data::recording_from_trace).collect();
    let config = umbra_trainer::TrainConfig {
        window: 4,
        hidden: 3,
        epochs: 2,
        stride: 8,
        positive_stride: 1,
        skip_early_fault: true,
        features: data::default_features(&METRICS)
            .into_iter()
            .chain(data::relative_features())
            .collect(),
        baseline_ticks: 20,
        ..synthetic::quick_config(9)
    };
    let a = train(&recordings, &config)?;
    let b = train(&recordings, &config)?;
    assert_eq!(a.onnx_bytes()?, b.onnx_bytes()?);
    assert_eq!(a.manifest.to_json()?, b.manifest.to_json()?);
    Ok(())
}

/// The shipped default model: small, loadable by the server's ONNX Runtime
/// path, its manifest valid and naming the trainer's default features, and it
/// predicts held-out faults (seed 1000, never trained on) in time.
#[test]
fn the_shipped_default_model_loads_and_predicts_held_out_faults() -> Result<()> {
    let path = umbra_trainer::default_model_path();
    let size = std::fs::metadata(&path)
        .with_context(|| format!("{} (scripts/train-default-model.sh)", path.display()))?
        .len();
    assert!(size < 200_000, "{} is {size} bytes", path.display());
    let manifest = Manifest::load(&Manifest::path_for(&path))?;
    assert!(manifest.validate().is_empty());
    let names: Vec<String> = manifest.features.iter().map(|f| f.name.clone()).collect();
    let want: Vec<String> = data::default_features(&METRICS)
        .iter()
        .chain(&data::relative_features())
        .map(data::FeatureSpec::name)
        .collect();
    assert_eq!(names, want);
    assert_eq!(manifest.tick_ms, 500);
    let predictor = Predictor::load(&path)?;
    assert_eq!(predictor.manifest(), &manifest);

    // One fault of each kind, 20-minute traces, probability alone.
    let report = eval_cmd(&EvalArgs {
        model: Some(path),
        seed: 1000,
        faulty: 6,
        fault_free: 0,
        duration: std::time::Duration::from_secs(20 * 60),
        jobs: Some(2),
        ..EvalArgs::default()
    })?;
    let all = &report.probability_rule.overall;
    assert_eq!(all.faults, 6);
    assert!(all.detected_in_time >= 5, "{}", report.probability_rule);
    Ok(())
}

/// `--sweep`: each extra threshold is judged exactly as a whole run at that
/// threshold would judge it, for the predictor and both failover rules.
#[test]
fn a_threshold_sweep_matches_whole_runs_at_each_threshold() -> Result<()> {
    let base = EvalArgs {
        seed: 1000,
        faulty: 6,
        fault_free: 2,
        duration: std::time::Duration::from_secs(20 * 60),
        jobs: Some(2),
        ..EvalArgs::default()
    };
    let thresholds = [0.3, 0.9];
    let swept = eval_cmd(&EvalArgs {
        sweep: thresholds.to_vec(),
        ..base.clone()
    })?;
    assert_eq!(swept.sweep.len(), 2);
    let mut alarms = Vec::new();
    for (point, threshold) in swept.sweep.iter().zip(thresholds) {
        let whole = eval_cmd(&EvalArgs {
            failover: vec![("probability-threshold".into(), threshold.to_string())],
            ..base.clone()
        })?;
        assert_eq!(point.threshold, threshold);
        assert_eq!(point.predictor, whole.predictor.overall, "{threshold}");
        assert_eq!(point.combined, whole.combined.overall, "{threshold}");
        assert_eq!(
            point.probability_rule, whole.probability_rule.overall,
            "{threshold}"
        );
        alarms.push(point.predictor.false_alarms + point.predictor.detected);
    }
    // The two thresholds are judged apart: the lower one alarms on more.
    let lead = |p: &umbra_trainer::SweepPoint| p.predictor.lead_median_ms;
    assert!(
        lead(&swept.sweep[0]) > lead(&swept.sweep[1]) || alarms[0] > alarms[1],
        "{swept}"
    );
    let bad = eval_cmd(&EvalArgs {
        sweep: vec![1.5],
        ..base
    })
    .expect_err("a threshold above 1");
    assert!(format!("{bad:#}").contains("--sweep"), "{bad:#}");
    Ok(())
}
