//! A missing ONNX Runtime library is a typed error the caller can log.
//!
//! This is its own test binary, not part of tests/predictor.rs: a process
//! loads ONNX Runtime once and keeps it, so the failure is only observable in
//! a process where no test has loaded the library yet.

use umbra_model::{Error, Manifest, Predictor};

#[test]
fn a_missing_library_is_reported_and_a_later_load_can_still_succeed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let model = dir.path().join("m.onnx");
    std::fs::write(&model, b"not reached")?;
    let manifest = r#"{"format": 1, "model_version": "v", "input": "window", "output": "p_fail",
        "window": 4, "tick_ms": 500, "horizon_ms": 30000, "threshold": 0.5,
        "features": [{"name": "primary.cpu", "device": "primary", "metric": "cpu",
                      "transform": "raw", "mean": 0, "scale": 1}]}"#;
    std::fs::write(Manifest::path_for(&model), manifest)?;

    let missing = dir.path().join("libonnxruntime.so.1.99.0");
    let err = Predictor::load_with_library(&model, &missing).unwrap_err();
    let Error::RuntimeLoad { path, .. } = &err else {
        panic!("expected RuntimeLoad, got {err}");
    };
    assert_eq!(path, &missing);
    let msg = err.to_string();
    assert!(
        msg.contains("ORT_DYLIB_PATH") && msg.contains("libonnxruntime.so.1.99.0"),
        "{msg}"
    );

    // The failure is not sticky: the real library still loads afterwards, and
    // the (garbage) model is then refused by the runtime, not by the loader.
    let real = umbra_model::runtime::locate()?;
    let err = Predictor::load_with_library(&model, &real).unwrap_err();
    assert!(matches!(err, Error::Ort { .. }), "{err}");
    Ok(())
}
