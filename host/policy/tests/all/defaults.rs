//! Umbra's default policies, run in the sandbox, decide exactly as the
//! native fallbacks on every recorded case of `policies/cases/`, so that a
//! fault changes nothing but a counter.

use std::path::Path;

use umbra_policy_logic::{Case, PolicyKind};
use umbra_policy_runtime::{AnsweredBy, FallbackReason, PolicySource};

use crate::support::{default_policy, runtime};

fn cases() -> Vec<(String, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/cases");
    let mut cases: Vec<(String, Case)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let case: Case =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                case,
            )
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

#[test]
fn default_policies_decide_exactly_as_the_native_fallbacks_on_recorded_cases() {
    let cases = cases();
    assert!(cases.len() >= 10, "recorded cases missing: {}", cases.len());
    let mut compared = 0;
    for (file, case) in &cases {
        for kind in PolicyKind::ALL {
            if !case.input.fits(kind) {
                continue;
            }
            let expected = case
                .evaluate_default(kind)
                .unwrap_or_else(|e| panic!("{file} ({kind}): {e}"));
            let runtime = runtime();
            let pairs = case.config_pairs();
            runtime
                .load_blocking(
                    PolicySource::new(kind.as_str(), "default", default_policy(kind.as_str()))
                        .with_config(pairs.clone())
                        .expecting(kind),
                )
                .unwrap_or_else(|e| panic!("{file} ({kind}): {e}"));

            let wasm = runtime.evaluate_case(kind, &case.input).unwrap();
            assert!(
                matches!(&wasm.answered_by, AnsweredBy::Policy { policy } if policy.name == kind.as_str()),
                "{file} ({kind}): {:?}",
                wasm.answered_by
            );
            assert_eq!(
                wasm.value, expected,
                "{file} ({kind}): the WebAssembly policy differs from the native one"
            );

            // The same decision from the fallback, configured the same way.
            runtime.set_fallback_config(kind, &pairs).unwrap();
            runtime.unload(kind);
            let native = runtime.evaluate_case(kind, &case.input).unwrap();
            assert!(matches!(
                native.answered_by,
                AnsweredBy::Fallback {
                    reason: FallbackReason::NoPolicy
                }
            ));
            assert_eq!(
                native.value, expected,
                "{file} ({kind}): the fallback differs"
            );
            compared += 1;
        }
    }
    assert!(
        compared >= cases.len(),
        "every case compared at least once: {compared}"
    );
}

#[test]
fn default_policies_load_with_default_settings_and_import_only_what_the_sandbox_stubs() {
    let runtime = runtime();
    for kind in PolicyKind::ALL {
        let id = runtime
            .load_blocking(
                PolicySource::new(kind.as_str(), "default", default_policy(kind.as_str()))
                    .expecting(kind),
            )
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(id.kind, kind);
        assert_eq!(id.wit_version, "0.1.0");
        let status = runtime.status(kind);
        let active = status.active.unwrap();
        assert_eq!(active.faults.total(), 0);
        assert_eq!(id.digest.len(), 64);
    }
}
