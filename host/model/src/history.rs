//! What a server keeps per device pair to build its model input tick after
//! tick: the last `window + baseline_ticks` samples of every metric the
//! manifest reads, as a [`FeatureSource`].

use crate::manifest::{Device, FeatureSource, Manifest, Relation};

/// The recent samples of one device pair, for [`Manifest::input`].
///
/// Each series is a vector that grows to twice the kept length and then
/// drops its older half, so a tick costs amortised O(1) per metric and the
/// series stays one contiguous slice, as [`FeatureSource::series`] hands it
/// out.
#[derive(Clone, Debug)]
pub struct History {
    keep: usize,
    metrics: Vec<(Device, String)>,
    series: Vec<Vec<Option<f64>>>,
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
        let keep = manifest.window + manifest.baseline_ticks;
        let series = metrics
            .iter()
            .map(|_| Vec::with_capacity(2 * keep))
            .collect();
        Self {
            keep,
            metrics,
            series,
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
        for (series, &value) in self.series.iter_mut().zip(values) {
            if series.len() == 2 * keep {
                series.drain(..keep);
            }
            series.push(value);
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
        // The input built from the history equals the one built from the
        // whole series: what was dropped is beyond what the manifest reads.
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
        assert_eq!(m.input(&[&h]).unwrap(), m.input(&[&whole]).unwrap());
    }

    #[test]
    #[should_panic(expected = "one value per metric")]
    fn a_row_of_the_wrong_length_is_a_caller_bug() {
        History::for_manifest(&manifest()).push(&[Some(1.0)]);
    }
}
