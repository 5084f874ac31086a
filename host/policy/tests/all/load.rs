//! What is refused at load, and why: forbidden imports, incompatible WIT
//! versions, wrong kinds, bad bytes, bad configurations. And the
//! compilation cache.

use std::sync::Arc;

use umbra_policy_runtime::{
    CompileSource, EngineConfig, Error, LoadProblem, PolicyEngine, PolicyKind, PolicyRuntime,
    PolicySource, RuntimeConfig,
};

use crate::support::{default_policy, hostile, observation, runtime, source};

fn refused(name: &str) -> Vec<LoadProblem> {
    let runtime = runtime();
    match runtime.load_blocking(PolicySource::new(name, "1.0.0", hostile(name))) {
        Err(Error::Refused { policy, problems }) => {
            assert_eq!(policy, format!("{name}@1.0.0"));
            let message = Error::Refused {
                policy,
                problems: problems.clone(),
            }
            .to_string();
            assert!(
                message.starts_with(&format!("policy `{name}@1.0.0` refused at load: ")),
                "{message}"
            );
            // Nothing was loaded, decisions go on.
            assert!(runtime.status(PolicyKind::Drift).active.is_none());
            assert!(runtime.drift(&observation(0, 2)).is_fallback());
            problems
        }
        Ok(id) => panic!("{name} was loaded as {id}"),
        Err(other) => panic!("{name}: expected a refusal, got {other}"),
    }
}

fn forbidden(problems: &[LoadProblem]) -> Vec<String> {
    problems
        .iter()
        .filter_map(|p| match p {
            LoadProblem::ForbiddenImport { import, .. } => Some(import.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn filesystem_access_is_refused_naming_the_imports() {
    let problems = refused("fs-reader");
    let imports = forbidden(&problems);
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:filesystem/types@0.2.")),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:filesystem/preopens@0.2.")),
        "{imports:?}"
    );
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("wasi:filesystem/types@0.2.") && t.contains("filesystem access")),
        "{text:?}"
    );
}

#[test]
fn socket_access_is_refused_naming_the_imports() {
    let imports = forbidden(&refused("tcp-client"));
    for interface in [
        "wasi:sockets/tcp@",
        "wasi:sockets/tcp-create-socket@",
        "wasi:sockets/network@",
    ] {
        assert!(
            imports.iter().any(|i| i.starts_with(interface)),
            "{interface} in {imports:?}"
        );
    }
    // std's networking also pulls in clocks, refused on their own account.
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:clocks/")),
        "{imports:?}"
    );
}

#[test]
fn incompatible_wit_version_is_refused_naming_both_versions() {
    let problems = refused("wrong-version");
    assert!(
        problems.contains(&LoadProblem::IncompatibleVersion {
            interface: "umbra:policy/drift".into(),
            found: "0.2.0".into(),
            supported: "0.1.0".into(),
        }),
        "{problems:?}"
    );
    let text = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("umbra:policy/drift@0.2.0"), "{text}");
    assert!(text.contains("umbra:policy/drift@0.1.0"), "{text}");
    assert!(text.contains("0.1.x"), "{text}");
}

#[test]
fn compatible_newer_patch_version_is_accepted() {
    let runtime = runtime();
    let id = runtime
        .load_blocking(PolicySource::new(
            "newer-patch",
            "1.0.0",
            hostile("newer-patch"),
        ))
        .expect("0.1.9 is compatible with 0.1.0");
    assert_eq!(id.wit_version, "0.1.9");
    let answer = runtime.drift(&observation(0, 2));
    assert_eq!(answer.policy(), Some(&*id));
    assert_eq!(answer.value.explanation, "0.1.9");
}

#[test]
fn test_wit_copies_differ_from_the_sdk_only_in_version() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sdk = std::fs::read_to_string(root.join("../../sdk/wit/policy.wit")).unwrap();
    for (dir, version) in [("wrong-version", "0.2.0"), ("newer-patch", "0.1.9")] {
        let copy =
            std::fs::read_to_string(root.join(format!("hostile/{dir}/wit/policy.wit"))).unwrap();
        assert_eq!(
            copy,
            sdk.replace(
                "package umbra:policy@0.1.0;",
                &format!("package umbra:policy@{version};")
            ),
            "hostile/{dir}/wit/policy.wit must be sdk/wit/policy.wit with version {version} \
             (regenerate it after changing the WIT)"
        );
    }
}

#[test]
fn bytes_that_are_not_a_component_do_not_compile() {
    let runtime = runtime();
    for (what, bytes) in [
        ("garbage", b"not wasm at all".to_vec()),
        ("a core module", b"\0asm\x01\0\0\0".to_vec()),
    ] {
        match runtime
            .load_blocking(PolicySource::new("bad", "1", bytes).expecting(PolicyKind::Drift))
        {
            Err(Error::Compile { policy, .. }) => assert_eq!(policy, "bad@1", "{what}"),
            other => panic!("{what}: expected a compile error, got {other:?}"),
        }
        let status = runtime.status(PolicyKind::Drift);
        assert!(
            status
                .last_reload_error
                .unwrap()
                .contains("does not compile"),
            "{what}"
        );
    }
}

#[test]
fn a_policy_of_another_kind_is_refused_when_a_kind_is_expected() {
    let runtime = runtime();
    let error = runtime
        .load_blocking(
            PolicySource::new("drift", "1", default_policy("drift"))
                .expecting(PolicyKind::Failover),
        )
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::WrongKind {
                expected: PolicyKind::Failover,
                found: PolicyKind::Drift,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_configuration_the_policy_refuses_is_reported_as_the_operators_fault() {
    let runtime = runtime();
    let error = runtime
        .load_blocking(source("echo", "1", hostile("echo"), &[("colour", "red")]))
        .unwrap_err();
    match error {
        Error::ConfigRejected { policy, message } => {
            assert_eq!(policy, "echo@1");
            assert!(message.contains("unknown key `colour`"), "{message}");
        }
        other => panic!("expected ConfigRejected, got {other}"),
    }
}

#[test]
fn invalid_fallback_configuration_is_refused_with_every_problem() {
    let mut config = RuntimeConfig::default();
    config
        .failover
        .config
        .insert("hysteresis".into(), "0".into());
    config
        .failover
        .config
        .insert("no-such-key".into(), "1".into());
    let error = PolicyRuntime::new(crate::support::engine(), config).unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(
            error,
            Error::FallbackConfig {
                kind: PolicyKind::Failover,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("hysteresis") && text.contains("no-such-key"),
        "{text}"
    );
}

#[test]
fn limits_beyond_the_engine_are_refused() {
    let runtime = runtime();
    let too_big = crate::support::limits(5_000, 1 << 40);
    let error = runtime
        .load_blocking(source("echo", "1", hostile("echo"), &[]).with_limits(too_big))
        .unwrap_err();
    assert!(matches!(error, Error::InvalidLimits { .. }), "{error}");
    assert!(error.to_string().contains("memory_bytes"), "{error}");
}

#[test]
fn compiled_components_are_cached_on_disk_keyed_by_engine_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        cache_dir: Some(dir.path().to_owned()),
        max_instances: 8,
        ..EngineConfig::default()
    };
    let bytes: Arc<[u8]> = hostile("echo");
    let first = PolicyEngine::new(config.clone()).unwrap();
    let (_, digest, how) = first.compile("echo", &bytes).unwrap();
    assert_eq!(how, CompileSource::Compiled);
    let engine_dir = first.cache_dir().unwrap().to_owned();
    assert!(engine_dir.starts_with(dir.path()));
    let file = engine_dir.join(format!("{digest}.cwasm"));
    assert!(file.exists(), "{} written", file.display());

    // A second engine with the same settings loads it from disk...
    let second = PolicyEngine::new(config.clone()).unwrap();
    assert_eq!(second.cache_dir(), Some(engine_dir.as_path()));
    let (_, again, how) = second.compile("echo", &bytes).unwrap();
    assert_eq!(
        (again.as_str(), how),
        (digest.as_str(), CompileSource::Cache)
    );
    // ...and what it loaded runs.
    let runtime = PolicyRuntime::new(second.clone(), crate::support::patient_config()).unwrap();
    runtime
        .load_blocking(PolicySource::new("echo", "1", bytes.clone()))
        .unwrap();
    assert!(!runtime.drift(&observation(0, 1)).is_fallback());

    // A corrupted file is detected and replaced.
    let mut corrupt = std::fs::read(&file).unwrap();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    std::fs::write(&file, corrupt).unwrap();
    let (_, _, how) = second.compile("echo", &bytes).unwrap();
    assert_eq!(how, CompileSource::Compiled);
    let (_, _, how) = second.compile("echo", &bytes).unwrap();
    assert_eq!(how, CompileSource::Cache);

    // The engine's part of the key is a hash of wasmtime's compatibility
    // hash (version, target, code-generation settings).
    let key = engine_dir.file_name().unwrap().to_str().unwrap();
    assert!(
        key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "{key}"
    );
}
