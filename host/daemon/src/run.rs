//! `umbra run`: builds everything a configuration describes and runs it.
//!
//! One P4Runtime client per switch (pipeline pushed or adopted by cookie,
//! mastership followed), per pair: its steering installed, a
//! [`PairDriver`], replication by role, one telemetry task per device (the
//! agent's Metrics stream; a lost stream makes the device unhealthy) and
//! one task per health check; and one engine task that every tick records
//! what telemetry arrived (by role: the active device is the model's
//! primary), decides every pair at once and triggers the failovers the
//! policy asks for. The engine task owns the engine: a model reload is a
//! command sent to it ([`EngineCommand`]), answered over a oneshot. With
//! `[policies] dir`, a policy task owns the WebAssembly policies
//! ([`crate::policies`]): it watches the directory and answers reloads.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_config::{Config, DeviceConfig, PairConfig, SwitchConfig};
use umbra_model::{Manifest, Predictor};
use umbra_orchestrator::{AuditRecord, Phase, Slot, Trigger};
use umbra_p4rt::{ClientConfig, ClientEvent, Connection, P4RuntimeClient, TlsConfig};
use umbra_policy_logic::FailoverConfig;
use umbra_policy_runtime::PolicyRuntime;
use umbra_predict::DetectorConfig;
use umbra_proto::umbra::device::v1 as device;
use umbra_replicate::{Peer, ReplicatorConfig};

use crate::engine::{EngineConfig, FailoverGroup, PairDecision, PredictiveEngine, Role};
use crate::fabric::{DevicePorts, Fabric, P4rtFabric, PairPorts, Sampling, SamplingMode};
use crate::pair::{AuditSink, PairDriver, PairHandle, PairInput, PairSpec, PairView, now_ms};
use crate::policies::{GroupSpec, POLICY_COMMANDS, PolicyCommand, PolicyOptions, PolicySet};
use crate::replication::{AgentReplication, NoReplication};

/// Why the daemon could not start. The configuration or the environment
/// is at fault; each variant says which file or peer.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// An address the configuration names could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why (in use, not local).
        #[source]
        source: std::io::Error,
    },
    /// The audit log cannot be opened for appending.
    #[error("cannot open the audit log {path}: {message}")]
    Audit {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A file the configuration names could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The model or its manifest is unusable, or ONNX Runtime is missing.
    #[error("the failure predictor: {0}")]
    Model(#[from] umbra_model::Error),
    /// The engine's configuration does not validate.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// A policy file (or the policy directory) could not be loaded.
    #[error("policy {path}: {message}")]
    Policy {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A switch could not be reached or refused the pipeline.
    #[error("switch {switch}: {source}")]
    Switch {
        /// The switch's name.
        switch: String,
        /// Why.
        #[source]
        source: umbra_p4rt::P4rtError,
    },
    /// A pair's steering could not be installed.
    #[error("pair {pair}: {message}")]
    Pair {
        /// The pair's name.
        pair: String,
        /// Why.
        message: String,
    },
    /// A device agent's address or credentials are unusable.
    #[error("pair {pair}, device {device}: {message}")]
    Agent {
        /// The pair.
        pair: String,
        /// The device.
        device: String,
        /// Why.
        message: String,
    },
}

/// One metric sample of a device, on its way to the engine.
#[derive(Debug)]
struct Telemetry {
    pair: usize,
    slot: Slot,
    metric: String,
    at_ms: i64,
    value: f64,
}

/// Telemetry samples queued for the engine. When the engine falls this
/// far behind, new samples are dropped (and counted): the features carry
/// the last value forward, so a dropped sample costs precision, not a
/// decision.
const TELEMETRY_QUEUE: usize = 65_536;

/// A running daemon: what the management API and tests look at.
#[derive(Clone)]
pub struct Running {
    /// The host's name.
    pub host: String,
    /// Its P4Runtime election id.
    pub election_id: u64,
    /// Every pair, in configuration order: name, switch, devices and the
    /// driver's handle.
    pub pairs: Arc<Vec<PairRuntime>>,
    /// The Prometheus metrics, updated every tick.
    pub metrics: Arc<umbra_ops::Metrics>,
    /// The WebAssembly policy runtimes, one per failover group (the first
    /// also holds drift and correlation); empty without `[policies] dir`.
    pub policies: Vec<PolicyRuntime>,
    pub(crate) commands: Commands,
}

/// Where the management API's requests go.
#[derive(Clone)]
pub(crate) struct Commands {
    /// The engine task.
    pub(crate) engine: mpsc::Sender<EngineCommand>,
    /// The policy task, with `[policies] dir`.
    pub(crate) policies: Option<mpsc::Sender<PolicyCommand>>,
    /// The model a reload without a path loads.
    pub(crate) model: PathBuf,
}

/// What the engine task is asked to do besides ticking.
pub(crate) enum EngineCommand {
    /// Serve this model (loaded from `path`) if it fits the running one;
    /// answer the model now serving, or why it was refused.
    SwapModel {
        predictor: Box<Predictor>,
        path: PathBuf,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// Commands queued for the engine task; it serves them between ticks.
const ENGINE_COMMANDS: usize = 4;

/// One pair of a running daemon.
#[derive(Clone)]
pub struct PairRuntime {
    /// The pair's name.
    pub name: String,
    /// Its switch's name.
    pub switch: String,
    /// Device names by slot.
    pub devices: [String; 2],
    /// Inputs and view of its driver.
    pub handle: PairHandle,
    /// The engine's last decision.
    pub last_decision: watch::Receiver<Option<PairDecision>>,
    /// Replication, when on.
    pub replication: Option<AgentReplication>,
}

impl Running {
    /// The pair named `name`.
    #[must_use]
    pub fn pair(&self, name: &str) -> Option<&PairRuntime> {
        self.pairs.iter().find(|p| p.name == name)
    }

    /// Asks pair `name` to fail over on behalf of `by`.
    ///
    /// # Errors
    /// The pair does not exist, or its driver stopped.
    pub async fn failover(&self, name: &str, by: &str) -> Result<(), String> {
        let pair = self
            .pair(name)
            .ok_or_else(|| format!("no pair named {name:?}"))?;
        pair.handle
            .inputs
            .send(PairInput::Trigger(Trigger::Manual { by: by.to_owned() }))
            .await
            .map_err(|_| "the pair's driver has stopped".to_owned())
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, DaemonError> {
    std::fs::read(path).map_err(|source| DaemonError::Read {
        path: path.clone(),
        source,
    })
}

fn read_token(path: Option<&PathBuf>) -> Result<Option<String>, DaemonError> {
    path.map(|p| Ok(String::from_utf8_lossy(&read(p)?).trim().to_owned()))
        .transpose()
}

fn pair_ports(pair: &PairConfig) -> PairPorts {
    let device = |d: &DeviceConfig| DevicePorts {
        device: d.device,
        client_leg: d.client_leg,
        server_leg: d.server_leg,
        monitor: d.monitor,
    };
    PairPorts {
        service: pair.service,
        client_port: pair.client_port,
        server_port: pair.server_port,
        devices: [device(&pair.primary), device(&pair.shadow)],
        sampling: Sampling {
            mode: match pair.sampling.mode {
                umbra_config::SamplingMode::Packet => SamplingMode::Packet,
                umbra_config::SamplingMode::Flow => SamplingMode::Flow,
            },
            one_in: pair.sampling.one_in,
            truncate_bytes: pair.sampling.truncate_bytes,
        },
    }
}

async fn connect_switch(
    config: &Config,
    switch: &SwitchConfig,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(P4rtFabric, mpsc::Receiver<ClientEvent>), DaemonError> {
    let failed = |source| DaemonError::Switch {
        switch: switch.name.clone(),
        source,
    };
    let tls = match &switch.tls {
        None => None,
        Some(tls) => {
            let mut config = TlsConfig::from_pem_files(
                &tls.ca,
                tls.identity
                    .as_ref()
                    .map(|i| (i.cert.as_path(), i.key.as_path())),
            )
            .map_err(failed)?;
            config.domain_name.clone_from(&tls.server_name);
            Some(config)
        }
    };
    let client_config = ClientConfig {
        device_id: switch.device_id,
        election_id: u128::from(config.host.election_id),
        tls,
        // A switch that restarted forwards nothing until it is
        // reprogrammed: reconnect within a quarter second of its return,
        // not the client's ten (a second let one lab restart black-hole
        // for a full second).
        backoff: umbra_p4rt::BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(250),
            ..umbra_p4rt::BackoffConfig::default()
        },
        ..ClientConfig::new(switch.address.uri())
    };
    let Connection {
        client,
        supervisor,
        events,
    } = P4RuntimeClient::connect(client_config)
        .await
        .map_err(failed)?;
    tasks.spawn(supervisor.run(shutdown.clone()));
    let p4info = match &switch.p4info {
        Some(path) => {
            let text = String::from_utf8_lossy(&read(path)?).into_owned();
            umbra_p4info::parse_text(&text).map_err(|e| DaemonError::Pair {
                pair: switch.name.clone(),
                message: format!("P4Info {}: {e}", path.display()),
            })?
        }
        None => umbra_p4info::umbra_p4info().clone(),
    };
    let device_config = match &switch.device_config {
        Some(path) => read(path)?,
        None => Vec::new(),
    };
    // The cookie names the pipeline: a switch already running it (a
    // daemon restart, another host) keeps its tables.
    let mut hasher = DefaultHasher::new();
    format!("{p4info:?}").hash(&mut hasher);
    device_config.hash(&mut hasher);
    let cookie = hasher.finish();
    match client.push_pipeline(p4info, device_config, cookie).await {
        Ok(outcome) => tracing::info!(switch = %switch.name, ?outcome, "pipeline"),
        // A backup cannot push; it adopts the pipeline for names and
        // follows.
        Err(umbra_p4rt::P4rtError::NotPrimary(_)) => {
            tracing::info!(switch = %switch.name, "backup controller: following the primary host");
        }
        Err(source) => return Err(failed(source)),
    }
    Ok((P4rtFabric::new(client), events))
}

/// Health of each device of a pair, from several sources (the agent's
/// stream, each health check); a device is healthy when every source
/// says so. Changes go to the pair's driver.
/// Each source's verdict on a device: (healthy, why not).
type Verdicts = HashMap<String, (bool, String)>;

#[derive(Clone)]
struct HealthBoard {
    // A synchronous mutex: no `.await` while it is held.
    sources: Arc<Mutex<[Verdicts; 2]>>,
    inputs: mpsc::Sender<PairInput>,
}

impl HealthBoard {
    async fn report(&self, slot: Slot, source: &str, healthy: bool, reason: String) {
        let change = {
            let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
            let map = &mut sources[slot as usize];
            let before = map.values().all(|(ok, _)| *ok);
            map.insert(source.to_owned(), (healthy, reason));
            let after = map.values().all(|(ok, _)| *ok);
            let reason = map
                .iter()
                .filter(|(_, (ok, _))| !ok)
                .map(|(source, (_, why))| format!("{source}: {why}"))
                .collect::<Vec<_>>()
                .join("; ");
            (before != after).then_some((after, reason))
        };
        if let Some((healthy, reason)) = change {
            let _ = self
                .inputs
                .send(PairInput::Health {
                    slot,
                    healthy,
                    reason,
                })
                .await;
        }
    }
}

/// Follows one device's agent: its Metrics stream feeds the engine; a
/// stream that cannot be opened or ends makes the device unhealthy until
/// it is back, once it has been lost for `grace` (`[host]
/// agent-grace-ms`): a restarting agent is not a failing device.
#[allow(clippy::too_many_arguments)]
async fn follow_agent(
    pair: usize,
    slot: Slot,
    uri: String,
    token: Option<String>,
    tick_ms: u64,
    grace: Duration,
    telemetry: mpsc::Sender<Telemetry>,
    health: HealthBoard,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut lost_since: Option<tokio::time::Instant> = None;
    loop {
        let stream = async {
            let channel = tonic::transport::Endpoint::from_shared(uri.clone())
                .map_err(|e| e.to_string())?
                .connect_timeout(Duration::from_secs(2))
                .connect()
                .await
                .map_err(|e| format!("cannot reach the agent: {e}"))?;
            let mut client = device::device_client::DeviceClient::new(channel);
            let mut request = tonic::Request::new(device::MetricsRequest {
                interval_ms: u32::try_from(tick_ms).unwrap_or(u32::MAX),
            });
            if let Some(token) = &token {
                let value = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| "the token is not a valid header value".to_owned())?;
                request.metadata_mut().insert("authorization", value);
            }
            client
                .metrics(request)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| format!("the agent refused the metrics stream: {status}"))
        };
        let reason = match tokio::select! {
            () = shutdown.cancelled() => return,
            stream = stream => stream,
        } {
            Err(reason) => reason,
            Ok(mut stream) => {
                health.report(slot, "agent", true, String::new()).await;
                backoff = Duration::from_millis(100);
                lost_since = None;
                loop {
                    let message = tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = stream.message() => message,
                    };
                    match message {
                        Ok(Some(sample)) => {
                            let at_ms = i64::try_from(sample.timestamp_ms).unwrap_or(i64::MAX);
                            for metric in sample
                                .metrics
                                .into_iter()
                                .filter(|m| m.interface.is_empty())
                            {
                                let sent = telemetry.try_send(Telemetry {
                                    pair,
                                    slot,
                                    metric: metric.name,
                                    at_ms,
                                    value: metric.value,
                                });
                                if sent.is_err() {
                                    tracing::debug!(pair, "telemetry queue full: sample dropped");
                                }
                            }
                        }
                        Ok(None) => break "the agent ended the metrics stream".to_owned(),
                        Err(status) => break format!("the metrics stream failed: {status}"),
                    }
                }
            }
        };
        let since = *lost_since.get_or_insert_with(tokio::time::Instant::now);
        let left = grace.saturating_sub(since.elapsed());
        if left.is_zero() {
            tracing::warn!(pair, %slot, %reason, "device agent lost");
            health.report(slot, "agent", false, reason).await;
        } else {
            tracing::warn!(
                pair, %slot, %reason, grace_ms = grace.as_millis(),
                "device agent unreachable; the device counts as healthy for its grace"
            );
        }
        // Retried with backoff, and once more when the grace ends.
        let wait = if left.is_zero() {
            backoff
        } else {
            backoff.min(left)
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Whether `check` probes a PostgreSQL database.
fn is_postgres(check: &umbra_health::CheckConfig) -> bool {
    matches!(check.probe, umbra_health::Probe::Postgres { .. })
}

/// Runs one health check of a device on its interval: its latency and
/// outcome feed the engine, three failures in a row make the device
/// unhealthy.
async fn follow_check(
    pair: usize,
    check: umbra_config::HealthCheckConfig,
    telemetry: mpsc::Sender<Telemetry>,
    health: HealthBoard,
    shutdown: CancellationToken,
) {
    let mut failures = 0_u32;
    let mut interval = tokio::time::interval(Duration::from_millis(check.interval_ms.max(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let source = format!("health check {}", check.check.name);
    // The runs of the last window: (when, passed, HTTP status).
    let window = Duration::from_millis((check.interval_ms * 10).max(1_000));
    let mut recent: std::collections::VecDeque<(tokio::time::Instant, bool, Option<u16>)> =
        std::collections::VecDeque::new();
    let is_http = matches!(check.check.probe, umbra_health::Probe::Http { .. });
    let up_metric = format!("{}-up", check.check.name);
    // A PostgreSQL check already reports `db-up` per run.
    let report_up = !(is_postgres(&check.check) && up_metric == "db-up");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let result = umbra_health::run_check(&check.check).await;
        let at_ms = now_ms();
        let now = tokio::time::Instant::now();
        recent.push_back((now, result.ok, result.status));
        while recent
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > window)
        {
            recent.pop_front();
        }
        let send = |metric: &str, value: f64| {
            let _ = telemetry.try_send(Telemetry {
                pair,
                slot: check.device,
                metric: metric.to_owned(),
                at_ms,
                value,
            });
        };
        send("health-latency-ms", result.latency_ms);
        if let Some(connected) = result.db_connected {
            send("db-up", if connected { 1.0 } else { 0.0 });
        }
        // Over the window: the share of runs that passed (`NAME-up`) and,
        // for HTTP, the answers per second by class, as the model's
        // `http-2xx-rate` / `http-5xx-rate` count them.
        let runs = recent.len() as f64;
        if report_up {
            send(
                &up_metric,
                recent.iter().filter(|r| r.1).count() as f64 / runs,
            );
        }
        if is_http {
            let seconds = window.as_secs_f64();
            let class = |c: u16| {
                recent
                    .iter()
                    .filter(|r| r.2.is_some_and(|s| s / 100 == c))
                    .count() as f64
                    / seconds
            };
            send("http-2xx-rate", class(2));
            send("http-5xx-rate", class(5));
        }
        if result.ok {
            failures = 0;
            health
                .report(check.device, &source, true, String::new())
                .await;
        } else {
            failures += 1;
            if failures >= 3 {
                let why = result.error.unwrap_or_else(|| "failed".into());
                health.report(check.device, &source, false, why).await;
            }
        }
    }
}

/// Builds the predictive engine the configuration asks for.
///
/// # Errors
/// An unusable model or ONNX Runtime missing; an invalid detector
/// configuration.
pub fn build_engine(config: &Config) -> Result<PredictiveEngine, DaemonError> {
    let model = config
        .model
        .path
        .clone()
        .unwrap_or_else(umbra_model::default_model_path);
    let predictor = Predictor::load(&model)?;
    let mut failover = config.failover.decision.clone();
    failover.probability_threshold = config
        .model
        .probability_threshold
        .unwrap_or(predictor.manifest().threshold);
    // The detector aligns its samples on the daemon's tick.
    let detector =
        DetectorConfig::from_pairs(&[("tick-ms".into(), config.host.tick_ms.to_string())])
            .map_err(crate::engine::EngineError::from)?;
    let warmup_ticks = detector.features.window;
    let engine_config = EngineConfig {
        detector,
        correlation: umbra_policy_logic::CorrelationConfig::default(),
        failover,
        // An operator's drift policy, when `[policies] dir` has one,
        // replaces the detector's scoring.
        drift_from_policy: config.policies.dir.is_some(),
        warmup_ticks,
        correlation_corroborates: false,
    };
    Ok(PredictiveEngine::new(engine_config, Some(predictor), None))
}

/// Starts everything `config` describes on `tasks`; returns once every
/// policy file is loaded, every switch connected and every pair installed
/// (or following).
///
/// # Errors
/// [`DaemonError`]: a file, the model, a policy file, a switch, a pair or
/// an agent.
pub async fn start(
    config: &Config,
    audit: Arc<dyn AuditSink>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Running, DaemonError> {
    let mut engine = build_engine(config)?;
    // Pairs configured alike decide in one failover group: group 0 is
    // the engine's own configuration (`[failover]`).
    let threshold = engine.config().failover.probability_threshold;
    let mut groups = vec![GroupSpec {
        config: engine.config().failover.clone(),
        pairs: Vec::new(),
    }];
    let mut pair_groups = Vec::new();
    for pair in &config.pairs {
        let decision = FailoverConfig {
            probability_threshold: threshold,
            ..pair.failover.decision.clone()
        };
        let group = match groups.iter().position(|g| g.config == decision) {
            Some(group) => group,
            None => {
                groups.push(GroupSpec {
                    config: decision,
                    pairs: Vec::new(),
                });
                groups.len() - 1
            }
        };
        groups[group].pairs.push(pair.name.clone());
        pair_groups.push(group);
    }
    let policies = match &config.policies.dir {
        None => None,
        Some(dir) => {
            let options = PolicyOptions {
                dir: dir.clone(),
                deadline: Duration::from_millis(config.policies.deadline_ms),
                cache_dir: Some(config.host.state_dir.join("policy-cache")),
                drift: engine.config().detector.drift.clone(),
                correlation: engine.config().correlation.clone(),
            };
            Some(PolicySet::start(&options, groups.clone()).await?)
        }
    };
    let runtimes = policies
        .as_ref()
        .map(PolicySet::runtimes)
        .unwrap_or_default();
    engine.set_policies(runtimes.first().cloned().map(Arc::new));
    for (index, group) in groups.iter().enumerate().skip(1) {
        engine.add_failover_group(FailoverGroup {
            config: group.config.clone(),
            policies: runtimes.get(index).cloned().map(Arc::new),
        });
    }
    let policy_commands = policies.map(|set| {
        let (tx, rx) = mpsc::channel(POLICY_COMMANDS);
        tasks.spawn(set.run(config.policies.watch, rx, shutdown.clone()));
        tx
    });
    let (engine_commands, mut engine_rx) = mpsc::channel(ENGINE_COMMANDS);
    let threshold_configured = config.model.probability_threshold.is_some();
    let mut switches = HashMap::new();
    for switch in &config.switches {
        let (fabric, events) = connect_switch(config, switch, tasks, shutdown).await?;
        switches.insert(switch.name.clone(), (fabric, Some(events)));
    }
    let (telemetry_tx, mut telemetry_rx) = mpsc::channel(TELEMETRY_QUEUE);
    let mut pairs = Vec::new();
    let mut decision_senders = Vec::new();
    let mut mastership: HashMap<String, Vec<mpsc::Sender<PairInput>>> = HashMap::new();
    for (index, pair) in config.pairs.iter().enumerate() {
        engine.add_pair_in(pair_groups[index])?;
        let (fabric, _) = &switches[&pair.switch];
        let fabric = fabric.clone();
        let ports = pair_ports(pair);
        let primary = fabric.client().is_primary();
        let active = if primary {
            fabric
                .install(&ports, Slot::A)
                .await
                .map_err(|e| DaemonError::Pair {
                    pair: pair.name.clone(),
                    message: e.message,
                })?
        } else {
            fabric
                .read_selector(&ports)
                .await
                .ok()
                .flatten()
                .unwrap_or(Slot::A)
        };
        let spec = PairSpec {
            name: pair.name.clone(),
            device_names: [pair.primary.name.clone(), pair.shadow.name.clone()],
            ports,
            timeouts: pair.failover.timeouts.clone(),
            verify_min_packets: 1,
        };
        let devices = [&pair.primary, &pair.shadow];
        let mut tokens = Vec::new();
        for device in devices {
            tokens.push(read_token(device.token_file.as_ref())?);
        }
        let replication = if pair.replication.enabled {
            let mut peers = Vec::new();
            for (device, token) in devices.iter().zip(&tokens) {
                let peer = Peer::connect_lazy(&device.name, &device.agent.uri(), token.as_deref())
                    .map_err(|e| DaemonError::Agent {
                        pair: pair.name.clone(),
                        device: device.name.clone(),
                        message: e.to_string(),
                    })?;
                peers.push(peer);
            }
            let peers: [Peer; 2] = peers.try_into().map_err(|_| DaemonError::Pair {
                pair: pair.name.clone(),
                message: "a pair has two devices".into(),
            })?;
            let mut replicator = ReplicatorConfig::default();
            replicator.stream.apply_in_flight = pair.replication.apply_in_flight;
            if let Some(anti_entropy) = &mut replicator.anti_entropy {
                anti_entropy.interval = Duration::from_secs(pair.replication.anti_entropy_s);
            }
            Some(AgentReplication::new(
                peers,
                replicator,
                tasks.clone(),
                shutdown.clone(),
            ))
        } else {
            None
        };
        let handle = match &replication {
            Some(replication) => {
                let (driver, handle) = PairDriver::new(
                    spec,
                    active,
                    fabric,
                    replication.clone(),
                    Arc::clone(&audit),
                );
                tasks.spawn(driver.run(shutdown.clone()));
                handle
            }
            None => {
                let (driver, handle) =
                    PairDriver::new(spec, active, fabric, NoReplication, Arc::clone(&audit));
                tasks.spawn(driver.run(shutdown.clone()));
                handle
            }
        };
        let board = HealthBoard {
            sources: Arc::default(),
            inputs: handle.inputs.clone(),
        };
        for ((slot, device), token) in [Slot::A, Slot::B].into_iter().zip(devices).zip(tokens) {
            tasks.spawn(follow_agent(
                index,
                slot,
                device.agent.uri(),
                token,
                config.host.tick_ms,
                Duration::from_millis(config.host.agent_grace_ms),
                telemetry_tx.clone(),
                board.clone(),
                shutdown.clone(),
            ));
        }
        for check in &pair.health_checks {
            tasks.spawn(follow_check(
                index,
                check.clone(),
                telemetry_tx.clone(),
                board.clone(),
                shutdown.clone(),
            ));
        }
        let _ = handle.inputs.send(PairInput::Mastership { primary }).await;
        mastership
            .entry(pair.switch.clone())
            .or_default()
            .push(handle.inputs.clone());
        let (decision_tx, decision_rx) = watch::channel(None);
        decision_senders.push(decision_tx);
        pairs.push(PairRuntime {
            name: pair.name.clone(),
            switch: pair.switch.clone(),
            devices: [pair.primary.name.clone(), pair.shadow.name.clone()],
            handle,
            last_decision: decision_rx,
            replication,
        });
    }
    // Mastership of each switch goes to every pair on it. A backup host
    // takes a switch over when its primary has been gone for
    // `takeover-after-ms`: the switch keeps the highest election id it
    // has seen (P4Runtime §5.3), so the backup arbitrates above it.
    let takeover = (config.host.takeover_after_ms > 0)
        .then(|| Duration::from_millis(config.host.takeover_after_ms));
    let own_id = u128::from(config.host.election_id);
    for (name, (fabric, events)) in &mut switches {
        let Some(mut events) = events.take() else {
            continue;
        };
        let client = fabric.client().clone();
        let inputs = mastership.remove(name).unwrap_or_default();
        let (shutdown, name) = (shutdown.clone(), name.clone());
        tasks.spawn(async move {
            // When to take over, and above which id.
            let mut pending: Option<(tokio::time::Instant, u128)> = None;
            let schedule = |client: &umbra_p4rt::P4RuntimeClient| {
                (client.primary_vacant() && !client.is_primary())
                    .then_some(takeover)
                    .flatten()
                    .map(|after| {
                        let highest = client.primary_election_id().unwrap_or(0);
                        (tokio::time::Instant::now() + after, highest)
                    })
            };
            loop {
                let wake = async {
                    match pending {
                        Some((at, _)) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = events.recv() => Some(event),
                    () = wake => None,
                };
                let Some(event) = event else {
                    let Some((_, highest)) = pending.take() else {
                        continue;
                    };
                    if client.primary_vacant() && !client.is_primary() {
                        let id = highest.saturating_add(own_id);
                        tracing::warn!(
                            switch = %name,
                            election_id = id,
                            "the switch's primary is gone: taking over"
                        );
                        if let Err(error) = client.rearbitrate(id).await {
                            tracing::warn!(switch = %name, %error, "takeover arbitration failed");
                        }
                    }
                    continue;
                };
                let primary = match event {
                    None => return,
                    Some(ClientEvent::MastershipChanged { primary, .. })
                    | Some(ClientEvent::Reconnected { primary, .. }) => {
                        pending = schedule(&client);
                        if let Some((at, highest)) = pending {
                            tracing::info!(
                                switch = %name,
                                highest,
                                in_ms = at.saturating_duration_since(tokio::time::Instant::now()).as_millis(),
                                "the switch has no primary: taking over unless it returns"
                            );
                        }
                        primary
                    }
                    Some(ClientEvent::Disconnected { reason }) => {
                        tracing::warn!(switch = %name, %reason, "switch connection lost");
                        pending = None;
                        continue;
                    }
                    Some(_) => continue,
                };
                for input in &inputs {
                    let _ = input.send(PairInput::Mastership { primary }).await;
                }
            }
        });
    }
    let metrics = Arc::new(umbra_ops::Metrics::new());
    let running = Running {
        host: config.host.name.clone(),
        election_id: config.host.election_id,
        pairs: Arc::new(pairs),
        metrics: Arc::clone(&metrics),
        policies: runtimes,
        commands: Commands {
            engine: engine_commands,
            policies: policy_commands.clone(),
            model: config
                .model
                .path
                .clone()
                .unwrap_or_else(umbra_model::default_model_path),
        },
    };
    let names: Vec<(String, [String; 2])> = running
        .pairs
        .iter()
        .map(|p| (p.name.clone(), p.devices.clone()))
        .collect();
    let views: Vec<watch::Receiver<PairView>> = running
        .pairs
        .iter()
        .map(|p| p.handle.view.clone())
        .collect();
    let inputs: Vec<mpsc::Sender<PairInput>> = running
        .pairs
        .iter()
        .map(|p| p.handle.inputs.clone())
        .collect();
    let tick = Duration::from_millis(config.host.tick_ms);
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut roles: Vec<Slot> = views.iter().map(|v| v.borrow().active).collect();
        let mut failovers: Vec<u64> = vec![0; views.len()];
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
                Some(command) = engine_rx.recv() => {
                    match command {
                        EngineCommand::SwapModel { predictor, path, reply } => {
                            let answer = swap_model(
                                &mut engine,
                                *predictor,
                                &path,
                                threshold_configured,
                                policy_commands.as_ref(),
                            )
                            .await;
                            let _ = reply.send(answer);
                        }
                    }
                    continue;
                }
            }
            for (pair, view) in views.iter().enumerate() {
                let active = view.borrow().active;
                if active != roles[pair] {
                    // Roles swapped: what was learnt describes the other
                    // device now.
                    roles[pair] = active;
                    if let Err(error) = engine.reset_pair(pair, now_ms()) {
                        tracing::error!(pair, %error, "resetting the pair's engine state");
                    }
                }
            }
            while let Ok(t) = telemetry_rx.try_recv() {
                let role = if t.slot == roles[t.pair] {
                    Role::Primary
                } else {
                    Role::Shadow
                };
                engine.record(t.pair, role, &t.metric, t.at_ms, t.value);
            }
            let decisions = match engine.tick(now_ms()) {
                Ok(decisions) => decisions,
                Err(error) => {
                    tracing::error!(%error, "the engine failed this tick");
                    continue;
                }
            };
            for (pair, decision) in decisions.into_iter().enumerate() {
                let view = views[pair].borrow().clone();
                let (name, devices) = &names[pair];
                let gauges = metrics.pair(name);
                gauges.set_drift_score(decision.drift_score);
                gauges.set_correlation_score(decision.correlation_score);
                if let Some(p) = decision.probability {
                    gauges.set_probability(p);
                }
                gauges.decision();
                for kind in &decision.faults {
                    metrics.policy_fault(kind.as_str());
                }
                gauges.set_phase(crate::control::ops_phase(&view.phase));
                gauges.set_active_device(
                    &devices[view.active as usize],
                    &devices[view.active.other() as usize],
                );
                if view.failovers > failovers[pair] {
                    failovers[pair] = view.failovers;
                    gauges.failover("any");
                    if let Some(ms) = view.last_decision_to_redirect_ms {
                        metrics.observe_decision_to_redirect(ms / 1e3);
                    }
                }
                if decision.go && view.master && view.phase == Phase::Normal {
                    let trigger = Trigger::Policy {
                        explanation: decision.explanation.clone(),
                    };
                    if inputs[pair].try_send(PairInput::Trigger(trigger)).is_err() {
                        tracing::warn!(pair, "the pair's driver is busy: trigger dropped");
                    }
                }
                decision_senders[pair].send_replace(Some(decision));
            }
        }
    });
    Ok(running)
}

/// How `new` differs from `running` in what the engine's histories and
/// the policies rely on: window, tick, features (name, device, metric,
/// transform, in order). Scaling, threshold, horizon and version may
/// change.
fn model_differences(running: &Manifest, new: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    if new.window != running.window {
        problems.push(format!(
            "window {} ticks, the running model's is {}",
            new.window, running.window
        ));
    }
    if new.tick_ms != running.tick_ms {
        problems.push(format!(
            "tick {} ms, the running model's is {} ms",
            new.tick_ms, running.tick_ms
        ));
    }
    let names = |m: &Manifest| {
        m.features
            .iter()
            .map(|f| {
                format!(
                    "{} ({} {} {})",
                    f.name,
                    f.device.as_str(),
                    f.metric,
                    f.transform.as_str()
                )
            })
            .collect::<Vec<_>>()
    };
    let (theirs, ours) = (names(new), names(running));
    if theirs != ours {
        let added: Vec<&String> = theirs.iter().filter(|f| !ours.contains(f)).collect();
        let missing: Vec<&String> = ours.iter().filter(|f| !theirs.contains(f)).collect();
        let mut problem = "features differ from the running model's".to_owned();
        if !added.is_empty() {
            problem.push_str(&format!(
                "; new: {}",
                added
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !missing.is_empty() {
            problem.push_str(&format!(
                "; missing: {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if added.is_empty() && missing.is_empty() {
            problem.push_str(" (same features in another order)");
        }
        problems.push(problem);
    }
    problems
}

/// Swaps the engine's model for `predictor` (loaded from `path`) if it
/// fits the running one; the probability threshold follows the new
/// manifest unless it is configured (the failover policies are told).
async fn swap_model(
    engine: &mut PredictiveEngine,
    predictor: Predictor,
    path: &std::path::Path,
    threshold_configured: bool,
    policies: Option<&mpsc::Sender<PolicyCommand>>,
) -> Result<String, String> {
    let new = predictor.manifest();
    if let Some(running) = engine.predictor() {
        let problems = model_differences(running.manifest(), new);
        if !problems.is_empty() {
            return Err(format!(
                "{} (model {}): {}; the running model {} keeps serving",
                path.display(),
                new.model_version,
                problems.join("; "),
                running.manifest().model_version
            ));
        }
    }
    let version = new.model_version.clone();
    let new_threshold = new.threshold;
    let before = engine.config().failover.probability_threshold;
    let previous = engine.set_predictor(predictor);
    let threshold = if threshold_configured {
        before
    } else {
        if new_threshold != before {
            engine.set_probability_threshold(new_threshold);
            if let Some(policies) = policies
                && policies
                    .send(PolicyCommand::ProbabilityThreshold(new_threshold))
                    .await
                    .is_err()
            {
                tracing::error!(
                    "the policy task has stopped: the failover policy keeps its threshold"
                );
            }
        }
        new_threshold
    };
    tracing::info!(
        model = %path.display(),
        %version,
        previous = previous.as_ref().map(|p| p.manifest().model_version.as_str()),
        threshold,
        "failure-prediction model reloaded"
    );
    Ok(format!(
        "{version} ({}), probability threshold {threshold}",
        path.display()
    ))
}

/// An [`AuditSink`] that appends each record as one JSON line
/// (`{"host", "pair", "record"}`) to the append-only audit log at `path`.
///
/// # Errors
/// The file cannot be opened for appending.
pub fn audit_file(host: &str, path: &std::path::Path) -> Result<Arc<dyn AuditSink>, DaemonError> {
    let log = umbra_ops::AuditLog::open(path).map_err(|error| DaemonError::Audit {
        path: path.to_owned(),
        message: error.to_string(),
    })?;
    let host = host.to_owned();
    Ok(Arc::new(move |pair: &str, record: &AuditRecord| {
        let line = serde_json::json!({ "host": host, "pair": pair, "record": record });
        if let Err(error) = log.append(&line) {
            tracing::error!(%error, "cannot write the audit log");
        }
    }))
}

/// Options of `umbra run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The configuration file (TOML; see host/config/README.md).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Only check the configuration: print every problem, or that it is
    /// valid, and exit.
    #[arg(long)]
    pub check: bool,
}

/// Why `umbra run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid (exit code 64): every problem with
    /// its location.
    #[error("{0}")]
    Config(#[from] umbra_config::ConfigError),
    /// The daemon could not start.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// Runs `umbra run` until `shutdown` is cancelled, then waits for the
/// tasks to stop (at most 10 s).
///
/// # Errors
/// [`RunError::Config`] before anything is started; [`RunError::Daemon`]
/// when a part cannot start.
pub async fn run_cmd(args: RunArgs, shutdown: CancellationToken) -> Result<(), RunError> {
    let config = umbra_config::load(&args.config)?;
    if args.check {
        println!("{}: valid", args.config.display());
        return Ok(());
    }
    let audit = audit_file(&config.host.name, &config.host.audit_log)?;
    let token = read_token(config.management.token_file.as_ref())?;
    // Bound before anything starts: a taken port is a start-up error.
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Bind { addr, source })
    };
    let management = bind(config.management.listen).await?;
    let metrics_listener = match config.management.metrics {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let tasks = TaskTracker::new();
    let running = start(&config, audit, &tasks, &shutdown).await;
    let running = match running {
        Ok(running) => running,
        Err(error) => {
            shutdown.cancel();
            tasks.close();
            tasks.wait().await;
            return Err(error.into());
        }
    };
    tracing::info!(
        host = %running.host,
        pairs = running.pairs.len(),
        management = %config.management.listen,
        "umbra run: protecting"
    );
    let control = Arc::new(crate::control::DaemonControl::new(running.clone()));
    let stop = shutdown.clone();
    tasks.spawn(async move {
        if let Err(error) = umbra_ops::serve(management, control, token, stop).await {
            tracing::error!(%error, "the management API stopped");
        }
    });
    if let Some(listener) = metrics_listener {
        let (metrics, stop) = (Arc::clone(&running.metrics), shutdown.clone());
        tasks.spawn(async move {
            if let Err(error) = umbra_ops::serve_metrics(listener, metrics, stop).await {
                tracing::error!(%error, "the metrics endpoint stopped");
            }
        });
    }
    shutdown.cancelled().await;
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(10), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop within 10 s");
    }
    Ok(())
}
