//! Detector-agnostic, event-wise evaluation of alarms against traces.
//!
//! A detector is judged only by the times at which it raised an alarm on each
//! trace. The rules, with no point-adjust:
//!
//! - Alarm timestamps one tick (or less) apart form one alarm *event*.
//! - A fault is *detected* if at least one alarm falls within
//!   `[fault_start, failure_onset]` (inclusive). Its *lead time* is the
//!   failure onset minus the first alarm in that window.
//! - Every alarm event with no alarm in that window — before the fault starts
//!   or anywhere on a fault-free trace — is a *false alarm*. Alarms after the
//!   failure onset are dropped by default ([`EvalConfig::ignore_after_onset`]):
//!   the device is dead then, so an alarm there is right, merely too late to
//!   count as a prediction; with the option off they count as false alarms.
//! - Precision = detected faults / (detected faults + false alarms); extra
//!   alarm events within one fault window neither help nor hurt. Recall =
//!   detected faults / faults. F1 is their harmonic mean.
//! - False alarms per device-day are counted on fault-free traces only.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::{Error, Result, ScenarioKind, Trace, TraceMeta};

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// A detection counts as "in time" when it comes at least this long
    /// before the failure onset (default 5 s).
    pub min_lead: Duration,
    /// Drop alarms after the failure onset instead of counting them as false
    /// alarms (default true: the device is already dead then).
    pub ignore_after_onset: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            min_lead: Duration::from_secs(5),
            ignore_after_onset: true,
        }
    }
}

/// What a detector did on one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceOutcome {
    /// The trace's name.
    pub name: String,
    /// Fault-free, or which fault.
    pub kind: ScenarioKind,
    /// Monitored device-days in the trace.
    pub device_days: f64,
    /// Number of alarm events.
    pub alarm_events: usize,
    /// Alarm events that were false alarms.
    pub false_alarms: usize,
    /// For a faulty trace, whether the fault was detected; `None` when
    /// fault-free.
    pub detected: Option<bool>,
    /// Failure onset minus the first alarm in the fault window, in ms.
    pub lead_ms: Option<i64>,
}

/// Alarm timestamps grouped into events: `(first, last)` per event.
fn alarm_events(alarms_ms: &[i64], tick_ms: i64) -> Vec<(i64, i64)> {
    let mut sorted = alarms_ms.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut events: Vec<(i64, i64)> = Vec::new();
    for t in sorted {
        match events.last_mut() {
            Some(last) if t - last.1 <= tick_ms => last.1 = t,
            _ => events.push((t, t)),
        }
    }
    events
}

/// Judges the alarms raised on one trace (timestamps in Unix ms, any order).
#[must_use]
pub fn judge(meta: &TraceMeta, alarms_ms: &[i64], config: &EvalConfig) -> TraceOutcome {
    let window = match (meta.fault_start_ms, meta.failure_onset_ms) {
        (Some(s), Some(o)) if meta.kind.is_fault() => Some((s, o)),
        _ => None,
    };
    let alarms: Vec<i64> = match window {
        Some((_, onset)) if config.ignore_after_onset => {
            alarms_ms.iter().copied().filter(|&t| t <= onset).collect()
        }
        _ => alarms_ms.to_vec(),
    };
    let events = alarm_events(&alarms, meta.tick_ms);
    let in_window = |t: i64| window.is_some_and(|(s, o)| (s..=o).contains(&t));
    let first_in_window = alarms.iter().copied().filter(|&t| in_window(t)).min();
    // An event is true if any of its alarms lies in the window; events are
    // contiguous runs of the sorted alarms, so check the sorted alarms per event.
    let mut sorted = alarms.clone();
    sorted.sort_unstable();
    let false_alarms = events
        .iter()
        .filter(|&&(first, last)| {
            let lo = sorted.partition_point(|&t| t < first);
            let hi = sorted.partition_point(|&t| t <= last);
            !sorted[lo..hi].iter().any(|&t| in_window(t))
        })
        .count();
    TraceOutcome {
        name: meta.name.clone(),
        kind: meta.kind,
        device_days: meta.device_days,
        alarm_events: events.len(),
        false_alarms,
        detected: window.map(|_| first_in_window.is_some()),
        lead_ms: window.and_then(|(_, onset)| first_in_window.map(|t| onset - t)),
    }
}

/// Summary figures over a set of traces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Faulty traces.
    pub faults: usize,
    /// Faults with an alarm in their window.
    pub detected: usize,
    /// False alarm events, on all traces.
    pub false_alarms: usize,
    /// Detected / (detected + false alarms); `None` without any alarm.
    pub precision: Option<f64>,
    /// Detected / faults; `None` without faults.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall; `None` if either is.
    pub f1: Option<f64>,
    /// Median lead time of detected faults, ms.
    pub lead_median_ms: Option<f64>,
    /// 10th percentile lead time (90% of detections came earlier), ms.
    pub lead_p10_ms: Option<f64>,
    /// Faults detected at least `min_lead` before the onset.
    pub detected_in_time: usize,
    /// `detected_in_time / faults`; `None` without faults.
    pub in_time_share: Option<f64>,
    /// Fault-free traces.
    pub fault_free_traces: usize,
    /// Device-days of fault-free traces.
    pub fault_free_device_days: f64,
    /// False alarm events on fault-free traces.
    pub fault_free_false_alarms: usize,
    /// `fault_free_false_alarms / fault_free_device_days`; `None` without
    /// fault-free time.
    pub false_alarms_per_device_day: Option<f64>,
}

/// Percentile `q` in `[0, 1]` of sorted `values`, interpolating linearly
/// between closest ranks.
fn percentile(sorted: &[i64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] as f64 + (sorted[hi] - sorted[lo]) as f64 * frac)
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Summary {
    fn of<'a>(outcomes: impl IntoIterator<Item = &'a TraceOutcome>, min_lead_ms: i64) -> Self {
        let mut faults = 0;
        let mut detected = 0;
        let mut false_alarms = 0;
        let mut leads = Vec::new();
        let mut fault_free_traces = 0;
        let mut fault_free_device_days = 0.0;
        let mut fault_free_false_alarms = 0;
        for o in outcomes {
            false_alarms += o.false_alarms;
            match o.detected {
                Some(d) => {
                    faults += 1;
                    if d {
                        detected += 1;
                    }
                    leads.extend(o.lead_ms);
                }
                None => {
                    fault_free_traces += 1;
                    fault_free_device_days += o.device_days;
                    fault_free_false_alarms += o.false_alarms;
                }
            }
        }
        leads.sort_unstable();
        let detected_in_time = leads.iter().filter(|&&l| l >= min_lead_ms).count();
        let precision = ratio(detected, detected + false_alarms);
        let recall = ratio(detected, faults);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        Self {
            faults,
            detected,
            false_alarms,
            precision,
            recall,
            f1,
            lead_median_ms: percentile(&leads, 0.5),
            lead_p10_ms: percentile(&leads, 0.1),
            detected_in_time,
            in_time_share: ratio(detected_in_time, faults),
            fault_free_traces,
            fault_free_device_days,
            fault_free_false_alarms,
            false_alarms_per_device_day: (fault_free_device_days > 0.0)
                .then(|| fault_free_false_alarms as f64 / fault_free_device_days),
        }
    }
}

/// The result of an evaluation: overall, per kind and per trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The `min_lead` used, ms.
    pub min_lead_ms: i64,
    /// Figures over every trace.
    pub overall: Summary,
    /// Figures per kind (fault-free included), in [`ScenarioKind::ALL`] order.
    pub by_kind: BTreeMap<ScenarioKind, Summary>,
    /// Every trace's outcome, in the order given.
    pub traces: Vec<TraceOutcome>,
}

/// Accumulates [`TraceOutcome`]s one trace at a time, so large fault-free
/// runs can be generated, scored and dropped trace by trace.
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    config: EvalConfig,
    outcomes: Vec<TraceOutcome>,
}

impl Evaluator {
    /// An evaluator with no traces yet.
    #[must_use]
    pub fn new(config: EvalConfig) -> Self {
        Self {
            config,
            outcomes: Vec::new(),
        }
    }

    /// Judges the alarms raised on one trace and records the outcome.
    pub fn add(&mut self, meta: &TraceMeta, alarms_ms: &[i64]) -> &TraceOutcome {
        self.outcomes.push(judge(meta, alarms_ms, &self.config));
        self.outcomes.last().expect("just pushed")
    }

    /// The report over every trace added so far.
    #[must_use]
    pub fn report(&self) -> EvalReport {
        let min_lead_ms = i64::try_from(self.config.min_lead.as_millis()).unwrap_or(i64::MAX);
        let mut by_kind = BTreeMap::new();
        for kind in ScenarioKind::ALL {
            let of_kind: Vec<&TraceOutcome> =
                self.outcomes.iter().filter(|o| o.kind == kind).collect();
            if !of_kind.is_empty() {
                by_kind.insert(kind, Summary::of(of_kind, min_lead_ms));
            }
        }
        EvalReport {
            min_lead_ms,
            overall: Summary::of(&self.outcomes, min_lead_ms),
            by_kind,
            traces: self.outcomes.clone(),
        }
    }
}

/// Evaluates `alarms_ms[i]` (alarm timestamps, Unix ms) against `traces[i]`.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if there is not exactly one alarm list per trace.
pub fn evaluate(
    traces: &[Trace],
    alarms_ms: &[Vec<i64>],
    config: &EvalConfig,
) -> Result<EvalReport> {
    if traces.len() != alarms_ms.len() {
        return Err(Error::InvalidConfig {
            problems: vec![format!(
                "{} traces but {} alarm lists",
                traces.len(),
                alarms_ms.len()
            )],
        });
    }
    let mut evaluator = Evaluator::new(config.clone());
    for (trace, alarms) in traces.iter().zip(alarms_ms) {
        evaluator.add(trace.meta(), alarms);
    }
    Ok(evaluator.report())
}

fn opt(v: Option<f64>, scale: f64, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.decimals$}", v * scale))
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<22} {:>6} {:>8} {:>6} {:>6} {:>6} {:>6} {:>10} {:>10} {:>8} {:>9} {:>8}",
            "kind",
            "faults",
            "detected",
            "prec",
            "recall",
            "f1",
            "false",
            "lead p50 s",
            "lead p10 s",
            format!(">={}s", self.min_lead_ms as f64 / 1000.0),
            "dev-days",
            "FA/day"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, s: &Summary| {
            writeln!(
                f,
                "{:<22} {:>6} {:>8} {:>6} {:>6} {:>6} {:>6} {:>10} {:>10} {:>8} {:>9} {:>8}",
                name,
                s.faults,
                s.detected,
                opt(s.precision, 1.0, 3),
                opt(s.recall, 1.0, 3),
                opt(s.f1, 1.0, 3),
                s.false_alarms,
                opt(s.lead_median_ms, 1e-3, 1),
                opt(s.lead_p10_ms, 1e-3, 1),
                opt(s.in_time_share, 1.0, 3),
                if s.fault_free_traces > 0 {
                    format!("{:.2}", s.fault_free_device_days)
                } else {
                    "-".to_owned()
                },
                opt(s.false_alarms_per_device_day, 1.0, 2),
            )
        };
        for (kind, s) in &self.by_kind {
            row(f, kind.as_str(), s)?;
        }
        row(f, "all", &self.overall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn faulty(kind: ScenarioKind, start: i64, onset: i64) -> TraceMeta {
        TraceMeta {
            name: format!("f-{start}-{onset}"),
            seed: 0,
            kind,
            tick_ms: 500,
            fault_start_ms: Some(start),
            failure_onset_ms: Some(onset),
            device_days: 0.1,
        }
    }

    fn clean(days: f64) -> TraceMeta {
        TraceMeta {
            name: "clean".into(),
            seed: 0,
            kind: ScenarioKind::FaultFree,
            tick_ms: 500,
            fault_start_ms: None,
            failure_onset_ms: None,
            device_days: days,
        }
    }

    fn judge_default(meta: &TraceMeta, alarms: &[i64]) -> TraceOutcome {
        judge(meta, alarms, &EvalConfig::default())
    }

    #[test]
    fn consecutive_alarm_ticks_form_one_event() {
        assert_eq!(
            alarm_events(&[1500, 1000, 2000, 5000, 5500], 500),
            [(1000, 2000), (5000, 5500)]
        );
        assert_eq!(
            alarm_events(&[1000, 1000, 1600], 500),
            [(1000, 1000), (1600, 1600)]
        );
        assert!(alarm_events(&[], 500).is_empty());
    }

    #[test]
    fn an_alarm_inside_the_window_detects_the_fault_with_its_lead() {
        let m = faulty(ScenarioKind::CpuExhaustion, 100 * S, 200 * S);
        let o = judge_default(&m, &[150 * S, 150 * S + 500, 190 * S]);
        assert_eq!(o.detected, Some(true));
        assert_eq!(
            o.lead_ms,
            Some(50 * S),
            "onset minus the first alarm in the window"
        );
        assert_eq!(o.alarm_events, 2);
        assert_eq!(
            o.false_alarms, 0,
            "extra events inside the window are not false"
        );
    }

    #[test]
    fn window_bounds_are_inclusive() {
        let m = faulty(ScenarioKind::MemoryLeak, 100 * S, 200 * S);
        assert_eq!(judge_default(&m, &[100 * S]).lead_ms, Some(100 * S));
        assert_eq!(judge_default(&m, &[200 * S]).lead_ms, Some(0));
        assert_eq!(judge_default(&m, &[200 * S + 1]).detected, Some(false));
        assert_eq!(judge_default(&m, &[100 * S - 1]).detected, Some(false));
    }

    #[test]
    fn alarms_outside_the_window_are_false_and_do_not_detect() {
        let m = faulty(ScenarioKind::PacketLoss, 100 * S, 200 * S);
        let counting = EvalConfig {
            ignore_after_onset: false,
            ..EvalConfig::default()
        };
        let o = judge(&m, &[10 * S, 50 * S, 50 * S + 500, 250 * S], &counting);
        assert_eq!(o.detected, Some(false));
        assert_eq!(o.lead_ms, None);
        assert_eq!(
            o.false_alarms, 3,
            "before start (2 events) and after onset (1)"
        );
        // By default an alarm on the dead device is dropped.
        assert_eq!(judge_default(&m, &[10 * S, 250 * S]).false_alarms, 1);
    }

    #[test]
    fn an_event_running_into_the_window_is_a_detection_not_a_false_alarm() {
        let m = faulty(ScenarioKind::PacketLoss, 100 * S, 200 * S);
        let alarms: Vec<i64> = (0..10).map(|i| 98 * S + i * 500).collect();
        let o = judge_default(&m, &alarms);
        assert_eq!(o.detected, Some(true));
        assert_eq!(o.false_alarms, 0);
        assert_eq!(
            o.lead_ms,
            Some(100 * S),
            "lead counts from the first alarm in the window"
        );
    }

    #[test]
    fn every_event_on_a_fault_free_trace_is_false() {
        let o = judge_default(&clean(1.0), &[S, 2 * S, 2 * S + 500, 9 * S]);
        assert_eq!(o.detected, None);
        assert_eq!(o.false_alarms, 3);
    }

    #[test]
    fn summary_combines_precision_recall_lead_and_false_alarm_rate() {
        let mut e = Evaluator::new(EvalConfig::default());
        // Detected 60 s early, detected 2 s early (too late for min_lead),
        // missed with a false alarm before the fault.
        e.add(&faulty(ScenarioKind::CpuExhaustion, 0, 100 * S), &[40 * S]);
        e.add(&faulty(ScenarioKind::CpuExhaustion, 0, 100 * S), &[98 * S]);
        e.add(&faulty(ScenarioKind::MemoryLeak, 100 * S, 200 * S), &[S]);
        // Two fault-free traces, 2.5 device-days, 2 false alarm events.
        e.add(&clean(2.0), &[5 * S, 5 * S + 500]);
        e.add(&clean(0.5), &[7 * S]);
        let r = e.report();
        let all = &r.overall;
        assert_eq!((all.faults, all.detected, all.false_alarms), (3, 2, 3));
        assert_eq!(all.precision, Some(2.0 / 5.0));
        assert_eq!(all.recall, Some(2.0 / 3.0));
        let f1 = all.f1.unwrap();
        assert!((f1 - 0.5).abs() < 1e-12, "2pr/(p+r) = 0.5, got {f1}");
        assert_eq!(all.lead_median_ms, Some(31.0 * S as f64));
        assert_eq!(
            all.lead_p10_ms,
            Some(7800.0), // 2 s + 10% of (60 s - 2 s)
        );
        assert_eq!(all.detected_in_time, 1);
        assert_eq!(all.in_time_share, Some(1.0 / 3.0));
        assert_eq!(all.fault_free_traces, 2);
        assert_eq!(all.fault_free_false_alarms, 2);
        assert_eq!(all.false_alarms_per_device_day, Some(2.0 / 2.5));

        let cpu = &r.by_kind[&ScenarioKind::CpuExhaustion];
        assert_eq!((cpu.faults, cpu.detected, cpu.false_alarms), (2, 2, 0));
        assert_eq!(cpu.precision, Some(1.0));
        let leak = &r.by_kind[&ScenarioKind::MemoryLeak];
        assert_eq!(
            (leak.recall, leak.precision, leak.f1),
            (Some(0.0), Some(0.0), Some(0.0))
        );
        assert!(!r.by_kind.contains_key(&ScenarioKind::PacketLoss));
        assert_eq!(
            r.by_kind[&ScenarioKind::FaultFree].false_alarms_per_device_day,
            Some(0.8)
        );

        let table = r.to_string();
        assert!(table.lines().next().unwrap().contains(">=5s"), "{table}");
        let last = table.lines().last().unwrap();
        assert!(
            last.starts_with("all") && last.contains("0.400") && last.contains("0.80"),
            "{table}"
        );
        assert!(table.contains("memory-leak"));

        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["overall"]["detected"], 2);
        assert_eq!(json["by_kind"]["cpu-exhaustion"]["faults"], 2);
    }

    #[test]
    fn no_alarms_leaves_precision_undefined_and_recall_zero() {
        let mut e = Evaluator::new(EvalConfig::default());
        e.add(&faulty(ScenarioKind::Http5xxRamp, 0, S), &[]);
        let s = e.report().overall;
        assert_eq!((s.precision, s.recall, s.f1), (None, Some(0.0), None));
        assert_eq!(s.lead_median_ms, None);
        assert_eq!(s.false_alarms_per_device_day, None);
    }

    #[test]
    fn evaluate_pairs_traces_with_alarm_lists() {
        let traces = crate::generate(&crate::ScenarioConfig {
            faulty_traces: 1,
            fault_free_traces: 1,
            trace_duration: Duration::from_secs(1200),
            ..crate::ScenarioConfig::default()
        })
        .unwrap();
        let onset = traces[0].meta().failure_onset_ms.unwrap();
        let r = evaluate(
            &traces,
            &[vec![onset - 10 * S], vec![]],
            &EvalConfig::default(),
        )
        .unwrap();
        assert_eq!(r.overall.detected, 1);
        assert_eq!(r.overall.detected_in_time, 1);
        assert_eq!(r.overall.false_alarms_per_device_day, Some(0.0));
        assert!(evaluate(&traces, &[], &EvalConfig::default()).is_err());
    }
}
