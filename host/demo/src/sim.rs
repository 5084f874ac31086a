//! The demo without privileges: the same scenario on SIMULATED devices.
//!
//! What is real: the predictive engine (drift detector, the default GRU
//! through ONNX Runtime, the native policies) and the pair driver with the
//! orchestrator, deciding and failing over exactly as in `umbra run`.
//! What is simulated: the devices' telemetry is the scenario generator's
//! (a seeded trace of the chosen fault ramping into a hard failure,
//! replayed 100 times faster than it happened), the switch is the
//! in-memory fabric, and the traffic is a model: 1 kHz probes are lost
//! while the device carrying them has failed, long-lived sessions survive
//! a failover only if their state was replicated first (with
//! `--no-replication` they are reset at the flip).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use umbra_daemon::engine::{EngineConfig, PredictiveEngine, Role};
use umbra_daemon::fabric::{DevicePorts, Fabric as _, MemoryFabric, PairPorts, Sampling};
use umbra_daemon::pair::{PairDriver, PairInput, PairSpec};
use umbra_daemon::replication::NoReplication;
use umbra_lab::failover_lab::FaultKind;
use umbra_orchestrator::{Phase, Slot, Timeouts, Trigger};
use umbra_scenario::{Device, METRICS, ScenarioConfig, ScenarioKind, Trace, generate_trace};

use crate::journal::Journal;
use crate::progress::Progress;
use crate::timeline::{Point, Timeline};
use crate::{DemoArgs, DemoError, Outcome, Summary};

/// Trace time per real time.
const SPEEDUP: f64 = 100.0;
/// Probes per second of the traffic model.
const PROBE_HZ: f64 = 1000.0;
/// Long-lived sessions of the traffic model.
const SESSIONS: usize = 8;
/// The service id on the simulated switch.
const SERVICE: u16 = 1;

/// The scenario kind simulating a lab fault.
#[must_use]
pub fn scenario_kind(kind: FaultKind) -> ScenarioKind {
    match kind {
        FaultKind::Cpu => ScenarioKind::CpuExhaustion,
        FaultKind::Memory => ScenarioKind::MemoryLeak,
        FaultKind::Loss => ScenarioKind::PacketLoss,
        FaultKind::Conntrack => ScenarioKind::ConntrackExhaustion,
        FaultKind::Http5xx => ScenarioKind::Http5xxRamp,
        FaultKind::Db => ScenarioKind::DbConnectionFailure,
    }
}

/// The simulated pair's trace: the chosen fault (or none) over half an
/// hour of telemetry.
///
/// # Errors
/// The generator refuses its configuration.
pub fn trace(args: &DemoArgs) -> Result<Trace, DemoError> {
    let config = ScenarioConfig {
        seed: args.seed,
        faulty_traces: usize::from(args.fault.0.is_some()),
        fault_free_traces: usize::from(args.fault.0.is_none()),
        fault_kinds: args
            .fault
            .0
            .map_or_else(Vec::new, |k| vec![scenario_kind(k)]),
        trace_duration: Duration::from_secs(1800),
        ..ScenarioConfig::default()
    };
    generate_trace(&config, 0).map_err(|e| DemoError::Simulation(e.to_string()))
}

fn ports() -> PairPorts {
    PairPorts {
        service: SERVICE,
        client_port: 1,
        server_port: 2,
        devices: [
            DevicePorts {
                device: 1,
                client_leg: 3,
                server_leg: 4,
                monitor: 7,
            },
            DevicePorts {
                device: 2,
                client_leg: 5,
                server_leg: 6,
                monitor: 8,
            },
        ],
        sampling: Sampling::default(),
    }
}

fn engine() -> Result<PredictiveEngine, DemoError> {
    let predictor = umbra_model::Predictor::load(&umbra_model::default_model_path())
        .map_err(|e| DemoError::Simulation(format!("the default model: {e}")))?;
    let detector = umbra_predict::DetectorConfig::from_pairs(&[("tick-ms".into(), "500".into())])
        .map_err(|e| DemoError::Simulation(e.to_string()))?;
    let warmup_ticks = detector.features.window;
    let failover = umbra_policy_logic::FailoverConfig {
        probability_threshold: predictor.manifest().threshold,
        ..umbra_policy_logic::FailoverConfig::default()
    };
    Ok(PredictiveEngine::new(
        EngineConfig {
            detector,
            correlation: umbra_policy_logic::CorrelationConfig::default(),
            failover,
            drift_from_policy: false,
            warmup_ticks,
            correlation_corroborates: false,
        },
        Some(predictor),
        None,
    ))
}

/// Runs the simulated demo. Blocking.
///
/// # Errors
/// The scenario or the model cannot be loaded.
#[allow(clippy::too_many_lines)]
pub fn run(
    args: &DemoArgs,
    shutdown: &CancellationToken,
    progress: &mut dyn Progress,
) -> Result<Outcome, DemoError> {
    let trace = trace(args)?;
    let mut engine = engine()?;
    engine
        .add_pair()
        .map_err(|e| DemoError::Simulation(e.to_string()))?;
    progress.event(
        0.0,
        &format!(
            "simulated pair: {} telemetry ({} ticks of {} ms, replayed {SPEEDUP}x), the default GRU through ONNX Runtime, an in-memory switch, modelled traffic",
            trace.meta().kind,
            trace.len(),
            trace.meta().tick_ms
        ),
    );
    // The pair driver runs on the runtime's worker while the replay loop
    // feeds the engine on this thread.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| DemoError::Internal(format!("runtime: {e}")))?;
    let fabric = MemoryFabric::new();
    let mut journal = Journal::default();
    let sink = journal.sink(None);
    let stop = CancellationToken::new();
    let spec = PairSpec {
        name: "web".into(),
        device_names: ["primary".into(), "shadow".into()],
        ports: ports(),
        timeouts: Timeouts::default(),
        verify_min_packets: 1,
    };
    let handle = runtime.block_on(async {
        fabric
            .install(&spec.ports, Slot::A)
            .await
            .map_err(|e| DemoError::Simulation(e.message))?;
        let (driver, handle) = PairDriver::new(spec, Slot::A, fabric.clone(), NoReplication, sink);
        tokio::spawn(driver.run(stop.clone()));
        let _ = handle
            .inputs
            .send(PairInput::Mastership { primary: true })
            .await;
        Ok::<_, DemoError>(handle)
    })?;
    let meta = trace.meta().clone();
    let start_ms = trace.start_ms();
    let at = |ms: i64| (ms - start_ms) as f64;
    let fault_started_ms = meta.fault_start_ms.map(at);
    let failure_ms = meta.failure_onset_ms.map(at);
    let mut timeline = Timeline {
        drift_threshold: engine.config().failover.drift_threshold,
        probability_threshold: engine.config().failover.probability_threshold,
        ..Timeline::default()
    };
    let mut probes_sent = 0_u64;
    let mut probes_lost = 0_u64;
    let mut sessions_reset = 0_usize;
    let mut decision: Option<(f64, String)> = None;
    let mut failover_ms = None;
    let mut false_failovers = 0;
    let mut interrupted = false;
    let mut failure_announced = false;
    let mut fault_announced = false;
    let tick_ms = meta.tick_ms as f64;
    let real_tick = Duration::from_secs_f64(tick_ms / 1e3 / SPEEDUP);
    let mut next = Instant::now();
    for tick in 0..trace.len() {
        if shutdown.is_cancelled() {
            interrupted = true;
            progress.event(at(trace.timestamps_ms()[tick]), "interrupted");
            break;
        }
        let now_ms = trace.timestamps_ms()[tick];
        let t = at(now_ms);
        let view = handle.view.borrow().clone();
        // The trace's primary is the faulty device; once it is the
        // standby, the engine watches the other one as "primary".
        for device in [Device::Primary, Device::Shadow] {
            let slot = if device == Device::Primary {
                Slot::A
            } else {
                Slot::B
            };
            let role = if slot == view.active {
                Role::Primary
            } else {
                Role::Shadow
            };
            for (i, metric) in METRICS.iter().enumerate() {
                if let Some(value) = trace.series_at(device, i)[tick] {
                    engine.record(0, role, metric, now_ms, value);
                }
            }
        }
        let decisions = engine
            .tick(now_ms)
            .map_err(|e| DemoError::Simulation(e.to_string()))?;
        let d = &decisions[0];
        if !fault_announced && fault_started_ms.is_some_and(|f| t >= f) {
            fault_announced = true;
            let text = format!("{} starts on the primary", meta.kind);
            progress.event(t, &text);
            timeline.event(t, text);
        }
        let failed = failure_ms.is_some_and(|f| t >= f);
        if failed && !failure_announced {
            failure_announced = true;
            let text = "the primary FAILED hard";
            progress.event(t, text);
            timeline.event(t, text);
        }
        // The model's traffic over this tick.
        let probes = (PROBE_HZ * tick_ms / 1e3) as u64;
        probes_sent += probes;
        if failed && view.active == Slot::A {
            probes_lost += probes;
        } else {
            fabric.carry(SERVICE, probes, probes);
        }
        if d.go && view.master && view.phase == Phase::Normal {
            let _ = handle.inputs.try_send(PairInput::Trigger(Trigger::Policy {
                explanation: d.explanation.clone(),
            }));
            // The failover runs in real time while the trace waits: the
            // model's traffic keeps flowing through whichever device the
            // selector names.
            let before = view.failovers;
            let waited = runtime.block_on(async {
                // Until the driver has taken the trigger (or refused it)...
                let deadline = Instant::now() + Duration::from_secs(1);
                while handle.view.borrow().phase == Phase::Normal && Instant::now() < deadline {
                    fabric.carry(SERVICE, 1, 1);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // ...and until it is back at rest.
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    fabric.carry(SERVICE, 1, 1);
                    let v = handle.view.borrow().clone();
                    if v.phase == Phase::Normal || Instant::now() > deadline {
                        return v;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
            if waited.failovers > before {
                if args.no_replication {
                    sessions_reset = SESSIONS;
                }
                failover_ms.get_or_insert(t);
                decision.get_or_insert((t, d.explanation.clone()));
                if fault_started_ms.is_none_or(|f| t < f) {
                    false_failovers += 1;
                }
                engine
                    .reset_pair(0, now_ms)
                    .map_err(|e| DemoError::Simulation(e.to_string()))?;
            }
        }
        journal.tell_new(|_| t, progress, &mut timeline);
        let view = handle.view.borrow().clone();
        let value = |device: Device, metric: &str| {
            METRICS
                .iter()
                .position(|m| *m == metric)
                .and_then(|i| trace.series_at(device, i)[tick])
                .unwrap_or(0.0)
        };
        let point = Point {
            t_ms: t,
            active: if view.active == Slot::A {
                "primary"
            } else {
                "shadow"
            }
            .into(),
            phase: view.phase.name().into(),
            drift: d.drift_score,
            probability: d.probability,
            warming: d.warming,
            // The generator ramps from the fault's start to the failure.
            fault_level: match (fault_started_ms, failure_ms) {
                (Some(s), Some(f)) if f > s => ((t - s) / (f - s)).clamp(0.0, 1.0),
                _ => 0.0,
            },
            primary_cpu: value(Device::Primary, "cpu"),
            primary_memory: value(Device::Primary, "memory"),
            primary_conntrack_fill: value(Device::Primary, "conntrack-fill"),
            primary_drops: value(Device::Primary, "drops"),
            shadow_cpu: value(Device::Shadow, "cpu"),
            probes_sent,
            probes_received: probes_sent - probes_lost,
            probe_gap_ms: if failed && view.active == Slot::A {
                t - failure_ms.unwrap_or(t)
            } else {
                0.0
            },
            sessions_alive: if failed && view.active == Slot::A {
                0
            } else {
                SESSIONS - sessions_reset
            },
            sessions_failed: if failed && view.active == Slot::A {
                SESSIONS
            } else {
                sessions_reset
            },
            http_5xx: 0,
        };
        progress.status(&point);
        timeline.points.push(point);
        // Run on past the failure for a minute of trace time, then stop.
        if failure_ms.is_some_and(|f| t >= f + 60_000.0) {
            break;
        }
        next += real_tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    stop.cancel();
    let view = handle.view.borrow().clone();
    let sessions_survived = if failure_ms.is_some() && view.active == Slot::A {
        0
    } else {
        SESSIONS - sessions_reset
    };
    let summary = Summary {
        mode: "simulated".into(),
        fault: args.fault.to_string(),
        seed: args.seed,
        failover_completed: view.failovers > 0,
        lead_time_ms: failure_ms.zip(failover_ms).map(|(f, v)| f - v),
        // Not measured: the simulated switch flips atomically and no
        // packets exist.
        switchover_gap_ms: None,
        probes_sent,
        probes_lost,
        // Not measured: the trace waits while the failover runs.
        probes_lost_in_switchover: None,
        sessions_total: SESSIONS,
        sessions_survived,
        longest_session_stall_ms: 0.0,
        false_failovers,
        failovers: view.failovers,
        decision: decision.map(|(_, why)| why),
        decision_to_redirect_ms: view.last_decision_to_redirect_ms,
        fault_started_ms,
        failure_ms,
        failover_ms,
        interrupted,
    };
    Ok(Outcome { summary, timeline })
}
