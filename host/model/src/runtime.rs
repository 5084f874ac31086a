//! Finding and loading the ONNX Runtime shared library (ort's `load-dynamic`).
//!
//! The library is looked up, in order, at:
//! 1. `ORT_DYLIB_PATH` (a file; when set, nothing else is tried);
//! 2. `$UMBRA_VENV/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`;
//! 3. the same under `./.venv` (the current directory);
//! 4. the same under `<workspace>/.venv`, the workspace this crate was built in.
//!
//! One ONNX Runtime environment exists per process (ort allows no more); it is
//! created on first use and kept for the life of the process.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Error, Result};

/// The environment variable naming the library file.
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";
/// The environment variable naming a Python venv holding the `onnxruntime` wheel.
pub const UMBRA_VENV: &str = "UMBRA_VENV";

/// The process-wide environment. A synchronous mutex: held only while the
/// library is loaded, never across an `.await`.
static ENVIRONMENT: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);

/// Finds the ONNX Runtime library using the process environment; see the module docs.
///
/// # Errors
/// [`Error::RuntimeNotFound`] listing every place searched.
pub fn locate() -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    locate_in(
        std::env::var_os(ORT_DYLIB_PATH),
        std::env::var_os(UMBRA_VENV),
        &[Path::new(".venv"), &workspace.join(".venv")],
    )
}

/// [`locate`] with the environment passed in, so the search order is testable.
fn locate_in(
    ort_dylib_path: Option<OsString>,
    umbra_venv: Option<OsString>,
    venvs: &[&Path],
) -> Result<PathBuf> {
    if let Some(path) = ort_dylib_path.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::RuntimeNotFound {
            searched: vec![path],
        });
    }
    let mut searched = Vec::new();
    let venvs = umbra_venv
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(venvs.iter().map(|p| p.to_path_buf()));
    for venv in venvs {
        let lib = venv.join("lib");
        searched.push(lib.join("python3*/site-packages/onnxruntime/capi/libonnxruntime.so*"));
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path())
            .collect();
        pythons.sort();
        for python in pythons.iter().rev() {
            let capi = python.join("site-packages/onnxruntime/capi");
            if let Some(found) = newest_library(&capi) {
                return Ok(found);
            }
        }
    }
    Err(Error::RuntimeNotFound { searched })
}

/// The versioned `libonnxruntime.so.X.Y.Z` in `dir` with the highest version,
/// else a plain `libonnxruntime.so`.
fn newest_library(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("libonnxruntime.so") else {
            continue;
        };
        let version: Option<Vec<u64>> = if rest.is_empty() {
            Some(Vec::new())
        } else {
            rest.strip_prefix('.')
                .map(|v| v.split('.').map(|p| p.parse().ok()).collect::<Option<_>>())
                .unwrap_or(None)
        };
        let Some(version) = version else { continue };
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, entry.path()));
        }
    }
    best.map(|(_, path)| path)
}

/// The process-wide ONNX Runtime environment, loading the library found by
/// [`locate`] on first use.
///
/// # Errors
/// [`Error::RuntimeNotFound`] or [`Error::RuntimeLoad`]; a later call retries.
pub fn environment() -> Result<ort::environment::Environment> {
    let mut env = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = env.as_ref() {
        return Ok(env.clone());
    }
    let path = locate()?;
    let built = build(&path)?;
    *env = Some(built.clone());
    Ok(built)
}

/// The process-wide environment, loading the library from `path` if no
/// environment exists yet. Once one exists it is returned whatever `path` is:
/// a process holds one ONNX Runtime.
///
/// # Errors
/// [`Error::RuntimeLoad`] if the library cannot be loaded.
pub fn environment_from(path: &Path) -> Result<ort::environment::Environment> {
    let mut env = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = env.as_ref() {
        return Ok(env.clone());
    }
    let built = build(path)?;
    *env = Some(built.clone());
    Ok(built)
}

fn build(path: &Path) -> Result<ort::environment::Environment> {
    let builder = ort::init_from(path).map_err(|source| Error::RuntimeLoad {
        path: path.to_path_buf(),
        source,
    })?;
    let env = builder
        .with_name("umbra-model")
        .build()
        .map_err(|source| Error::Ort {
            context: "creating the environment".to_owned(),
            source,
        })?;
    tracing::info!(library = %path.display(), "ONNX Runtime loaded");
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn ort_dylib_path_wins_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libonnxruntime.so.1.2.3");
        touch(&lib);
        let venv = dir.path().join("venv");
        touch(&venv.join("lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0"));
        assert_eq!(
            locate_in(Some(lib.clone().into()), Some(venv.into()), &[]).unwrap(),
            lib
        );
        let missing = dir.path().join("nope.so");
        let err = locate_in(Some(missing.into()), None, &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("ORT_DYLIB_PATH") && msg.contains("nope.so"),
            "{msg}"
        );
    }

    #[test]
    fn venvs_are_searched_in_order_for_the_newest_library() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        let capi = second.join("lib/python3.11/site-packages/onnxruntime/capi");
        touch(&capi.join("libonnxruntime.so.1.9.0"));
        touch(&capi.join("libonnxruntime.so.1.32.0"));
        touch(&capi.join("libonnxruntime_providers_shared.so"));
        let found = locate_in(None, Some(first.clone().into()), &[&second]).unwrap();
        assert_eq!(found, capi.join("libonnxruntime.so.1.32.0"));

        touch(&first.join("lib/python3.12/site-packages/onnxruntime/capi/libonnxruntime.so"));
        let found = locate_in(None, Some(first.clone().into()), &[&second]).unwrap();
        assert!(found.starts_with(&first), "{}", found.display());
    }

    #[test]
    fn nothing_found_names_the_variable_and_every_place_searched() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate_in(
            None,
            Some(dir.path().join("a").into()),
            &[&dir.path().join("b")],
        )
        .unwrap_err();
        let Error::RuntimeNotFound { searched } = &err else {
            panic!("{err}");
        };
        assert_eq!(searched.len(), 2);
        let msg = err.to_string();
        assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
        assert!(msg.contains("/a/lib/python3*"), "{msg}");
    }
}
