//! Prometheus metrics of the host daemon, with typed handles so call sites
//! cannot misspell a name or a label, and the `GET /metrics` endpoint that
//! serves them in the Prometheus text format (version 0.0.4).

use std::sync::{Arc, atomic::AtomicU64};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use prometheus_client::{
    encoding::{EncodeLabelSet, prometheus_text},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{OpsError, Result, control::Phase};

/// A gauge holding an `f64` (scores, probabilities, seconds).
type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairLabels {
    pair: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    pair: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceLabels {
    pair: String,
    device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    pair: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    pair: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SwitchLabels {
    switch: String,
}

/// Every metric of the daemon. Shared as `Arc<Metrics>`; every method takes
/// `&self` (the handles are atomics).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    drift_score: Family<PairLabels, FloatGauge>,
    correlation_score: Family<PairLabels, FloatGauge>,
    failure_probability: Family<PairLabels, FloatGauge>,
    pair_phase: Family<PhaseLabels, Gauge>,
    active_device: Family<DeviceLabels, Gauge>,
    failovers: Family<TriggerLabels, Counter>,
    decisions: Family<PairLabels, Counter>,
    policy_faults: Family<PolicyLabels, Counter>,
    p4runtime_errors: Family<SwitchLabels, Counter>,
    replication_lag: Family<DirectionLabels, FloatGauge>,
    decision_to_redirect: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The daemon's metrics, all registered, none with a value yet.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let drift_score = Family::default();
        registry.register(
            "umbra_drift_score",
            "The drift policy's latest score per pair",
            drift_score.clone(),
        );
        let correlation_score = Family::default();
        registry.register(
            "umbra_correlation_score",
            "The correlation policy's latest score per pair",
            correlation_score.clone(),
        );
        let failure_probability = Family::default();
        registry.register(
            "umbra_failure_probability",
            "The predictor's latest failure probability per pair",
            failure_probability.clone(),
        );
        let pair_phase = Family::default();
        registry.register(
            "umbra_pair_phase",
            "1 for the current phase of the pair's failover state machine, 0 for the others",
            pair_phase.clone(),
        );
        let active_device = Family::default();
        registry.register(
            "umbra_active_device",
            "1 for the device carrying the pair's traffic, 0 for its standby",
            active_device.clone(),
        );
        // The text encoder appends `_total` to counters' names, so they are
        // registered without it.
        let failovers = Family::default();
        registry.register(
            "umbra_failovers",
            "Failovers started, per pair and trigger",
            failovers.clone(),
        );
        let decisions = Family::default();
        registry.register(
            "umbra_decisions",
            "Failover decisions evaluated per pair",
            decisions.clone(),
        );
        let policy_faults = Family::default();
        registry.register(
            "umbra_policy_faults",
            "Policy faults (trap, deadline, out of memory, invalid output) answered by the native fallback",
            policy_faults.clone(),
        );
        let p4runtime_errors = Family::default();
        registry.register(
            "umbra_p4runtime_errors",
            "Failed P4Runtime calls per switch",
            p4runtime_errors.clone(),
        );
        let replication_lag = Family::default();
        registry.register(
            "umbra_replication_lag_seconds",
            "How far a replication target is behind its source",
            replication_lag.clone(),
        );
        // 1 ms to about 4 s: a redirect is one table write after the final
        // state sync, normally a few milliseconds.
        let decision_to_redirect = Histogram::new(exponential_buckets(0.001, 2.0, 13));
        registry.register(
            "umbra_decision_to_redirect_seconds",
            "Time from a go decision to the selector write being acknowledged",
            decision_to_redirect.clone(),
        );
        Self {
            registry,
            drift_score,
            correlation_score,
            failure_probability,
            pair_phase,
            active_device,
            failovers,
            decisions,
            policy_faults,
            p4runtime_errors,
            replication_lag,
            decision_to_redirect,
        }
    }

    /// The handles of one pair's metrics.
    pub fn pair<'a>(&'a self, pair: &str) -> PairMetrics<'a> {
        PairMetrics {
            metrics: self,
            pair: pair.to_owned(),
        }
    }

    /// Counts one policy fault of `policy` (answered by the fallback).
    pub fn policy_fault(&self, policy: &str) {
        self.policy_faults
            .get_or_create(&PolicyLabels {
                policy: policy.to_owned(),
            })
            .inc();
    }

    /// Counts one failed P4Runtime call to `switch`.
    pub fn p4runtime_error(&self, switch: &str) {
        self.p4runtime_errors
            .get_or_create(&SwitchLabels {
                switch: switch.to_owned(),
            })
            .inc();
    }

    /// Records the time from a go decision to the acknowledged redirect.
    pub fn observe_decision_to_redirect(&self, seconds: f64) {
        self.decision_to_redirect.observe(seconds);
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an error here would be a bug
        // in the encoder, and a partial exposition is still the best answer.
        if let Err(error) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding the metrics failed");
        }
        text
    }
}

/// One pair's metrics (from [`Metrics::pair`]).
#[derive(Debug)]
pub struct PairMetrics<'a> {
    metrics: &'a Metrics,
    pair: String,
}

impl PairMetrics<'_> {
    fn labels(&self) -> PairLabels {
        PairLabels {
            pair: self.pair.clone(),
        }
    }

    /// Sets the drift policy's latest score.
    pub fn set_drift_score(&self, score: f64) {
        self.metrics
            .drift_score
            .get_or_create(&self.labels())
            .set(score);
    }

    /// Sets the correlation policy's latest score.
    pub fn set_correlation_score(&self, score: f64) {
        self.metrics
            .correlation_score
            .get_or_create(&self.labels())
            .set(score);
    }

    /// Sets the predictor's latest failure probability.
    pub fn set_probability(&self, probability: f64) {
        self.metrics
            .failure_probability
            .get_or_create(&self.labels())
            .set(probability);
    }

    /// Sets the current phase: 1 for it, 0 for every other phase (so a
    /// query for one phase always finds a series).
    pub fn set_phase(&self, current: Phase) {
        for phase in Phase::ALL {
            self.metrics
                .pair_phase
                .get_or_create(&PhaseLabels {
                    pair: self.pair.clone(),
                    phase: phase.as_str(),
                })
                .set(i64::from(phase == current));
        }
    }

    /// Sets which device carries the traffic (1) and which is the standby
    /// (0); after a failover the two swap.
    pub fn set_active_device(&self, active: &str, standby: &str) {
        for (device, value) in [(standby, 0), (active, 1)] {
            self.metrics
                .active_device
                .get_or_create(&DeviceLabels {
                    pair: self.pair.clone(),
                    device: device.to_owned(),
                })
                .set(value);
        }
    }

    /// Counts a failover started by `trigger` (`drift`, `probability`,
    /// `manual`...).
    pub fn failover(&self, trigger: &str) {
        self.metrics
            .failovers
            .get_or_create(&TriggerLabels {
                pair: self.pair.clone(),
                trigger: trigger.to_owned(),
            })
            .inc();
    }

    /// Counts one evaluated decision.
    pub fn decision(&self) {
        self.metrics.decisions.get_or_create(&self.labels()).inc();
    }

    /// Sets the replication lag in one direction (`to-standby`,
    /// `to-active`).
    pub fn set_replication_lag(&self, direction: &str, seconds: f64) {
        self.metrics
            .replication_lag
            .get_or_create(&DirectionLabels {
                pair: self.pair.clone(),
                direction: direction.to_owned(),
            })
            .set(seconds);
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled; every
/// other path is 404.
///
/// # Errors
/// [`OpsError::MetricsServer`] when the listener fails.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics endpoint listening");
    }
    // Axum answers unknown paths with 404 and other methods on /metrics
    // with 405 by itself.
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(OpsError::MetricsServer)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
        metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_gauge_has_exactly_one_current_phase() {
        let metrics = Metrics::new();
        metrics.pair("web").set_phase(Phase::Normal);
        metrics.pair("web").set_phase(Phase::Verifying);
        let text = metrics.encode();
        assert!(text.contains(r#"umbra_pair_phase{pair="web",phase="verifying"} 1"#));
        assert!(text.contains(r#"umbra_pair_phase{pair="web",phase="normal"} 0"#));
        let ones = text
            .lines()
            .filter(|l| l.starts_with("umbra_pair_phase{") && l.ends_with(" 1"))
            .count();
        assert_eq!(ones, 1, "{text}");
    }
}
