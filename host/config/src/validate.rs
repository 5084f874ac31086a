//! The walk over `umbra.toml`: every table read into the typed schema, and
//! the checks that span tables (unique names, references to switches, port
//! and service reuse). Every problem is recorded where it was written; the
//! walk never stops early.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use umbra_health::{CheckConfig, Probe};
use umbra_orchestrator::{Slot, Timeouts};

use crate::reader::{Exists, Need, Reader, Span, Spanned, TableRef};
use crate::schema::{
    CPU_PORT, Config, DEFAULT_AGENT_GRACE_MS, DEFAULT_AUDIT_LOG, DEFAULT_CHECK_INTERVAL_MS,
    DEFAULT_STATE_DIR, DEFAULT_TAKEOVER_AFTER_MS, DEFAULT_TICK_MS, DeviceConfig, Endpoint,
    FailoverSettings, HealthCheckConfig, HostConfig, MAX_PORT, ManagementConfig, ModelConfig,
    PairConfig, PoliciesConfig, ReplicationConfig, SamplingConfig, SamplingMode, Scheme,
    SwitchConfig, TlsConfig, TlsIdentity,
};

const TOP_KEYS: &[&str] = &[
    "host",
    "management",
    "model",
    "policies",
    "failover",
    "switch",
    "pair",
];
const HOST_KEYS: &[&str] = &[
    "name",
    "election-id",
    "tick-ms",
    "audit-log",
    "state-dir",
    "takeover-after-ms",
    "agent-grace-ms",
];
const MANAGEMENT_KEYS: &[&str] = &["listen", "metrics", "token-file"];
const MODEL_KEYS: &[&str] = &["path", "probability-threshold"];
const POLICIES_KEYS: &[&str] = &["dir", "watch", "deadline-ms"];
const FAILOVER_KEYS: &[&str] = &[
    "hysteresis",
    "corroborated-hysteresis",
    "drift-hysteresis",
    "cooldown-s",
    "max-per-hour",
    "drift-threshold",
    "correlation-threshold",
    "corroboration-threshold",
    "drain-timeout-ms",
    "flip-timeout-ms",
    "verify-timeout-ms",
];
const SWITCH_KEYS: &[&str] = &[
    "name",
    "address",
    "device-id",
    "p4info",
    "device-config",
    "tls",
];
const TLS_KEYS: &[&str] = &["ca", "cert", "key", "server-name"];
const PAIR_KEYS: &[&str] = &[
    "name",
    "switch",
    "service",
    "client-port",
    "server-port",
    "primary",
    "shadow",
    "sampling",
    "replication",
    "health-check",
    "failover",
];
const DEVICE_KEYS: &[&str] = &[
    "name",
    "device",
    "client-leg",
    "server-leg",
    "monitor",
    "agent",
    "token-file",
    "tls",
];
const SAMPLING_KEYS: &[&str] = &["mode", "one-in", "truncate-bytes"];
const REPLICATION_KEYS: &[&str] = &["enabled", "apply-in-flight", "anti-entropy-s"];
const CHECK_COMMON_KEYS: &[&str] = &["kind", "name", "device", "interval-ms", "timeout-ms"];
const CHECK_KINDS: &[(&str, &[&str])] = &[
    (
        "http",
        &["url", "expect-status", "max-latency-ms", "ca-file"],
    ),
    ("tcp", &["address"]),
    ("postgres", &["conninfo"]),
];

/// Reads the whole document; `None` when a required part is missing or
/// wrong (the reader then holds at least one problem saying so).
pub(crate) fn read_config(
    doc: &toml_edit::Document<&str>,
    r: &mut Reader<'_>,
    origin: &Path,
) -> Option<Config> {
    let root = Reader::root(doc.as_table());
    r.check_keys(&root, TOP_KEYS);
    let host = read_host(r, &root);
    let management = read_management(r, &root);
    let model = read_model(r, &root);
    let policies = read_policies(r, &root);

    let mut base = FailoverSettings::default();
    if let Some(p) = model.probability_threshold {
        base.decision.probability_threshold = p;
    }
    let failover_table = r.table(&root, "failover", Need::Optional, "[failover]".into());
    let failover = read_failover(r, failover_table.as_ref(), &base);

    let (switches, switch_names) = read_switches(r, &root);
    let pairs = read_pairs(r, &root, &switch_names, &failover);
    Some(Config {
        origin: origin.to_path_buf(),
        host: host?,
        management,
        model,
        policies,
        failover,
        switches,
        pairs,
    })
}

fn read_host(r: &mut Reader<'_>, root: &TableRef<'_>) -> Option<HostConfig> {
    let t = r.table(root, "host", Need::Required, "[host]".into())?;
    r.check_keys(&t, HOST_KEYS);
    let name = r.name_string(&t, "name", Need::Required);
    let election_id = r.integer(&t, "election-id", Need::Required, 1..=i64::MAX);
    let tick_ms = r.integer(&t, "tick-ms", Need::Optional, 50..=10_000);
    let audit_log = r.path(&t, "audit-log", Need::Optional, Exists::Anything);
    let state_dir = r.path(&t, "state-dir", Need::Optional, Exists::Anything);
    let takeover = r.integer(&t, "takeover-after-ms", Need::Optional, 0..=600_000);
    let agent_grace = r.integer(&t, "agent-grace-ms", Need::Optional, 0..=600_000);
    Some(HostConfig {
        name: name?.value,
        election_id: unsigned(election_id?)?,
        tick_ms: tick_ms.map_or(Some(DEFAULT_TICK_MS), unsigned)?,
        audit_log: audit_log.map_or_else(|| r.resolve(DEFAULT_AUDIT_LOG), |p| p.value),
        state_dir: state_dir.map_or_else(|| r.resolve(DEFAULT_STATE_DIR), |p| p.value),
        takeover_after_ms: takeover.map_or(Some(DEFAULT_TAKEOVER_AFTER_MS), unsigned)?,
        agent_grace_ms: agent_grace.map_or(Some(DEFAULT_AGENT_GRACE_MS), unsigned)?,
    })
}

fn read_management(r: &mut Reader<'_>, root: &TableRef<'_>) -> ManagementConfig {
    let mut management = ManagementConfig::default();
    let Some(t) = r.table(root, "management", Need::Optional, "[management]".into()) else {
        return management;
    };
    r.check_keys(&t, MANAGEMENT_KEYS);
    let listen = socket_addr(r, &t, "listen");
    let metrics = socket_addr(r, &t, "metrics");
    if let Some(listen) = &listen {
        management.listen = listen.value;
    }
    if let Some(metrics) = metrics {
        if metrics.value == management.listen {
            r.problem(
                &metrics.span,
                format!(
                    "`metrics` must differ from the management API's `listen` ({})",
                    management.listen
                ),
            );
        }
        management.metrics = Some(metrics.value);
    }
    management.token_file = r
        .path(&t, "token-file", Need::Optional, Exists::File)
        .map(|p| p.value);
    management
}

fn socket_addr(r: &mut Reader<'_>, t: &TableRef<'_>, key: &str) -> Option<Spanned<SocketAddr>> {
    let s = r.string(t, key, Need::Optional)?;
    match s.value.parse::<SocketAddr>() {
        Ok(addr) => Some(Spanned {
            value: addr,
            span: s.span,
        }),
        Err(_) => {
            r.problem(
                &s.span,
                format!(
                    "`{key}` must be an IP address and port such as 127.0.0.1:50100, got {:?}",
                    s.value
                ),
            );
            None
        }
    }
}

fn read_model(r: &mut Reader<'_>, root: &TableRef<'_>) -> ModelConfig {
    let mut model = ModelConfig::default();
    let Some(t) = r.table(root, "model", Need::Optional, "[model]".into()) else {
        return model;
    };
    r.check_keys(&t, MODEL_KEYS);
    if let Some(path) = r.path(&t, "path", Need::Optional, Exists::File) {
        // The name `umbra_model::Manifest::path_for` gives; not called
        // from there so that reading a configuration does not link ONNX
        // Runtime.
        let manifest = path.value.with_extension("manifest.json");
        if manifest.is_file() {
            model.manifest = Some(manifest);
            model.path = Some(path.value);
        } else {
            r.problem(
                &path.span,
                format!(
                    "`path`: the model's manifest {} does not exist (a model MODEL.onnx needs MODEL.manifest.json next to it)",
                    manifest.display()
                ),
            );
        }
    }
    model.probability_threshold = r
        .float(
            &t,
            "probability-threshold",
            Need::Optional,
            |p| p > 0.0 && p < 1.0,
            "strictly between 0 and 1",
        )
        .map(|p| p.value);
    model
}

fn read_policies(r: &mut Reader<'_>, root: &TableRef<'_>) -> PoliciesConfig {
    let mut policies = PoliciesConfig::default();
    let Some(t) = r.table(root, "policies", Need::Optional, "[policies]".into()) else {
        return policies;
    };
    r.check_keys(&t, POLICIES_KEYS);
    policies.dir = r
        .path(&t, "dir", Need::Optional, Exists::Dir)
        .map(|p| p.value);
    if let Some(watch) = r.boolean(&t, "watch", Need::Optional) {
        policies.watch = watch.value;
    }
    if let Some(deadline) = r.integer(&t, "deadline-ms", Need::Optional, 1..=1000) {
        policies.deadline_ms = deadline.value.unsigned_abs();
    }
    policies
}

/// `base` with the keys of `table` applied over it.
fn read_failover(
    r: &mut Reader<'_>,
    table: Option<&TableRef<'_>>,
    base: &FailoverSettings,
) -> FailoverSettings {
    let mut s = base.clone();
    let Some(t) = table else {
        return s;
    };
    if t.has("probability-threshold") {
        r.problem(
            &t.value_span("probability-threshold"),
            "`probability-threshold` belongs in [model] (it is the predictor's)",
        );
    }
    let mut allowed = FAILOVER_KEYS.to_vec();
    allowed.push("probability-threshold");
    r.check_keys(t, &allowed);

    let unit = |x: f64| (0.0..=1.0).contains(&x);
    let opt = Need::Optional;
    let d = &mut s.decision;
    if let Some(x) = r.float(t, "drift-threshold", opt, unit, "in [0, 1]") {
        d.drift_threshold = x.value;
    }
    if t.is_string("correlation-threshold") {
        if r.choice(t, "correlation-threshold", opt, &["off"])
            .is_some()
        {
            d.correlation_threshold = None;
        }
    } else if let Some(x) = r.float(
        t,
        "correlation-threshold",
        opt,
        unit,
        "in [0, 1] (or \"off\")",
    ) {
        d.correlation_threshold = Some(x.value);
    }
    if let Some(x) = r.float(t, "corroboration-threshold", opt, unit, "in [0, 1]") {
        d.corroboration_threshold = x.value;
    }
    let hysteresis = r.integer(t, "hysteresis", opt, 1..=100);
    let corroborated = r.integer(t, "corroborated-hysteresis", opt, 1..=100);
    if let Some(n) = hysteresis.clone().and_then(unsigned) {
        d.hysteresis = n;
    }
    if let Some(n) = corroborated.clone().and_then(unsigned) {
        d.corroborated_hysteresis = n;
    }
    if let Some(n) = r
        .integer(t, "drift-hysteresis", opt, 1..=100_000)
        .and_then(unsigned)
    {
        d.drift_hysteresis = n;
    }
    if let Some(n) = r.integer(t, "cooldown-s", opt, 0..=86_400) {
        d.cooldown_ms = n.value * 1_000;
    }
    if let Some(n) = r.integer(t, "max-per-hour", opt, 1..=60).and_then(unsigned) {
        d.max_per_hour = n;
    }
    // Checked here, where one of the two was written, so that a
    // `[pair.failover]` that sets neither does not repeat the problem of
    // `[failover]`.
    if d.corroborated_hysteresis > d.hysteresis
        && let Some(span) = corroborated
            .map(|c| c.span)
            .or_else(|| hysteresis.map(|h| h.span))
    {
        r.problem(
            &span,
            format!(
                "`corroborated-hysteresis` ({}) must not exceed `hysteresis` ({})",
                d.corroborated_hysteresis, d.hysteresis
            ),
        );
    }
    let Timeouts {
        drain_ms,
        flip_ms,
        verify_ms,
    } = &mut s.timeouts;
    for (key, range, field) in [
        ("drain-timeout-ms", 1..=60_000, drain_ms),
        ("flip-timeout-ms", 1..=60_000, flip_ms),
        ("verify-timeout-ms", 100..=600_000, verify_ms),
    ] {
        if let Some(n) = r.integer(t, key, opt, range) {
            *field = n.value;
        }
    }
    s
}

/// The switches whose entries are whole, and the names of all of them (so
/// that a pair naming a switch with another problem is not also told the
/// switch does not exist).
fn read_switches(r: &mut Reader<'_>, root: &TableRef<'_>) -> (Vec<SwitchConfig>, Vec<String>) {
    let tables = r.array_of_tables(root, "switch");
    if !root.has("switch") {
        r.problem(
            &root.span(),
            "at least one [[switch]] is required (none is defined)",
        );
    }
    let mut switches = Vec::new();
    let mut names = Vec::new();
    let mut seen: HashMap<String, Span> = HashMap::new();
    for t in tables {
        let name = r.name_string(&t, "name", Need::Required);
        let t = match &name {
            Some(name) => t.renamed(format!("switch {:?}", name.value)),
            None => t,
        };
        r.check_keys(&t, SWITCH_KEYS);
        if let Some(name) = &name {
            if let Some(first) = seen.get(&name.value) {
                let line = r.line_col(first.start).0;
                r.problem(
                    &name.span,
                    format!("switch name {:?} is already used (line {line})", name.value),
                );
            } else {
                seen.insert(name.value.clone(), name.span.clone());
                names.push(name.value.clone());
            }
        }
        let tls = read_tls(r, &t);
        let address = read_endpoint(r, &t, "address", t.has("tls"));
        let device_id = r.integer(&t, "device-id", Need::Required, 0..=i64::MAX);
        let p4info = r.path(&t, "p4info", Need::Optional, Exists::File);
        let device_config = r.path(&t, "device-config", Need::Optional, Exists::File);
        if let (Some(name), Some(address), Some(device_id)) =
            (name, address, device_id.and_then(unsigned))
        {
            switches.push(SwitchConfig {
                name: name.value,
                address,
                device_id,
                p4info: p4info.map(|p| p.value),
                device_config: device_config.map(|p| p.value),
                tls,
            });
        }
    }
    (switches, names)
}

fn read_tls(r: &mut Reader<'_>, owner: &TableRef<'_>) -> Option<TlsConfig> {
    let t = r.table(
        owner,
        "tls",
        Need::Optional,
        format!("{} tls", owner.name()),
    )?;
    r.check_keys(&t, TLS_KEYS);
    let ca = r.path(&t, "ca", Need::Required, Exists::File);
    let cert = r.path(&t, "cert", Need::Optional, Exists::File);
    let key = r.path(&t, "key", Need::Optional, Exists::File);
    let server_name = r.name_string(&t, "server-name", Need::Optional);
    let identity = match (t.has("cert"), t.has("key")) {
        (true, false) => {
            r.problem(
                &t.value_span("cert"),
                format!(
                    "{}: `cert` is given without `key` (mutual TLS needs both)",
                    t.name()
                ),
            );
            None
        }
        (false, true) => {
            r.problem(
                &t.value_span("key"),
                format!(
                    "{}: `key` is given without `cert` (mutual TLS needs both)",
                    t.name()
                ),
            );
            None
        }
        _ => cert.zip(key).map(|(cert, key)| TlsIdentity {
            cert: cert.value,
            key: key.value,
        }),
    };
    Some(TlsConfig {
        ca: ca?.value,
        identity,
        server_name: server_name.map(|s| s.value),
    })
}

fn read_endpoint(
    r: &mut Reader<'_>,
    t: &TableRef<'_>,
    key: &str,
    tls_given: bool,
) -> Option<Endpoint> {
    let s = r.string(t, key, Need::Required)?;
    match parse_endpoint(&s.value, tls_given) {
        Ok(endpoint) => Some(endpoint),
        Err(why) => {
            r.problem(&s.span, format!("`{key}` {:?} {why}", s.value));
            None
        }
    }
}

/// Parses `host:port`, `http://host:port` or `https://host:port` (an IPv6
/// host in brackets, an optional trailing `/`). Without a scheme, the
/// scheme is `https` exactly when a `tls` table is given.
pub(crate) fn parse_endpoint(text: &str, tls_given: bool) -> Result<Endpoint, String> {
    let (scheme, rest) = if let Some(rest) = text.strip_prefix("http://") {
        (Some(Scheme::Http), rest)
    } else if let Some(rest) = text.strip_prefix("https://") {
        (Some(Scheme::Https), rest)
    } else if let Some((scheme, _)) = text.split_once("://") {
        return Err(format!(
            "has scheme {scheme:?}: only http:// and https:// are supported"
        ));
    } else {
        (None, text)
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err("must not have a path: write host:port".into());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("has an unclosed `[` around its IPv6 address")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "has {host:?} in brackets, which is not an IPv6 address"
            ));
        }
        let port = after
            .strip_prefix(':')
            .ok_or("has no port: write host:port")?;
        (host, port)
    } else {
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or("has no port: write host:port")?;
        if host.contains(':') {
            return Err("is an IPv6 address without brackets: write [addr]:port".into());
        }
        (host, port)
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !valid_host {
        return Err(format!(
            "has {host:?}, which is not a host name or IP address"
        ));
    }
    let port = match port.parse::<u16>() {
        Ok(port) if port > 0 => port,
        _ => return Err(format!("has port {port:?}: a port is 1..=65535")),
    };
    let scheme = match scheme {
        Some(Scheme::Http) if tls_given => {
            return Err(
                "says http:// but a `tls` table is given: use https:// or host:port".into(),
            );
        }
        Some(Scheme::Https) if !tls_given => {
            return Err("says https:// but no `tls` table (with at least `ca`) is given".into());
        }
        Some(scheme) => scheme,
        None if tls_given => Scheme::Https,
        None => Scheme::Http,
    };
    Ok(Endpoint {
        scheme,
        host: host.to_owned(),
        port,
    })
}

/// A switch port a pair uses, for the reuse checks.
struct PortUse {
    port: u16,
    span: Span,
    /// `client-port`, `primary.monitor`, ...
    role: String,
}

/// A switch port number: 1..=510 and not the CPU port.
fn port(r: &mut Reader<'_>, t: &TableRef<'_>, key: &str, role: String) -> Option<PortUse> {
    let n = r.integer(t, key, Need::Required, 1..=i64::from(MAX_PORT))?;
    let port = u16::try_from(n.value).ok()?;
    if port == CPU_PORT {
        r.problem(
            &n.span,
            format!("`{key}` is {CPU_PORT}, the switch's CPU port (umbra.p4's CPU_PORT)"),
        );
        return None;
    }
    Some(PortUse {
        port,
        span: n.span,
        role,
    })
}

fn read_pairs(
    r: &mut Reader<'_>,
    root: &TableRef<'_>,
    switch_names: &[String],
    failover: &FailoverSettings,
) -> Vec<PairConfig> {
    let tables = r.array_of_tables(root, "pair");
    if !root.has("pair") {
        r.problem(
            &root.span(),
            "at least one [[pair]] is required (none is defined)",
        );
    }
    let mut pairs = Vec::new();
    let mut names: HashMap<String, Span> = HashMap::new();
    // (switch, service) → (pair, where).
    let mut services: HashMap<(String, u16), (String, Span)> = HashMap::new();
    // (switch, port) → (pair, role, where).
    let mut ports: HashMap<(String, u16), (String, String, Span)> = HashMap::new();
    for (index, t) in tables.into_iter().enumerate() {
        let name = r.name_string(&t, "name", Need::Required);
        let label = name.as_ref().map_or_else(
            || format!("pair {}", index + 1),
            |n| format!("{:?}", n.value),
        );
        let t = match &name {
            Some(name) => t.renamed(format!("pair {:?}", name.value)),
            None => t,
        };
        r.check_keys(&t, PAIR_KEYS);
        if let Some(name) = &name {
            if let Some(first) = names.get(&name.value) {
                let line = r.line_col(first.start).0;
                r.problem(
                    &name.span,
                    format!("pair name {:?} is already used (line {line})", name.value),
                );
            } else {
                names.insert(name.value.clone(), name.span.clone());
            }
        }
        let switch = r.name_string(&t, "switch", Need::Required);
        // With no usable switch at all, the problem is reported at the
        // switches; every pair naming one would only repeat it.
        let switch_known = switch.as_ref().is_some_and(|s| {
            let known = switch_names.contains(&s.value);
            if !known && !switch_names.is_empty() {
                r.problem(
                    &s.span,
                    format!(
                        "`switch` {:?} names no [[switch]] (defined: {})",
                        s.value,
                        switch_names.join(", ")
                    ),
                );
            }
            known
        });
        let service = r.integer(&t, "service", Need::Required, 1..=65_535);

        let client_port = port(r, &t, "client-port", "client-port".into());
        let server_port = port(r, &t, "server-port", "server-port".into());
        let primary = read_device(r, &t, "primary");
        let shadow = read_device(r, &t, "shadow");
        let sampling = read_sampling(r, &t);
        let replication = read_replication(r, &t);
        let health_checks = read_health_checks(r, &t);
        let failover_table = r.table(
            &t,
            "failover",
            Need::Optional,
            format!("{} failover", t.name()),
        );
        let failover = read_failover(r, failover_table.as_ref(), failover);

        if let (Some((p, _, _)), Some((s, s_device, _))) = (&primary, &shadow) {
            if p.device == s.device {
                r.problem(
                    &s_device.span,
                    format!(
                        "`device` {} of the shadow is also the primary's: the selector must tell them apart",
                        s.device
                    ),
                );
            }
            if p.name == s.name {
                r.problem(
                    &t.value_span("shadow"),
                    format!("the primary and the shadow are both named {:?}", s.name),
                );
            }
        }

        // Reuse of ports and services is judged per switch; a pair whose
        // switch is unknown has already been told so.
        if let Some(switch) = switch.as_ref().filter(|_| switch_known) {
            if let Some(service) = &service {
                let service_id = u16::try_from(service.value).unwrap_or_default();
                let key = (switch.value.clone(), service_id);
                if let Some((other, span)) = services.get(&key) {
                    let line = r.line_col(span.start).0;
                    r.problem(
                        &service.span,
                        format!(
                            "service {service_id} on switch {:?} is already pair {other}'s (line {line})",
                            switch.value
                        ),
                    );
                } else {
                    services.insert(key, (label.clone(), service.span.clone()));
                }
            }
            let uses = client_port
                .iter()
                .chain(&server_port)
                .chain(primary.iter().flat_map(|d| &d.2))
                .chain(shadow.iter().flat_map(|d| &d.2));
            for used in uses {
                let key = (switch.value.clone(), used.port);
                if let Some((other, role, span)) = ports.get(&key) {
                    let line = r.line_col(span.start).0;
                    let owner = if *other == label {
                        "this pair's".to_owned()
                    } else {
                        format!("pair {other}'s")
                    };
                    r.problem(
                        &used.span,
                        format!(
                            "port {} ({}) is already {owner} {role} (line {line}) on switch {:?}",
                            used.port, used.role, switch.value
                        ),
                    );
                } else {
                    ports.insert(key, (label.clone(), used.role.clone(), used.span.clone()));
                }
            }
        }

        let assembled = (|| {
            Some(PairConfig {
                name: name?.value,
                switch: switch?.value,
                service: u16::try_from(service?.value).ok()?,
                client_port: client_port?.port,
                server_port: server_port?.port,
                primary: primary?.0,
                shadow: shadow?.0,
                sampling,
                replication,
                health_checks,
                failover,
            })
        })();
        pairs.extend(assembled);
    }
    pairs
}

/// A device of a pair, its `device` value with its span, and its ports.
fn read_device(
    r: &mut Reader<'_>,
    pair: &TableRef<'_>,
    role: &str,
) -> Option<(DeviceConfig, Spanned<u8>, Vec<PortUse>)> {
    let t = r.table(
        pair,
        role,
        Need::Required,
        format!("{} {role}", pair.name()),
    )?;
    r.check_keys(&t, DEVICE_KEYS);
    let name = r.name_string(&t, "name", Need::Optional);
    let device = r.integer(&t, "device", Need::Required, 1..=255);
    let client_leg = port(r, &t, "client-leg", format!("{role}.client-leg"));
    let server_leg = port(r, &t, "server-leg", format!("{role}.server-leg"));
    let monitor = port(r, &t, "monitor", format!("{role}.monitor"));
    let tls = read_tls(r, &t);
    let agent = read_endpoint(r, &t, "agent", t.has("tls"));
    let token_file = r.path(&t, "token-file", Need::Optional, Exists::File);
    let ports: Vec<PortUse> = [client_leg, server_leg, monitor]
        .into_iter()
        .flatten()
        .collect();
    let device = device?;
    let device = Spanned {
        value: u8::try_from(device.value).ok()?,
        span: device.span,
    };
    if ports.len() < 3 {
        return None;
    }
    let config = DeviceConfig {
        name: name.map_or_else(|| role.to_owned(), |n| n.value),
        device: device.value,
        client_leg: ports[0].port,
        server_leg: ports[1].port,
        monitor: ports[2].port,
        agent: agent?,
        token_file: token_file.map(|p| p.value),
        tls,
    };
    Some((config, device, ports))
}

fn read_sampling(r: &mut Reader<'_>, pair: &TableRef<'_>) -> SamplingConfig {
    let mut sampling = SamplingConfig::default();
    let Some(t) = r.table(
        pair,
        "sampling",
        Need::Optional,
        format!("{} sampling", pair.name()),
    ) else {
        return sampling;
    };
    r.check_keys(&t, SAMPLING_KEYS);
    if let Some(mode) = r.choice(&t, "mode", Need::Optional, &["packet", "flow"]) {
        sampling.mode = if mode.value == "flow" {
            SamplingMode::Flow
        } else {
            SamplingMode::Packet
        };
    }
    if let Some(n) = r
        .integer(&t, "one-in", Need::Optional, 2..=1_000)
        .and_then(unsigned)
    {
        sampling.one_in = n;
    }
    if let Some(n) = r.integer(&t, "truncate-bytes", Need::Optional, 0..=9_000) {
        // Shorter than 64 bytes would cut into the headers the shadow
        // needs to see (Ethernet + IPv4 + TCP with options).
        if (1..64).contains(&n.value) {
            r.problem(
                &n.span,
                format!(
                    "`truncate-bytes` must be 0 (whole packets) or in 64..=9000, got {}",
                    n.value
                ),
            );
        } else if let Some(n) = unsigned(n) {
            sampling.truncate_bytes = n;
        }
    }
    sampling
}

fn read_replication(r: &mut Reader<'_>, pair: &TableRef<'_>) -> ReplicationConfig {
    let mut replication = ReplicationConfig::default();
    let Some(t) = r.table(
        pair,
        "replication",
        Need::Optional,
        format!("{} replication", pair.name()),
    ) else {
        return replication;
    };
    r.check_keys(&t, REPLICATION_KEYS);
    if let Some(b) = r.boolean(&t, "enabled", Need::Optional) {
        replication.enabled = b.value;
    }
    if let Some(n) = r
        .integer(&t, "apply-in-flight", Need::Optional, 1..=8)
        .and_then(unsigned)
    {
        replication.apply_in_flight = n;
    }
    if let Some(n) = r
        .integer(&t, "anti-entropy-s", Need::Optional, 1..=86_400)
        .and_then(unsigned)
    {
        replication.anti_entropy_s = n;
    }
    replication
}

fn read_health_checks(r: &mut Reader<'_>, pair: &TableRef<'_>) -> Vec<HealthCheckConfig> {
    let mut checks = Vec::new();
    // Unique per device: the same check of both devices shares its name
    // (and so the metrics it reports, which drift compares across them).
    let mut names: HashMap<(String, String), Span> = HashMap::new();
    let all_keys: Vec<&str> = CHECK_COMMON_KEYS
        .iter()
        .chain(CHECK_KINDS.iter().flat_map(|(_, keys)| keys.iter()))
        .copied()
        .collect();
    let kinds: Vec<&str> = CHECK_KINDS.iter().map(|(kind, _)| *kind).collect();
    for (index, t) in r
        .array_of_tables(pair, "health-check")
        .into_iter()
        .enumerate()
    {
        let t = t.renamed(format!("{} health-check {}", pair.name(), index + 1));
        r.check_keys(&t, &all_keys);
        let kind = r.choice(&t, "kind", Need::Required, &kinds);
        if let Some(kind) = &kind {
            let own = CHECK_KINDS
                .iter()
                .find(|(k, _)| *k == kind.value)
                .map_or(&[][..], |(_, keys)| *keys);
            for (other, keys) in CHECK_KINDS.iter().filter(|(k, _)| *k != kind.value) {
                for key in keys.iter().filter(|key| t.has(key) && !own.contains(key)) {
                    r.problem(
                        &t.key_span(key),
                        format!(
                            "`{key}` is a key of {other} checks, not of {} checks (whose keys are {})",
                            kind.value,
                            own.join(", ")
                        ),
                    );
                }
            }
        }
        let name = r.name_string(&t, "name", Need::Optional);
        let device = r.choice(&t, "device", Need::Required, &["primary", "shadow"]);
        let interval_ms = r.integer(&t, "interval-ms", Need::Optional, 100..=3_600_000);
        let timeout_ms = r.integer(&t, "timeout-ms", Need::Optional, 1..=60_000);
        let Some(kind) = kind else { continue };

        let (probe, main_key) = match kind.value.as_str() {
            "http" => {
                let url = r.string(&t, "url", Need::Required);
                let expect_status = r.integer(&t, "expect-status", Need::Optional, 100..=599);
                let max_latency_ms = r.integer(&t, "max-latency-ms", Need::Optional, 1..=600_000);
                let ca_file = r.path(&t, "ca-file", Need::Optional, Exists::File);
                let Some(url) = url else { continue };
                (
                    Probe::Http {
                        url: url.value,
                        expect_status: expect_status.and_then(unsigned),
                        max_latency_ms: max_latency_ms.and_then(unsigned),
                        ca_file: ca_file.map(|p| p.value),
                    },
                    "url",
                )
            }
            "tcp" => {
                let Some(addr) = r.string(&t, "address", Need::Required) else {
                    continue;
                };
                (Probe::Tcp { addr: addr.value }, "address")
            }
            _ => {
                let Some(conninfo) = r.string(&t, "conninfo", Need::Required) else {
                    continue;
                };
                (
                    Probe::Postgres {
                        conninfo: conninfo.value,
                    },
                    "conninfo",
                )
            }
        };
        let check_name = name
            .as_ref()
            .map_or_else(|| kind.value.clone(), |n| n.value.clone());
        let name_span = name.as_ref().map_or_else(|| t.span(), |n| n.span.clone());
        let device_name = device
            .as_ref()
            .map_or_else(String::new, |d| d.value.clone());
        let key = (device_name.clone(), check_name.clone());
        if let Some(first) = names.get(&key) {
            let line = r.line_col(first.start).0;
            r.problem(
                &name_span,
                format!(
                    "health check name {check_name:?} is already used for the {device_name} in this pair (line {line}); give each check of a device a distinct `name`"
                ),
            );
        } else {
            names.insert(key, name_span);
        }
        let check = CheckConfig {
            name: check_name,
            probe,
            timeout_ms: timeout_ms
                .and_then(unsigned)
                .unwrap_or(umbra_health::DEFAULT_TIMEOUT_MS),
        };
        // What is left for umbra-health to judge is the target itself (the
        // URL, address or connection string): its problems point there.
        for problem in check.problems() {
            r.problem(&t.value_span(main_key), problem);
        }
        let Some(device) = device else { continue };
        checks.push(HealthCheckConfig {
            device: if device.value == "shadow" {
                Slot::B
            } else {
                Slot::A
            },
            interval_ms: interval_ms
                .and_then(unsigned)
                .unwrap_or(DEFAULT_CHECK_INTERVAL_MS),
            check,
        });
    }
    checks
}

/// A range-checked integer as the unsigned type of its field (the ranges
/// are all within the target type, so this only fails on a bug).
fn unsigned<T: TryFrom<i64>>(n: Spanned<i64>) -> Option<T> {
    T::try_from(n.value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(text: &str, tls: bool) -> (Scheme, String, u16) {
        let e = parse_endpoint(text, tls).unwrap_or_else(|e| panic!("{text}: {e}"));
        (e.scheme, e.host, e.port)
    }

    #[test]
    fn endpoints_take_the_scheme_from_tls_when_none_is_written() {
        assert_eq!(
            endpoint("127.0.0.1:9559", false),
            (Scheme::Http, "127.0.0.1".into(), 9559)
        );
        assert_eq!(
            endpoint("switch.lab:9559", true),
            (Scheme::Https, "switch.lab".into(), 9559)
        );
        assert_eq!(
            endpoint("http://[fe80::1]:50051/", false),
            (Scheme::Http, "fe80::1".into(), 50051)
        );
        assert_eq!(
            endpoint("https://10.0.0.1:443", true),
            (Scheme::Https, "10.0.0.1".into(), 443)
        );
    }

    #[test]
    fn endpoints_refuse_what_tonic_could_not_dial() {
        for (text, tls) in [
            ("127.0.0.1", false),
            ("http://127.0.0.1:1", true),
            ("https://127.0.0.1:1", false),
            ("unix:///run/switch.sock", false),
            ("127.0.0.1:65536", false),
            ("127.0.0.1:port", false),
            ("a b:1", false),
            ("http://h:1/path", false),
        ] {
            assert!(
                parse_endpoint(text, tls).is_err(),
                "{text} (tls {tls}) was accepted"
            );
        }
    }

    #[test]
    fn endpoint_uri_brackets_ipv6() {
        let e = parse_endpoint("[::1]:50051", false).unwrap();
        assert_eq!(e.uri(), "http://[::1]:50051");
    }
}
