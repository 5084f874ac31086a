//! Black-box tests of `Predictor`: small GRU models built by Python's
//! `onnx.helper` (tests/gru_model.py), served through ort and compared with
//! Python onnxruntime, and every refusal at load.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use ndarray::Array3;
use umbra_model::{Device, Error, Feature, FeatureSource, Manifest, Predictor, Transform};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    std::env::var_os("UMBRA_VENV")
        .map_or_else(|| workspace().join(".venv"), PathBuf::from)
        .join("bin/python")
}

fn script(args: &[&str]) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gru_model.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .context("running tests/gru_model.py")?;
    ensure!(
        out.status.success(),
        "gru_model.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Builds `<dir>/<stem>.onnx` with the given signature.
fn build_model(dir: &Path, stem: &str, extra: &[&str]) -> Result<PathBuf> {
    let path = dir.join(format!("{stem}.onnx"));
    let mut args = vec!["build", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    script(&args)?;
    Ok(path)
}

fn manifest(window: usize, features: usize) -> Manifest {
    let metrics = ["cpu", "memory", "rx-bps", "tx-bps", "drops", "sessions"];
    Manifest {
        format: 1,
        model_version: "test-gru".to_owned(),
        input: "window".to_owned(),
        output: "p_fail".to_owned(),
        window,
        tick_ms: 500,
        horizon_ms: 30_000,
        threshold: 0.5,
        baseline_ticks: 0,
        features: (0..features)
            .map(|i| {
                let metric = metrics[i % metrics.len()];
                let device = if i < metrics.len() {
                    Device::Primary
                } else {
                    Device::Shadow
                };
                Feature {
                    name: format!("{device}.{metric}"),
                    device,
                    metric: metric.to_owned(),
                    transform: if i % 2 == 0 {
                        Transform::Raw
                    } else {
                        Transform::Log1p
                    },
                    mean: 0.1 * i as f64,
                    scale: 1.0 + i as f64,
                }
            })
            .collect(),
        training: None,
    }
}

fn load_err(model: &Path) -> Error {
    match Predictor::load(model) {
        Ok(p) => panic!("{} loaded but should be refused: {p:?}", model.display()),
        Err(e) => e,
    }
}

#[derive(serde::Deserialize)]
struct PythonRun {
    shape: Vec<usize>,
    input: Vec<f32>,
    output: Vec<f32>,
}

fn python_run(model: &Path, batch: usize, seed: u64) -> Result<(Array3<f32>, Vec<f32>)> {
    let out = model.with_extension("run.json");
    script(&[
        "run",
        model.to_str().unwrap(),
        "--batch",
        &batch.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        out.to_str().unwrap(),
    ])?;
    let run: PythonRun = serde_json::from_slice(&std::fs::read(&out)?)?;
    let input = Array3::from_shape_vec((run.shape[0], run.shape[1], run.shape[2]), run.input)?;
    Ok((input, run.output))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn matches_python_onnxruntime_batched() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (stem, window, features, hidden, seed) in
        [("a", "6", 4, "8", "1"), ("b", "dynamic", 9, "16", "2")]
    {
        let model = build_model(
            dir.path(),
            stem,
            &[
                "--window",
                window,
                "--features",
                &features.to_string(),
                "--hidden",
                hidden,
                "--seed",
                seed,
            ],
        )?;
        let m = manifest(6, features);
        m.save(&Manifest::path_for(&model))?;
        let mut predictor = Predictor::load(&model)?;
        assert_eq!(predictor.manifest(), &m);
        for batch in [1, 7] {
            let (input, expected) = python_run(&model, batch, 10 + batch as u64)?;
            let got = predictor.predict(input.view())?;
            assert_eq!(got.len(), batch);
            let diff = max_abs_diff(&got, &expected);
            assert!(
                diff <= 1e-5,
                "{stem} batch {batch}: max abs diff {diff}: {got:?} vs {expected:?}"
            );
            // Rows are independent: each row alone gives the same answer.
            let row = predictor.predict(input.slice(ndarray::s![batch - 1..batch, .., ..]))?;
            assert!((row[0] - got[batch - 1]).abs() <= 1e-6);
        }
        // A transposed (non-standard-layout) view is accepted too.
        let (input, expected) = python_run(&model, 3, 99)?;
        // Stored [window, batch, features], viewed as [batch, window, features].
        let stored = input
            .view()
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned();
        let view = stored.view().permuted_axes([1, 0, 2]);
        assert_eq!(view, input);
        assert!(!view.is_standard_layout());
        assert!(max_abs_diff(&predictor.predict(view)?, &expected) <= 1e-5);
        assert!(
            predictor
                .predict(Array3::zeros((0, 6, features)).view())?
                .is_empty()
        );
    }
    Ok(())
}

struct Pair {
    len: usize,
}

impl FeatureSource for Pair {
    fn series(&self, device: Device, metric: &str) -> Option<&[Option<f64>]> {
        // Leak-free static-ish data: a slice derived from the metric and device.
        let _ = (device, metric);
        Some(&SERIES[..self.len])
    }
}

static SERIES: [Option<f64>; 10] = [
    Some(1.0),
    None,
    Some(3.0),
    Some(2.5),
    None,
    Some(0.5),
    Some(4.0),
    Some(8.0),
    None,
    Some(2.0),
];

#[test]
fn predict_sources_is_predict_of_manifest_input() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = build_model(
        dir.path(),
        "m",
        &["--window", "6", "--features", "4", "--seed", "5"],
    )?;
    let m = manifest(6, 4);
    m.save(&Manifest::path_for(&model))?;
    let mut predictor = Predictor::load(&model)?;
    let long = Pair { len: 10 };
    let short = Pair { len: 3 };
    let sources: [&dyn FeatureSource; 2] = [&long, &short];
    let via_sources = predictor.predict_sources(&sources)?;
    let input = m.input(&sources)?;
    assert_eq!(via_sources, predictor.predict(input.view())?);
    // Different histories give different probabilities (the input is not ignored).
    assert!(
        (via_sources[0] - via_sources[1]).abs() > 1e-6,
        "{via_sources:?}"
    );
    Ok(())
}

#[test]
fn wrong_input_shape_is_a_caller_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = build_model(dir.path(), "m", &["--window", "6", "--features", "4"])?;
    manifest(6, 4).save(&Manifest::path_for(&model))?;
    let mut predictor = Predictor::load(&model)?;
    let err = predictor
        .predict(Array3::zeros((2, 5, 4)).view())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputShape {
                window: 6,
                features: 4,
                ..
            }
        ),
        "{err}"
    );
    Ok(())
}

fn mismatch(err: &Error) -> String {
    match err {
        Error::ModelMismatch { problems, .. } => problems.join("\n"),
        other => panic!("expected ModelMismatch, got {other}"),
    }
}

#[test]
fn refuses_a_model_whose_window_differs_from_the_manifest() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = build_model(dir.path(), "m", &["--window", "8", "--features", "4"])?;
    manifest(6, 4).save(&Manifest::path_for(&model))?;
    let err = load_err(&model);
    let problems = mismatch(&err);
    assert!(
        problems.contains("window dimension expected 6 (from the manifest), found 8"),
        "{problems}"
    );
    assert!(err.to_string().contains("m.onnx"), "{err}");
    Ok(())
}

#[test]
fn refuses_a_model_whose_feature_count_differs_from_the_manifest() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = build_model(dir.path(), "m", &["--window", "6", "--features", "5"])?;
    manifest(6, 4).save(&Manifest::path_for(&model))?;
    let problems = mismatch(&load_err(&model));
    assert!(
        problems.contains("features dimension expected 4 (from the manifest), found 5"),
        "{problems}"
    );
    Ok(())
}

#[test]
fn refuses_wrong_names_and_fixed_batch_listing_every_mismatch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = build_model(
        dir.path(),
        "m",
        &[
            "--window",
            "6",
            "--features",
            "4",
            "--input",
            "x",
            "--output",
            "prob",
            "--batch",
            "1",
        ],
    )?;
    manifest(6, 4).save(&Manifest::path_for(&model))?;
    let problems = mismatch(&load_err(&model));
    assert!(
        problems.contains(r#"inputs: manifest expects exactly ["window"], model has ["x"]"#),
        "{problems}"
    );
    assert!(
        problems.contains(r#"outputs: manifest expects exactly ["p_fail"], model has ["prob"]"#),
        "{problems}"
    );

    // Names right, batch fixed: refused because a tick's devices go in one call.
    let model = build_model(
        dir.path(),
        "fixed",
        &["--window", "6", "--features", "4", "--batch", "2"],
    )?;
    manifest(6, 4).save(&Manifest::path_for(&model))?;
    let problems = mismatch(&load_err(&model));
    assert!(
        problems.contains("batch dimension must be dynamic, found fixed size 2"),
        "{problems}"
    );
    assert_eq!(
        problems.lines().count(),
        2,
        "input and output batch: {problems}"
    );
    Ok(())
}

#[test]
fn refuses_a_bad_or_missing_manifest() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = build_model(dir.path(), "m", &["--window", "6", "--features", "4"])?;
    let manifest_path = Manifest::path_for(&model);

    let err = load_err(&model);
    assert!(
        matches!(&err, Error::ManifestRead { path, .. } if *path == manifest_path),
        "{err}"
    );

    let mut bad = serde_json::to_value(manifest(6, 4))?;
    bad["window"] = 0.into();
    bad["features"][2]["scale"] = 0.into();
    std::fs::write(&manifest_path, bad.to_string())?;
    let err = load_err(&model);
    let Error::InvalidManifest { problems, path } = &err else {
        panic!("{err}")
    };
    assert_eq!(path.as_deref(), Some(manifest_path.as_path()));
    assert_eq!(problems.len(), 2, "{problems:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("window") && msg.contains("features[2]"),
        "{msg}"
    );

    std::fs::write(&manifest_path, "{ not json")?;
    assert!(matches!(
        load_err(&model),
        Error::ManifestParse { path: Some(_), .. }
    ));
    Ok(())
}

#[test]
fn refuses_a_missing_or_corrupt_model_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = dir.path().join("absent.onnx");
    manifest(6, 4).save(&Manifest::path_for(&model))?;
    let err = load_err(&model);
    assert!(
        matches!(&err, Error::ModelRead { path, .. } if *path == model),
        "{err}"
    );

    let model = dir.path().join("corrupt.onnx");
    std::fs::write(&model, b"this is not a protobuf model")?;
    manifest(6, 4).save(&Manifest::path_for(&model))?;
    let err = load_err(&model);
    assert!(matches!(err, Error::Ort { .. }), "{err}");
    assert!(err.to_string().contains("corrupt.onnx"), "{err}");
    Ok(())
}
