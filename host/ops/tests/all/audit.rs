//! The audit log on disk: concurrent appends never interleave or get lost,
//! reopening appends, corrupt lines are reported by number and skipped.

use std::{io::Write as _, os::unix::fs::PermissionsExt as _, sync::Arc};

use serde::Serialize;
use umbra_ops::{AuditLog, OpsError};

#[derive(Serialize)]
struct Record {
    event: &'static str,
    thread: usize,
    seq: usize,
    /// Long and with a newline inside, so that interleaved writes or an
    /// unescaped newline would break lines.
    note: String,
}

#[test]
fn concurrent_appends_give_one_valid_line_each() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = Arc::new(AuditLog::open(&path).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let log = log.clone();
            std::thread::spawn(move || {
                for seq in 0..PER_THREAD {
                    log.append(&Record {
                        event: "failover",
                        thread,
                        seq,
                        note: format!("line one\nline two {}", "x".repeat(4096)),
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), THREADS * PER_THREAD);
    let contents = AuditLog::read(&path).unwrap();
    assert!(contents.corrupt.is_empty(), "{:?}", contents.corrupt);
    let mut seen = std::collections::BTreeSet::new();
    for record in &contents.records {
        assert!(record["note"].as_str().unwrap().contains('\n'));
        seen.insert((
            record["thread"].as_u64().unwrap(),
            record["seq"].as_u64().unwrap(),
        ));
    }
    assert_eq!(
        seen.len(),
        THREADS * PER_THREAD,
        "no record lost or doubled"
    );
    // Each thread's records are in its own order.
    for thread in 0..THREADS as u64 {
        let order: Vec<u64> = contents
            .records
            .iter()
            .filter(|r| r["thread"] == thread)
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o640, 0, "mode {mode:o} is wider than 0640");
}

#[test]
fn reopening_appends_and_never_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    {
        let log = AuditLog::open(&path).unwrap();
        log.append(&serde_json::json!({"n": 1})).unwrap();
        log.append(&serde_json::json!({"n": 2})).unwrap();
    }
    let log = AuditLog::open(&path).unwrap();
    log.append(&serde_json::json!({"n": 3})).unwrap();
    let contents = AuditLog::read(&path).unwrap();
    let numbers: Vec<_> = contents.records.iter().map(|r| r["n"].clone()).collect();
    assert_eq!(numbers, [1, 2, 3].map(serde_json::Value::from));
}

#[test]
fn corrupt_lines_are_reported_by_number_and_the_rest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(
        &path,
        "{\"n\":1}\nthis is not json\n{\"n\":3}\n[1,2]\n{\"n\":5}\n{\"n\":6,\"torn",
    )
    .unwrap();
    // Reopening after a torn last record starts the next one on its own
    // line.
    let log = AuditLog::open(&path).unwrap();
    log.append(&serde_json::json!({"n": 7})).unwrap();

    let contents = AuditLog::read(&path).unwrap();
    let numbers: Vec<_> = contents.records.iter().map(|r| r["n"].clone()).collect();
    assert_eq!(numbers, [1, 3, 5, 7].map(serde_json::Value::from));
    let lines: Vec<usize> = contents.corrupt.iter().map(|c| c.line).collect();
    assert_eq!(lines, [2, 4, 6]);
}

#[test]
fn records_must_be_objects_and_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let error = log.append(&"just a string").unwrap_err();
    assert!(matches!(error, OpsError::AuditRecord { .. }), "{error}");
    assert!(error.to_string().contains("audit.jsonl"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap().len(), 0, "nothing written");

    let missing = dir.path().join("no/such/dir/audit.jsonl");
    let error = AuditLog::open(&missing).unwrap_err();
    assert!(
        error.to_string().contains("no/such/dir/audit.jsonl"),
        "{error}"
    );
    let error = AuditLog::read(&missing).unwrap_err();
    assert!(
        error.to_string().contains("no/such/dir/audit.jsonl"),
        "{error}"
    );

    // Appending from another handle (another process) is not clobbered.
    let mut other = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    log.append(&serde_json::json!({"from": "log"})).unwrap();
    other.write_all(b"{\"from\":\"other\"}\n").unwrap();
    log.append(&serde_json::json!({"from": "log"})).unwrap();
    assert_eq!(AuditLog::read(&path).unwrap().records.len(), 3);
}
