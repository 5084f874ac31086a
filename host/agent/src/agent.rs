//! The agent's state: every entry with its version (tombstones included, up
//! to a bound), the change log, and the hybrid logical clock, over a
//! [`Backend`]. Apply resolves conflicts per key (the greatest version
//! wins), writes into the device, and records what changed; the device's
//! own changes are stamped with this node's clock and recorded too.
//!
//! Locking: one synchronous mutex over the whole state; no `.await`
//! happens under it. The backend is called under it (lock order: agent
//! state, then the backend's locks), which is what makes a snapshot
//! consistent with a revision and keeps the log in the device's order.

use std::collections::{BTreeMap, HashSet, VecDeque, btree_map};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use foldhash::HashMap;
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, CommitReport, Delivery};
use crate::changelog::ChangeLog;
use crate::error::{AgentError, Result};
use crate::hlc::{Hlc, HybridClock};
use crate::model::{Entry, Key, LocalChange, Rejected, Value, Version};
use crate::wire::entry_to_wire;

/// Tunables of the agent's state.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This node's id: the origin of its local changes and the tie-breaker
    /// of its clock. 0 picks a random one.
    pub node_id: u64,
    /// Changes the log keeps for resuming watchers.
    pub change_log: usize,
    /// Entries one Apply may carry.
    pub max_apply_batch: usize,
    /// Tombstones kept to refuse stale writes of deleted keys; the oldest
    /// are forgotten first.
    pub tombstones: usize,
    /// How far ahead of this node's clock an applied version may be;
    /// further ahead is refused (it would drag every later local version
    /// into the future).
    pub max_clock_skew: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            change_log: 1 << 18,
            max_apply_batch: 10_000,
            tombstones: 1 << 18,
            max_clock_skew: Duration::from_secs(60),
        }
    }
}

/// What happened to one applied entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Now in the device's state.
    Applied,
    /// The agent held exactly this version already.
    Unchanged,
    /// The agent holds a newer version of the key.
    Superseded,
    /// Invalid or refused by the device; nothing changed for the key.
    Rejected(String),
}

/// The result of an Apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// One per entry, in order.
    pub outcomes: Vec<Outcome>,
    /// The log's head after the Apply.
    pub revision: u64,
}

/// Live entries consistent at one revision.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The state is exactly the changes `1..=revision`.
    pub revision: u64,
    /// The change log's epoch.
    pub epoch: u64,
    /// Live entries in key order.
    pub entries: Vec<Entry>,
}

/// The digest of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDigest {
    /// Partition number.
    pub partition: u32,
    /// SHA-256 over the partition's live entries in key order.
    pub digest: [u8; 32],
    /// Live entries in the partition.
    pub count: u64,
}

/// Digests consistent at one revision.
#[derive(Debug, Clone)]
pub struct DigestReport {
    /// The revision the digests are consistent at.
    pub revision: u64,
    /// The change log's epoch.
    pub epoch: u64,
    /// One per asked partition.
    pub partitions: Vec<PartitionDigest>,
}

/// The agent's health.
#[derive(Debug, Clone)]
pub struct HealthReport {
    /// This node's id.
    pub node_id: u64,
    /// Backend kind.
    pub backend: &'static str,
    /// The change log's epoch.
    pub epoch: u64,
    /// The log's last revision.
    pub head_revision: u64,
    /// The log's oldest revision.
    pub oldest_revision: u64,
    /// Live entries.
    pub entries: u64,
    /// Time since the agent started.
    pub uptime: Duration,
    /// What is wrong; empty when healthy.
    pub problems: Vec<String>,
}

#[derive(Debug)]
struct Slot {
    version: Version,
    value: Option<Value>,
}

#[derive(Debug)]
struct State {
    clock: HybridClock,
    log: ChangeLog,
    entries: BTreeMap<Key, Slot>,
    /// Tombstones in the order they were written, for forgetting the
    /// oldest.
    tombstones: VecDeque<(Key, Version)>,
    live: usize,
    /// The change reports the device still owes for applied entries, per
    /// key, oldest first, with when they were applied. A backend reports
    /// every change it makes, Applies included, in order; a report that
    /// matches the front of its key's queue is that echo and is dropped.
    /// Comparing with the value held instead would misread the echo of the
    /// first of two applies to one key (the agent already holds the second)
    /// as a local change, and re-stamp it with this node's origin.
    /// Hashed, not ordered: nothing walks it in key order, and every
    /// applied entry and every change report looks its key up here (with
    /// foldhash, seeded per process: SipHash was a tenth of the agent's
    /// CPU in the conntrack bench).
    pending_echoes: HashMap<Key, EchoQueue>,
    /// When expired echoes were last swept.
    echoes_swept: Instant,
}

/// An applied value whose report is owed, and when it was applied.
type Echo = (Option<Value>, Instant);

/// The echoes one key still owes, oldest first. The oldest is held inline:
/// most keys owe one, and a queue each cost an allocation per applied
/// entry.
#[derive(Debug, Default)]
struct EchoQueue {
    /// `None` only when the queue is empty.
    front: Option<Echo>,
    rest: VecDeque<Echo>,
}

impl EchoQueue {
    fn push_back(&mut self, echo: Echo) {
        if self.front.is_none() {
            self.front = Some(echo);
        } else {
            self.rest.push_back(echo);
        }
    }

    fn front(&self) -> Option<&Echo> {
        self.front.as_ref()
    }

    fn pop_front(&mut self) -> Option<Echo> {
        let front = self.front.take();
        self.front = self.rest.pop_front();
        front
    }

    fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    fn retain(&mut self, keep: impl FnMut(&Echo) -> bool) {
        let mut all: VecDeque<Echo> = self.front.take().into_iter().collect();
        all.append(&mut self.rest);
        all.retain(keep);
        self.front = all.pop_front();
        self.rest = all;
    }
}

/// How long an applied entry's echo is waited for: a backend that merges or
/// drops reports (netlink may) must not leave expectations behind that
/// would swallow a later genuine change.
const ECHO_TTL: Duration = Duration::from_secs(5);

/// Pending echoes beyond which expired ones are swept on the next apply.
const ECHO_SWEEP_AT: usize = 65_536;

/// Wait before a failed resynchronisation is tried again.
const RESYNC_RETRY: Duration = Duration::from_millis(200);

/// Least time between two sweeps of expired echoes: a burst of applies
/// keeps more than [`ECHO_SWEEP_AT`] echoes pending (none expired), and
/// sweeping all of them at every batch would cost more than the applies.
const ECHO_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The device agent's state over its backend. Shared as `Arc<Agent>`.
pub struct Agent {
    config: AgentConfig,
    node_id: u64,
    epoch: u64,
    backend: Arc<dyn Backend>,
    // Synchronous: no `.await` happens under this lock.
    state: Mutex<State>,
    head: watch::Sender<u64>,
    started: std::time::Instant,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("node_id", &self.node_id)
            .field("epoch", &self.epoch)
            .field("backend", &self.backend.kind())
            .finish_non_exhaustive()
    }
}

fn nonzero_random() -> u64 {
    loop {
        let n: u64 = rand::random();
        if n != 0 {
            return n;
        }
    }
}

impl Agent {
    /// An agent over `backend` on the system clock, seeded with the
    /// backend's current state (revisions `1..=n`, in key order).
    ///
    /// # Errors
    /// [`AgentError::Backend`] when the backend's state cannot be read.
    pub fn new(config: AgentConfig, backend: Arc<dyn Backend>) -> Result<Arc<Self>> {
        let node_id = if config.node_id == 0 {
            nonzero_random()
        } else {
            config.node_id
        };
        Self::with_clock(config, backend, HybridClock::new(node_id))
    }

    /// As [`Agent::new`] with a given clock, whose node id is the agent's.
    ///
    /// # Errors
    /// [`AgentError::Backend`] when the backend's state cannot be read.
    pub fn with_clock(
        config: AgentConfig,
        backend: Arc<dyn Backend>,
        clock: HybridClock,
    ) -> Result<Arc<Self>> {
        let epoch = nonzero_random();
        let node_id = clock.node_id();
        let agent = Arc::new(Self {
            node_id,
            epoch,
            state: Mutex::new(State {
                clock,
                log: ChangeLog::new(epoch, config.change_log),
                entries: BTreeMap::new(),
                tombstones: VecDeque::new(),
                live: 0,
                pending_echoes: HashMap::default(),
                echoes_swept: Instant::now(),
            }),
            head: watch::channel(0).0,
            started: std::time::Instant::now(),
            backend,
            config,
        });
        agent.resync()?;
        Ok(agent)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent before the next
        // statement that could panic; keep serving after a panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The change log's epoch (new at every start).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The log's head revision, updated after every recorded batch.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// The log's last revision.
    pub fn head_revision(&self) -> u64 {
        self.lock().log.head()
    }

    /// The last timestamp of this node's clock.
    pub fn clock(&self) -> Hlc {
        self.lock().clock.last()
    }

    /// A timestamp from this node's clock, for tests and tools that build
    /// entries the agent will accept.
    pub fn now(&self) -> Hlc {
        self.lock().clock.now()
    }

    /// Applies entries, each on its own (see [`Agent::apply_checked`]).
    ///
    /// # Errors
    /// [`AgentError::BatchTooLarge`]: nothing applied.
    pub fn apply(&self, entries: Vec<Entry>) -> Result<ApplyReport> {
        self.apply_checked(entries.into_iter().map(Ok).collect())
    }

    /// Applies entries that may have failed decoding (those are rejected
    /// with their reason): an entry newer than what the agent holds for its
    /// key is written into the device and recorded; the same version is
    /// `Unchanged`, an older one `Superseded`.
    ///
    /// # Errors
    /// [`AgentError::BatchTooLarge`]: nothing applied.
    pub fn apply_checked(&self, entries: Vec<Result<Entry, Rejected>>) -> Result<ApplyReport> {
        if entries.len() > self.config.max_apply_batch {
            return Err(AgentError::BatchTooLarge {
                entries: entries.len(),
                limit: self.config.max_apply_batch,
            });
        }
        let skew_ms = u64::try_from(self.config.max_clock_skew.as_millis()).unwrap_or(u64::MAX);
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(entries.len());
        let mut state = self.lock();
        let horizon = state.clock.physical_ms().max(state.clock.last().wall_ms);
        let before = state.log.head();
        // First the versions decide which entries reach the device (a key
        // written twice in the batch is judged against its earlier entry);
        // then the device writes them all in one call, which lets the
        // Linux backend send its conntrack entries in batches instead of
        // one netlink round trip each; then the written ones are recorded,
        // in order.
        let mut winners: Vec<(usize, Entry)> = Vec::new();
        let mut in_batch: HashMap<Key, Version> = HashMap::default();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(rejected) => {
                    outcomes.push(Some(Outcome::Rejected(rejected.0)));
                    continue;
                }
            };
            if entry.version.clock.wall_ms > horizon.saturating_add(skew_ms) {
                outcomes.push(Some(Outcome::Rejected(format!(
                    "version clock {} ms is {} ms ahead of this agent's clock (limit {} ms)",
                    entry.version.clock.wall_ms,
                    entry.version.clock.wall_ms - horizon,
                    skew_ms
                ))));
                continue;
            }
            let current = in_batch
                .get(&entry.key)
                .copied()
                .or_else(|| state.entries.get(&entry.key).map(|slot| slot.version));
            match current {
                Some(current) if current == entry.version => {
                    outcomes.push(Some(Outcome::Unchanged));
                }
                Some(current) if current > entry.version => {
                    outcomes.push(Some(Outcome::Superseded));
                }
                _ => {
                    in_batch.insert(entry.key.clone(), entry.version);
                    winners.push((outcomes.len(), entry));
                    outcomes.push(None);
                }
            }
        }
        let writes: Vec<(&Key, Option<&Value>)> = winners
            .iter()
            .map(|(_, entry)| (&entry.key, entry.value.as_ref()))
            .collect();
        let results = self.backend.apply_batch(&writes);
        drop(writes);
        debug_assert_eq!(results.len(), winners.len());
        // A key written twice in one batch has its later entry judged
        // against the earlier one even when the device refuses that one:
        // an older later entry is Superseded, as it would be had the
        // write succeeded.
        let applied_at = Instant::now();
        for ((at, entry), result) in winners.into_iter().zip(results) {
            outcomes[at] = Some(match result {
                Err(rejected) => Outcome::Rejected(rejected.0),
                Ok(()) => {
                    state.clock.observe(entry.version.clock);
                    state
                        .pending_echoes
                        .entry(entry.key.clone())
                        .or_default()
                        .push_back((entry.value.clone(), applied_at));
                    self.write(&mut state, entry);
                    Outcome::Applied
                }
            });
        }
        let outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .map(|o| {
                // Only a backend breaking `apply_batch`'s contract (one
                // result per write) leaves an entry without an outcome.
                o.unwrap_or_else(|| {
                    Outcome::Rejected("the device reported no result for this entry".into())
                })
            })
            .collect();
        let now = Instant::now();
        if state.pending_echoes.len() > ECHO_SWEEP_AT
            && now.duration_since(state.echoes_swept) >= ECHO_SWEEP_EVERY
        {
            state.echoes_swept = now;
            state.pending_echoes.retain(|_, queue| {
                queue.retain(|(_, at)| now.duration_since(*at) <= ECHO_TTL);
                !queue.is_empty()
            });
        }
        let revision = state.log.head();
        drop(state);
        if revision != before {
            self.head.send_replace(revision);
        }
        Ok(ApplyReport { outcomes, revision })
    }

    /// Records an entry (under the lock): slot, tombstone bookkeeping, log.
    fn write(&self, state: &mut State, entry: Entry) {
        let slot = Slot {
            version: entry.version,
            value: entry.value.clone(),
        };
        let was_live = state
            .entries
            .insert(entry.key.clone(), slot)
            .is_some_and(|old| !old.version.tombstone);
        self.account(state, entry, was_live);
    }

    /// What follows a write of `entry`'s slot: the live count, tombstone
    /// bookkeeping, the log.
    fn account(&self, state: &mut State, entry: Entry, was_live: bool) {
        let tombstone = entry.version.tombstone;
        match (was_live, tombstone) {
            (false, false) => state.live += 1,
            (true, true) => state.live -= 1,
            _ => {}
        }
        if tombstone {
            state
                .tombstones
                .push_back((entry.key.clone(), entry.version));
            while state.tombstones.len() > self.config.tombstones {
                let Some((key, version)) = state.tombstones.pop_front() else {
                    break;
                };
                // Forget it unless the key was written again since.
                if state
                    .entries
                    .get(&key)
                    .is_some_and(|s| s.version == version)
                {
                    state.entries.remove(&key);
                }
            }
        }
        state.log.append(entry);
    }

    /// Records the device's own changes, stamped with this node's clock.
    /// A change to what the agent already holds (the echo of an Apply) is
    /// dropped.
    pub fn record_local(&self, changes: Vec<LocalChange>) {
        let mut state = self.lock();
        let before = state.log.head();
        self.record_locked(&mut state, changes);
        let revision = state.log.head();
        drop(state);
        if revision != before {
            self.head.send_replace(revision);
        }
    }

    fn record_locked(&self, state: &mut State, changes: Vec<LocalChange>) {
        let now = Instant::now();
        for change in changes {
            if let Some(queue) = state.pending_echoes.get_mut(&change.key) {
                while queue
                    .front()
                    .is_some_and(|(_, at)| now.duration_since(*at) > ECHO_TTL)
                {
                    queue.pop_front();
                }
                let echo = queue
                    .front()
                    .is_some_and(|(value, _)| *value == change.value);
                if echo {
                    queue.pop_front();
                }
                if queue.is_empty() {
                    state.pending_echoes.remove(&change.key);
                }
                if echo {
                    continue;
                }
            }
            // One walk of the map finds the key and writes its new slot
            // (looking it up and then inserting walked it twice; with
            // hundreds of thousands of conntrack keys the comparisons of
            // those walks were the agent's largest cost).
            let (was_live, version) = match state.entries.entry(change.key.clone()) {
                btree_map::Entry::Occupied(mut slot) => {
                    if slot.get().value == change.value {
                        continue;
                    }
                    let version = Version {
                        clock: state.clock.now(),
                        origin: self.node_id,
                        tombstone: change.value.is_none(),
                    };
                    let old = slot.insert(Slot {
                        version,
                        value: change.value.clone(),
                    });
                    (!old.version.tombstone, version)
                }
                btree_map::Entry::Vacant(slot) => {
                    if change.value.is_none() {
                        continue;
                    }
                    let version = Version {
                        clock: state.clock.now(),
                        origin: self.node_id,
                        tombstone: false,
                    };
                    slot.insert(Slot {
                        version,
                        value: change.value.clone(),
                    });
                    (false, version)
                }
            };
            let entry = Entry {
                key: change.key,
                version,
                value: change.value,
            };
            self.account(state, entry, was_live);
        }
    }

    /// Compares the device's state with what the agent holds and records
    /// every difference as a local change (after lost change reports, and
    /// at start).
    ///
    /// # Errors
    /// [`AgentError::Backend`] when the backend's state cannot be read.
    pub fn resync(&self) -> Result<()> {
        let mut state = self.lock();
        let before = state.log.head();
        // Reports queued before the snapshot are contained in it, and so
        // are the echoes still owed.
        self.backend.changes().clear();
        state.pending_echoes.clear();
        let mut device = self.backend.snapshot()?;
        device.sort_by(|a, b| a.0.cmp(&b.0));
        let present: HashMap<&Key, ()> = device.iter().map(|(k, _)| (k, ())).collect();
        let mut changes: Vec<LocalChange> = state
            .entries
            .iter()
            .filter(|(key, slot)| slot.value.is_some() && !present.contains_key(key))
            .map(|(key, _)| LocalChange {
                key: key.clone(),
                value: None,
            })
            .collect();
        drop(present);
        changes.extend(device.into_iter().map(|(key, value)| LocalChange {
            key,
            value: Some(value),
        }));
        self.record_locked(&mut state, changes);
        let revision = state.log.head();
        drop(state);
        if revision != before {
            self.head.send_replace(revision);
        }
        Ok(())
    }

    /// Records the backend's change reports until `shutdown`; resyncs when
    /// reports were lost.
    pub async fn follow_backend(self: Arc<Self>, shutdown: CancellationToken) {
        let queue = self.backend.changes();
        loop {
            let delivery = tokio::select! {
                () = shutdown.cancelled() => return,
                delivery = queue.take(4096) => delivery,
            };
            match delivery {
                Delivery::Changes(changes) => self.record_local(changes),
                Delivery::Lost => {
                    tracing::warn!("device change reports were lost; resynchronising");
                    if let Err(error) = self.resync() {
                        // The loss is still unrepaired: try again, or the
                        // lost changes would wait for the next overrun.
                        tracing::error!(%error, "resynchronisation failed; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(RESYNC_RETRY) => {}
                        }
                        queue.mark_lost();
                    }
                }
            }
        }
    }

    /// Every live entry, consistent at the returned revision.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_where(|_| true)
    }

    /// [`Agent::snapshot`] of the keys in `partitions` among `count` (as
    /// [`Agent::digest`] splits them): what anti-entropy reads of the
    /// partitions that differ.
    ///
    /// # Errors
    /// [`AgentError::InvalidRequest`] for a `count` outside 1..=65536 or a
    /// partition not below it.
    pub fn snapshot_partitions(&self, count: u32, partitions: &[u32]) -> Result<Snapshot> {
        let wanted: HashSet<u32> = wanted_partitions(count, partitions)?.into_iter().collect();
        Ok(self.snapshot_where(|key| wanted.contains(&key.partition(count))))
    }

    /// The live entries whose key `keep` accepts, copied under the lock.
    fn snapshot_where(&self, keep: impl Fn(&Key) -> bool) -> Snapshot {
        let state = self.lock();
        let entries = state
            .entries
            .iter()
            .filter(|(key, slot)| !slot.version.tombstone && keep(key))
            .map(|(key, slot)| Entry {
                key: key.clone(),
                version: slot.version,
                value: slot.value.clone(),
            })
            .collect();
        Snapshot {
            revision: state.log.head(),
            epoch: self.epoch,
            entries,
        }
    }

    /// Checks that a watcher holding everything up to `after` in `epoch`
    /// (0: any) can resume.
    ///
    /// # Errors
    /// [`AgentError::RevisionTooOld`] or [`AgentError::UnknownRevision`].
    pub fn check_resume(&self, after: u64, epoch: u64) -> Result<()> {
        self.lock().log.check_resume(after, epoch)
    }

    /// Up to `max` changes after revision `after`, converted by `f` under
    /// the lock.
    ///
    /// # Errors
    /// [`AgentError::RevisionTooOld`] when the log dropped them, or
    /// [`AgentError::UnknownRevision`] beyond the head.
    pub fn changes_after<T>(
        &self,
        after: u64,
        max: usize,
        f: impl FnMut(&Entry) -> T,
    ) -> Result<Vec<T>> {
        self.lock().log.read_after(after, max, f)
    }

    /// Commits the device to take traffic over ([`Backend::commit`]),
    /// without the state lock: Apply and Watch go on meanwhile.
    ///
    /// # Errors
    /// [`AgentError::Backend`] when the device cannot be written.
    pub fn commit(&self) -> Result<CommitReport> {
        let report = self.backend.commit()?;
        if report.committed > 0 {
            tracing::info!(
                committed = report.committed,
                vanished = report.vanished,
                "committed the device's own TCP connections to liberal tracking"
            );
        }
        Ok(report)
    }

    /// SHA-256 digest and count of the live entries of each of `partitions`
    /// (all when empty) among `count` partitions.
    ///
    /// # Errors
    /// [`AgentError::InvalidRequest`] for a count of 0 or above 65536, or a
    /// partition not below it.
    pub fn digest(&self, count: u32, partitions: &[u32]) -> Result<DigestReport> {
        let wanted = wanted_partitions(count, partitions)?;
        let mut hashers: HashMap<u32, (Sha256, u64)> =
            wanted.iter().map(|&p| (p, (Sha256::new(), 0))).collect();
        // The entries are copied under the lock and hashed after it: encoding
        // and hashing cost ten times the copy, and Apply waits on the lock.
        let Snapshot {
            revision, entries, ..
        } = self.snapshot_where(|key| hashers.contains_key(&key.partition(count)));
        let mut buf = Vec::with_capacity(256);
        for entry in entries {
            let Some((hasher, n)) = hashers.get_mut(&entry.key.partition(count)) else {
                continue;
            };
            buf.clear();
            entry_to_wire(&entry)
                .encode_length_delimited(&mut buf)
                .unwrap_or_else(|e| unreachable!("a Vec grows as needed: {e}"));
            hasher.update(&buf);
            *n += 1;
        }
        let partitions = wanted
            .iter()
            .map(|p| {
                let (hasher, count) = hashers.get(p).cloned().unwrap_or_default();
                PartitionDigest {
                    partition: *p,
                    digest: hasher.finalize().into(),
                    count,
                }
            })
            .collect();
        Ok(DigestReport {
            revision,
            epoch: self.epoch,
            partitions,
        })
    }

    /// Live entries, as [`Agent::health`] counts them, without asking the
    /// backend about problems (the Linux backend reads the namespace's
    /// metrics for that, on the thread its Applies use).
    pub fn live_entries(&self) -> u64 {
        self.lock().live as u64
    }

    /// The agent's health and the log's bounds.
    pub fn health(&self) -> HealthReport {
        let problems = self.backend.problems();
        let state = self.lock();
        HealthReport {
            node_id: self.node_id,
            backend: self.backend.kind(),
            epoch: self.epoch,
            head_revision: state.log.head(),
            oldest_revision: state.log.oldest(),
            entries: state.live as u64,
            uptime: self.started.elapsed(),
            problems,
        }
    }
}

/// The partitions asked for among `count`, in the order asked (every one,
/// ascending, when `partitions` is empty).
///
/// # Errors
/// [`AgentError::InvalidRequest`] for a `count` outside 1..=65536 or a
/// partition not below it.
fn wanted_partitions(count: u32, partitions: &[u32]) -> Result<Vec<u32>> {
    if !(1..=65_536).contains(&count) {
        return Err(AgentError::InvalidRequest(format!(
            "partition_count {count} is not in 1..=65536"
        )));
    }
    let bad: Vec<String> = partitions
        .iter()
        .filter(|&&p| p >= count)
        .map(u32::to_string)
        .collect();
    if !bad.is_empty() {
        return Err(AgentError::InvalidRequest(format!(
            "partitions {} are not below partition_count {count}",
            bad.join(", ")
        )));
    }
    Ok(if partitions.is_empty() {
        (0..count).collect()
    } else {
        partitions.to_vec()
    })
}
