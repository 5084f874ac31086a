//! The lab's device backend: the Linux backend of a device's namespace,
//! plus the lab's hard failure reported as a problem of the device, so its
//! agent's health shows the failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use umbra_agent::backend::{Backend, ChangeQueue, CommitReport, MetricsReading};
use umbra_agent::model::{Key, Rejected, Value};
use umbra_agent::{LinuxBackend, Result};

/// The problem an agent reports while the lab holds its device failed.
pub(crate) const HARD_FAILURE_PROBLEM: &str =
    "hard failure injected by the lab: the device does not forward";

/// A [`LinuxBackend`] whose problems include the lab's hard failure.
pub(crate) struct LabBackend {
    linux: LinuxBackend,
    /// Set while the lab's hard failure is in force (the primary only).
    failed: Option<Arc<AtomicBool>>,
}

impl LabBackend {
    pub(crate) fn new(linux: LinuxBackend, failed: Option<Arc<AtomicBool>>) -> Self {
        Self { linux, failed }
    }
}

impl Backend for LabBackend {
    fn kind(&self) -> &'static str {
        self.linux.kind()
    }

    fn snapshot(&self) -> Result<Vec<(Key, Value)>> {
        self.linux.snapshot()
    }

    fn apply(&self, key: &Key, value: Option<&Value>) -> Result<(), Rejected> {
        self.linux.apply(key, value)
    }

    fn apply_batch(&self, entries: &[(&Key, Option<&Value>)]) -> Vec<Result<(), Rejected>> {
        self.linux.apply_batch(entries)
    }

    fn changes(&self) -> Arc<ChangeQueue> {
        self.linux.changes()
    }

    fn metrics(&self) -> MetricsReading {
        self.linux.metrics()
    }

    fn commit(&self) -> Result<CommitReport> {
        self.linux.commit()
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = self.linux.problems();
        if self
            .failed
            .as_ref()
            .is_some_and(|failed| failed.load(Ordering::SeqCst))
        {
            problems.push(HARD_FAILURE_PROBLEM.into());
        }
        problems
    }
}
