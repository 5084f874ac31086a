//! What a server keeps per device pair to build its model input tick after
//! tick: the last `window + baseline_ticks` samples of every metric the
//! manifest reads, as a [`FeatureSource`].

use crate::manifest::{Device, FeatureSource, Manifest, Relation, Transform, present};

/// The recent samples of one device pair, for [`Manifest::input`].
///
/// Each series is a vector that grows to twice the kept length and then
/// drops its older half, so a tick costs amortised O(1) per metric and the
/// series stays one contiguous slice, as [`FeatureSource::series`] hands it
/// out. For each `*-vs-baseline` feature it also keeps running sums of the
/// transformed present samples, rebuilt whenever the older half is dropped,
/// so [`FeatureSource::present_sum`] answers without walking the baseline.
#[derive(Clone, Debug)]
pub struct History {
    keep: usize,
    metrics: Vec<(Device, String)>,
    series: Vec<Vec<Option<f64>>>,
    sums: Vec<RunningSum>,
}

/// Prefix sums of `base.apply(x)` over one series' present samples:
/// `prefix[i]` covers `series[..i]`.
#[derive(Clone, Debug)]
struct RunningSum {
    series: usize,
    base: Transform,
    prefix: Vec<(usize, f64)>,
}

impl RunningSum {
    fn push(&mut self, value: Option<f64>) {
        let (n, sum) = self.prefix.last().copied().unwrap_or((0, 0.0));
        self.prefix.push(match present(&value) {
            Some(x) => (n + 1, sum + self.base.apply(x)),
            None => (n, sum),
        });
    }

    fn rebuild(&mut self, series: &[Option<f64>]) {
        self.prefix.clear();
        self.prefix.push((0, 0.0));
        for &v in series {
            self.push(v);
        }
    }
}

impl History {
    /// An empty history of the metrics `manifest` reads: each feature's own
    /// metric, and the shadow's of a `*-minus-shadow` feature; in order of
    /// first use. It keeps `window + baseline_ticks` ticks.
    #[must_use]
    pub fn for_manifest(manifest: &Manifest) -> Self {
        let mut metrics: Vec<(Device, String)> = Vec::new();
        let mut add = |device: Device, metric: &str| {
            if !metrics.iter().any(|(d, m)| *d == device && m == metric) {
                metrics.push((device, metric.to_owned()));
            }
        };
        for feature in &manifest.features {
            add(feature.device, &feature.metric);
            if feature.transform.relation() == Relation::MinusShadow {
                add(Device::Shadow, &feature.metric);
            }
        }
        let mut sums: Vec<RunningSum> = Vec::new();
        for feature in &manifest.features {
            if feature.transform.relation() != Relation::VsBaseline {
                continue;
            }
            let base = feature.transform.base();
            let series = metrics
                .iter()
                .position(|(d, m)| *d == feature.device && *m == feature.metric)
                .unwrap_or_default();
            if !sums.iter().any(|r| r.series == series && r.base == base) {
                sums.push(RunningSum {
                    series,
                    base,
                    prefix: vec![(0, 0.0)],
                });
            }
        }
        let keep = manifest.window + manifest.baseline_ticks;
        let series = metrics
            .iter()
            .map(|_| Vec::with_capacity(2 * keep))
            .collect();
        Self {
            keep,
            metrics,
            series,
            sums,
        }
    }

    /// The metrics recorded, in the order [`History::push`] takes them.
    #[must_use]
    pub fn metrics(&self) -> &[(Device, String)] {
        &self.metrics
    }

    /// How many ticks the history keeps at least (older ones are dropped).
    #[must_use]
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Ticks held now: at least `keep` once that many were pushed.
    #[must_use]
    pub fn ticks(&self) -> usize {
        self.series.first().map_or(0, Vec::len)
    }

    /// Appends one tick: `values[i]` is the sample of `metrics()[i]`,
    /// `None` (or a non-finite value, which [`Manifest::input`] treats the
    /// same) where the sample is missing.
    ///
    /// # Panics
    /// If `values` does not hold one value per metric: a bug in the caller,
    /// which builds its row from [`History::metrics`].
    pub fn push(&mut self, values: &[Option<f64>]) {
        assert_eq!(
            values.len(),
            self.metrics.len(),
            "History::push: one value per metric"
        );
        let keep = self.keep.max(1);
        let dropped = self.ticks() == 2 * keep;
        for (series, &value) in self.series.iter_mut().zip(values) {
            if dropped {
                series.drain(..keep);
            }
            series.push(value);
        }
        for sum in &mut self.sums {
            if dropped {
                // From scratch over what is left: the sums stay as exact
                // as a walk over at most twice the kept ticks.
                sum.rebuild(&self.series[sum.series]);
            } else {
                sum.push(values[sum.series]);
            }
        }
    }
}

impl FeatureSource for History {
    fn series(&self, device: Device, metric: &str) -> Option<&[Option<f64>]> {
        self.metrics
            .iter()
            .position(|(d, m)| *d == device && m == metric)
            .map(|i| self.series[i].as_slice())
    }

    fn present_sum(
        &self,
        device: Device,
        metric: &str,
        base: Transform,
        from: usize,
        to: usize,
    ) -> Option<(usize, f64)> {
        let sum = self.sums.iter().find(|r| {
            r.base == base && {
                let (d, m) = &self.metrics[r.series];
                *d == device && m == metric
            }
        })?;
        let (&(n_to, s_to), &(n_from, s_from)) = (sum.prefix.get(to)?, sum.prefix.get(from)?);
        Some((n_to - n_from, s_to - s_from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"{
              "format": 1,
              "model_version": "history-test",
              "input": "x",
              "output": "p",
              "window": 3,
              "baseline_ticks": 2,
              "tick_ms": 500,
              "horizon_ms": 30000,
              "threshold": 0.5,
              "features": [
                {"name": "primary.cpu", "device": "primary", "metric": "cpu",
                 "transform": "raw", "mean": 0.0, "scale": 1.0},
                {"name": "primary.cpu-minus-shadow", "device": "primary", "metric": "cpu",
                 "transform": "raw-minus-shadow", "mean": 0.0, "scale": 1.0},
                {"name": "primary.rx-pps-vs-baseline", "device": "primary", "metric": "rx-pps",
                 "transform": "log1p-vs-baseline", "mean": 0.0, "scale": 1.0}
              ]
            }"#,
        )
        .unwrap()
    }

    #[test]
    fn records_what_the_manifest_reads_once_each() {
        let h = History::for_manifest(&manifest());
        assert_eq!(
            h.metrics(),
            [
                (Device::Primary, "cpu".to_owned()),
                (Device::Shadow, "cpu".to_owned()),
                (Device::Primary, "rx-pps".to_owned()),
            ]
        );
        assert_eq!(h.keep(), 5);
        assert!(h.series(Device::Shadow, "rx-pps").is_none());
    }

    #[test]
    fn keeps_at_least_the_window_and_baseline_in_order() {
        let m = manifest();
        let mut h = History::for_manifest(&m);
        for t in 0..23 {
            let t = f64::from(t);
            h.push(&[Some(t), Some(-t), (t as i64 % 4 != 0).then_some(t * 10.0)]);
            let cpu = h.series(Device::Primary, "cpu").unwrap();
            assert!(cpu.len() >= h.keep().min(t as usize + 1));
            assert!(cpu.len() <= 2 * h.keep());
            assert_eq!(*cpu.last().unwrap(), Some(t), "the newest tick is last");
            assert!(cpu.windows(2).all(|w| w[1].unwrap() - w[0].unwrap() == 1.0));
        }
        // The input built from the history is the one built from the whole
        // series (up to the rounding of the running sums): what was dropped
        // is beyond what the manifest reads.
        struct Whole(Vec<(Device, &'static str, Vec<Option<f64>>)>);
        impl FeatureSource for Whole {
            fn series(&self, device: Device, metric: &str) -> Option<&[Option<f64>]> {
                self.0
                    .iter()
                    .find(|(d, m, _)| *d == device && *m == metric)
                    .map(|(_, _, s)| s.as_slice())
            }
        }
        let whole = Whole(vec![
            (
                Device::Primary,
                "cpu",
                (0..23).map(|t| Some(f64::from(t))).collect(),
            ),
            (
                Device::Shadow,
                "cpu",
                (0..23).map(|t| Some(-f64::from(t))).collect(),
            ),
            (
                Device::Primary,
                "rx-pps",
                (0..23)
                    .map(|t| (t % 4 != 0).then_some(f64::from(t) * 10.0))
                    .collect(),
            ),
        ]);
        let (ours, walked) = (m.input(&[&h]).unwrap(), m.input(&[&whole]).unwrap());
        let diff = ours
            .iter()
            .zip(&walked)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= 1e-6, "running sums differ from the walk by {diff}");
        // The baseline feature is not neutral: the sums were used.
        assert!(ours.iter().any(|&x| x != 0.0));
        // Every range of the kept series, against a walk of it.
        let rx = h.series(Device::Primary, "rx-pps").unwrap();
        for from in 0..rx.len() {
            for to in from..=rx.len() {
                let walked = rx[from..to]
                    .iter()
                    .flatten()
                    .fold((0, 0.0), |(n, s), &x| (n + 1, s + x.ln_1p()));
                let (n, sum) = h
                    .present_sum(Device::Primary, "rx-pps", Transform::Log1p, from, to)
                    .unwrap();
                assert_eq!(n, walked.0, "{from}..{to}");
                assert!((sum - walked.1).abs() < 1e-9, "{from}..{to}");
            }
        }
        assert_eq!(
            h.present_sum(Device::Primary, "rx-pps", Transform::Raw, 0, 2),
            None,
            "no running sum of a transform no feature uses"
        );
    }

    #[test]
    #[should_panic(expected = "one value per metric")]
    fn a_row_of_the_wrong_length_is_a_caller_bug() {
        History::for_manifest(&manifest()).push(&[Some(1.0)]);
    }
}
