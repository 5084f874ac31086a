//! PTF dataplane tests of `umbra switch`: real frames on veth pairs in a
//! network namespace, the switch programmed through the official P4Runtime
//! Python bindings, and every expectation checked on the wire with
//! ptf.testutils and scapy-built frames (`tests/python/ptf_tests`).
//!
//! Lab: namespace `umbra-t-ptf-<pid>-<n>` with seven veth pairs `swN`–`ptfN`;
//! the switch owns `swN` as port N, PTF owns `ptfN` as its port N.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use umbra_tests::lab::Netns;
use umbra_tests::process::{self, Switch};
use umbra_tests::workspace;

/// Port numbers 1..=7: client, server, primary legs, shadow legs, monitor.
const PORTS: u16 = 7;

/// Any port works: the namespace has its own loopback.
const GRPC: &str = "127.0.0.1:9559";

/// The PTF test cases that must run and pass (module.Class).
const CASES: [&str; 6] = [
    "counters.Counters",
    "packet_io.PacketIo",
    "sampling.PerFlowSampling",
    "sampling.PerPacketSamplingTruncation",
    "steering.SelectorFlip",
    "steering.SteeringThroughPrimary",
];

#[test]
fn ptf_suite_passes_against_umbra_switch() -> Result<()> {
    let started = Instant::now();
    let venv = workspace::python_venv()?;
    let netns = Netns::create("ptf")?;
    let mut ports = Vec::new();
    for n in 1..=PORTS {
        netns.add_veth_pair(&format!("sw{n}"), &format!("ptf{n}"))?;
        ports.push((n, format!("sw{n}")));
    }
    let port_args: Vec<(u16, &str)> = ports.iter().map(|(n, i)| (*n, i.as_str())).collect();
    let grpc: SocketAddr = GRPC.parse()?;
    let mut switch = Switch::start(Some(&netns), grpc, &port_args)?;

    let logs = tempfile::tempdir()?;
    let python = workspace::python_dir();
    let mut ptf = netns.exec(venv.join("bin").join("ptf"));
    ptf.current_dir(logs.path())
        .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("--test-dir")
        .arg(python.join("ptf_tests"))
        .arg("--pypath")
        .arg(&python)
        .arg("--log-dir")
        .arg(logs.path())
        // A skipped test is a failed test.
        .arg("--fail-skipped")
        .args(["--test-case-timeout", "40"])
        .arg("--test-params")
        .arg(format!(
            "grpc_addr='{grpc}';p4info='{}'",
            workspace::p4info_path().display()
        ));
    for n in 1..=PORTS {
        ptf.arg("--interface").arg(format!("{n}@ptf{n}"));
    }
    let finished = process::run(&mut ptf, Duration::from_secs(90));
    let still_running = switch.check_running();
    let finished = finished.with_context(|| format!("switch log:\n{}", switch.log()))?;
    let ptf_log = read_logs(logs.path());
    let report = || {
        format!(
            "{}\n--- switch log ---\n{}\n--- ptf logs (last 200 lines) ---\n{}",
            finished.transcript(),
            switch.log(),
            tail(&ptf_log, 200)
        )
    };
    still_running.with_context(report)?;
    assert!(finished.status.success(), "ptf failed:\n{}", report());

    // ptf's verbose runner prints "module.Class ... ok" for each case that
    // passed; every expected case must be there.
    let output = format!("{}\n{}", finished.stdout, finished.stderr);
    for case in CASES {
        let passed = output
            .lines()
            .any(|line| line.trim_end() == format!("{case} ... ok"));
        assert!(passed, "ptf case {case} did not pass:\n{}", report());
    }
    assert!(
        output.contains(&format!("Ran {} tests", CASES.len())),
        "ptf ran another number of tests than {}:\n{}",
        CASES.len(),
        report()
    );
    let (status, log) = switch.stop()?;
    assert!(
        status.success(),
        "umbra switch exited with {status}:\n{log}"
    );
    eprintln!(
        "ptf: {} cases passed in {:.1?} (total {:.1?})",
        CASES.len(),
        finished.elapsed,
        started.elapsed()
    );
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Every log file ptf wrote to `dir` (one per case, plus its own).
fn read_logs(dir: &std::path::Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            Some(format!("=== {} ===\n{text}", path.display()))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
