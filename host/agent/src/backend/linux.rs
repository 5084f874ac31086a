//! The Linux device: a network namespace acting as router and stateful
//! firewall, read and written through [`umbra_netlink`] — conntrack over
//! ctnetlink, routes of the configured tables over rtnetlink, and the
//! nftables tables as nft JSON.
//!
//! Changes reach the agent two ways. Conntrack changes come from the
//! kernel's event groups on a thread of their own; when the kernel drops
//! events (`ENOBUFS`) the queue reports [`super::Delivery::Lost`] and the
//! agent resyncs from a snapshot. Routes and nftables have no event feed
//! here, so a second thread polls them every
//! [`LinuxConfig::poll_interval`] and reports the difference from what it
//! saw last. Both threads stop when the backend is dropped.
//!
//! Echoes: Apply writes into the kernel, reports the applied value itself
//! and remembers it as seen, so the kernel's event (or the next poll) for
//! the same value is not reported again. The events of Apply's conntrack
//! creates and updates do not even reach the backend: the kernel names
//! the socket that caused an event, and the event reader skips those of
//! Apply's socket ([`umbra_netlink::Conntrack::subscribe_skipping`]); what
//! follows covers the rest (deletes, and events of a socket reopened
//! after an error). Conntrack values are compared
//! without their timeout (it counts down all the time and packets refresh
//! it without any event) and without the status bits the kernel manages
//! itself ([`same_conntrack`]); events that arrive late, after further
//! writes of the same key, are matched against the key's recent writes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use foldhash::{HashMap, HashSet};
use serde_json::{Value as Json, json};
use umbra_netlink::{
    ConntrackEntry, ConntrackEvent, ConntrackTuple, ConntrackWriter, Errno, L4Tuple, NetNs, Route,
    TcpInfo, tcp_flag,
};

use super::{Backend, ChangeQueue, CommitReport, InterfaceReading, MetricsReading};
use crate::error::{AgentError, Result};
use crate::model::{
    ConntrackKey, ConntrackValue, IPS_ASSURED, IPS_SEEN_REPLY, IPS_SRC_NAT, Key, L4, LocalChange,
    NftFamily, NftTableKey, NftTableValue, Prefix, Rejected, RouteKey, RouteValue, TcpState, Tuple,
    Value,
};

/// `IPS_DST_NAT`: destination NAT.
const IPS_DST_NAT: u32 = 0x20;
/// Status bits that say something about the connection; the others
/// (`CONFIRMED`, `*_NAT_DONE`, `DYING`...) are the kernel's bookkeeping and
/// differ between an entry and its replica.
const MEANINGFUL_STATUS: u32 = IPS_SEEN_REPLY | IPS_ASSURED | IPS_SRC_NAT | IPS_DST_NAT;
/// Conntrack events after an Apply of the same key that are taken as its
/// echo when they differ from it only in status bits: a replica with labels
/// is created first and updated in a second step, with an event each (and
/// writers other than this agent may do the same).
const APPLY_ECHO_WINDOW: Duration = Duration::from_secs(2);

/// How the Linux device is reached and watched.
#[derive(Debug, Clone)]
pub struct LinuxConfig {
    /// The namespace, as `ip netns` names it (`/run/netns/NAME`).
    pub netns: String,
    /// Routing tables whose routes are the device's state (254 is `main`).
    pub route_tables: Vec<u32>,
    /// How often routes and the nftables ruleset are read for changes.
    pub poll_interval: Duration,
    /// Capacity of the change queue towards the agent.
    pub change_queue: usize,
    /// Conntrack events buffered between the kernel socket and the backend.
    pub event_queue: usize,
    /// Receive buffer of the conntrack event socket, bytes (about 1 KiB
    /// per event); when it overflows the agent resyncs.
    pub event_socket_buffer: usize,
    /// cgroup v2 whose CPU and memory are the device's (absolute, or
    /// relative to the cgroup mount); `None` reports no CPU and memory use.
    pub cgroup: Option<PathBuf>,
    /// nftables tables (by name) that are this device's own business, not
    /// its state: neither reported nor replicated (a lab's fault
    /// injection, a management plane's filter).
    pub local_nft_tables: Vec<String>,
    /// Conntrack entries carrying this mark are the device's own, not
    /// state: neither reported nor replicated (they still count in the
    /// table's fill).
    pub local_conntrack_mark: Option<u32>,
}

impl LinuxConfig {
    /// The defaults for namespace `netns`: the `main` table, polled twice a
    /// second.
    pub fn new(netns: impl Into<String>) -> Self {
        Self {
            netns: netns.into(),
            route_tables: vec![254],
            poll_interval: Duration::from_millis(500),
            change_queue: 1 << 18,
            event_queue: 1 << 16,
            event_socket_buffer: 64 << 20,
            cgroup: None,
            local_nft_tables: Vec::new(),
            local_conntrack_mark: None,
        }
    }
}

/// What the backend last reported for each key (or applied), so that only
/// real differences are reported.
#[derive(Debug, Default)]
struct Seen {
    conntrack: HashMap<ConntrackKey, ConntrackValue>,
    /// What Apply recently wrote for each key, to recognise the kernel's
    /// events about those writes, which can arrive after later writes.
    applied: HashMap<ConntrackKey, RecentApplies>,
    routes: BTreeMap<RouteKey, RouteValue>,
    nft: BTreeMap<NftTableKey, NftTableValue>,
    /// TCP entries the kernel tracks with sequence windows (not liberal in
    /// both directions): the device's own connections. Apply writes
    /// entries liberal; [`Backend::commit`] makes these liberal too.
    strict: HashSet<ConntrackKey>,
    /// Bumped by every Apply of a route or table: a poll that read the
    /// kernel before it is stale and is discarded.
    generation: u64,
    /// When `applied` was last swept of old writes (`None`: never).
    swept: Option<Instant>,
}

impl Seen {
    /// Remembers an Apply's write of `key` so that the kernel's late
    /// events about it are recognised.
    fn remember_apply(&mut self, key: &ConntrackKey, value: Option<&ConntrackValue>, now: Instant) {
        self.sweep_applied(now);
        self.remember_write(key, value, now);
    }

    /// Forgets writes older than [`APPLY_ECHO_WINDOW`], at most a few times
    /// per window: sweeping at every write made deleting many entries
    /// quadratic. Events look writes up with the window themselves, so a
    /// write kept a little longer is never taken for a recent one.
    fn sweep_applied(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|at| now.duration_since(at) < APPLY_ECHO_WINDOW / 4)
        {
            return;
        }
        self.swept = Some(now);
        self.applied
            .retain(|_, recent| now.duration_since(recent.last) < APPLY_ECHO_WINDOW);
    }

    /// [`Seen::remember_apply`] without sweeping.
    fn remember_write(&mut self, key: &ConntrackKey, value: Option<&ConntrackValue>, now: Instant) {
        match self.applied.entry(*key) {
            std::collections::hash_map::Entry::Occupied(mut recent) => {
                recent.get_mut().push(value.copied(), now);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(RecentApplies {
                    last: now,
                    latest: value.copied(),
                    older: Vec::new(),
                });
            }
        }
    }
}

/// The values Apply wrote for one key (`None`: deleted) within
/// [`APPLY_ECHO_WINDOW`] of each other. The latest is held inline: most
/// keys are written once, and a vector each cost an allocation per
/// applied entry.
#[derive(Debug, Clone)]
struct RecentApplies {
    last: Instant,
    latest: Option<ConntrackValue>,
    /// Earlier writes, oldest first; at most [`RECENT_APPLIES`] - 1.
    older: Vec<Option<ConntrackValue>>,
}

impl RecentApplies {
    fn push(&mut self, value: Option<ConntrackValue>, now: Instant) {
        self.last = now;
        if self.older.len() + 1 == RECENT_APPLIES {
            self.older.remove(0);
        }
        self.older.push(std::mem::replace(&mut self.latest, value));
    }

    /// Every remembered write, oldest first.
    fn values(&self) -> impl Iterator<Item = &Option<ConntrackValue>> {
        self.older.iter().chain(std::iter::once(&self.latest))
    }
}

/// Writes remembered per key; older ones are forgotten.
const RECENT_APPLIES: usize = 8;

#[derive(Debug)]
struct Shared {
    config: LinuxConfig,
    queue: Arc<ChangeQueue>,
    // Synchronous: no `.await` happens under this lock. Apply holds it
    // across its kernel write so that the write's echo, read on another
    // thread, is compared with the applied value.
    seen: Mutex<Seen>,
    // Synchronous: no `.await` happens under this lock.
    problems: Mutex<BTreeMap<&'static str, String>>,
    stop: AtomicBool,
}

impl Shared {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_problem(&self, source: &'static str, problem: Option<String>) {
        let mut problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        match problem {
            Some(p) => problems.insert(source, p),
            None => problems.remove(source),
        };
    }
}

/// The device of a Linux network namespace.
#[derive(Debug)]
pub struct LinuxBackend {
    shared: Arc<Shared>,
    /// Apply, snapshot and metrics; the watcher threads have their own
    /// handles so a slow poll does not delay an Apply.
    ns: NetNs,
    // Synchronous: no `.await` happens under this lock.
    cpu: Mutex<Option<(Instant, u64)>>,
    threads: Vec<JoinHandle<()>>,
}

impl LinuxBackend {
    /// Opens the namespace, reads what it holds, and starts watching it.
    ///
    /// # Errors
    /// [`AgentError::LinuxBackendUnavailable`] when the namespace cannot be
    /// entered; [`AgentError::Backend`] when conntrack events cannot be
    /// subscribed to or the state cannot be read.
    pub fn open(config: LinuxConfig) -> Result<Self> {
        let open = |config: &LinuxConfig| {
            NetNs::named(&config.netns).map_err(|e| AgentError::LinuxBackendUnavailable {
                netns: config.netns.clone(),
                reason: e.to_string(),
            })
        };
        let ns = open(&config)?;
        let events_ns = open(&config)?;
        let poll_ns = open(&config)?;
        // The events of Apply's own creates and updates are skipped by the
        // reader: Apply reports what it wrote itself (below), and on a
        // shadow that is every entry it holds.
        let writer = ns.conntrack_writer();
        let events = events_ns
            .conntrack()
            .subscribe_skipping(
                config.event_queue,
                config.event_socket_buffer,
                writer.clone(),
            )
            .map_err(backend_error)?;
        let shared = Arc::new(Shared {
            queue: Arc::new(ChangeQueue::new(config.change_queue)),
            seen: Mutex::new(Seen::default()),
            problems: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            config,
        });
        // Subscribed before reading: what changes from here on is reported.
        read_state(&shared, &ns)?;
        let mut threads = Vec::new();
        let watcher = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name("linux-ct-events".into())
                .spawn(move || watch_conntrack(&watcher, &events_ns, &writer, events))
                .map_err(|e| AgentError::Backend(format!("cannot start a thread: {e}")))?,
        );
        let poller = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name("linux-poll".into())
                .spawn(move || poll(&poller, &poll_ns))
                .map_err(|e| AgentError::Backend(format!("cannot start a thread: {e}")))?,
        );
        Ok(Self {
            shared,
            ns,
            cpu: Mutex::new(None),
            threads,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LinuxConfig {
        &self.shared.config
    }

    /// Reports a change the backend made; called under the `seen` lock so
    /// that it is queued before any kernel echo of it.
    fn report(&self, key: Key, value: Option<Value>) {
        self.shared.queue.push(LocalChange { key, value });
    }

    fn apply_conntrack(
        &self,
        key: &ConntrackKey,
        value: Option<&ConntrackValue>,
    ) -> Result<(), Rejected> {
        let mut seen = self.shared.seen();
        match value {
            Some(value) => {
                self.ns
                    .conntrack()
                    .create(&conntrack_to_netlink(key, value, true))
                    .map_err(rejected)?;
                seen.conntrack.insert(*key, *value);
                seen.strict.remove(key);
                self.report(Key::Conntrack(*key), Some(Value::Conntrack(*value)));
            }
            None => {
                match self
                    .ns
                    .conntrack()
                    .delete(&tuple_to_netlink(&key.original), key.zone)
                {
                    Err(e) if e.errno() == Some(Errno::ENOENT) => {}
                    other => other.map_err(rejected)?,
                }
                seen.conntrack.remove(key);
                seen.strict.remove(key);
                self.report(Key::Conntrack(*key), None);
            }
        }
        seen.remember_apply(key, value, Instant::now());
        Ok(())
    }

    /// Creates or updates conntrack entries of distinct keys with as few
    /// netlink messages as the kernel allows
    /// ([`umbra_netlink::Conntrack::create_batch`]); one result per entry.
    fn upsert_conntrack(
        &self,
        run: &[(ConntrackKey, ConntrackValue)],
    ) -> Vec<Result<(), Rejected>> {
        let entries: Vec<ConntrackEntry> = run
            .iter()
            .map(|(k, v)| conntrack_to_netlink(k, v, true))
            .collect();
        let mut seen = self.shared.seen();
        let outcome = match self.ns.conntrack().create_batch(&entries) {
            Ok(outcome) => outcome,
            Err(_) => {
                // The socket failed part-way: which entries were written
                // is unknown, so each is written again on its own to get
                // its own answer (writes are upserts).
                drop(seen);
                return run
                    .iter()
                    .map(|(k, v)| self.apply_conntrack(k, Some(v)))
                    .collect();
            }
        };
        let mut results: Vec<Result<(), Rejected>> = vec![Ok(()); run.len()];
        for (i, error) in outcome.failures {
            results[i] = Err(rejected(error));
        }
        let now = Instant::now();
        seen.sweep_applied(now);
        let mut reports = Vec::with_capacity(run.len());
        for ((key, value), result) in run.iter().zip(&results) {
            if result.is_ok() {
                seen.conntrack.insert(*key, *value);
                seen.strict.remove(key);
                reports.push(LocalChange {
                    key: Key::Conntrack(*key),
                    value: Some(Value::Conntrack(*value)),
                });
                seen.remember_write(key, Some(value), now);
            }
        }
        // Queued under `seen`, as single reports are, in one lock of the
        // queue.
        self.shared.queue.push_all(reports);
        results
    }

    fn apply_route(&self, key: &RouteKey, value: Option<&RouteValue>) -> Result<(), Rejected> {
        if !self.shared.config.route_tables.contains(&key.table) {
            return Err(Rejected(format!(
                "routing table {} is not one this device replicates ({:?})",
                key.table, self.shared.config.route_tables
            )));
        }
        let mut seen = self.shared.seen();
        match value {
            Some(value) => {
                self.ns
                    .routes()
                    .replace(&route_to_netlink(key, Some(value)))
                    .map_err(rejected)?;
                seen.routes.insert(key.clone(), value.clone());
                self.report(Key::Route(key.clone()), Some(Value::Route(value.clone())));
            }
            None => {
                match self.ns.routes().delete(&route_to_netlink(key, None)) {
                    Err(e) if e.errno() == Some(Errno::ESRCH) => {}
                    other => other.map_err(rejected)?,
                }
                seen.routes.remove(key);
                self.report(Key::Route(key.clone()), None);
            }
        }
        seen.generation += 1;
        Ok(())
    }

    fn apply_nft(&self, key: &NftTableKey, value: Option<&NftTableValue>) -> Result<(), Rejected> {
        let family = key.family.name();
        let mut seen = self.shared.seen();
        match value {
            Some(value) => {
                let ruleset: Json = serde_json::from_str(&value.ruleset_json)
                    .map_err(|e| Rejected(format!("nftables table is not JSON: {e}")))?;
                self.ns
                    .nftables()
                    .apply_table(family, &key.name, &ruleset)
                    .map_err(rejected)?;
                seen.nft.insert(key.clone(), value.clone());
                self.report(
                    Key::NftTable(key.clone()),
                    Some(Value::NftTable(value.clone())),
                );
            }
            None => {
                // `add` then `delete` in one transaction: deleting a table
                // that is not there succeeds (nft 1.0.6 has no `destroy`).
                let table = json!({ "family": family, "name": key.name });
                let tx = json!({ "nftables": [
                    { "add": { "table": table.clone() } },
                    { "delete": { "table": table } },
                ]});
                self.ns
                    .run(move || run_nft_stdin(&tx.to_string()))
                    .map_err(rejected)?
                    .map_err(Rejected)?;
                seen.nft.remove(key);
                self.report(Key::NftTable(key.clone()), None);
            }
        }
        seen.generation += 1;
        Ok(())
    }
}

impl Drop for LinuxBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Backend for LinuxBackend {
    fn kind(&self) -> &'static str {
        "linux"
    }

    /// Makes every TCP entry still tracked with sequence windows liberal
    /// (`IP_CT_TCP_FLAG_BE_LIBERAL` both ways), as replicated entries are
    /// written: the device's own connections went on through the peer
    /// since it last forwarded them, and their sequence numbers with them.
    /// Only the entries known to be strict are written, so a standby's
    /// commit costs next to nothing; an entry that could not be written
    /// stays known for the next commit.
    fn commit(&self) -> Result<CommitReport> {
        let keys: Vec<ConntrackKey> = std::mem::take(&mut self.shared.seen().strict)
            .into_iter()
            .collect();
        if keys.is_empty() {
            return Ok(CommitReport::default());
        }
        let tuples: Vec<(ConntrackTuple, u16)> = keys
            .iter()
            .map(|k| (tuple_to_netlink(&k.original), k.zone))
            .collect();
        let outcome = match self
            .ns
            .conntrack()
            .set_tcp_flags(&tuples, tcp_flag::BE_LIBERAL)
        {
            Ok(outcome) => outcome,
            Err(e) => {
                self.shared.seen().strict.extend(keys);
                return Err(backend_error(e));
            }
        };
        let mut report = CommitReport {
            committed: outcome.updated as u64,
            vanished: 0,
        };
        let mut failed = Vec::new();
        for (i, error) in outcome.failures {
            if error.errno() == Some(Errno::ENOENT) {
                report.vanished += 1;
            } else {
                failed.push((keys[i], error));
            }
        }
        if let Some((_, first)) = failed.first() {
            let message = format!(
                "{} of {} conntrack entries could not be made liberal, the first: {first}",
                failed.len(),
                keys.len()
            );
            self.shared
                .seen()
                .strict
                .extend(failed.iter().map(|(k, _)| *k));
            return Err(AgentError::Backend(message));
        }
        Ok(report)
    }

    fn snapshot(&self) -> Result<Vec<(Key, Value)>> {
        read_state(&self.shared, &self.ns)
    }

    fn apply(&self, key: &Key, value: Option<&Value>) -> Result<(), Rejected> {
        match (key, value) {
            (Key::Conntrack(k), None) => self.apply_conntrack(k, None)?,
            (Key::Conntrack(k), Some(Value::Conntrack(v))) => self.apply_conntrack(k, Some(v))?,
            (Key::Route(k), None) => self.apply_route(k, None)?,
            (Key::Route(k), Some(Value::Route(v))) => self.apply_route(k, Some(v))?,
            (Key::NftTable(k), None) => self.apply_nft(k, None)?,
            (Key::NftTable(k), Some(Value::NftTable(v))) => self.apply_nft(k, Some(v))?,
            (key, Some(value)) => {
                return Err(Rejected(format!(
                    "value {value:?} does not belong to {key:?}"
                )));
            }
        }
        Ok(())
    }

    fn apply_batch(&self, entries: &[(&Key, Option<&Value>)]) -> Vec<Result<(), Rejected>> {
        // Runs of conntrack upserts of distinct keys go to the kernel in
        // batches; anything else (deletes, routes, tables, a key's second
        // write) ends the run and is written on its own, so the device
        // sees the writes in order.
        let mut results = Vec::with_capacity(entries.len());
        let mut run: Vec<(ConntrackKey, ConntrackValue)> = Vec::new();
        let mut keys = HashSet::default();
        for &(key, value) in entries {
            if let (Key::Conntrack(k), Some(Value::Conntrack(v))) = (key, value)
                && keys.insert(*k)
            {
                run.push((*k, *v));
                continue;
            }
            if !run.is_empty() {
                results.extend(self.upsert_conntrack(&run));
                run.clear();
                keys.clear();
            }
            if let (Key::Conntrack(k), Some(Value::Conntrack(v))) = (key, value) {
                keys.insert(*k);
                run.push((*k, *v));
            } else {
                results.push(self.apply(key, value));
            }
        }
        if !run.is_empty() {
            results.extend(self.upsert_conntrack(&run));
        }
        results
    }

    fn changes(&self) -> Arc<ChangeQueue> {
        Arc::clone(&self.shared.queue)
    }

    fn metrics(&self) -> MetricsReading {
        let metrics = match self.ns.metrics(self.shared.config.cgroup.as_deref()) {
            Ok(m) => {
                self.shared.set_problem("metrics", None);
                m
            }
            Err(e) => {
                self.shared
                    .set_problem("metrics", Some(format!("cannot read metrics: {e}")));
                return MetricsReading::default();
            }
        };
        let mut reading = MetricsReading {
            interfaces: metrics
                .interfaces
                .into_iter()
                .map(|i| InterfaceReading {
                    name: i.name,
                    rx_bytes: i.rx_bytes,
                    tx_bytes: i.tx_bytes,
                    rx_packets: i.rx_packets,
                    tx_packets: i.tx_packets,
                    rx_drops: i.rx_dropped,
                    tx_drops: i.tx_dropped,
                })
                .collect(),
            conntrack_count: metrics.conntrack_count,
            conntrack_max: metrics.conntrack_max,
            memory_total_bytes: memory_total_bytes(),
            ..MetricsReading::default()
        };
        if let Some(cgroup) = metrics.cgroup {
            reading.memory_used_bytes = cgroup.memory_current.unwrap_or(0);
            let now = Instant::now();
            let mut last = self.cpu.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((then, usage)) = *last {
                let wall = now.duration_since(then).as_secs_f64();
                let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
                if wall > 0.0 {
                    let used = cgroup.cpu_usage_usec.saturating_sub(usage) as f64 / 1e6;
                    reading.cpu = (used / wall / cpus).clamp(0.0, 1.0);
                }
            }
            *last = Some((now, cgroup.cpu_usage_usec));
        }
        reading
    }

    fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .shared
            .problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        if let Ok(m) = self.ns.metrics(None)
            && m.conntrack_max > 0
            && m.conntrack_count * 10 >= m.conntrack_max * 9
        {
            problems.push(format!(
                "conntrack table {} of {} entries full",
                m.conntrack_count, m.conntrack_max
            ));
        }
        problems
    }
}

fn backend_error(e: umbra_netlink::Error) -> AgentError {
    AgentError::Backend(e.to_string())
}

/// The kernel's refusal as the entry's; the netlink error's text carries
/// the errno and what it means for the facility.
fn rejected(e: umbra_netlink::Error) -> Rejected {
    Rejected(e.to_string())
}

/// Reads the whole state and makes it what the backend has seen.
fn read_state(shared: &Shared, ns: &NetNs) -> Result<Vec<(Key, Value)>> {
    let routes = read_routes(ns, &shared.config.route_tables).map_err(backend_error)?;
    let nft = read_nft(ns, &shared.config.local_nft_tables).map_err(backend_error)?;
    let mut seen = shared.seen();
    // Under the lock: events read meanwhile are compared with the dump.
    let mut strict = HashSet::default();
    let conntrack: HashMap<ConntrackKey, ConntrackValue> = ns
        .conntrack()
        .dump()
        .map_err(backend_error)?
        .iter()
        .filter(|e| Some(e.mark) != shared.config.local_conntrack_mark)
        .map(|e| {
            let (key, value) = conntrack_from_netlink(e);
            if is_strict(e) == Some(true) {
                strict.insert(key);
            }
            (key, value)
        })
        .collect();
    let mut out = Vec::with_capacity(conntrack.len() + routes.len() + nft.len());
    out.extend(
        conntrack
            .iter()
            .map(|(k, v)| (Key::Conntrack(*k), Value::Conntrack(*v))),
    );
    out.extend(
        routes
            .iter()
            .map(|(k, v)| (Key::Route(k.clone()), Value::Route(v.clone()))),
    );
    out.extend(
        nft.iter()
            .map(|(k, v)| (Key::NftTable(k.clone()), Value::NftTable(v.clone()))),
    );
    seen.conntrack = conntrack;
    seen.strict = strict;
    seen.routes = routes;
    seen.nft = nft;
    seen.generation += 1;
    Ok(out)
}

fn read_routes(
    ns: &NetNs,
    tables: &[u32],
) -> umbra_netlink::Result<BTreeMap<RouteKey, RouteValue>> {
    let mut out = BTreeMap::new();
    for &table in tables {
        for route in ns.routes().dump(table)? {
            if let Some((key, value)) = route_from_netlink(&route) {
                out.insert(key, value);
            }
        }
    }
    Ok(out)
}

/// The device's nftables tables, but for its local ones.
fn read_nft(
    ns: &NetNs,
    local: &[String],
) -> umbra_netlink::Result<BTreeMap<NftTableKey, NftTableValue>> {
    let mut tables = nft_tables(&ns.nftables().ruleset()?);
    tables.retain(|key, _| !local.contains(&key.name));
    Ok(tables)
}

/// The conntrack watcher: reports kernel events until the backend stops;
/// resubscribes (and has the agent resync) if the event stream breaks.
fn watch_conntrack(
    shared: &Shared,
    ns: &NetNs,
    writer: &ConntrackWriter,
    events: umbra_netlink::ConntrackEvents,
) {
    let mut events = Some(events);
    while !shared.stop.load(Ordering::Relaxed) {
        let Some(stream) = &events else {
            std::thread::sleep(Duration::from_millis(200));
            match ns.conntrack().subscribe_skipping(
                shared.config.event_queue,
                shared.config.event_socket_buffer,
                writer.clone(),
            ) {
                Ok(stream) => {
                    events = Some(stream);
                    shared.set_problem("conntrack events", None);
                    // What changed while unsubscribed is unknown.
                    shared.queue.mark_lost();
                }
                Err(e) => shared.set_problem(
                    "conntrack events",
                    Some(format!("cannot subscribe to conntrack events: {e}")),
                ),
            }
            continue;
        };
        match stream.recv_batch(Duration::from_millis(100)) {
            Ok(batch) => conntrack_events(shared, batch),
            Err(e) => {
                shared.set_problem(
                    "conntrack events",
                    Some(format!("conntrack event stream broke: {e}")),
                );
                events = None;
            }
        }
    }
}

/// Reports the events that say something new, in order, under one lock
/// of `seen` and one of the change queue per batch.
fn conntrack_events(shared: &Shared, events: Vec<ConntrackEvent>) {
    if events.is_empty() {
        return;
    }
    let mut changes = Vec::with_capacity(events.len());
    let mut seen = shared.seen();
    for event in events {
        let (entry, live) = match event {
            ConntrackEvent::New(e) | ConntrackEvent::Update(e) => (e, true),
            ConntrackEvent::Destroy(e) => (e, false),
            ConntrackEvent::Overrun => {
                tracing::warn!("conntrack events overran; the agent resyncs");
                shared.queue.push_all(changes.drain(..));
                shared.queue.mark_lost();
                continue;
            }
        };
        if Some(entry.mark) == shared.config.local_conntrack_mark {
            continue;
        }
        let (key, value) = conntrack_from_netlink(&entry);
        match (live, is_strict(&entry)) {
            (true, Some(true)) => {
                seen.strict.insert(key);
            }
            (true, None) => {}
            (true, Some(false)) | (false, _) => {
                seen.strict.remove(&key);
            }
        }
        let value = live.then_some(value);
        let recent = seen
            .applied
            .get(&key)
            .filter(|r| r.last.elapsed() < APPLY_ECHO_WINDOW);
        if is_echo(seen.conntrack.get(&key), recent, value.as_ref()) {
            continue;
        }
        match value {
            Some(v) => seen.conntrack.insert(key, v),
            None => seen.conntrack.remove(&key),
        };
        changes.push(LocalChange {
            key: Key::Conntrack(key),
            value: value.map(Value::Conntrack),
        });
    }
    // Queued under `seen`, as a single report would be: before any
    // Apply's report of a later write.
    shared.queue.push_all(changes);
    drop(seen);
}

/// Whether a TCP entry is tracked with sequence windows in either
/// direction (`None`: not TCP, or no TCP details given).
fn is_strict(entry: &ConntrackEntry) -> Option<bool> {
    entry
        .tcp
        .map(|tcp| tcp.flags_original & tcp.flags_reply & tcp_flag::BE_LIBERAL == 0)
}

/// Whether a conntrack event (`None`: destroyed) says nothing new: the
/// same as what was last reported, or the kernel's account of one of the
/// recent writes of Apply. A write's events come late (after later writes
/// of the same key) and in steps: the entry first, its status bits in a
/// second message, so they are matched without their status.
fn is_echo(
    seen: Option<&ConntrackValue>,
    recent: Option<&RecentApplies>,
    event: Option<&ConntrackValue>,
) -> bool {
    let without_status = |v: &ConntrackValue| ConntrackValue {
        status: 0,
        timeout_seconds: 0,
        ..*v
    };
    if let (Some(old), Some(new)) = (seen, event)
        && same_conntrack(old, new)
    {
        return true;
    }
    recent.is_some_and(|r| {
        r.values().any(|applied| match (applied, event) {
            (Some(a), Some(e)) => without_status(a) == without_status(e),
            (None, None) => true,
            _ => false,
        })
    })
}

/// Whether two values of one conntrack key say the same about the
/// connection: equal but for the timeout and the kernel's bookkeeping
/// status bits.
pub fn same_conntrack(a: &ConntrackValue, b: &ConntrackValue) -> bool {
    a.status & MEANINGFUL_STATUS == b.status & MEANINGFUL_STATUS
        && ConntrackValue {
            timeout_seconds: 0,
            status: 0,
            ..*a
        } == ConntrackValue {
            timeout_seconds: 0,
            status: 0,
            ..*b
        }
}

/// The poller: reads routes and nftables every poll interval and reports
/// what differs from what was seen.
fn poll(shared: &Shared, ns: &NetNs) {
    let mut next = Instant::now() + shared.config.poll_interval;
    while !shared.stop.load(Ordering::Relaxed) {
        // Short sleeps so that dropping the backend is quick.
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next = now + shared.config.poll_interval;
        let generation = shared.seen().generation;
        let read = read_routes(ns, &shared.config.route_tables)
            .and_then(|routes| Ok((routes, read_nft(ns, &shared.config.local_nft_tables)?)));
        let (routes, nft) = match read {
            Ok(state) => {
                shared.set_problem("poll", None);
                state
            }
            Err(e) => {
                shared.set_problem("poll", Some(format!("cannot read routes or nftables: {e}")));
                continue;
            }
        };
        let mut seen = shared.seen();
        if seen.generation != generation {
            // An Apply or snapshot came between the read and now.
            continue;
        }
        let mut changes = diff(&seen.routes, &routes, Key::Route, Value::Route);
        changes.extend(diff(&seen.nft, &nft, Key::NftTable, Value::NftTable));
        seen.routes = routes;
        seen.nft = nft;
        for change in changes {
            shared.queue.push(change);
        }
    }
}

/// The changes from `old` to `new`, as local changes.
fn diff<K: Ord + Clone, V: PartialEq + Clone>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    key: impl Fn(K) -> Key,
    value: impl Fn(V) -> Value,
) -> Vec<LocalChange> {
    let gone = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| LocalChange {
            key: key(k.clone()),
            value: None,
        });
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| LocalChange {
            key: key(k.clone()),
            value: Some(value(v.clone())),
        });
    gone.chain(changed).collect()
}

fn run_nft_stdin(input: &str) -> std::result::Result<(), String> {
    use std::io::Write as _;
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn memory_total_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

// Conversions between the netlink types and the model.

/// The model's tuple of a netlink tuple.
pub fn tuple_from_netlink(t: &ConntrackTuple) -> Tuple {
    let l4 = match t.l4 {
        L4Tuple::Ports { src, dst } => L4::Ports {
            protocol: t.protocol,
            source: src,
            destination: dst,
        },
        L4Tuple::Icmp { id, kind, code } => L4::Icmp {
            protocol: t.protocol,
            kind,
            code,
            id,
        },
        L4Tuple::None => L4::Other {
            protocol: t.protocol,
        },
    };
    Tuple {
        source: t.src,
        destination: t.dst,
        l4,
    }
}

/// The netlink tuple of a model tuple.
pub fn tuple_to_netlink(t: &Tuple) -> ConntrackTuple {
    let l4 = match t.l4 {
        L4::Ports {
            source,
            destination,
            ..
        } => L4Tuple::Ports {
            src: source,
            dst: destination,
        },
        L4::Icmp { kind, code, id, .. } => L4Tuple::Icmp { id, kind, code },
        L4::Other { .. } => L4Tuple::None,
    };
    ConntrackTuple {
        src: t.source,
        dst: t.destination,
        protocol: t.l4.protocol(),
        l4,
    }
}

fn tcp_state_from_netlink(s: umbra_netlink::TcpState) -> TcpState {
    use umbra_netlink::TcpState as N;
    match s {
        N::None => TcpState::None,
        N::SynSent => TcpState::SynSent,
        N::SynRecv => TcpState::SynRecv,
        N::Established => TcpState::Established,
        N::FinWait => TcpState::FinWait,
        N::CloseWait => TcpState::CloseWait,
        N::LastAck => TcpState::LastAck,
        N::TimeWait => TcpState::TimeWait,
        N::Close => TcpState::Close,
        N::SynSent2 => TcpState::SynSent2,
    }
}

fn tcp_state_to_netlink(s: TcpState) -> umbra_netlink::TcpState {
    use umbra_netlink::TcpState as N;
    match s {
        TcpState::None => N::None,
        TcpState::SynSent => N::SynSent,
        TcpState::SynRecv => N::SynRecv,
        TcpState::Established => N::Established,
        TcpState::FinWait => N::FinWait,
        TcpState::CloseWait => N::CloseWait,
        TcpState::LastAck => N::LastAck,
        TcpState::TimeWait => N::TimeWait,
        TcpState::Close => N::Close,
        TcpState::SynSent2 => N::SynSent2,
    }
}

/// The model's key and value of a conntrack entry. Window scales and TCP
/// flags are not part of the model.
pub fn conntrack_from_netlink(e: &ConntrackEntry) -> (ConntrackKey, ConntrackValue) {
    (
        ConntrackKey {
            zone: e.zone,
            original: tuple_from_netlink(&e.original),
        },
        ConntrackValue {
            reply: tuple_from_netlink(&e.reply),
            mark: e.mark,
            status: e.status,
            timeout_seconds: e.timeout,
            tcp_state: e
                .tcp
                .map_or(TcpState::None, |t| tcp_state_from_netlink(t.state)),
            labels: e.labels,
        },
    )
}

/// The netlink entry of a model key and value. With `liberal`, TCP entries
/// skip window tracking, as conntrackd's replicas do: the model carries no
/// sequence windows or window scales, and without them the first
/// mid-stream packets after a failover could fall outside the window the
/// kernel guesses and be dropped as invalid.
pub fn conntrack_to_netlink(
    key: &ConntrackKey,
    value: &ConntrackValue,
    liberal: bool,
) -> ConntrackEntry {
    let original = tuple_to_netlink(&key.original);
    let flags = if liberal { tcp_flag::BE_LIBERAL } else { 0 };
    ConntrackEntry {
        original,
        reply: tuple_to_netlink(&value.reply),
        zone: key.zone,
        mark: value.mark,
        status: value.status,
        timeout: value.timeout_seconds,
        tcp: (original.protocol == 6).then(|| TcpInfo {
            flags_original: flags,
            flags_reply: flags,
            ..TcpInfo::with_state(tcp_state_to_netlink(value.tcp_state))
        }),
        labels: value.labels,
        id: 0,
    }
}

/// The model's key and value of a route; `None` for one the model cannot
/// hold (host bits set in the destination).
pub fn route_from_netlink(r: &Route) -> Option<(RouteKey, RouteValue)> {
    let destination = Prefix::new(r.destination.addr, r.destination.len).ok()?;
    Some((
        RouteKey {
            table: r.table,
            destination,
            metric: r.metric,
        },
        RouteValue {
            gateway: r.gateway,
            output_interface: r.interface.clone().unwrap_or_default(),
        },
    ))
}

/// The netlink route of a model key and value; without a value, what
/// deleting the key needs (table, destination and metric).
pub fn route_to_netlink(key: &RouteKey, value: Option<&RouteValue>) -> Route {
    Route {
        table: key.table,
        destination: umbra_netlink::IpPrefix {
            addr: key.destination.address(),
            len: key.destination.length(),
        },
        gateway: value.and_then(|v| v.gateway),
        interface: value
            .map(|v| v.output_interface.clone())
            .filter(|name| !name.is_empty()),
        metric: key.metric,
    }
}

/// The nftables family of its nft name.
pub fn nft_family(name: &str) -> Option<NftFamily> {
    [
        NftFamily::Ip,
        NftFamily::Ip6,
        NftFamily::Inet,
        NftFamily::Arp,
        NftFamily::Bridge,
        NftFamily::Netdev,
    ]
    .into_iter()
    .find(|f| f.name() == name)
}

/// The tables of an `nft -j list ruleset` listing, each as its own
/// `{"nftables": [...]}` document without handles and with counters at
/// zero: handles name positions in one namespace and counters change with
/// every packet, so neither is state to replicate (a replica's counters
/// start from zero).
pub fn nft_tables(ruleset: &Json) -> BTreeMap<NftTableKey, NftTableValue> {
    let mut out = BTreeMap::new();
    let items = ruleset
        .get("nftables")
        .and_then(Json::as_array)
        .map_or(&[][..], Vec::as_slice);
    for item in items {
        let Some(table) = item.get("table") else {
            continue;
        };
        let (Some(family), Some(name)) = (
            table.get("family").and_then(Json::as_str),
            table.get("name").and_then(Json::as_str),
        ) else {
            continue;
        };
        let Some(nft_family) = nft_family(family) else {
            continue;
        };
        let Ok(objects) = umbra_netlink::nftables::table_objects(family, name, ruleset) else {
            continue;
        };
        let mut document = json!({ "nftables": objects });
        zero_counters(&mut document);
        out.insert(
            NftTableKey {
                family: nft_family,
                name: name.to_owned(),
            },
            NftTableValue {
                ruleset_json: document.to_string(),
            },
        );
    }
    out
}

fn zero_counters(value: &mut Json) {
    match value {
        Json::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "counter"
                    && let Some(counter) = v.as_object_mut()
                {
                    for field in ["packets", "bytes"] {
                        if let Some(n) = counter.get_mut(field) {
                            *n = json!(0);
                        }
                    }
                }
                zero_counters(v);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(zero_counters),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn conntrack_entries_round_trip() {
        let tcp = Tuple {
            source: v4(198, 18, 1, 2),
            destination: v4(198, 19, 2, 1),
            l4: L4::Ports {
                protocol: 6,
                source: 40_000,
                destination: 80,
            },
        };
        let icmp6 = Tuple {
            source: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            destination: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
            l4: L4::Icmp {
                protocol: 58,
                kind: 128,
                code: 0,
                id: 7,
            },
        };
        let gre = Tuple {
            source: v4(198, 18, 1, 2),
            destination: v4(198, 18, 2, 2),
            l4: L4::Other { protocol: 47 },
        };
        for (original, tcp_state) in [
            (tcp, TcpState::Established),
            (icmp6, TcpState::None),
            (gre, TcpState::None),
        ] {
            let key = ConntrackKey { zone: 3, original };
            let value = ConntrackValue {
                reply: Tuple {
                    destination: v4(198, 18, 2, 1),
                    ..original.inverted()
                },
                mark: 0x2a,
                status: IPS_SEEN_REPLY | IPS_ASSURED | IPS_SRC_NAT,
                timeout_seconds: 300,
                tcp_state,
                labels: 1 << 100,
            };
            let entry = conntrack_to_netlink(&key, &value, false);
            assert_eq!(entry.original.protocol, original.l4.protocol());
            assert_eq!(entry.tcp.is_some(), original.l4.protocol() == 6);
            assert_eq!(conntrack_from_netlink(&entry), (key, value));
        }
        let key = ConntrackKey {
            zone: 0,
            original: tcp,
        };
        let value = ConntrackValue {
            reply: tcp.inverted(),
            mark: 0,
            status: IPS_SEEN_REPLY | IPS_ASSURED,
            timeout_seconds: 10,
            tcp_state: TcpState::SynRecv,
            labels: 0,
        };
        let liberal = conntrack_to_netlink(&key, &value, true)
            .tcp
            .expect("TCP info");
        assert_eq!(liberal.state, umbra_netlink::TcpState::SynRecv);
        assert_eq!(liberal.flags_original, tcp_flag::BE_LIBERAL);
        assert_eq!(liberal.flags_reply, tcp_flag::BE_LIBERAL);
        for raw in 0..10 {
            let state = umbra_netlink::TcpState::from_raw(raw).expect("state");
            assert_eq!(tcp_state_to_netlink(tcp_state_from_netlink(state)), state);
        }
    }

    #[test]
    fn conntrack_values_compare_without_timeout_and_bookkeeping_bits() {
        let tuple = Tuple {
            source: v4(198, 18, 1, 2),
            destination: v4(198, 18, 2, 2),
            l4: L4::Ports {
                protocol: 17,
                source: 5000,
                destination: 53,
            },
        };
        let a = ConntrackValue {
            reply: tuple.inverted(),
            mark: 1,
            status: IPS_SEEN_REPLY,
            timeout_seconds: 30,
            tcp_state: TcpState::None,
            labels: 0,
        };
        let confirmed = ConntrackValue {
            status: IPS_SEEN_REPLY | crate::model::IPS_CONFIRMED,
            timeout_seconds: 12,
            ..a
        };
        assert!(same_conntrack(&a, &confirmed));
        assert!(!same_conntrack(
            &a,
            &ConntrackValue {
                status: IPS_SEEN_REPLY | IPS_ASSURED,
                ..a
            }
        ));
        assert!(!same_conntrack(&a, &ConntrackValue { mark: 2, ..a }));
    }

    #[test]
    fn late_events_of_recent_applies_are_echoes() {
        let tuple = Tuple {
            source: v4(198, 19, 1, 1),
            destination: v4(198, 19, 2, 1),
            l4: L4::Ports {
                protocol: 6,
                source: 40_000,
                destination: 80,
            },
        };
        let at = |tcp_state, status| ConntrackValue {
            reply: tuple.inverted(),
            mark: 0,
            status,
            timeout_seconds: 100,
            tcp_state,
            labels: 0,
        };
        let syn = at(TcpState::SynSent, 0);
        let established = at(TcpState::Established, IPS_SEEN_REPLY | IPS_ASSURED);
        let mut recent = RecentApplies {
            last: Instant::now(),
            latest: Some(syn),
            older: Vec::new(),
        };
        recent.push(Some(established), Instant::now());
        // The create of the SYN_SENT write, reported after the
        // ESTABLISHED write, is an echo; so is the established entry
        // before its status bits are set.
        assert!(is_echo(Some(&established), Some(&recent), Some(&syn)));
        let unassured = at(TcpState::Established, 0);
        assert!(is_echo(Some(&established), Some(&recent), Some(&unassured)));
        // A state Apply never wrote is news.
        let closing = at(TcpState::FinWait, IPS_SEEN_REPLY | IPS_ASSURED);
        assert!(!is_echo(Some(&established), Some(&recent), Some(&closing)));
        assert!(!is_echo(Some(&established), None, Some(&syn)));
        // Without recent writes: only a change of timeout is no news.
        let older = ConntrackValue {
            timeout_seconds: 7,
            ..established
        };
        assert!(is_echo(Some(&established), None, Some(&older)));
        assert!(!is_echo(Some(&established), None, Some(&unassured)));
        assert!(!is_echo(None, None, Some(&established)));
        // A destroy is an echo only of a recent delete.
        assert!(!is_echo(Some(&established), Some(&recent), None));
        let deleted = RecentApplies {
            last: Instant::now(),
            latest: None,
            older: Vec::new(),
        };
        assert!(is_echo(None, Some(&deleted), None));
    }

    #[test]
    fn routes_round_trip() {
        let key = RouteKey {
            table: 100,
            destination: Prefix::new(v4(198, 19, 9, 0), 24).unwrap(),
            metric: 20,
        };
        for value in [
            RouteValue {
                gateway: Some(v4(198, 18, 2, 2)),
                output_interface: "out0".into(),
            },
            RouteValue {
                gateway: None,
                output_interface: "lo".into(),
            },
        ] {
            let route = route_to_netlink(&key, Some(&value));
            assert_eq!(route.destination.to_string(), "198.19.9.0/24");
            assert_eq!(route_from_netlink(&route), Some((key.clone(), value)));
        }
        let delete = route_to_netlink(&key, None);
        assert_eq!((delete.gateway, delete.interface.clone()), (None, None));
        let host_bits = Route {
            destination: "198.19.9.1/24".parse().unwrap(),
            ..delete
        };
        assert_eq!(route_from_netlink(&host_bits), None);
    }

    #[test]
    fn nft_tables_split_the_ruleset_without_handles_or_counts() {
        let listing = json!({"nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "inet", "name": "fw", "handle": 1}},
            {"chain": {"family": "inet", "table": "fw", "name": "forward", "handle": 1,
                       "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"rule": {"family": "inet", "table": "fw", "chain": "forward", "handle": 2,
                      "expr": [{"counter": {"packets": 12, "bytes": 3400}}, {"accept": null}]}},
            {"table": {"family": "ip", "name": "nat", "handle": 2}},
            {"table": {"family": "weird", "name": "x", "handle": 3}},
        ]});
        let tables = nft_tables(&listing);
        let keys: Vec<String> = tables
            .keys()
            .map(|k| format!("{} {}", k.family.name(), k.name))
            .collect();
        assert_eq!(keys, ["ip nat", "inet fw"]);
        let fw = &tables[&NftTableKey {
            family: NftFamily::Inet,
            name: "fw".into(),
        }];
        let doc: Json = serde_json::from_str(&fw.ruleset_json).unwrap();
        let objects = doc["nftables"].as_array().unwrap();
        assert_eq!(objects.len(), 3);
        assert!(!fw.ruleset_json.contains("handle"), "{}", fw.ruleset_json);
        assert_eq!(objects[2]["rule"]["expr"][0]["counter"]["packets"], 0);
        // A value is accepted back by the table transaction.
        assert!(umbra_netlink::nftables::table_objects("inet", "fw", &doc).is_ok());
        // Counting packets is not a change.
        let mut busier = listing.clone();
        busier["nftables"][3]["rule"]["expr"][0]["counter"]["packets"] = json!(99);
        assert_eq!(nft_tables(&busier), tables);
        for family in ["ip", "ip6", "inet", "arp", "bridge", "netdev"] {
            assert_eq!(nft_family(family).map(NftFamily::name), Some(family));
        }
    }

    #[test]
    fn diffs_report_removals_and_changes() {
        let k = |n: &str| NftTableKey {
            family: NftFamily::Ip,
            name: n.into(),
        };
        let v = |s: &str| NftTableValue {
            ruleset_json: s.into(),
        };
        let old = BTreeMap::from([(k("a"), v("1")), (k("b"), v("2")), (k("c"), v("3"))]);
        let new = BTreeMap::from([(k("b"), v("2")), (k("c"), v("4")), (k("d"), v("5"))]);
        let changes = diff(&old, &new, Key::NftTable, Value::NftTable);
        assert_eq!(
            changes,
            vec![
                LocalChange {
                    key: Key::NftTable(k("a")),
                    value: None
                },
                LocalChange {
                    key: Key::NftTable(k("c")),
                    value: Some(Value::NftTable(v("4")))
                },
                LocalChange {
                    key: Key::NftTable(k("d")),
                    value: Some(Value::NftTable(v("5")))
                },
            ]
        );
    }
}
