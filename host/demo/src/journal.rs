//! The demo pair's state changes as the daemon reports them (its audit
//! records), each told once as an event of the run.

use std::sync::{Arc, Mutex, PoisonError};

use umbra_daemon::pair::AuditSink;
use umbra_orchestrator::AuditRecord;

use crate::progress::Progress;
use crate::timeline::Timeline;

/// Every record so far, and how many have been told.
#[derive(Default)]
pub(crate) struct Journal {
    records: Arc<Mutex<Vec<AuditRecord>>>,
    told: usize,
}

/// Keeps each record, after handing it to the audit log's file if any.
struct Keep {
    file: Option<Arc<dyn AuditSink>>,
    records: Arc<Mutex<Vec<AuditRecord>>>,
}

impl AuditSink for Keep {
    fn record(&self, pair: &str, record: &AuditRecord) {
        if let Some(file) = &self.file {
            file.record(pair, record);
        }
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record.clone());
    }
}

impl Journal {
    /// The sink to hand the pair driver: records here, and in `file`.
    pub(crate) fn sink(&self, file: Option<Arc<dyn AuditSink>>) -> Arc<dyn AuditSink> {
        Arc::new(Keep {
            file,
            records: Arc::clone(&self.records),
        })
    }

    /// Every record so far.
    pub(crate) fn all(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tells the records not told yet as events (`from → to: why`) at
    /// the run time `at` gives each.
    pub(crate) fn tell_new(
        &mut self,
        at: impl Fn(&AuditRecord) -> f64,
        progress: &mut dyn Progress,
        timeline: &mut Timeline,
    ) {
        let new: Vec<AuditRecord> =
            self.records.lock().unwrap_or_else(PoisonError::into_inner)[self.told..].to_vec();
        self.told += new.len();
        for record in new {
            let t = at(&record);
            let text = format!("{} → {}: {}", record.from, record.to, record.why);
            progress.event(t, &text);
            timeline.event(t, text);
        }
    }
}
