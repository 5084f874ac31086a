//! One direction of replication, source → target: the source's snapshot
//! applied to the target, then the source's change stream applied in
//! order, resuming from the last revision the target acknowledged.
//!
//! A reader follows the source's Watch stream into a bounded queue of
//! batches; an applier takes them out in order (merging queued batches into
//! one Apply of at most [`StreamConfig::apply_batch`] entries) and
//! acknowledges a revision only once the target's Apply has returned. When
//! the queue is full the reader stops reading the Watch stream, so the
//! source's gRPC flow control holds its sender back: a slow target slows
//! the stream down instead of growing memory. If the source's bounded log
//! then drops revisions the stream has not read, the stream takes a fresh
//! snapshot.
//!
//! Entries whose origin is the target's node id are never sent to the
//! target: they are the target's own changes coming back, so with two
//! streams A → B and B → A nothing echoes.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use umbra_agent::model::Key;
use umbra_agent::wire::entry_from_wire;
use umbra_proto::umbra::device::v1 as pb;

use crate::device::{self, now_us};
use crate::error::{ReplicateError, Result};
use crate::metrics::{StreamMetrics, StreamStatus};
use crate::peer::Peer;

/// Most Applies a stream keeps unanswered ([`StreamConfig::apply_in_flight`]).
pub const MAX_APPLY_IN_FLIGHT: usize = 8;

/// Tunables of one stream.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Entries per snapshot chunk asked from the source.
    pub snapshot_chunk: u32,
    /// Entries per change batch asked from the source; at most
    /// `apply_batch`.
    pub watch_batch: u32,
    /// Most entries in one Apply to the target; at most the target's
    /// `--max-apply-batch`.
    pub apply_batch: usize,
    /// Change batches held between the reader and the applier; when full
    /// the reader stops reading (backpressure).
    pub queue_batches: usize,
    /// Applies sent to the target before the oldest is answered. With 2
    /// (the default) the target decodes and checks a batch while the
    /// previous one is written to its device; it may then serve them in
    /// either order, and orders writes to one key by their versions (an
    /// older write of a key is `Superseded`), so its state ends the same.
    /// With 1 the target applies the batches strictly in revision order.
    /// Revisions are acknowledged in order either way.
    pub apply_in_flight: usize,
    /// First delay before reconnecting after an error.
    pub backoff_initial: Duration,
    /// Longest delay between reconnection attempts.
    pub backoff_max: Duration,
    /// How often the source's head revision is polled for the lag figure.
    pub head_poll: Duration,
    /// The target mirrors the source (a standby shadow): after a snapshot,
    /// every entry the source does not have is deleted on the target,
    /// whatever its origin. Off (for bidirectional replication), entries
    /// that originated on the target are kept: they are its own changes on
    /// their way to the source.
    pub mirror: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            snapshot_chunk: 4096,
            watch_batch: 4096,
            apply_batch: 8192,
            queue_batches: 16,
            apply_in_flight: 2,
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            head_poll: Duration::from_millis(500),
            mirror: true,
        }
    }
}

impl StreamConfig {
    /// Every problem with this configuration; none if it is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.snapshot_chunk == 0 || self.watch_batch == 0 || self.apply_batch == 0 {
            problems.push("snapshot_chunk, watch_batch and apply_batch must be at least 1".into());
        }
        if self.watch_batch as usize > self.apply_batch {
            problems.push(format!(
                "watch_batch {} must not exceed apply_batch {}",
                self.watch_batch, self.apply_batch
            ));
        }
        if self.queue_batches == 0 {
            problems.push("queue_batches must be at least 1".into());
        }
        if !(1..=MAX_APPLY_IN_FLIGHT).contains(&self.apply_in_flight) {
            problems.push(format!(
                "apply_in_flight must be 1 to {MAX_APPLY_IN_FLIGHT}, not {}",
                self.apply_in_flight
            ));
        }
        if self.backoff_initial.is_zero() || self.backoff_initial > self.backoff_max {
            problems.push("backoff_initial must be positive and at most backoff_max".into());
        }
        if self.head_poll.is_zero() {
            problems.push("head_poll must be positive".into());
        }
        problems
    }
}

/// Where a stream stands: resuming from here needs no snapshot, as long as
/// the source still holds the next revision and neither side restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// The source's log epoch.
    pub source_epoch: u64,
    /// The last source revision the target applied.
    pub revision: u64,
    /// The target's log epoch when it applied it (a restarted target may
    /// have lost it).
    pub target_epoch: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    epoch: u64,
    acked: u64,
    stopped: bool,
}

#[derive(Debug)]
struct Shared {
    metrics: StreamMetrics,
    progress: watch::Sender<Progress>,
    // Synchronous: no `.await` happens under these locks.
    last_error: Mutex<Option<String>>,
    resume: Mutex<Option<ResumePoint>>,
}

impl Shared {
    fn acknowledge(&self, point: ResumePoint) {
        let m = &self.metrics;
        m.source_epoch.store(point.source_epoch, Relaxed);
        m.acked_revision.store(point.revision, Relaxed);
        *self.resume.lock().unwrap_or_else(|p| p.into_inner()) = Some(point);
        self.progress.send_replace(Progress {
            epoch: point.source_epoch,
            acked: point.revision,
            stopped: false,
        });
    }
}

/// Marks the stream stopped however `run` ends (returned or dropped), so
/// drains waiting on it fail at once instead of timing out.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.metrics.connected.store(false, Relaxed);
        self.0.progress.send_modify(|p| p.stopped = true);
    }
}

/// What [`StreamHandle::drain_and_commit`] waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// The source's log epoch.
    pub epoch: u64,
    /// The revision the target has applied everything up to (at least the
    /// one asked for).
    pub revision: u64,
    /// How long it took, the commit included.
    pub waited: Duration,
    /// What the target's commit changed: its own TCP connections made
    /// liberal (`None`: the target's agent has no Commit, and its state
    /// stays as replicated).
    pub committed: Option<Committed>,
}

/// What the target's Commit changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Entries switched to liberal TCP tracking.
    pub entries: u64,
    /// Entries that ended before they were reached.
    pub vanished: u64,
}

/// One direction of replication; see the module documentation.
#[derive(Debug)]
pub struct ReplicationStream {
    source: Peer,
    target: Peer,
    config: StreamConfig,
    shared: Arc<Shared>,
    resume: Option<ResumePoint>,
}

/// Observes and drains a running [`ReplicationStream`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StreamHandle {
    source: Peer,
    target: Peer,
    shared: Arc<Shared>,
}

struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The next delay: doubling up to the cap, with "equal jitter" (half
    /// fixed, half random) so streams that failed together do not retry
    /// together.
    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(self.max);
        delay / 2 + delay.mul_f64(rand::random::<f64>() / 2.0)
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl ReplicationStream {
    /// A stream from `source` to `target` that starts with a snapshot.
    pub fn new(source: Peer, target: Peer, config: StreamConfig) -> Self {
        Self {
            source,
            target,
            config,
            shared: Arc::new(Shared {
                metrics: StreamMetrics::default(),
                progress: watch::channel(Progress::default()).0,
                last_error: Mutex::new(None),
                resume: Mutex::new(None),
            }),
            resume: None,
        }
    }

    /// Starts from `point` (a previous stream's
    /// [`StreamHandle::resume_point`]) instead of a snapshot; if the source
    /// or the target cannot resume from it the stream takes a snapshot
    /// anyway.
    #[must_use]
    pub fn resume_from(mut self, point: ResumePoint) -> Self {
        self.resume = Some(point);
        self.shared.acknowledge(point);
        self
    }

    /// A handle for status and drains.
    pub fn handle(&self) -> StreamHandle {
        StreamHandle {
            source: self.source.clone(),
            target: self.target.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Replicates until `shutdown` is cancelled, reconnecting after errors
    /// with capped jittered backoff and taking a fresh snapshot whenever the
    /// stream cannot resume.
    ///
    /// # Errors
    /// [`ReplicateError::InvalidOptions`] for an invalid configuration;
    /// everything else is retried (and counted in the status).
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let problems = self.config.validate();
        if !problems.is_empty() {
            return Err(ReplicateError::InvalidOptions(problems));
        }
        let _stopped = StopGuard(Arc::clone(&self.shared));
        let mut resume = self.resume;
        let mut had_position = resume.is_some();
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let m = &self.shared.metrics;
        loop {
            let before = (m.batches.load(Relaxed), m.snapshots.load(Relaxed));
            let result = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                result = self.session(&mut resume, &mut had_position) => result,
            };
            m.connected.store(false, Relaxed);
            let progressed = before != (m.batches.load(Relaxed), m.snapshots.load(Relaxed));
            if progressed {
                backoff.reset();
            }
            // A session only ends with an error; should one end without,
            // it is retried like one whose stream ended.
            let error = result.err().unwrap_or_else(|| ReplicateError::StreamEnded {
                peer: self.source.name().to_owned(),
            });
            m.errors.fetch_add(1, Relaxed);
            let immediate = match &error {
                ReplicateError::ResumeImpossible { .. } => {
                    tracing::info!(
                        source = self.source.name(),
                        target = self.target.name(),
                        %error,
                        "taking a fresh snapshot"
                    );
                    resume = None;
                    progressed
                }
                _ => {
                    tracing::warn!(
                        source = self.source.name(),
                        target = self.target.name(),
                        error = %error_chain(&error),
                        "replication interrupted; retrying"
                    );
                    false
                }
            };
            *self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(error_chain(&error));
            if !immediate {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(backoff.next()) => {}
                }
            }
        }
    }

    /// One connection: checks both peers, snapshots if needed, then follows
    /// the change stream until something fails.
    async fn session(
        &self,
        resume: &mut Option<ResumePoint>,
        had_position: &mut bool,
    ) -> Result<()> {
        let m = &self.shared.metrics;
        let mut source = self.source.client();
        let mut target = self.target.client();
        let target_health = device::health(&self.target, &mut target).await?;
        let source_health = device::health(&self.source, &mut source).await?;
        m.source_head.store(source_health.head_revision, Relaxed);
        let target_node = target_health.node_id;
        if let Some(point) = *resume
            && point.target_epoch != target_health.log_epoch
        {
            tracing::info!(
                target = self.target.name(),
                "the target restarted and may have lost what it acknowledged; taking a fresh snapshot"
            );
            *resume = None;
        }
        let point = match *resume {
            Some(point) => point,
            None => {
                let point = self.snapshot(target_node, target_health.log_epoch).await?;
                if *had_position {
                    m.resnapshots.fetch_add(1, Relaxed);
                }
                *had_position = true;
                *resume = Some(point);
                point
            }
        };
        m.connected.store(true, Relaxed);
        self.follow(point, target_node, resume).await
    }

    /// Applies a snapshot of the source to the target, then deletes on the
    /// target what came from elsewhere and the source no longer has (a
    /// snapshot carries no tombstones, so deletes missed in a gap would
    /// otherwise stay).
    async fn snapshot(&self, target_node: u64, target_epoch: u64) -> Result<ResumePoint> {
        let m = &self.shared.metrics;
        let batch = self.config.apply_batch;
        let mut source = self.source.client();
        let mut target = self.target.client();
        let (revision, source_epoch, entries) =
            device::snapshot(&self.source, &mut source, self.config.snapshot_chunk).await?;
        let keys: HashSet<Key> = entries
            .iter()
            .filter_map(|e| entry_from_wire(e).ok().map(|e| e.key))
            .collect();
        let (forward, echoes): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|e| device::origin(e) != target_node);
        m.echo_suppressed.fetch_add(echoes.len() as u64, Relaxed);
        m.snapshot_forwarded
            .fetch_add(forward.len() as u64, Relaxed);
        let (outcomes, epoch) = device::apply(&self.target, &mut target, forward, batch).await?;
        check_target_epoch(&self.target, epoch, target_epoch, revision)?;
        let tally = device::tally(&outcomes);
        m.snapshot_applied.fetch_add(tally.applied, Relaxed);
        m.rejected.fetch_add(tally.rejected, Relaxed);

        let (_, _, held) =
            device::snapshot(&self.target, &mut target, self.config.snapshot_chunk).await?;
        let stale: Vec<pb::Entry> = held
            .iter()
            .filter(|e| self.config.mirror || device::origin(e) != target_node)
            .filter(|e| entry_from_wire(e).is_ok_and(|e| !keys.contains(&e.key)))
            .map(device::tombstone_of)
            .collect();
        if !stale.is_empty() {
            let (outcomes, epoch) = device::apply(&self.target, &mut target, stale, batch).await?;
            check_target_epoch(&self.target, epoch, target_epoch, revision)?;
            m.stale_removed
                .fetch_add(device::tally(&outcomes).applied, Relaxed);
        }
        m.snapshots.fetch_add(1, Relaxed);
        m.snapshot_revision.store(revision, Relaxed);
        m.source_head.fetch_max(revision, Relaxed);
        let point = ResumePoint {
            source_epoch,
            revision,
            target_epoch,
        };
        self.shared.acknowledge(point);
        tracing::info!(
            source = self.source.name(),
            target = self.target.name(),
            revision,
            applied = tally.applied,
            "snapshot applied"
        );
        Ok(point)
    }

    /// Follows the source's change stream from `point` until an error.
    async fn follow(
        &self,
        point: ResumePoint,
        target_node: u64,
        resume: &mut Option<ResumePoint>,
    ) -> Result<()> {
        let m = &self.shared.metrics;
        let watch_error = |status: tonic::Status| match status.code() {
            tonic::Code::OutOfRange | tonic::Code::FailedPrecondition => {
                ReplicateError::ResumeImpossible {
                    revision: point.revision,
                    reason: status.message().to_owned(),
                }
            }
            _ => ReplicateError::rpc(self.source.name(), "Watch", status),
        };
        let mut stream = self
            .source
            .client()
            .watch(pb::WatchRequest {
                from_revision: point.revision,
                log_epoch: point.source_epoch,
                max_batch: self.config.watch_batch,
            })
            .await
            .map_err(watch_error)?
            .into_inner();
        let (queue, mut batches) = mpsc::channel::<pb::ChangeBatch>(self.config.queue_batches);

        let reader = async move {
            let mut next = point.revision + 1;
            while let Some(batch) = stream.message().await.map_err(watch_error)? {
                if batch.log_epoch != point.source_epoch {
                    return Err(ReplicateError::ResumeImpossible {
                        revision: next - 1,
                        reason: "the source's log epoch changed".into(),
                    });
                }
                if batch.first_revision != next {
                    return Err(ReplicateError::Protocol {
                        peer: self.source.name().to_owned(),
                        what: format!(
                            "change batch starts at revision {} instead of {next}",
                            batch.first_revision
                        ),
                    });
                }
                next += batch.entries.len() as u64;
                m.source_head.fetch_max(next - 1, Relaxed);
                // Waits while the queue is full: the Watch stream is not
                // read meanwhile (backpressure).
                if queue.send(batch).await.is_err() {
                    break;
                }
            }
            Err::<(), _>(ReplicateError::StreamEnded {
                peer: self.source.name().to_owned(),
            })
        };

        let applier = async {
            let mut pending: Option<pb::ChangeBatch> = None;
            // Up to `apply_in_flight` Applies wait for their answers while
            // the next batch is gathered and sent: the target decodes and
            // checks a batch while the previous one is written to its
            // device. Answers are taken, and revisions acknowledged, in
            // order. (The target orders concurrent Applies by their
            // entries' versions, as it orders any writes, so its state does
            // not depend on which it serves first.)
            let mut in_flight: VecDeque<InFlight> = VecDeque::new();
            loop {
                let queued = pending.take().or_else(|| {
                    if in_flight.is_empty() {
                        None
                    } else {
                        batches.try_recv().ok()
                    }
                });
                let first = match queued {
                    Some(batch) => batch,
                    None => {
                        // Nothing more to send now: the Applies in flight
                        // are finished before waiting, so no
                        // acknowledgement waits for a change.
                        while let Some(done) = in_flight.pop_front() {
                            self.finish(done, point, resume).await?;
                        }
                        match batches.recv().await {
                            Some(batch) => batch,
                            None => return Ok::<(), ReplicateError>(()),
                        }
                    }
                };
                let mut last = first.first_revision + first.entries.len() as u64 - 1;
                let mut entries = first.entries;
                while entries.len() < self.config.apply_batch {
                    match batches.try_recv() {
                        Ok(batch)
                            if entries.len() + batch.entries.len() <= self.config.apply_batch =>
                        {
                            last = batch.first_revision + batch.entries.len() as u64 - 1;
                            entries.extend(batch.entries);
                        }
                        Ok(batch) => {
                            pending = Some(batch);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let before = entries.len();
                entries.retain(|e| device::origin(e) != target_node);
                m.echo_suppressed
                    .fetch_add((before - entries.len()) as u64, Relaxed);
                let mut sent = InFlight {
                    last,
                    walls: Vec::new(),
                    apply: None,
                };
                if !entries.is_empty() {
                    sent.walls = entries.iter().map(device::wall_ms).collect();
                    m.forwarded.fetch_add(entries.len() as u64, Relaxed);
                    if in_flight.iter().any(|f| f.apply.is_some()) {
                        m.pipelined.fetch_add(1, Relaxed);
                    }
                    let target = self.target.clone();
                    let batch = self.config.apply_batch;
                    sent.apply = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                        let mut client = target.client();
                        device::apply(&target, &mut client, entries, batch).await
                    })));
                }
                in_flight.push_back(sent);
                while in_flight.len() >= self.config.apply_in_flight {
                    let Some(done) = in_flight.pop_front() else {
                        break;
                    };
                    self.finish(done, point, resume).await?;
                }
            }
        };

        let head_poll = async {
            let mut source = self.source.client();
            loop {
                tokio::time::sleep(self.config.head_poll).await;
                // Only a figure for the status: a failed poll is left to
                // the Watch stream to notice.
                if let Ok(health) = device::health(&self.source, &mut source).await
                    && health.log_epoch == point.source_epoch
                {
                    m.source_head.fetch_max(health.head_revision, Relaxed);
                }
            }
        };

        tokio::select! {
            result = reader => result,
            result = applier => result,
            () = head_poll => Ok(()),
        }
    }

    /// Takes the answer of a batch sent by [`Self::follow`], records its
    /// figures and acknowledges its revisions.
    async fn finish(
        &self,
        sent: InFlight,
        point: ResumePoint,
        resume: &mut Option<ResumePoint>,
    ) -> Result<()> {
        let m = &self.shared.metrics;
        if let Some(apply) = sent.apply {
            let (outcomes, epoch) = match apply.await {
                Ok(answer) => answer?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return Err(ReplicateError::Stopped),
            };
            check_target_epoch(&self.target, epoch, point.target_epoch, sent.last)?;
            let done_us = now_us();
            let tally = device::tally(&outcomes);
            m.applied.fetch_add(tally.applied, Relaxed);
            m.unchanged.fetch_add(tally.unchanged, Relaxed);
            m.superseded.fetch_add(tally.superseded, Relaxed);
            m.rejected.fetch_add(tally.rejected, Relaxed);
            if tally.rejected > 0 {
                tracing::warn!(
                    target = self.target.name(),
                    rejected = tally.rejected,
                    "the target refused replicated entries"
                );
            }
            for wall in &sent.walls {
                m.lag
                    .record(done_us.saturating_sub(wall.saturating_mul(1000)), 1);
            }
            if let Some(newest) = sent.walls.iter().max() {
                m.newest_applied_wall_ms.fetch_max(*newest, Relaxed);
                m.last_apply_lag_us
                    .store(done_us.saturating_sub(newest.saturating_mul(1000)), Relaxed);
            }
        }
        m.batches.fetch_add(1, Relaxed);
        let acked = ResumePoint {
            revision: sent.last,
            ..point
        };
        *resume = Some(acked);
        self.shared.acknowledge(acked);
        Ok(())
    }
}

/// What the target answered an Apply: one outcome per entry, its log epoch.
type Answer = (Vec<pb::ApplyOutcome>, u64);

/// A batch sent to the target (or, with no entries left after the echo
/// filter, nothing to send) whose revisions are acknowledged once its
/// answer is in.
struct InFlight {
    /// The newest source revision it covers.
    last: u64,
    /// The entries' HLC wall times, for the lag figures.
    walls: Vec<u64>,
    /// The Apply, run as a task of its own so it proceeds while the next
    /// batch is gathered; aborted if the stream stops first.
    apply: Option<AbortOnDropHandle<Result<Answer>>>,
}

/// A target whose log epoch changed restarted and may have lost what it
/// acknowledged.
fn check_target_epoch(target: &Peer, now: u64, expected: u64, revision: u64) -> Result<()> {
    if now != expected && now != 0 {
        return Err(ReplicateError::ResumeImpossible {
            revision,
            reason: format!("the {} restarted", target.name()),
        });
    }
    Ok(())
}

/// An error with its sources, for logs and the status.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl StreamHandle {
    /// The stream's state and counters now.
    pub fn status(&self) -> StreamStatus {
        let last_error = self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.shared.metrics.status(last_error, now_us() / 1000)
    }

    /// The live counters (for the lag histogram).
    pub fn metrics(&self) -> &StreamMetrics {
        &self.shared.metrics
    }

    /// Where a new stream between the same peers can resume; `None` before
    /// the first snapshot.
    pub fn resume_point(&self) -> Option<ResumePoint> {
        *self.shared.resume.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the target has applied everything of the source up to
    /// `revision` (`None`: the source's head now), then has the target
    /// commit (its own TCP connections made liberal, so their segments
    /// are not dropped as out of window once it forwards them again) —
    /// what failover calls before redirecting traffic, so that no session
    /// the primary knows is missing or refused on the shadow. An agent
    /// without Commit is drained only ([`DrainReport::committed`] is
    /// `None`).
    ///
    /// # Errors
    /// [`ReplicateError::DrainTimeout`] when `timeout` passes first,
    /// [`ReplicateError::Rpc`] when the source cannot tell its head or
    /// the target's commit fails, [`ReplicateError::SourceRestarted`] when
    /// the source restarts meanwhile, [`ReplicateError::Stopped`] when the
    /// stream stops.
    pub async fn drain_and_commit(
        &self,
        revision: Option<u64>,
        timeout: Duration,
    ) -> Result<DrainReport> {
        let started = Instant::now();
        let deadline = started + timeout;
        let timed_out = |epoch: u64, target: u64| ReplicateError::DrainTimeout {
            target,
            acked: self.shared.metrics.acked_revision.load(Relaxed),
            epoch,
            waited: started.elapsed(),
        };
        let mut source = self.source.client();
        let health = tokio::time::timeout_at(deadline, device::health(&self.source, &mut source))
            .await
            .map_err(|_| timed_out(0, revision.unwrap_or(0)))??;
        let target = revision.unwrap_or(health.head_revision);
        let epoch = health.log_epoch;
        let acked = self
            .wait_until(epoch, target, deadline)
            .await
            .map_err(|e| match e {
                ReplicateError::DrainTimeout { .. } => timed_out(epoch, target),
                other => other,
            })?;
        let mut client = self.target.client();
        let committed =
            tokio::time::timeout_at(deadline, device::commit(&self.target, &mut client))
                .await
                .map_err(|_| timed_out(epoch, target))??
                .map(|c| Committed {
                    entries: c.committed,
                    vanished: c.vanished,
                });
        if committed.is_none() {
            tracing::warn!(
                target = self.target.name(),
                "the target's agent has no Commit: its own TCP connections keep their \
                 sequence windows"
            );
        }
        Ok(DrainReport {
            epoch,
            revision: acked,
            waited: started.elapsed(),
            committed,
        })
    }

    /// Waits until the target acknowledged `revision` of `epoch`; returns
    /// the acknowledged revision.
    pub(crate) async fn wait_until(
        &self,
        epoch: u64,
        revision: u64,
        deadline: Instant,
    ) -> Result<u64> {
        let mut progress = self.shared.progress.subscribe();
        let mut seen_epoch = false;
        loop {
            let now = *progress.borrow_and_update();
            if now.epoch == epoch {
                seen_epoch = true;
                if now.acked >= revision {
                    return Ok(now.acked);
                }
            } else if seen_epoch {
                return Err(ReplicateError::SourceRestarted {
                    asked: epoch,
                    now: now.epoch,
                });
            }
            if now.stopped {
                return Err(ReplicateError::Stopped);
            }
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Err(_) => {
                    return Err(ReplicateError::DrainTimeout {
                        target: revision,
                        acked: now.acked,
                        epoch,
                        waited: Duration::ZERO,
                    });
                }
                Ok(Err(_)) => return Err(ReplicateError::Stopped),
                Ok(Ok(())) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.next()).collect();
        let bounds = [100, 200, 400, 400, 400];
        for (delay, bound) in delays.iter().zip(bounds) {
            let bound = Duration::from_millis(bound);
            assert!(
                *delay >= bound / 2 && *delay <= bound,
                "{delay:?} vs {bound:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next() <= Duration::from_millis(100));
    }

    #[test]
    fn config_problems_are_all_listed() {
        let config = StreamConfig {
            watch_batch: 10_000,
            apply_batch: 100,
            queue_batches: 0,
            apply_in_flight: 0,
            backoff_initial: Duration::ZERO,
            ..StreamConfig::default()
        };
        assert_eq!(config.validate().len(), 4, "{:?}", config.validate());
        assert!(
            config
                .validate()
                .contains(&"apply_in_flight must be 1 to 8, not 0".to_owned())
        );
        assert!(StreamConfig::default().validate().is_empty());
    }
}
