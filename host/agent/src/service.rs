//! The `umbra.device.v1.Device` gRPC service over an [`Agent`], and the one
//! place where [`AgentError`] becomes a `tonic::Status`.
//!
//! Streams hold no task of their own: they read the agent when polled, so a
//! client that cancels or disappears just drops its stream.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use umbra_proto::umbra::device::v1 as pb;

use crate::agent::{Agent, Outcome};
use crate::backend::MetricsReading;
use crate::error::AgentError;
use crate::hlc::system_ms;
use crate::model::Rejected;
use crate::wire::{entry_from_wire, entry_to_wire};

/// Entries per snapshot chunk unless the caller asks otherwise.
pub const DEFAULT_SNAPSHOT_CHUNK: usize = 1024;
/// Entries per change batch unless the caller asks otherwise.
pub const DEFAULT_WATCH_BATCH: usize = 1024;
/// Most entries per snapshot chunk or change batch.
pub const MAX_CHUNK: usize = 65_536;
/// Metrics interval unless the caller asks otherwise.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(1);

impl From<AgentError> for Status {
    fn from(error: AgentError) -> Self {
        let message = error.to_string();
        match error {
            AgentError::InvalidRequest(_) | AgentError::BatchTooLarge { .. } => {
                Status::invalid_argument(message)
            }
            AgentError::RevisionTooOld { oldest, .. } => {
                let mut status = Status::out_of_range(message);
                if let Ok(value) = oldest.to_string().parse() {
                    status.metadata_mut().insert("umbra-oldest-revision", value);
                }
                status
            }
            AgentError::UnknownRevision { .. } => Status::failed_precondition(message),
            AgentError::ShuttingDown => Status::unavailable(message),
            AgentError::Backend(_) => Status::internal(message),
            AgentError::InvalidOptions(_)
            | AgentError::LinuxBackendUnavailable { .. }
            | AgentError::ReadFile { .. }
            | AgentError::Tls(_)
            | AgentError::Bind { .. }
            | AgentError::Serve(_) => Status::internal(message),
        }
    }
}

/// The gRPC service of one agent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeviceService {
    agent: Arc<Agent>,
    shutdown: CancellationToken,
}

impl DeviceService {
    /// A service over `agent`; its streams end when `shutdown` is
    /// cancelled.
    pub fn new(agent: Arc<Agent>, shutdown: CancellationToken) -> Self {
        Self { agent, shutdown }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn chunk_size(asked: u32, default: usize) -> usize {
    match asked {
        0 => default,
        n => (n as usize).min(MAX_CHUNK),
    }
}

fn outcome_to_wire(outcome: Outcome) -> pb::EntryResult {
    let (outcome, reason) = match outcome {
        Outcome::Applied => (pb::ApplyOutcome::Applied, String::new()),
        Outcome::Unchanged => (pb::ApplyOutcome::Unchanged, String::new()),
        Outcome::Superseded => (pb::ApplyOutcome::Superseded, String::new()),
        Outcome::Rejected(reason) => (pb::ApplyOutcome::Rejected, reason),
    };
    pb::EntryResult {
        outcome: outcome.into(),
        reason,
    }
}

/// The metrics sample of `now`, with rates over the time since `previous`.
fn sample(
    now: &MetricsReading,
    at_ms: u64,
    previous: Option<&(MetricsReading, u64)>,
) -> pb::MetricsSample {
    let gauge = |name: &str, interface: &str, value: f64| pb::Metric {
        name: name.into(),
        interface: interface.into(),
        value,
    };
    let memory = if now.memory_total_bytes == 0 {
        0.0
    } else {
        now.memory_used_bytes as f64 / now.memory_total_bytes as f64
    };
    let fill = if now.conntrack_max == 0 {
        0.0
    } else {
        now.conntrack_count as f64 / now.conntrack_max as f64
    };
    let mut metrics = vec![
        gauge("cpu", "", now.cpu),
        gauge("memory", "", memory),
        gauge("sessions", "", now.conntrack_count as f64),
        gauge("conntrack-fill", "", fill),
    ];
    if let Some((before, before_ms)) = previous {
        let seconds = at_ms.saturating_sub(*before_ms) as f64 / 1000.0;
        if seconds > 0.0 {
            let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / seconds;
            let mut total = [0.0; 5];
            for i in &now.interfaces {
                let Some(b) = before.interfaces.iter().find(|b| b.name == i.name) else {
                    continue;
                };
                let values = [
                    ("rx-bps", 8.0 * rate(i.rx_bytes, b.rx_bytes)),
                    ("tx-bps", 8.0 * rate(i.tx_bytes, b.tx_bytes)),
                    ("rx-pps", rate(i.rx_packets, b.rx_packets)),
                    ("tx-pps", rate(i.tx_packets, b.tx_packets)),
                    (
                        "drops",
                        rate(i.rx_drops + i.tx_drops, b.rx_drops + b.tx_drops),
                    ),
                ];
                for (slot, (name, value)) in total.iter_mut().zip(values) {
                    *slot += value;
                    metrics.push(gauge(name, &i.name, value));
                }
            }
            for (name, value) in ["rx-bps", "tx-bps", "rx-pps", "tx-pps", "drops"]
                .into_iter()
                .zip(total)
            {
                metrics.push(gauge(name, "", value));
            }
        }
    }
    pb::MetricsSample {
        timestamp_ms: at_ms,
        cpu: now.cpu,
        memory_used_bytes: now.memory_used_bytes,
        memory_total_bytes: now.memory_total_bytes,
        interfaces: now
            .interfaces
            .iter()
            .map(|i| pb::InterfaceCounters {
                name: i.name.clone(),
                rx_bytes: i.rx_bytes,
                tx_bytes: i.tx_bytes,
                rx_packets: i.rx_packets,
                tx_packets: i.tx_packets,
                rx_drops: i.rx_drops,
                tx_drops: i.tx_drops,
            })
            .collect(),
        conntrack_count: now.conntrack_count,
        conntrack_max: now.conntrack_max,
        metrics,
    }
}

/// State of one Watch stream between polls.
struct WatchCursor {
    agent: Arc<Agent>,
    head: tokio::sync::watch::Receiver<u64>,
    after: u64,
    max: usize,
    shutdown: CancellationToken,
    done: bool,
}

async fn next_batch(
    mut cursor: WatchCursor,
) -> Option<(Result<pb::ChangeBatch, Status>, WatchCursor)> {
    if cursor.done {
        return None;
    }
    loop {
        // Mark the current head seen before reading, so a change recorded
        // after the read wakes us.
        cursor.head.borrow_and_update();
        match cursor
            .agent
            .changes_after(cursor.after, cursor.max, entry_to_wire)
        {
            Err(error) => {
                cursor.done = true;
                return Some((Err(error.into()), cursor));
            }
            Ok(entries) if !entries.is_empty() => {
                let batch = pb::ChangeBatch {
                    first_revision: cursor.after + 1,
                    log_epoch: cursor.agent.epoch(),
                    entries,
                };
                cursor.after += batch.entries.len() as u64;
                return Some((Ok(batch), cursor));
            }
            Ok(_) => {}
        }
        tokio::select! {
            () = cursor.shutdown.cancelled() => {
                cursor.done = true;
                return Some((Err(AgentError::ShuttingDown.into()), cursor));
            }
            changed = cursor.head.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
        }
    }
}

#[tonic::async_trait]
impl pb::device_server::Device for DeviceService {
    type SnapshotStream = ResponseStream<pb::SnapshotChunk>;

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let request = request.into_inner();
        let size = chunk_size(request.chunk_size, DEFAULT_SNAPSHOT_CHUNK);
        let snapshot = match request.partition_count {
            0 if request.partitions.is_empty() => self.agent.snapshot(),
            0 => {
                return Err(Status::invalid_argument(
                    "partitions given without partition_count",
                ));
            }
            count => self.agent.snapshot_partitions(count, &request.partitions)?,
        };
        let (revision, epoch) = (snapshot.revision, snapshot.epoch);
        let mut chunks: Vec<Vec<_>> = Vec::new();
        let mut entries = snapshot.entries.into_iter().peekable();
        while entries.peek().is_some() {
            chunks.push(entries.by_ref().take(size).collect());
        }
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let last = chunks.len() - 1;
        // Converted chunk by chunk as the client reads.
        let stream = stream::iter(chunks.into_iter().enumerate()).map(move |(i, chunk)| {
            Ok(pb::SnapshotChunk {
                revision,
                log_epoch: epoch,
                entries: chunk.iter().map(entry_to_wire).collect(),
                last: i == last,
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    type WatchStream = ResponseStream<pb::ChangeBatch>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        self.agent
            .check_resume(request.from_revision, request.log_epoch)?;
        let cursor = WatchCursor {
            agent: Arc::clone(&self.agent),
            head: self.agent.subscribe(),
            after: request.from_revision,
            max: chunk_size(request.max_batch, DEFAULT_WATCH_BATCH),
            shutdown: self.shutdown.clone(),
            done: false,
        };
        Ok(Response::new(Box::pin(stream::unfold(cursor, next_batch))))
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let request = request.into_inner();
        let limit = self.agent.config().max_apply_batch;
        if request.entries.len() > limit {
            return Err(AgentError::BatchTooLarge {
                entries: request.entries.len(),
                limit,
            }
            .into());
        }
        let entries = request
            .entries
            .iter()
            .map(|e| entry_from_wire(e).map_err(Rejected))
            .collect();
        let report = self.agent.apply_checked(entries)?;
        Ok(Response::new(pb::ApplyResponse {
            results: report.outcomes.into_iter().map(outcome_to_wire).collect(),
            revision: report.revision,
            log_epoch: self.agent.epoch(),
        }))
    }

    type MetricsStream = ResponseStream<pb::MetricsSample>;

    async fn metrics(
        &self,
        request: Request<pb::MetricsRequest>,
    ) -> Result<Response<Self::MetricsStream>, Status> {
        let interval = match request.get_ref().interval_ms {
            0 => DEFAULT_METRICS_INTERVAL,
            ms => Duration::from_millis(u64::from(ms.max(10))),
        };
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let state = (
            Arc::clone(&self.agent),
            ticks,
            None::<(MetricsReading, u64)>,
            self.shutdown.clone(),
        );
        let stream = stream::unfold(state, |(agent, mut ticks, previous, shutdown)| async move {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                _ = ticks.tick() => {}
            }
            let reading = agent.backend().metrics();
            let at_ms = system_ms();
            let message = sample(&reading, at_ms, previous.as_ref());
            Some((
                Ok(message),
                (agent, ticks, Some((reading, at_ms)), shutdown),
            ))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let health = self.agent.health();
        let status = if health.problems.is_empty() {
            pb::ServingStatus::Serving
        } else {
            pb::ServingStatus::Degraded
        };
        Ok(Response::new(pb::HealthResponse {
            status: status.into(),
            node_id: health.node_id,
            backend: health.backend.into(),
            log_epoch: health.epoch,
            head_revision: health.head_revision,
            oldest_revision: health.oldest_revision,
            entries: health.entries,
            uptime_seconds: health.uptime.as_secs(),
            problems: health.problems,
        }))
    }

    async fn commit(
        &self,
        _request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let agent = Arc::clone(&self.agent);
        let report = tokio::task::spawn_blocking(move || agent.commit())
            .await
            .map_err(|e| Status::internal(format!("commit: {e}")))??;
        Ok(Response::new(pb::CommitResponse {
            committed: report.committed,
            vanished: report.vanished,
        }))
    }

    async fn digest(
        &self,
        request: Request<pb::DigestRequest>,
    ) -> Result<Response<pb::DigestResponse>, Status> {
        let request = request.into_inner();
        let report = self
            .agent
            .digest(request.partition_count, &request.partitions)?;
        Ok(Response::new(pb::DigestResponse {
            revision: report.revision,
            log_epoch: report.epoch,
            partitions: report
                .partitions
                .into_iter()
                .map(|p| pb::PartitionDigest {
                    partition: p.partition,
                    digest: p.digest.to_vec(),
                    count: p.count,
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::InterfaceReading;

    #[test]
    fn samples_carry_the_named_gauges_and_rates() {
        let reading = |bytes: u64, packets: u64| MetricsReading {
            cpu: 0.25,
            memory_used_bytes: 1 << 30,
            memory_total_bytes: 4 << 30,
            interfaces: vec![InterfaceReading {
                name: "eth0".into(),
                rx_bytes: bytes,
                tx_bytes: bytes / 2,
                rx_packets: packets,
                tx_packets: packets,
                rx_drops: packets / 10,
                tx_drops: 0,
            }],
            conntrack_count: 500,
            conntrack_max: 1_000,
        };
        let first = sample(&reading(0, 0), 1_000, None);
        let names: Vec<&str> = first.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["cpu", "memory", "sessions", "conntrack-fill"]);
        let second = sample(&reading(1_000, 100), 3_000, Some(&(reading(0, 0), 1_000)));
        let get = |name: &str, interface: &str| {
            second
                .metrics
                .iter()
                .find(|m| m.name == name && m.interface == interface)
                .unwrap_or_else(|| panic!("{name} {interface}"))
                .value
        };
        assert_eq!(get("memory", ""), 0.25);
        assert_eq!(get("conntrack-fill", ""), 0.5);
        assert_eq!(get("rx-bps", "eth0"), 4_000.0);
        assert_eq!(get("tx-bps", ""), 2_000.0);
        assert_eq!(get("rx-pps", ""), 50.0);
        assert_eq!(get("drops", ""), 5.0);
        assert_eq!(second.timestamp_ms, 3_000);
    }
}
