//! Where things are: the workspace, the `umbra` binary (built on first use)
//! and the Python venvs of the third-party test peers.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `tests/python`, where the Python test programs live.
pub fn python_dir() -> PathBuf {
    workspace_root().join("tests").join("python")
}

/// `p4/umbra.p4info.txtpb`.
pub fn p4info_path() -> PathBuf {
    workspace_root().join("p4").join("umbra.p4info.txtpb")
}

/// The venv with the official p4runtime bindings, grpcio, scapy and ptf:
/// `$UMBRA_VENV`, or `<workspace>/.venv`.
///
/// # Errors
/// The venv has no `bin/python` (it was not created).
pub fn python_venv() -> Result<PathBuf> {
    venv("UMBRA_VENV", ".venv")
}

/// The venv with p4runtime-shell: `$UMBRA_SHELL_VENV`, or
/// `<workspace>/.venv-shell`.
///
/// # Errors
/// The venv has no `bin/python` (it was not created).
pub fn shell_venv() -> Result<PathBuf> {
    venv("UMBRA_SHELL_VENV", ".venv-shell")
}

fn venv(variable: &str, default: &str) -> Result<PathBuf> {
    let dir = env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    if !dir.join("bin").join("python").is_file() {
        bail!(
            "the Python test peers are not installed: {} has no bin/python \
             (${variable} or the default <workspace>/{default}); \
             run scripts/setup-python.sh (or scripts/install-deps.sh as root)",
            dir.display()
        );
    }
    Ok(dir)
}

/// The `umbra` binary the tests run, built for the same profile and target
/// dir as the running test (the cargo lock makes concurrent builds wait).
/// `$UMBRA_BIN` overrides it, without building.
///
/// Built once per test binary, and always: a stale `umbra` from an earlier
/// build would test old code.
///
/// # Errors
/// The build fails, or the binary is not where cargo puts it.
pub fn umbra_binary() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_umbra().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_umbra() -> Result<PathBuf> {
    if let Some(path) = env::var_os("UMBRA_BIN") {
        return Ok(PathBuf::from(path));
    }
    // A test runs as <target-dir>/<profile-dir>/deps/<name>-<hash>.
    let exe = env::current_exe().context("locating the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test executable is not in <target>/<profile>/deps")?;
    let target_dir = profile_dir
        .parent()
        .context("the profile dir has no parent")?;
    let profile_name = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the profile dir has no name")?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace_root())
        .args(["build", "--quiet", "-p", "umbra-cli", "--bin", "umbra"])
        .arg("--target-dir")
        .arg(target_dir);
    match profile_name {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let output = build.output().context("running cargo build for umbra")?;
    if !output.status.success() {
        bail!(
            "cargo build -p umbra-cli failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let binary = profile_dir.join("umbra");
    if !binary.is_file() {
        bail!("cargo built umbra-cli but {} is missing", binary.display());
    }
    Ok(binary)
}
