//! The demo on the network-namespace lab: real packets through Umbra's
//! software switch, real stateful firewalls, the daemon of `umbra run`
//! (started in process from an embedded configuration) deciding and
//! failing over over P4Runtime.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_agent::backend::MetricsReading;
use umbra_daemon::run::{Running, audit_file, start};
use umbra_lab::failover_lab::{
    Device, FailoverLab, FailoverLabOptions, FaultHandle, FaultPlan, LabInfo,
};
use umbra_orchestrator::{AuditRecord, Slot};
use umbra_traffic::{Traffic, TrafficPlan, TrafficReport};

use crate::journal::Journal;
use crate::progress::Progress;
use crate::timeline::{Point, Timeline};
use crate::{DemoArgs, DemoError, Outcome, Summary, epoch_ms};

/// The daemon's evaluation period in the lab.
pub const TICK_MS: u64 = 100;
/// How often the demo observes.
const OBSERVE: Duration = Duration::from_millis(100);
/// How long after the hard failure the run goes on (the traffic must keep
/// flowing through the shadow).
const AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Longest wait for the engine's warm-up beyond `--warmup-s`.
const WARMUP_LIMIT: Duration = Duration::from_secs(120);
/// Margin either side of the switchover window for counting its losses.
const SWITCHOVER_MARGIN_MS: f64 = 200.0;

/// The embedded configuration of `umbra run` for the lab at `info`.
#[must_use]
pub fn config_text(info: &LabInfo, dir: &std::path::Path, replication: bool) -> String {
    let p = &info.ports;
    format!(
        r#"# umbra demo: the daemon's configuration for the failover lab
[host]
name = "umbra-demo"
election-id = 10
tick-ms = {TICK_MS}
audit-log = "{audit}"
state-dir = "{state}"

[failover]
hysteresis = 3
drift-hysteresis = 20
drift-threshold = 0.7
cooldown-s = 300
max-per-hour = 2
verify-timeout-ms = 3000

[[switch]]
name = "lab"
address = "{switch}"
device-id = {device_id}

[[pair]]
name = "web"
switch = "lab"
service = 1
client-port = {client}
server-port = {server}
primary = {{ name = "primary", device = 1, client-leg = {pc}, server-leg = {ps}, monitor = {pm}, agent = "{pa}" }}
shadow = {{ name = "shadow", device = 2, client-leg = {sc}, server-leg = {ss}, monitor = {sm}, agent = "{sa}" }}
sampling = {{ mode = "flow", one-in = 20, truncate-bytes = 128 }}
replication = {{ enabled = {replication} }}
{checks}"#,
        audit = dir.join("audit.jsonl").display(),
        state = dir.join("state").display(),
        switch = info.switch.p4runtime,
        device_id = info.switch.device_id,
        client = p.client,
        server = p.server,
        pc = p.primary_client_leg,
        ps = p.primary_server_leg,
        pm = p.primary_monitor,
        pa = info.primary_agent.url,
        sc = p.shadow_client_leg,
        ss = p.shadow_server_leg,
        sm = p.shadow_monitor,
        sa = info.shadow_agent.url,
        checks = health_checks(info),
    )
}

/// Each device's application and database endpoint, checked over its
/// management link ten times a second; the same names on both devices.
fn health_checks(info: &LabInfo) -> String {
    let mut out = String::new();
    for (device, m) in [
        ("primary", &info.management.primary),
        ("shadow", &info.management.shadow),
    ] {
        out.push_str(&format!(
            r#"
[[pair.health-check]]
name = "app"
kind = "http"
device = "{device}"
url = "{url}"
interval-ms = 100
timeout-ms = 500

[[pair.health-check]]
name = "db"
kind = "tcp"
device = "{device}"
address = "{db}"
interval-ms = 100
timeout-ms = 500
"#,
            url = m.app_url,
            db = m.db,
        ));
    }
    out
}

/// Rates between two metric readings.
fn drops_per_s(now: &MetricsReading, before: &MetricsReading, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    let total = |r: &MetricsReading| {
        r.interfaces
            .iter()
            .map(|i| i.rx_drops + i.tx_drops)
            .sum::<u64>()
    };
    total(now).saturating_sub(total(before)) as f64 / seconds
}

/// Runs the demo on the lab. Blocking.
///
/// # Errors
/// The lab, the daemon or the traffic cannot start.
pub fn run(
    args: &DemoArgs,
    shutdown: &CancellationToken,
    progress: &mut dyn Progress,
) -> Result<Outcome, DemoError> {
    let t0 = Instant::now();
    let t = || t0.elapsed().as_secs_f64() * 1e3;
    // Labs of killed processes (no Drop, no Ctrl-C handler ran) would
    // otherwise keep their namespaces, processes and cgroups.
    if let Ok(swept) = umbra_lab::sweep::sweep()
        && !swept.namespaces.is_empty()
    {
        progress.event(
            t(),
            &format!(
                "removed {} namespaces left behind by earlier labs",
                swept.namespaces.len()
            ),
        );
    }
    progress.event(
        t(),
        "building the failover lab (namespaces, switch, agents)",
    );
    let lab = FailoverLab::up(FailoverLabOptions::default())?;
    let info = lab.info();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("umbra-demo")
        .build()
        .map_err(|e| DemoError::Internal(format!("runtime: {e}")))?;
    let dir = tempfile::tempdir().map_err(|e| DemoError::Internal(format!("temp dir: {e}")))?;
    let text = config_text(&info, dir.path(), !args.no_replication);
    let config = umbra_config::parse(&text, &dir.path().join("umbra.toml"))
        .map_err(|e| DemoError::Daemon(format!("embedded configuration: {e}")))?;
    let mut journal = Journal::default();
    let file = audit_file(&config.host.name, &config.host.audit_log)
        .map_err(|e| DemoError::Daemon(e.to_string()))?;
    let audit = journal.sink(Some(file));
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    progress.event(
        t(),
        "starting umbra run's daemon (P4Runtime, agents, replication, predictive engine)",
    );
    let running = runtime
        .block_on(start(&config, audit, &tasks, &stop))
        .map_err(|e| DemoError::Daemon(e.to_string()))?;
    let drift_threshold = config.pairs[0].failover.decision.drift_threshold;
    let result = drive(
        args,
        shutdown,
        progress,
        &lab,
        &info,
        &running,
        &mut journal,
        (t0, drift_threshold),
    );
    stop.cancel();
    tasks.close();
    runtime.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
    });
    drop(running);
    runtime.shutdown_timeout(Duration::from_secs(2));
    progress.event(t(), "tearing the lab down");
    lab.down();
    result
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
fn drive(
    args: &DemoArgs,
    shutdown: &CancellationToken,
    progress: &mut dyn Progress,
    lab: &FailoverLab,
    info: &LabInfo,
    running: &Running,
    journal: &mut Journal,
    (t0, drift_threshold): (Instant, f64),
) -> Result<Outcome, DemoError> {
    let t = || t0.elapsed().as_secs_f64() * 1e3;
    let start_epoch_ms = epoch_ms() - t();
    let since = |epoch: f64| epoch - start_epoch_ms;
    let pair = &running.pairs[0];
    let plan = TrafficPlan {
        sessions: 8,
        http_rate: 20,
        ..TrafficPlan::default()
    };
    progress.event(
        t(),
        &format!(
            "traffic: 1 kHz UDP probes, {} long-lived TCP sessions, {} HTTP requests/s from {} to {}",
            plan.sessions, plan.http_rate, info.addresses.client, info.addresses.server
        ),
    );
    let traffic_started_ms = t();
    let traffic = Traffic::start(
        Some(&info.namespaces.client),
        Some(&info.namespaces.server),
        IpAddr::V4(info.addresses.server),
        &plan,
    )?;
    let mut timeline = Timeline {
        drift_threshold,
        // Known once the engine has decided: set at the end.
        probability_threshold: 0.0,
        ..Timeline::default()
    };
    let mut fault: Option<FaultHandle> = None;
    let mut fault_started_ms = None;
    let mut failure_ms = None;
    let mut before: Option<(MetricsReading, Instant)> = None;
    let mut interrupted = false;
    let warmup_until = t0 + Duration::from_secs_f64(traffic_started_ms / 1e3) + args.warmup();
    let end_fault_free = warmup_until + Duration::from_secs(args.fault_free_s);
    loop {
        if shutdown.is_cancelled() {
            interrupted = true;
            progress.event(t(), "interrupted: cleaning up");
            break;
        }
        std::thread::sleep(OBSERVE);
        let now = Instant::now();
        let decision = pair.last_decision.borrow().clone();
        let view = pair.handle.view.borrow().clone();
        let snapshot = traffic.snapshot();
        let primary = lab.agent(Device::Primary).backend().metrics();
        let shadow = lab.agent(Device::Shadow).backend().metrics();
        let drops = before.as_ref().map_or(0.0, |(b, at)| {
            drops_per_s(&primary, b, now.duration_since(*at).as_secs_f64())
        });
        let fill = if primary.conntrack_max == 0 {
            0.0
        } else {
            primary.conntrack_count as f64 / primary.conntrack_max as f64
        };
        let memory = if primary.memory_total_bytes == 0 {
            0.0
        } else {
            primary.memory_used_bytes as f64 / primary.memory_total_bytes as f64
        };
        before = Some((primary.clone(), now));
        let phase = view.phase.name().to_owned();
        let point = Point {
            t_ms: t(),
            active: if view.active == Slot::A {
                "primary"
            } else {
                "shadow"
            }
            .into(),
            phase,
            drift: decision.as_ref().map_or(0.0, |d| d.drift_score),
            probability: decision.as_ref().and_then(|d| d.probability),
            warming: decision.as_ref().is_none_or(|d| d.warming),
            fault_level: fault.as_ref().map_or(0.0, FaultHandle::level),
            primary_cpu: primary.cpu,
            primary_memory: memory,
            primary_conntrack_fill: fill,
            primary_drops: drops,
            shadow_cpu: shadow.cpu,
            probes_sent: snapshot.probes_sent,
            probes_received: snapshot.probes_received,
            probe_gap_ms: snapshot.current_gap_ms,
            sessions_alive: snapshot.sessions_alive,
            sessions_failed: snapshot.sessions_failed,
            http_5xx: snapshot.http_5xx,
        };
        progress.status(&point);
        timeline.points.push(point);
        // The pair's state changes, as the audit log has them.
        journal.tell_new(|r| since(r.at_ms as f64), progress, &mut timeline);
        if let Some(handle) = &fault {
            if failure_ms.is_none() && handle.has_failed() {
                let at = handle
                    .timeline()
                    .failure_at_ms
                    .map_or_else(t, |ms| since(ms as f64));
                failure_ms = Some(at);
                let text = "the primary FAILED hard (legs down, forwarding off)";
                progress.event(at, text);
                timeline.event(at, text);
            }
            if let Some(error) = handle.error() {
                progress.event(t(), &format!("fault injection failed: {error}"));
                break;
            }
        }
        match args.fault.0 {
            Some(kind) if fault.is_none() => {
                let warmed = decision.as_ref().is_some_and(|d| !d.warming);
                if now >= warmup_until && (warmed || now >= warmup_until + WARMUP_LIMIT) {
                    let handle = lab.inject(
                        kind,
                        FaultPlan {
                            seed: args.seed,
                            ramp: args.ramp(),
                            then_fail: true,
                        },
                    )?;
                    let at = t();
                    fault_started_ms = Some(at);
                    let text = format!(
                        "injecting {kind} on the primary: ramping over {} s, then a hard failure",
                        args.ramp_s
                    );
                    progress.event(at, &text);
                    timeline.event(at, text);
                    fault = Some(handle);
                }
            }
            Some(_) => {
                if let Some(failed) = failure_ms
                    && t() >= failed + AFTER_FAILURE.as_secs_f64() * 1e3
                {
                    break;
                }
                // A fault that never fails (an injection error) ends the
                // run a while after its ramp.
                if let Some(started) = fault_started_ms
                    && t() >= started + (args.ramp_s as f64 + 60.0) * 1e3
                {
                    progress.event(t(), "the primary never failed: ending the run");
                    break;
                }
            }
            None => {
                if now >= end_fault_free {
                    break;
                }
            }
        }
    }
    if let Some(d) = pair.last_decision.borrow().as_ref() {
        timeline.probability_threshold = d.probability_threshold;
    }
    let view = pair.handle.view.borrow().clone();
    let audit = journal.all();
    let decision_text = audit
        .iter()
        .find(|r| r.from == "normal" && r.to == "preparing")
        .map(|r| (since(r.at_ms as f64), r.why.clone()));
    if let Some(handle) = fault.take() {
        let _ = handle.stop();
    }
    let report = traffic.stop();
    let summary = summarize(SummaryInput {
        args,
        view_failovers: view.failovers,
        failover_ms: view.last_failover_at_ms.map(|ms| since(ms as f64)),
        decision: decision_text,
        decision_to_redirect_ms: view.last_decision_to_redirect_ms,
        fault_started_ms,
        failure_ms,
        traffic_started_ms,
        report: &report,
        audit: &audit,
        since: &since,
        interrupted,
    });
    Ok(Outcome { summary, timeline })
}

struct SummaryInput<'a> {
    args: &'a DemoArgs,
    view_failovers: u64,
    failover_ms: Option<f64>,
    decision: Option<(f64, String)>,
    decision_to_redirect_ms: Option<f64>,
    fault_started_ms: Option<f64>,
    failure_ms: Option<f64>,
    traffic_started_ms: f64,
    report: &'a TrafficReport,
    audit: &'a [AuditRecord],
    since: &'a dyn Fn(f64) -> f64,
    interrupted: bool,
}

fn summarize(input: SummaryInput<'_>) -> Summary {
    let SummaryInput {
        args,
        view_failovers,
        failover_ms,
        decision,
        decision_to_redirect_ms,
        fault_started_ms,
        failure_ms,
        traffic_started_ms,
        report,
        audit,
        since,
        interrupted,
    } = input;
    // Failovers that started before the fault (or on a fault-free run)
    // were false.
    let false_failovers = audit
        .iter()
        .filter(|r| r.from == "normal" && r.to == "preparing")
        .filter(|r| fault_started_ms.is_none_or(|f| since(r.at_ms as f64) < f))
        .count() as u64;
    let (probes_sent, probes_lost, lost_in_window, gap) = match &report.probes {
        Some(p) => {
            let window = decision
                .as_ref()
                .map(|(at, _)| *at - SWITCHOVER_MARGIN_MS)
                .zip(failover_ms.map(|v| v + SWITCHOVER_MARGIN_MS));
            let per_ms = f64::from(p.rate_hz) / 1e3;
            let lost_in = window.map_or(0, |(from, to)| {
                p.lost_ranges
                    .iter()
                    .map(|&(a, b)| {
                        // Sequence n left about n / rate after the stream began.
                        let a_ms = traffic_started_ms + a as f64 / per_ms;
                        let b_ms = traffic_started_ms + b as f64 / per_ms;
                        let lo = a_ms.max(from);
                        let hi = b_ms.min(to);
                        if hi >= lo {
                            ((hi - lo) * per_ms).round() as u64 + 1
                        } else {
                            0
                        }
                    })
                    .sum()
            });
            // The longest gap of the probe stream that overlaps the window;
            // the stream lists gaps over twice its interval, so without one
            // the gap was at most that.
            let gap = window.map(|(from, to)| {
                p.gaps
                    .iter()
                    .filter(|g| {
                        let at = traffic_started_ms + g.at_ms;
                        at <= to && at + g.length_ms >= from
                    })
                    .map(|g| g.length_ms)
                    .fold(2.0 * p.interval_ms, f64::max)
            });
            (p.sent, p.lost, lost_in, gap)
        }
        None => (0, 0, 0, None),
    };
    let (sessions_total, sessions_survived, stall) = report
        .sessions
        .as_ref()
        .map_or((0, 0, 0.0), |s| (s.total, s.survived, s.longest_stall_ms));
    Summary {
        mode: "lab".into(),
        fault: args.fault.to_string(),
        seed: args.seed,
        failover_completed: view_failovers > 0,
        lead_time_ms: failure_ms.zip(failover_ms).map(|(f, v)| f - v),
        switchover_gap_ms: if view_failovers > 0 { gap } else { None },
        probes_sent,
        probes_lost,
        probes_lost_in_switchover: Some(lost_in_window),
        sessions_total,
        sessions_survived,
        longest_session_stall_ms: stall,
        false_failovers,
        failovers: view_failovers,
        decision: decision.map(|(_, why)| why),
        decision_to_redirect_ms,
        fault_started_ms,
        failure_ms,
        failover_ms,
        interrupted,
    }
}
