//! `[policies] dir` and the reloads of `umbra run`, through `run::start`
//! and the management API: Umbra's default failover policy (built by
//! `scripts/build-policies.sh`) loaded from the directory decides, with
//! the pair's failover configuration; garbage written over it is refused
//! by `umbra policy reload` while the old version keeps deciding, and the
//! watcher loads the file once it is valid again; a policy that does not
//! load stops the start, named. `ReloadModel` refuses a model whose
//! manifest does not fit the running one and swaps in one that does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_daemon::control::DaemonControl;
use umbra_daemon::engine::PairDecision;
use umbra_daemon::run::{DaemonError, Running, audit_file, start};
use umbra_ops::{Control, ReloadOutcome};
use umbra_policy_logic::{FailoverConfig, PolicyKind};

use crate::run::agent;
use crate::support::{PATIENCE, management_client, one_pair_config, serve_switch, status_json};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Umbra's default policy of `kind`, built once per test binary by
/// `scripts/build-policies.sh` (as host/policy's tests do), which prints
/// the path of each component.
fn default_policy(kind: &str) -> Vec<u8> {
    static PATHS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        let root = workspace_root();
        let output = Command::new("bash")
            .arg(root.join("scripts/build-policies.sh"))
            .current_dir(&root)
            .output()
            .expect("run scripts/build-policies.sh");
        assert!(
            output.status.success(),
            "building the default policies failed (is the wasm32-wasip2 target installed?):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(PathBuf::from)
            .collect()
    });
    let path = paths
        .iter()
        .find(|p| p.ends_with(format!("umbra_policy_{kind}.wasm")))
        .unwrap_or_else(|| panic!("no {kind} policy among {paths:?}"));
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `name` into `dir` atomically, as the watcher asks.
fn put(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// Umbra's switch and two simulated agents; returns the configuration of
/// one pair on them, with `extra` appended.
async fn lab(tasks: &TaskTracker, stop: &CancellationToken, dir: &Path, extra: &str) -> PathBuf {
    let switch = serve_switch(tasks, stop).await;
    let (primary, shadow) = (agent(1, tasks, stop).await, agent(2, tasks, stop).await);
    // The policies' compilation cache outlives the test's directory: a
    // debug build's Cranelift takes a while, so later runs start warm.
    let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("daemon-policy-state");
    let text = one_pair_config(
        &format!(
            "name = \"test-host\"\nelection-id = 10\ntick-ms = 100\nstate-dir = \"{}\"",
            state.display()
        ),
        switch,
        (&primary, &shadow),
        "",
        extra,
    );
    let path = dir.join("umbra.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn start_daemon(
    config: &Path,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> Result<Running, DaemonError> {
    let config = umbra_config::load(config).expect("valid configuration");
    let audit = audit_file("test-host", &config.host.audit_log).unwrap();
    start(&config, audit, tasks, stop).await
}

/// Waits for a decision that satisfies `check`.
async fn decision_where(
    decisions: &mut watch::Receiver<Option<PairDecision>>,
    check: impl Fn(&PairDecision) -> bool,
) -> PairDecision {
    let found = tokio::time::timeout(PATIENCE, async {
        decisions
            .wait_for(|d| d.as_ref().is_some_and(&check))
            .await
            .expect("the engine runs")
            .clone()
    })
    .await;
    match found {
        Ok(decision) => decision.expect("a decision"),
        Err(_) => panic!("no such decision; last: {:?}", decisions.borrow()),
    }
}

async fn stop_all(tasks: TaskTracker, stop: CancellationToken) {
    stop.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(10), tasks.wait())
        .await
        .expect("every task stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_policy_from_the_directory_decides_and_a_garbage_reload_keeps_it() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let failover = default_policy("failover");
    put(&policies, "failover.wasm", &failover);
    // The pair's own failover settings differ from [failover]'s: it
    // decides in a group of its own, whose policy must be given them.
    // A generous deadline: a debug build on a shared machine.
    let extra = format!(
        "\n[pair.failover]\ncooldown-s = 120\n\n[policies]\ndir = \"{}\"\nwatch = true\ndeadline-ms = 1000\n",
        policies.display()
    );
    let config = lab(&tasks, &stop, dir.path(), &extra).await;
    let running = start_daemon(&config, &tasks, &stop).await.expect("starts");

    assert_eq!(
        running.policies.len(),
        2,
        "[failover]'s group and the pair's"
    );
    let runtime = running.policies[1].clone();
    let active = runtime
        .status(PolicyKind::Failover)
        .active
        .expect("failover.wasm loaded");
    assert_eq!(active.id.name, "failover");
    let given = FailoverConfig::from_pairs(&active.config).expect("a failover configuration");
    let manifest = umbra_model::Manifest::load(&umbra_model::Manifest::path_for(
        &umbra_model::default_model_path(),
    ))
    .unwrap();
    assert_eq!(given.cooldown_ms, 120_000, "the pair's [pair.failover]");
    assert_eq!(
        given.probability_threshold, manifest.threshold,
        "the manifest's threshold"
    );
    assert!(!running.policies[0].has_policy(PolicyKind::Drift));

    // It decides: the WASM policy answers, no fallback.
    let pair = running.pair("web").unwrap().clone();
    let mut decisions = pair.last_decision.clone();
    decision_where(&mut decisions, |d| !d.fallback).await;
    let answered = runtime.status(PolicyKind::Failover);
    assert!(answered.policy_answers > 0, "{answered:?}");
    assert_eq!(answered.fallback_answers, 0, "{answered:?}");

    // The management API says so too.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let control = Arc::new(DaemonControl::new(running.clone()));
    tasks.spawn(umbra_ops::serve(
        listener,
        Arc::clone(&control) as Arc<dyn Control>,
        None,
        stop.clone(),
    ));
    let client = management_client(api);
    let status = status_json(&client).await;
    assert_eq!(
        status["pairs"][0]["last_decision"]["fallback"], false,
        "{status}"
    );

    // Nothing changed: every kind is answered, none reloaded.
    let reloads = control.reload_policies().await;
    let of = |reloads: &[umbra_ops::PolicyReload], kind: &str| {
        reloads
            .iter()
            .find(|r| r.kind == kind)
            .unwrap_or_else(|| panic!("no answer for {kind}: {reloads:?}"))
            .clone()
    };
    assert_eq!(
        of(&reloads, "failover").outcome,
        ReloadOutcome::Unchanged,
        "{reloads:?}"
    );
    assert_eq!(of(&reloads, "drift").source, "builtin", "{reloads:?}");

    // Garbage over it: refused, named, the old version keeps deciding.
    put(
        &policies,
        "failover.wasm",
        b"\0asm garbage, not a component",
    );
    let reloads = control.reload_policies().await;
    let refused = of(&reloads, "failover");
    assert_eq!(refused.outcome, ReloadOutcome::Refused, "{reloads:?}");
    let error = refused.error.clone().unwrap_or_default();
    assert!(
        refused.source.ends_with("failover.wasm") && !error.is_empty(),
        "{refused:?}"
    );
    let text = umbra_ops::client::reload_policies(&client)
        .await
        .expect("reload");
    assert!(text.contains("failover.wasm refused"), "{text}");
    let still = runtime.status(PolicyKind::Failover);
    assert_eq!(
        still.active.as_ref().map(|a| a.id.digest.clone()),
        Some(active.id.digest.clone()),
        "the old version stays"
    );
    let before = still.policy_answers;
    decision_where(&mut decisions, |d| !d.fallback).await;
    tokio::time::timeout(PATIENCE, async {
        while runtime.status(PolicyKind::Failover).policy_answers <= before {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the old version keeps answering");

    // Valid again: the watcher loads it by itself.
    let swaps = runtime.status(PolicyKind::Failover).swaps;
    put(&policies, "failover.wasm", &failover);
    tokio::time::timeout(PATIENCE, async {
        loop {
            let status = runtime.status(PolicyKind::Failover);
            if status.swaps > swaps && status.last_reload_error.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the watcher reloads the valid file");
    let metrics = running.metrics.encode();
    assert!(!metrics.contains("umbra_policy_faults_total{"), "{metrics}");
    stop_all(tasks, stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_does_not_load_stops_the_start_named() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    put(&policies, "correlation.wasm", b"not wasm at all");
    let extra = format!("\n[policies]\ndir = \"{}\"\n", policies.display());
    let config = lab(&tasks, &stop, dir.path(), &extra).await;
    let error = match start_daemon(&config, &tasks, &stop).await {
        Ok(_) => panic!("started with a broken policy"),
        Err(error) => error,
    };
    match &error {
        DaemonError::Policy { path, .. } => {
            assert_eq!(path, &policies.join("correlation.wasm"), "{error}");
        }
        other => panic!("not a policy error: {other}"),
    }
    assert!(error.to_string().contains("correlation.wasm"), "{error}");
    stop_all(tasks, stop).await;
}

/// The default model's files copied into `dir` as `name`, the manifest
/// edited by `edit`.
fn model_copy(dir: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let model = umbra_model::default_model_path();
    let onnx = dir.join(format!("{name}.onnx"));
    std::fs::copy(&model, &onnx).unwrap();
    let text = std::fs::read_to_string(umbra_model::Manifest::path_for(&model)).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut manifest);
    std::fs::write(
        umbra_model::Manifest::path_for(&onnx),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    onnx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_model_refuses_a_model_that_does_not_fit_and_swaps_one_that_does() {
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let dir = tempfile::tempdir().unwrap();
    let config = lab(&tasks, &stop, dir.path(), "").await;
    let running = start_daemon(&config, &tasks, &stop).await.expect("starts");
    let control = DaemonControl::new(running.clone());
    let mut decisions = running.pair("web").unwrap().last_decision.clone();
    let first = decision_where(&mut decisions, |_| true).await;

    // Without [policies] dir, a policy reload says what decides.
    let reloads = control.reload_policies().await;
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    assert!(
        reloads[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("built-in policies")),
        "{reloads:?}"
    );

    // A manifest that is not JSON: refused by the load.
    let broken = dir.path().join("broken.onnx");
    std::fs::copy(umbra_model::default_model_path(), &broken).unwrap();
    std::fs::write(umbra_model::Manifest::path_for(&broken), "{ not json").unwrap();
    let error = control
        .reload_model(Some(broken.clone()))
        .await
        .expect_err("refused");
    assert!(error.contains("broken"), "{error}");

    // A valid model whose features are not the running model's (one
    // renamed): it loads, but the engine refuses it.
    let renamed = model_copy(dir.path(), "renamed", |m| {
        m["features"][0]["name"] = "primary.cpu-renamed".into();
        m["model_version"] = "renamed".into();
    });
    let error = control
        .reload_model(Some(renamed))
        .await
        .expect_err("refused");
    assert!(
        error.contains("features differ") && error.contains("primary.cpu-renamed"),
        "{error}"
    );

    // Still the first model, and its threshold.
    let after = decision_where(&mut decisions, |d| d.at_ms > first.at_ms).await;
    assert_eq!(after.probability_threshold, first.probability_threshold);

    // The same model with another version and threshold: swapped in,
    // the threshold follows its manifest (none is configured).
    let retuned = model_copy(dir.path(), "retuned", |m| {
        m["threshold"] = 0.5.into();
        m["model_version"] = "retuned".into();
    });
    let answer = control.reload_model(Some(retuned)).await.expect("accepted");
    assert!(answer.contains("retuned"), "{answer}");
    let decision = decision_where(&mut decisions, |d| d.probability_threshold == 0.5).await;
    assert!(!decision.fallback);

    // And back to the configured (here the default) model.
    let answer = control.reload_model(None).await.expect("accepted");
    assert!(answer.contains("umbra-gru-default"), "{answer}");
    decision_where(&mut decisions, |d| {
        d.probability_threshold == first.probability_threshold
    })
    .await;
    stop_all(tasks, stop).await;
}

/// The hostile test policy `name` of umbra-policy-runtime
/// (`host/policy/hostile/build.sh`, which prints where it built them).
fn hostile(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let output = Command::new("bash")
            .arg(workspace_root().join("host/policy/hostile/build.sh"))
            .output()
            .expect("run host/policy/hostile/build.sh");
        assert!(
            output.status.success(),
            "building the hostile policies failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .last()
                .expect("the output directory")
                .trim(),
        )
    });
    let path = dir.join(format!("umbra_hostile_{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An engine with one pair whose drift is asked of the hostile `panic`
/// policy (it panics on observations whose primary has a metric named
/// `hostile`), and the policy runtime holding it.
async fn hostile_drift_engine() -> (
    umbra_policy_runtime::PolicyRuntime,
    umbra_daemon::engine::PredictiveEngine,
) {
    use umbra_daemon::engine::{EngineConfig, PredictiveEngine};
    use umbra_policy_runtime::{
        EngineConfig as WasmConfig, PolicyEngine, PolicyRuntime, PolicySource, RuntimeConfig,
    };

    let runtime = PolicyRuntime::new(
        PolicyEngine::new(WasmConfig::default()).unwrap(),
        RuntimeConfig::default(),
    )
    .unwrap();
    runtime
        .load(
            PolicySource::new("panic", "1", hostile("panic"))
                .with_config(Vec::new())
                .with_limits(umbra_policy_runtime::PolicyLimits {
                    deadline_micros: 1_000_000,
                    ..Default::default()
                }),
        )
        .await
        .expect("loads (benign on the canned input)");
    let mut engine = PredictiveEngine::new(
        EngineConfig {
            detector: umbra_predict::DetectorConfig::from_pairs(&[]).unwrap(),
            correlation: Default::default(),
            failover: FailoverConfig::default(),
            drift_from_policy: true,
            warmup_ticks: 0,
            correlation_corroborates: false,
        },
        None,
        Some(Arc::new(runtime.clone())),
    );
    engine.add_pair().unwrap();
    (runtime, engine)
}

/// A WASM policy's faults reach the decision (for the metrics), the
/// native fallback answering; once quarantined it no longer runs, and the
/// decision still says a fallback answered.
#[tokio::test]
async fn policy_faults_are_reported_with_the_decision() {
    use umbra_daemon::engine::Role;

    let (runtime, mut engine) = hostile_drift_engine().await;
    let mut faults = 0;
    for tick in 0..6_i64 {
        let now_ms = 1_700_000_000_000 + tick * 500;
        for role in [Role::Primary, Role::Shadow] {
            engine.record(0, role, "cpu", now_ms, 0.5);
            engine.record(0, role, "hostile", now_ms, 1.0);
        }
        let decision = engine.tick(now_ms).unwrap().remove(0);
        assert!(decision.fallback, "tick {tick}: {decision:?}");
        faults += decision.faults.len();
        assert!(decision.faults.iter().all(|k| *k == PolicyKind::Drift));
    }
    let status = runtime.status(PolicyKind::Drift);
    let active = status.active.expect("still loaded");
    assert!(active.quarantined, "{active:?}");
    assert_eq!(
        faults as u32, active.limits.quarantine_after,
        "every fault reported once, none after the quarantine"
    );
}

/// A policy trapping on every evaluation while a failover runs: the
/// failover (which no policy takes part in once triggered) completes,
/// the engine keeps deciding through the native fallback until the policy
/// is quarantined, nothing triggers a second failover, and the switch and
/// the driver agree on the one active device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_trapping_during_a_failover_leaves_the_pair_consistent() {
    use umbra_daemon::engine::Role;
    use umbra_daemon::fabric::MemoryFabric;
    use umbra_daemon::pair::PairInput;
    use umbra_orchestrator::{Phase, Slot, Trigger};

    use crate::support::{Recorder, until};

    let (runtime, mut engine) = hostile_drift_engine().await;

    let (fabric, recorder, stop) = (
        MemoryFabric::new(),
        Recorder::default(),
        CancellationToken::new(),
    );
    let mut handle = crate::driver::start(fabric.clone(), 1, &recorder, &stop).await;
    until(&mut handle.view, |v| v.phase == Phase::Normal).await;

    let mut fallbacks = 0;
    for tick in 0..40_i64 {
        // Traffic through whichever device the selector names.
        fabric.carry(1, 5, 5);
        let now_ms = 1_700_000_000_000 + tick * 100;
        for role in [Role::Primary, Role::Shadow] {
            engine.record(0, role, "cpu", now_ms, 0.5);
            engine.record(0, role, "hostile", now_ms, 1.0);
        }
        let decision = engine.tick(now_ms).unwrap().remove(0);
        fallbacks += usize::from(decision.fallback);
        let view = handle.view.borrow().clone();
        if decision.go && view.master && view.phase == Phase::Normal {
            handle
                .inputs
                .send(PairInput::Trigger(Trigger::Policy {
                    explanation: decision.explanation,
                }))
                .await
                .unwrap();
        }
        if tick == 3 {
            handle
                .inputs
                .send(PairInput::Trigger(Trigger::Manual { by: "test".into() }))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until(&mut handle.view, |v| v.phase == Phase::Normal).await;
    let view = handle.view.borrow().clone();
    assert_eq!(view.failovers, 1, "one failover, none after: {view:?}");
    assert_eq!(view.active, Slot::B);
    assert_eq!(fabric.selector(1), Some(2), "the switch agrees");
    assert_eq!(fallbacks, 40, "every decision came from the fallback");
    assert!(
        runtime
            .status(PolicyKind::Drift)
            .active
            .is_some_and(|a| a.quarantined),
        "the trapping policy ended quarantined"
    );
    stop.cancel();
}
