//! `umbra policy build`: `cargo build --release --target wasm32-wasip2` on
//! a policy crate, and where the component landed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

const TARGET: &str = "wasm32-wasip2";

/// Builds the policy crate at `path` into a component and returns the
/// `.wasm` file's path. Cargo's own diagnostics go to stderr. `target_dir`
/// is passed to cargo's `--target-dir`.
///
/// # Errors
///
/// No `Cargo.toml` at `path`, the `wasm32-wasip2` target missing, or the
/// build failing.
pub fn build(path: &Path, target_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let manifest = path.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "no Cargo.toml in {} (pass --path with the policy crate)",
            path.display()
        );
    }
    let manifest = manifest
        .canonicalize()
        .with_context(|| manifest.display().to_string())?;
    check_target()?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest);
    if let Some(dir) = target_dir {
        command.arg("--target-dir").arg(dir);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", Path::new(&cargo).display()))?;

    // Cargo's JSON messages name every artifact; the policy is the cdylib of
    // the package whose manifest we built.
    let mut component = None;
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact"
            || message["manifest_path"].as_str().map(Path::new) != Some(&manifest)
        {
            continue;
        }
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let Some(wasm) = wasm {
            component = Some(PathBuf::from(wasm));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    component.with_context(|| {
        format!(
            "cargo built no .wasm for {} (is it a `crate-type = [\"cdylib\"]` library?)",
            manifest.display()
        )
    })
}

/// Fails early, with the fix, when rustup says the target is missing.
fn check_target() -> anyhow::Result<()> {
    let Ok(output) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        // No rustup: let cargo say what is wrong.
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && !installed.lines().any(|l| l.trim() == TARGET) {
        bail!("the {TARGET} target is not installed: run `rustup target add {TARGET}`");
    }
    Ok(())
}
