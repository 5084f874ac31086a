//! NAB-format data, Umbra's own NAB scorer and `umbra eval nab`.
//!
//! - [`data`]: the Numenta Anomaly Benchmark's file formats (data CSVs,
//!   result CSVs, `combined_windows.json` labels).
//! - [`scorer`]: the NAB scoring rules (probation, scaled sigmoid, earliest
//!   detection per window, false positives after a window, the three
//!   profiles, corpus normalisation, the optimised threshold).
//! - [`runner`]: `umbra eval nab`, running Umbra's streaming drift detector
//!   over a NAB corpus and scoring it.

#![forbid(unsafe_code)]

pub mod data;
pub mod runner;
pub mod scorer;

use std::path::PathBuf;

pub use runner::{NAB_DEFAULTS, NabArgs, NabReport, run};
pub use scorer::{Corpus, LabelledFile, PROFILES, Profile, ProfileScore};

/// Result of the fallible operations of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading, scoring or writing a NAB corpus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written: the environment is at fault.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A data or label file is malformed: whoever produced it is at fault.
    #[error("{}:{line}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Line number, 1-based (0 when the problem is not on one line).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The labels file is not the JSON NAB writes: its author is at fault.
    #[error("{}: not a NAB labels file", path.display())]
    Labels {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Detector results and labels do not describe the same rows: the
    /// caller is at fault.
    #[error("{file}: {scores} anomaly scores for {rows} rows")]
    Mismatch {
        /// The data file, relative to the corpus.
        file: String,
        /// Scores given.
        scores: usize,
        /// Rows in the file.
        rows: usize,
    },
}
