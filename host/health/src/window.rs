//! The runs of one check over the decision window, as the policies see
//! them.

use std::collections::VecDeque;

use umbra_policy_logic::{HealthCheck, StatusClasses};

use crate::CheckResult;

/// The last runs of one check (at most `capacity`), summarised as the
/// [`HealthCheck`] record of the policy interface: `ok` and `latency_ms`
/// of the newest run, the HTTP status classes counted over the window, and
/// the newest database status.
#[derive(Clone, Debug)]
pub struct HealthWindow {
    name: String,
    capacity: usize,
    runs: VecDeque<CheckResult>,
}

impl HealthWindow {
    /// An empty window keeping at most `capacity` runs (at least one).
    pub fn new(name: impl Into<String>, capacity: usize) -> Self {
        Self {
            name: name.into(),
            capacity: capacity.max(1),
            runs: VecDeque::new(),
        }
    }

    /// Adds a run, dropping the oldest beyond the capacity.
    pub fn push(&mut self, run: CheckResult) {
        if self.runs.len() == self.capacity {
            self.runs.pop_front();
        }
        self.runs.push_back(run);
    }

    /// Runs kept, oldest first.
    pub fn runs(&self) -> impl Iterator<Item = &CheckResult> {
        self.runs.iter()
    }

    /// The record the policies see; `None` before the first run.
    pub fn record(&self) -> Option<HealthCheck> {
        let newest = self.runs.back()?;
        let mut classes = StatusClasses::default();
        for status in self.runs.iter().filter_map(|r| r.status) {
            let class = match status / 100 {
                1 => &mut classes.informational,
                2 => &mut classes.success,
                3 => &mut classes.redirect,
                4 => &mut classes.client_error,
                _ => &mut classes.server_error,
            };
            *class = class.saturating_add(1);
        }
        Some(HealthCheck {
            name: self.name.clone(),
            ok: newest.ok,
            latency_ms: newest.latency_ms,
            status_classes: classes,
            db_connected: newest.db_connected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ok: bool, status: Option<u16>, latency_ms: f64) -> CheckResult {
        CheckResult {
            name: "web".into(),
            ok,
            latency_ms,
            status,
            db_connected: None,
            error: None,
        }
    }

    #[test]
    fn classes_are_counted_over_the_window_and_the_newest_run_decides() {
        let mut w = HealthWindow::new("web", 3);
        assert!(w.record().is_none());
        w.push(run(true, Some(200), 5.0));
        w.push(run(false, Some(503), 9.0));
        w.push(run(true, Some(204), 4.0));
        w.push(run(false, Some(500), 30.0));
        let r = w.record().unwrap();
        assert_eq!(w.runs().count(), 3);
        assert!(!r.ok);
        assert_eq!(r.latency_ms, 30.0);
        assert_eq!(r.status_classes.success, 1);
        assert_eq!(r.status_classes.server_error, 2);
        assert_eq!(r.status_classes.total(), 3);
    }
}
