//! A metric's deviation from its historical baseline, as z-scores over the
//! window, and the measures of how fast that deviation grows. Shared by the
//! default drift and correlation decisions, and usable by authors who want
//! the same numbers with a different way of scoring them.

use std::fmt;

use crate::config::{ConfigReader, num};
use crate::stats;
#[cfg(test)]
use crate::types::Series;
use crate::types::{ConfigPairs, SeriesRef};

/// Largest |z| kept: a baseline with almost no spread would otherwise turn a
/// small change into an astronomically large z and slope.
pub const Z_LIMIT: f64 = 1000.0;

/// Smallest standard deviation used, whatever the baseline and the ratio say.
const MIN_SIGMA: f64 = 1e-9;

/// How a metric's samples are turned into z-scores against its baseline.
///
/// Configuration keys (shared by the drift and correlation policies):
///
/// | key | default | meaning |
/// |---|---|---|
/// | `ewma-alpha` | 0.3 | smoothing of the z-score level, in (0, 1] |
/// | `min-samples` | 5 | present samples a metric needs to be scored (≥ 2) |
/// | `min-baseline-samples` | 10 | samples a baseline needs to be trusted |
/// | `min-stddev-ratio` | 0.01 | floor of the baseline stddev, as a fraction of its mean |
#[derive(Clone, Debug, PartialEq)]
pub struct ZScoring {
    /// Smoothing factor of the EWMA of the z-scores (the "level"), in (0, 1].
    pub ewma_alpha: f64,
    /// Present samples a metric needs in the window to be scored (≥ 2).
    pub min_samples: usize,
    /// Samples a baseline must have been built from to be trusted.
    pub min_baseline_samples: u32,
    /// Floor of the baseline's standard deviation as a fraction of |mean|,
    /// so that a metric that never moved historically does not turn noise
    /// into huge z-scores.
    pub min_stddev_ratio: f64,
}

impl Default for ZScoring {
    fn default() -> Self {
        Self {
            ewma_alpha: 0.3,
            min_samples: 5,
            min_baseline_samples: 10,
            min_stddev_ratio: 0.01,
        }
    }
}

impl ZScoring {
    /// Reads the shared keys.
    pub(crate) fn read(reader: &mut ConfigReader<'_>) -> Self {
        let d = Self::default();
        Self {
            ewma_alpha: reader.f64(
                "ewma-alpha",
                d.ewma_alpha,
                |a| a > 0.0 && a <= 1.0,
                "in (0, 1]",
            ),
            min_samples: reader.usize("min-samples", d.min_samples, |n| n >= 2, "at least 2"),
            min_baseline_samples: reader.u32(
                "min-baseline-samples",
                d.min_baseline_samples,
                |_| true,
                "",
            ),
            min_stddev_ratio: reader.f64(
                "min-stddev-ratio",
                d.min_stddev_ratio,
                |r| r >= 0.0,
                "at least 0",
            ),
        }
    }

    /// Writes the shared keys.
    pub(crate) fn write(&self, out: &mut ConfigPairs) {
        out.push(("ewma-alpha".into(), num(self.ewma_alpha)));
        out.push(("min-samples".into(), self.min_samples.to_string()));
        out.push((
            "min-baseline-samples".into(),
            self.min_baseline_samples.to_string(),
        ));
        out.push(("min-stddev-ratio".into(), num(self.min_stddev_ratio)));
    }
}

/// Which side of the baseline counts as deviating, for one metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Both sides: the magnitude is |z|.
    #[default]
    Both,
    /// Only above the baseline (e.g. error rates): the magnitude is
    /// max(z, 0).
    Rising,
    /// Only below the baseline (e.g. traffic volumes, where a rise is load
    /// and a fall is failure): the magnitude is max(−z, 0).
    Falling,
}

impl Direction {
    /// The magnitude of the deviation `z` counted in this direction (≥ 0).
    pub fn magnitude(self, z: f64) -> f64 {
        match self {
            Self::Both => z.abs(),
            Self::Rising => stats::positive(z),
            Self::Falling => stats::positive(-z),
        }
    }
}

/// Why a metric could not be scored.
#[derive(Clone, Debug, PartialEq)]
pub enum Unusable {
    /// The baseline was built from too few samples (or none yet).
    NoBaseline {
        /// Samples the baseline has.
        samples: u32,
        /// Samples required by [`ZScoring::min_baseline_samples`].
        needed: u32,
    },
    /// The baseline's mean or standard deviation is not a finite number, or
    /// the standard deviation is negative.
    BadBaseline,
    /// Too few samples were present in the window.
    TooFewSamples {
        /// Samples present.
        present: usize,
        /// Samples required by [`ZScoring::min_samples`].
        needed: usize,
    },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBaseline { samples, needed } => {
                write!(f, "no baseline yet: {samples} of {needed} samples")
            }
            Self::BadBaseline => f.write_str("baseline is not a valid mean and stddev"),
            Self::TooFewSamples { present, needed } => {
                write!(f, "{present} samples present, {needed} needed")
            }
        }
    }
}

/// One sample of a [`Deviation`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZSample {
    /// Time of the sample, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Seconds from the observation's newest tick (≤ 0 for a well-formed
    /// observation).
    pub t_s: f64,
    /// z-score against the baseline, clamped to ±[`Z_LIMIT`].
    pub z: f64,
}

/// One metric's deviation from its baseline over the window.
#[derive(Clone, Debug, PartialEq)]
pub struct Deviation {
    /// The samples used (present, finite values), oldest first.
    pub samples: Vec<ZSample>,
    /// EWMA of the z-scores at the newest sample: the current, smoothed
    /// deviation.
    pub level: f64,
    /// Baseline mean.
    pub mean: f64,
    /// Standard deviation the z-scores were computed with (the baseline's,
    /// raised to the configured floor).
    pub sigma: f64,
    /// Newest value used.
    pub last_value: f64,
}

/// How one metric's samples become z-scores: its baseline mean, the
/// standard deviation used and the EWMA factor.
struct Scale {
    mean: f64,
    sigma: f64,
    /// `1 / sigma`: multiplying by it instead of dividing per sample (a
    /// divide costs several multiplies; the results differ by at most an
    /// ulp) matters, this runs 60 times per metric per device per tick.
    inv_sigma: f64,
    alpha: f64,
}

impl Scale {
    fn of(series: SeriesRef<'_>, scoring: &ZScoring) -> Result<Self, Unusable> {
        let baseline = &series.baseline;
        if baseline.samples < scoring.min_baseline_samples || baseline.samples == 0 {
            return Err(Unusable::NoBaseline {
                samples: baseline.samples,
                needed: scoring.min_baseline_samples.max(1),
            });
        }
        if !baseline.mean.is_finite() || !baseline.stddev.is_finite() || baseline.stddev < 0.0 {
            return Err(Unusable::BadBaseline);
        }
        let mean = baseline.mean;
        let floor = if scoring.min_stddev_ratio.is_finite() {
            scoring.min_stddev_ratio * mean.abs()
        } else {
            0.0
        };
        let sigma = baseline.stddev.max(floor).max(MIN_SIGMA);
        // An invalid alpha (only possible when the struct is built by hand)
        // follows the last sample.
        let alpha = if scoring.ewma_alpha > 0.0 && scoring.ewma_alpha <= 1.0 {
            scoring.ewma_alpha
        } else {
            1.0
        };
        Ok(Self {
            mean,
            sigma,
            inv_sigma: 1.0 / sigma,
            alpha,
        })
    }

    /// The z-score of `v`. Both operands are finite, so the product is
    /// finite or ±∞ and the clamp bounds it: a tiny sigma cannot produce
    /// absurd z.
    fn z(&self, v: f64) -> f64 {
        ((v - self.mean) * self.inv_sigma).clamp(-Z_LIMIT, Z_LIMIT)
    }
}

/// The values of `series` at the observation's timestamps when every one is
/// present (none marked missing, all finite): the usual window, which the
/// fast paths score straight from the values.
fn complete<'a>(series: SeriesRef<'a>, timestamps_ms: &[i64]) -> Option<&'a [f64]> {
    let values = &series.values[..series.values.len().min(timestamps_ms.len())];
    (!series.has_missing() && values.iter().all(|v| v.is_finite())).then_some(values)
}

/// One metric's current deviation and how fast it grows: see
/// [`Deviation::growth`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    /// EWMA of the z-scores at the newest sample (signed).
    pub level: f64,
    /// Least-squares slope of the deviation's magnitude, z per second.
    pub rate: f64,
    /// Upward CUSUM of the derivative of the magnitude, in z.
    pub cusum: f64,
    /// Newest value used.
    pub last_value: f64,
    /// Baseline mean.
    pub mean: f64,
    /// Standard deviation the z-scores were computed with.
    pub sigma: f64,
    /// Samples used.
    pub samples: usize,
}

impl Deviation {
    /// [`Deviation::level`] alone, without keeping the samples: what a
    /// caller that needs only the current deviation pays. The same number,
    /// bit for bit, and the same errors as [`Deviation::of`].
    ///
    /// # Errors
    ///
    /// As [`Deviation::of`].
    pub fn level_of(
        series: SeriesRef<'_>,
        timestamps_ms: &[i64],
        scoring: &ZScoring,
    ) -> Result<f64, Unusable> {
        let Some(values) = complete(series, timestamps_ms) else {
            // Rare: take the general path.
            return Self::of(series, timestamps_ms, scoring).map(|d| d.level);
        };
        let n = values.len();
        let scale = Scale::of(series, scoring)?;
        let needed = scoring.min_samples.max(2);
        if n < needed {
            return Err(Unusable::TooFewSamples { present: n, needed });
        }
        let z = values.iter().map(|&v| scale.z(v));
        Ok(stats::ewma_last(z, scale.alpha).unwrap_or(0.0))
    }

    /// What the default drift decision takes from one metric — the level,
    /// and the growth rate and CUSUM of the deviation's magnitude in
    /// `direction` over the newest `window` samples (as
    /// [`Deviation::growth_rate`] and [`Deviation::growth_cusum`]) — the
    /// same numbers, bit for bit, as through [`Deviation::of`], but for a
    /// window with every sample present (the usual case) computed straight
    /// from the values, without building the samples.
    ///
    /// # Errors
    ///
    /// As [`Deviation::of`].
    pub fn growth(
        series: SeriesRef<'_>,
        timestamps_ms: &[i64],
        scoring: &ZScoring,
        window: usize,
        slack: f64,
        direction: Direction,
    ) -> Result<Growth, Unusable> {
        let Some(values) = complete(series, timestamps_ms) else {
            // Rare: take the general path.
            let d = Self::of(series, timestamps_ms, scoring)?;
            return Ok(Growth {
                level: d.level,
                rate: d.growth_rate(window, direction),
                cusum: d.growth_cusum(window, slack, direction),
                last_value: d.last_value,
                mean: d.mean,
                sigma: d.sigma,
                samples: d.len(),
            });
        };
        let n = values.len();
        let times = &timestamps_ms[..n];
        let scale = Scale::of(series, scoring)?;
        let needed = scoring.min_samples.max(2);
        if n < needed {
            return Err(Unusable::TooFewSamples { present: n, needed });
        }
        let level =
            stats::ewma_last(values.iter().map(|&v| scale.z(v)), scale.alpha).unwrap_or(0.0);
        // The same times and magnitudes `of` would store for these samples,
        // computed once: the slope's first pass and the CUSUM are folded in
        // on the way, and the slope's second pass reads them back from the
        // stack (for the usual window sizes).
        let origin = times[n - 1] as f64;
        let start = n.saturating_sub(window);
        let points = times[start..]
            .iter()
            .zip(&values[start..])
            .map(|(&t, &v)| ((t as f64 - origin) * 1e-3, direction.magnitude(scale.z(v))));
        let mut sums = stats::SlopeSums::default();
        let mut cusum = stats::CusumRun::new(slack);
        let mut stack = [(0.0, 0.0); 64];
        let mut heap = Vec::new();
        let on_stack = n - start <= stack.len();
        for (i, (t, m)) in points.enumerate() {
            sums.push(t, m);
            cusum.push(t, m);
            if on_stack {
                stack[i] = (t, m);
            } else {
                heap.push((t, m));
            }
        }
        let kept: &[(f64, f64)] = if on_stack { &stack[..n - start] } else { &heap };
        Ok(Growth {
            level,
            rate: sums.slope(kept.iter().copied()).unwrap_or(0.0),
            cusum: cusum.finish().rise,
            last_value: values[n - 1],
            mean: scale.mean,
            sigma: scale.sigma,
            samples: n,
        })
    }

    /// Computes the deviation of `series` from its baseline; `timestamps_ms`
    /// are the observation's sample times (samples beyond the shorter of
    /// the two are ignored).
    ///
    /// # Errors
    ///
    /// [`Unusable`] when the baseline is missing or invalid, or too few
    /// samples are present.
    pub fn of(
        series: SeriesRef<'_>,
        timestamps_ms: &[i64],
        scoring: &ZScoring,
    ) -> Result<Self, Unusable> {
        let scale = Scale::of(series, scoring)?;

        // The general path (samples missing or not finite, or callers that
        // want every sample); the usual window is scored by `growth` and
        // `level_of` without building samples. One allocation, one pass.
        let n = series.values.len().min(timestamps_ms.len());
        let origin = timestamps_ms.get(n.wrapping_sub(1)).copied().unwrap_or(0) as f64;
        let mut missing = Vec::new();
        if series.has_missing() {
            missing = vec![false; n];
            for i in series.missing() {
                if let Some(m) = missing.get_mut(i) {
                    *m = true;
                }
            }
        }
        let mut samples = Vec::with_capacity(n);
        let mut last_value = 0.0;
        let (times, values) = (&timestamps_ms[..n], &series.values[..n]);
        // i64 → f64 is exact for epoch milliseconds of this era.
        let t_of = |timestamp_ms: i64| (timestamp_ms as f64 - origin) * 1e-3;
        for (i, (&timestamp_ms, &v)) in times.iter().zip(values).enumerate() {
            if !v.is_finite() || missing.get(i).copied().unwrap_or(false) {
                continue;
            }
            last_value = v;
            samples.push(ZSample {
                timestamp_ms,
                t_s: t_of(timestamp_ms),
                z: scale.z(v),
            });
        }
        // The same average as `stats::Ewma`, off the loop above so that
        // neither waits on the other.
        let level = stats::ewma_last(samples.iter().map(|s| s.z), scale.alpha).unwrap_or(0.0);
        let needed = scoring.min_samples.max(2);
        if samples.len() < needed {
            return Err(Unusable::TooFewSamples {
                present: samples.len(),
                needed,
            });
        }
        Ok(Self {
            samples,
            level,
            mean: scale.mean,
            sigma: scale.sigma,
            last_value,
        })
    }

    /// Samples used.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample was used (never true for a value returned by
    /// [`Deviation::of`]).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Seconds between the oldest and the newest sample used.
    pub fn span_s(&self) -> f64 {
        match (self.samples.first(), self.samples.last()) {
            (Some(a), Some(b)) => b.t_s - a.t_s,
            _ => 0.0,
        }
    }

    /// The newest `window` samples.
    fn newest(&self, window: usize) -> &[ZSample] {
        &self.samples[self.len().saturating_sub(window)..]
    }

    /// `(t, magnitude)` for the newest `window` samples, the magnitude of
    /// the deviation counted in `direction` (see [`Direction::magnitude`]).
    pub fn magnitude_points(&self, window: usize, direction: Direction) -> Vec<(f64, f64)> {
        self.newest(window)
            .iter()
            .map(|s| (s.t_s, direction.magnitude(s.z)))
            .collect()
    }

    /// Least-squares slope of the deviation's magnitude over the newest
    /// `window` samples, in z per second: how fast the deviation grows
    /// (negative when it shrinks back toward the baseline). 0 when
    /// undefined.
    pub fn growth_rate(&self, window: usize, direction: Direction) -> f64 {
        let points = self
            .newest(window)
            .iter()
            .map(|s| (s.t_s, direction.magnitude(s.z)));
        stats::slope_of(points).unwrap_or(0.0)
    }

    /// Upward CUSUM of the derivative of the deviation's magnitude over the
    /// newest `window` samples, with `slack` in z per second (see
    /// [`stats::cusum`]): the growth of the deviation, in z, that a rate
    /// above `slack` has accumulated.
    pub fn growth_cusum(&self, window: usize, slack: f64, direction: Direction) -> f64 {
        let points = self
            .newest(window)
            .iter()
            .map(|s| (s.t_s, direction.magnitude(s.z)));
        stats::cusum_of(points, slack).rise
    }

    /// Least-squares slope of the signed z over every sample, in z per
    /// second; 0 when undefined.
    pub fn slope(&self) -> f64 {
        stats::slope_of(self.samples.iter().map(|s| (s.t_s, s.z))).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Baseline;

    fn series(values: &[f64], missing: &[u32], baseline: Baseline) -> Series {
        Series {
            name: "cpu".into(),
            values: values.to_vec(),
            missing: missing.to_vec(),
            baseline,
        }
    }

    /// One sample per second from t = 1000 s.
    fn times(n: usize) -> Vec<i64> {
        (0..n as i64).map(|i| 1_000_000 + 1000 * i).collect()
    }

    fn of(series: &Series, scoring: &ZScoring) -> Result<Deviation, Unusable> {
        let window = crate::types::DeviceWindow::from_series([series.clone()]).unwrap();
        let series = window.iter().next().unwrap();
        Deviation::of(series, &times(series.values.len()), scoring)
    }

    fn z(d: &Deviation) -> Vec<f64> {
        d.samples.iter().map(|s| s.z).collect()
    }

    fn baseline(mean: f64, stddev: f64) -> Baseline {
        Baseline {
            mean,
            stddev,
            samples: 100,
        }
    }

    #[test]
    fn z_scores_level_and_rates_by_hand() {
        let s = series(&[10.0, 12.0, 14.0, 16.0, 18.0], &[], baseline(10.0, 2.0));
        let scoring = ZScoring {
            ewma_alpha: 0.5,
            ..ZScoring::default()
        };
        let d = of(&s, &scoring).unwrap();
        assert_eq!(z(&d), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        let times: Vec<f64> = d.samples.iter().map(|s| s.t_s).collect();
        assert_eq!(times, vec![-4.0, -3.0, -2.0, -1.0, 0.0]);
        // 0 → 0.5 → 1.25 → 2.125 → 3.0625
        assert_eq!(d.level, 3.0625);
        assert_eq!(d.growth_rate(30, Direction::Both), 1.0);
        assert_eq!(d.growth_rate(2, Direction::Both), 1.0);
        assert_eq!(d.slope(), 1.0);
        // Rises of 1 z per second against a slack of 0.25: 0.75 per step.
        assert_eq!(d.growth_cusum(30, 0.25, Direction::Both), 3.0);
        assert_eq!(d.span_s(), 4.0);
        assert_eq!(d.last_value, 18.0);
    }

    #[test]
    fn level_of_is_the_level_of_the_full_deviation() {
        let ramp: Vec<f64> = (0..60).map(|i| 10.0 + f64::from(i) * 0.37).collect();
        let mut holed = ramp.clone();
        holed[7] = f64::NAN;
        for (values, missing) in [(ramp.clone(), vec![]), (ramp, vec![3, 9]), (holed, vec![])] {
            let s = series(&values, &missing, baseline(10.0, 2.0));
            let window = crate::types::DeviceWindow::from_series([s]).unwrap();
            let s = window.iter().next().unwrap();
            let t = times(60);
            let full = Deviation::of(s, &t, &ZScoring::default()).unwrap();
            let level = Deviation::level_of(s, &t, &ZScoring::default()).unwrap();
            assert_eq!(level.to_bits(), full.level.to_bits());
        }
        let few = series(&[1.0, 2.0], &[], baseline(1.0, 1.0));
        let window = crate::types::DeviceWindow::from_series([few]).unwrap();
        let few = window.iter().next().unwrap();
        assert_eq!(
            Deviation::level_of(few, &times(2), &ZScoring::default()),
            Err(Unusable::TooFewSamples {
                present: 2,
                needed: 5
            })
        );
    }

    #[test]
    fn growth_is_what_the_full_deviation_gives() {
        let ramp: Vec<f64> = (0..60)
            .map(|i| 10.0 + f64::from(i * i % 17) * 0.37)
            .collect();
        let mut holed = ramp.clone();
        holed[50] = f64::INFINITY;
        let t = times(60);
        for (values, missing) in [(ramp.clone(), vec![]), (ramp, vec![55]), (holed, vec![])] {
            let s = series(&values, &missing, baseline(12.0, 2.0));
            let window = crate::types::DeviceWindow::from_series([s]).unwrap();
            let s = window.iter().next().unwrap();
            for direction in [Direction::Both, Direction::Rising, Direction::Falling] {
                for w in [3, 30, 100] {
                    let d = Deviation::of(s, &t, &ZScoring::default()).unwrap();
                    let g =
                        Deviation::growth(s, &t, &ZScoring::default(), w, 0.02, direction).unwrap();
                    assert_eq!(g.level.to_bits(), d.level.to_bits());
                    assert_eq!(g.rate.to_bits(), d.growth_rate(w, direction).to_bits());
                    assert_eq!(
                        g.cusum.to_bits(),
                        d.growth_cusum(w, 0.02, direction).to_bits()
                    );
                    assert_eq!(
                        (g.last_value, g.mean, g.sigma, g.samples),
                        (d.last_value, d.mean, d.sigma, d.len())
                    );
                }
            }
        }
    }

    #[test]
    fn deviation_below_the_baseline_grows_too() {
        let s = series(&[10.0, 8.0, 6.0, 4.0, 2.0], &[], baseline(10.0, 2.0));
        let d = of(&s, &ZScoring::default()).unwrap();
        assert!(d.level < 0.0);
        assert_eq!(d.growth_rate(30, Direction::Both), 1.0);
        assert_eq!(d.growth_rate(30, Direction::Falling), 1.0);
        // Counted upward only, a fall is no deviation at all.
        assert_eq!(d.growth_rate(30, Direction::Rising), 0.0);
        assert_eq!(d.growth_cusum(30, 0.0, Direction::Rising), 0.0);
        assert_eq!(d.slope(), -1.0);
    }

    #[test]
    fn missing_samples_are_skipped() {
        let s = series(
            &[10.0, 99.0, 12.0, 14.0, f64::NAN, 16.0],
            &[1],
            baseline(10.0, 2.0),
        );
        let scoring = ZScoring {
            min_samples: 4,
            ..ZScoring::default()
        };
        let d = of(&s, &scoring).unwrap();
        assert_eq!(z(&d), vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(
            d.samples.iter().map(|s| s.timestamp_ms).collect::<Vec<_>>(),
            vec![1_000_000, 1_002_000, 1_003_000, 1_005_000]
        );
    }

    #[test]
    fn unusable_series_say_why() {
        let scoring = ZScoring::default();
        let no_baseline = Baseline {
            samples: 3,
            ..baseline(1.0, 1.0)
        };
        assert_eq!(
            of(&series(&[1.0; 10], &[], no_baseline), &scoring),
            Err(Unusable::NoBaseline {
                samples: 3,
                needed: 10
            })
        );
        assert_eq!(
            of(&series(&[1.0; 10], &[], baseline(f64::NAN, 1.0)), &scoring),
            Err(Unusable::BadBaseline)
        );
        assert_eq!(
            of(&series(&[1.0; 10], &[], baseline(1.0, -1.0)), &scoring),
            Err(Unusable::BadBaseline)
        );
        let mostly_missing = [0, 1, 3, 4, 7];
        assert_eq!(
            of(
                &series(&[1.0; 8], &mostly_missing, baseline(1.0, 1.0)),
                &scoring
            ),
            Err(Unusable::TooFewSamples {
                present: 3,
                needed: 5
            })
        );
        assert_eq!(
            Unusable::NoBaseline {
                samples: 0,
                needed: 10
            }
            .to_string(),
            "no baseline yet: 0 of 10 samples"
        );
    }

    #[test]
    fn stddev_floor_and_clamp_keep_z_finite() {
        // A baseline with no spread: the 1 % floor gives sigma = 1.
        let d = of(
            &series(
                &[100.0, 101.0, 102.0, 103.0, 104.0],
                &[],
                baseline(100.0, 0.0),
            ),
            &ZScoring::default(),
        )
        .unwrap();
        assert_eq!(d.sigma, 1.0);
        assert_eq!(z(&d), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        // Mean 0 and stddev 0: only the absolute floor is left; z clamps.
        let d = of(
            &series(&[0.0, 0.0, 0.0, 0.0, 5.0], &[], baseline(0.0, 0.0)),
            &ZScoring::default(),
        )
        .unwrap();
        assert_eq!(z(&d).last(), Some(&Z_LIMIT));
        assert!(d.growth_rate(30, Direction::Both).is_finite());
    }

    #[test]
    fn constant_at_baseline_has_no_deviation() {
        let d = of(
            &series(&[5.0; 60], &[], baseline(5.0, 1.0)),
            &ZScoring::default(),
        )
        .unwrap();
        assert_eq!(d.level, 0.0);
        assert_eq!(d.growth_rate(30, Direction::Both), 0.0);
        assert_eq!(d.growth_cusum(30, 0.0, Direction::Both), 0.0);
    }
}
