//! The scaffold that `umbra policy new` copies (`sdk/template/`): only the
//! documented placeholders, and each default policy under `policies/` is
//! exactly the template rendered for its kind — so building the default
//! policies (`scripts/build-policies.sh`) proves the scaffold compiles to a
//! component.

use std::path::{Path, PathBuf};

use umbra_policy_sdk::PolicyKind;

const PLACEHOLDERS: &[&str] = &["name", "kind", "sdk_dependency"];

fn sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn render(template: &str, name: &str, kind: PolicyKind) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{kind}}", kind.as_str())
}

#[test]
fn default_policies_are_the_rendered_scaffold() {
    let template = read(&sdk().join("template/src/lib.rs.tmpl"));
    for kind in PolicyKind::ALL {
        let path = sdk().join(format!("../policies/{kind}/src/lib.rs"));
        assert_eq!(
            read(&path),
            render(&template, &format!("umbra-policy-{kind}"), kind),
            "{} differs from the rendered template",
            path.display()
        );
    }
}

#[test]
fn templates_use_only_documented_placeholders() {
    let mut seen = Vec::new();
    for file in [
        "template/Cargo.toml.tmpl",
        "template/src/lib.rs.tmpl",
        "template/.gitignore.tmpl",
    ] {
        let text = read(&sdk().join(file));
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{{") {
            let end = rest[start..].find("}}").expect("closed placeholder") + start;
            let name = &rest[start + 2..end];
            assert!(
                PLACEHOLDERS.contains(&name),
                "{file}: unknown placeholder {{{{{name}}}}}"
            );
            seen.push(name.to_owned());
            rest = &rest[end + 2..];
        }
    }
    for p in PLACEHOLDERS {
        assert!(
            seen.iter().any(|s| s == p),
            "placeholder {p} is documented but unused"
        );
    }
    // The README documents them too.
    let readme = read(&sdk().join("README.md"));
    for p in PLACEHOLDERS {
        assert!(
            readme.contains(&format!("{{{{{p}}}}}")),
            "README does not document {{{{{p}}}}}"
        );
    }
}

#[test]
fn readme_quotes_the_tutorial_policy_verbatim() {
    // The tutorial's policy is compiled and tested as
    // `examples/leak_guard.rs`; the README must show that very code.
    let example = read(&sdk().join("rust/examples/leak_guard.rs"));
    let start = example
        .find("use umbra_policy_sdk::drift")
        .expect("policy code");
    let end = example
        .find("export_drift_policy!(ThisPolicy);")
        .expect("export")
        + "export_drift_policy!(ThisPolicy);".len();
    let readme = read(&sdk().join("README.md"));
    assert!(
        readme.contains(&example[start..end]),
        "sdk/README.md no longer quotes examples/leak_guard.rs"
    );
}
