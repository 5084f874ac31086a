//! Every range check: each bound accepted, each value just outside refused
//! at the value with a message naming the key.

use super::{MINIMAL, ok, single, with_line};

const HEALTH_CHECK: &str =
    "[[pair.health-check]]\nkind = \"http\"\ndevice = \"primary\"\nurl = \"http://198.18.0.2/\"";

/// `MINIMAL` with `key = value` in `section`: replacing the key's line when
/// the section has it, inserted after the header when it does not, or in a
/// new table appended at the end when `MINIMAL` has no such section.
fn set(section: &str, key: &str, value: &str) -> String {
    let line = format!("{key} = {value}");
    if section == "[[pair.health-check]]" {
        return format!("{MINIMAL}\n{HEALTH_CHECK}\n{line}\n");
    }
    let header = format!("{section}\n");
    let Some(h) = MINIMAL.find(&header) else {
        return format!("{MINIMAL}\n{section}\n{line}\n");
    };
    let start = h + header.len();
    let end = MINIMAL[start..]
        .find("\n\n")
        .map_or(MINIMAL.len(), |i| start + i);
    let prefix = format!("{key} = ");
    match MINIMAL[start..end].lines().find(|l| l.starts_with(&prefix)) {
        Some(old) => {
            let at = start + MINIMAL[start..end].find(old).unwrap();
            format!("{}{line}{}", &MINIMAL[..at], &MINIMAL[at + old.len()..])
        }
        None => with_line(section, &line),
    }
}

/// (section, key, refused values, accepted values)
const CASES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "[host]",
        "election-id",
        &["0", "-5"],
        &["1", "9223372036854775807"],
    ),
    ("[host]", "tick-ms", &["49", "10001"], &["50", "10000"]),
    (
        "[host]",
        "takeover-after-ms",
        &["-1", "600001"],
        &["0", "600000"],
    ),
    (
        "[host]",
        "agent-grace-ms",
        &["-1", "600001"],
        &["0", "600000"],
    ),
    (
        "[model]",
        "probability-threshold",
        &["0", "1", "1.5", "-0.1", "nan"],
        &["0.001", "0.999"],
    ),
    ("[failover]", "hysteresis", &["0", "101"], &["2", "100"]),
    (
        "[failover]",
        "corroborated-hysteresis",
        &["0", "101", "4"],
        &["1", "3"],
    ),
    (
        "[failover]",
        "drift-hysteresis",
        &["0", "100001"],
        &["1", "100000"],
    ),
    (
        "[failover]",
        "cooldown-s",
        &["-1", "86401"],
        &["0", "86400"],
    ),
    ("[failover]", "max-per-hour", &["0", "61"], &["1", "60"]),
    (
        "[failover]",
        "drift-threshold",
        &["-0.1", "1.01"],
        &["0", "1", "0.5"],
    ),
    (
        "[failover]",
        "correlation-threshold",
        &["1.5", "-1", "\"on\""],
        &["0", "1", "\"off\""],
    ),
    (
        "[failover]",
        "corroboration-threshold",
        &["-0.5", "2"],
        &["0.0", "1.0"],
    ),
    (
        "[failover]",
        "drain-timeout-ms",
        &["0", "60001"],
        &["1", "60000"],
    ),
    (
        "[failover]",
        "flip-timeout-ms",
        &["0", "60001"],
        &["1", "60000"],
    ),
    (
        "[failover]",
        "verify-timeout-ms",
        &["99", "600001"],
        &["100", "600000"],
    ),
    (
        "[pair.failover]",
        "hysteresis",
        &["0", "101"],
        &["2", "100"],
    ),
    ("[pair.failover]", "verify-timeout-ms", &["99"], &["100"]),
    (
        "[[switch]]",
        "device-id",
        &["-1"],
        &["0", "9223372036854775807"],
    ),
    ("[[pair]]", "service", &["0", "65536"], &["1", "65535"]),
    (
        "[[pair]]",
        "client-port",
        &["0", "511", "255"],
        &["9", "254", "256", "510"],
    ),
    ("[[pair]]", "server-port", &["0", "511", "255"], &["510"]),
    ("[pair.primary]", "device", &["0", "256"], &["3", "255"]),
    (
        "[pair.primary]",
        "client-leg",
        &["0", "511", "255"],
        &["510"],
    ),
    (
        "[pair.primary]",
        "server-leg",
        &["0", "511", "255"],
        &["510"],
    ),
    ("[pair.shadow]", "monitor", &["0", "511", "255"], &["510"]),
    ("[pair.sampling]", "one-in", &["1", "1001"], &["2", "1000"]),
    (
        "[pair.sampling]",
        "truncate-bytes",
        &["-1", "1", "63", "9001"],
        &["0", "64", "9000"],
    ),
    (
        "[pair.sampling]",
        "mode",
        &["\"all\""],
        &["\"packet\"", "\"flow\""],
    ),
    (
        "[pair.replication]",
        "apply-in-flight",
        &["0", "9"],
        &["1", "8"],
    ),
    (
        "[pair.replication]",
        "anti-entropy-s",
        &["0", "86401"],
        &["1", "86400"],
    ),
    (
        "[[pair.health-check]]",
        "interval-ms",
        &["99", "3600001"],
        &["100", "3600000"],
    ),
    (
        "[[pair.health-check]]",
        "timeout-ms",
        &["0", "60001"],
        &["1", "60000"],
    ),
    (
        "[[pair.health-check]]",
        "expect-status",
        &["99", "600"],
        &["100", "599"],
    ),
    (
        "[[pair.health-check]]",
        "max-latency-ms",
        &["0", "600001"],
        &["1", "600000"],
    ),
];

#[test]
fn every_range_is_checked_at_its_value() {
    for (section, key, refused, accepted) in CASES {
        for value in *refused {
            let text = set(section, key, value);
            let (line, column, message) = single(&text);
            let needle = format!("\n{key} = {value}");
            let at = text.find(&needle).unwrap() + 1;
            let expected_line = text[..at].matches('\n').count() + 1;
            assert_eq!(
                (line, column),
                (expected_line, key.len() + 4),
                "{section} {key} = {value}: {message}"
            );
            assert!(
                message.contains(&format!("`{key}`")),
                "{section} {key} = {value}: {message}"
            );
        }
        for value in *accepted {
            ok(&set(section, key, value));
        }
    }
}

#[test]
fn range_messages_state_the_range() {
    let (_, _, message) = single(&set("[host]", "tick-ms", "49"));
    assert_eq!(message, "`tick-ms` must be in 50..=10000, got 49");
    let (_, _, message) = single(&set("[host]", "election-id", "0"));
    assert_eq!(message, "`election-id` must be at least 1, got 0");
    let (_, _, message) = single(&set("[pair.sampling]", "truncate-bytes", "63"));
    assert_eq!(
        message,
        "`truncate-bytes` must be 0 (whole packets) or in 64..=9000, got 63"
    );
    let (_, _, message) = single(&set("[failover]", "corroborated-hysteresis", "4"));
    assert_eq!(
        message,
        "`corroborated-hysteresis` (4) must not exceed `hysteresis` (3)"
    );
}

#[test]
fn per_pair_failover_is_checked_after_merging() {
    // [failover] lowers hysteresis to 2 (fine with the default
    // corroborated-hysteresis 2); the pair raises corroboration above it.
    let text = format!(
        "{MINIMAL}\n[failover]\nhysteresis = 2\n\n[pair.failover]\ncorroborated-hysteresis = 3\n"
    );
    let (line, _, message) = single(&text);
    assert_eq!(line, text.lines().count());
    assert_eq!(
        message,
        "`corroborated-hysteresis` (3) must not exceed `hysteresis` (2)"
    );
}
