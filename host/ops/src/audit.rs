//! The audit log: an append-only file of JSON objects, one per line, one
//! per state change of the daemon (failovers, rollbacks, policy and model
//! reloads, manual actions). Records are rare, so each is flushed to disk
//! before `append` returns.

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde::Serialize;

use crate::{OpsError, Result};

/// An open audit log. Shared by reference (or `Arc`) between the tasks that
/// record; `append` is blocking (it syncs the file), so async callers use
/// `spawn_blocking` or accept the short wait of a rare record.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// A synchronous mutex: no `.await` happens under it. It orders the
    /// write and the sync of one record before the next record's.
    file: Mutex<File>,
}

/// What [`AuditLog::read`] found.
#[derive(Debug, Default)]
pub struct AuditContents {
    /// Every line that is a JSON object, in file order.
    pub records: Vec<serde_json::Value>,
    /// Every line that is not (a record torn by a crash, a hand edit).
    pub corrupt: Vec<CorruptLine>,
}

/// A line of the audit log that is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptLine {
    /// Its number, from 1.
    pub line: usize,
    /// Why it is not a record.
    pub error: String,
}

impl AuditLog {
    /// Opens `path` for appending, creating it (mode 0640) if needed. An
    /// existing log is never truncated. When its last line was torn (a
    /// crash mid-write left no newline), a newline is added so that the
    /// torn record stays alone on its (corrupt) line and the next record
    /// starts clean.
    ///
    /// # Errors
    /// [`OpsError::Audit`] when the file cannot be opened or read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |action| {
            let path = path.clone();
            move |source| OpsError::Audit {
                action,
                path,
                source,
            }
        };
        // O_APPEND: every write goes to the end, whoever else appends.
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o640)
            .open(&path)
            .map_err(io("opening"))?;
        let len = file.metadata().map_err(io("reading"))?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1)).map_err(io("reading"))?;
            file.read_exact(&mut last).map_err(io("reading"))?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(io("repairing"))?;
                file.sync_data().map_err(io("syncing"))?;
            }
        }
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line of JSON, in a single write, and syncs
    /// it to disk before returning.
    ///
    /// # Errors
    /// [`OpsError::AuditRecord`] when `record` does not serialise to a JSON
    /// object; [`OpsError::Audit`] when writing or syncing fails.
    pub fn append(&self, record: &impl Serialize) -> Result<()> {
        let value = serde_json::to_value(record).map_err(|e| OpsError::AuditRecord {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if !value.is_object() {
            return Err(OpsError::AuditRecord {
                path: self.path.clone(),
                reason: format!("it serialises to {value}"),
            });
        }
        // Compact JSON escapes newlines inside strings, so the record is
        // exactly one line.
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        let io = |action| {
            let path = self.path.clone();
            move |source| OpsError::Audit {
                action,
                path,
                source,
            }
        };
        // A poisoned lock only means another appender panicked; the file
        // itself is fine (each record is one write).
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&line).map_err(io("appending to"))?;
        file.sync_data().map_err(io("syncing"))
    }

    /// Reads every record of the log at `path`. A line that is not a JSON
    /// object is reported with its number in [`AuditContents::corrupt`]
    /// (and logged), and the lines after it are still read.
    ///
    /// # Errors
    /// [`OpsError::Audit`] when the file cannot be read.
    pub fn read(path: impl AsRef<Path>) -> Result<AuditContents> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| OpsError::Audit {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        let mut contents = AuditContents::default();
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let number = index + 1;
            match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(value) if value.is_object() => contents.records.push(value),
                Ok(value) => contents.corrupt.push(CorruptLine {
                    line: number,
                    error: format!("not a JSON object: {value}"),
                }),
                Err(e) => contents.corrupt.push(CorruptLine {
                    line: number,
                    error: e.to_string(),
                }),
            }
        }
        for corrupt in &contents.corrupt {
            tracing::warn!(
                path = %path.display(),
                line = corrupt.line,
                error = %corrupt.error,
                "corrupt audit log line skipped"
            );
        }
        Ok(contents)
    }
}
