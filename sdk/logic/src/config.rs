//! Parsing a policy's configuration from the WIT `list<tuple<string,
//! string>>`: [`ConfigReader`] reads typed values with defaults and collects
//! every problem (bad value, duplicate key, unknown key) instead of stopping
//! at the first, so an operator fixes a configuration in one round.

use std::fmt;

use crate::{Error, Result};

/// One thing wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key at fault; `None` for a problem between keys.
    pub key: Option<String>,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "`{key}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads typed values out of configuration pairs.
///
/// Each `get`-style method looks a key up, parses and checks its value, and
/// returns the default if the key is absent or the value is bad (recording
/// the problem). [`ConfigReader::finish`] then refuses unknown keys and
/// returns every problem at once. Keys are matched exactly; values are
/// trimmed.
///
/// ```
/// use umbra_policy_logic::config::ConfigReader;
///
/// let pairs = vec![("threshold".to_string(), "0.9".to_string())];
/// let mut reader = ConfigReader::new(&pairs);
/// let threshold = reader.f64("threshold", 0.5, |v| (0.0..=1.0).contains(&v), "in [0, 1]");
/// let window = reader.usize("window", 30, |n| n >= 2, "at least 2");
/// reader.finish().unwrap();
/// assert_eq!((threshold, window), (0.9, 30));
/// ```
#[derive(Debug)]
pub struct ConfigReader<'a> {
    pairs: &'a [(String, String)],
    known: Vec<&'static str>,
    problems: Vec<ConfigProblem>,
}

impl<'a> ConfigReader<'a> {
    /// A reader over `pairs`.
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Self {
            pairs,
            known: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Records a problem of the caller's own (e.g. between two keys).
    pub fn problem(&mut self, key: Option<&str>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.map(str::to_owned),
            message: message.into(),
        });
    }

    /// The trimmed value of `key`, marking it known; `None` if absent. A key
    /// given twice is a problem (which one was meant is ambiguous) and yields
    /// `None`.
    pub fn raw(&mut self, key: &'static str) -> Option<&'a str> {
        self.known.push(key);
        let mut values = self
            .pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim());
        let first = values.next()?;
        if values.next().is_some() {
            self.problem(Some(key), "given more than once");
            return None;
        }
        Some(first)
    }

    /// A value parsed with `parse` and accepted by `check`; `default` if the
    /// key is absent or the value is rejected. `expected` describes a valid
    /// value for the problem report, e.g. `"a number in [0, 1]"`.
    pub fn parsed<T>(
        &mut self,
        key: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Option<T>,
        check: impl FnOnce(&T) -> bool,
        expected: &str,
    ) -> T {
        let Some(raw) = self.raw(key) else {
            return default;
        };
        match parse(raw) {
            Some(value) if check(&value) => value,
            _ => {
                self.problem(Some(key), format!("expected {expected}, got {raw:?}"));
                default
            }
        }
    }

    /// A finite number accepted by `check` (`requirement` says what `check`
    /// wants, e.g. `"in [0, 1]"`).
    pub fn f64(
        &mut self,
        key: &'static str,
        default: f64,
        check: impl FnOnce(f64) -> bool,
        requirement: &str,
    ) -> f64 {
        let expected = describe("a number", requirement);
        self.parsed(
            key,
            default,
            |s| s.parse::<f64>().ok().filter(|v| v.is_finite()),
            |v| check(*v),
            &expected,
        )
    }

    /// A non-negative integer accepted by `check`.
    pub fn usize(
        &mut self,
        key: &'static str,
        default: usize,
        check: impl FnOnce(usize) -> bool,
        requirement: &str,
    ) -> usize {
        let expected = describe("an integer", requirement);
        self.parsed(key, default, |s| s.parse().ok(), |v| check(*v), &expected)
    }

    /// A `u32` accepted by `check`.
    pub fn u32(
        &mut self,
        key: &'static str,
        default: u32,
        check: impl FnOnce(u32) -> bool,
        requirement: &str,
    ) -> u32 {
        let expected = describe("an integer", requirement);
        self.parsed(key, default, |s| s.parse().ok(), |v| check(*v), &expected)
    }

    /// An `i64` accepted by `check`.
    pub fn i64(
        &mut self,
        key: &'static str,
        default: i64,
        check: impl FnOnce(i64) -> bool,
        requirement: &str,
    ) -> i64 {
        let expected = describe("an integer", requirement);
        self.parsed(key, default, |s| s.parse().ok(), |v| check(*v), &expected)
    }

    /// `true` or `false`.
    pub fn bool(&mut self, key: &'static str, default: bool) -> bool {
        self.parsed(key, default, |s| s.parse().ok(), |_| true, "true or false")
    }

    /// A comma-separated list; items are trimmed, empty items dropped, so
    /// `""` is the empty list.
    pub fn list(&mut self, key: &'static str, default: Vec<String>) -> Vec<String> {
        match self.raw(key) {
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => default,
        }
    }

    /// Refuses the keys no method asked for, then returns every problem.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every problem found, in the order of
    /// the reads, then unknown keys in the order given.
    pub fn finish(mut self) -> Result<()> {
        for (key, _) in self.pairs {
            if !self.known.contains(&key.as_str()) {
                let mut known = self.known.clone();
                known.sort_unstable();
                known.dedup();
                self.problems.push(ConfigProblem {
                    key: Some(key.clone()),
                    message: format!("unknown key (known: {})", known.join(", ")),
                });
            }
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig(self.problems))
        }
    }
}

fn describe(what: &str, requirement: &str) -> String {
    if requirement.is_empty() {
        what.to_owned()
    } else {
        format!("{what} {requirement}")
    }
}

/// Formats a number for configuration pairs so that parsing it back gives
/// the same `f64` (Rust's shortest round-trip representation).
pub(crate) fn num(x: f64) -> String {
    format!("{x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_typed_values_and_defaults() {
        let p = pairs(&[
            ("a", " 1.5 "),
            ("n", "7"),
            ("flag", "true"),
            ("l", "x, y,,z "),
        ]);
        let mut r = ConfigReader::new(&p);
        assert_eq!(r.f64("a", 0.0, |_| true, ""), 1.5);
        assert_eq!(r.f64("b", 2.0, |_| true, ""), 2.0);
        assert_eq!(r.usize("n", 0, |_| true, ""), 7);
        assert!(r.bool("flag", false));
        assert_eq!(r.list("l", vec![]), vec!["x", "y", "z"]);
        r.finish().unwrap();
    }

    #[test]
    fn reports_every_problem() {
        let p = pairs(&[
            ("a", "nan"),
            ("n", "-1"),
            ("dup", "1"),
            ("dup", "2"),
            ("typo", "3"),
            ("range", "5"),
        ]);
        let mut r = ConfigReader::new(&p);
        assert_eq!(r.f64("a", 0.25, |_| true, ""), 0.25);
        assert_eq!(r.usize("n", 3, |_| true, ""), 3);
        assert_eq!(r.u32("dup", 9, |_| true, ""), 9);
        assert_eq!(r.f64("range", 0.5, |v| v <= 1.0, "at most 1"), 0.5);
        let Err(Error::InvalidConfig(problems)) = r.finish() else {
            panic!("expected problems");
        };
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "`a`: expected a number, got \"nan\"",
                "`n`: expected an integer, got \"-1\"",
                "`dup`: given more than once",
                "`range`: expected a number at most 1, got \"5\"",
                "`typo`: unknown key (known: a, dup, n, range)",
            ]
        );
    }

    #[test]
    fn num_round_trips() {
        for x in [0.1, 1.0 / 3.0, 1e-300, 300000.0] {
            assert_eq!(num(x).parse::<f64>().unwrap(), x);
        }
    }
}
