//! Per-device metric windows aligned on a fixed tick, their baselines, and
//! the [`Observation`] the policies score.
//!
//! Samples arrive as `(time, metric, value)`. Each device keeps the last
//! `window` ticks: the tick containing the newest sample is *open* (a later
//! sample in the same tick replaces its value), older ones are closed. A
//! metric with no sample in a tick carries its previous value forward and
//! the tick is listed in the series' `missing` mask; before a metric's first
//! sample its values are NaN, also masked. Nothing is ever filled with a
//! silent zero.
//!
//! **Baseline lag.** A sample is folded into its metric's
//! [`SeasonalBaseline`] only once it is `baseline_lag` ticks old, by
//! default exactly when it leaves the decision window. So the samples being
//! scored are never part of the baseline they are scored against: an
//! anomaly cannot dilute its own z-score, and a slow drift is measured
//! against what the metric did before the window began. The price is a
//! baseline that is `window` ticks stale, which is negligible next to a
//! weekly season. Carried-forward values are never folded in: they are not
//! measurements.
//!
//! **Seasonal adjustment.** An [`Observation`] carries one baseline per
//! series, that of the newest tick's bucket, but the older ticks of the
//! window may belong to other buckets (an hour boundary, or short buckets).
//! With `seasonal_adjust` (the default) every value is presented in the
//! newest bucket's frame: `v' = μ_now + (v − μ_t)·σ_now/σ_t`, where `μ_t,
//! σ_t` is the baseline of the tick's own bucket, so the z-score the policy
//! computes for each tick is exactly that tick's z against its own bucket.
//! Values of ticks in the newest bucket are unchanged; the raw values stay
//! available from [`DeviceFeatures::values`].
//!
//! Besides the seasonal baseline every metric keeps a recent EWMA (and
//! exponentially weighted standard deviation) of its measured, closed
//! samples, for features that want the short-term level.

use std::collections::VecDeque;

use ndarray::Array2;
use umbra_policy_logic::{Baseline, DeviceWindow, Observation, Series};

use crate::baseline::SeasonalBaseline;
use crate::{Error, Result};

/// How samples are aligned and baselined.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureConfig {
    /// Tick width in milliseconds; every sample is aligned to the start of
    /// its tick.
    pub tick_ms: i64,
    /// Ticks in the decision window (the series of an [`Observation`]).
    pub window: usize,
    /// Width of a baseline bucket in milliseconds (1 h gives 168 buckets
    /// in a week).
    pub bucket_ms: i64,
    /// Length of the season the buckets divide, in milliseconds (a week:
    /// time-of-week buckets).
    pub season_ms: i64,
    /// Samples a bucket needs before it is used instead of the all-time
    /// baseline.
    pub min_bucket_samples: u32,
    /// Effective memory of the baseline accumulators in samples; 0 keeps
    /// all of history (see [`crate::Welford`]).
    pub baseline_memory: u32,
    /// Ticks a sample waits before it is folded into the baseline; `None`
    /// means `window` (folded when it leaves the window).
    pub baseline_lag: Option<usize>,
    /// Smoothing factor of the recent EWMA, in (0, 1].
    pub recent_alpha: f64,
    /// Present window values in the newest bucket's frame (see the module
    /// documentation).
    pub seasonal_adjust: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            tick_ms: 1_000,
            window: 60,
            bucket_ms: 3_600_000,
            season_ms: 7 * 24 * 3_600_000,
            min_bucket_samples: 30,
            baseline_memory: 0,
            baseline_lag: None,
            recent_alpha: 0.1,
            seasonal_adjust: true,
        }
    }
}

impl FeatureConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every problem.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.tick_ms <= 0 {
            problems.push(format!("`tick-ms` ({}) must be above 0", self.tick_ms));
        }
        if self.window < 2 {
            problems.push(format!("`window` ({}) must be at least 2", self.window));
        }
        if self.bucket_ms <= 0 {
            problems.push(format!("`bucket-ms` ({}) must be above 0", self.bucket_ms));
        }
        if self.season_ms < self.bucket_ms {
            problems.push(format!(
                "`season-ms` ({}) must be at least `bucket-ms` ({})",
                self.season_ms, self.bucket_ms
            ));
        }
        if !(self.recent_alpha > 0.0 && self.recent_alpha <= 1.0) {
            problems.push(format!(
                "`recent-alpha` ({}) must be in (0, 1]",
                self.recent_alpha
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig(problems))
        }
    }

    /// Ticks a sample waits before it is folded into the baseline.
    pub fn lag(&self) -> usize {
        self.baseline_lag.unwrap_or(self.window)
    }
}

/// Which device of a protected pair a sample comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// The device carrying the traffic.
    Primary,
    /// Its warm standby.
    Shadow,
}

/// One measurement of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Device measured.
    pub device: Device,
    /// Metric name, e.g. `cpu`, `rx-pps`, `http-5xx-rate`.
    pub metric: String,
    /// Time of the measurement, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The measured value (finite).
    pub value: f64,
}

/// Window, baseline and recent average of one metric of one device.
#[derive(Clone, Debug)]
pub struct MetricFeatures {
    name: String,
    /// One value per tick of the device's window (NaN before the first
    /// sample).
    values: VecDeque<f64>,
    /// Whether the value of that tick was carried forward.
    missing: VecDeque<bool>,
    /// Newest measured value, carried into ticks without a sample.
    last: Option<f64>,
    /// Closed, measured samples not yet folded into the baseline.
    pending: VecDeque<(i64, f64)>,
    baseline: SeasonalBaseline,
    /// Recent EWMA and exponentially weighted variance.
    recent: Option<(f64, f64)>,
}

impl MetricFeatures {
    fn new(name: &str, ticks: usize, config: &FeatureConfig) -> Self {
        Self {
            name: name.to_owned(),
            values: std::iter::repeat_n(f64::NAN, ticks).collect(),
            missing: std::iter::repeat_n(true, ticks).collect(),
            last: None,
            pending: VecDeque::new(),
            baseline: SeasonalBaseline::new(
                config.bucket_ms,
                config.season_ms,
                config.min_bucket_samples,
                config.baseline_memory,
            ),
            recent: None,
        }
    }

    /// Metric name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The historical baseline (only samples that have left the lag).
    pub fn baseline(&self) -> &SeasonalBaseline {
        &self.baseline
    }

    /// EWMA of the measured samples of closed ticks, if any.
    pub fn recent_mean(&self) -> Option<f64> {
        self.recent.map(|(m, _)| m)
    }

    /// Exponentially weighted standard deviation around [`Self::recent_mean`].
    pub fn recent_stddev(&self) -> Option<f64> {
        self.recent.map(|(_, v)| v.max(0.0).sqrt())
    }

    /// Values of the window, oldest first.
    pub fn values(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.values.iter().copied()
    }

    /// Missing mask of the window, oldest first.
    pub fn missing(&self) -> impl ExactSizeIterator<Item = bool> + '_ {
        self.missing.iter().copied()
    }

    fn close_tick(&mut self, tick_ms: i64, alpha: f64) {
        if self.missing.back() != Some(&false) {
            return;
        }
        let Some(&v) = self.values.back() else {
            return;
        };
        self.pending.push_back((tick_ms, v));
        self.recent = Some(match self.recent {
            None => (v, 0.0),
            Some((m, var)) => {
                let d = v - m;
                (m + alpha * d, (1.0 - alpha) * (var + alpha * d * d))
            }
        });
    }

    fn open_tick(&mut self) {
        self.values.push_back(self.last.unwrap_or(f64::NAN));
        self.missing.push_back(true);
    }

    /// The value of the tick starting at `t` in the frame of `now` (see the
    /// module documentation).
    fn adjusted(&self, v: f64, own: &Baseline, now: &Baseline) -> f64 {
        if own.samples == 0 || now.samples == 0 || !v.is_finite() {
            return v;
        }
        let ratio = if own.stddev > 0.0 && now.stddev > 0.0 {
            now.stddev / own.stddev
        } else {
            1.0
        };
        now.mean + (v - own.mean) * ratio
    }

    fn series(
        &self,
        ticks: &VecDeque<i64>,
        baseline_at_ms: i64,
        pad: usize,
        adjust: bool,
    ) -> Series {
        let now = self.baseline.at(baseline_at_ms);
        let mut values = Vec::with_capacity(pad + self.values.len());
        values.resize(pad, f64::NAN);
        if adjust {
            // A window spans one or two buckets: each tick's baseline is
            // looked up once per bucket, not once per tick.
            let mut own: Option<(usize, Baseline)> = None;
            for (&v, &t) in self.values.iter().zip(ticks) {
                let bucket = self.baseline.bucket_of(t);
                let b = match own {
                    Some((at, ref b)) if at == bucket => b,
                    _ => &own.insert((bucket, self.baseline.at(t))).1,
                };
                values.push(self.adjusted(v, b, &now));
            }
        } else {
            values.extend(self.values.iter().copied());
        }
        let missing = std::iter::repeat_n(true, pad)
            .chain(self.missing.iter().copied())
            .enumerate()
            .filter(|(_, m)| *m)
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        Series {
            name: self.name.clone(),
            values,
            missing,
            baseline: now,
        }
    }
}

/// The aligned metric windows of one device.
#[derive(Clone, Debug)]
pub struct DeviceFeatures {
    config: FeatureConfig,
    /// Start of every tick in the window, oldest first; the last is open.
    ticks: VecDeque<i64>,
    /// In order of first appearance.
    metrics: Vec<MetricFeatures>,
    /// The metric after the one last recorded (see [`Self::record`]).
    next_metric: usize,
}

impl DeviceFeatures {
    /// A device with no samples yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `config` does not validate.
    pub fn new(config: FeatureConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            ticks: VecDeque::new(),
            metrics: Vec::new(),
            next_metric: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Start of the tick containing `timestamp_ms`.
    pub fn tick_of(&self, timestamp_ms: i64) -> i64 {
        timestamp_ms.div_euclid(self.config.tick_ms) * self.config.tick_ms
    }

    /// Start of the open tick, if any sample was seen.
    pub fn open_tick(&self) -> Option<i64> {
        self.ticks.back().copied()
    }

    /// Tick starts of the window, oldest first.
    pub fn timestamps_ms(&self) -> Vec<i64> {
        self.ticks.iter().copied().collect()
    }

    /// The metrics, in order of first appearance.
    pub fn metrics(&self) -> &[MetricFeatures] {
        &self.metrics
    }

    /// The metric called `name`.
    pub fn metric(&self, name: &str) -> Option<&MetricFeatures> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Records a measurement: closes the open tick first if the sample
    /// belongs to a later one.
    ///
    /// # Errors
    ///
    /// [`Error::BadMetricName`] for an empty name or one with a newline,
    /// [`Error::NonFinite`] for a NaN or infinite value,
    /// [`Error::OutOfOrder`] for a sample older than the open tick.
    pub fn record(&mut self, timestamp_ms: i64, metric: &str, value: f64) -> Result<()> {
        // Policies receive a window's names in one newline-separated
        // string (see `umbra_policy_logic::DeviceWindow`).
        if metric.is_empty() || metric.contains('\n') {
            return Err(Error::BadMetricName(metric.to_owned()));
        }
        if !value.is_finite() {
            return Err(Error::NonFinite {
                metric: metric.to_owned(),
                timestamp_ms,
            });
        }
        let tick = self.tick_of(timestamp_ms);
        match self.open_tick() {
            Some(open) if tick < open => {
                return Err(Error::OutOfOrder {
                    metric: metric.to_owned(),
                    timestamp_ms,
                    open_tick_ms: open,
                });
            }
            _ => self.advance_to(timestamp_ms),
        }
        let ticks = self.ticks.len();
        // Samples usually come in the same order every tick: the metric
        // after the last one recorded is tried before the others.
        let hint = self.next_metric % self.metrics.len().max(1);
        let index = if self.metrics.get(hint).is_some_and(|m| m.name == metric) {
            hint
        } else if let Some(i) = self.metrics.iter().position(|m| m.name == metric) {
            i
        } else {
            self.metrics
                .push(MetricFeatures::new(metric, ticks, &self.config));
            self.metrics.len() - 1
        };
        self.next_metric = index + 1;
        let m = &mut self.metrics[index];
        if let (Some(v), Some(missing)) = (m.values.back_mut(), m.missing.back_mut()) {
            *v = value;
            *missing = false;
        }
        m.last = Some(value);
        Ok(())
    }

    /// Closes every tick before the one containing `timestamp_ms` and opens
    /// that one (metrics carry their last value into it, masked). Does
    /// nothing if that tick is already open or older.
    pub fn advance_to(&mut self, timestamp_ms: i64) {
        let tick = self.tick_of(timestamp_ms);
        let step = self.config.tick_ms;
        let window = self.config.window;
        let Some(open) = self.open_tick() else {
            self.ticks.push_back(tick);
            for m in &mut self.metrics {
                m.open_tick();
            }
            return;
        };
        if tick <= open {
            return;
        }
        let alpha = self.config.recent_alpha;
        for m in &mut self.metrics {
            m.close_tick(open, alpha);
        }
        // A gap longer than the window leaves none of the old ticks in it:
        // only the newest `window` ticks need to be materialised.
        let gap = (tick - open) / step;
        let first = if gap > window as i64 {
            self.ticks.clear();
            for m in &mut self.metrics {
                m.values.clear();
                m.missing.clear();
            }
            tick - (window as i64 - 1) * step
        } else {
            open + step
        };
        let mut t = first;
        while t <= tick {
            self.ticks.push_back(t);
            for m in &mut self.metrics {
                m.open_tick();
            }
            t += step;
        }
        while self.ticks.len() > window {
            self.ticks.pop_front();
            for m in &mut self.metrics {
                m.values.pop_front();
                m.missing.pop_front();
            }
        }
        let lag = i64::try_from(self.config.lag()).unwrap_or(i64::MAX);
        let horizon = tick.saturating_sub(lag.saturating_mul(step));
        for m in &mut self.metrics {
            while let Some(&(t, v)) = m.pending.front() {
                if t > horizon {
                    break;
                }
                m.baseline.fold(t, v);
                m.pending.pop_front();
            }
        }
    }

    /// The window as the policies see it, aligned on `timestamps_ms` (which
    /// must end with this device's ticks: ticks this device has not seen are
    /// padded with masked NaNs). Baselines are those of the newest tick's
    /// bucket.
    pub fn device_window(&self, timestamps_ms: &[i64]) -> DeviceWindow {
        let pad = timestamps_ms.len().saturating_sub(self.ticks.len());
        let at = timestamps_ms.last().copied().unwrap_or(0);
        let adjust = self.config.seasonal_adjust;
        window_of(
            self.metrics
                .iter()
                .map(|m| m.series(&self.ticks, at, pad, adjust))
                .collect(),
        )
    }

    /// The observation of this device alone (as the primary, with an empty
    /// shadow) at `now_ms`.
    pub fn observation(&self, now_ms: i64) -> Observation {
        let timestamps_ms = self.timestamps_ms();
        Observation {
            now_ms,
            primary: self.device_window(&timestamps_ms),
            timestamps_ms,
            ..Observation::default()
        }
    }

    /// Values of the window as a `[ticks, metrics]` matrix (the layout of
    /// one batch element of the predictor's `[batch, window, features]`
    /// input), metrics in order of first appearance.
    pub fn values(&self) -> Array2<f64> {
        Array2::from_shape_fn((self.ticks.len(), self.metrics.len()), |(t, m)| {
            self.metrics[m].values[t]
        })
    }

    /// The missing mask, same shape as [`Self::values`]: `true` where the
    /// value was carried forward (or precedes the metric's first sample).
    pub fn mask(&self) -> Array2<bool> {
        Array2::from_shape_fn((self.ticks.len(), self.metrics.len()), |(t, m)| {
            self.metrics[m].missing[t]
        })
    }

    /// Standardised deviation of every value from its metric's baseline
    /// for the tick's own bucket, same shape as [`Self::values`]; NaN where
    /// the value is missing or the metric has no baseline yet. The standard
    /// deviation is floored as the drift policy floors it
    /// (`min_stddev_ratio` of |mean|, at least 1e-9), so both see the same z.
    pub fn zscores(&self, min_stddev_ratio: f64) -> Array2<f64> {
        Array2::from_shape_fn((self.ticks.len(), self.metrics.len()), |(t, m)| {
            let metric = &self.metrics[m];
            let b = metric.baseline.at(self.ticks[t]);
            if metric.missing[t] || b.samples == 0 {
                return f64::NAN;
            }
            let sigma = b.stddev.max(min_stddev_ratio * b.mean.abs()).max(1e-9);
            (metric.values[t] - b.mean) / sigma
        })
    }

    /// Rate of change of [`Self::zscores`] in z per second: row `t` is
    /// `(z[t] - z[t-1]) / tick`, NaN for the first tick and wherever either
    /// z is NaN.
    pub fn zscore_rates(&self, min_stddev_ratio: f64) -> Array2<f64> {
        let z = self.zscores(min_stddev_ratio);
        let per_s = 1000.0 / self.config.tick_ms as f64;
        Array2::from_shape_fn(z.dim(), |(t, m)| {
            if t == 0 {
                f64::NAN
            } else {
                (z[[t, m]] - z[[t - 1, m]]) * per_s
            }
        })
    }
}

/// The one place a [`DeviceWindow`] is built from owned series. The series
/// built here share one length and [`DeviceFeatures::record`] refuses bad
/// names, so no metric can be refused; were one ever, it alone would be
/// left out.
fn window_of(series: Vec<Series>) -> DeviceWindow {
    let mut window = DeviceWindow::default();
    for s in series {
        let _ = window.push(&s.name, &s.values, &s.missing, s.baseline);
    }
    window
}

/// The two devices of a protected pair, kept on the same ticks.
#[derive(Clone, Debug)]
pub struct PairFeatures {
    /// The primary device.
    pub primary: DeviceFeatures,
    /// The shadow device.
    pub shadow: DeviceFeatures,
}

impl PairFeatures {
    /// A pair with no samples yet, both devices configured alike.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `config` does not validate.
    pub fn new(config: FeatureConfig) -> Result<Self> {
        Ok(Self {
            primary: DeviceFeatures::new(config.clone())?,
            shadow: DeviceFeatures::new(config)?,
        })
    }

    /// Records a sample of either device.
    ///
    /// # Errors
    ///
    /// As [`DeviceFeatures::record`].
    pub fn record(&mut self, sample: &Sample) -> Result<()> {
        let device = match sample.device {
            Device::Primary => &mut self.primary,
            Device::Shadow => &mut self.shadow,
        };
        device.record(sample.timestamp_ms, &sample.metric, sample.value)
    }

    /// The observation of the pair at `now_ms`: both devices are first
    /// brought to the newest tick either has opened (or that of `now_ms` if
    /// later), so their series share `timestamps_ms`.
    pub fn observation(&mut self, now_ms: i64) -> Observation {
        let newest = [self.primary.open_tick(), self.shadow.open_tick()]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now_ms)
            .max(now_ms);
        self.primary.advance_to(newest);
        self.shadow.advance_to(newest);
        let timestamps_ms = if self.primary.ticks.len() >= self.shadow.ticks.len() {
            self.primary.timestamps_ms()
        } else {
            self.shadow.timestamps_ms()
        };
        Observation {
            now_ms,
            primary: self.primary.device_window(&timestamps_ms),
            shadow: self.shadow.device_window(&timestamps_ms),
            timestamps_ms,
            ..Observation::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Timestamps of the samples of `name` that were measured (not
    /// missing, finite).
    fn present(o: &Observation, window: &DeviceWindow, name: &str) -> Vec<i64> {
        window
            .get(name)
            .unwrap()
            .present_samples(&o.timestamps_ms)
            .map(|(t, _)| t)
            .collect()
    }

    fn config(window: usize, lag: Option<usize>) -> FeatureConfig {
        FeatureConfig {
            tick_ms: 1000,
            window,
            bucket_ms: 3_600_000,
            season_ms: 7 * 24 * 3_600_000,
            min_bucket_samples: 1,
            baseline_memory: 0,
            baseline_lag: lag,
            recent_alpha: 0.5,
            seasonal_adjust: true,
        }
    }

    #[test]
    fn config_reports_every_problem() {
        let bad = FeatureConfig {
            tick_ms: 0,
            window: 1,
            recent_alpha: 0.0,
            ..FeatureConfig::default()
        };
        let Err(Error::InvalidConfig(problems)) = bad.validate() else {
            panic!("expected an invalid configuration");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(FeatureConfig::default().validate().is_ok());
    }

    #[test]
    fn samples_align_on_ticks_and_the_window_slides() {
        let mut d = DeviceFeatures::new(config(3, None)).unwrap();
        d.record(10_200, "cpu", 1.0).unwrap();
        // Same tick: replaces the open tick's value.
        d.record(10_900, "cpu", 2.0).unwrap();
        d.record(11_000, "cpu", 3.0).unwrap();
        d.record(12_500, "cpu", 4.0).unwrap();
        d.record(13_000, "cpu", 5.0).unwrap();
        assert_eq!(d.timestamps_ms(), vec![11_000, 12_000, 13_000]);
        let cpu = d.metric("cpu").unwrap();
        assert_eq!(cpu.values().collect::<Vec<_>>(), vec![3.0, 4.0, 5.0]);
        assert!(cpu.missing().all(|m| !m));
        assert!(matches!(
            d.record(12_999, "cpu", 1.0),
            Err(Error::OutOfOrder { .. })
        ));
        for bad in ["", "cpu\nmemory"] {
            assert!(matches!(
                d.record(13_000, bad, 1.0),
                Err(Error::BadMetricName(name)) if name == bad
            ));
        }
        assert!(matches!(
            d.record(13_000, "cpu", f64::NAN),
            Err(Error::NonFinite { .. })
        ));
    }

    #[test]
    fn gaps_are_carried_forward_under_the_mask_never_zeroed() {
        let mut d = DeviceFeatures::new(config(5, None)).unwrap();
        d.record(0, "cpu", 7.0).unwrap();
        d.record(0, "memory", 70.0).unwrap();
        d.record(1_000, "cpu", 8.0).unwrap();
        // memory silent for ticks 1 and 2; cpu silent for tick 2.
        d.record(3_000, "cpu", 9.0).unwrap();
        d.record(3_000, "memory", 71.0).unwrap();
        let o = d.observation(3_500);
        assert_eq!(o.timestamps_ms, vec![0, 1_000, 2_000, 3_000]);
        let cpu = o.primary.get("cpu").unwrap();
        assert_eq!(cpu.values, vec![7.0, 8.0, 8.0, 9.0]);
        assert_eq!(present(&o, &o.primary, "cpu"), vec![0, 1_000, 3_000]);
        let memory = o.primary.get("memory").unwrap();
        assert_eq!(memory.values, vec![70.0, 70.0, 70.0, 71.0]);
        assert_eq!(present(&o, &o.primary, "memory"), vec![0, 3_000]);
        let mask = d.mask();
        assert_eq!(mask.dim(), (4, 2));
        assert!(mask[[2, 0]] && mask[[1, 1]] && !mask[[3, 1]]);
        assert_eq!(d.values()[[2, 1]], 70.0);
    }

    #[test]
    fn a_late_metric_is_nan_and_masked_before_its_first_sample() {
        let mut d = DeviceFeatures::new(config(4, None)).unwrap();
        d.record(0, "cpu", 1.0).unwrap();
        d.record(1_000, "cpu", 1.0).unwrap();
        d.record(1_000, "http-5xx-rate", 0.5).unwrap();
        let o = d.observation(1_000);
        let errors = o.primary.get("http-5xx-rate").unwrap();
        assert!(errors.values[0].is_nan());
        assert_eq!(errors.values[1], 0.5);
        assert_eq!(present(&o, &o.primary, "http-5xx-rate"), vec![1_000]);
    }

    #[test]
    fn a_long_gap_restarts_the_window_with_carried_values() {
        let mut d = DeviceFeatures::new(config(3, None)).unwrap();
        d.record(0, "cpu", 1.0).unwrap();
        d.record(100_000, "cpu", 2.0).unwrap();
        assert_eq!(d.timestamps_ms(), vec![98_000, 99_000, 100_000]);
        let cpu = d.metric("cpu").unwrap();
        assert_eq!(cpu.values().collect::<Vec<_>>(), vec![1.0, 1.0, 2.0]);
        assert_eq!(cpu.missing().collect::<Vec<_>>(), vec![true, true, false]);
    }

    #[test]
    fn samples_reach_the_baseline_only_after_leaving_the_window() {
        let mut d = DeviceFeatures::new(config(3, None)).unwrap();
        for (i, v) in [10.0, 20.0, 30.0, 40.0, 50.0].into_iter().enumerate() {
            d.record(i as i64 * 1000, "cpu", v).unwrap();
        }
        // Window = ticks 2, 3, 4; ticks 0 and 1 have left it.
        let b = d.metric("cpu").unwrap().baseline().at(4_000);
        assert_eq!(b.samples, 2);
        assert_eq!(b.mean, 15.0);
        // The value being scored (50) is in none of it, and the EWMA covers
        // closed ticks only: 10, 20, 30, 40.
        let recent = d.metric("cpu").unwrap().recent_mean().unwrap();
        assert_eq!(
            recent,
            0.5 * 40.0 + 0.5 * (0.5 * 30.0 + 0.5 * (0.5 * 20.0 + 5.0))
        );
        // A shorter lag folds sooner.
        let mut short = DeviceFeatures::new(config(3, Some(1))).unwrap();
        for (i, v) in [10.0, 20.0, 30.0].into_iter().enumerate() {
            short.record(i as i64 * 1000, "cpu", v).unwrap();
        }
        assert_eq!(short.metric("cpu").unwrap().baseline().at(0).samples, 2);
    }

    #[test]
    fn carried_values_are_not_folded_into_the_baseline() {
        let mut d = DeviceFeatures::new(config(2, None)).unwrap();
        d.record(0, "cpu", 10.0).unwrap();
        d.record(10_000, "cpu", 99.0).unwrap();
        d.record(20_000, "cpu", 99.0).unwrap();
        let b = d.metric("cpu").unwrap().baseline().at(0);
        // Ticks 0 and 10 were measured and have left the window; the nine
        // carried ticks in between never count.
        assert_eq!(b.samples, 2);
    }

    #[test]
    fn zscores_and_their_rates() {
        // All-time baseline (no bucket is trusted), so the numbers are plain.
        let mut d = DeviceFeatures::new(FeatureConfig {
            min_bucket_samples: 1000,
            ..config(2, None)
        })
        .unwrap();
        for (i, v) in [9.0, 11.0, 9.0, 11.0, 10.0, 14.0].into_iter().enumerate() {
            d.record(i as i64 * 1000, "cpu", v).unwrap();
        }
        // Baseline: 9, 11, 9, 11 → mean 10, stddev 1.
        let z = d.zscores(0.0);
        assert_eq!(z.dim(), (2, 1));
        assert!((z[[0, 0]] - 0.0).abs() < 1e-12);
        assert!((z[[1, 0]] - 4.0).abs() < 1e-12);
        let rate = d.zscore_rates(0.0);
        assert!(rate[[0, 0]].is_nan());
        assert!((rate[[1, 0]] - 4.0).abs() < 1e-12);
    }

    #[test]
    fn pair_observations_share_timestamps() {
        let mut pair = PairFeatures::new(config(4, None)).unwrap();
        for i in 0..4 {
            pair.record(&Sample {
                device: Device::Primary,
                metric: "cpu".into(),
                timestamp_ms: i * 1000,
                value: 1.0,
            })
            .unwrap();
        }
        pair.record(&Sample {
            device: Device::Shadow,
            metric: "cpu".into(),
            timestamp_ms: 3_000,
            value: 2.0,
        })
        .unwrap();
        let o = pair.observation(4_200);
        assert_eq!(o.timestamps_ms, vec![1_000, 2_000, 3_000, 4_000]);
        let shadow = o.shadow.get("cpu").unwrap();
        assert_eq!(shadow.values.len(), 4);
        assert_eq!(present(&o, &o.shadow, "cpu"), vec![3_000]);
        assert_eq!(shadow.values[3], 2.0);
        assert_eq!(present(&o, &o.primary, "cpu"), vec![1_000, 2_000, 3_000]);
    }

    #[test]
    fn observation_series_feed_the_drift_policy() {
        // A steady metric, then a jump: the policy sees the jump against a
        // baseline the jump is not part of.
        let mut d = DeviceFeatures::new(FeatureConfig {
            window: 30,
            ..config(30, None)
        })
        .unwrap();
        let mut t = 0;
        for i in 0..200 {
            let v = 50.0 + if i % 2 == 0 { 1.0 } else { -1.0 };
            d.record(t, "cpu", v).unwrap();
            t += 1000;
        }
        for _ in 0..10 {
            d.record(t, "cpu", 80.0).unwrap();
            t += 1000;
        }
        let o = d.observation(t);
        let series = o.primary.get("cpu").unwrap();
        assert!((series.baseline.mean - 50.0).abs() < 0.1);
        let result = umbra_policy_logic::drift(&umbra_policy_logic::DriftConfig::default(), &o);
        assert!(result.score > 0.5, "{result:?}");
        assert!(result.explanation.starts_with("cpu"));
    }
}
