//! The export macros expand in a crate other than the SDK (this test
//! crate), for all three kinds; the helpers behind the generated `Guest`
//! impls keep one configured instance per component instance.

use std::cell::RefCell;

use umbra_policy_sdk::__private::{Slot, configure, with};
use umbra_policy_sdk::{
    ConfigReader, CorrelationPolicy, CorrelationResult, DriftPolicy, DriftResult, FailoverDecision,
    FailoverInput, FailoverPolicy, Level, Observation, Signal, Verdict, correlation, drift,
    failover, log, take_native_logs,
};

/// A custom drift policy: the default decision, scaled.
struct ScaledDrift {
    factor: f64,
    config: drift::Config,
}

impl DriftPolicy for ScaledDrift {
    fn configure(pairs: &[(String, String)]) -> Result<Self, String> {
        // Own keys and the default policy's keys, every problem reported.
        let own: Vec<_> = pairs
            .iter()
            .filter(|(k, _)| k == "factor")
            .cloned()
            .collect();
        let rest: Vec<_> = pairs
            .iter()
            .filter(|(k, _)| k != "factor")
            .cloned()
            .collect();
        let mut reader = ConfigReader::new(&own);
        let factor = reader.f64("factor", 1.0, |f| (0.0..=1.0).contains(&f), "in [0, 1]");
        let mut problems = Vec::new();
        if let Err(e) = reader.finish() {
            problems.push(e.to_string());
        }
        let config = drift::Config::from_pairs(&rest).map_err(|e| {
            problems.push(e.to_string());
        });
        match config {
            Ok(config) if problems.is_empty() => Ok(Self { factor, config }),
            _ => Err(problems.join("; ")),
        }
    }

    fn evaluate(&self, input: &Observation) -> DriftResult {
        let mut result = drift::default_decision(&self.config, input);
        result.score *= self.factor;
        log(Level::Debug, &format!("scaled by {}", self.factor));
        result
    }
}

umbra_policy_sdk::export_drift_policy!(ScaledDrift);

/// A custom correlation policy that always reports one signal.
struct Constant;

impl CorrelationPolicy for Constant {
    fn configure(pairs: &[(String, String)]) -> Result<Self, String> {
        if pairs.is_empty() {
            Ok(Self)
        } else {
            Err("takes no configuration".into())
        }
    }

    fn evaluate(&self, _: &Observation) -> CorrelationResult {
        CorrelationResult {
            score: 0.5,
            signals: vec![Signal {
                name: "constant".into(),
                weight: 0.5,
                detail: String::new(),
            }],
        }
    }
}

umbra_policy_sdk::export_correlation_policy!(Constant);

/// A failover policy that refuses to run without configuration.
struct NeedsConfig(failover::Config);

impl FailoverPolicy for NeedsConfig {
    fn configure(pairs: &[(String, String)]) -> Result<Self, String> {
        if pairs.is_empty() {
            return Err("configure me".into());
        }
        failover::Config::from_pairs(pairs)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    fn evaluate(&self, input: &FailoverInput) -> FailoverDecision {
        failover::default_decision(&self.0, input)
    }
}

umbra_policy_sdk::export_failover_policy!(NeedsConfig);

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

thread_local! {
    static DRIFT: RefCell<Option<ScaledDrift>> = const { RefCell::new(None) };
    static CORRELATION: RefCell<Option<Constant>> = const { RefCell::new(None) };
    static FAILOVER: RefCell<Option<NeedsConfig>> = const { RefCell::new(None) };
}

fn factor(slot: &'static Slot<ScaledDrift>) -> f64 {
    with(slot, ScaledDrift::configure, |p| p.factor)
}

#[test]
fn configure_keeps_the_instance_and_a_refused_config_keeps_the_old_one() {
    configure(&DRIFT, &pairs(&[("factor", "0.5")]), ScaledDrift::configure).unwrap();
    assert_eq!(factor(&DRIFT), 0.5);
    let err = configure(
        &DRIFT,
        &pairs(&[("factor", "7"), ("z-high", "x")]),
        ScaledDrift::configure,
    )
    .unwrap_err();
    assert_eq!(
        err,
        "invalid configuration: `factor`: expected a number in [0, 1], got \"7\"; \
         invalid configuration: `z-high`: expected a number above 0, got \"x\""
    );
    assert_eq!(factor(&DRIFT), 0.5);
}

#[test]
fn evaluate_before_configure_uses_the_empty_configuration() {
    let score = with(&CORRELATION, Constant::configure, |p| {
        p.evaluate(&Observation::default()).score
    });
    assert_eq!(score, 0.5);
}

#[test]
#[should_panic(
    expected = "policy evaluated before `configure`, and its default configuration is refused: configure me"
)]
fn a_policy_refusing_the_empty_configuration_traps_if_never_configured() {
    with(&FAILOVER, NeedsConfig::configure, |p| {
        p.evaluate(&FailoverInput::default()).verdict
    });
}

#[test]
fn a_configured_failover_policy_decides() {
    configure(
        &FAILOVER,
        &pairs(&[
            ("hysteresis", "1"),
            ("corroborated-hysteresis", "1"),
            ("drift-hysteresis", "1"),
        ]),
        NeedsConfig::configure,
    )
    .unwrap();
    let mut input = FailoverInput::default();
    input.drift.score = 0.95;
    let verdict = with(&FAILOVER, NeedsConfig::configure, |p| {
        p.evaluate(&input).verdict
    });
    assert_eq!(verdict, Verdict::Go);
}

#[test]
fn policies_log_through_the_sdk() {
    take_native_logs();
    configure(
        &DRIFT,
        &pairs(&[("factor", "0.25")]),
        ScaledDrift::configure,
    )
    .unwrap();
    with(&DRIFT, ScaledDrift::configure, |p| {
        p.evaluate(&Observation::default())
    });
    assert_eq!(
        take_native_logs(),
        vec![(Level::Debug, "scaled by 0.25".to_owned())]
    );
}

#[test]
fn kind_modules_name_the_default_decisions() {
    // The aliases the scaffold relies on point at the logic crate's
    // default decisions.
    let o = Observation::default();
    assert_eq!(
        drift::default_decision(&drift::Config::default(), &o),
        umbra_policy_sdk::logic::drift(&Default::default(), &o)
    );
    assert_eq!(
        correlation::default_decision(&correlation::Config::default(), &o),
        umbra_policy_sdk::logic::correlation(&Default::default(), &o)
    );
    let i = FailoverInput::default();
    assert_eq!(
        failover::default_decision(&failover::Config::default(), &i),
        umbra_policy_sdk::logic::failover(&Default::default(), &i)
    );
}
