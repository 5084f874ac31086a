//! Black-box tests of `umbra-scenario` through its public API: generated data
//! directories are reproducible, and what is written reads back unchanged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use umbra_scenario::{
    Device, EvalConfig, METRICS, ScenarioConfig, ScenarioKind, evaluate, generate, read_dir,
    write_dir,
};

/// Every file of a directory, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

fn config(seed: u64) -> ScenarioConfig {
    ScenarioConfig {
        seed,
        faulty_traces: 6,
        fault_free_traces: 2,
        trace_duration: Duration::from_secs(15 * 60),
        ramp_max: Duration::from_secs(5 * 60),
        min_history: Duration::from_secs(60),
        ..ScenarioConfig::default()
    }
}

fn generate_into(dir: &Path, seed: u64) {
    write_dir(dir, &generate(&config(seed)).unwrap()).unwrap();
}

#[test]
fn same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    generate_into(&a, 42);
    generate_into(&b, 42);
    generate_into(&c, 43);
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert_eq!(fa.len(), 16, "8 traces, a CSV and a JSON each");
    assert_eq!(fa, fb);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fc.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert_ne!(bytes, &fc[name], "{name} should differ under another seed");
    }
}

#[test]
fn generated_traces_read_back_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let traces = generate(&config(7)).unwrap();
    write_dir(tmp.path(), &traces).unwrap();
    let back = read_dir(tmp.path()).unwrap();
    // read_dir sorts by name: clean-* before fault-*.
    let mut sorted = traces.clone();
    sorted.sort_by(|a, b| a.name().cmp(b.name()));
    assert_eq!(back, sorted);
    let t = &back[0];
    assert_eq!(t.meta().kind, ScenarioKind::FaultFree);
    assert_eq!(t.len(), 15 * 60 * 2, "500 ms ticks");
    assert_eq!(t.timestamps_ms()[1] - t.timestamps_ms()[0], 500);
    for device in Device::ALL {
        for metric in METRICS {
            assert_eq!(t.series(device, metric).len(), t.len());
        }
    }
}

#[test]
fn an_oracle_alarming_early_in_every_fault_window_scores_perfectly() {
    let traces = generate(&config(1)).unwrap();
    let alarms: Vec<Vec<i64>> = traces
        .iter()
        .map(
            |t| match (t.meta().fault_start_ms, t.meta().failure_onset_ms) {
                (Some(start), Some(onset)) => vec![start, start + 500, onset],
                _ => vec![],
            },
        )
        .collect();
    let report = evaluate(&traces, &alarms, &EvalConfig::default()).unwrap();
    let all = &report.overall;
    assert_eq!((all.faults, all.detected, all.false_alarms), (6, 6, 0));
    assert_eq!(
        (all.precision, all.recall, all.f1),
        (Some(1.0), Some(1.0), Some(1.0))
    );
    assert_eq!(
        all.in_time_share,
        Some(1.0),
        "every ramp is at least 20 s long"
    );
    assert_eq!(all.false_alarms_per_device_day, Some(0.0));
    assert_eq!(report.by_kind.len(), 7, "six fault kinds and fault-free");

    // An alarm on every tick of a fault-free trace is one false alarm event.
    let mut noisy = alarms.clone();
    noisy[7] = traces[7].timestamps_ms().to_vec();
    let report = evaluate(&traces, &noisy, &EvalConfig::default()).unwrap();
    assert_eq!(report.overall.fault_free_false_alarms, 1);
    assert_eq!(report.overall.precision, Some(6.0 / 7.0));
}
