//! Interop with p4runtime-shell, a third-party P4Runtime client built on
//! older (1.4.1) bindings: `tests/python/shell_interop.py` pushes the
//! pipeline to `umbra switch`, writes and reads back table entries and a
//! clone session, and checks the ALREADY_EXISTS error of a duplicate insert.

use std::time::{Duration, Instant};

use anyhow::Result;
use umbra_tests::process::{self, Switch};
use umbra_tests::workspace;

/// Every check the script reports; each must be printed as "PASS <check>".
const CHECKS: [&str; 8] = [
    "pipeline pushed and read back",
    "service_selector entry read back identical",
    "duplicate service_selector insert raises ALREADY_EXISTS",
    "service_selector modify read back",
    "device_portmap entries (two match fields) read back identical",
    "clone session read back (replica port 7, packet_length_bytes 128)",
    "duplicate clone session insert raises ALREADY_EXISTS",
    "port_rx wildcard counter read",
];

#[test]
fn p4runtime_shell_writes_and_reads_back() -> Result<()> {
    let started = Instant::now();
    let venv = workspace::shell_venv()?;
    let mut switch = Switch::start(None, process::free_local_port()?, &[])?;
    switch.wait_listening(Duration::from_secs(10))?;

    let script = workspace::python_dir().join("shell_interop.py");
    let mut command = process::python(None, &venv, &script);
    // p4runtime-shell pins protobuf 3.20, whose C++ backend is fine.
    command.env_remove("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION");
    command
        .arg(switch.grpc().to_string())
        .arg(workspace::p4info_path());
    let finished = process::run(&mut command, Duration::from_secs(30))?;
    let report = || {
        format!(
            "{}\n--- switch log ---\n{}",
            finished.transcript(),
            switch.log()
        )
    };
    assert!(
        finished.status.success(),
        "shell_interop.py failed:\n{}",
        report()
    );
    for check in CHECKS {
        assert!(
            finished
                .stdout
                .lines()
                .any(|l| l == format!("PASS {check}")),
            "check {check:?} did not pass:\n{}",
            report()
        );
    }
    switch.check_running()?;
    eprintln!(
        "p4runtime-shell interop: {} checks in {:.1?}",
        CHECKS.len(),
        started.elapsed()
    );
    Ok(())
}
