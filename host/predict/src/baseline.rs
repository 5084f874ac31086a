//! The historical baseline of one metric: Welford mean and standard
//! deviation per time-of-week bucket (the patent's "functional state
//! baseline per time frame"), with an all-time fallback for buckets that
//! have not seen enough samples yet.

use umbra_policy_logic::Baseline;

/// Running mean and variance of a stream (Welford's update), optionally
/// with a bounded memory.
///
/// With `memory = m`, the first `m` samples are weighted equally (exactly
/// Welford); from then on every new sample has weight `1/m`, which makes
/// the statistics an exponentially weighted mean and variance with an
/// effective memory of `m` samples. That lets a baseline follow a metric
/// whose normal level drifts over weeks instead of averaging over all of
/// history. `memory = 0` means unbounded (plain Welford).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Welford {
    count: u64,
    mean: f64,
    /// Population variance (not the sum of squares: the same recurrence
    /// then serves the bounded-memory case).
    var: f64,
}

impl Welford {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `x` (ignored unless finite); `memory` as described on the type.
    pub fn push(&mut self, x: f64, memory: u32) {
        if !x.is_finite() {
            return;
        }
        self.count = self.count.saturating_add(1);
        let n = if memory == 0 {
            self.count
        } else {
            self.count.min(u64::from(memory))
        };
        // With a = 1/n this is Welford's recurrence written on the
        // population variance: var_n = (1 - a)(var_{n-1} + a·δ²).
        let a = 1.0 / n as f64;
        let delta = x - self.mean;
        self.mean += a * delta;
        self.var = (1.0 - a) * (self.var + a * delta * delta);
    }

    /// Samples added so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean of the samples (0 when there are none).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Population standard deviation of the samples (0 when there are
    /// fewer than two).
    pub fn stddev(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }

    /// The statistics as the policies see them (`samples` saturates at
    /// `u32::MAX`).
    pub fn baseline(&self) -> Baseline {
        Baseline {
            mean: self.mean,
            stddev: self.stddev(),
            samples: u32::try_from(self.count).unwrap_or(u32::MAX),
        }
    }
}

/// Baseline of one metric per time-of-week bucket.
///
/// The season (a week by default) is cut into buckets of `bucket_ms`
/// (an hour by default, so 168 buckets); buckets are counted from the Unix
/// epoch, so with a weekly season bucket 0 starts on Thursday 00:00 UTC.
/// Every sample folded in updates its bucket, an all-time accumulator, and
/// an accumulator of *residuals* (the sample minus its bucket's mean before
/// the update: the spread that the season does not explain).
///
/// [`SeasonalBaseline::at`] answers with the all-time statistics until the
/// bucket holds `min_bucket_samples` (a young deployment still gets a
/// baseline, just not a seasonal one), then with the bucket's mean and a
/// standard deviation shrunk toward the residual one:
/// `σ² = (n·σ_b² + k·σ_r²) / (n + k)` with `n` the bucket's samples and
/// `k = min_bucket_samples`. A bucket that has seen a handful of samples
/// has a poor spread estimate (zero, for a metric that repeated itself
/// exactly), which would turn noise into large z-scores; the shrinkage
/// gives it the season-wide residual spread until its own evidence
/// outweighs it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeasonalBaseline {
    bucket_ms: i64,
    season_ms: i64,
    min_bucket_samples: u32,
    memory: u32,
    buckets: Vec<Welford>,
    all: Welford,
    residual: Welford,
}

impl SeasonalBaseline {
    /// An empty baseline. `season_ms` is rounded down to a whole number of
    /// buckets (at least one); `memory` is the [`Welford`] memory of every
    /// accumulator (0: unbounded).
    pub fn new(bucket_ms: i64, season_ms: i64, min_bucket_samples: u32, memory: u32) -> Self {
        let bucket_ms = bucket_ms.max(1);
        let count = usize::try_from((season_ms / bucket_ms).max(1)).unwrap_or(1);
        Self {
            bucket_ms,
            season_ms: bucket_ms * count as i64,
            min_bucket_samples,
            memory,
            buckets: vec![Welford::new(); count],
            all: Welford::new(),
            residual: Welford::new(),
        }
    }

    /// Number of buckets in the season.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Index of the bucket that `timestamp_ms` falls in.
    pub fn bucket_of(&self, timestamp_ms: i64) -> usize {
        // rem_euclid keeps times before the epoch in range.
        usize::try_from(timestamp_ms.rem_euclid(self.season_ms) / self.bucket_ms).unwrap_or(0)
    }

    /// Folds the sample measured at `timestamp_ms` into its bucket and the
    /// all-time accumulator.
    pub fn fold(&mut self, timestamp_ms: i64, value: f64) {
        let b = self.bucket_of(timestamp_ms);
        if self.buckets[b].count() > 0 && value.is_finite() {
            self.residual
                .push(value - self.buckets[b].mean(), self.memory);
        }
        self.buckets[b].push(value, self.memory);
        self.all.push(value, self.memory);
    }

    /// The statistics of the bucket of `timestamp_ms`.
    pub fn bucket(&self, timestamp_ms: i64) -> &Welford {
        &self.buckets[self.bucket_of(timestamp_ms)]
    }

    /// The all-time statistics.
    pub fn all_time(&self) -> &Welford {
        &self.all
    }

    /// The residual statistics (samples minus their bucket's mean).
    pub fn residual(&self) -> &Welford {
        &self.residual
    }

    /// The baseline for a value measured at `timestamp_ms`: its bucket's
    /// mean and shrunk spread if the bucket is trusted yet, else the
    /// all-time statistics (see the type's documentation).
    pub fn at(&self, timestamp_ms: i64) -> Baseline {
        let bucket = self.bucket(timestamp_ms);
        let k = self.min_bucket_samples.max(1);
        if bucket.count() < u64::from(k) {
            return self.all.baseline();
        }
        let n = bucket.count() as f64;
        let k = f64::from(k);
        let (var_b, var_r) = (bucket.stddev().powi(2), self.residual.stddev().powi(2));
        let mut baseline = bucket.baseline();
        baseline.stddev = ((n * var_b + k * var_r) / (n + k)).sqrt();
        baseline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const WEEK: i64 = 168 * HOUR;

    #[test]
    fn welford_matches_the_two_pass_formulas() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let mut w = Welford::new();
        for x in xs {
            w.push(x, 0);
        }
        w.push(f64::NAN, 0);
        assert_eq!(w.count(), 8);
        assert!((w.mean() - 5.0).abs() < 1e-12);
        assert!((w.stddev() - 2.0).abs() < 1e-12);
        assert_eq!(w.baseline().samples, 8);
    }

    proptest::proptest! {
        /// Unbounded Welford agrees with the two-pass mean and population
        /// standard deviation.
        #[test]
        fn welford_agrees_with_two_passes(xs in proptest::collection::vec(-1e6f64..1e6, 1..200)) {
            let mut w = Welford::new();
            for &x in &xs {
                w.push(x, 0);
            }
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            proptest::prop_assert!((w.mean() - mean).abs() <= 1e-6 * (1.0 + mean.abs()));
            proptest::prop_assert!((w.stddev() - var.sqrt()).abs() <= 1e-6 * (1.0 + var.sqrt()));
        }
    }

    #[test]
    fn bounded_memory_follows_a_level_shift() {
        let (mut bounded, mut unbounded) = (Welford::new(), Welford::new());
        for i in 0..2000 {
            let x = if i < 1000 { 10.0 } else { 50.0 };
            bounded.push(x, 100);
            unbounded.push(x, 0);
        }
        // 1000 samples after the shift, a memory of 100 has all but forgotten
        // it: 40 · (1 − 1/100)^1000 ≈ 0.002.
        assert!((bounded.mean() - 50.0).abs() < 0.01);
        assert!((unbounded.mean() - 30.0).abs() < 1e-9);
    }

    #[test]
    fn buckets_cover_the_week_and_wrap() {
        let b = SeasonalBaseline::new(HOUR, WEEK, 1, 0);
        assert_eq!(b.bucket_count(), 168);
        assert_eq!(b.bucket_of(0), 0);
        assert_eq!(b.bucket_of(HOUR - 1), 0);
        assert_eq!(b.bucket_of(HOUR), 1);
        assert_eq!(b.bucket_of(WEEK + 5 * HOUR), 5);
        assert_eq!(b.bucket_of(-1), 167);
    }

    #[test]
    fn a_bucket_is_used_once_trusted_and_the_all_time_baseline_before() {
        let mut b = SeasonalBaseline::new(HOUR, WEEK, 3, 0);
        // Busy at 09:00, quiet at 03:00, for three weeks.
        for week in 0..3 {
            b.fold(week * WEEK + 9 * HOUR, 100.0 + week as f64);
            b.fold(week * WEEK + 3 * HOUR, 10.0);
        }
        let busy = b.at(9 * HOUR + 60_000);
        assert!((busy.mean - 101.0).abs() < 1e-12);
        assert_eq!(busy.samples, 3);
        let quiet = b.at(3 * HOUR);
        assert_eq!(quiet.mean, 10.0);
        // The quiet bucket never varied, but the season's residuals did
        // (the busy bucket's +1, +1 and the quiet one's 0, 0): its spread
        // is shrunk toward theirs rather than left at zero.
        let r = b.residual();
        assert_eq!(r.count(), 4);
        let expected = (3.0 * r.stddev().powi(2) / 6.0).sqrt();
        assert!(quiet.stddev > 0.0);
        assert!((quiet.stddev - expected).abs() < 1e-12);
        // An hour never seen falls back to all six samples.
        let unseen = b.at(15 * HOUR);
        assert_eq!(unseen.samples, 6);
        assert!((unseen.mean - 55.5).abs() < 1e-12);
    }
}
