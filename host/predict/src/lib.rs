//! Predictive engine features: time-aligned metric windows, baselines per
//! time-of-week bucket, EWMA, and the streaming drift detector.
//!
//! - [`baseline`]: Welford statistics and the historical baseline of one
//!   metric per time-of-week bucket.
//! - [`features`]: per-device windows of metrics aligned on a fixed tick,
//!   missing samples carried forward under an explicit mask, and the
//!   [`umbra_policy_logic::Observation`] the policies score.
//! - [`detector`]: the streaming [`DriftDetector`], which scores every new
//!   sample with the default drift decision of `umbra-policy-logic` (the
//!   very function the default WebAssembly drift policy runs) and shapes the
//!   resulting score into alarms.
//! - [`adaptive`]: the adaptive scale of the drift thresholds, from a
//!   quantile of the detector's own recent deviations.
//! - [`likelihood`]: the anomaly-likelihood stage between the drift score
//!   and the alarm shaping: how unusual the drift score is against the
//!   detector's own recent drift scores.
//!
//! Invariants: no I/O and no clock (time comes from the samples); a value
//! being scored never sits in its own baseline (samples are folded into the
//! baseline only once they have left the decision window, see
//! [`features`]).

#![forbid(unsafe_code)]

pub mod adaptive;
pub mod baseline;
pub mod detector;
pub mod features;
pub mod likelihood;

pub use adaptive::{AdaptiveConfig, AdaptiveScale};
pub use baseline::{SeasonalBaseline, Welford};
pub use detector::{AlarmShaper, DetectorConfig, DriftDetector, DriftOutput, ShapingConfig};
pub use features::{Device, DeviceFeatures, FeatureConfig, MetricFeatures, PairFeatures, Sample};
pub use likelihood::{Likelihood, LikelihoodConfig};

/// Result of the fallible operations of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the predictive engine's features and detector.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A feature, shaping or detector configuration is invalid; every
    /// problem found is listed. The operator who wrote it is at fault.
    #[error("invalid configuration: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    /// The drift configuration was refused by `umbra-policy-logic`. The
    /// operator who wrote it is at fault.
    #[error("invalid drift configuration")]
    Drift(#[source] umbra_policy_logic::Error),
    /// A sample belongs to a tick that is already closed. The caller (the
    /// telemetry feeding the engine) is at fault: samples of a device must
    /// arrive in time order, at most one tick late.
    #[error(
        "sample of `{metric}` at {timestamp_ms} ms is older than the open tick ({open_tick_ms} ms)"
    )]
    OutOfOrder {
        /// Metric of the sample.
        metric: String,
        /// Time of the sample.
        timestamp_ms: i64,
        /// Start of the tick currently open.
        open_tick_ms: i64,
    },
    /// A metric name is empty or contains a newline. The caller (the
    /// telemetry feeding the engine) is at fault.
    #[error("metric name {0:?} is empty or contains a newline")]
    BadMetricName(String),
    /// A sample's value is NaN or infinite. The caller is at fault: a
    /// missing measurement is expressed by sending nothing for the tick.
    #[error("sample of `{metric}` at {timestamp_ms} ms is not a finite number")]
    NonFinite {
        /// Metric of the sample.
        metric: String,
        /// Time of the sample.
        timestamp_ms: i64,
    },
}
