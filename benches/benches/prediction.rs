//! The predictive engine on one core:
//!
//! - `prediction/tick_1000_pairs`: one tick for 1 000 protected pairs: each
//!   pair's 32 new samples (16 metrics of primary and shadow) recorded in its
//!   drift detector (features, seasonal baselines, EWMA) and its model
//!   history, the drift score (product defaults), the correlation decision on
//!   the same observation, then one batched ONNX Runtime call of the shipped
//!   default GRU over all 1 000 windows (input built by `Manifest::input`,
//!   one intra-op thread). Throughput is in pairs: pair-evaluations per
//!   second. Target: >= 10 000.
//! - `prediction/single_window`: one window through the model (input
//!   already built): the inference latency of a lone pair.
//! - `prediction/single_window_with_input`: the same with the input built
//!   from the pair's history.
//!
//! The telemetry is generated fault-free traces (umbra-scenario), replayed
//! pair by pair at different offsets; every pair is warmed with a full
//! history (window + baseline ticks) before measuring. Needs ONNX Runtime
//! (`ORT_DYLIB_PATH`, or the `onnxruntime` wheel in `.venv`, as the tests).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use umbra_benches::replay::Replay;
use umbra_model::{Device, FeatureSource, History, Predictor};
use umbra_policy_logic::{CorrelationConfig, correlation};
use umbra_predict::{DetectorConfig, DriftDetector, Sample};
use umbra_scenario::{METRICS, metric_index};

const PAIRS: usize = 1_000;
const TRACES: usize = 8;

/// One protected pair as a server would hold it.
struct Pair {
    detector: DriftDetector,
    history: History,
}

/// Where each history metric is in a trace: (device, index in `METRICS`).
fn history_columns(history: &History) -> Vec<(umbra_scenario::Device, usize)> {
    history
        .metrics()
        .iter()
        .map(|(device, metric)| {
            let device = match device {
                Device::Primary => umbra_scenario::Device::Primary,
                Device::Shadow => umbra_scenario::Device::Shadow,
            };
            let at =
                metric_index(metric).unwrap_or_else(|| panic!("the generator records no {metric}"));
            (device, at)
        })
        .collect()
}

struct Engine {
    replay: Replay,
    pairs: Vec<Pair>,
    predictor: Predictor,
    columns: Vec<(umbra_scenario::Device, usize)>,
    correlation: CorrelationConfig,
    /// Metric names, allocated once.
    names: Vec<String>,
    sample: Sample,
    row: Vec<Option<f64>>,
    tick: usize,
}

impl Engine {
    fn new() -> Self {
        let predictor =
            Predictor::load(&umbra_model::default_model_path()).expect("load the default model");
        let detector = DetectorConfig::from_pairs(&[]).expect("product defaults");
        let pairs: Vec<Pair> = (0..PAIRS)
            .map(|_| Pair {
                detector: DriftDetector::new(detector.clone()).expect("detector"),
                history: History::for_manifest(predictor.manifest()),
            })
            .collect();
        let columns = history_columns(&pairs[0].history);
        let mut engine = Self {
            replay: Replay::fault_free(TRACES, 4_242),
            pairs,
            predictor,
            columns,
            correlation: CorrelationConfig::default(),
            names: METRICS.iter().map(|m| (*m).to_owned()).collect(),
            sample: Sample {
                device: umbra_predict::Device::Primary,
                metric: String::new(),
                timestamp_ms: 0,
                value: 0.0,
            },
            row: Vec::new(),
            tick: 0,
        };
        // A full history before measuring: what a pair has after its first
        // ten minutes.
        let warm = engine.pairs[0].history.keep();
        for _ in 0..warm {
            engine.record_tick();
            engine.tick += 1;
        }
        engine
    }

    fn now_ms(&self) -> i64 {
        Replay::now_ms(self.tick)
    }

    /// Records this tick's samples of every pair (no scoring).
    fn record_tick(&mut self) {
        let now_ms = self.now_ms();
        for p in 0..self.pairs.len() {
            self.record_pair(p, now_ms);
        }
    }

    fn record_pair(&mut self, p: usize, now_ms: i64) {
        let pair = &mut self.pairs[p];
        let (trace, at) = self.replay.at(p, self.tick);
        for (theirs, ours) in [
            (
                umbra_scenario::Device::Primary,
                umbra_predict::Device::Primary,
            ),
            (
                umbra_scenario::Device::Shadow,
                umbra_predict::Device::Shadow,
            ),
        ] {
            for (i, name) in self.names.iter().enumerate() {
                if let Some(value) = trace.series_at(theirs, i)[at] {
                    self.sample.device = ours;
                    self.sample.metric.clone_from(name);
                    self.sample.timestamp_ms = now_ms;
                    self.sample.value = value;
                    pair.detector.record(&self.sample).expect("record");
                }
            }
        }
        self.row.clear();
        self.row.extend(
            self.columns
                .iter()
                .map(|&(device, metric)| trace.series_at(device, metric)[at]),
        );
        pair.history.push(&self.row);
    }

    /// One full tick: record, drift, correlation for every pair, then one
    /// batched inference. Returns a checksum so nothing is optimised away.
    fn tick(&mut self) -> f64 {
        let now_ms = self.now_ms();
        let mut sum = 0.0;
        for p in 0..self.pairs.len() {
            self.record_pair(p, now_ms);
            let pair = &mut self.pairs[p];
            let (drift, observation) = pair.detector.evaluate(now_ms);
            let correlated = correlation(&self.correlation, &observation);
            sum += drift.score + correlated.score;
        }
        let sources: Vec<&dyn FeatureSource> = self
            .pairs
            .iter()
            .map(|p| &p.history as &dyn FeatureSource)
            .collect();
        let probabilities = self
            .predictor
            .predict_sources(&sources)
            .expect("batched inference");
        assert_eq!(probabilities.len(), PAIRS);
        sum += probabilities.iter().map(|&p| f64::from(p)).sum::<f64>();
        self.tick += 1;
        sum
    }
}

fn bench_prediction(c: &mut Criterion) {
    let mut engine = Engine::new();
    let mut group = c.benchmark_group("prediction");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("tick_1000_pairs", |b| b.iter(|| black_box(engine.tick())));
    group.throughput(Throughput::Elements(1));

    let one = [&engine.pairs[0].history as &dyn FeatureSource];
    let input = engine.predictor.manifest().input(&one).expect("input");
    group.sample_size(100);
    group.measurement_time(Duration::from_secs(5));
    let predictor = &mut engine.predictor;
    group.bench_function("single_window", |b| {
        b.iter(|| black_box(predictor.predict(input.view()).expect("inference")));
    });
    group.bench_function("single_window_with_input", |b| {
        b.iter(|| black_box(predictor.predict_sources(&one).expect("inference")));
    });
    group.finish();
}

criterion_group!(benches, bench_prediction);
criterion_main!(benches);
