//! One tick of `umbra run`'s engine task for 1 000 protected pairs, as far
//! as it runs without a network:
//!
//! - `daemon_tick/1000_pairs`: every pair's telemetry for the tick (both
//!   devices, each metric the model's manifest reads) recorded into the
//!   daemon's own [`PredictiveEngine`] (built by `run::build_engine`, as
//!   `umbra run` builds it with the shipped default model and the
//!   built-in policies), then `engine.tick`: per pair the drift detector,
//!   correlation and the failover decision, and one batched ONNX Runtime
//!   call over all 1 000 windows. Throughput is in pairs. Not included:
//!   the agents' gRPC streams and the telemetry queue before `record`,
//!   and the metrics and watch updates after the decisions.
//! - `daemon_tick/1000_pairs_wasm_failover`: the same with Umbra's default
//!   failover policy as a WebAssembly component (`[policies] dir` with
//!   `failover.wasm`) deciding for every pair. Skipped, with a message,
//!   until `scripts/build-policies.sh` has built it.
//!
//! The telemetry is generated fault-free traces replayed pair by pair at
//! different offsets (`umbra_benches::replay`, shared with `prediction`).
//! Every pair is warmed with a full model history (window + baseline
//! ticks) and past the engine's warm-up before measuring, so the
//! predictor runs for every pair. Needs ONNX Runtime (`ORT_DYLIB_PATH`, or
//! the `onnxruntime` wheel in `.venv`, as the tests).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use umbra_benches::replay::{Replay, TICK_MS};
use umbra_daemon::engine::{PredictiveEngine, Role};
use umbra_model::History;
use umbra_policy_logic::PolicyKind;
use umbra_policy_runtime::{
    EngineConfig, PolicyEngine, PolicyRuntime, PolicySource, RuntimeConfig,
};
use umbra_scenario::{Device, metric_index};

const PAIRS: usize = 1_000;
const TRACES: usize = 8;

/// The smallest configuration `umbra run` accepts, at the traces' tick;
/// only `[host]`, `[model]` and `[failover]` shape the engine.
fn config() -> umbra_config::Config {
    let text = format!(
        r#"
[host]
name = "bench"
election-id = 1
tick-ms = {TICK_MS}

[[switch]]
name = "s1"
address = "127.0.0.1:9559"
device-id = 1

[[pair]]
name = "p"
switch = "s1"
service = 1
client-port = 1
server-port = 2
primary = {{ device = 1, client-leg = 3, server-leg = 4, monitor = 8, agent = "127.0.0.1:1" }}
shadow = {{ device = 2, client-leg = 5, server-leg = 6, monitor = 7, agent = "127.0.0.1:2" }}
"#
    );
    umbra_config::parse(&text, Path::new("bench.toml")).expect("a valid configuration")
}

struct Daemon {
    engine: PredictiveEngine,
    replay: Replay,
    /// Every metric the manifest reads: its name and index in the traces.
    metrics: Vec<(String, usize)>,
    tick: usize,
}

impl Daemon {
    fn new() -> Self {
        let mut engine = umbra_daemon::run::build_engine(&config()).expect("the engine");
        for _ in 0..PAIRS {
            engine.add_pair().expect("a pair");
        }
        let manifest = engine.predictor().expect("the default model").manifest();
        let mut metrics: Vec<(String, usize)> = Vec::new();
        for (_, metric) in History::for_manifest(manifest).metrics() {
            if !metrics.iter().any(|(m, _)| m == metric) {
                let at = metric_index(metric)
                    .unwrap_or_else(|| panic!("the generator records no {metric}"));
                metrics.push((metric.clone(), at));
            }
        }
        let warm = History::for_manifest(manifest).keep();
        let mut daemon = Self {
            engine,
            replay: Replay::fault_free(TRACES, 4_242),
            metrics,
            tick: 0,
        };
        // A full history and past the warm-up: what every pair has ten
        // minutes after the daemon started.
        let started = Instant::now();
        for _ in 0..=warm.max(daemon.engine.config().warmup_ticks) {
            daemon.tick();
        }
        eprintln!(
            "daemon_tick: warmed {PAIRS} pairs over {} ticks in {:.1?}",
            daemon.tick,
            started.elapsed()
        );
        daemon
    }

    /// One tick: record the telemetry, decide. Returns how many pairs
    /// said go plus the probabilities' sum, so nothing is optimised away.
    fn tick(&mut self) -> f64 {
        let now_ms = Replay::now_ms(self.tick);
        for pair in 0..PAIRS {
            for (device, role) in [
                (Device::Primary, Role::Primary),
                (Device::Shadow, Role::Shadow),
            ] {
                for (name, metric) in &self.metrics {
                    if let Some(value) = self.replay.value(pair, device, *metric, self.tick) {
                        self.engine.record(pair, role, name, now_ms, value);
                    }
                }
            }
        }
        let decisions = self.engine.tick(now_ms).expect("the tick");
        self.tick += 1;
        decisions
            .iter()
            .map(|d| f64::from(u8::from(d.go)) + d.probability.unwrap_or(0.0))
            .sum()
    }
}

/// Umbra's default failover policy, configured as the engine's native
/// one, if `scripts/build-policies.sh` has built it.
fn wasm_failover(engine: &PredictiveEngine) -> Option<PolicyRuntime> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("wasm32-wasip2/release/umbra_policy_failover.wasm");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!(
            "daemon_tick: {} is missing (scripts/build-policies.sh builds it): \
             1000_pairs_wasm_failover skipped",
            path.display()
        );
        return None;
    };
    let runtime = PolicyRuntime::new(
        PolicyEngine::new(EngineConfig::default()).expect("the wasmtime engine"),
        RuntimeConfig::default(),
    )
    .expect("the policy runtime");
    runtime
        .load_blocking(
            PolicySource::new("failover", "default", bytes)
                .with_config(engine.config().failover.to_pairs())
                .expecting(PolicyKind::Failover),
        )
        .expect("the default failover policy loads");
    Some(runtime)
}

fn bench_daemon_tick(c: &mut Criterion) {
    let mut daemon = Daemon::new();
    let probability = daemon.engine.tick(Replay::now_ms(daemon.tick));
    assert!(
        probability
            .expect("the tick")
            .iter()
            .all(|d| d.probability.is_some()),
        "every pair is predicted once warm"
    );
    daemon.tick += 1;
    let mut group = c.benchmark_group("daemon_tick");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("1000_pairs", |b| b.iter(|| black_box(daemon.tick())));
    if let Some(runtime) = wasm_failover(&daemon.engine) {
        daemon.engine.set_policies(Some(Arc::new(runtime.clone())));
        group.bench_function("1000_pairs_wasm_failover", |b| {
            b.iter(|| black_box(daemon.tick()));
        });
        let status = runtime.status(PolicyKind::Failover);
        assert!(status.policy_answers > 0, "{status:?}");
        assert_eq!(status.fallback_answers, 0, "{status:?}");
    }
    group.finish();
}

criterion_group!(benches, bench_daemon_tick);
criterion_main!(benches);
