//! Adaptive deviation scale: the z thresholds of the drift score stretched
//! to the metric's own recent behaviour.
//!
//! **What.** The stage keeps the newest `history` deviation magnitudes it
//! was shown (|EWMA z| of the drift analysis, see
//! [`crate::detector`]) and answers a *scale* `k ≥ 1`:
//!
//! ```text
//! k = max(1, Q_q(history) / ratio)
//! ```
//!
//! where `Q_q` is the empirical `q`-quantile of the history (the value
//! being scored is not part of it). The detector then scores the drift with
//! `z-low` and `z-high` multiplied by `k`, which is the same as dividing the
//! level by `k`: once the metric's usual deviations (its `q`-quantile)
//! exceed `ratio`, a deviation counts in units of them rather than of the
//! baseline's standard deviation. Until `min-history` magnitudes have been
//! seen `k` is 1.
//!
//! **Why.** The seasonal baseline's standard deviation describes the bulk
//! of a metric, not its tail. On a bursty metric (tweet volumes, request
//! counts) a |z| of 4 against the baseline happens several times a day and
//! every one of them would be an alarm; on a smooth one (latencies,
//! temperatures) it never happens. A quantile of the recent |z| measures
//! the tail directly: for a well-behaved metric `Q_0.95` of |z| is near 2
//! and `k` stays 1 (the configured thresholds apply unchanged), for a
//! bursty one it is several times larger and the thresholds rise with it.
//! A quantile rather than a fitted Gaussian, because the magnitudes are
//! heavy-tailed by construction (that is the point); the scale never goes
//! below 1, so a calm metric is never made more sensitive than configured.
//!
//! Deterministic, and a function of the magnitudes it was shown only (no
//! labels, no clock).

use std::collections::VecDeque;

use crate::{Error, Result};

/// Configuration of the [`AdaptiveScale`] stage.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `adapt-history` | 0 | magnitudes the quantile is taken over; 0 turns the stage off (`k` = 1) |
/// | `adapt-quantile` | 0.95 | quantile `q` of the history, in (0, 1) |
/// | `adapt-ratio` | 1.5 | `ratio`: the quantile at which the scale starts to exceed 1 (> 0) |
/// | `adapt-min-history` | 300 | magnitudes needed before the scale moves from 1 (≥ 1): the 0.95-quantile of 300 values rests on the 15 largest, of 100 on only 5 |
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveConfig {
    /// Magnitudes the quantile is taken over; 0 turns the stage off.
    pub history: usize,
    /// Quantile of the history.
    pub quantile: f64,
    /// Quantile at which the scale starts to exceed 1.
    pub ratio: f64,
    /// Magnitudes needed before the scale moves from 1.
    pub min_history: usize,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            history: 0,
            quantile: 0.95,
            ratio: 1.5,
            min_history: 300,
        }
    }
}

impl AdaptiveConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every problem.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            problems.push(format!(
                "`adapt-quantile` ({}) must be in (0, 1)",
                self.quantile
            ));
        }
        if !(self.ratio > 0.0 && self.ratio.is_finite()) {
            problems.push(format!(
                "`adapt-ratio` ({}) must be a number above 0",
                self.ratio
            ));
        }
        if self.min_history == 0 {
            problems.push("`adapt-min-history` must be at least 1".to_owned());
        }
        if self.history != 0 && self.history < self.min_history {
            problems.push(format!(
                "`adapt-history` ({}) must be 0 or at least `adapt-min-history` ({})",
                self.history, self.min_history
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig(problems))
        }
    }
}

/// The adaptive scale of one deviation stream (see the module
/// documentation).
#[derive(Clone, Debug)]
pub struct AdaptiveScale {
    config: AdaptiveConfig,
    /// Magnitudes in arrival order.
    recent: VecDeque<f64>,
    /// The same magnitudes, sorted.
    sorted: Vec<f64>,
}

impl AdaptiveScale {
    /// A stage that has seen nothing.
    pub fn new(config: AdaptiveConfig) -> Self {
        Self {
            config,
            recent: VecDeque::new(),
            sorted: Vec::new(),
        }
    }

    /// Whether the stage does anything (`adapt-history` above 0).
    pub fn enabled(&self) -> bool {
        self.config.history > 0
    }

    /// The scale `k ≥ 1` for the next magnitude, from the history so far.
    pub fn scale(&self) -> f64 {
        if !self.enabled() || self.sorted.len() < self.config.min_history {
            return 1.0;
        }
        let n = self.sorted.len();
        // Truncation: the index is in [0, n - 1] as the quantile is in (0, 1).
        let i = ((self.config.quantile * n as f64) as usize).min(n - 1);
        (self.sorted[i] / self.config.ratio).max(1.0)
    }

    /// Adds a magnitude to the history (ignored unless finite; negative
    /// values count as their absolute value).
    pub fn push(&mut self, magnitude: f64) {
        if !self.enabled() || !magnitude.is_finite() {
            return;
        }
        let x = magnitude.abs();
        let at = self.sorted.partition_point(|&v| v < x);
        self.sorted.insert(at, x);
        self.recent.push_back(x);
        if self.recent.len() > self.config.history
            && let Some(old) = self.recent.pop_front()
        {
            let at = self.sorted.partition_point(|&v| v < old);
            self.sorted.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(history: usize) -> AdaptiveConfig {
        AdaptiveConfig {
            history,
            quantile: 0.9,
            ratio: 2.0,
            min_history: 10,
        }
    }

    #[test]
    fn config_is_checked() {
        assert!(AdaptiveConfig::default().validate().is_ok());
        assert!(config(10).validate().is_ok());
        let Err(Error::InvalidConfig(problems)) = (AdaptiveConfig {
            history: 5,
            quantile: 1.0,
            ratio: 0.0,
            min_history: 10,
        })
        .validate() else {
            panic!("expected an invalid configuration");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn off_or_learning_is_one() {
        let mut off = AdaptiveScale::new(AdaptiveConfig::default());
        assert!(!off.enabled());
        for _ in 0..500 {
            off.push(50.0);
        }
        assert_eq!(off.scale(), 1.0);
        let mut s = AdaptiveScale::new(config(100));
        for _ in 0..9 {
            s.push(50.0);
            assert_eq!(s.scale(), 1.0, "still learning");
        }
        s.push(50.0);
        assert_eq!(s.scale(), 25.0);
    }

    #[test]
    fn calm_metrics_keep_the_configured_thresholds() {
        let mut s = AdaptiveScale::new(config(100));
        for i in 0..1000 {
            s.push(f64::from(i % 10) * 0.2); // |z| up to 1.8, below the ratio
        }
        assert_eq!(s.scale(), 1.0);
    }

    #[test]
    fn scale_is_the_quantile_of_the_newest_history() {
        let mut s = AdaptiveScale::new(config(100));
        // 0, 1, ..., 99: the 0.9-quantile is 90, the scale 45.
        for i in 0..100 {
            s.push(f64::from(i));
        }
        assert_eq!(s.scale(), 45.0);
        // Negative and non-finite magnitudes: absolute value, ignored.
        s.push(f64::NAN);
        s.push(f64::INFINITY);
        assert_eq!(s.scale(), 45.0);
        // A calm spell pushes the bursty past out of the history.
        for _ in 0..100 {
            s.push(-1.0);
        }
        assert_eq!(s.scale(), 1.0);
        assert_eq!(s.sorted.len(), 100);
        assert_eq!(s.recent.len(), 100);
    }
}
