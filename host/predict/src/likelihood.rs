//! The anomaly-likelihood stage: how unusual the drift score itself is,
//! judged against the detector's own recent history of drift scores.
//!
//! **What.** For every evaluation the stage takes the raw drift score `s`
//! (the output of `umbra_policy_logic::drift`) and
//! 1. averages it over the newest `short` evaluations: `m`;
//! 2. fits a Gaussian (mean `μ`, standard deviation `σ`, floored at
//!    `min-stddev`) to the previous averages `m` of the newest `history`
//!    evaluations — the current one is not part of its own distribution;
//! 3. takes the upper tail probability `q = P(X ≥ m)` of that Gaussian;
//! 4. outputs `ln(q + 10⁻¹⁰) / ln(10⁻¹⁰)`, in [0, 1]: 0 for an average at
//!    or below the usual (`q ≥ ½` gives at most 0.03), 0.5 for `q = 10⁻⁵`,
//!    1 for `q ≤ 10⁻¹⁰`.
//!
//! Until `learn` averages have been seen the output is 0: there is no
//! distribution yet to be unusual against.
//!
//! **Why.** A fixed mapping from z-scores to an alarm score treats every
//! metric alike, but metrics differ in how heavy their tails are: on a
//! bursty metric (tweet volumes, request counts) a |z| of 4 against the
//! seasonal baseline happens every day, on a smooth one (temperatures,
//! latencies) it never does. The likelihood stage measures the drift
//! score in units of the metric's own recent behaviour, so one setting
//! serves both: a bursty metric must burst far beyond its usual bursts, a
//! smooth metric alarms on a deviation that would be routine elsewhere.
//! Averaging over `short` evaluations first rewards a sustained deviation
//! over a single outlier, and the logarithmic output spreads the far tail
//! (where alarms live) across the score range instead of squeezing it into
//! the last digits below 1. This is the anomaly likelihood of Numenta's HTM
//! detector (Ahmad et al., 2017), applied to the drift score.
//!
//! The stage is deterministic and a function of the drift scores it was
//! given only: no labels, no clock.

use std::collections::VecDeque;

use crate::{Error, Result};

/// Configuration of the [`Likelihood`] stage.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `likelihood-history` | 0 | evaluations whose averages form the distribution; 0 turns the stage off |
/// | `likelihood-short` | 10 | evaluations averaged into `m` (≥ 1) |
/// | `likelihood-learn` | 300 | averages needed before the stage outputs anything (≥ 2) |
/// | `likelihood-min-stddev` | 0.001 | floor of the fitted standard deviation (> 0) |
/// | `likelihood-saturate` | 1 | log-scaled output at which the stage outputs 1, in (0, 1] |
#[derive(Clone, Debug, PartialEq)]
pub struct LikelihoodConfig {
    /// Evaluations whose averages form the distribution; 0 turns the stage
    /// off (the output is the drift score).
    pub history: usize,
    /// Evaluations averaged.
    pub short: usize,
    /// Averages needed before the stage outputs anything.
    pub learn: usize,
    /// Floor of the fitted standard deviation.
    pub min_stddev: f64,
    /// Log-scaled output mapped to 1 (the output is the log-scaled tail
    /// divided by this, capped at 1).
    pub saturate: f64,
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self {
            history: 0,
            short: 10,
            learn: 300,
            min_stddev: 0.001,
            saturate: 1.0,
        }
    }
}

impl LikelihoodConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every problem.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.short == 0 {
            problems.push("`likelihood-short` must be at least 1".to_owned());
        }
        if self.learn < 2 {
            problems.push(format!(
                "`likelihood-learn` ({}) must be at least 2",
                self.learn
            ));
        }
        if self.history != 0 && self.history < self.learn {
            problems.push(format!(
                "`likelihood-history` ({}) must be 0 or at least `likelihood-learn` ({})",
                self.history, self.learn
            ));
        }
        if !(self.min_stddev > 0.0 && self.min_stddev.is_finite()) {
            problems.push(format!(
                "`likelihood-min-stddev` ({}) must be a number above 0",
                self.min_stddev
            ));
        }
        if !(self.saturate > 0.0 && self.saturate <= 1.0) {
            problems.push(format!(
                "`likelihood-saturate` ({}) must be in (0, 1]",
                self.saturate
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig(problems))
        }
    }
}

/// Tail probability at which the output is 1.
const TAIL_FLOOR: f64 = 1e-10;

/// Rolling sum over a bounded queue, recomputed from scratch every so often
/// so that rounding errors of the running updates cannot accumulate.
#[derive(Clone, Debug, Default)]
struct Rolling {
    values: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    updates: usize,
}

impl Rolling {
    fn push(&mut self, x: f64, cap: usize) {
        self.values.push_back(x);
        self.sum += x;
        self.sum_sq += x * x;
        while self.values.len() > cap {
            if let Some(old) = self.values.pop_front() {
                self.sum -= old;
                self.sum_sq -= old * old;
            }
        }
        self.updates += 1;
        if self.updates >= 4096 {
            self.updates = 0;
            self.sum = self.values.iter().sum();
            self.sum_sq = self.values.iter().map(|v| v * v).sum();
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn mean(&self) -> f64 {
        if self.values.is_empty() {
            0.0
        } else {
            self.sum / self.values.len() as f64
        }
    }

    /// Population standard deviation.
    fn stddev(&self) -> f64 {
        let n = self.values.len() as f64;
        if n == 0.0 {
            return 0.0;
        }
        let m = self.sum / n;
        (self.sum_sq / n - m * m).max(0.0).sqrt()
    }
}

/// The anomaly-likelihood stage (see the module documentation).
#[derive(Clone, Debug)]
pub struct Likelihood {
    config: LikelihoodConfig,
    short: Rolling,
    averages: Rolling,
}

impl Likelihood {
    /// A stage that has seen nothing.
    pub fn new(config: LikelihoodConfig) -> Self {
        Self {
            config,
            short: Rolling::default(),
            averages: Rolling::default(),
        }
    }

    /// Whether the stage does anything (`likelihood-history` above 0).
    pub fn enabled(&self) -> bool {
        self.config.history > 0
    }

    /// The next output for drift score `score` (NaN counts as 0); the
    /// score itself when the stage is off.
    pub fn update(&mut self, score: f64) -> f64 {
        let score = if score.is_finite() { score } else { 0.0 };
        if !self.enabled() {
            return score;
        }
        self.short.push(score, self.config.short);
        let m = self.short.mean();
        let out = if self.averages.len() >= self.config.learn {
            let mu = self.averages.mean();
            let sigma = self.averages.stddev().max(self.config.min_stddev);
            (log_tail(upper_tail((m - mu) / sigma)) / self.config.saturate).min(1.0)
        } else {
            0.0
        };
        self.averages.push(m, self.config.history);
        out
    }
}

/// `ln(q + floor) / ln(floor)`, clamped to [0, 1].
fn log_tail(q: f64) -> f64 {
    ((q + TAIL_FLOOR).ln() / TAIL_FLOOR.ln()).clamp(0.0, 1.0)
}

/// Upper tail probability of the standard normal distribution, `P(Z ≥ z)`.
pub fn upper_tail(z: f64) -> f64 {
    if z.is_nan() {
        return 0.5;
    }
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function, with a relative error below 1.2·10⁻⁷
/// everywhere (the Chebyshev fit of Numerical Recipes, `erfcc`).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_tail_matches_the_normal_distribution() {
        for (z, q) in [
            (0.0, 0.5),
            (1.0, 0.158_655_253_9),
            (2.0, 0.022_750_131_9),
            (3.0, 0.001_349_898_0),
            (5.0, 2.866_515_7e-7),
            (-1.0, 0.841_344_746_1),
        ] {
            let got = upper_tail(z);
            assert!((got - q).abs() <= 1e-6 * q, "Q({z}) = {got}, want {q}");
        }
        assert_eq!(upper_tail(f64::NAN), 0.5);
        assert_eq!(upper_tail(f64::INFINITY), 0.0);
        assert_eq!(upper_tail(f64::NEG_INFINITY), 1.0);
    }

    #[test]
    fn log_tail_spreads_the_far_tail() {
        assert!(log_tail(0.5) < 0.04);
        assert!((log_tail(1e-5) - 0.5).abs() < 1e-4);
        assert_eq!(log_tail(0.0), 1.0);
        assert_eq!(log_tail(1.0), 0.0);
    }

    #[test]
    fn config_is_checked() {
        assert!(LikelihoodConfig::default().validate().is_ok());
        let Err(Error::InvalidConfig(problems)) = (LikelihoodConfig {
            history: 10,
            short: 0,
            learn: 1,
            min_stddev: 0.0,
            saturate: 1.0,
        })
        .validate() else {
            panic!("expected an invalid configuration");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        let Err(Error::InvalidConfig(problems)) = (LikelihoodConfig {
            history: 50,
            learn: 100,
            ..LikelihoodConfig::default()
        })
        .validate() else {
            panic!("expected an invalid configuration");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn off_passes_scores_through() {
        let mut l = Likelihood::new(LikelihoodConfig::default());
        assert!(!l.enabled());
        assert_eq!(l.update(0.3), 0.3);
        assert_eq!(l.update(f64::NAN), 0.0);
    }

    /// A deterministic score stream with the given noise amplitude.
    fn noise(i: usize, amplitude: f64) -> f64 {
        let x = ((i * 7919) % 1000) as f64 / 1000.0;
        0.2 + amplitude * (x - 0.5)
    }

    #[test]
    fn silent_while_learning_then_adapts_to_the_noise() {
        let config = LikelihoodConfig {
            history: 500,
            short: 5,
            learn: 100,
            min_stddev: 0.001,
            saturate: 1.0,
        };
        // The same jump of the drift score, 0.2 → 0.5, on a quiet and on a
        // noisy stream: unusual on the first, routine on the second.
        let mut peaks = Vec::new();
        for amplitude in [0.02, 0.8] {
            let mut l = Likelihood::new(config.clone());
            for i in 0..100 {
                assert_eq!(l.update(noise(i, amplitude)), 0.0, "learning");
            }
            let mut quiet: f64 = 0.0;
            for i in 100..600 {
                quiet = quiet.max(l.update(noise(i, amplitude)));
            }
            let mut peak: f64 = 0.0;
            for i in 600..610 {
                peak = peak.max(l.update(noise(i, amplitude) + 0.3));
            }
            peaks.push((quiet, peak));
        }
        let (quiet_calm, peak_calm) = peaks[0];
        let (quiet_noisy, peak_noisy) = peaks[1];
        assert!(quiet_calm < 0.5, "calm stream alone scored {quiet_calm}");
        assert!(peak_calm > 0.9, "jump on a calm stream scored {peak_calm}");
        assert!(quiet_noisy < 0.5, "noisy stream alone scored {quiet_noisy}");
        assert!(
            peak_noisy < 0.5,
            "the same jump on a noisy stream scored {peak_noisy}"
        );
    }

    #[test]
    fn deterministic_and_bounded() {
        let config = LikelihoodConfig {
            history: 64,
            short: 3,
            learn: 8,
            min_stddev: 1e-6,
            saturate: 1.0,
        };
        let run = || {
            let mut l = Likelihood::new(config.clone());
            (0..10_000)
                .map(|i| l.update(if i % 97 == 0 { 1.0 } else { noise(i, 0.1) }))
                .collect::<Vec<f64>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().all(|x| (0.0..=1.0).contains(x)));
        assert!(a.iter().any(|&x| x > 0.5));
    }
}
