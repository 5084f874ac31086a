//! The WebAssembly policy runtime (umbra-policy-runtime) with Umbra's
//! default policies, built by `scripts/build-policies.sh`:
//!
//! - `policy/evaluate/*`: one decision through the sandbox, instance reused,
//!   on an observation of 16 series per device (primary and shadow) over a
//!   60-sample window. Target: p50 <= 2 µs. `policy/native/*` is the same
//!   decision in plain Rust (the fallback), for scale.
//! - `policy/transport/*`: where the time goes: a policy that does nothing
//!   (the runtime's `echo` test policy) on an empty observation (the fixed
//!   cost of a call), on 16 series x 60 samples per device (today's WIT
//!   layout), and on 1 series x 960 samples per device (the same numbers in
//!   one list per device: what a columnar layout would cost).
//! - `policy/instantiate/*`: a fresh instance from the `InstancePre`, with
//!   `configure`. Target: <= 20 µs.
//! - `policy/reload/*`: compile (or load from the disk cache), screen,
//!   validate and swap a new version.
//!
//! Criterion's median (in `target/criterion/<id>/new/estimates.json`) is
//! the p50.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use umbra_policy_logic as logic;
use umbra_policy_runtime::{
    EngineConfig, PolicyEngine, PolicyKind, PolicyRuntime, PolicySource, RuntimeConfig,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the default policies and returns kind → bytes.
fn default_policies() -> Vec<(PolicyKind, Arc<[u8]>)> {
    let output = Command::new("bash")
        .arg(root().join("scripts/build-policies.sh"))
        .current_dir(root())
        .output()
        .expect("run scripts/build-policies.sh");
    assert!(
        output.status.success(),
        "scripts/build-policies.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let paths: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    PolicyKind::ALL
        .into_iter()
        .map(|kind| {
            let path = paths
                .iter()
                .find(|p| p.ends_with(format!("umbra_policy_{kind}.wasm")))
                .unwrap_or_else(|| panic!("no {kind} policy in {paths:?}"));
            (kind, std::fs::read(path).expect("read policy").into())
        })
        .collect()
}

const METRICS: [&str; 16] = [
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
    "db-errors",
    "mirror-pps",
    "mirror-flows",
    "conntrack",
    "softirq",
];

/// 16 series per device over 60 one-second ticks; the primary's CPU and
/// 5xx rate ramp up together in the last 20 seconds.
fn observation() -> logic::Observation {
    let now_ms = 1_700_000_059_000;
    let window = |ramp: f64| {
        logic::DeviceWindow::from_series(
            METRICS
                .iter()
                .enumerate()
                .map(|(s, name)| {
                    let mean = 10.0 + s as f64;
                    logic::Series {
                        name: (*name).to_owned(),
                        values: (0..60)
                            .map(|i| {
                                let wobble = f64::from((i * 7 + s as i32 * 3) % 11) / 10.0 - 0.5;
                                let rise = if (s == 0 || s == 9) && i >= 40 {
                                    ramp * f64::from(i - 40)
                                } else {
                                    0.0
                                };
                                mean + wobble + rise
                            })
                            .collect(),
                        missing: Vec::new(),
                        baseline: logic::Baseline {
                            mean,
                            stddev: 1.0,
                            samples: 2000,
                        },
                    }
                })
                .collect::<Vec<_>>(),
        )
        .expect("a valid window")
    };
    logic::Observation {
        now_ms,
        timestamps_ms: (0..60).map(|i| now_ms - (59 - i) * 1000).collect(),
        primary: window(0.8),
        shadow: window(0.0),
        health: vec![logic::HealthCheck {
            name: "http".into(),
            ok: true,
            latency_ms: 12.0,
            status_classes: logic::StatusClasses {
                success: 950,
                server_error: 50,
                ..Default::default()
            },
            db_connected: Some(true),
        }],
        mirror: logic::MirrorStats {
            packets: 10_000,
            bytes: 8_000_000,
            flows: 300,
            tcp_resets: 2,
        },
        prediction: Some(logic::Prediction {
            probability: 0.3,
            horizon_ms: 300_000,
            model_version: "bench".into(),
        }),
    }
}

fn failover_input(observation: &logic::Observation) -> logic::FailoverInput {
    logic::FailoverInput {
        now_ms: observation.now_ms,
        drift: logic::drift(&logic::DriftConfig::default(), observation),
        correlation: logic::correlation(&logic::CorrelationConfig::default(), observation),
        prediction: observation.prediction.clone(),
        state: logic::FailoverState {
            consecutive_over: 1,
            last_go_ms: None,
            recent_go_ms: Vec::new(),
        },
    }
}

/// Builds the runtime's test policies and returns the echo policy.
fn echo_policy() -> Arc<[u8]> {
    let output = Command::new("bash")
        .arg(root().join("host/policy/hostile/build.sh"))
        .current_dir(root())
        .output()
        .expect("run host/policy/hostile/build.sh");
    assert!(
        output.status.success(),
        "host/policy/hostile/build.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    std::fs::read(dir.join("umbra_hostile_echo.wasm"))
        .expect("read echo")
        .into()
}

/// `series` series of `samples` samples on each device, nothing else.
fn bare_observation(series: usize, samples: usize) -> logic::Observation {
    let window = || {
        logic::DeviceWindow::from_series(
            (0..series)
                .map(|s| logic::Series {
                    name: METRICS[s % METRICS.len()].to_owned(),
                    values: (0..samples).map(|i| i as f64).collect(),
                    missing: Vec::new(),
                    baseline: logic::Baseline::default(),
                })
                .collect::<Vec<_>>(),
        )
        .expect("a valid window")
    };
    logic::Observation {
        timestamps_ms: (0..samples as i64).collect(),
        primary: window(),
        shadow: window(),
        ..logic::Observation::default()
    }
}

fn engine(cache: Option<PathBuf>) -> PolicyEngine {
    PolicyEngine::new(EngineConfig {
        cache_dir: cache,
        ..EngineConfig::default()
    })
    .expect("engine")
}

fn bench_policies(c: &mut Criterion) {
    let policies = default_policies();
    let runtime = PolicyRuntime::new(engine(None), RuntimeConfig::default()).expect("runtime");
    for (kind, bytes) in &policies {
        runtime
            .load_blocking(PolicySource::new(kind.as_str(), "bench", bytes.clone()))
            .expect("load");
    }
    let observation = observation();
    let input = failover_input(&observation);
    // Sanity: the policies answer, not the fallback.
    assert!(!runtime.drift(&observation).is_fallback());
    assert!(!runtime.correlation(&observation).is_fallback());
    assert!(!runtime.failover(&input).is_fallback());

    let mut group = c.benchmark_group("policy/evaluate");
    group.bench_function("drift", |b| {
        b.iter(|| black_box(runtime.drift(black_box(&observation))))
    });
    group.bench_function("correlation", |b| {
        b.iter(|| black_box(runtime.correlation(black_box(&observation))))
    });
    group.bench_function("failover", |b| {
        b.iter(|| black_box(runtime.failover(black_box(&input))))
    });
    group.finish();

    let echo = PolicyRuntime::new(engine(None), RuntimeConfig::default()).expect("runtime");
    echo.load_blocking(PolicySource::new("echo", "bench", echo_policy()))
        .expect("load echo");
    let mut group = c.benchmark_group("policy/transport");
    for (name, series, samples) in [("empty", 0, 0), ("16x60", 16, 60), ("1x960", 1, 960)] {
        let o = bare_observation(series, samples);
        assert!(!echo.drift(&o).is_fallback());
        group.bench_function(name, |b| b.iter(|| black_box(echo.drift(black_box(&o)))));
    }
    group.finish();
    drop(echo);

    let mut group = c.benchmark_group("policy/native");
    let drift = logic::DriftConfig::default();
    let correlation = logic::CorrelationConfig::default();
    let failover = logic::FailoverConfig::default();
    group.bench_function("drift", |b| {
        b.iter(|| black_box(logic::drift(&drift, black_box(&observation))))
    });
    group.bench_function("correlation", |b| {
        b.iter(|| black_box(logic::correlation(&correlation, black_box(&observation))))
    });
    group.bench_function("failover", |b| {
        b.iter(|| black_box(logic::failover(&failover, black_box(&input))))
    });
    group.finish();

    let mut group = c.benchmark_group("policy/instantiate");
    for (kind, _) in &policies {
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| assert!(runtime.instantiate_fresh(*kind).expect("instantiate")));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("policy/reload");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let (_, drift_bytes) = policies
        .iter()
        .find(|(k, _)| *k == PolicyKind::Drift)
        .expect("drift");
    // Cold: Cranelift compiles the component (no cache), then screen,
    // validate, swap.
    group.bench_function("compile_and_swap", |b| {
        b.iter(|| {
            runtime
                .load_blocking(PolicySource::new("drift", "next", drift_bytes.clone()))
                .expect("reload")
        })
    });
    // Warm: the compiled component comes from the disk cache.
    let cache =
        std::env::temp_dir().join(format!("umbra-policy-bench-cache-{}", std::process::id()));
    let cached =
        PolicyRuntime::new(engine(Some(cache.clone())), RuntimeConfig::default()).expect("runtime");
    cached
        .load_blocking(PolicySource::new("drift", "first", drift_bytes.clone()))
        .expect("load");
    group.bench_function("cached_swap", |b| {
        b.iter_batched(
            || PolicySource::new("drift", "next", drift_bytes.clone()),
            |source| cached.load_blocking(source).expect("reload"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
    drop(cached);
    let _ = std::fs::remove_dir_all(cache);
}

criterion_group!(benches, bench_policies);
criterion_main!(benches);
