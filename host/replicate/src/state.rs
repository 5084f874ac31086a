//! The resume point of `umbra replicate --state FILE`, kept across
//! restarts so that a restarted replicator resumes the primary → shadow
//! stream instead of taking a fresh snapshot.
//!
//! The file is a few `name=value` lines. It is replaced atomically (written
//! to a temporary file beside it, synced, renamed over it), so a crash
//! leaves the old point or the new one, never half of either. A point that
//! is a little old is harmless: Apply is idempotent, so the changes after
//! it are applied again as `Unchanged`; a point the primary or the shadow
//! can no longer honour (restarted, log moved on) makes the stream take a
//! snapshot, as it would without the file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{ReplicateError, Result};
use crate::stream::ResumePoint;

/// The first line of the file.
const HEADER: &str = "# umbra replicate: primary -> shadow resume point";

/// Where the resume point is kept.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state kept in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved resume point; `None` when there is no file yet.
    ///
    /// # Errors
    /// [`ReplicateError::State`] when the file cannot be read or is not a
    /// resume point.
    pub fn load(&self) -> Result<Option<ResumePoint>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(format!("cannot read it: {e}"))),
        };
        let mut fields = [None; 3];
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(self.error(format!("{line:?} is not name=value")));
            };
            let slot = match name.trim() {
                "source_epoch" => 0,
                "revision" => 1,
                "target_epoch" => 2,
                other => return Err(self.error(format!("unknown field {other:?}"))),
            };
            let value: u64 = value
                .trim()
                .parse()
                .map_err(|_| self.error(format!("{name} {value:?} is not a number")))?;
            fields[slot] = Some(value);
        }
        match fields {
            [Some(source_epoch), Some(revision), Some(target_epoch)] => Ok(Some(ResumePoint {
                source_epoch,
                revision,
                target_epoch,
            })),
            _ => Err(self.error("source_epoch, revision and target_epoch are all needed".into())),
        }
    }

    /// Replaces the saved point with `point`, atomically.
    ///
    /// # Errors
    /// [`ReplicateError::State`] when the file cannot be written.
    pub fn save(&self, point: ResumePoint) -> Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let text = format!(
            "{HEADER}\nsource_epoch={}\nrevision={}\ntarget_epoch={}\n",
            point.source_epoch, point.revision, point.target_epoch
        );
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            // The rename itself survives a crash once the directory is
            // synced.
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| self.error(format!("cannot write it: {e}")))
    }

    fn error(&self, reason: String) -> ReplicateError {
        ReplicateError::State {
            path: self.path.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_point_loads_back_and_bad_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("umbra-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = StateFile::new(dir.join("resume"));
        assert_eq!(state.load().unwrap(), None, "no file yet");
        let point = ResumePoint {
            source_epoch: 7,
            revision: 1234,
            target_epoch: u64::MAX,
        };
        state.save(point).unwrap();
        assert_eq!(state.load().unwrap(), Some(point));
        let later = ResumePoint {
            revision: 1300,
            ..point
        };
        state.save(later).unwrap();
        assert_eq!(state.load().unwrap(), Some(later));
        assert!(
            !dir.join("resume.tmp").exists(),
            "the temporary file was renamed"
        );
        for bad in [
            "revision=1\n",
            "source_epoch=1\nrevision=x\ntarget_epoch=2\n",
            "garbage\n",
            "source_epoch=1\nrevision=2\ntarget_epoch=3\ncolour=4\n",
        ] {
            std::fs::write(state.path(), bad).unwrap();
            assert!(
                matches!(state.load(), Err(ReplicateError::State { .. })),
                "{bad:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
