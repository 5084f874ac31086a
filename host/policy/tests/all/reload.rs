//! Hot reload: a hundred swaps under thousands of evaluations per second
//! lose nothing and every answer comes from exactly one version; the
//! watched directory loads new files and keeps the old version when a new
//! one is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_policy_logic::PolicyKind;
use umbra_policy_runtime::{Error, PolicyWatcher, WatchConfig, WatchMode};

use crate::support::{default_policy, hostile, observation, runtime, source};

const SWAPS: u32 = 100;
const TASKS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_reload_under_load_loses_nothing_and_each_answer_has_one_version() {
    let runtime = runtime();
    let bytes = hostile("echo");
    // A generous deadline: four busy tasks on a two-core machine get
    // descheduled for longer than 5 ms, and deadlines are wall-clock.
    let load = |version: u32| {
        source(
            "echo",
            &version.to_string(),
            bytes.clone(),
            &[("tag", &version.to_string())],
        )
        .with_limits(crate::support::limits(500_000, 16 << 20))
    };
    runtime.load(load(0)).await.unwrap();

    let swapping = Arc::new(AtomicBool::new(true));
    let tracker = TaskTracker::new();
    let started = Instant::now();
    let evaluators: Vec<_> = (0..TASKS)
        .map(|task| {
            let runtime = runtime.clone();
            let swapping = swapping.clone();
            tracker.spawn(async move {
                let o = observation(1_700_000_000_000 + task as i64, 16);
                let mut versions: Vec<u32> = Vec::new();
                loop {
                    // Read before the batch: once the swapper is done, the
                    // last version is active for good, so the batch after
                    // this flag turns false is answered by it.
                    let done = !swapping.load(Ordering::Acquire);
                    for _ in 0..32 {
                        let answer = runtime.drift(&o);
                        let policy = answer.policy().unwrap_or_else(|| {
                            panic!("task {task}: fallback answered: {:?}", answer.answered_by)
                        });
                        // The answer's content comes from the version it is
                        // attributed to.
                        assert_eq!(answer.value.explanation, policy.version, "task {task}");
                        versions.push(policy.version.parse().unwrap());
                    }
                    tokio::task::yield_now().await;
                    if done && versions.len() >= 1000 {
                        break;
                    }
                }
                versions
            })
        })
        .collect();

    for version in 1..=SWAPS {
        let id = runtime.load(load(version)).await.unwrap();
        assert_eq!(id.version, version.to_string());
        tokio::task::yield_now().await;
    }
    swapping.store(false, Ordering::Release);
    tracker.close();
    let mut total = 0;
    let mut per_version: BTreeMap<u32, usize> = BTreeMap::new();
    for (task, evaluator) in evaluators.into_iter().enumerate() {
        let versions = evaluator.await.expect("no evaluator panicked");
        assert!(
            versions.windows(2).all(|w| w[0] <= w[1]),
            "task {task}: versions go backwards"
        );
        assert_eq!(
            *versions.last().unwrap(),
            SWAPS,
            "task {task} ends on the last version"
        );
        total += versions.len();
        for v in versions {
            *per_version.entry(v).or_default() += 1;
        }
    }
    tracker.wait().await;
    let elapsed = started.elapsed();

    let status = runtime.status(PolicyKind::Drift);
    assert_eq!(status.fallback_answers, 0, "no evaluation failed");
    assert_eq!(
        status.policy_answers as usize, total,
        "no evaluation lost or counted twice"
    );
    assert_eq!(per_version.values().sum::<usize>(), total);
    assert_eq!(status.swaps, u64::from(SWAPS) + 1);
    assert!(
        per_version.len() > 10,
        "evaluations interleaved with the swaps: versions seen {:?}",
        per_version.keys().collect::<Vec<_>>()
    );
    let rate = total as f64 / elapsed.as_secs_f64();
    assert!(
        rate > 1000.0,
        "{total} evaluations in {elapsed:?}: {rate:.0}/s"
    );
    eprintln!(
        "{total} evaluations in {elapsed:?} ({rate:.0}/s) across {SWAPS} swaps; {} versions answered",
        per_version.len()
    );
}

/// A watcher of `dir` for `runtime`, scanning every 50 ms.
fn watcher(
    runtime: &umbra_policy_runtime::PolicyRuntime,
    dir: &Path,
    mode: WatchMode,
) -> PolicyWatcher {
    PolicyWatcher::new(
        runtime.clone(),
        WatchConfig {
            dir: dir.to_owned(),
            interval_ms: 50,
            mode,
        },
    )
}

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    // Atomically, as the watcher's documentation asks.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[tokio::test]
async fn watched_directory_loads_new_versions_and_keeps_the_old_one_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let mut watcher = watcher(&runtime, dir.path(), WatchMode::Activate);
    let active = |runtime: &umbra_policy_runtime::PolicyRuntime| {
        runtime
            .status(PolicyKind::Drift)
            .active
            .map(|a| format!("{}@{}", a.id.name, a.id.version))
    };

    put(dir.path(), "echo@1.0.0.wasm", &hostile("echo"));
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let reloads = watcher.scan().await.unwrap();
    assert_eq!(reloads.len(), 1);
    assert_eq!(reloads[0].outcome.as_ref().unwrap().version, "1.0.0");
    assert_eq!(active(&runtime).as_deref(), Some("echo@1.0.0"));
    assert!(watcher.scan().await.unwrap().is_empty(), "nothing changed");

    put(dir.path(), "echo@1.1.0.wasm", &hostile("echo"));
    watcher.scan().await.unwrap();
    assert_eq!(active(&runtime).as_deref(), Some("echo@1.1.0"));

    // Refused files leave the active version in place, and say why.
    put(dir.path(), "broken@2.0.0.wasm", b"\0asm but not really");
    put(dir.path(), "fs-reader@3.0.0.wasm", &hostile("fs-reader"));
    let reloads = watcher.scan().await.unwrap();
    assert_eq!(reloads.len(), 2);
    for reload in &reloads {
        let error = reload.outcome.as_ref().expect_err("refused");
        match reload.path.file_name().unwrap().to_str().unwrap() {
            "broken@2.0.0.wasm" => assert!(matches!(error, Error::Compile { .. }), "{error}"),
            _ => assert!(error.to_string().contains("wasi:filesystem/"), "{error}"),
        }
    }
    assert_eq!(active(&runtime).as_deref(), Some("echo@1.1.0"));
    assert!(!runtime.drift(&observation(0, 2)).is_fallback());

    // A file without a version is named after its content.
    put(dir.path(), "plain.wasm", &hostile("echo"));
    watcher.scan().await.unwrap();
    let version = runtime.status(PolicyKind::Drift).active.unwrap().id.version;
    assert!(
        version.starts_with("sha256:") && version.len() == 19,
        "{version}"
    );

    // The watcher as a subsystem: polls until cancelled.
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(watcher.run(shutdown.clone()));
    put(dir.path(), "echo@4.0.0.wasm", &hostile("echo"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while active(&runtime).as_deref() != Some("echo@4.0.0") {
        assert!(
            Instant::now() < deadline,
            "the watcher did not load echo@4.0.0"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .expect("the watcher stops when cancelled");
}

#[tokio::test]
async fn watched_directory_in_shadow_mode_loads_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    runtime
        .load(source("echo", "1", hostile("echo"), &[]))
        .await
        .unwrap();
    let mut watcher = watcher(&runtime, dir.path(), WatchMode::Shadow);
    put(dir.path(), "echo@2.wasm", &hostile("echo"));
    watcher.scan().await.unwrap();
    let status = runtime.status(PolicyKind::Drift);
    assert_eq!(status.active.unwrap().id.version, "1");
    assert_eq!(status.candidate.unwrap().policy.id.version, "2");
}

#[tokio::test]
async fn a_file_named_after_a_kind_must_hold_that_kind_and_its_refusal_is_recorded_there() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let mut watcher = watcher(&runtime, dir.path(), WatchMode::Activate);
    // A drift policy under the failover policy's name.
    put(dir.path(), "failover.wasm", &default_policy("drift"));
    let reloads = watcher.scan().await.unwrap();
    let error = reloads[0].outcome.as_ref().expect_err("wrong kind");
    assert!(matches!(error, Error::WrongKind { .. }), "{error}");
    assert!(runtime.status(PolicyKind::Drift).active.is_none());
    // Garbage does not even compile, yet the failover slot says why.
    put(dir.path(), "failover@2.wasm", b"not a component");
    watcher.scan().await.unwrap();
    let status = runtime.status(PolicyKind::Failover);
    assert!(status.active.is_none());
    let recorded = status.last_reload_error.expect("recorded on failover");
    assert!(recorded.contains("failover@2"), "{recorded}");
    // Files named otherwise are loaded as whatever kind they export.
    put(dir.path(), "mine.wasm", &default_policy("correlation"));
    watcher.scan().await.unwrap();
    assert!(runtime.has_policy(PolicyKind::Correlation));
}

#[tokio::test]
async fn set_config_reaches_later_loads_and_the_fallback() {
    let runtime = runtime();
    let config = |threshold: &str| {
        vec![
            ("probability-threshold".to_owned(), threshold.to_owned()),
            ("hysteresis".to_owned(), "1".to_owned()),
            ("corroborated-hysteresis".to_owned(), "1".to_owned()),
        ]
    };
    runtime
        .set_config(PolicyKind::Failover, &config("0.25"))
        .unwrap();
    // The fallback decides with it: one evaluation at 0.3 goes.
    let input = umbra_policy_logic::FailoverInput {
        now_ms: 1_700_000_000_000,
        drift: Default::default(),
        correlation: Default::default(),
        prediction: Some(umbra_policy_logic::Prediction {
            probability: 0.3,
            horizon_ms: 300_000,
            model_version: "test".into(),
        }),
        state: Default::default(),
    };
    let answer = runtime.failover(&input);
    assert!(answer.is_fallback());
    assert_eq!(answer.value.verdict, umbra_policy_logic::Verdict::Go);
    // A load without its own configuration is given it.
    runtime
        .load(umbra_policy_runtime::PolicySource::new(
            "failover",
            "1",
            default_policy("failover"),
        ))
        .await
        .unwrap();
    let active = runtime.status(PolicyKind::Failover).active.unwrap();
    assert!(
        active
            .config
            .contains(&("probability-threshold".into(), "0.25".into())),
        "{:?}",
        active.config
    );
    let answer = runtime.failover(&input);
    assert!(!answer.is_fallback());
    assert_eq!(answer.value.verdict, umbra_policy_logic::Verdict::Go);
    // A configuration the fallback refuses changes nothing.
    assert!(
        runtime
            .set_config(PolicyKind::Failover, &config("2"))
            .is_err()
    );
    assert_eq!(
        runtime.config().failover.config["probability-threshold"],
        "0.25"
    );
}
