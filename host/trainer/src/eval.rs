//! `umbra model eval`: the predictor, the drift detector and the failover
//! rule that combines them, judged event-wise on held-out traces.
//!
//! Every trace is replayed tick by tick the way the server would see it:
//!
//! - the GRU predictor runs through ONNX Runtime ([`umbra_model::Predictor`]),
//!   its input built by [`umbra_model::Manifest::input`] from the ticks up to
//!   and including the current one (so scaling is the manifest's, as in
//!   serving), all windows of a trace in batches;
//! - the streaming [`DriftDetector`] of `umbra-predict`, with its product
//!   defaults (only the tick is taken from the trace), gets every sample of
//!   both devices and is scored once per tick;
//! - [`umbra_policy_logic::failover`] decides on the drift result and the
//!   probability, carrying its state (hysteresis, cooldown, cap) from tick to
//!   tick. Its `go` verdicts are the combined alarms. A second instance of
//!   the rule is fed a drift score of 0, so it decides on the probability
//!   alone: what the predictor contributes to the real decision.
//!
//! Each of the four is scored by `umbra-scenario`'s [`Evaluator`]: precision,
//! recall and F1 over fault events (no point-adjust), lead times, the share of
//! faults caught at least `min-lead` before the failure onset, and false alarms
//! per device-day on fault-free traces. Generated data is streamed trace by
//! trace ([`umbra_scenario::generate_trace`]), so a hundred device-days never
//! sit in memory.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use umbra_model::{Device, FeatureSource, Manifest, Predictor};
use umbra_policy_logic::{
    CorrelationResult, DriftResult, FailoverConfig, FailoverInput, FailoverState, Prediction,
    Verdict, failover,
};
use umbra_predict::{DetectorConfig, DriftDetector, Sample};
use umbra_scenario::{
    EvalConfig, EvalReport, Evaluator, METRICS, ScenarioConfig, Summary, Trace, TraceMeta,
    parse_duration,
};

/// Flags of `umbra model eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Model to evaluate (its manifest sits next to it); default: the shipped
    /// default model, `host/model/default/umbra-gru.onnx`.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Directory of held-out traces (`umbra model generate` output). Without
    /// it, traces are generated on the fly from `--seed`, `--faulty`,
    /// `--fault-free` and `--duration`.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seed of the generated traces. Keep it different from the training
    /// seed: the default model was trained on seed 1.
    #[arg(long, default_value_t = 1_000, conflicts_with = "data")]
    pub seed: u64,
    /// Number of generated faulty traces.
    #[arg(long, default_value_t = 60, conflicts_with = "data")]
    pub faulty: usize,
    /// Number of generated fault-free traces.
    #[arg(long = "fault-free", default_value_t = 20, conflicts_with = "data")]
    pub fault_free: usize,
    /// Length of each generated trace (500ms, 90s, 10m, 1h, 2d).
    #[arg(long, default_value = "1h", value_parser = parse_duration, conflicts_with = "data")]
    pub duration: Duration,
    /// Shortest fault ramp of generated traces.
    #[arg(long = "ramp-min", default_value = "20s", value_parser = parse_duration, conflicts_with = "data")]
    pub ramp_min: Duration,
    /// Longest fault ramp of generated traces.
    #[arg(long = "ramp-max", default_value = "10m", value_parser = parse_duration, conflicts_with = "data")]
    pub ramp_max: Duration,
    /// A detection counts as in time when it comes at least this long before
    /// the failure onset.
    #[arg(long = "min-lead", default_value = "5s", value_parser = parse_duration)]
    pub min_lead: Duration,
    /// Drift detector setting as KEY=VALUE (feature, shaping and drift policy
    /// keys of `umbra-predict`), repeatable; unset keys keep the product
    /// defaults, `tick-ms` defaults to the trace's tick.
    #[arg(long = "detector", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub detector: Vec<(String, String)>,
    /// Failover policy setting as KEY=VALUE (`drift-threshold`,
    /// `probability-threshold`, `hysteresis`, ...), repeatable; unset keys keep
    /// the policy defaults, except `probability-threshold`, which defaults to
    /// the manifest's `threshold`.
    #[arg(long = "failover", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub failover: Vec<(String, String)>,
    /// More probability thresholds to judge on the same run, comma-separated
    /// (`--sweep 0.99,0.995,0.999`): the predictor alone, the failover rule
    /// over both and over the probability alone, re-decided at each from
    /// the probabilities and drift scores already computed. How a model's
    /// threshold is chosen on validation traces.
    #[arg(long, value_delimiter = ',', value_name = "P")]
    pub sweep: Vec<f64>,
    /// Windows per ONNX Runtime call.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Traces evaluated in parallel (each worker loads its own session);
    /// default: the number of cores.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Also write the full report (every trace's outcome) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Leave the per-trace outcomes out of the JSON report.
    #[arg(long)]
    pub summary_only: bool,
}

impl Default for EvalArgs {
    fn default() -> Self {
        Self {
            model: None,
            data: None,
            seed: 1_000,
            faulty: 60,
            fault_free: 20,
            duration: Duration::from_secs(3600),
            ramp_min: Duration::from_secs(20),
            ramp_max: Duration::from_secs(600),
            min_lead: Duration::from_secs(5),
            detector: Vec::new(),
            failover: Vec::new(),
            sweep: Vec::new(),
            batch: 512,
            jobs: None,
            json: None,
            summary_only: false,
        }
    }
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))
}

/// What `umbra model eval` measured.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEvalReport {
    /// The model file evaluated.
    pub model: PathBuf,
    /// Its manifest's version string.
    pub model_version: String,
    /// Where the traces came from (a directory, or the generator settings).
    pub source: String,
    /// Traces evaluated.
    pub traces: usize,
    /// Ticks replayed, over all traces.
    pub ticks: u64,
    /// The failover policy configuration used (also the thresholds of the
    /// predictor and drift detector alone).
    pub failover: Vec<(String, String)>,
    /// Drift detector settings given on top of the product defaults.
    pub detector: Vec<(String, String)>,
    /// The predictor alone: an alarm at every tick whose probability is at
    /// least `probability-threshold`.
    pub predictor: EvalReport,
    /// The drift detector alone: an alarm at every tick whose score is at
    /// least `drift-threshold`.
    pub drift: EvalReport,
    /// The failover rule over both: an alarm at every `go` verdict.
    pub combined: EvalReport,
    /// The failover rule fed a drift score of 0, so it decides on the
    /// probability alone (with its hysteresis, cooldown and cap): what the
    /// predictor contributes to the real decision.
    pub probability_rule: EvalReport,
    /// The same deciders at each `--sweep` threshold (summaries only).
    pub sweep: Vec<SweepPoint>,
    /// Wall-clock time of the evaluation, in milliseconds.
    pub elapsed_ms: u64,
}

/// The deciders that use the probability, judged at one more threshold.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// The `probability-threshold` used.
    pub threshold: f64,
    /// The predictor alone.
    pub predictor: Summary,
    /// The failover rule over drift and probability.
    pub combined: Summary,
    /// The failover rule over the probability alone.
    pub probability_rule: Summary,
}

impl ModelEvalReport {
    /// The same report without the per-trace outcomes.
    #[must_use]
    pub fn summary(&self) -> Self {
        let mut r = self.clone();
        for e in [
            &mut r.predictor,
            &mut r.drift,
            &mut r.combined,
            &mut r.probability_rule,
        ] {
            e.traces.clear();
        }
        r
    }
}

impl fmt::Display for ModelEvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.combined.overall.fault_free_device_days;
        writeln!(
            f,
            "model {} ({}) on {}: {} traces, {} ticks, {days:.2} fault-free device-days, {:.1} s",
            self.model.display(),
            self.model_version,
            self.source,
            self.traces,
            self.ticks,
            self.elapsed_ms as f64 / 1000.0
        )?;
        let pairs = |p: &[(String, String)]| {
            p.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        writeln!(f, "failover: {}", pairs(&self.failover))?;
        if !self.detector.is_empty() {
            writeln!(f, "detector: {}", pairs(&self.detector))?;
        }
        for (title, report) in [
            (
                "predictor (probability >= probability-threshold)",
                &self.predictor,
            ),
            ("drift detector (score >= drift-threshold)", &self.drift),
            ("combined failover rule (verdict go)", &self.combined),
            (
                "failover rule on the probability alone (drift score 0; verdict go)",
                &self.probability_rule,
            ),
        ] {
            writeln!(f, "\n{title}")?;
            write!(f, "{report}")?;
        }
        if !self.sweep.is_empty() {
            writeln!(
                f,
                "\nthreshold sweep: share of faults caught >= {:.1} s ahead, recall, false alarms per device-day",
                self.combined.min_lead_ms as f64 / 1000.0
            )?;
            writeln!(
                f,
                "{:>10}  {:>24}  {:>24}  {:>24}",
                "threshold", "predictor", "failover rule", "rule on probability"
            )?;
            let cell = |s: &Summary| {
                let pct =
                    |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.1}%", 100.0 * v));
                let fa = s
                    .false_alarms_per_device_day
                    .map_or("-".to_owned(), |v| format!("{v:.3}"));
                format!("{} {} {}", pct(s.in_time_share), pct(s.recall), fa)
            };
            for p in &self.sweep {
                writeln!(
                    f,
                    "{:>10}  {:>24}  {:>24}  {:>24}",
                    p.threshold,
                    cell(&p.predictor),
                    cell(&p.combined),
                    cell(&p.probability_rule)
                )?;
            }
        }
        Ok(())
    }
}

/// The traces to evaluate: a directory read one trace at a time, or the
/// generator.
enum Traces {
    Dir { dir: PathBuf, names: Vec<String> },
    Generated(ScenarioConfig),
}

impl Traces {
    fn len(&self) -> usize {
        match self {
            Self::Dir { names, .. } => names.len(),
            Self::Generated(c) => c.trace_count(),
        }
    }

    fn get(&self, index: usize) -> anyhow::Result<Trace> {
        match self {
            Self::Dir { dir, names } => umbra_scenario::read_trace(dir, &names[index])
                .with_context(|| format!("reading trace {} in {}", names[index], dir.display())),
            Self::Generated(c) => Ok(umbra_scenario::generate_trace(c, index)?),
        }
    }
}

/// The generator settings of `args`, as `umbra model generate` would derive
/// them from the same flags.
fn scenario_config(args: &EvalArgs) -> ScenarioConfig {
    let defaults = ScenarioConfig::default();
    ScenarioConfig {
        seed: args.seed,
        faulty_traces: args.faulty,
        fault_free_traces: args.fault_free,
        trace_duration: args.duration,
        ramp_min: args.ramp_min,
        ramp_max: args.ramp_max,
        min_history: defaults.min_history.min(
            args.duration
                .saturating_sub(args.ramp_max + defaults.post_failure),
        ),
        ..defaults
    }
}

/// A trace seen up to and including tick `end`: what the server would hold
/// in its buffers at that tick.
#[derive(Clone, Copy, Debug)]
pub struct TraceUpto<'a> {
    /// The trace.
    pub trace: &'a Trace,
    /// The last tick seen.
    pub end: usize,
}

impl FeatureSource for TraceUpto<'_> {
    fn series(&self, device: Device, metric: &str) -> Option<&[Option<f64>]> {
        let device = match device {
            Device::Primary => umbra_scenario::Device::Primary,
            Device::Shadow => umbra_scenario::Device::Shadow,
        };
        let s = self.trace.try_series(device, metric).ok()?;
        Some(&s[..s.len().min(self.end + 1)])
    }
}

/// Alarm times (Unix ms) of the four deciders on one trace.
#[derive(Debug, Default)]
struct TraceAlarms {
    predictor: Vec<i64>,
    drift: Vec<i64>,
    combined: Vec<i64>,
    probability_rule: Vec<i64>,
    /// Predictor, combined and probability-rule alarms at each `--sweep`
    /// threshold.
    sweep: Vec<[Vec<i64>; 3]>,
    ticks: u64,
}

/// Everything a worker needs to replay a trace, shared read-only.
struct Replay<'a> {
    detector: &'a DetectorConfig,
    failover: &'a FailoverConfig,
    batch: usize,
    /// Align the detector on the trace's tick (unless `tick-ms` was given).
    tick_from_trace: bool,
    /// Extra probability thresholds (`--sweep`).
    sweep: &'a [f64],
}

impl Replay<'_> {
    /// The failure probability at every tick; `None` before the first full
    /// window (the server has no prediction then either).
    fn probabilities(
        &self,
        predictor: &mut Predictor,
        trace: &Trace,
    ) -> anyhow::Result<Vec<Option<f32>>> {
        let window = predictor.manifest().window;
        let n = trace.len();
        let mut out = vec![None; n];
        let first = window.saturating_sub(1);
        let ends: Vec<usize> = (first..n).collect();
        for chunk in ends.chunks(self.batch.max(1)) {
            let views: Vec<TraceUpto<'_>> =
                chunk.iter().map(|&end| TraceUpto { trace, end }).collect();
            let sources: Vec<&dyn FeatureSource> =
                views.iter().map(|v| v as &dyn FeatureSource).collect();
            let input = predictor.manifest().input(&sources)?;
            let p = predictor.predict(input.view())?;
            for (&end, p) in chunk.iter().zip(p) {
                out[end] = Some(p);
            }
        }
        Ok(out)
    }

    /// Replays one trace through the four deciders.
    fn run(&self, predictor: &mut Predictor, trace: &Trace) -> anyhow::Result<TraceAlarms> {
        let probabilities = self
            .probabilities(predictor, trace)
            .with_context(|| format!("predicting on trace {}", trace.name()))?;
        let manifest = predictor.manifest();
        let mut detector_config = self.detector.clone();
        if self.tick_from_trace {
            detector_config.features.tick_ms = trace.tick_ms();
        }
        let mut detector = DriftDetector::new(detector_config)?;
        // Metric names are allocated once per trace, not once per sample.
        let names: Vec<String> = METRICS.iter().map(|m| (*m).to_owned()).collect();
        let mut alarms = TraceAlarms {
            ticks: trace.len() as u64,
            ..TraceAlarms::default()
        };
        let devices = [
            (
                umbra_scenario::Device::Primary,
                umbra_predict::Device::Primary,
            ),
            (
                umbra_scenario::Device::Shadow,
                umbra_predict::Device::Shadow,
            ),
        ];
        let mut sample = Sample {
            device: umbra_predict::Device::Primary,
            metric: String::new(),
            timestamp_ms: 0,
            value: 0.0,
        };
        // The drift result of every tick: the failover rules are decided
        // from them and the probabilities, at the threshold and at each
        // `--sweep` one alike.
        let mut drifts = Vec::with_capacity(trace.len());
        for (tick, &now_ms) in trace.timestamps_ms().iter().enumerate() {
            for (theirs, ours) in devices {
                for (i, name) in names.iter().enumerate() {
                    if let Some(value) = trace.series_at(theirs, i)[tick] {
                        sample.device = ours;
                        sample.metric.clone_from(name);
                        sample.timestamp_ms = now_ms;
                        sample.value = value;
                        detector.record(&sample).with_context(|| {
                            format!("trace {} tick {tick}: drift detector", trace.name())
                        })?;
                    }
                }
            }
            let out = detector.score(now_ms);
            if out.score >= self.failover.drift_threshold {
                alarms.drift.push(now_ms);
            }
            drifts.push(DriftResult {
                score: out.score,
                ..out.drift
            });
        }
        let decide = |threshold| {
            self.decide(
                threshold,
                trace.timestamps_ms(),
                &probabilities,
                &drifts,
                manifest,
            )
        };
        [alarms.predictor, alarms.combined, alarms.probability_rule] =
            decide(self.failover.probability_threshold);
        alarms.sweep = self.sweep.iter().map(|&t| decide(t)).collect();
        Ok(alarms)
    }

    /// The predictor's, the failover rule's and the probability rule's
    /// alarms at a probability threshold, from the probabilities and drift
    /// results of a replay.
    fn decide(
        &self,
        threshold: f64,
        timestamps_ms: &[i64],
        probabilities: &[Option<f32>],
        drifts: &[DriftResult],
        manifest: &Manifest,
    ) -> [Vec<i64>; 3] {
        let config = FailoverConfig {
            probability_threshold: threshold,
            ..self.failover.clone()
        };
        let [mut predictor, mut combined, mut probability_rule] = [Vec::new(), vec![], vec![]];
        let (mut state, mut probability_state) =
            (FailoverState::default(), FailoverState::default());
        for ((&now_ms, probability), drift) in timestamps_ms.iter().zip(probabilities).zip(drifts) {
            if probability.is_some_and(|p| f64::from(p) >= threshold) {
                predictor.push(now_ms);
            }
            let prediction = probability.map(|p| Prediction {
                probability: f64::from(p),
                horizon_ms: manifest.horizon_ms,
                model_version: manifest.model_version.clone(),
            });
            for (drift, state, alarms) in [
                (drift.clone(), &mut state, &mut combined),
                (
                    DriftResult::default(),
                    &mut probability_state,
                    &mut probability_rule,
                ),
            ] {
                let decision = failover(
                    &config,
                    &FailoverInput {
                        now_ms,
                        drift,
                        correlation: CorrelationResult::default(),
                        prediction: prediction.clone(),
                        state: std::mem::take(state),
                    },
                );
                *state = decision.state;
                if decision.verdict == Verdict::Go {
                    alarms.push(now_ms);
                }
            }
        }
        [predictor, combined, probability_rule]
    }
}

/// Runs `umbra model eval`: replays every held-out trace through the
/// predictor, the drift detector and the failover rule (over both, and over
/// the probability alone), and scores the four.
/// Prints nothing; the caller prints the report (it implements `Display`).
/// Writes `--json` if asked.
///
/// # Errors
/// An unreadable model, manifest or trace directory; a missing ONNX Runtime
/// library; invalid generator, detector or failover settings; a trace whose
/// tick differs from the model's; an unwritable JSON file.
pub fn eval_cmd(args: &EvalArgs) -> anyhow::Result<ModelEvalReport> {
    let started = Instant::now();
    let model = args
        .model
        .clone()
        .unwrap_or_else(umbra_model::default_model_path);
    let manifest = Manifest::load(&Manifest::path_for(&model))
        .with_context(|| format!("loading the manifest of {}", model.display()))?;

    // Detector: product defaults, overridden key by key; the tick is set per
    // trace unless given.
    let detector = DetectorConfig::from_pairs(&args.detector).context("--detector settings")?;
    let tick_given = args.detector.iter().any(|(k, _)| k == "tick-ms");
    let mut failover_config =
        FailoverConfig::from_pairs(&args.failover).context("--failover settings")?;
    // The model's own alarm probability unless the policy setting is given:
    // a model is trained and calibrated for its threshold.
    if !args
        .failover
        .iter()
        .any(|(k, _)| k == "probability-threshold")
    {
        failover_config.probability_threshold = manifest.threshold;
    }
    if let Some(bad) = args
        .sweep
        .iter()
        .find(|t| !(t.is_finite() && **t > 0.0 && **t <= 1.0))
    {
        anyhow::bail!("--sweep: {bad} is not a probability threshold in (0, 1]");
    }

    let (traces, source) = match &args.data {
        Some(dir) => {
            let names = umbra_scenario::trace_names(dir)
                .with_context(|| format!("listing traces in {}", dir.display()))?;
            anyhow::ensure!(!names.is_empty(), "no traces in {}", dir.display());
            (
                Traces::Dir {
                    dir: dir.clone(),
                    names,
                },
                dir.display().to_string(),
            )
        }
        None => {
            let config = scenario_config(args);
            config.validate().context("generator settings")?;
            let source = format!(
                "generated: seed {}, {} faulty + {} fault-free traces of {:?}",
                config.seed, config.faulty_traces, config.fault_free_traces, config.trace_duration
            );
            (Traces::Generated(config), source)
        }
    };
    let total = traces.len();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, total.max(1));

    // Workers take traces in turn; results are put back in trace order so the
    // report does not depend on scheduling.
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<(TraceMeta, TraceAlarms)>>> =
        Mutex::new((0..total).map(|_| None).collect());
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let work = || -> anyhow::Result<()> {
                    let mut predictor = Predictor::load(&model)
                        .with_context(|| format!("loading {}", model.display()))?;
                    let replay = Replay {
                        detector: &detector,
                        failover: &failover_config,
                        batch: args.batch,
                        tick_from_trace: !tick_given,
                        sweep: &args.sweep,
                    };
                    loop {
                        // Stop early once another worker has failed.
                        if failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                            return Ok(());
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return Ok(());
                        }
                        let trace = traces.get(i)?;
                        anyhow::ensure!(
                            u64::try_from(trace.tick_ms()).ok() == Some(manifest.tick_ms),
                            "trace {} has a {} ms tick, the model expects {} ms",
                            trace.name(),
                            trace.tick_ms(),
                            manifest.tick_ms
                        );
                        let alarms = replay.run(&mut predictor, &trace)?;
                        tracing::debug!(trace = trace.name(), "evaluated");
                        // No I/O or await under this lock: a slot write.
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] =
                            Some((trace.meta().clone(), alarms));
                    }
                };
                if let Err(e) = work() {
                    failed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }

    let config = EvalConfig {
        min_lead: args.min_lead,
        ..EvalConfig::default()
    };
    let mut predictor_eval = Evaluator::new(config.clone());
    let mut drift_eval = Evaluator::new(config.clone());
    let mut combined_eval = Evaluator::new(config.clone());
    let mut probability_eval = Evaluator::new(config.clone());
    let mut sweep_evals: Vec<[Evaluator; 3]> = args
        .sweep
        .iter()
        .map(|_| std::array::from_fn(|_| Evaluator::new(config.clone())))
        .collect();
    let mut ticks = 0;
    for (meta, alarms) in results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
    {
        predictor_eval.add(&meta, &alarms.predictor);
        drift_eval.add(&meta, &alarms.drift);
        combined_eval.add(&meta, &alarms.combined);
        probability_eval.add(&meta, &alarms.probability_rule);
        for (evals, sweep_alarms) in sweep_evals.iter_mut().zip(&alarms.sweep) {
            for (eval, alarms) in evals.iter_mut().zip(sweep_alarms) {
                eval.add(&meta, alarms);
            }
        }
        ticks += alarms.ticks;
    }
    let sweep = args
        .sweep
        .iter()
        .zip(sweep_evals)
        .map(
            |(&threshold, [predictor, combined, probability_rule])| SweepPoint {
                threshold,
                predictor: predictor.report().overall,
                combined: combined.report().overall,
                probability_rule: probability_rule.report().overall,
            },
        )
        .collect();
    let report = ModelEvalReport {
        model: model.clone(),
        model_version: manifest.model_version.clone(),
        source,
        traces: total,
        ticks,
        failover: failover_config.to_pairs(),
        detector: args.detector.clone(),
        predictor: predictor_eval.report(),
        drift: drift_eval.report(),
        combined: combined_eval.report(),
        probability_rule: probability_eval.report(),
        sweep,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    if let Some(path) = &args.json {
        let body = if args.summary_only {
            serde_json::to_vec_pretty(&report.summary())?
        } else {
            serde_json::to_vec_pretty(&report)?
        };
        std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}
