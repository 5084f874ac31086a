//! Umbra's state replication: keeps a shadow device's state in step with
//! its primary's over `umbra.device.v1`, so the shadow can take over
//! without dropping sessions.
//!
//! - [`ReplicationStream`] ([`stream`]) is one direction: the source's
//!   snapshot, then its ordered change stream, applied to the target and
//!   acknowledged revision by revision; it resumes from the last
//!   acknowledged revision after a disconnect, takes a fresh snapshot when
//!   it cannot, and never sends a target its own changes (origin tags).
//! - [`AntiEntropy`] ([`anti_entropy`]) compares partition digests of both
//!   sides and repairs what differs.
//! - [`Replicator`] puts them together: primary → shadow, optionally
//!   shadow → primary ([`ReplicatorConfig::bidirectional`]), and
//!   anti-entropy; its [`ReplicatorHandle::drain_and_commit`] is what
//!   failover calls before redirecting traffic.
//! - [`run`] is `umbra replicate`.
//!
//! Conflicts need no code here: every agent keeps the greatest version
//! (hybrid logical clock, then origin node) of each key, so both sides
//! converge on the same entry whatever order the streams deliver in.

#![forbid(unsafe_code)]

pub mod anti_entropy;
mod device;
pub mod error;
pub mod metrics;
pub mod peer;
pub mod state;
pub mod stream;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use anti_entropy::{AntiEntropy, AntiEntropyConfig, RoundReport};
pub use error::{ReplicateError, Result};
pub use metrics::{
    AntiEntropyMetrics, AntiEntropyStatus, LagHistogram, LagSnapshot, StreamMetrics, StreamStatus,
};
pub use peer::{DeviceConn, Peer, PeerAuth};
pub use state::StateFile;
pub use stream::{
    Committed, DrainReport, MAX_APPLY_IN_FLIGHT, ReplicationStream, ResumePoint, StreamConfig,
    StreamHandle,
};

/// What `umbra replicate` runs: replication between a primary and its
/// shadow.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicateArgs {
    /// The primary's agent (`host:port` or `http://host:port`).
    #[arg(long)]
    pub primary: String,
    /// The shadow's agent.
    #[arg(long)]
    pub shadow: String,
    /// File holding the bearer token both agents expect (surrounding
    /// whitespace is ignored).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// CA (PEM) the primary's agent certificate must chain to; turns TLS
    /// on towards the primary.
    #[arg(long)]
    pub primary_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the primary (mutual TLS).
    #[arg(long, requires = "primary_key")]
    pub primary_cert: Option<PathBuf>,
    /// Private key (PEM) of `--primary-cert`.
    #[arg(long, requires = "primary_cert")]
    pub primary_key: Option<PathBuf>,
    /// Name the primary's certificate must carry (default: the host of
    /// `--primary`).
    #[arg(long)]
    pub primary_server_name: Option<String>,
    /// CA (PEM) the shadow's agent certificate must chain to; turns TLS on
    /// towards the shadow.
    #[arg(long)]
    pub shadow_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the shadow (mutual TLS).
    #[arg(long, requires = "shadow_key")]
    pub shadow_cert: Option<PathBuf>,
    /// Private key (PEM) of `--shadow-cert`.
    #[arg(long, requires = "shadow_cert")]
    pub shadow_key: Option<PathBuf>,
    /// Name the shadow's certificate must carry (default: the host of
    /// `--shadow`).
    #[arg(long)]
    pub shadow_server_name: Option<String>,
    /// File keeping the primary → shadow resume point across restarts
    /// (replaced atomically after acknowledgements); without it every start
    /// takes a snapshot.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Also replicate the shadow's own changes to the primary.
    #[arg(long)]
    pub bidirectional: bool,
    /// Milliseconds between anti-entropy rounds; 0 turns anti-entropy off.
    #[arg(long, default_value_t = 10_000)]
    pub anti_entropy_ms: u64,
    /// Partitions anti-entropy compares (1..=65536).
    #[arg(long, default_value_t = 256)]
    pub partitions: u32,
    /// Milliseconds between status lines in the log; 0 turns them off.
    #[arg(long, default_value_t = 5_000)]
    pub status_ms: u64,
    /// Applies sent to a target before the oldest is answered (1..=8): with
    /// more than 1 the target decodes a batch while it writes the previous
    /// one and may serve them in either order (writes to one key are
    /// ordered by version); 1 applies strictly in revision order.
    #[arg(long, default_value_t = 2)]
    pub apply_in_flight: usize,
}

impl ReplicateArgs {
    /// Every problem with these options (the token file is not read here);
    /// none if they are usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.primary.trim().is_empty() {
            problems.push("--primary must name the primary's agent".into());
        }
        if self.shadow.trim().is_empty() {
            problems.push("--shadow must name the shadow's agent".into());
        }
        if !self.primary.is_empty() && self.primary == self.shadow {
            problems.push("--primary and --shadow must be different agents".into());
        }
        for (peer, tls) in [
            ("primary", self.tls("primary")),
            ("shadow", self.tls("shadow")),
        ] {
            problems.extend(tls.problems(peer));
        }
        if !(1..=65_536).contains(&self.partitions) {
            problems.push(format!(
                "--partitions {} is not in 1..=65536",
                self.partitions
            ));
        }
        if !(1..=MAX_APPLY_IN_FLIGHT).contains(&self.apply_in_flight) {
            problems.push(format!(
                "--apply-in-flight {} is not in 1..={MAX_APPLY_IN_FLIGHT}",
                self.apply_in_flight
            ));
        }
        problems
    }

    /// The TLS options of `peer` (`"primary"` or `"shadow"`).
    pub fn tls(&self, peer: &str) -> PeerTlsFiles {
        let (addr, ca, cert, key, server_name) = if peer == "primary" {
            (
                &self.primary,
                &self.primary_ca,
                &self.primary_cert,
                &self.primary_key,
                &self.primary_server_name,
            )
        } else {
            (
                &self.shadow,
                &self.shadow_ca,
                &self.shadow_cert,
                &self.shadow_key,
                &self.shadow_server_name,
            )
        };
        PeerTlsFiles {
            addr: addr.clone(),
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
            server_name: server_name.clone(),
        }
    }

    /// The replicator's configuration.
    pub fn config(&self) -> ReplicatorConfig {
        ReplicatorConfig {
            bidirectional: self.bidirectional,
            anti_entropy: (self.anti_entropy_ms > 0).then(|| AntiEntropyConfig {
                partitions: self.partitions,
                interval: Duration::from_millis(self.anti_entropy_ms),
                ..AntiEntropyConfig::default()
            }),
            stream: StreamConfig {
                apply_in_flight: self.apply_in_flight,
                ..StreamConfig::default()
            },
        }
    }
}

/// The TLS files of one peer as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerTlsFiles {
    /// The peer's address, as given.
    pub addr: String,
    /// CA the agent's certificate must chain to; TLS is on when set.
    pub ca: Option<PathBuf>,
    /// Client certificate (mutual TLS).
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    pub key: Option<PathBuf>,
    /// Name the agent's certificate must carry.
    pub server_name: Option<String>,
}

impl PeerTlsFiles {
    /// Every problem with these options; none if usable.
    pub fn problems(&self, peer: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.cert.is_some() != self.key.is_some() {
            problems.push(format!(
                "--{peer}-cert and --{peer}-key go together (a client certificate needs its key)"
            ));
        }
        let other = self.cert.is_some() || self.key.is_some() || self.server_name.is_some();
        if self.ca.is_none() && other {
            problems.push(format!(
                "--{peer}-cert, --{peer}-key and --{peer}-server-name need --{peer}-ca \
                 (TLS towards the {peer} trusts only that CA)"
            ));
        }
        if self.ca.is_some() && self.addr.starts_with("http://") {
            problems.push(format!(
                "--{peer} {} is plain http but --{peer}-ca asks for TLS (use https:// or host:port)",
                self.addr
            ));
        }
        if self.ca.is_none() && self.addr.starts_with("https://") {
            problems.push(format!(
                "--{peer} {} is https but no --{peer}-ca says which CA to trust",
                self.addr
            ));
        }
        problems
    }

    /// The client TLS configuration (`None`: plain gRPC), with the files
    /// read.
    ///
    /// # Errors
    /// [`ReplicateError::ReadTlsFile`] for a file that cannot be read.
    pub fn load(&self, peer: &str) -> Result<Option<tonic::transport::ClientTlsConfig>> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let Some(ca) = &self.ca else {
            return Ok(None);
        };
        let read = |what: &'static str, path: &PathBuf| {
            std::fs::read(path).map_err(|source| ReplicateError::ReadTlsFile {
                peer: peer.to_owned(),
                what,
                path: path.clone(),
                source,
            })
        };
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("CA", ca)?));
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(Identity::from_pem(
                read("client certificate", cert)?,
                read("client key", key)?,
            ));
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        Ok(Some(config))
    }
}

/// How a [`Replicator`] replicates.
#[derive(Debug, Clone)]
pub struct ReplicatorConfig {
    /// Tunables of each stream (`mirror` is set from `bidirectional`).
    pub stream: StreamConfig,
    /// Also replicate shadow → primary.
    pub bidirectional: bool,
    /// Anti-entropy, if wanted.
    pub anti_entropy: Option<AntiEntropyConfig>,
}

impl Default for ReplicatorConfig {
    fn default() -> Self {
        Self {
            stream: StreamConfig::default(),
            bidirectional: false,
            anti_entropy: Some(AntiEntropyConfig::default()),
        }
    }
}

/// Replication between a primary and its shadow: the stream primary →
/// shadow, optionally shadow → primary, and anti-entropy.
#[derive(Debug)]
pub struct Replicator {
    forward: ReplicationStream,
    backward: Option<ReplicationStream>,
    anti_entropy: Option<AntiEntropy>,
}

/// Observes and drains a running [`Replicator`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReplicatorHandle {
    /// The primary → shadow stream.
    pub forward: StreamHandle,
    /// The shadow → primary stream, when bidirectional.
    pub backward: Option<StreamHandle>,
    /// Anti-entropy's counters, when on.
    pub anti_entropy: Option<Arc<AntiEntropyMetrics>>,
}

/// A replicator's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationStatus {
    /// Primary → shadow.
    pub forward: StreamStatus,
    /// Shadow → primary, when bidirectional.
    pub backward: Option<StreamStatus>,
    /// Anti-entropy, when on.
    pub anti_entropy: Option<AntiEntropyStatus>,
}

impl Replicator {
    /// Replication between `primary` and `shadow`.
    pub fn new(primary: Peer, shadow: Peer, config: ReplicatorConfig) -> Self {
        let stream = StreamConfig {
            mirror: !config.bidirectional,
            ..config.stream
        };
        let config = ReplicatorConfig { stream, ..config };
        let forward =
            ReplicationStream::new(primary.clone(), shadow.clone(), config.stream.clone());
        let backward = config.bidirectional.then(|| {
            ReplicationStream::new(shadow.clone(), primary.clone(), config.stream.clone())
        });
        let anti_entropy = config.anti_entropy.map(|ae| {
            AntiEntropy::new(primary, shadow, ae).following(
                Some(forward.handle()),
                backward.as_ref().map(ReplicationStream::handle),
            )
        });
        Self {
            forward,
            backward,
            anti_entropy,
        }
    }

    /// Resumes primary → shadow from `point` instead of a snapshot.
    #[must_use]
    pub fn resume_from(mut self, point: ResumePoint) -> Self {
        self.forward = self.forward.resume_from(point);
        self
    }

    /// A handle for status and drains.
    pub fn handle(&self) -> ReplicatorHandle {
        ReplicatorHandle {
            forward: self.forward.handle(),
            backward: self.backward.as_ref().map(ReplicationStream::handle),
            anti_entropy: self.anti_entropy.as_ref().map(AntiEntropy::metrics),
        }
    }

    /// Runs every part until `shutdown` is cancelled.
    ///
    /// # Errors
    /// The first part that fails (only an invalid configuration does).
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let mut parts = JoinSet::new();
        let stop = shutdown.child_token();
        parts.spawn(self.forward.run(stop.clone()));
        if let Some(backward) = self.backward {
            parts.spawn(backward.run(stop.clone()));
        }
        if let Some(anti_entropy) = self.anti_entropy {
            parts.spawn(anti_entropy.run(stop.clone()));
        }
        let mut result = Ok(());
        while let Some(done) = parts.join_next().await {
            let outcome = match done {
                Ok(outcome) => outcome,
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => Ok(()),
            };
            if let Err(error) = outcome {
                stop.cancel();
                if result.is_ok() {
                    result = Err(error);
                }
            }
        }
        result
    }
}

impl ReplicatorHandle {
    /// The state of every part now.
    pub fn status(&self) -> ReplicationStatus {
        ReplicationStatus {
            forward: self.forward.status(),
            backward: self.backward.as_ref().map(StreamHandle::status),
            anti_entropy: self.anti_entropy.as_ref().map(|m| m.status()),
        }
    }

    /// Waits until the shadow has applied everything of the primary up to
    /// `revision` (`None`: the primary's head now); see
    /// [`StreamHandle::drain_and_commit`].
    ///
    /// # Errors
    /// As [`StreamHandle::drain_and_commit`].
    pub async fn drain_and_commit(
        &self,
        revision: Option<u64>,
        timeout: Duration,
    ) -> Result<DrainReport> {
        self.forward.drain_and_commit(revision, timeout).await
    }
}

/// Runs `umbra replicate`: checks the options, reads the token, and
/// replicates until `shutdown` is cancelled, logging the status
/// periodically.
///
/// # Errors
/// Invalid options (every problem listed), an unreadable token file or an
/// address that is not a URI. Unreachable agents are not errors: they are
/// retried.
pub async fn run(args: ReplicateArgs, shutdown: CancellationToken) -> Result<()> {
    run_observed(args, shutdown, |_| {}).await
}

/// How often `--state` is brought up to date with the acknowledged
/// revision.
const STATE_EVERY: Duration = Duration::from_millis(200);

/// [`run`], handing the replicator's handle to `observe` as soon as it
/// exists (for embedders and tests that watch the status).
///
/// # Errors
/// As [`run`].
pub async fn run_observed(
    args: ReplicateArgs,
    shutdown: CancellationToken,
    observe: impl FnOnce(ReplicatorHandle),
) -> Result<()> {
    let problems = args.validate();
    if !problems.is_empty() {
        return Err(ReplicateError::InvalidOptions(problems));
    }
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| ReplicateError::ReadToken {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let primary = Peer::connect_lazy_tls(
        "primary",
        &args.primary,
        token.as_deref(),
        args.tls("primary").load("primary")?,
    )?;
    let shadow = Peer::connect_lazy_tls(
        "shadow",
        &args.shadow,
        token.as_deref(),
        args.tls("shadow").load("shadow")?,
    )?;
    let mut replicator = Replicator::new(primary, shadow, args.config());
    let state = args.state.as_ref().map(StateFile::new);
    if let Some(state) = &state {
        match state.load() {
            Ok(Some(point)) => {
                tracing::info!(
                    revision = point.revision,
                    source_epoch = point.source_epoch,
                    "resuming from the saved state"
                );
                replicator = replicator.resume_from(point);
            }
            Ok(None) => {}
            // A snapshot is always correct; only slower.
            Err(error) => tracing::warn!(%error, "ignoring the saved state; taking a snapshot"),
        }
    }
    let handle = replicator.handle();
    observe(handle.clone());
    let mut tasks = JoinSet::new();
    if let Some(state) = state.clone() {
        let (stop, forward) = (shutdown.clone(), handle.forward.clone());
        tasks.spawn(async move {
            let mut saved = forward.resume_point();
            let mut ticks = tokio::time::interval(STATE_EVERY);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let now = forward.resume_point();
                if let Some(point) = now.filter(|_| now != saved) {
                    let state = state.clone();
                    match tokio::task::spawn_blocking(move || state.save(point)).await {
                        Ok(Ok(())) => saved = now,
                        Ok(Err(error)) => tracing::warn!(%error, "cannot save the resume point"),
                        Err(_) => return,
                    }
                }
            }
        });
    }
    if args.status_ms > 0 {
        let (stop, every) = (shutdown.clone(), Duration::from_millis(args.status_ms));
        let handle = handle.clone();
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let status = handle.status();
                let f = &status.forward;
                tracing::info!(
                    connected = f.connected,
                    acked = f.acked_revision,
                    lag_revisions = f.lag_revisions,
                    time_lag_ms = f.time_lag.as_millis() as u64,
                    applied = f.applied,
                    resnapshots = f.resnapshots,
                    errors = f.errors,
                    echo_suppressed = status.backward.as_ref().map_or(0, |b| b.echo_suppressed),
                    divergent_partitions = status
                        .anti_entropy
                        .as_ref()
                        .map_or(0, |a| a.divergent_partitions),
                    "replication status"
                );
            }
        });
    }
    let result = replicator.run(shutdown).await;
    tasks.shutdown().await;
    // The last acknowledged point, which the periodic save may not have
    // caught.
    if let (Some(state), Some(point)) = (&state, handle.forward.resume_point())
        && let Err(error) = state.save(point)
    {
        tracing::warn!(%error, "cannot save the resume point");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_report_every_problem() {
        let args = ReplicateArgs {
            primary: "127.0.0.1:1".into(),
            shadow: "127.0.0.1:1".into(),
            token_file: None,
            primary_ca: None,
            primary_cert: None,
            primary_key: None,
            primary_server_name: None,
            shadow_ca: None,
            shadow_cert: None,
            shadow_key: None,
            shadow_server_name: None,
            state: None,
            bidirectional: false,
            anti_entropy_ms: 0,
            partitions: 0,
            status_ms: 0,
            apply_in_flight: 9,
        };
        assert_eq!(args.validate().len(), 3, "{:?}", args.validate());
        assert!(
            args.validate()
                .contains(&"--apply-in-flight 9 is not in 1..=8".to_owned())
        );
        assert!(args.config().anti_entropy.is_none());
        let fine = ReplicateArgs {
            shadow: "127.0.0.1:2".into(),
            partitions: 64,
            anti_entropy_ms: 1_000,
            apply_in_flight: 1,
            ..args
        };
        assert!(fine.validate().is_empty());
        assert_eq!(fine.config().stream.apply_in_flight, 1);
        assert_eq!(fine.config().anti_entropy.map(|a| a.partitions), Some(64));

        // TLS: a certificate without its key, TLS options without a CA,
        // a CA with a plain-http address, https without a CA.
        let tls = ReplicateArgs {
            primary: "http://127.0.0.1:1".into(),
            primary_ca: Some("ca.pem".into()),
            primary_cert: Some("client.pem".into()),
            shadow: "https://127.0.0.1:2".into(),
            shadow_server_name: Some("agent".into()),
            ..fine.clone()
        };
        let problems = tls.validate();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        for flag in [
            "--primary-key",
            "--primary (http",
            "--shadow-ca",
            "https but",
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(flag.trim_end_matches(" (http"))),
                "{flag}: {problems:#?}"
            );
        }
        let good = ReplicateArgs {
            primary: "127.0.0.1:1".into(),
            primary_key: Some("client.key".into()),
            shadow: "127.0.0.1:2".into(),
            shadow_ca: Some("ca.pem".into()),
            ..tls
        };
        assert!(good.validate().is_empty(), "{:#?}", good.validate());
        assert!(
            good.tls("primary").load("primary").is_err(),
            "ca.pem is not here"
        );
        assert!(matches!(fine.tls("shadow").load("shadow"), Ok(None)));
    }

    #[tokio::test]
    async fn run_reports_an_unreadable_token_file() {
        let args = ReplicateArgs {
            primary: "127.0.0.1:1".into(),
            shadow: "127.0.0.1:2".into(),
            token_file: Some("/nonexistent/umbra-token".into()),
            primary_ca: None,
            primary_cert: None,
            primary_key: None,
            primary_server_name: None,
            shadow_ca: None,
            shadow_cert: None,
            shadow_key: None,
            shadow_server_name: None,
            state: None,
            bidirectional: true,
            anti_entropy_ms: 0,
            partitions: 256,
            status_ms: 0,
            apply_in_flight: 2,
        };
        let error = run(args, CancellationToken::new()).await.unwrap_err();
        assert!(matches!(error, ReplicateError::ReadToken { .. }), "{error}");
    }
}
