//! Learned correlation rules: which pairs of a primary's metrics rise
//! together before failures and (almost) never otherwise, mined from
//! recorded or generated traces and emitted as the `rules` of the default
//! correlation policy (`co-rise:A+B` signals).
//!
//! The learner measures exactly what the policy will measure: it slides the
//! policy's window over every trace, builds the [`Observation`] the host
//! would build (baselines from the trace's own history before any fault,
//! missing samples carried forward and marked), and asks
//! [`umbra_policy_logic::correlation::signals`] for the co-rise weight of
//! every candidate pair. A pair *fires* in a window when its weight reaches
//! [`LearnConfig::fire_weight`]. Windows ending between a fault's start and
//! its failure onset are *pre-failure*; windows of fault-free traces and
//! before a fault starts are *normal*; windows after the onset are ignored
//! (the device is dead then).
//!
//! A pair qualifies when it fires in at most [`LearnConfig::max_false_rate`]
//! of the normal windows; qualifying pairs are then picked greedily by how
//! many not-yet-covered faulty traces they fire on before the onset (a set
//! cover), so the rules complement each other instead of repeating the
//! strongest one, up to [`LearnConfig::max_rules`].

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use umbra_policy_logic::correlation::{CoRise, CorrelationConfig, signals};
use umbra_policy_logic::{Baseline, DeviceWindow, Observation};
use umbra_scenario::{Device, METRICS, ScenarioKind, Trace};

/// Errors of the learner.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The learner's configuration is invalid; every problem is listed. The
    /// caller is at fault.
    #[error("invalid configuration: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    /// No trace had a fault to learn from, or none had normal windows. The
    /// data given is at fault.
    #[error("cannot learn rules: {0}")]
    NotEnoughData(String),
    /// Reading the traces failed.
    #[error(transparent)]
    Scenario(#[from] umbra_scenario::Error),
}

/// Result of the learner.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How rules are learned.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnConfig {
    /// Ticks per window (the policy's decision window).
    pub window: usize,
    /// Ticks between two windows evaluated.
    pub stride: usize,
    /// Ticks at the start of each trace (before any fault) its baselines are
    /// built from.
    pub history: usize,
    /// Co-rise weight at which a pair fires.
    pub fire_weight: f64,
    /// Largest share of normal windows a rule may fire in. A co-rise signal
    /// corroborates a drift or predictor trigger rather than triggering on
    /// its own (unless the failover policy is configured so), so a rule that
    /// fires in one normal window in 200 costs little and buys coverage.
    pub max_false_rate: f64,
    /// Most rules returned.
    pub max_rules: usize,
    /// The correlation policy's configuration whose co-rise parameters
    /// (`min-correlation`, `rise-high`, z-scoring) the learner measures with.
    pub policy: CorrelationConfig,
}

impl Default for LearnConfig {
    fn default() -> Self {
        Self {
            window: 60,
            stride: 10,
            history: 600,
            fire_weight: 0.5,
            max_false_rate: 0.005,
            max_rules: 8,
            policy: CorrelationConfig::default(),
        }
    }
}

impl LearnConfig {
    /// Every problem with the configuration.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.window < 5 {
            problems.push(format!(
                "window must be at least 5 ticks, got {}",
                self.window
            ));
        }
        if self.stride == 0 {
            problems.push("stride must be at least 1 tick".to_owned());
        }
        if self.history < 10 {
            problems.push(format!(
                "history must be at least 10 ticks, got {}",
                self.history
            ));
        }
        if !(self.fire_weight > 0.0 && self.fire_weight <= 1.0) {
            problems.push(format!(
                "fire weight must be in (0, 1], got {}",
                self.fire_weight
            ));
        }
        if !(0.0..=1.0).contains(&self.max_false_rate) {
            problems.push(format!(
                "max false rate must be in [0, 1], got {}",
                self.max_false_rate
            ));
        }
        if self.max_rules == 0 {
            problems.push("max rules must be at least 1".to_owned());
        }
        problems
    }
}

/// One learned rule and the evidence for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LearnedRule {
    /// First metric.
    pub a: String,
    /// Second metric.
    pub b: String,
    /// Faulty traces on which it fired before the onset, out of all faulty
    /// traces.
    pub faults_fired: usize,
    /// Faulty traces it newly covered when it was picked.
    pub faults_added: usize,
    /// Share of normal windows it fired in.
    pub false_rate: f64,
    /// Faulty traces it fired on, per fault kind.
    pub by_kind: BTreeMap<String, usize>,
}

/// What the learner found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LearnedRules {
    /// The rules picked, in the order picked.
    pub rules: Vec<LearnedRule>,
    /// Faulty traces seen.
    pub faulty_traces: usize,
    /// Faulty traces at least one picked rule fires on before the onset.
    pub faults_covered: usize,
    /// Normal windows evaluated.
    pub normal_windows: usize,
    /// Pre-failure windows evaluated.
    pub pre_failure_windows: usize,
    /// Candidate pairs considered.
    pub candidates: usize,
    /// The pairs that fired on the most faulty traces but fire too often in
    /// normal windows (at most five, most faults first): what an operator
    /// would try next by raising the false-rate budget.
    pub too_noisy: Vec<LearnedRule>,
}

impl LearnedRules {
    /// The rules as the correlation policy's `rules` value (`A+B,C+D`).
    pub fn config_value(&self) -> String {
        self.rules
            .iter()
            .map(|r| format!("{}+{}", r.a, r.b))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for LearnedRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} candidate pairs, {} faulty traces, {} pre-failure and {} normal windows",
            self.candidates, self.faulty_traces, self.pre_failure_windows, self.normal_windows
        )?;
        writeln!(
            f,
            "{:<40} {:>8} {:>8} {:>11}  by kind",
            "rule", "fired", "added", "false rate"
        )?;
        for r in &self.rules {
            let kinds: Vec<String> = r.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(
                f,
                "{:<40} {:>8} {:>8} {:>11.5}  {}",
                format!("{}+{}", r.a, r.b),
                r.faults_fired,
                r.faults_added,
                r.false_rate,
                kinds.join(", ")
            )?;
        }
        writeln!(
            f,
            "covered {} of {} faulty traces",
            self.faults_covered, self.faulty_traces
        )?;
        for r in &self.too_noisy {
            writeln!(
                f,
                "too noisy: {}+{} fired on {} faulty traces but in {:.5} of normal windows",
                r.a, r.b, r.faults_fired, r.false_rate
            )?;
        }
        write!(f, "rules={}", self.config_value())
    }
}

/// What one pair did over the traces.
#[derive(Clone, Debug, Default)]
struct PairTally {
    normal_fired: usize,
    /// Indexes (into the faulty traces) it fired on before the onset.
    faults: Vec<usize>,
}

/// The learner, fed one trace at a time (so any number of traces fits in
/// memory).
pub struct RuleLearner {
    config: LearnConfig,
    policy: CorrelationConfig,
    pairs: Vec<(String, String)>,
    tallies: Vec<PairTally>,
    faulty_kinds: Vec<ScenarioKind>,
    normal_windows: usize,
    pre_failure_windows: usize,
}

impl RuleLearner {
    /// A learner over every pair of the 16 metrics.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every problem.
    pub fn new(config: LearnConfig) -> Result<Self> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(Error::InvalidConfig(problems));
        }
        let mut pairs = Vec::new();
        for (i, a) in METRICS.iter().enumerate() {
            for b in &METRICS[i + 1..] {
                pairs.push(((*a).to_owned(), (*b).to_owned()));
            }
        }
        let mut policy = config.policy.clone();
        policy.rules = pairs
            .iter()
            .map(|(a, b)| CoRise {
                a: a.clone(),
                b: b.clone(),
            })
            .collect();
        // Every co-rise weight is wanted, not only the heavy ones.
        policy.min_weight = f64::MIN_POSITIVE;
        Ok(Self {
            tallies: vec![PairTally::default(); pairs.len()],
            pairs,
            policy,
            config,
            faulty_kinds: Vec::new(),
            normal_windows: 0,
            pre_failure_windows: 0,
        })
    }

    /// Evaluates every window of `trace`.
    pub fn add(&mut self, trace: &Trace) {
        let meta = trace.meta();
        let fault = match (meta.fault_start_ms, meta.failure_onset_ms) {
            (Some(start), Some(onset)) if meta.kind.is_fault() => Some((start, onset)),
            _ => None,
        };
        let fault_index = fault.map(|_| {
            self.faulty_kinds.push(meta.kind);
            self.faulty_kinds.len() - 1
        });
        let times = trace.timestamps_ms();
        // The history the baselines come from ends before the fault starts.
        let history_end = match fault {
            Some((start, _)) => trace.tick_at(start).min(self.config.history),
            None => self.config.history.min(times.len()),
        };
        let baselines: Vec<Baseline> = METRICS
            .iter()
            .map(|m| baseline(&trace.series(Device::Primary, m)[..history_end]))
            .collect();
        let window = self.config.window;
        let mut end = history_end.max(window);
        let mut fired_here = vec![false; self.pairs.len()];
        while end <= times.len() {
            let t_end = times[end - 1];
            let label = match fault {
                Some((_, onset)) if t_end > onset => break,
                Some((start, _)) if t_end >= start => Label::PreFailure,
                _ => Label::Normal,
            };
            let observation = observation(trace, end - window, end, &baselines);
            for signal in signals(&self.policy, &observation) {
                if signal.weight < self.config.fire_weight {
                    continue;
                }
                let Some(index) = self.pair_index(&signal.name) else {
                    continue;
                };
                match label {
                    Label::Normal => self.tallies[index].normal_fired += 1,
                    Label::PreFailure => fired_here[index] = true,
                }
            }
            match label {
                Label::Normal => self.normal_windows += 1,
                Label::PreFailure => self.pre_failure_windows += 1,
            }
            end += self.config.stride;
        }
        if let Some(fault_index) = fault_index {
            for (tally, fired) in self.tallies.iter_mut().zip(fired_here) {
                if fired {
                    tally.faults.push(fault_index);
                }
            }
        }
    }

    fn pair_index(&self, signal: &str) -> Option<usize> {
        let (a, b) = signal.strip_prefix("co-rise:")?.split_once('+')?;
        self.pairs.iter().position(|(x, y)| x == a && y == b)
    }

    /// Picks the rules.
    ///
    /// # Errors
    ///
    /// [`Error::NotEnoughData`] without a faulty trace or a normal window.
    pub fn finish(self) -> Result<LearnedRules> {
        if self.faulty_kinds.is_empty() {
            return Err(Error::NotEnoughData("no faulty trace".to_owned()));
        }
        if self.normal_windows == 0 {
            return Err(Error::NotEnoughData(
                "no normal window (fault-free traces or history before faults)".to_owned(),
            ));
        }
        let false_rate = |t: &PairTally| t.normal_fired as f64 / self.normal_windows as f64;
        let mut covered = vec![false; self.faulty_kinds.len()];
        // (pair, faults it newly covered), in the order picked.
        let mut picked: Vec<(usize, usize)> = Vec::new();
        let mut used = vec![false; self.pairs.len()];
        while picked.len() < self.config.max_rules {
            // The qualifying pair adding the most uncovered faults; ties go
            // to the lower false rate, then to the pair order (deterministic).
            let best = self
                .tallies
                .iter()
                .enumerate()
                .filter(|(i, t)| !used[*i] && false_rate(t) <= self.config.max_false_rate)
                .map(|(i, t)| (i, t.faults.iter().filter(|&&f| !covered[f]).count()))
                .filter(|&(_, added)| added > 0)
                .max_by(|&(i, added_i), &(j, added_j)| {
                    added_i.cmp(&added_j).then_with(|| {
                        false_rate(&self.tallies[j])
                            .total_cmp(&false_rate(&self.tallies[i]))
                            .then_with(|| j.cmp(&i))
                    })
                });
            let Some((index, added)) = best else {
                break;
            };
            used[index] = true;
            for &f in &self.tallies[index].faults {
                covered[f] = true;
            }
            picked.push((index, added));
        }
        let rule = |index: usize, added: usize| {
            let tally = &self.tallies[index];
            let mut by_kind = BTreeMap::new();
            for &f in &tally.faults {
                *by_kind
                    .entry(self.faulty_kinds[f].as_str().to_owned())
                    .or_insert(0) += 1;
            }
            let (a, b) = &self.pairs[index];
            LearnedRule {
                a: a.clone(),
                b: b.clone(),
                faults_fired: tally.faults.len(),
                faults_added: added,
                false_rate: false_rate(tally),
                by_kind,
            }
        };
        let mut noisy: Vec<usize> = (0..self.pairs.len())
            .filter(|&i| {
                !self.tallies[i].faults.is_empty()
                    && false_rate(&self.tallies[i]) > self.config.max_false_rate
            })
            .collect();
        noisy.sort_by_key(|&i| std::cmp::Reverse(self.tallies[i].faults.len()));
        let too_noisy = noisy.into_iter().take(5).map(|i| rule(i, 0)).collect();
        Ok(LearnedRules {
            too_noisy,
            rules: picked
                .into_iter()
                .map(|(i, added)| rule(i, added))
                .collect(),
            faulty_traces: self.faulty_kinds.len(),
            faults_covered: covered.iter().filter(|&&c| c).count(),
            normal_windows: self.normal_windows,
            pre_failure_windows: self.pre_failure_windows,
            candidates: self.pairs.len(),
        })
    }
}

#[derive(Clone, Copy)]
enum Label {
    Normal,
    PreFailure,
}

/// Mean and standard deviation of the present values.
fn baseline(values: &[Option<f64>]) -> Baseline {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let n = present.len();
    if n < 2 {
        return Baseline::default();
    }
    let mean = present.iter().sum::<f64>() / n as f64;
    let var = present.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    Baseline {
        mean,
        stddev: var.sqrt(),
        samples: u32::try_from(n).unwrap_or(u32::MAX),
    }
}

/// The observation the host would build for ticks `start..end` of the
/// primary: missing samples carried forward and listed (a leading gap
/// takes the baseline mean), one baseline per metric.
fn observation(trace: &Trace, start: usize, end: usize, baselines: &[Baseline]) -> Observation {
    let mut primary = DeviceWindow::default();
    let mut values = Vec::with_capacity(end - start);
    let mut missing = Vec::new();
    for (metric, baseline) in METRICS.iter().zip(baselines) {
        values.clear();
        missing.clear();
        let series = &trace.series(Device::Primary, metric)[start..end];
        let mut last = series
            .iter()
            .flatten()
            .next()
            .copied()
            .unwrap_or(baseline.mean);
        for (i, v) in series.iter().enumerate() {
            match v {
                Some(v) => last = *v,
                None => missing.push(u32::try_from(i).unwrap_or(u32::MAX)),
            }
            values.push(last);
        }
        // The names are the fixed metric names, the lengths equal: this
        // cannot be refused.
        let _ = primary.push(metric, &values, &missing, baseline.clone());
    }
    let timestamps_ms = trace.timestamps_ms()[start..end].to_vec();
    Observation {
        now_ms: timestamps_ms.last().copied().unwrap_or_default(),
        timestamps_ms,
        primary,
        ..Observation::default()
    }
}

/// Learns rules from every trace of a directory (read one at a time).
///
/// # Errors
///
/// As [`RuleLearner::new`], [`RuleLearner::finish`], or reading the traces.
pub fn learn_dir(dir: &std::path::Path, config: LearnConfig) -> Result<LearnedRules> {
    let mut learner = RuleLearner::new(config)?;
    for name in umbra_scenario::trace_names(dir)? {
        learner.add(&umbra_scenario::read_trace(dir, &name)?);
    }
    learner.finish()
}

/// `umbra model rules`: learn co-rise rules from a trace directory.
#[derive(Clone, Debug, clap::Args)]
pub struct RulesArgs {
    /// Trace directory (`umbra model generate` output or recorded traces).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Most rules to pick.
    #[arg(long, default_value_t = 8)]
    pub max_rules: usize,
    /// Largest share of normal windows a rule may fire in.
    #[arg(long, default_value_t = 0.005)]
    pub max_false_rate: f64,
    /// Co-rise weight at which a pair fires.
    #[arg(long, default_value_t = 0.5)]
    pub fire_weight: f64,
    /// Also write the result as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Runs `umbra model rules` and prints the table and the `rules=` line.
///
/// # Errors
///
/// Bad arguments, unreadable traces, nothing to learn from, or a JSON file
/// that cannot be written.
pub fn rules_cmd(args: &RulesArgs) -> anyhow::Result<LearnedRules> {
    let config = LearnConfig {
        max_rules: args.max_rules,
        max_false_rate: args.max_false_rate,
        fire_weight: args.fire_weight,
        ..LearnConfig::default()
    };
    let learned = learn_dir(&args.data, config)?;
    println!("{learned}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&learned)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(learned)
}
