//! Umbra's device agent: serves one virtual device's state over
//! `umbra.device.v1` so the host can replicate it to its peer.
//!
//! The [`agent::Agent`] keeps every entry with its version (a hybrid
//! logical clock stamp, [`hlc`], plus origin and tombstone) and the bounded
//! [`changelog`] over a [`backend::Backend`]: the simulated device
//! ([`backend::sim`]) or a Linux network namespace ([`backend::linux`]:
//! ctnetlink, rtnetlink, nftables). [`service`] is the gRPC service and
//! [`auth`] who may call it: a bearer token and/or mutual TLS.
//!
//! [`run`] is `umbra agent`; [`serve`] serves an agent on a bound listener
//! (what tests use).

#![forbid(unsafe_code)]

pub mod agent;
pub mod auth;
pub mod backend;
pub mod changelog;
pub mod error;
pub mod hlc;
pub mod model;
pub mod service;
pub mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use umbra_proto::umbra::device::v1::device_server::DeviceServer;

pub use agent::{Agent, AgentConfig, ApplyReport, Outcome};
pub use auth::{BearerToken, Security, ServerTls};
pub use backend::linux::{LinuxBackend, LinuxConfig};
pub use backend::sim::{SimBackend, SimConfig};
pub use backend::{Backend, CommitReport};
pub use error::{AgentError, Result};
pub use service::DeviceService;

/// Largest gRPC message the agent accepts or sends.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What `umbra agent` runs: one device agent.
#[derive(Debug, Clone, Args)]
pub struct AgentOptions {
    /// Address the gRPC server listens on.
    #[arg(long, default_value = "127.0.0.1:9700")]
    pub listen: SocketAddr,
    /// Serve the simulated device (no privileges needed).
    #[arg(long)]
    pub sim: bool,
    /// Serve the Linux device in this network namespace (`ip netns` name).
    #[arg(long)]
    pub netns: Option<String>,
    /// Linux device: a routing table whose routes are replicated (repeat
    /// for several; 254 is `main`).
    #[arg(long = "route-table", default_value = "254")]
    pub route_tables: Vec<u32>,
    /// Linux device: cgroup v2 whose CPU and memory are the device's.
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    /// Linux device: an nftables table that is the device's own, not state to replicate (repeatable).
    #[arg(long = "local-nft-table", value_name = "NAME")]
    pub local_nft_tables: Vec<String>,
    /// Linux device: conntrack entries with this mark are the device's own, not state to replicate.
    #[arg(long, value_name = "MARK")]
    pub local_conntrack_mark: Option<u32>,
    /// This node's id (origin of its changes); 0 picks a random one.
    #[arg(long, default_value_t = 0)]
    pub node_id: u64,
    /// File holding the bearer token clients must present (surrounding
    /// whitespace is ignored).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain of the agent (enables TLS).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the agent.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA that client certificates must chain to (mutual TLS).
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// Serve without any authentication (labs only).
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// Changes kept for resuming watchers.
    #[arg(long, default_value_t = 1 << 18)]
    pub change_log: usize,
    /// Entries one Apply may carry.
    #[arg(long, default_value_t = 10_000)]
    pub max_apply_batch: usize,
    /// Tombstones kept to refuse stale writes of deleted keys.
    #[arg(long, default_value_t = 1 << 18)]
    pub tombstones: usize,
    /// Simulated device: new sessions per second.
    #[arg(long, default_value_t = 200.0)]
    pub sim_session_rate: f64,
    /// Simulated device: mean session lifetime in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub sim_session_lifetime_ms: u64,
    /// Simulated device: conntrack table size.
    #[arg(long, default_value_t = 262_144)]
    pub sim_conntrack_max: u64,
    /// Simulated device: seed of the session generator.
    #[arg(long, default_value_t = 1)]
    pub sim_seed: u64,
}

impl Default for AgentOptions {
    fn default() -> Self {
        let agent = AgentConfig::default();
        let sim = SimConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9700)),
            sim: false,
            netns: None,
            route_tables: LinuxConfig::new("").route_tables,
            cgroup: None,
            local_nft_tables: Vec::new(),
            local_conntrack_mark: None,
            node_id: 0,
            token_file: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            allow_unauthenticated: false,
            change_log: agent.change_log,
            max_apply_batch: agent.max_apply_batch,
            tombstones: agent.tombstones,
            sim_session_rate: sim.session_rate,
            sim_session_lifetime_ms: u64::try_from(sim.mean_session_lifetime.as_millis())
                .unwrap_or(u64::MAX),
            sim_conntrack_max: sim.conntrack_max,
            sim_seed: sim.seed,
        }
    }
}

impl AgentOptions {
    /// Every problem with these options (files are not read here); none if
    /// they are usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match (self.sim, &self.netns) {
            (true, Some(_)) => problems.push("--sim and --netns exclude each other".into()),
            (false, None) => problems.push("choose a backend: --sim or --netns NAME".into()),
            _ => {}
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            problems.push("--tls-cert and --tls-key go together".into());
        }
        if self.client_ca.is_some() && self.tls_cert.is_none() {
            problems.push("--client-ca needs --tls-cert and --tls-key".into());
        }
        if self.token_file.is_none() && self.client_ca.is_none() && !self.allow_unauthenticated {
            problems.push(
                "no authentication: give --token-file, --client-ca (mutual TLS) or both, \
                 or --allow-unauthenticated for a lab"
                    .into(),
            );
        }
        for (name, value) in [
            ("--change-log", self.change_log),
            ("--max-apply-batch", self.max_apply_batch),
            ("--tombstones", self.tombstones),
        ] {
            if value == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        }
        if self.netns.is_some() && self.route_tables.is_empty() {
            problems.push("--route-table must name at least one table".into());
        }
        if !(self.sim_session_rate.is_finite() && self.sim_session_rate >= 0.0) {
            problems.push("--sim-session-rate must be a non-negative number".into());
        }
        if self.sim_session_lifetime_ms == 0 {
            problems.push("--sim-session-lifetime-ms must be at least 1".into());
        }
        problems
    }

    /// The agent's configuration.
    pub fn agent_config(&self) -> AgentConfig {
        AgentConfig {
            node_id: self.node_id,
            change_log: self.change_log,
            max_apply_batch: self.max_apply_batch,
            tombstones: self.tombstones,
            ..AgentConfig::default()
        }
    }

    /// The simulated device's configuration.
    pub fn sim_config(&self) -> SimConfig {
        SimConfig {
            session_rate: self.sim_session_rate,
            mean_session_lifetime: Duration::from_millis(self.sim_session_lifetime_ms),
            conntrack_max: self.sim_conntrack_max,
            seed: self.sim_seed,
            ..SimConfig::default()
        }
    }

    /// The Linux device's configuration, for `--netns`.
    pub fn linux_config(&self) -> Option<LinuxConfig> {
        let netns = self.netns.as_ref()?;
        Some(LinuxConfig {
            route_tables: self.route_tables.clone(),
            cgroup: self.cgroup.clone(),
            local_nft_tables: self.local_nft_tables.clone(),
            local_conntrack_mark: self.local_conntrack_mark,
            ..LinuxConfig::new(netns.clone())
        })
    }

    /// Reads the token and TLS files.
    ///
    /// # Errors
    /// [`AgentError::ReadFile`] for a file that cannot be read.
    pub fn security(&self) -> Result<Security> {
        fn read(what: &'static str, path: &Path) -> Result<Vec<u8>> {
            std::fs::read(path).map_err(|source| AgentError::ReadFile {
                what,
                path: path.to_owned(),
                source,
            })
        }
        let token = match &self.token_file {
            Some(path) => Some(
                String::from_utf8_lossy(&read("token", path)?)
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls {
                certificate_pem: read("TLS certificate", cert)?,
                key_pem: read("TLS key", key)?,
                client_ca_pem: self
                    .client_ca
                    .as_deref()
                    .map(|ca| read("client CA", ca))
                    .transpose()?,
            }),
            _ => None,
        };
        Ok(Security {
            token,
            tls,
            allow_unauthenticated: self.allow_unauthenticated,
        })
    }
}

/// Runs `umbra agent`: checks the options, binds `--listen`, and serves the
/// chosen device until `shutdown` is cancelled.
///
/// # Errors
/// Invalid options (every problem listed), a `--netns` namespace that
/// cannot be entered, unreadable files, bad TLS material, an address that
/// cannot be bound, or the server failing.
pub async fn run(options: AgentOptions, shutdown: CancellationToken) -> Result<()> {
    let problems = options.validate();
    if !problems.is_empty() {
        return Err(AgentError::InvalidOptions(problems));
    }
    let security = options.security()?;
    let problems = security.validate();
    if !problems.is_empty() {
        return Err(AgentError::InvalidOptions(problems));
    }
    let tasks = TaskTracker::new();
    let device = shutdown.child_token();
    let backend: Arc<dyn Backend> = match options.linux_config() {
        Some(config) => {
            let netns = config.netns.clone();
            // Opening reads the whole state over blocking netlink calls.
            let opened = tokio::task::spawn_blocking(move || LinuxBackend::open(config))
                .await
                .map_err(|e| AgentError::LinuxBackendUnavailable {
                    netns,
                    reason: e.to_string(),
                })?;
            Arc::new(opened?)
        }
        None => {
            let sim = Arc::new(SimBackend::new(options.sim_config()));
            tasks.spawn(Arc::clone(&sim).drive(device.clone()));
            sim
        }
    };
    let result = async {
        let agent = Agent::new(options.agent_config(), backend)?;
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| AgentError::Bind {
                    addr: options.listen,
                    source,
                })?;
        serve(listener, agent, security, shutdown).await
    }
    .await;
    device.cancel();
    tasks.close();
    tasks.wait().await;
    result
}

/// Serves `agent` on an already-bound listener (tests bind `127.0.0.1:0`)
/// with `security`, and records the backend's changes, until `shutdown` is
/// cancelled. The backend itself (for the simulator, its
/// [`SimBackend::drive`]) is the caller's to run.
///
/// # Errors
/// Insecure or invalid `security`, bad TLS material, or the server
/// failing.
pub async fn serve(
    listener: TcpListener,
    agent: Arc<Agent>,
    security: Security,
    shutdown: CancellationToken,
) -> Result<()> {
    let problems = security.validate();
    if !problems.is_empty() {
        return Err(AgentError::InvalidOptions(problems));
    }
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &security.tls {
        builder = builder
            .tls_config(tls.server_config())
            .map_err(AgentError::Tls)?;
    }
    let tasks = TaskTracker::new();
    let stop = shutdown.child_token();
    tasks.spawn(Arc::clone(&agent).follow_backend(stop.clone()));
    let service = DeviceServer::new(DeviceService::new(Arc::clone(&agent), stop.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let local = listener.local_addr().ok();
    tracing::info!(
        addr = ?local,
        node_id = agent.node_id(),
        backend = agent.backend().kind(),
        token = security.token.is_some(),
        tls = security.tls.is_some(),
        "device agent serving"
    );
    let result = builder
        .add_service(InterceptedService::new(service, security.interceptor()))
        .serve_with_incoming_shutdown(
            // Small request/response pairs: without TCP_NODELAY every Apply
            // waits for a delayed ACK.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            stop.clone().cancelled_owned(),
        )
        .await;
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    result.map_err(AgentError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_report_every_problem() {
        let options = AgentOptions {
            sim: true,
            netns: Some("primary".into()),
            tls_key: Some("k.pem".into()),
            client_ca: Some("ca.pem".into()),
            change_log: 0,
            sim_session_rate: f64::NAN,
            ..AgentOptions::default()
        };
        let problems = options.validate();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        let none = AgentOptions::default().validate();
        assert_eq!(none.len(), 2, "{none:#?}");
        let fine = AgentOptions {
            sim: true,
            allow_unauthenticated: true,
            ..AgentOptions::default()
        };
        assert!(fine.validate().is_empty());
    }

    #[tokio::test]
    async fn netns_that_cannot_be_entered_is_reported_by_name() {
        let options = AgentOptions {
            netns: Some("umbra-no-such-namespace".into()),
            allow_unauthenticated: true,
            ..AgentOptions::default()
        };
        let err = run(options, CancellationToken::new()).await.unwrap_err();
        assert!(matches!(err, AgentError::LinuxBackendUnavailable { .. }));
        assert!(err.to_string().contains("umbra-no-such-namespace"), "{err}");
    }
}
