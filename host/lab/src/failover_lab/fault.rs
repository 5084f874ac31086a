//! Fault injection on the primary: a fault ramps from nothing to full
//! intensity over a plan's ramp (with seeded jitter), optionally ends in a
//! hard failure, and is undone when stopped.
//!
//! Kernel faults act on the primary's namespace and cgroup: `loss` (tc
//! netem on both legs and the management link, or a random tc classifier where the kernel has no
//! netem), `cpu` (busy processes in the primary's cgroup,
//! capped by its CPU quota), `memory` (a process growing its RSS in steps,
//! bounded by the cgroup's limit) and `conntrack` (entries added to the
//! primary's table). `http5xx` and `db` are application faults: the lab
//! only ramps a shared [`FaultLevel`] that the devices' applications
//! read (`apps.rs`: HTTP 503s, refused database connections). The hard failure takes both forwarding legs down, turns
//! forwarding off and makes the primary's agent report the failure as a
//! problem.

use std::fmt;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use umbra_netlink::{ConntrackEntry, ConntrackTuple, L4Tuple, NetNs};

use super::{CLIENT_ADDR, FaultTarget, SERVER_ADDR, ip, netns_exec};
use crate::{LabError, Result};

/// How often a fault's intensity is updated.
const STEP: Duration = Duration::from_millis(100);
/// Relative jitter of the intensity around the ramp (±).
const JITTER: f64 = 0.10;
/// Conntrack entries the `conntrack` fault creates per netlink batch.
const CONNTRACK_BATCH: usize = 2_000;
/// Seconds the `conntrack` fault's entries live if nothing removes them.
const CONNTRACK_TIMEOUT_S: u32 = 3_600;

/// What goes wrong on the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// CPU exhaustion: busy processes in the primary's cgroup.
    Cpu,
    /// A memory leak: a process in the primary's cgroup growing its RSS.
    Memory,
    /// Rising packet loss on the primary's legs (tc netem, or a random tc
    /// classifier on kernels without netem).
    Loss,
    /// Conntrack table exhaustion on the primary.
    Conntrack,
    /// A rising rate of HTTP 5xx answers (application level).
    Http5xx,
    /// Failing DB connections (application level).
    Db,
}

impl FaultKind {
    /// Every kind, in the order of [`fmt::Display`]'s names
    /// `cpu|memory|loss|conntrack|http5xx|db`.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Cpu,
        FaultKind::Memory,
        FaultKind::Loss,
        FaultKind::Conntrack,
        FaultKind::Http5xx,
        FaultKind::Db,
    ];

    /// The kind's name, as [`FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Cpu => "cpu",
            FaultKind::Memory => "memory",
            FaultKind::Loss => "loss",
            FaultKind::Conntrack => "conntrack",
            FaultKind::Http5xx => "http5xx",
            FaultKind::Db => "db",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown fault {s:?}: expected cpu|memory|loss|conntrack|http5xx|db")
            })
    }
}

/// How a fault unfolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    /// Seed of the intensity's jitter (same seed, same jitter sequence).
    pub seed: u64,
    /// Time from no fault to full intensity; zero: full at once.
    pub ramp: Duration,
    /// Fail hard once the ramp is complete.
    pub then_fail: bool,
}

/// An intensity in 0..1 shared between a fault and what reads it (the
/// lab's HTTP server and DB proxy for `http5xx` and `db`).
#[derive(Debug, Default)]
pub struct FaultLevel(AtomicU64);

impl FaultLevel {
    /// The intensity now, 0 (no fault) to 1 (full).
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Sets the intensity (clamped to 0..1).
    pub fn set(&self, level: f64) {
        let level = if level.is_finite() {
            level.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.0.store(level.to_bits(), Ordering::Relaxed);
    }
}

/// When a fault started and, if it came to that, when the primary failed
/// hard. Wall-clock times are milliseconds since the Unix epoch (to line up
/// with metrics and the daemon's decisions); the `Instant`s are for
/// durations within the process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FaultTimeline {
    /// The fault.
    pub kind: FaultKind,
    /// When injection started.
    pub started_at_ms: u64,
    /// When injection started (monotonic).
    #[serde(skip)]
    pub started: Instant,
    /// When the hard failure happened.
    pub failure_at_ms: Option<u64>,
    /// When the hard failure happened (monotonic).
    #[serde(skip)]
    pub failure: Option<Instant>,
    /// When the fault was undone.
    pub stopped_at_ms: Option<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// State shared between a fault's thread and its handle.
#[derive(Debug)]
struct FaultShared {
    stop: AtomicBool,
    level: FaultLevel,
    // A synchronous mutex: held only to copy or update the timeline.
    timeline: Mutex<FaultTimeline>,
    error: Mutex<Option<String>>,
}

/// A running fault. Stopping or dropping it undoes the fault (and the hard
/// failure) before returning.
#[derive(Debug)]
pub struct FaultHandle {
    shared: Arc<FaultShared>,
    thread: Option<JoinHandle<()>>,
}

impl FaultHandle {
    /// The fault's current intensity (0..1, with jitter).
    pub fn level(&self) -> f64 {
        self.shared.level.get()
    }

    /// When it started and when the primary failed hard, so far.
    pub fn timeline(&self) -> FaultTimeline {
        *lock(&self.shared.timeline)
    }

    /// Whether the hard failure has happened.
    pub fn has_failed(&self) -> bool {
        self.timeline().failure.is_some()
    }

    /// Why the fault stopped injecting, if an operation failed.
    pub fn error(&self) -> Option<String> {
        lock(&self.shared.error).clone()
    }

    /// Stops the fault, undoes it, and returns its timeline.
    ///
    /// # Errors
    /// [`LabError::Fault`] when injecting or undoing failed at some point
    /// (the fault is undone as far as possible all the same).
    pub fn stop(mut self) -> Result<FaultTimeline> {
        self.halt();
        match self.error() {
            Some(error) => Err(LabError::Fault(error)),
            None => Ok(self.timeline()),
        }
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FaultHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts `kind` on its own thread.
pub(crate) fn start(
    target: Arc<FaultTarget>,
    kind: FaultKind,
    plan: FaultPlan,
) -> Result<FaultHandle> {
    let shared = Arc::new(FaultShared {
        stop: AtomicBool::new(false),
        level: FaultLevel::default(),
        timeline: Mutex::new(FaultTimeline {
            kind,
            started_at_ms: now_ms(),
            started: Instant::now(),
            failure_at_ms: None,
            failure: None,
            stopped_at_ms: None,
        }),
        error: Mutex::new(None),
    });
    let thread = std::thread::Builder::new()
        .name(format!("fault-{kind}"))
        .spawn({
            let shared = Arc::clone(&shared);
            move || run(&target, kind, plan, &shared)
        })
        .map_err(|e| LabError::Fault(format!("cannot start the {kind} fault's thread: {e}")))?;
    tracing::info!(%kind, ?plan, "failover lab: fault injection started on the primary");
    Ok(FaultHandle {
        shared,
        thread: Some(thread),
    })
}

/// The fault's thread: ramp, hold, fail hard if planned, undo.
fn run(target: &FaultTarget, kind: FaultKind, plan: FaultPlan, shared: &FaultShared) {
    let record = |error: String| {
        tracing::warn!(%kind, %error, "failover lab: fault injection failed");
        lock(&shared.error).get_or_insert(error);
    };
    let started = lock(&shared.timeline).started;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut injector = Injector::new(kind, target);
    let mut failed = false;
    let mut healthy = true;
    while !shared.stop.load(Ordering::SeqCst) && !target.lab_down.load(Ordering::SeqCst) {
        let ramp = if plan.ramp.is_zero() {
            1.0
        } else {
            (started.elapsed().as_secs_f64() / plan.ramp.as_secs_f64()).min(1.0)
        };
        let level = (ramp * (1.0 + JITTER * rng.random_range(-1.0..=1.0))).clamp(0.0, 1.0);
        shared.level.set(level);
        if healthy && let Err(error) = injector.set(level) {
            record(error);
            healthy = false;
        }
        if ramp >= 1.0 && plan.then_fail && !failed {
            failed = true;
            if let Err(error) = fail_hard(target) {
                record(error);
            }
            let mut timeline = lock(&shared.timeline);
            timeline.failure = Some(Instant::now());
            timeline.failure_at_ms = Some(now_ms());
            tracing::info!(%kind, "failover lab: the primary failed hard");
        }
        std::thread::sleep(STEP);
    }
    if let Err(error) = injector.undo() {
        record(error);
    }
    if failed && let Err(error) = recover(target) {
        record(error);
    }
    shared.level.set(0.0);
    lock(&shared.timeline).stopped_at_ms = Some(now_ms());
    tracing::info!(%kind, "failover lab: fault undone");
}

/// The primary stops forwarding: both legs down, forwarding off; its agent
/// reports the failure.
fn fail_hard(target: &FaultTarget) -> Result<(), String> {
    target.failed.store(true, Ordering::SeqCst);
    for leg in ["legc", "legs"] {
        ip(&target.namespace, &["link", "set", leg, "down"]).map_err(|e| e.to_string())?;
    }
    netns_exec(
        &target.namespace,
        &["sysctl", "-qw", "net.ipv4.ip_forward=0"],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Undoes [`fail_hard`].
fn recover(target: &FaultTarget) -> Result<(), String> {
    let mut result = Ok(());
    for leg in ["legc", "legs"] {
        if let Err(e) = ip(&target.namespace, &["link", "set", leg, "up"]) {
            result = Err(e.to_string());
        }
    }
    if let Err(e) = netns_exec(
        &target.namespace,
        &["sysctl", "-qw", "net.ipv4.ip_forward=1"],
    ) {
        result = Err(e.to_string());
    }
    target.failed.store(false, Ordering::SeqCst);
    result
}

/// What one kind of fault does at an intensity, and how it is undone.
enum Injector<'a> {
    Loss {
        target: &'a FaultTarget,
        /// Loss last set, percent (tc is run only on a real change).
        percent: Option<f64>,
        method: Option<LossMethod>,
    },
    Cpu {
        target: &'a FaultTarget,
        workers: Vec<Child>,
        capped: Option<bool>,
        /// When the quota was last written, and to what (cores).
        quota_set: Option<(Instant, f64)>,
    },
    Memory {
        target: &'a FaultTarget,
        hog: Option<MemoryHog>,
        allocated: u64,
    },
    Conntrack {
        target: &'a FaultTarget,
        ns: Option<NetNs>,
        /// Entries to add at full intensity.
        total: u64,
        created: Vec<ConntrackTuple>,
    },
    Level(&'a super::FaultLevel),
}

/// A process whose RSS grows by the bytes it is sent, one line per step.
struct MemoryHog {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The memory hog: Perl is part of every Debian system (`perl-base` is
/// essential); it allocates and touches each step's bytes and says `ok`.
const MEMORY_HOG: &str = r#"$| = 1; my @kept; while (defined(my $n = <STDIN>)) { push @kept, "x" x int($n); print "ok\n"; }"#;

impl<'a> Injector<'a> {
    fn new(kind: FaultKind, target: &'a FaultTarget) -> Self {
        match kind {
            FaultKind::Loss => Injector::Loss {
                target,
                percent: None,
                method: None,
            },
            FaultKind::Cpu => Injector::Cpu {
                target,
                workers: Vec::new(),
                capped: None,
                quota_set: None,
            },
            FaultKind::Memory => Injector::Memory {
                target,
                hog: None,
                allocated: 0,
            },
            FaultKind::Conntrack => Injector::Conntrack {
                target,
                ns: None,
                total: 0,
                created: Vec::new(),
            },
            FaultKind::Http5xx => Injector::Level(&target.http5xx),
            FaultKind::Db => Injector::Level(&target.db),
        }
    }

    fn set(&mut self, level: f64) -> Result<(), String> {
        match self {
            Injector::Loss {
                target,
                percent,
                method,
            } => {
                let wanted = (level * target.options.loss_fault_max * 100.0).clamp(0.0, 100.0);
                if percent.is_some_and(|p| (p - wanted).abs() < 0.5) {
                    return Ok(());
                }
                let ns = &target.namespace;
                if method.is_none() {
                    *method = Some(choose_loss_method(ns)?);
                }
                for leg in LOSSY {
                    match method {
                        Some(LossMethod::Netem) => {
                            let loss = format!("{wanted:.2}%");
                            netns_exec(
                                ns,
                                &[
                                    "tc", "qdisc", "replace", "dev", leg, "root", "netem", "loss",
                                    &loss,
                                ],
                            )
                            .map_err(|e| e.to_string())?;
                        }
                        Some(LossMethod::Classifier) => {
                            let bytecode = random_match_bytecode(wanted / 100.0);
                            netns_exec(
                                ns,
                                &[
                                    "tc", "filter", "replace", "dev", leg, "egress", "pref", "1",
                                    "handle", "1", "bpf", "bytecode", &bytecode, "action",
                                    "mirred", "egress", "redirect", "dev", LOSS_SINK,
                                ],
                            )
                            .map_err(|e| e.to_string())?;
                        }
                        None => {}
                    }
                }
                *percent = Some(wanted);
                Ok(())
            }
            Injector::Cpu {
                target,
                workers,
                capped,
                quota_set,
            } => {
                let cores = target.options.cpu_fault_cores.max(0.01);
                let cgroup = target.cgroup.as_ref();
                if capped.is_none() {
                    let cap = match cgroup {
                        Some(c) => c.set_cpu_cap(Some(0.01)).map_err(|e| e.to_string())?,
                        None => false,
                    };
                    if !cap {
                        tracing::warn!(
                            "failover lab: no CPU quota for the primary: the cpu fault runs one busy process at most"
                        );
                    }
                    *capped = Some(cap);
                }
                let capped = *capped == Some(true);
                // With a quota the workers burn flat out and the quota is
                // the intensity; without one, one worker (half of a
                // two-core machine) from half intensity on.
                let wanted = if capped {
                    (cores.ceil() as usize).max(1)
                } else {
                    usize::from(level >= 0.5)
                };
                while workers.len() < wanted {
                    let child = Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .spawn()
                        .map_err(|e| format!("cannot start a busy process: {e}"))?;
                    let pid = child.id();
                    workers.push(child);
                    if let Some(cgroup) = cgroup {
                        cgroup.add_process(pid).map_err(|e| e.to_string())?;
                    }
                }
                while workers.len() > wanted {
                    if let Some(mut child) = workers.pop() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                }
                // The kernel refills the budget on every quota write, so
                // the quota moves only in steps of 0.05 cores, at most
                // twice a second: the cap holds in between.
                let quota = (level * cores).max(0.01);
                let due = quota_set.is_none_or(|(at, last): (Instant, f64)| {
                    at.elapsed() >= Duration::from_millis(500) && (quota - last).abs() >= 0.05
                });
                if capped
                    && due
                    && let Some(cgroup) = cgroup
                {
                    cgroup.set_cpu_cap(Some(quota)).map_err(|e| e.to_string())?;
                    *quota_set = Some((Instant::now(), quota));
                }
                Ok(())
            }
            Injector::Memory {
                target,
                hog,
                allocated,
            } => {
                let bound = target.options.memory_fault_bytes;
                let step = target.options.memory_fault_step_bytes.max(1 << 20);
                if hog.is_none() {
                    let mut child = Command::new("perl")
                        .args(["-e", MEMORY_HOG])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .map_err(|e| format!("cannot start the memory hog (perl): {e}"))?;
                    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take())
                    else {
                        let _ = child.kill();
                        return Err("the memory hog has no pipes".into());
                    };
                    if let Some(cgroup) = &target.cgroup
                        && let Err(error) = cgroup.add_process(child.id())
                    {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(error.to_string());
                    }
                    *hog = Some(MemoryHog {
                        child,
                        stdin,
                        stdout: BufReader::new(stdout),
                    });
                }
                let Some(hog) = hog.as_mut() else {
                    return Ok(());
                };
                let wanted = (level * bound as f64) as u64;
                while *allocated + step <= wanted.min(bound) {
                    writeln!(hog.stdin, "{step}")
                        .and_then(|()| hog.stdin.flush())
                        .map_err(|e| format!("the memory hog is gone: {e}"))?;
                    let mut ack = String::new();
                    match hog.stdout.read_line(&mut ack) {
                        Ok(n) if n > 0 => *allocated += step,
                        _ => return Err("the memory hog died (out of memory?)".into()),
                    }
                }
                Ok(())
            }
            Injector::Conntrack {
                target,
                ns,
                total,
                created,
            } => {
                if ns.is_none() {
                    let opened = NetNs::named(&target.namespace).map_err(|e| e.to_string())?;
                    let metrics = opened.metrics(None).map_err(|e| e.to_string())?;
                    *total = target.options.conntrack_fault_entries.unwrap_or_else(|| {
                        (metrics.conntrack_max * 95 / 100).saturating_sub(metrics.conntrack_count)
                    });
                    tracing::info!(
                        entries = *total,
                        conntrack_max = metrics.conntrack_max,
                        "failover lab: conntrack fault fills the primary's table (nf_conntrack_max is the host's, not per namespace)"
                    );
                    *ns = Some(opened);
                }
                let Some(ns) = ns.as_ref() else {
                    return Ok(());
                };
                let wanted = (level * *total as f64) as usize;
                while created.len() < wanted {
                    let batch: Vec<ConntrackEntry> = (created.len()
                        ..wanted.min(created.len() + CONNTRACK_BATCH))
                        .map(|i| ConntrackEntry {
                            mark: LOCAL_CONNTRACK_MARK,
                            ..ConntrackEntry::new(flood_tuple(i), CONNTRACK_TIMEOUT_S)
                        })
                        .collect();
                    ns.conntrack()
                        .create_batch(&batch)
                        .map_err(|e| format!("conntrack fault: {e}"))?;
                    created.extend(batch.into_iter().map(|e| e.original));
                }
                Ok(())
            }
            Injector::Level(shared) => {
                shared.set(level);
                Ok(())
            }
        }
    }

    fn undo(&mut self) -> Result<(), String> {
        match self {
            Injector::Loss { target, method, .. } => {
                let ns = &target.namespace;
                // Errors are ignored: what is gone already (the lab went
                // down first) needs no undoing.
                match method.take() {
                    Some(LossMethod::Netem) => {
                        for leg in LOSSY {
                            let _ = netns_exec(ns, &["tc", "qdisc", "del", "dev", leg, "root"]);
                        }
                    }
                    Some(LossMethod::Classifier) => {
                        for leg in LOSSY {
                            let _ = netns_exec(ns, &["tc", "qdisc", "del", "dev", leg, "clsact"]);
                        }
                        let _ = ip(ns, &["link", "del", LOSS_SINK]);
                    }
                    None => {}
                }
                Ok(())
            }
            Injector::Cpu {
                target,
                workers,
                capped,
                ..
            } => {
                for mut child in workers.drain(..) {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                if *capped == Some(true)
                    && let Some(cgroup) = &target.cgroup
                {
                    let _ = cgroup.set_cpu_cap(None);
                }
                Ok(())
            }
            Injector::Memory { hog, allocated, .. } => {
                if let Some(mut hog) = hog.take() {
                    let _ = hog.child.kill();
                    let _ = hog.child.wait();
                }
                *allocated = 0;
                Ok(())
            }
            Injector::Conntrack {
                target,
                ns,
                created,
                ..
            } => {
                if target.lab_down.load(Ordering::SeqCst) {
                    // The namespace and its table go with the lab.
                    created.clear();
                    return Ok(());
                }
                if let Some(ns) = ns.as_ref() {
                    for tuple in created.drain(..) {
                        // An entry that expired or was flushed is fine.
                        let _ = ns.conntrack().delete(&tuple, 0);
                    }
                }
                Ok(())
            }
            Injector::Level(shared) => {
                shared.set(0.0);
                Ok(())
            }
        }
    }
}

/// How the `loss` fault drops packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LossMethod {
    /// `tc netem loss` as the legs' root qdisc.
    Netem,
    /// Kernels without netem (`CONFIG_NET_SCH_NETEM` off, as on some VM
    /// kernels): a classic-BPF classifier on the legs' egress matching at
    /// random, whose `mirred` action diverts the packet into [`LOSS_SINK`],
    /// a veth whose peer discards it. The packets are lost exactly where
    /// netem would lose them: after the firewall, before the leg counts
    /// them as sent.
    Classifier,
}

/// The conntrack mark of the `conntrack` fault's entries, which the lab's
/// agents treat as the primary's own (not replicated): the fault is a
/// leak in the primary's table, not traffic whose state the shadow needs.
pub const LOCAL_CONNTRACK_MARK: u32 = 0x00c0_ffee;

/// The primary's interfaces the `loss` fault drops on: both forwarding
/// legs and the management link (a device that loses packets loses its
/// health checks' too).
const LOSSY: [&str; 3] = ["legc", "legs", "mgmt0"];

/// The interface the classifier method diverts lost packets to (in the
/// primary's namespace, present only while the fault runs).
const LOSS_SINK: &str = "loss0";

/// Netem when the kernel has it, else the classifier (set up here).
fn choose_loss_method(ns: &str) -> Result<LossMethod, String> {
    let probe = netns_exec(
        ns,
        &[
            "tc", "qdisc", "replace", "dev", "legc", "root", "netem", "loss", "0%",
        ],
    );
    match probe {
        Ok(_) => return Ok(LossMethod::Netem),
        Err(error) => tracing::warn!(
            %error,
            "failover lab: tc netem is not available; the loss fault drops with a random classic-BPF classifier instead"
        ),
    }
    ip(
        ns,
        &[
            "link", "add", LOSS_SINK, "type", "veth", "peer", "name", "loss1",
        ],
    )
    .map_err(|e| e.to_string())?;
    for ifname in [LOSS_SINK, "loss1"] {
        ip(ns, &["link", "set", ifname, "up"]).map_err(|e| e.to_string())?;
    }
    for leg in LOSSY {
        netns_exec(ns, &["tc", "qdisc", "add", "dev", leg, "clsact"]).map_err(|e| e.to_string())?;
    }
    Ok(LossMethod::Classifier)
}

/// A classic BPF program (in `tc`'s `bytecode` syntax) that matches a
/// packet with probability `loss`: it loads a random 32-bit number (the
/// `SKF_AD_RANDOM` ancillary load) and matches when it is at least
/// `(1 - loss) * 2^32`.
fn random_match_bytecode(loss: f64) -> String {
    const LD_W_ABS: u16 = 0x20;
    const JMP_JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    // SKF_AD_OFF (-0x1000) + SKF_AD_RANDOM (56), as an unsigned 32-bit k.
    const RANDOM: u32 = 0xffff_f038;
    let threshold =
        ((1.0 - loss.clamp(0.0, 1.0)) * 4_294_967_296.0).min(f64::from(u32::MAX)) as u32;
    format!(
        "4,{LD_W_ABS} 0 0 {RANDOM},{JMP_JGE_K} 0 1 {threshold},{RET_K} 0 0 {},{RET_K} 0 0 0",
        u32::MAX
    )
}

/// The `i`-th UDP flow of the conntrack fault, client → server.
fn flood_tuple(i: usize) -> ConntrackTuple {
    const PORTS: usize = 60_000;
    ConntrackTuple {
        src: CLIENT_ADDR.into(),
        dst: SERVER_ADDR.into(),
        protocol: 17,
        l4: L4Tuple::Ports {
            src: (1_024 + i % PORTS) as u16,
            dst: (20_000 + i / PORTS) as u16,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_what_they_print() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.to_string().parse::<FaultKind>(), Ok(kind));
        }
        assert_eq!("http5xx".parse::<FaultKind>(), Ok(FaultKind::Http5xx));
        assert!("disk".parse::<FaultKind>().is_err());
    }

    #[test]
    fn levels_are_clamped() {
        let level = FaultLevel::default();
        assert_eq!(level.get(), 0.0);
        level.set(0.25);
        assert_eq!(level.get(), 0.25);
        level.set(7.0);
        assert_eq!(level.get(), 1.0);
        level.set(f64::NAN);
        assert_eq!(level.get(), 0.0);
    }

    #[test]
    fn the_random_classifier_matches_the_asked_share() {
        assert_eq!(
            random_match_bytecode(0.3),
            "4,32 0 0 4294963256,53 0 1 3006477107,6 0 0 4294967295,6 0 0 0"
        );
        assert!(random_match_bytecode(0.0).contains(",53 0 1 4294967295,"));
        assert!(random_match_bytecode(1.0).contains(",53 0 1 0,"));
    }

    #[test]
    fn flood_tuples_are_distinct() {
        let tuples: std::collections::HashSet<_> = (0..130_000).map(flood_tuple).collect();
        assert_eq!(tuples.len(), 130_000);
    }
}
