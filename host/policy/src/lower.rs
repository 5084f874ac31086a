//! Borrowed mirrors of the WIT input records (the observation and the
//! failover input), lowered straight from the
//! `umbra-policy-logic` types the caller holds: no string or sample vector
//! is copied on the host before the canonical ABI copies it into the
//! policy's memory (the owned records of the generated bindings would cost
//! a deep clone of the observation per call, about 2 µs for 16 series of 60
//! samples per device).
//!
//! The field names and order are those of `sdk/wit/policy.wit`; wasmtime
//! type-checks them against the component's export on every call, so a
//! mismatch can never lower wrong bytes: it fails the validation call when
//! the policy is loaded.

use umbra_policy_logic as logic;
use wasmtime::component::{ComponentType, Lower};

#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
pub(crate) struct Baseline {
    mean: f64,
    stddev: f64,
    samples: u32,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct DeviceWindow<'a> {
    metrics: &'a str,
    values: &'a [f64],
    missing: &'a [u32],
    baselines: Vec<Baseline>,
}

#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
pub(crate) struct StatusClasses {
    informational: u32,
    success: u32,
    redirect: u32,
    #[component(name = "client-error")]
    client_error: u32,
    #[component(name = "server-error")]
    server_error: u32,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct HealthCheck<'a> {
    name: &'a str,
    ok: bool,
    #[component(name = "latency-ms")]
    latency_ms: f64,
    #[component(name = "status-classes")]
    status_classes: StatusClasses,
    #[component(name = "db-connected")]
    db_connected: Option<bool>,
}

#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
pub(crate) struct MirrorStats {
    packets: u64,
    bytes: u64,
    flows: u32,
    #[component(name = "tcp-resets")]
    tcp_resets: u32,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct Prediction<'a> {
    probability: f64,
    #[component(name = "horizon-ms")]
    horizon_ms: u64,
    #[component(name = "model-version")]
    model_version: &'a str,
}

/// `umbra:policy/types.observation`, borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct Observation<'a> {
    #[component(name = "now-ms")]
    now_ms: i64,
    #[component(name = "timestamps-ms")]
    timestamps_ms: &'a [i64],
    primary: DeviceWindow<'a>,
    shadow: DeviceWindow<'a>,
    health: Vec<HealthCheck<'a>>,
    mirror: MirrorStats,
    prediction: Option<Prediction<'a>>,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct DriftResult<'a> {
    score: f64,
    #[component(name = "rate-of-change")]
    rate_of_change: f64,
    explanation: &'a str,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct Signal<'a> {
    name: &'a str,
    weight: f64,
    detail: &'a str,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct CorrelationResult<'a> {
    score: f64,
    signals: Vec<Signal<'a>>,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct FailoverState<'a> {
    #[component(name = "consecutive-over")]
    consecutive_over: u32,
    #[component(name = "last-go-ms")]
    last_go_ms: Option<i64>,
    #[component(name = "recent-go-ms")]
    recent_go_ms: &'a [i64],
}

/// `umbra:policy/types.failover-input`, borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct FailoverInput<'a> {
    #[component(name = "now-ms")]
    now_ms: i64,
    drift: DriftResult<'a>,
    correlation: CorrelationResult<'a>,
    prediction: Option<Prediction<'a>>,
    state: FailoverState<'a>,
}

fn baseline(b: &logic::Baseline) -> Baseline {
    Baseline {
        mean: b.mean,
        stddev: b.stddev,
        samples: b.samples,
    }
}

fn window(w: &logic::DeviceWindow) -> DeviceWindow<'_> {
    let (metrics, values, missing, baselines) = w.columns();
    DeviceWindow {
        metrics,
        values,
        missing,
        baselines: baselines.iter().map(baseline).collect(),
    }
}

fn prediction(p: &logic::Prediction) -> Prediction<'_> {
    Prediction {
        probability: p.probability,
        horizon_ms: p.horizon_ms,
        model_version: &p.model_version,
    }
}

/// Borrows `o` for lowering: the baselines of each device and the health
/// checks (small vectors) are the only allocations.
pub(crate) fn observation(o: &logic::Observation) -> Observation<'_> {
    Observation {
        now_ms: o.now_ms,
        timestamps_ms: &o.timestamps_ms,
        primary: window(&o.primary),
        shadow: window(&o.shadow),
        health: o
            .health
            .iter()
            .map(|h| HealthCheck {
                name: &h.name,
                ok: h.ok,
                latency_ms: h.latency_ms,
                status_classes: StatusClasses {
                    informational: h.status_classes.informational,
                    success: h.status_classes.success,
                    redirect: h.status_classes.redirect,
                    client_error: h.status_classes.client_error,
                    server_error: h.status_classes.server_error,
                },
                db_connected: h.db_connected,
            })
            .collect(),
        mirror: MirrorStats {
            packets: o.mirror.packets,
            bytes: o.mirror.bytes,
            flows: o.mirror.flows,
            tcp_resets: o.mirror.tcp_resets,
        },
        prediction: o.prediction.as_ref().map(prediction),
    }
}

/// Borrows `i` for lowering: the list of signals is the only allocation.
pub(crate) fn failover_input(i: &logic::FailoverInput) -> FailoverInput<'_> {
    FailoverInput {
        now_ms: i.now_ms,
        drift: DriftResult {
            score: i.drift.score,
            rate_of_change: i.drift.rate_of_change,
            explanation: &i.drift.explanation,
        },
        correlation: CorrelationResult {
            score: i.correlation.score,
            signals: i
                .correlation
                .signals
                .iter()
                .map(|s| Signal {
                    name: &s.name,
                    weight: s.weight,
                    detail: &s.detail,
                })
                .collect(),
        },
        prediction: i.prediction.as_ref().map(prediction),
        state: FailoverState {
            consecutive_over: i.state.consecutive_over,
            last_go_ms: i.state.last_go_ms,
            recent_go_ms: &i.state.recent_go_ms,
        },
    }
}
