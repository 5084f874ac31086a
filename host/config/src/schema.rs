//! The typed configuration the daemon consumes: what `umbra.toml` says once
//! validated, every optional key replaced by its default and every relative
//! path resolved against the configuration file's directory.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use umbra_health::CheckConfig;
use umbra_orchestrator::{Slot, Timeouts};
use umbra_policy_logic::FailoverConfig;

/// Default of [`HostConfig::tick_ms`].
pub const DEFAULT_TICK_MS: u64 = 500;
/// Default of `[host] takeover-after-ms`.
pub const DEFAULT_TAKEOVER_AFTER_MS: u64 = 2_000;
/// Default of `[host] agent-grace-ms`.
pub const DEFAULT_AGENT_GRACE_MS: u64 = 3_000;
/// Default of [`HostConfig::audit_log`], next to the configuration file.
pub const DEFAULT_AUDIT_LOG: &str = "umbra-audit.jsonl";
/// Default of [`HostConfig::state_dir`], next to the configuration file.
pub const DEFAULT_STATE_DIR: &str = "umbra-state";
/// Default of [`ManagementConfig::listen`].
pub const DEFAULT_MANAGEMENT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50_100);
/// Default of [`SamplingConfig::one_in`]: 2 % of the packets (or flows).
pub const DEFAULT_SAMPLING_ONE_IN: u32 = 50;
/// Default of [`SamplingConfig::truncate_bytes`].
pub const DEFAULT_TRUNCATE_BYTES: u32 = 128;
/// Default of [`ReplicationConfig::apply_in_flight`].
pub const DEFAULT_APPLY_IN_FLIGHT: usize = 2;
/// Default of [`ReplicationConfig::anti_entropy_s`].
pub const DEFAULT_ANTI_ENTROPY_S: u64 = 30;
/// Default of [`HealthCheckConfig::interval_ms`].
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 1_000;
/// The switch's CPU port in `umbra.p4` (`CPU_PORT`): never a service port
/// or a device leg.
pub const CPU_PORT: u16 = 255;
/// Highest switch port number a pair may use (bmv2 ports are 9 bits and
/// 511 is its drop port).
pub const MAX_PORT: u16 = 510;

/// The whole configuration of `umbra run`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it was read from, as given to [`crate::load`] or
    /// [`crate::parse`].
    pub origin: PathBuf,
    /// `[host]`: this host's identity and its own files.
    pub host: HostConfig,
    /// `[management]`: the management API and metrics.
    pub management: ManagementConfig,
    /// `[model]`: the failure predictor.
    pub model: ModelConfig,
    /// `[policies]`: the operator's WebAssembly policies.
    pub policies: PoliciesConfig,
    /// `[failover]`: the defaults every pair starts from (each pair's
    /// resolved settings are in [`PairConfig::failover`]).
    pub failover: FailoverSettings,
    /// `[[switch]]`: the P4Runtime switches, at least one, names unique.
    pub switches: Vec<SwitchConfig>,
    /// `[[pair]]`: the protected pairs, at least one, names unique.
    pub pairs: Vec<PairConfig>,
}

impl Config {
    /// The switch named `name` (every [`PairConfig::switch`] names one).
    #[must_use]
    pub fn switch(&self, name: &str) -> Option<&SwitchConfig> {
        self.switches.iter().find(|s| s.name == name)
    }
}

/// `[host]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// `name` (required): identifies this host in the audit log and is the
    /// management API's server name.
    pub name: String,
    /// `election-id` (required, at least 1): this host's P4Runtime election
    /// id; the highest wins, so a backup host uses a lower one.
    pub election_id: u64,
    /// `tick-ms` (50..=10000, default 500): the evaluation period.
    pub tick_ms: u64,
    /// `audit-log` (default `umbra-audit.jsonl` next to the configuration
    /// file): the JSON-lines audit log.
    pub audit_log: PathBuf,
    /// `state-dir` (default `umbra-state` next to the configuration file):
    /// where replication keeps its resume points.
    pub state_dir: PathBuf,
    /// `takeover-after-ms` (0..=600000, default 2000; 0: never): how long
    /// a backup host waits after a switch says its primary is gone before
    /// arbitrating above it to take over.
    pub takeover_after_ms: u64,
    /// `agent-grace-ms` (0..=600000, default 3000; 0: at once): how long a
    /// device's agent may be unreachable before the device counts as
    /// unhealthy. An agent restarting is not the device failing; its
    /// health checks go on judging it meanwhile.
    pub agent_grace_ms: u64,
}

/// `[management]` (optional table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagementConfig {
    /// `listen` (default `127.0.0.1:50100`): the gRPC management API.
    pub listen: SocketAddr,
    /// `metrics` (default: off): where Prometheus `/metrics` is served.
    pub metrics: Option<SocketAddr>,
    /// `token-file` (default: none, no token asked): a file holding the
    /// bearer token the management API requires.
    pub token_file: Option<PathBuf>,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_MANAGEMENT_LISTEN,
            metrics: None,
            token_file: None,
        }
    }
}

/// `[model]` (optional table).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelConfig {
    /// `path` (default: the built-in default model): an ONNX model
    /// `MODEL.onnx`; its manifest must exist next to it.
    pub path: Option<PathBuf>,
    /// The manifest of [`ModelConfig::path`]: `MODEL.manifest.json`, as
    /// `umbra_model::Manifest::path_for` names it (checked to exist).
    pub manifest: Option<PathBuf>,
    /// `probability-threshold` (0 < p < 1; default: the manifest's own
    /// threshold): failure probability at or above which the predictor
    /// triggers. Already copied into every
    /// [`FailoverSettings::decision`] when given.
    pub probability_threshold: Option<f64>,
}

/// `[policies]` (optional table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoliciesConfig {
    /// `dir` (default: none, the built-in policies): a directory holding
    /// `drift.wasm`, `correlation.wasm`, `failover.wasm`; any of them may be
    /// absent, and that kind then uses its built-in default.
    pub dir: Option<PathBuf>,
    /// `watch` (default true): reload a policy when its file changes.
    pub watch: bool,
    /// `deadline-ms` (1..=1000, default 5): wall-clock time one policy
    /// evaluation may take; past it the policy is interrupted and the
    /// built-in policy answers (a fault).
    pub deadline_ms: u64,
}

impl Default for PoliciesConfig {
    fn default() -> Self {
        Self {
            dir: None,
            watch: true,
            deadline_ms: 5,
        }
    }
}

/// The failover settings of a pair: `[failover]`, overridden key by key by
/// the pair's own `[pair.failover]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailoverSettings {
    /// The decision's configuration. Keys (defaults those of
    /// [`FailoverConfig::default`]): `drift-threshold` (0..=1),
    /// `correlation-threshold` (0..=1 or `"off"`), `corroboration-threshold`
    /// (0..=1), `hysteresis` (1..=100), `corroborated-hysteresis` (1..=100,
    /// at most `hysteresis`), `drift-hysteresis` (1..=100000),
    /// `cooldown-s` (0..=86400, stored in milliseconds), `max-per-hour`
    /// (1..=60). `probability_threshold` comes from `[model]`: it is
    /// [`ModelConfig::probability_threshold`] when given, else
    /// [`FailoverConfig::default`]'s, which the daemon replaces with the
    /// model manifest's threshold.
    pub decision: FailoverConfig,
    /// The orchestrator's timeouts: `drain-timeout-ms` (1..=60000, default
    /// 2000), `flip-timeout-ms` (1..=60000, default 1000),
    /// `verify-timeout-ms` (100..=600000, default 3000).
    pub timeouts: Timeouts,
}

/// How a gRPC peer (a switch, a device agent) is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` when the file says `https://` or the peer has a `tls` table.
    pub scheme: Scheme,
    /// Host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// The scheme of an [`Endpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plaintext gRPC.
    Http,
    /// gRPC over TLS.
    Https,
}

impl Endpoint {
    /// The URI tonic connects to: `http://host:port` or `https://host:port`.
    #[must_use]
    pub fn uri(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `tls = { ca, cert, key, server-name }` of a switch or a device agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// `ca` (required): PEM file of the CAs that sign the peer's
    /// certificate.
    pub ca: PathBuf,
    /// `cert` + `key` (both or neither): this host's identity, for mutual
    /// TLS.
    pub identity: Option<TlsIdentity>,
    /// `server-name` (default: the address's host): the name the peer's
    /// certificate must carry.
    pub server_name: Option<String>,
}

/// A client certificate and its key (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsIdentity {
    /// `cert`: the certificate chain.
    pub cert: PathBuf,
    /// `key`: its private key.
    pub key: PathBuf,
}

/// `[[switch]]`: one P4Runtime switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// `name` (required, unique): what pairs call it.
    pub name: String,
    /// `address` (required): `host:port` or `http(s)://host:port`.
    pub address: Endpoint,
    /// `device-id` (required): its P4Runtime device id.
    pub device_id: u64,
    /// `p4info` (default: none, the P4Info of `umbra.p4` embedded in the
    /// host): a P4Info text file to push instead.
    pub p4info: Option<PathBuf>,
    /// `device-config` (default: none, P4Info only, which is what Umbra's
    /// own switch takes): the bmv2 JSON pushed with the pipeline, for
    /// `simple_switch_grpc`.
    pub device_config: Option<PathBuf>,
    /// `tls` (default: plaintext).
    pub tls: Option<TlsConfig>,
}

/// `[[pair]]`: one protected pair, a primary and its shadow behind a
/// switch.
#[derive(Clone, Debug, PartialEq)]
pub struct PairConfig {
    /// `name` (required, unique).
    pub name: String,
    /// `switch` (required): the [`SwitchConfig::name`] of its switch.
    pub switch: String,
    /// `service` (required, 1..=65535): its service id in the selector
    /// table; unique per switch.
    pub service: u16,
    /// `client-port` (required): the switch port towards the clients.
    pub client_port: u16,
    /// `server-port` (required): the switch port towards the servers.
    pub server_port: u16,
    /// `primary` (required): the device active at start.
    pub primary: DeviceConfig,
    /// `shadow` (required): the standby.
    pub shadow: DeviceConfig,
    /// `sampling` (optional): what is mirrored to the standby.
    pub sampling: SamplingConfig,
    /// `replication` (optional): state replication between the devices.
    pub replication: ReplicationConfig,
    /// `[[pair.health-check]]` (any number): application health checks.
    pub health_checks: Vec<HealthCheckConfig>,
    /// `[failover]` with `[pair.failover]` applied over it.
    pub failover: FailoverSettings,
}

impl PairConfig {
    /// The device in `slot` (A is the primary, B the shadow).
    #[must_use]
    pub fn device(&self, slot: Slot) -> &DeviceConfig {
        match slot {
            Slot::A => &self.primary,
            Slot::B => &self.shadow,
        }
    }
}

/// `primary = { ... }` / `shadow = { ... }` of a pair. Switch ports are
/// 1..=510 except the CPU port 255; the eight ports of a pair all differ,
/// and no port is used by two pairs of one switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// `name` (default `primary` / `shadow`): the device's name in the
    /// audit log and the policies' input.
    pub name: String,
    /// `device` (required, 1..=255, distinct within the pair): the value
    /// the selector table holds while this device is active.
    pub device: u8,
    /// `client-leg` (required): the switch port of its client-facing leg.
    pub client_leg: u16,
    /// `server-leg` (required): the switch port of its server-facing leg.
    pub server_leg: u16,
    /// `monitor` (required): the switch port of its monitor leg, where the
    /// samples go while it is the standby.
    pub monitor: u16,
    /// `agent` (required): its `umbra.device.v1` agent,
    /// `http(s)://host:port` or `host:port`.
    pub agent: Endpoint,
    /// `token-file` (default: none): a file holding the bearer token the
    /// agent requires.
    pub token_file: Option<PathBuf>,
    /// `tls` (default: plaintext).
    pub tls: Option<TlsConfig>,
}

/// How samples are picked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SamplingMode {
    /// `"packet"` (default): each packet independently, 1 in N (sFlow).
    #[default]
    Packet,
    /// `"flow"`: whole flows whose 5-tuple hash falls under 1/N.
    Flow,
}

/// `sampling = { mode, one-in, truncate-bytes }` of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplingConfig {
    /// `mode` (default `"packet"`).
    pub mode: SamplingMode,
    /// `one-in` (2..=1000, default 50 = 2 %): the sampling rate, 1 in N.
    pub one_in: u32,
    /// `truncate-bytes` (0 = whole packets, or 64..=9000; default 128):
    /// length mirrored samples are cut to.
    pub truncate_bytes: u32,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            mode: SamplingMode::Packet,
            one_in: DEFAULT_SAMPLING_ONE_IN,
            truncate_bytes: DEFAULT_TRUNCATE_BYTES,
        }
    }
}

/// `replication = { enabled, apply-in-flight, anti-entropy-s }` of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `apply-in-flight` (1..=8, default 2): applies sent before the first
    /// is answered.
    pub apply_in_flight: usize,
    /// `anti-entropy-s` (1..=86400, default 30): period of the digest
    /// comparison that repairs divergence.
    pub anti_entropy_s: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            apply_in_flight: DEFAULT_APPLY_IN_FLIGHT,
            anti_entropy_s: DEFAULT_ANTI_ENTROPY_S,
        }
    }
}

/// `[[pair.health-check]]`: one application health check and the device
/// whose health it judges.
///
/// Keys: `kind` (required: `"http"`, `"tcp"` or `"postgres"`), `device`
/// (required: `"primary"` or `"shadow"`), `name` (default: the kind;
/// unique within the pair), `interval-ms` (100..=3600000, default 1000),
/// `timeout-ms` (1..=60000, default 2000); for `http`: `url` (required),
/// `expect-status` (100..=599, default any 2xx), `max-latency-ms`
/// (1..=600000, default none), `ca-file`; for `tcp`: `address` (required,
/// `host:port`); for `postgres`: `conninfo` (required, libpq key=value or
/// `postgresql://` URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// The device judged (A = primary, B = shadow).
    pub device: Slot,
    /// Period between runs, in milliseconds.
    pub interval_ms: u64,
    /// The check itself, as `umbra-health` runs it.
    pub check: CheckConfig,
}
