//! tests/python/check_p4info.py, run with the official p4runtime bindings,
//! accepts p4/umbra.p4info.txtpb against p4/umbra.p4 and rejects a broken
//! copy with every problem listed.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn workspace_root() -> PathBuf {
    // p4/p4info is two levels below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

/// The venv's python (`UMBRA_VENV`, default `<workspace>/.venv`); a missing
/// venv fails the test rather than skipping it.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("UMBRA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    let python = venv.join("bin").join("python");
    assert!(
        python.exists(),
        "no Python venv at {} (python {} missing): run scripts/setup-python.sh \
         (or point UMBRA_VENV at a venv it made) to install the official p4runtime bindings",
        venv.display(),
        python.display(),
    );
    python
}

fn check(p4info: &Path, p4: &Path) -> Output {
    let python = venv_python();
    let script = workspace_root().join("tests/python/check_p4info.py");
    Command::new(&python)
        .arg(&script)
        .arg(p4info)
        .arg(p4)
        .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn umbra_p4info_passes_the_official_check() {
    let root = workspace_root();
    let output = check(
        &root.join("p4/umbra.p4info.txtpb"),
        &root.join("p4/umbra.p4"),
    );
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok (5 table(s), 11 action(s), 2 counter(s), 2 direct counter(s), 2 controller header(s))"),
        "{}",
        describe(&output)
    );
}

#[test]
fn broken_copy_fails_the_official_check_with_every_problem() {
    let root = workspace_root();
    let original = std::fs::read_to_string(root.join("p4/umbra.p4info.txtpb")).unwrap();
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "{from:?} not in the P4Info");
        text.replacen(from, to, 1)
    };
    // A counter id without the counter prefix, a renamed table, a dangling
    // action ref and a param id that does not count from 1.
    let broken = replace(original, "id: 301990658", "id: 16777999");
    let broken = replace(
        broken,
        "name: \"UmbraIngress.mirror_sampling\"",
        "name: \"UmbraIngress.mirror_sample\"",
    );
    let broken = replace(
        broken,
        "action_refs {\n    id: 16777729",
        "action_refs {\n    id: 16777728",
    );
    let broken = replace(
        broken,
        "id: 1\n    name: \"length\"",
        "id: 3\n    name: \"length\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.p4info.txtpb");
    std::fs::write(&path, broken).unwrap();

    let output = check(&path, &root.join("p4/umbra.p4"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "6 problem(s):",
        r#"counter "UmbraEgress.port_tx" (id 0x0100030f): top byte is 0x01, expected 0x12"#,
        r#"counter "UmbraEgress.port_tx": id 0x0100030f, but @id(0x302)"#,
        r#"table "UmbraIngress.mirror_sampling" (P4 line 294) is not in the P4Info"#,
        r#"table "UmbraIngress.mirror_sample" is in the P4Info but not declared in the P4 source"#,
        r#"table "UmbraIngress.port_classify": action_ref 0x01000200 is not an action"#,
        r#"action "UmbraEgress.truncate_mirror": param ids are [3], expected [1]"#,
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?}\n{}",
            describe(&output)
        );
    }
}

#[test]
fn unparsable_p4info_fails_the_official_check() {
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.p4info.txtpb");
    std::fs::write(&path, "tables { preamble { id: 1 } sise: 4 }\n").unwrap();
    let output = check(&path, &root.join("p4/umbra.p4"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not a valid text-format P4Info"),
        "{}",
        describe(&output)
    );
}
