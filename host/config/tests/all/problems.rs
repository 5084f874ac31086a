//! Every class of problem, reported all at once, each where it was written.

use super::{MINIMAL, err, locate, origin, single, with_line};

/// One configuration with many distinct problems: each is reported once,
/// at its own line and column, and nothing else is.
const MANY: &str = r#"[host]
name = "h"
election_id = 1
tick-ms = "fast"

[management]
listen = "localhost"
metrics = "127.0.0.1:50100"
token-file = "missing.token"

[model]
path = "missing.onnx"
probability-threshold = 1.0

[failover]
hysteresis = 2
corroborated-hysteresis = 3
correlation-threshold = "sometimes"

[[switch]]
name = "s1"
address = "127.0.0.1"
device-id = 1
tls = { ca = "/nonexistent/ca.pem", cert = "/nonexistent/c.pem" }

[[switch]]
name = "s1"
address = "ftp://10.0.0.1:21"
device-id = -1

[[pair]]
name = "web"
switch = "s9"
service = 1
client-port = 1
server-port = 255
primary = { device = 1, client-leg = 3, server-leg = 4, monitor = 7, agent = "127.0.0.1:50051" }
shadow = { device = 1, client-leg = 5, server-leg = 6, monitor = 8, agent = "http://127.0.0.1:50052", colour = "blue" }
sampling = { mode = "bytes", truncate-bytes = 10 }

[[pair.health-check]]
kind = "http"
device = "standby"
url = "http://198.18.0.2/"
address = "198.18.0.2:80"
"#;

#[test]
fn many_problems_are_all_reported_with_their_locations() {
    let e = err(MANY);
    insta::assert_snapshot!(e.to_string());
    // The snapshot's lines, checked against the text independently of it.
    let expect = [
        ("election_id", "did you mean `election-id`"),
        ("\"fast\"", "`tick-ms` must be an integer"),
        ("\"localhost\"", "`listen` must be an IP address"),
        ("\"127.0.0.1:50100\"", "must differ"),
        ("\"missing.token\"", "does not exist"),
        ("\"missing.onnx\"", "does not exist"),
        ("1.0", "strictly between 0 and 1"),
        ("3\ncorrelation", "must not exceed `hysteresis`"),
        (
            "\"sometimes\"",
            "`correlation-threshold` must be one of \"off\"",
        ),
        ("\"127.0.0.1\"\n", "has no port"),
        ("\"/nonexistent/ca.pem\"", "does not exist"),
        ("\"/nonexistent/c.pem\"", "does not exist"),
        ("\"/nonexistent/c.pem\"", "without `key`"),
        ("\"s1\"\naddress = \"ftp", "already used (line 21)"),
        ("\"ftp://10.0.0.1:21\"", "only http:// and https://"),
        ("-1", "`device-id` must be at least 0"),
        ("\"s9\"", "names no [[switch]] (defined: s1)"),
        ("255", "CPU port"),
        ("1, client-leg = 5", "also the primary's"),
        ("colour", "unknown key `colour`"),
        ("\"bytes\"", "`mode` must be one of"),
        ("10 }", "`truncate-bytes` must be 0"),
        ("\"standby\"", "`device` must be one of"),
        ("address = \"198.18.0.2:80\"", "is a key of tcp checks"),
    ];
    assert_eq!(e.problems.len(), expect.len(), "{e}");
    for (needle, fragment) in expect {
        let (line, column) = locate(MANY, needle);
        assert!(
            e.problems
                .iter()
                .any(|p| p.line == line && p.column == column && p.message.contains(fragment)),
            "no problem {fragment:?} at {line}:{column} ({needle:?}) in:\n{e}"
        );
    }
    assert!(e.problems.iter().all(|p| p.file == origin()));
}

#[test]
fn syntax_error_is_alone_and_located() {
    let text = "[host]\nname = \"h\"\nelection-id = \n";
    let (line, column, message) = single(text);
    assert_eq!((line, column), (3, 15), "{message}");
    assert!(message.starts_with("invalid TOML"), "{message}");

    let duplicate = "[host]\nname = \"a\"\nname = \"b\"\n";
    let (line, column, message) = single(duplicate);
    assert_eq!((line, column), (3, 1), "{message}");
    assert!(message.contains("duplicate key"), "{message}");
}

#[test]
fn unknown_keys_suggest_the_close_key_or_list_the_allowed() {
    let text = with_line("[host]", "tickms = 500");
    let (line, column, message) = single(&text);
    assert_eq!((line, column), locate(&text, "tickms"));
    assert!(message.ends_with("did you mean `tick-ms`?"), "{message}");

    let text = with_line("[host]", "colour = \"blue\"");
    let (_, _, message) = single(&text);
    assert!(
        message.contains("allowed: name, election-id, tick-ms, audit-log, state-dir"),
        "{message}"
    );

    let text = format!("{MINIMAL}\n[hots]\nname = \"x\"\n");
    let (line, column, message) = single(&text);
    assert_eq!((line, column), locate(&text, "hots"));
    assert!(message.contains("did you mean `host`?"), "{message}");

    let text = format!("{MINIMAL}\n[failover]\nprobability-threshold = 0.9\n");
    let (_, _, message) = single(&text);
    assert!(message.contains("belongs in [model]"), "{message}");
}

#[test]
fn missing_required_keys_point_at_the_table_that_lacks_them() {
    let text = MINIMAL.replace("election-id = 1\n", "");
    let (line, column, message) = single(&text);
    assert_eq!((line, column), (1, 1));
    assert_eq!(message, "[host] is missing the required key `election-id`");

    let text = MINIMAL.replace("agent = \"127.0.0.1:50052\"\n", "");
    let (line, column, message) = single(&text);
    assert_eq!((line, column), locate(&text, "[pair.shadow]"));
    assert!(
        message.contains("pair \"web\" shadow is missing the required key `agent`"),
        "{message}"
    );

    let text = "[host]\nname = \"h\"\nelection-id = 1\n";
    let e = err(text);
    let shown: Vec<_> = e
        .problems
        .iter()
        .map(|p| (p.line, p.column, p.message.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (
                1,
                1,
                "at least one [[switch]] is required (none is defined)"
            ),
            (1, 1, "at least one [[pair]] is required (none is defined)"),
        ]
    );

    let inline = "[host]\nname = \"h\"\nelection-id = 1\n\n[[switch]]\nname = \"s1\"\naddress = \"127.0.0.1:9559\"\ndevice-id = 1\n\n[[pair]]\nname = \"p\"\nswitch = \"s1\"\nservice = 1\nclient-port = 1\nserver-port = 2\nprimary = { device = 1, client-leg = 3, server-leg = 4, monitor = 7 }\nshadow = { device = 2, client-leg = 5, server-leg = 6, monitor = 8, agent = \"127.0.0.1:1\" }\n";
    let (line, column, message) = single(inline);
    assert_eq!((line, column), locate(inline, "{ device = 1"));
    assert!(
        message.contains("missing the required key `agent`"),
        "{message}"
    );
}

#[test]
fn wrong_types_name_what_was_expected_and_found() {
    for (key, bad, found) in [
        (
            "election-id",
            "\"1\"",
            "`election-id` must be an integer, found a string",
        ),
        ("name", "7", "`name` must be a string, found an integer"),
    ] {
        let original = MINIMAL
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap();
        let text = MINIMAL.replacen(original, &format!("{key} = {bad}"), 1);
        let (line, column, message) = single(&text);
        let (key_line, key_column) = locate(&text, &format!("{key} = {bad}"));
        assert_eq!(
            (line, column),
            (key_line, key_column + key.len() + 3),
            "{message}"
        );
        assert_eq!(message, found);
    }
    let text = format!("{MINIMAL}\n[policies]\nwatch = \"yes\"\n");
    let (_, _, message) = single(&text);
    assert_eq!(message, "`watch` must be true or false, found a string");
    let text = format!("{MINIMAL}\n[policies]\ndeadline-ms = 0\n");
    let (_, _, message) = single(&text);
    assert!(message.contains("`deadline-ms`"), "{message}");
    let text = MINIMAL.replace("[[switch]]", "[switch]");
    let (_, _, message) = single(&text);
    assert!(message.contains("must be an array of tables"), "{message}");
}

#[test]
fn names_must_be_unique_and_references_defined() {
    let second_pair = "\n[[pair]]\nname = \"web\"\nswitch = \"s2\"\nservice = 2\nclient-port = 11\nserver-port = 12\nprimary = { device = 1, client-leg = 13, server-leg = 14, monitor = 17, agent = \"127.0.0.1:1\" }\nshadow = { device = 2, client-leg = 15, server-leg = 16, monitor = 18, agent = \"127.0.0.1:2\" }\n";
    let text = format!("{MINIMAL}{second_pair}");
    let e = err(&text);
    assert_eq!(e.problems.len(), 2, "{e}");
    assert!(
        e.problems[0]
            .message
            .contains("pair name \"web\" is already used (line 11)"),
        "{e}"
    );
    assert!(
        e.problems[1]
            .message
            .contains("`switch` \"s2\" names no [[switch]] (defined: s1)"),
        "{e}"
    );

    // The same name on both devices is the same check of each; twice on
    // one device is a mistake.
    let checks = "\n[[pair.health-check]]\nkind = \"tcp\"\ndevice = \"primary\"\naddress = \"198.18.0.2:80\"\n\n[[pair.health-check]]\nkind = \"tcp\"\ndevice = \"shadow\"\naddress = \"198.18.0.2:80\"\n\n[[pair.health-check]]\nkind = \"tcp\"\ndevice = \"primary\"\naddress = \"198.18.0.2:81\"\n";
    let text = format!("{MINIMAL}{checks}");
    let (line, column, message) = single(&text);
    assert_eq!(
        (line, column),
        (locate(&text, "[[pair.health-check]]").0 + 10, 1)
    );
    assert!(
        message.contains("health check name \"tcp\" is already used for the primary in this pair"),
        "{message}"
    );

    let text = MINIMAL.replace("[pair.shadow]\n", "[pair.shadow]\nname = \"primary\"\n");
    let (_, _, message) = single(&text);
    assert!(message.contains("both named \"primary\""), "{message}");
}

#[test]
fn ports_and_services_are_not_reused_on_a_switch() {
    // Within a pair.
    let text = MINIMAL.replace("monitor = 8", "monitor = 2");
    let (line, column, message) = single(&text);
    assert_eq!(
        (line, column),
        locate(&text, "2\nagent = \"127.0.0.1:50052\"")
    );
    assert_eq!(
        message,
        "port 2 (shadow.monitor) is already this pair's server-port (line 15) on switch \"s1\""
    );

    // Across pairs of one switch: the same service and a device leg.
    let second = "\n[[pair]]\nname = \"db\"\nswitch = \"s1\"\nservice = 1\nclient-port = 11\nserver-port = 12\nprimary = { device = 1, client-leg = 3, server-leg = 14, monitor = 17, agent = \"127.0.0.1:1\" }\nshadow = { device = 2, client-leg = 15, server-leg = 16, monitor = 18, agent = \"127.0.0.1:2\" }\n";
    let text = format!("{MINIMAL}{second}");
    let e = err(&text);
    let shown: Vec<_> = e.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        shown,
        [
            "service 1 on switch \"s1\" is already pair \"web\"'s (line 13)",
            "port 3 (primary.client-leg) is already pair \"web\"'s primary.client-leg (line 19) on switch \"s1\"",
        ]
    );

    // The same numbers on another switch are fine.
    let other_switch = "\n[[switch]]\nname = \"s2\"\naddress = \"127.0.0.1:9560\"\ndevice-id = 2\n";
    let text = format!(
        "{MINIMAL}{}{other_switch}",
        second.replace("\"s1\"", "\"s2\"")
    );
    super::ok(&text);
}

#[test]
fn tls_must_be_whole_and_addresses_must_parse() {
    let text = with_line("[[switch]]", "tls = { key = \"/nonexistent/k.pem\" }");
    let e = err(&text);
    let shown: Vec<_> = e.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(shown.len(), 3, "{e}");
    assert!(shown[0].contains("missing the required key `ca`"), "{e}");
    assert!(
        shown[1].contains("`key`: /nonexistent/k.pem does not exist"),
        "{e}"
    );
    assert!(shown[2].contains("`key` is given without `cert`"), "{e}");

    let cases = [
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:0", "a port is 1..=65535"),
        ("127.0.0.1:70000", "a port is 1..=65535"),
        ("::1:9559", "IPv6 address without brackets"),
        ("[::1", "unclosed"),
        ("[zz]:1", "not an IPv6 address"),
        ("http://h:1/p4", "must not have a path"),
        (":9559", "not a host name"),
        ("https://127.0.0.1:9559", "no `tls` table"),
        ("grpc://127.0.0.1:9559", "only http:// and https://"),
    ];
    for (address, fragment) in cases {
        let text = MINIMAL.replace("\"127.0.0.1:9559\"", &format!("{address:?}"));
        let (line, column, message) = single(&text);
        assert_eq!((line, column), (7, 11), "{address}: {message}");
        assert!(message.contains(fragment), "{address}: {message}");
    }
    for address in ["localhost:9559", "http://switch-1.lab:9559/", "[::1]:9559"] {
        let text = MINIMAL.replace("\"127.0.0.1:9559\"", &format!("{address:?}"));
        super::ok(&text);
    }
}

#[test]
fn files_that_must_exist_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), "").unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let text = format!(
        "{}\n[model]\npath = \"m.onnx\"\n\n[policies]\ndir = \"file\"\n",
        with_line("[[switch]]", "device-config = \".\"")
    );
    let e = parse_in(&text, dir.path());
    let shown: Vec<_> = e.problems.iter().map(|p| p.message.clone()).collect();
    assert_eq!(shown.len(), 3, "{e}");
    assert!(shown[0].contains("is not a regular file"), "{e}");
    assert!(shown[1].contains("m.manifest.json does not exist"), "{e}");
    assert!(shown[2].contains("is not a directory"), "{e}");
}

fn parse_in(text: &str, dir: &std::path::Path) -> umbra_config::ConfigError {
    umbra_config::parse(text, &dir.join("umbra.toml")).unwrap_err()
}

#[test]
fn columns_count_characters_not_bytes() {
    // An array of inline tables is also a way to write health checks.
    let line = r#"health-check = [{ name = "é-ü", kind = "tcp", device = "primary", address = "198.18.0.2:1", interval-ms = 99 }]"#;
    let text = with_line("[[pair]]", line);
    let (l, c, message) = single(&text);
    assert_eq!((l, c), locate(&text, "99 }"), "{message}");
    assert_eq!(c, 107, "characters, not bytes (109)");
    assert_eq!(message, "`interval-ms` must be in 100..=3600000, got 99");
}

#[test]
fn health_check_targets_are_judged_by_umbra_health_at_the_target() {
    let checks = "\n[[pair.health-check]]\nkind = \"http\"\ndevice = \"primary\"\nurl = \"ftp://198.18.0.2/\"\n\n[[pair.health-check]]\nkind = \"postgres\"\ndevice = \"primary\"\nconninfo = \"host=198.18.0.2 nonsense\"\n\n[[pair.health-check]]\nkind = \"tcp\"\ndevice = \"primary\"\n";
    let text = format!("{MINIMAL}{checks}");
    let e = err(&text);
    let shown: Vec<_> = e.problems.iter().map(|p| (p.line, p.column)).collect();
    let last_check = locate(&text, "[[pair.health-check]]\nkind = \"tcp\"");
    assert_eq!(
        shown,
        [
            locate(&text, "\"ftp://"),
            locate(&text, "\"host=198.18.0.2 nonsense\""),
            last_check,
        ],
        "{e}"
    );
    assert!(e.problems[0].message.starts_with("check \"http\""), "{e}");
    assert!(e.problems[1].message.contains("bad conninfo"), "{e}");
    assert!(
        e.problems[2]
            .message
            .contains("missing the required key `address`"),
        "{e}"
    );
}
