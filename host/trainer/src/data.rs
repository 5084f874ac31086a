//! Training data: recorded traces, labelled windows and the split by trace.
//!
//! A [`Recording`] is one trace of a primary/shadow pair: per-tick raw metric
//! values and, for traces that end in a failure, the failure onset. Windows are
//! cut from it with [`umbra_model::Manifest::input`], the same function the
//! server uses, so training and serving scale features identically.

use std::collections::HashMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use umbra_model::{Device, Feature, FeatureSource, Manifest, Relation, Transform};

use crate::{Error, Result};

/// One recorded (or simulated) trace of a primary/shadow device pair.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Name used in reports (usually the trace's file name).
    pub name: String,
    /// Milliseconds between two ticks.
    pub tick_ms: u64,
    /// When the primary hard-failed, in milliseconds from the first tick;
    /// `None` for a fault-free trace.
    pub failure_onset_ms: Option<u64>,
    /// When the fault that leads to the failure started, in milliseconds from
    /// the first tick, if known. Windows ending between it and the horizon
    /// before the onset are neither healthy nor about to fail within the
    /// horizon; [`windows`] can leave them out.
    pub fault_start_ms: Option<u64>,
    series: HashMap<Device, HashMap<String, Vec<Option<f64>>>>,
}

impl Recording {
    /// An empty recording.
    #[must_use]
    pub fn new(name: impl Into<String>, tick_ms: u64, failure_onset_ms: Option<u64>) -> Self {
        Self {
            name: name.into(),
            tick_ms,
            failure_onset_ms,
            fault_start_ms: None,
            series: HashMap::new(),
        }
    }

    /// Adds (or replaces) the per-tick series of `metric` on `device`.
    pub fn insert(&mut self, device: Device, metric: impl Into<String>, values: Vec<Option<f64>>) {
        self.series
            .entry(device)
            .or_default()
            .insert(metric.into(), values);
    }

    /// The per-tick series of `metric` on `device`, if recorded.
    #[must_use]
    pub fn series(&self, device: Device, metric: &str) -> Option<&[Option<f64>]> {
        self.series
            .get(&device)
            .and_then(|m| m.get(metric))
            .map(Vec::as_slice)
    }

    /// Number of ticks (the longest series).
    #[must_use]
    pub fn ticks(&self) -> usize {
        self.series
            .values()
            .flat_map(HashMap::values)
            .map(Vec::len)
            .max()
            .unwrap_or(0)
    }

    /// The failure onset as a tick index, rounded up: the first tick at or after it.
    fn onset_tick(&self) -> Option<usize> {
        self.failure_onset_ms
            .map(|ms| usize::try_from(ms.div_ceil(self.tick_ms)).unwrap_or(usize::MAX))
    }
}

/// Converts an `umbra-scenario` trace (absolute Unix-ms timestamps) into a
/// [`Recording`] (milliseconds from the first tick), copying every series.
#[must_use]
pub fn recording_from_trace(trace: &umbra_scenario::Trace) -> Recording {
    let meta = trace.meta();
    let tick_ms = u64::try_from(meta.tick_ms).unwrap_or(0);
    // An onset before the first tick counts as at the first tick.
    let onset = meta
        .failure_onset_ms
        .map(|t| u64::try_from(t - trace.start_ms()).unwrap_or(0));
    let mut r = Recording::new(trace.name(), tick_ms, onset);
    r.fault_start_ms = meta
        .fault_start_ms
        .map(|t| u64::try_from(t - trace.start_ms()).unwrap_or(0));
    for (device, ours) in [
        (umbra_scenario::Device::Primary, Device::Primary),
        (umbra_scenario::Device::Shadow, Device::Shadow),
    ] {
        for (i, metric) in umbra_scenario::METRICS.iter().enumerate() {
            r.insert(ours, *metric, trace.series_at(device, i).to_vec());
        }
    }
    r
}

/// A recording seen up to and including tick `end`: what the server would have
/// had in its buffers at that tick.
struct Upto<'a> {
    recording: &'a Recording,
    end: usize,
}

impl FeatureSource for Upto<'_> {
    fn series(&self, device: Device, metric: &str) -> Option<&[Option<f64>]> {
        let s = self.recording.series(device, metric)?;
        Some(&s[..s.len().min(self.end + 1)])
    }
}

/// Which metric a feature reads and how it is transformed; its scaling is
/// fitted on the training traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec {
    /// The device it is read from.
    pub device: Device,
    /// The metric name.
    pub metric: String,
    /// The transform before standardisation.
    pub transform: Transform,
}

impl FeatureSpec {
    /// A feature spec.
    #[must_use]
    pub fn new(device: Device, metric: &str, transform: Transform) -> Self {
        Self {
            device,
            metric: metric.to_owned(),
            transform,
        }
    }

    /// The feature's name: `<device>.<metric>`, with `-minus-shadow` or
    /// `-vs-baseline` appended for a relative transform.
    #[must_use]
    pub fn name(&self) -> String {
        let suffix = match self.transform.relation() {
            Relation::Absolute => "",
            Relation::MinusShadow => "-minus-shadow",
            Relation::VsBaseline => "-vs-baseline",
        };
        format!("{}.{}{suffix}", self.device, self.metric)
    }
}

/// Metrics that are fractions or flags: used as measured. Every other metric is
/// a rate, count or latency with a heavy tail and goes through `log1p`.
const RAW_METRICS: [&str; 4] = ["cpu", "memory", "conntrack-fill", "db-up"];

/// The default features: every primary metric, plus the shadow metrics that
/// show whether it is ready to take over (load, health, replication).
#[must_use]
pub fn default_features(metrics: &[&str]) -> Vec<FeatureSpec> {
    const SHADOW: [&str; 6] = [
        "cpu",
        "memory",
        "rx-pps",
        "health-latency-ms",
        "db-up",
        "mirror-pps",
    ];
    let transform = |m: &str| {
        if RAW_METRICS.contains(&m) {
            Transform::Raw
        } else {
            Transform::Log1p
        }
    };
    let primary = metrics
        .iter()
        .map(|m| FeatureSpec::new(Device::Primary, m, transform(m)));
    let shadow = metrics
        .iter()
        .filter(|m| SHADOW.contains(m))
        .map(|m| FeatureSpec::new(Device::Shadow, m, transform(m)));
    primary.chain(shadow).collect()
}

/// The shadow-relative and baseline-relative features the default model adds
/// to [`default_features`]: a traffic surge reaches both devices and lifts
/// the load above its recent level, a fault of the primary does neither.
#[must_use]
pub fn relative_features() -> Vec<FeatureSpec> {
    vec![
        FeatureSpec::new(Device::Primary, "cpu", Transform::RawMinusShadow),
        FeatureSpec::new(
            Device::Primary,
            "health-latency-ms",
            Transform::Log1pMinusShadow,
        ),
        FeatureSpec::new(Device::Primary, "rx-pps", Transform::Log1pMinusShadow),
        FeatureSpec::new(Device::Primary, "cpu", Transform::RawVsBaseline),
        FeatureSpec::new(Device::Primary, "rx-pps", Transform::Log1pVsBaseline),
        FeatureSpec::new(Device::Primary, "http-5xx-rate", Transform::Log1pVsBaseline),
        FeatureSpec::new(Device::Shadow, "cpu", Transform::RawVsBaseline),
        FeatureSpec::new(Device::Shadow, "rx-pps", Transform::Log1pVsBaseline),
    ]
}

/// Fits each feature's mean and scale on `recordings` (ticks before the
/// failure onset only: the windows the model sees end there).
///
/// An absolute feature is fitted on every tick. A relative one is fitted on
/// what [`Manifest::transformed`] gives for back-to-back windows of `window`
/// ticks (so each tick once, with the baseline of `baseline_ticks` its
/// window would have).
///
/// # Errors
/// [`Error::Data`] if a recording lacks a feature's metric.
pub fn fit_features(
    recordings: &[&Recording],
    specs: &[FeatureSpec],
    window: usize,
    baseline_ticks: usize,
) -> Result<Vec<Feature>> {
    let window = window.max(1);
    specs
        .iter()
        .map(|spec| {
            let (mut n, mut sum, mut sum_sq) = (0usize, 0.0f64, 0.0f64);
            let mut add = |v: f64| {
                n += 1;
                sum += v;
                sum_sq += v * v;
            };
            let mut unscaled = Feature {
                name: spec.name(),
                device: spec.device,
                metric: spec.metric.clone(),
                transform: spec.transform,
                mean: 0.0,
                scale: 1.0,
            };
            let probe = Manifest {
                format: umbra_model::manifest::FORMAT,
                model_version: "fit".to_owned(),
                input: "window".to_owned(),
                output: "p_fail".to_owned(),
                window,
                tick_ms: 1,
                horizon_ms: 1,
                threshold: 0.5,
                baseline_ticks,
                features: Vec::new(),
                training: None,
            };
            for rec in recordings {
                let missing = || {
                    Error::Data(format!(
                        "trace {} does not record {}.{}",
                        rec.name, spec.device, spec.metric
                    ))
                };
                let series = rec.series(spec.device, &spec.metric).ok_or_else(missing)?;
                let end = rec.onset_tick().unwrap_or(usize::MAX).min(series.len());
                if spec.transform.relation() == Relation::Absolute {
                    for x in series[..end].iter().flatten().filter(|x| x.is_finite()) {
                        add(spec.transform.apply(*x));
                    }
                    continue;
                }
                let mut last = window - 1;
                while last < end {
                    let view = Upto {
                        recording: rec,
                        end: last,
                    };
                    let values = probe
                        .transformed(0, &unscaled, &view)
                        .map_err(|e| Error::Data(format!("trace {}: {e}", rec.name)))?;
                    values.into_iter().flatten().for_each(&mut add);
                    last += window;
                }
            }
            let mean = if n == 0 { 0.0 } else { sum / n as f64 };
            let var = if n == 0 {
                0.0
            } else {
                (sum_sq / n as f64 - mean * mean).max(0.0)
            };
            // A constant feature (a flag that never flipped in training) keeps
            // scale 1 so a flip at serving time is a visible, finite step.
            let std = var.sqrt();
            unscaled.mean = mean;
            unscaled.scale = if std > 1e-6 { std } else { 1.0 };
            Ok(unscaled)
        })
        .collect()
}

/// Labelled windows, flattened `[rows, window, features]` row-major.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    /// Scaled inputs, `rows * window * features` values.
    pub x: Vec<f32>,
    /// 1.0 if the failure onset falls within the horizon after the window's last tick.
    pub y: Vec<f32>,
    /// Index of the recording each row was cut from.
    pub trace: Vec<usize>,
}

impl Windows {
    /// Number of windows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True if there are no windows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Number of positive windows.
    #[must_use]
    pub fn positives(&self) -> usize {
        self.y.iter().filter(|y| **y > 0.5).count()
    }
}

/// How windows are cut from a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Ticks between the ends of consecutive negative windows.
    pub stride: usize,
    /// Ticks between the ends of consecutive positive windows (they are rare,
    /// so usually denser than negatives).
    pub positive_stride: usize,
    /// Leave out windows that end after the fault started but more than the
    /// horizon before the failure: the device is already degrading, so they
    /// are not healthy, yet failure is not within the horizon either.
    pub skip_early_fault: bool,
}

impl Cut {
    /// Every window at one stride, labelled by the horizon alone.
    #[must_use]
    pub fn every(stride: usize) -> Self {
        Self {
            stride,
            positive_stride: stride,
            skip_early_fault: false,
        }
    }
}

/// Cuts labelled windows from `recordings` every `stride` ticks.
///
/// A window ending at tick `t` is positive when the failure onset lies in
/// `(t, t + horizon]`. Windows ending at or after the onset are left out: the
/// device has already failed and failover is no longer a prediction.
///
/// # Errors
/// [`Error::Data`] if a recording's tick differs from the manifest's or it
/// lacks a feature's metric.
pub fn windows(
    recordings: &[(usize, &Recording)],
    manifest: &Manifest,
    stride: usize,
) -> Result<Windows> {
    windows_cut(recordings, manifest, Cut::every(stride))
}

/// Cuts labelled windows from `recordings` as `cut` says; labels as
/// [`windows`].
///
/// # Errors
/// As [`windows`].
pub fn windows_cut(
    recordings: &[(usize, &Recording)],
    manifest: &Manifest,
    cut: Cut,
) -> Result<Windows> {
    let stride = cut.stride.max(1);
    let positive_stride = cut.positive_stride.max(1);
    let row = manifest.window * manifest.features.len();
    let mut out = Windows::default();
    for &(index, rec) in recordings {
        if rec.tick_ms != manifest.tick_ms {
            return Err(Error::Data(format!(
                "trace {} has a {} ms tick, the model expects {} ms",
                rec.name, rec.tick_ms, manifest.tick_ms
            )));
        }
        let ticks = rec.ticks();
        let onset = rec.failure_onset_ms;
        let mut ends = Vec::new();
        let mut labels = Vec::new();
        // Positives are taken on their own grid counted back from the onset,
        // negatives on theirs counted from the first full window.
        let first = manifest.window.saturating_sub(1);
        for end in first..ticks {
            let end_ms = end as u64 * rec.tick_ms;
            if onset.is_some_and(|o| end_ms >= o) {
                break;
            }
            let positive = onset.is_some_and(|o| o - end_ms <= manifest.horizon_ms);
            let early_fault =
                !positive && onset.is_some() && rec.fault_start_ms.is_some_and(|s| end_ms >= s);
            if cut.skip_early_fault && early_fault {
                continue;
            }
            let keep = if positive && positive_stride != stride {
                let before = onset.map_or(0, |o| (o - end_ms) / rec.tick_ms.max(1));
                (before as usize).is_multiple_of(positive_stride)
            } else {
                (end - first).is_multiple_of(stride)
            };
            if keep {
                ends.push(end);
                labels.push(positive);
            }
        }
        // Chunks bound the memory of one Manifest::input call.
        for (chunk, chunk_labels) in ends.chunks(512).zip(labels.chunks(512)) {
            let views: Vec<Upto<'_>> = chunk
                .iter()
                .map(|&end| Upto {
                    recording: rec,
                    end,
                })
                .collect();
            let sources: Vec<&dyn FeatureSource> =
                views.iter().map(|v| v as &dyn FeatureSource).collect();
            let input = manifest
                .input(&sources)
                .map_err(|e| Error::Data(format!("trace {}: {e}", rec.name)))?;
            debug_assert_eq!(input.len(), chunk.len() * row);
            out.x.extend(input.iter().copied());
            out.y
                .extend(chunk_labels.iter().map(|&l| if l { 1.0 } else { 0.0 }));
            out.trace.extend(std::iter::repeat_n(index, chunk.len()));
        }
    }
    Ok(out)
}

/// Splits recording indices into (train, validation) by trace, never by
/// window, so no validation window shares history with a training window.
/// Failing and fault-free traces are split separately so both sides see both
/// kinds; the split is a seeded shuffle.
#[must_use]
pub fn split_by_trace(
    recordings: &[Recording],
    val_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for failing in [true, false] {
        let mut group: Vec<usize> = (0..recordings.len())
            .filter(|&i| recordings[i].failure_onset_ms.is_some() == failing)
            .collect();
        group.shuffle(&mut rng);
        // At least one trace of each kind stays in training; validation gets
        // its share only when the group has two or more.
        let n_val = if group.len() >= 2 {
            ((group.len() as f64 * val_fraction).round() as usize).clamp(1, group.len() - 1)
        } else {
            0
        };
        val.extend_from_slice(&group[..n_val]);
        train.extend_from_slice(&group[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(window: usize, horizon_ms: u64, features: Vec<Feature>) -> Manifest {
        Manifest {
            format: 1,
            model_version: "t".to_owned(),
            input: "window".to_owned(),
            output: "p_fail".to_owned(),
            window,
            tick_ms: 500,
            horizon_ms,
            threshold: 0.5,
            baseline_ticks: 0,
            features,
            training: None,
        }
    }

    fn ramp(name: &str, ticks: usize, onset_ms: Option<u64>) -> Recording {
        let mut r = Recording::new(name, 500, onset_ms);
        r.insert(
            Device::Primary,
            "cpu",
            (0..ticks).map(|t| Some(t as f64)).collect(),
        );
        r
    }

    #[test]
    fn labels_follow_the_horizon_and_stop_at_onset() {
        // Onset at 10 s = tick 20; horizon 2 s = 4 ticks; window 3.
        let rec = ramp("f", 40, Some(10_000));
        let spec = [FeatureSpec::new(Device::Primary, "cpu", Transform::Raw)];
        let features = fit_features(&[&rec], &spec, 3, 0).unwrap();
        let m = manifest(3, 2_000, features);
        let w = windows(&[(7, &rec)], &m, 1).unwrap();
        // Ends 2..=19 (tick 20 is the onset).
        assert_eq!(w.len(), 18);
        let positive_ends: Vec<usize> = (0..w.len())
            .filter(|&i| w.y[i] > 0.5)
            .map(|i| i + 2)
            .collect();
        assert_eq!(positive_ends, vec![16, 17, 18, 19]);
        assert!(w.trace.iter().all(|&t| t == 7));
        // Each row is the three ticks ending at its end, scaled.
        let f = &m.features[0];
        let last = &w.x[w.x.len() - 3..];
        assert_eq!(
            last,
            &[
                f.scale_value(17.0),
                f.scale_value(18.0),
                f.scale_value(19.0)
            ]
        );
    }

    #[test]
    fn cut_thins_negatives_keeps_dense_positives_and_skips_the_early_fault() {
        // Onset at 20 s = tick 40, the fault started at tick 10; horizon 2 s
        // = 4 ticks; window 3, so window ends run from tick 2.
        let mut rec = ramp("f", 60, Some(20_000));
        rec.fault_start_ms = Some(5_000);
        let spec = [FeatureSpec::new(Device::Primary, "cpu", Transform::Raw)];
        let features = fit_features(&[&rec], &spec, 3, 0).unwrap();
        let m = manifest(3, 2_000, features);
        let ends = |w: &Windows| -> Vec<(usize, bool)> {
            // Each row's last value is its end tick, scaled; undo the scaling.
            let f = &m.features[0];
            (0..w.len())
                .map(|i| {
                    let x = f64::from(w.x[i * 3 + 2]) * f.scale + f.mean;
                    (x.round() as usize, w.y[i] > 0.5)
                })
                .collect()
        };
        let cut = Cut {
            stride: 5,
            positive_stride: 1,
            skip_early_fault: true,
        };
        let w = windows_cut(&[(0, &rec)], &m, cut).unwrap();
        assert_eq!(
            ends(&w),
            [
                (2, false),
                (7, false),
                (36, true),
                (37, true),
                (38, true),
                (39, true)
            ],
            "negatives every 5 ticks before the fault, every positive, nothing in between"
        );
        let all = windows_cut(
            &[(0, &rec)],
            &m,
            Cut {
                skip_early_fault: false,
                ..cut
            },
        )
        .unwrap();
        let negatives: Vec<usize> = ends(&all)
            .into_iter()
            .filter(|e| !e.1)
            .map(|e| e.0)
            .collect();
        assert_eq!(negatives, [2, 7, 12, 17, 22, 27, 32]);
        assert_eq!(all.positives(), 4);
        // Cut::every is the plain stride for both classes.
        assert_eq!(
            windows(&[(0, &rec)], &m, 2).unwrap().y,
            windows_cut(&[(0, &rec)], &m, Cut::every(2)).unwrap().y
        );
    }

    #[test]
    fn scaling_is_fitted_before_onset_only() {
        let rec = ramp("f", 10, Some(2_000)); // ticks 0..4 before onset
        let spec = [FeatureSpec::new(Device::Primary, "cpu", Transform::Raw)];
        let f = &fit_features(&[&rec], &spec, 3, 0).unwrap()[0];
        assert!((f.mean - 1.5).abs() < 1e-12, "{f:?}");
        assert!((f.scale - 1.25f64.sqrt()).abs() < 1e-12, "{f:?}");
        assert_eq!(f.name, "primary.cpu");
    }

    #[test]
    fn relative_features_are_fitted_on_what_the_model_sees() {
        // Primary 0, 1, ..., shadow constant 2; onset at tick 8.
        let mut rec = ramp("f", 12, Some(4_000));
        rec.insert(Device::Shadow, "cpu", vec![Some(2.0); 12]);
        let specs = [
            FeatureSpec::new(Device::Primary, "cpu", Transform::RawMinusShadow),
            FeatureSpec::new(Device::Primary, "cpu", Transform::RawVsBaseline),
        ];
        let f = fit_features(&[&rec], &specs, 2, 2).unwrap();
        assert_eq!(f[0].name, "primary.cpu-minus-shadow");
        assert_eq!(f[1].name, "primary.cpu-vs-baseline");
        // Back-to-back windows ending at ticks 1, 3, 5, 7: every tick before
        // the onset once. Minus shadow: -2..=5, mean 1.5.
        assert!((f[0].mean - 1.5).abs() < 1e-12, "{:?}", f[0]);
        // Against the mean of the two ticks before each window: the first
        // window has none (neutral, left out), then 1.5 and 2.5 each time.
        assert!((f[1].mean - 2.0).abs() < 1e-12, "{:?}", f[1]);
        assert!((f[1].scale - 0.5).abs() < 1e-12, "{:?}", f[1]);
    }

    #[test]
    fn a_missing_metric_names_the_trace() {
        let rec = ramp("trace-9", 10, None);
        let spec = [FeatureSpec::new(Device::Shadow, "cpu", Transform::Raw)];
        let err = fit_features(&[&rec], &spec, 3, 0).unwrap_err();
        assert!(err.to_string().contains("trace-9"), "{err}");
    }

    #[test]
    fn split_is_by_trace_seeded_and_keeps_both_kinds() {
        let recs: Vec<Recording> = (0..10)
            .map(|i| ramp(&i.to_string(), 5, (i % 2 == 0).then_some(1_000)))
            .collect();
        let (train, val) = split_by_trace(&recs, 0.2, 3);
        assert_eq!(train.len() + val.len(), 10);
        assert_eq!(val.len(), 2);
        assert!(val.iter().any(|&i| i % 2 == 0) && val.iter().any(|&i| i % 2 == 1));
        assert!(train.iter().all(|i| !val.contains(i)));
        assert_eq!(split_by_trace(&recs, 0.2, 3), (train.clone(), val.clone()));
        assert_ne!(
            split_by_trace(&recs, 0.2, 4).1,
            val,
            "seed changes the split"
        );
    }

    #[test]
    fn default_features_log_rates_and_add_shadow_readiness() {
        let f = default_features(&["cpu", "rx-bps", "db-up", "mirror-pps"]);
        let names: Vec<String> = f
            .iter()
            .map(|s| format!("{}.{}", s.device, s.metric))
            .collect();
        assert_eq!(
            names,
            [
                "primary.cpu",
                "primary.rx-bps",
                "primary.db-up",
                "primary.mirror-pps",
                "shadow.cpu",
                "shadow.db-up",
                "shadow.mirror-pps"
            ]
        );
        assert_eq!(f[1].transform, Transform::Log1p);
        assert_eq!(f[2].transform, Transform::Raw);
    }
}
