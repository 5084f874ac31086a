//! `umbra policy test` on real components (the default policies and the
//! runtime's hostile test policies), and the tutorial path `new` → `build`
//! → `test` on a fresh crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use umbra_policy_cli::{TestOutcome, build, scaffold, test_policy};
use umbra_policy_logic::{Case, CaseInput, CaseOutput, PolicyKind};
use umbra_policy_runtime::FaultKind;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sh(script: &Path) -> String {
    let output = Command::new("bash")
        .arg(script)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} failed (is wasm32-wasip2 installed?):\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Builds the default and hostile policies once; returns their directory.
fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        sh(&root().join("scripts/build-policies.sh"));
        let out = sh(&root().join("host/policy/hostile/build.sh"));
        PathBuf::from(out.lines().last().unwrap().trim())
    })
}

fn write(dir: &Path, name: &str, value: &impl serde::Serialize) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

fn recorded_case(name: &str) -> PathBuf {
    root().join("policies/cases").join(name)
}

fn options(
    policy: PathBuf,
    input: PathBuf,
    expect: Option<PathBuf>,
) -> umbra_policy_cli::TestOptions {
    umbra_policy_cli::TestOptions {
        policy,
        input,
        expect,
        config: Vec::new(),
        // Generous: tests run in parallel on a small machine.
        deadline: Duration::from_secs(1),
        memory_bytes: 16 << 20,
        tolerance: 1e-9,
    }
}

#[test]
fn default_policy_matches_its_expected_answer() {
    let dir = tempfile::tempdir().unwrap();
    let case_path = recorded_case("cpu-ramp-with-5xx.json");
    let case: Case = serde_json::from_str(&std::fs::read_to_string(&case_path).unwrap()).unwrap();
    let expected = case.evaluate_default(PolicyKind::Drift).unwrap();
    let expect = write(dir.path(), "expected.json", &expected);

    let report = test_policy(&options(
        wasm_dir().join("umbra_policy_drift.wasm"),
        case_path.clone(),
        Some(expect),
    ))
    .unwrap();
    assert_eq!(
        report.outcome(),
        TestOutcome::Passed,
        "{}",
        report.summary()
    );
    assert_eq!(report.exit_code(), 0);
    assert!(
        report
            .summary()
            .contains("answered by umbra_policy_drift@local (drift policy)"),
        "{}",
        report.summary()
    );
    assert_eq!(report.answer.unwrap().value, expected);

    // A wrong expectation is a mismatch, with the differing fields.
    let CaseOutput::Drift(mut wrong) = expected else {
        panic!("drift")
    };
    wrong.score = (wrong.score + 0.5) % 1.0;
    let expect = write(dir.path(), "wrong.json", &CaseOutput::Drift(wrong));
    let report = test_policy(&options(
        wasm_dir().join("umbra_policy_drift.wasm"),
        case_path,
        Some(expect),
    ))
    .unwrap();
    assert_eq!(report.outcome(), TestOutcome::Mismatch);
    assert_eq!(report.exit_code(), 1);
    let differences = report.differences.unwrap();
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(differences[0].starts_with("score: got "), "{differences:?}");
}

#[test]
fn config_flags_override_the_case() {
    let case_path = recorded_case("failover-first-over.json");
    let mut opts = options(
        wasm_dir().join("umbra_policy_failover.wasm"),
        case_path,
        None,
    );
    opts.config = vec![("no-such-key".into(), "1".into())];
    let report = test_policy(&opts).unwrap();
    assert_eq!(report.outcome(), TestOutcome::Refused);
    assert!(report.refused.unwrap().contains("no-such-key"));
}

#[test]
fn a_fault_is_reported_as_what_it_is_with_the_fallback_decision() {
    let dir = tempfile::tempdir().unwrap();
    let case_path = recorded_case("steady-state.json");
    let mut case: Case =
        serde_json::from_str(&std::fs::read_to_string(&case_path).unwrap()).unwrap();
    let CaseInput::Observation(o) = &mut case.input else {
        panic!("observation")
    };
    let mut series = o.primary.to_series();
    series[0].name = "hostile".to_owned();
    o.primary = umbra_policy_logic::DeviceWindow::from_series(series).expect("a valid window");
    let input = write(dir.path(), "trigger.json", &case);
    let report = test_policy(&options(
        wasm_dir().join("umbra_hostile_spin.wasm"),
        input,
        None,
    ))
    .unwrap();
    assert_eq!(report.outcome(), TestOutcome::Faulted);
    assert_eq!(report.exit_code(), 2);
    let answer = report.answer.as_ref().unwrap();
    assert_eq!(answer.fault().unwrap().kind, FaultKind::Deadline);
    assert_eq!(
        answer.value,
        case.evaluate_default(PolicyKind::Drift).unwrap()
    );
    assert!(
        report.summary().starts_with("FAULT (deadline)"),
        "{}",
        report.summary()
    );
}

#[test]
fn a_refused_policy_names_the_import() {
    let report = test_policy(&options(
        wasm_dir().join("umbra_hostile_fs_reader.wasm"),
        recorded_case("steady-state.json"),
        None,
    ))
    .unwrap();
    assert_eq!(report.outcome(), TestOutcome::Refused);
    assert!(
        report
            .refused
            .as_deref()
            .unwrap()
            .contains("wasi:filesystem/"),
        "{:?}",
        report.refused
    );
}

#[test]
fn a_case_for_another_kind_is_a_usage_error() {
    let error = test_policy(&options(
        wasm_dir().join("umbra_policy_drift.wasm"),
        recorded_case("failover-cap.json"),
        None,
    ))
    .unwrap_err();
    assert!(
        error.to_string().contains("not for a drift policy"),
        "{error}"
    );
}

#[test]
fn tutorial_path_new_build_test() {
    let dir = tempfile::tempdir().unwrap();
    let created = scaffold("my-correlation", PolicyKind::Correlation, dir.path(), None).unwrap();
    // Share the workspace's target directory so that the SDK is not built
    // again from scratch.
    let target_dir = wasm_dir().parent().unwrap().parent().unwrap();
    let wasm = build(&created.dir, Some(target_dir)).unwrap();
    assert!(
        wasm.ends_with("wasm32-wasip2/release/my_correlation.wasm"),
        "{}",
        wasm.display()
    );
    let report = test_policy(&options(
        wasm,
        recorded_case("cpu-ramp-with-5xx.json"),
        None,
    ))
    .unwrap();
    assert_eq!(
        report.outcome(),
        TestOutcome::Passed,
        "{}",
        report.summary()
    );
    let case: Case = serde_json::from_str(
        &std::fs::read_to_string(recorded_case("cpu-ramp-with-5xx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        report.answer.unwrap().value,
        case.evaluate_default(PolicyKind::Correlation).unwrap()
    );
}
