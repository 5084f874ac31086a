//! Which versions of the WIT package `umbra:policy` this host speaks.
//!
//! The host implements `umbra:policy@0.1.0` (the version in `sdk/wit`). A
//! component is accepted when the version it was built against is
//! semver-compatible with it: same major version, and for `0.x` versions the
//! same minor version too (Cargo's rule, which is also the rule wasmtime's
//! linker uses to match `@0.1.0` against `@0.1.3`).

use semver::Version;

/// The namespace and package name of the policy interface.
pub const PACKAGE: &str = "umbra:policy";

/// The version of `umbra:policy` this host implements.
pub const HOST_VERSION: &str = "0.1.0";

/// An interface name split into `umbra:policy/<interface>` and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceName<'a> {
    /// `namespace:package/interface`, without the version.
    pub(crate) path: &'a str,
    /// The interface's name inside its package (`drift`, `log`, ...).
    pub(crate) interface: &'a str,
    /// `namespace:package`.
    pub(crate) package: &'a str,
    /// The version after `@`, if any.
    pub(crate) version: Option<&'a str>,
}

/// Splits `ns:pkg/iface@1.2.3` into its parts; `None` for names that are not
/// interface names (plain kebab-case imports).
pub(crate) fn split(name: &str) -> Option<InterfaceName<'_>> {
    let (path, version) = match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    };
    let (package, interface) = path.split_once('/')?;
    package.contains(':').then_some(InterfaceName {
        path,
        interface,
        package,
        version,
    })
}

/// Whether a component built against `found` can run on this host.
pub(crate) fn is_compatible(found: &str) -> bool {
    let host = Version::parse(HOST_VERSION).expect("HOST_VERSION is a valid semver version");
    let Ok(found) = Version::parse(found) else {
        return false;
    };
    if !found.pre.is_empty() {
        // A pre-release is compatible only with itself.
        return found == host;
    }
    if host.major == 0 {
        found.major == 0 && found.minor == host.minor
    } else {
        found.major == host.major
    }
}

/// The range of versions the host accepts, for error messages.
pub(crate) fn compatible_range() -> String {
    let host = Version::parse(HOST_VERSION).expect("HOST_VERSION is a valid semver version");
    if host.major == 0 {
        format!("0.{}.x", host.minor)
    } else {
        format!("{}.x", host.major)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_minor_of_zero_major_is_compatible() {
        assert!(is_compatible("0.1.0"));
        assert!(is_compatible("0.1.9"));
        assert!(!is_compatible("0.2.0"));
        assert!(!is_compatible("1.0.0"));
        assert!(!is_compatible("0.0.1"));
        assert!(!is_compatible("0.1.0-rc.1"));
        assert!(!is_compatible("not-a-version"));
        assert_eq!(compatible_range(), "0.1.x");
    }

    #[test]
    fn splits_interface_names() {
        let name = split("wasi:io/streams@0.2.6").unwrap();
        assert_eq!(name.path, "wasi:io/streams");
        assert_eq!(name.package, "wasi:io");
        assert_eq!(name.interface, "streams");
        assert_eq!(name.version, Some("0.2.6"));
        assert_eq!(split("umbra:policy/log").unwrap().version, None);
        assert!(split("plain-import").is_none());
    }

    #[test]
    fn host_version_matches_the_wit_package() {
        let wit = include_str!("../../../sdk/wit/policy.wit");
        assert!(
            wit.contains(&format!("package {PACKAGE}@{HOST_VERSION};")),
            "sdk/wit/policy.wit declares another version than HOST_VERSION"
        );
    }
}
