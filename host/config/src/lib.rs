//! The host daemon's configuration (`umbra.toml`): its schema, loading and
//! validation that reports every problem at once, each with the file, line
//! and column where it was written.
//!
//! ```no_run
//! let config = match umbra_config::load(std::path::Path::new("umbra.toml")) {
//!     Ok(config) => config,
//!     Err(error) => {
//!         eprintln!("{error}");
//!         std::process::exit(umbra_config::EXIT_CODE.into());
//!     }
//! };
//! # let _ = config;
//! ```
//!
//! The keys, their types, ranges and defaults are in this crate's
//! `README.md` and on the fields of [`Config`]; `examples/` holds a
//! commented configuration for the namespace lab and one for bmv2 in
//! Mininet.

#![forbid(unsafe_code)]

mod reader;
mod schema;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use schema::*;

/// The exit code of `umbra run` when its configuration is bad: `EX_USAGE`
/// of BSD's `sysexits.h` ("the command was used incorrectly"), what a
/// daemon conventionally returns for a configuration it refuses.
pub const EXIT_CODE: u8 = 64;

/// One thing wrong with a configuration file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line of the offending key or value (of the table header for
    /// a missing key); 0 when the problem has no position (the file could
    /// not be read).
    pub line: usize,
    /// 1-based column, in characters; 0 when `line` is.
    pub column: usize,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// A configuration that cannot be used, with every problem found in it, in
/// order of position. The operator who wrote the file is at fault (or
/// whoever made it unreadable). The crate's only error: a struct rather
/// than an enum because every failure is the same kind of thing, a list of
/// located problems.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_lines(.problems))]
pub struct ConfigError {
    /// The problems, at least one, in order of line and column.
    pub problems: Vec<Problem>,
}

fn display_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Result of this crate's functions.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Reads and validates the configuration file at `path`; relative paths in
/// it are resolved against the file's directory.
///
/// # Errors
///
/// [`ConfigError`] with every problem of the file, or one problem without
/// a position when the file cannot be read.
pub fn load(path: &Path) -> Result<Config> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) => Err(ConfigError {
            problems: vec![Problem {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("cannot read the configuration: {e}"),
            }],
        }),
    }
}

/// Validates configuration `text` that came from the file `origin`:
/// `origin` names the file in problems and its directory is the base of
/// every relative path in `text` (files that must exist are checked
/// there).
///
/// # Errors
///
/// [`ConfigError`] with every problem found: a TOML syntax error alone
/// (nothing after it can be trusted), otherwise unknown keys, wrong types,
/// missing keys, values out of range, duplicate names, undefined
/// references, reused ports and services, missing files, partial TLS and
/// unparsable addresses, all at once.
pub fn parse(text: &str, origin: &Path) -> Result<Config> {
    let mut reader = reader::Reader::new(text, origin);
    let document = match toml_edit::Document::parse(text) {
        Ok(document) => document,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            reader.problem(&span, format!("invalid TOML: {}", e.message().trim()));
            return Err(ConfigError {
                problems: reader.into_problems(),
            });
        }
    };
    let config = validate::read_config(&document, &mut reader, origin);
    if reader.problem_count() == 0
        && let Some(config) = config
    {
        return Ok(config);
    }
    if reader.problem_count() == 0 {
        // Unreachable by construction (every `None` is a recorded problem);
        // kept so that a bug cannot turn into an accepted configuration.
        reader.problem(&(0..0), "the configuration is incomplete");
    }
    Err(ConfigError {
        problems: reader.into_problems(),
    })
}
