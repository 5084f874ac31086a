//! Shared fixtures: the test policies built once per test binary, one shared
//! engine, inputs, and log capture.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use umbra_policy_logic as logic;
use umbra_policy_runtime::{
    EngineConfig, PolicyEngine, PolicyLimits, PolicyRuntime, PolicySource, RuntimeConfig,
};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(what: &str, command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run the {what} build: {e}"));
    assert!(
        output.status.success(),
        "building the {what} for wasm32-wasip2 failed (is the wasm32-wasip2 \
         target installed? `rustup target add wasm32-wasip2`)\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Builds the hostile test policies (`host/policy/hostile/build.sh`) and
/// Umbra's default policies (`scripts/build-policies.sh`, or cargo directly
/// if the script is missing), once per test binary; returns the directory
/// the components are in.
pub fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let out = run(
            "hostile test policies",
            Command::new("bash").arg(root.join("host/policy/hostile/build.sh")),
        );
        let dir = PathBuf::from(
            out.lines()
                .last()
                .expect("build.sh prints the output directory")
                .trim(),
        );
        let script = root.join("scripts/build-policies.sh");
        if script.exists() {
            run(
                "default policies",
                Command::new("bash").arg(script).current_dir(&root),
            );
        } else {
            run(
                "default policies",
                Command::new(env!("CARGO"))
                    .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
                    .args([
                        "-p",
                        "umbra-policy-drift",
                        "-p",
                        "umbra-policy-correlation",
                        "-p",
                        "umbra-policy-failover",
                    ])
                    .current_dir(&root),
            );
        }
        dir
    })
}

/// The bytes of `target/wasm32-wasip2/release/<name>.wasm`.
pub fn wasm(name: &str) -> Arc<[u8]> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into()
}

/// A hostile test policy by crate suffix (`spin`, `hog`, ...).
pub fn hostile(name: &str) -> Arc<[u8]> {
    wasm(&format!("umbra_hostile_{}", name.replace('-', "_")))
}

/// A default policy by kind name.
pub fn default_policy(kind: &str) -> Arc<[u8]> {
    wasm(&format!("umbra_policy_{kind}"))
}

/// The engine most tests share (its compilation cache lives in the cargo
/// target's temporary directory, so later runs start warm).
pub fn engine() -> PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            PolicyEngine::new(EngineConfig {
                cache_dir: Some(
                    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("umbra-policy-cache"),
                ),
                max_instances: 256,
                ..EngineConfig::default()
            })
            .expect("engine")
        })
        .clone()
}

/// A runtime on the shared engine with default settings, except a
/// deadline of one second: the tests run in parallel on a small machine
/// (in debug builds, while Cranelift compiles), and deadlines are
/// wall-clock. Tests of deadlines set their own limits.
pub fn runtime() -> PolicyRuntime {
    PolicyRuntime::new(engine(), patient_config()).expect("runtime")
}

/// [`RuntimeConfig::default`] with one-second deadlines.
pub fn patient_config() -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    for settings in [
        &mut config.drift,
        &mut config.correlation,
        &mut config.failover,
    ] {
        settings.limits = limits(1_000_000, PolicyLimits::default().memory_bytes);
    }
    config
}

/// A source with an explicit configuration.
pub fn source(
    name: &str,
    version: &str,
    bytes: Arc<[u8]>,
    config: &[(&str, &str)],
) -> PolicySource {
    PolicySource::new(name, version, bytes).with_config(
        config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Limits with another deadline and memory cap.
pub fn limits(deadline_micros: u64, memory_bytes: u64) -> PolicyLimits {
    PolicyLimits {
        deadline_micros,
        memory_bytes,
        ..PolicyLimits::default()
    }
}

/// An observation of `series` metrics per device over 60 one-second ticks
/// ending at `now_ms`, the primary's CPU ramping up.
pub fn observation(now_ms: i64, series: usize) -> logic::Observation {
    let timestamps_ms: Vec<i64> = (0..60).map(|i| now_ms - (59 - i) * 1000).collect();
    let names = [
        "cpu",
        "memory",
        "rx-bps",
        "tx-bps",
        "rx-pps",
        "tx-pps",
        "drops",
        "sessions",
        "http-latency-ms",
        "http-5xx-rate",
        "http-4xx-rate",
        "db-connected",
        "mirror-pps",
        "mirror-flows",
        "conntrack",
        "softirq",
    ];
    let window = |ramp: f64| {
        logic::DeviceWindow::from_series(
            (0..series)
                .map(|s| {
                    let mean = 10.0 + s as f64;
                    logic::Series {
                        name: names[s % names.len()].to_owned(),
                        values: (0..60)
                            .map(|i| {
                                let wobble = if (i + s) % 3 == 0 { 0.4 } else { -0.2 };
                                mean + wobble + if s == 0 { ramp * i as f64 } else { 0.0 }
                            })
                            .collect(),
                        missing: Vec::new(),
                        baseline: logic::Baseline {
                            mean,
                            stddev: 1.0,
                            samples: 1000,
                        },
                    }
                })
                .collect::<Vec<_>>(),
        )
        .expect("a valid window")
    };
    logic::Observation {
        now_ms,
        timestamps_ms,
        primary: window(0.5),
        shadow: window(0.0),
        health: vec![logic::HealthCheck {
            name: "http".into(),
            ok: true,
            latency_ms: 10.0,
            status_classes: logic::StatusClasses {
                success: 100,
                ..Default::default()
            },
            db_connected: None,
        }],
        mirror: logic::MirrorStats::default(),
        prediction: Some(logic::Prediction {
            probability: 0.2,
            horizon_ms: 300_000,
            model_version: "test".into(),
        }),
    }
}

/// What the default drift decision (and so the fallback) answers.
pub fn default_drift(observation: &logic::Observation) -> logic::DriftResult {
    logic::drift(&logic::DriftConfig::default(), observation)
}

/// What the default correlation decision answers.
pub fn default_correlation(observation: &logic::Observation) -> logic::CorrelationResult {
    logic::correlation(&logic::CorrelationConfig::default(), observation)
}

/// Log lines written while `f` runs on this thread, formatted with their
/// fields.
///
/// One global subscriber writes into the buffer of the capturing thread (a
/// thread-local), rather than a thread-local subscriber per capture:
/// tracing caches each callsite's interest process-wide, so with scoped
/// subscribers a callsite first hit on another thread with no subscriber can
/// stay disabled, and its events are lost (seen under load, with tests in
/// parallel).
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::cell::RefCell;
    use std::sync::Once;

    thread_local! {
        static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }
    struct ThreadBuffer;
    impl Write for ThreadBuffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            CAPTURE.with(|c| {
                if let Some(out) = c.borrow_mut().as_mut() {
                    out.extend_from_slice(buf);
                }
            });
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| ThreadBuffer)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the policy tests");
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f();
    let bytes = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, String::from_utf8_lossy(&bytes).into_owned())
}
