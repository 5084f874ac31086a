//! `umbra policy new`: a policy crate from the SDK's template
//! (`sdk/template/`, embedded at compile time by `build.rs` so that it works
//! from any directory): `*.tmpl` files are rendered and lose the suffix,
//! other files are copied as they are.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use umbra_policy_logic::PolicyKind;

include!(concat!(env!("OUT_DIR"), "/template.rs"));

/// The SDK of the source tree this binary was built from.
const DEFAULT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/rust");

/// What `umbra policy new` created.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// The new crate's directory.
    pub dir: PathBuf,
    /// Its kind.
    pub kind: PolicyKind,
    /// The files written, relative to `dir`.
    pub files: Vec<&'static str>,
}

/// Whether `name` can be a crate name (and a directory name): ASCII
/// lower-case letters, digits, `-` and `_`, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        bail!(
            "invalid policy name {name:?}: use lower-case letters, digits, `-` and `_`, starting with a letter"
        );
    }
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Fills the template's placeholders.
pub(crate) fn render(
    text: &str,
    name: &str,
    kind: PolicyKind,
    sdk: &Path,
) -> anyhow::Result<String> {
    let rendered = text
        .replace("{{name}}", name)
        .replace("{{kind}}", kind.as_str())
        .replace(
            "{{sdk_dependency}}",
            &format!("{{ path = {} }}", toml_string(&sdk.to_string_lossy())),
        );
    if let Some(at) = rendered.find("{{") {
        let end = rendered[at..]
            .find("}}")
            .map_or(rendered.len(), |e| at + e + 2);
        bail!(
            "the SDK template has a placeholder this umbra does not know: {}",
            &rendered[at..end]
        );
    }
    Ok(rendered)
}

/// Creates `dir/name`, a policy crate of `kind` depending on the SDK at
/// `sdk` (default: the SDK of the source tree this binary was built from).
///
/// # Errors
///
/// An invalid name, an existing non-empty directory, an SDK that cannot be
/// found, or a write failure.
pub fn scaffold(
    name: &str,
    kind: PolicyKind,
    dir: &Path,
    sdk: Option<&Path>,
) -> anyhow::Result<Scaffold> {
    check_name(name)?;
    let sdk = sdk.unwrap_or(Path::new(DEFAULT_SDK));
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "cannot find the Umbra policy SDK at {} (pass --sdk-path with the path of sdk/rust)",
            sdk.display()
        )
    })?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!(
            "{} is not a crate (pass --sdk-path with the path of sdk/rust)",
            sdk.display()
        );
    }
    let target = dir.join(name);
    if target.exists()
        && target
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", target.display());
    }
    let mut files = Vec::new();
    for (path, text, rendered) in TEMPLATE {
        let out = target.join(path);
        let parent = out.parent().expect("template paths have a parent");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let text = if *rendered {
            render(text, name, kind, &sdk)?
        } else {
            (*text).to_owned()
        };
        std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
        files.push(*path);
    }
    Ok(Scaffold {
        dir: target,
        kind,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("my-drift_2").is_ok());
        for bad in ["", "My", "2fast", "a b", "a/b", "../x", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_placeholder_of_the_template_is_filled_for_every_kind() {
        for kind in PolicyKind::ALL {
            assert!(TEMPLATE.iter().any(|(p, ..)| *p == "Cargo.toml"));
            assert!(TEMPLATE.iter().any(|(p, ..)| *p == "src/lib.rs"));
            for (path, text, rendered) in TEMPLATE {
                if !rendered {
                    continue;
                }
                let out = render(text, "my-policy", kind, Path::new("/sdk \"quoted\"")).unwrap();
                assert!(!out.contains("{{"), "{path}");
                if *path == "Cargo.toml" {
                    assert!(out.contains("name = \"my-policy\""), "{out}");
                    assert!(
                        out.contains(r#"umbra-policy-sdk = { path = "/sdk \"quoted\"" }"#),
                        "{out}"
                    );
                } else if *path == "src/lib.rs" {
                    assert!(out.contains(&format!("export_{kind}_policy!")), "{out}");
                }
            }
        }
    }

    #[test]
    fn unknown_placeholders_are_reported() {
        let err = render("x = {{surprise}}", "n", PolicyKind::Drift, Path::new("/s")).unwrap_err();
        assert!(err.to_string().contains("{{surprise}}"), "{err}");
    }

    #[test]
    fn scaffold_writes_the_crate_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let created = scaffold("my-failover", PolicyKind::Failover, dir.path(), None).unwrap();
        assert_eq!(created.dir, dir.path().join("my-failover"));
        let manifest = std::fs::read_to_string(created.dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("An Umbra failover policy."), "{manifest}");
        let lib = std::fs::read_to_string(created.dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("umbra_policy_sdk::failover::"), "{lib}");
        let err = scaffold("my-failover", PolicyKind::Failover, dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = scaffold(
            "x",
            PolicyKind::Drift,
            dir.path(),
            Some(Path::new("/no/such/sdk")),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--sdk-path"), "{err}");
    }
}
