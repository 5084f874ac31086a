//! Black-box tests of `umbra-config`: the examples, every class of problem
//! with its location, ranges, defaults and path resolution.

use std::path::{Path, PathBuf};

use umbra_config::{Config, ConfigError, EXIT_CODE, SamplingMode, Scheme, load, parse};
use umbra_orchestrator::{Slot, Timeouts};
use umbra_policy_logic::FailoverConfig;

mod problems;
mod ranges;

/// A valid configuration with every optional key left out. Device tables
/// are written as `[pair.primary]` so tests can add keys under them.
const MINIMAL: &str = r#"[host]
name = "h"
election-id = 1

[[switch]]
name = "s1"
address = "127.0.0.1:9559"
device-id = 1

[[pair]]
name = "web"
switch = "s1"
service = 1
client-port = 1
server-port = 2

[pair.primary]
device = 1
client-leg = 3
server-leg = 4
monitor = 7
agent = "127.0.0.1:50051"

[pair.shadow]
device = 2
client-leg = 5
server-leg = 6
monitor = 8
agent = "127.0.0.1:50052"
"#;

/// Where every test configuration claims to come from: a directory that
/// does not exist, so any file it must find is missing unless the test
/// gives an absolute path.
fn origin() -> PathBuf {
    PathBuf::from("/nonexistent/umbra/umbra.toml")
}

/// `MINIMAL` with `line` inserted right after the header `section`.
fn with_line(section: &str, line: &str) -> String {
    let header = format!("{section}\n");
    let at = MINIMAL.find(&header).expect("section in MINIMAL") + header.len();
    format!("{}{line}\n{}", &MINIMAL[..at], &MINIMAL[at..])
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
fn locate(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let line = text[..at].matches('\n').count() + 1;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..at].chars().count() + 1)
}

fn ok(text: &str) -> Config {
    match parse(text, &origin()) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid configuration, got:\n{e}\n--- text:\n{text}"),
    }
}

fn err(text: &str) -> ConfigError {
    match parse(text, &origin()) {
        Ok(_) => panic!("expected problems, the configuration was accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The single problem of `text`, as (line, column, message).
fn single(text: &str) -> (usize, usize, String) {
    let e = err(text);
    assert_eq!(e.problems.len(), 1, "expected one problem, got:\n{e}");
    let p = &e.problems[0];
    (p.line, p.column, p.message.clone())
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

#[test]
fn exit_code_is_ex_usage() {
    assert_eq!(EXIT_CODE, 64);
}

#[test]
fn lab_example_parses_with_its_files() {
    let path = examples_dir().join("lab.toml");
    let config = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let dir = examples_dir();
    assert_eq!(config.host.name, "lab-host-1");
    assert_eq!(config.host.election_id, 10);
    assert_eq!(config.host.audit_log, dir.join("umbra-audit.jsonl"));
    assert_eq!(
        config.management.metrics,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    let model = config.model.path.as_ref().expect("model path");
    assert!(model.is_file() && config.model.manifest.as_ref().unwrap().is_file());
    let switch = config.switch("s1").expect("switch s1");
    assert_eq!(switch.address.uri(), "http://127.0.0.1:9559");
    assert!(switch.p4info.as_ref().unwrap().is_file());
    let pair = &config.pairs[0];
    assert_eq!(
        (pair.client_port, pair.server_port),
        (1, 2),
        "service ports"
    );
    assert_eq!(
        [
            pair.primary.client_leg,
            pair.primary.server_leg,
            pair.primary.monitor
        ],
        [3, 4, 7]
    );
    assert_eq!(
        [
            pair.shadow.client_leg,
            pair.shadow.server_leg,
            pair.shadow.monitor
        ],
        [5, 6, 8]
    );
    assert_eq!(pair.shadow.agent.uri(), "http://127.0.0.1:50052");
    assert_eq!(pair.health_checks.len(), 2);
    assert!(pair.health_checks.iter().all(|c| c.device == Slot::A));
    // [pair.failover] overrides one key; the rest comes from [failover].
    assert_eq!(config.failover.decision.cooldown_ms, 300_000);
    assert_eq!(pair.failover.decision.cooldown_ms, 120_000);
    assert_eq!(pair.failover.decision.hysteresis, 3);
}

#[test]
fn mininet_example_parses_where_p4c_wrote_its_json() {
    // The example points at `build/umbra.json` of the repository root, which
    // only exists once p4c ran: lay out the same relative tree around a
    // copy.
    let text = std::fs::read_to_string(examples_dir().join("mininet.toml")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let examples = root.path().join("host/config/examples");
    std::fs::create_dir_all(&examples).unwrap();
    std::fs::create_dir_all(root.path().join("build")).unwrap();
    std::fs::write(root.path().join("build/umbra.json"), "{}").unwrap();
    let config = parse(&text, &examples.join("mininet.toml")).unwrap_or_else(|e| panic!("{e}"));
    let switch = &config.switches[0];
    assert_eq!(switch.device_id, 0, "bmv2's default device id");
    assert_eq!(
        switch.device_config.as_deref(),
        Some(examples.join("../../../build/umbra.json").as_path())
    );
    assert_eq!(config.pairs[0].sampling.mode, SamplingMode::Flow);
    assert_eq!(config.pairs[0].primary.name, "primary");

    // Without the JSON, that is the one problem, at its value.
    std::fs::remove_file(root.path().join("build/umbra.json")).unwrap();
    let e = parse(&text, &examples.join("mininet.toml")).unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    let (line, column) = locate(&text, "\"../../../build/umbra.json\"");
    assert_eq!((e.problems[0].line, e.problems[0].column), (line, column));
    assert!(e.problems[0].message.contains("does not exist"), "{e}");
}

#[test]
fn defaults_fill_every_optional_key() {
    let config = ok(MINIMAL);
    let dir = Path::new("/nonexistent/umbra");
    assert_eq!(config.origin, origin());
    assert_eq!(config.host.tick_ms, 500);
    assert_eq!(config.host.takeover_after_ms, 2_000);
    assert_eq!(config.host.agent_grace_ms, 3_000);
    assert_eq!(config.host.audit_log, dir.join("umbra-audit.jsonl"));
    assert_eq!(config.host.state_dir, dir.join("umbra-state"));
    assert_eq!(config.management.listen, "127.0.0.1:50100".parse().unwrap());
    assert_eq!(config.management.metrics, None);
    assert_eq!(config.management.token_file, None);
    assert_eq!(config.model.path, None);
    assert_eq!(config.model.probability_threshold, None);
    assert_eq!(config.policies.dir, None);
    assert!(config.policies.watch);
    assert_eq!(config.policies.deadline_ms, 5);
    assert_eq!(config.failover.decision, FailoverConfig::default());
    assert_eq!(config.failover.timeouts, Timeouts::default());
    let switch = &config.switches[0];
    assert_eq!(
        (switch.p4info.as_ref(), switch.device_config.as_ref()),
        (None, None)
    );
    assert_eq!(switch.tls, None);
    let pair = &config.pairs[0];
    assert_eq!(pair.sampling.mode, SamplingMode::Packet);
    assert_eq!(pair.sampling.one_in, 50);
    assert_eq!(pair.sampling.truncate_bytes, 128);
    assert!(pair.replication.enabled);
    assert_eq!(pair.replication.apply_in_flight, 2);
    assert_eq!(pair.replication.anti_entropy_s, 30);
    assert!(pair.health_checks.is_empty());
    assert_eq!(pair.failover, config.failover);
    assert_eq!(
        (pair.primary.name.as_str(), pair.shadow.name.as_str()),
        ("primary", "shadow")
    );
    assert_eq!(pair.primary.agent.scheme, Scheme::Http);
    assert_eq!(pair.device(Slot::B).device, 2);
}

#[test]
fn model_threshold_reaches_every_pair_and_failover_keys_map() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), "").unwrap();
    std::fs::write(dir.path().join("m.manifest.json"), "").unwrap();
    let text = format!(
        "{MINIMAL}\n[model]\npath = \"m.onnx\"\nprobability-threshold = 0.95\n\n\
         [failover]\nhysteresis = 5\ncorroborated-hysteresis = 4\ndrift-hysteresis = 9\n\
         cooldown-s = 60\nmax-per-hour = 7\ndrift-threshold = 0.6\ncorrelation-threshold = 0.9\n\
         corroboration-threshold = 0.4\ndrain-timeout-ms = 10\nflip-timeout-ms = 20\n\
         verify-timeout-ms = 300\n\n[pair.failover]\nhysteresis = 6\n"
    );
    let config = parse(&text, &dir.path().join("umbra.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.model.path, Some(dir.path().join("m.onnx")));
    assert_eq!(
        config.model.manifest,
        Some(dir.path().join("m.manifest.json"))
    );
    let expected = FailoverConfig {
        drift_threshold: 0.6,
        probability_threshold: 0.95,
        correlation_threshold: Some(0.9),
        corroboration_threshold: 0.4,
        hysteresis: 5,
        corroborated_hysteresis: 4,
        drift_hysteresis: 9,
        cooldown_ms: 60_000,
        max_per_hour: 7,
    };
    assert_eq!(config.failover.decision, expected);
    assert_eq!(
        config.failover.timeouts,
        Timeouts {
            drain_ms: 10,
            flip_ms: 20,
            verify_ms: 300
        }
    );
    let pair = &config.pairs[0].failover;
    assert_eq!(pair.decision.hysteresis, 6);
    assert_eq!(pair.decision.probability_threshold, 0.95);
    assert_eq!(pair.timeouts, config.failover.timeouts);
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(conf.join("p4")).unwrap();
    std::fs::create_dir_all(conf.join("policies")).unwrap();
    std::fs::write(conf.join("p4/umbra.p4info.txtpb"), "").unwrap();
    let absolute = dir.path().join("token");
    std::fs::write(&absolute, "secret").unwrap();
    let text = with_line("[[switch]]", "p4info = \"p4/umbra.p4info.txtpb\"").replace(
        "[host]\n",
        "[host]\naudit-log = \"logs/audit.jsonl\"\nstate-dir = \"/var/lib/umbra\"\n",
    ) + &format!(
        "\n[policies]\ndir = \"policies\"\nwatch = false\ndeadline-ms = 20\n\n[management]\ntoken-file = {:?}\n",
        absolute.display().to_string()
    );
    let config = parse(&text, &conf.join("umbra.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.switches[0].p4info,
        Some(conf.join("p4/umbra.p4info.txtpb"))
    );
    assert_eq!(config.host.audit_log, conf.join("logs/audit.jsonl"));
    assert_eq!(config.host.state_dir, PathBuf::from("/var/lib/umbra"));
    assert_eq!(config.policies.dir, Some(conf.join("policies")));
    assert!(!config.policies.watch);
    assert_eq!(config.policies.deadline_ms, 20);
    assert_eq!(config.management.token_file, Some(absolute));

    // The same text read from elsewhere does not find its files: the base
    // is the file's directory, not the working directory.
    let e = parse(&text, &dir.path().join("umbra.toml")).unwrap_err();
    assert_eq!(e.problems.len(), 2, "{e}");
}

#[test]
fn tls_and_health_checks_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "ca.pem",
        "host.pem",
        "host.key",
        "web-ca.pem",
        "agent.token",
    ] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    let text = with_line(
        "[[switch]]",
        r#"tls = { ca = "ca.pem", cert = "host.pem", key = "host.key", server-name = "switch.lab" }"#,
    )
    .replace(
        "agent = \"127.0.0.1:50052\"",
        "agent = \"https://[::1]:50052\"\ntls = { ca = \"ca.pem\" }\ntoken-file = \"agent.token\"",
    ) + r#"
[[pair.health-check]]
kind = "http"
device = "shadow"
url = "https://198.18.0.2/health"
expect-status = 204
max-latency-ms = 100
ca-file = "web-ca.pem"
interval-ms = 250
timeout-ms = 500

[[pair.health-check]]
kind = "tcp"
device = "primary"
address = "198.18.0.2:22"

[[pair.health-check]]
kind = "postgres"
device = "primary"
conninfo = "postgresql://umbra@198.18.0.2/umbra"
"#;
    let config = parse(&text, &dir.path().join("umbra.toml")).unwrap_or_else(|e| panic!("{e}"));
    let switch = &config.switches[0];
    assert_eq!(
        switch.address.scheme,
        Scheme::Https,
        "tls makes host:port https"
    );
    let tls = switch.tls.as_ref().unwrap();
    assert_eq!(tls.ca, dir.path().join("ca.pem"));
    assert_eq!(
        tls.identity.as_ref().unwrap().key,
        dir.path().join("host.key")
    );
    assert_eq!(tls.server_name.as_deref(), Some("switch.lab"));
    let shadow = &config.pairs[0].shadow;
    assert_eq!(shadow.agent.host, "::1");
    assert_eq!(shadow.agent.uri(), "https://[::1]:50052");
    assert_eq!(shadow.tls.as_ref().unwrap().identity, None);
    assert_eq!(shadow.token_file, Some(dir.path().join("agent.token")));

    let checks = &config.pairs[0].health_checks;
    assert_eq!(checks.len(), 3);
    assert_eq!(checks[0].device, Slot::B);
    assert_eq!(checks[0].interval_ms, 250);
    assert_eq!(
        checks[0].check.name, "http",
        "the name defaults to the kind"
    );
    assert_eq!(checks[0].check.timeout_ms, 500);
    assert_eq!(
        checks[0].check.probe,
        umbra_health::Probe::Http {
            url: "https://198.18.0.2/health".into(),
            expect_status: Some(204),
            max_latency_ms: Some(100),
            ca_file: Some(dir.path().join("web-ca.pem")),
        }
    );
    assert_eq!(
        checks[1].check.probe,
        umbra_health::Probe::Tcp {
            addr: "198.18.0.2:22".into()
        }
    );
    assert_eq!(checks[1].interval_ms, 1_000);
    assert_eq!(checks[2].check.timeout_ms, 2_000);
    assert!(matches!(
        checks[2].check.probe,
        umbra_health::Probe::Postgres { .. }
    ));
}

#[test]
fn unreadable_file_is_one_problem_without_position() {
    let e = load(Path::new("/nonexistent/umbra/umbra.toml")).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert_eq!((e.problems[0].line, e.problems[0].column), (0, 0));
    let shown = e.to_string();
    assert!(
        shown.starts_with("/nonexistent/umbra/umbra.toml: cannot read the configuration"),
        "{shown}"
    );
}
