//! The learner on generated scenarios: it finds pairs that rise together
//! before the failures the generator injects, keeps them quiet on normal
//! traffic, and the policy configured with them fires where it learned.

use std::time::Duration;

use umbra_correlate::{Error, LearnConfig, RuleLearner, learn_dir};
use umbra_policy_logic::correlation::CorrelationConfig;
use umbra_scenario::{ScenarioConfig, ScenarioKind, generate, write_dir};

fn scenarios(seed: u64, kinds: Vec<ScenarioKind>, faulty: usize) -> ScenarioConfig {
    ScenarioConfig {
        seed,
        faulty_traces: faulty,
        fault_free_traces: 3,
        trace_duration: Duration::from_secs(20 * 60),
        fault_kinds: kinds,
        ramp_min: Duration::from_secs(60),
        ramp_max: Duration::from_secs(240),
        ..ScenarioConfig::default()
    }
}

#[test]
fn learns_quiet_rules_that_cover_the_faults() {
    let kinds = vec![ScenarioKind::CpuExhaustion, ScenarioKind::Http5xxRamp];
    let traces = generate(&scenarios(7, kinds, 6)).unwrap();
    let config = LearnConfig::default();
    let mut learner = RuleLearner::new(config.clone()).unwrap();
    for trace in &traces {
        learner.add(trace);
    }
    let learned = learner.finish().unwrap();
    assert_eq!(learned.faulty_traces, 6);
    assert!(!learned.rules.is_empty(), "{learned}");
    assert!(learned.faults_covered >= 3, "{learned}");
    for rule in &learned.rules {
        assert!(rule.false_rate <= config.max_false_rate, "{rule:?}");
        assert!(rule.faults_added > 0 && rule.faults_fired >= rule.faults_added);
    }
    // Greedy cover: the sum of what each rule added is what is covered.
    let added: usize = learned.rules.iter().map(|r| r.faults_added).sum();
    assert_eq!(added, learned.faults_covered);

    // The rules parse as the correlation policy's configuration.
    let pairs = vec![("rules".to_owned(), learned.config_value())];
    let policy = CorrelationConfig::from_pairs(&pairs).unwrap();
    assert_eq!(policy.rules.len(), learned.rules.len());

    // Same traces, same rules: deterministic.
    let mut again = RuleLearner::new(config).unwrap();
    for trace in &traces {
        again.add(trace);
    }
    assert_eq!(again.finish().unwrap(), learned);
}

#[test]
fn a_zero_false_rate_budget_keeps_only_pairs_that_never_fire_normally() {
    let traces = generate(&scenarios(11, vec![ScenarioKind::CpuExhaustion], 3)).unwrap();
    let config = LearnConfig {
        max_false_rate: 0.0,
        ..LearnConfig::default()
    };
    let mut learner = RuleLearner::new(config).unwrap();
    for trace in &traces {
        learner.add(trace);
    }
    let learned = learner.finish().unwrap();
    assert!(
        learned.rules.iter().all(|r| r.false_rate == 0.0),
        "{learned}"
    );
}

#[test]
fn from_a_directory_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let traces = generate(&scenarios(3, vec![ScenarioKind::Http5xxRamp], 2)).unwrap();
    write_dir(dir.path(), &traces).unwrap();
    let learned = learn_dir(dir.path(), LearnConfig::default()).unwrap();
    assert_eq!(learned.faulty_traces, 2);
    assert!(learned.to_string().contains("rules="));

    // Only fault-free traces: nothing to learn from.
    let mut learner = RuleLearner::new(LearnConfig::default()).unwrap();
    for trace in traces.iter().filter(|t| !t.meta().kind.is_fault()) {
        learner.add(trace);
    }
    assert!(matches!(learner.finish(), Err(Error::NotEnoughData(_))));

    let bad = LearnConfig {
        window: 1,
        stride: 0,
        max_rules: 0,
        ..LearnConfig::default()
    };
    let Err(Error::InvalidConfig(problems)) = RuleLearner::new(bad) else {
        panic!("expected an invalid configuration");
    };
    assert_eq!(problems.len(), 3, "{problems:?}");
}
