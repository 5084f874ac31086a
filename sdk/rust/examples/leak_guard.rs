//! `leak-guard`: the drift policy written in the tutorial of `sdk/README.md`
//! (which quotes this file; a test keeps the two equal). Umbra's default
//! drift decision, plus a floor on the score when a metric that leaks is
//! both far above its baseline and still growing — a slow leak scores low by
//! default, because the default weighs the rate of change most.

use umbra_policy_sdk::drift::{self, Config, Input, Output, Policy};
use umbra_policy_sdk::{ConfigReader, Level, log};

/// The default drift decision with a leak floor.
pub struct ThisPolicy {
    config: Config,
    /// Metric watched for leaks (`leak-metric`, default `memory`).
    leak_metric: String,
    /// z-score above which the growing metric counts as leaking (`leak-z`, default 4).
    leak_z: f64,
    /// Score a leak gets at least (`leak-score`, default 0.8).
    leak_score: f64,
}

impl Policy for ThisPolicy {
    fn configure(pairs: &[(String, String)]) -> Result<Self, String> {
        // Our keys are read here; every other key goes to the default
        // decision. Both report every problem, not just the first.
        let ours = ["leak-metric", "leak-z", "leak-score"];
        let (own, rest): (Vec<_>, Vec<_>) = pairs
            .iter()
            .cloned()
            .partition(|(k, _)| ours.contains(&k.as_str()));
        let mut reader = ConfigReader::new(&own);
        let leak_metric = reader.parsed(
            "leak-metric",
            "memory".to_owned(),
            |s| Some(s.to_owned()),
            |s| !s.is_empty(),
            "a metric name",
        );
        let leak_z = reader.f64("leak-z", 4.0, |z| z > 0.0, "above 0");
        let leak_score = reader.f64("leak-score", 0.8, |s| (0.0..=1.0).contains(&s), "in [0, 1]");
        match (reader.finish(), Config::from_pairs(&rest)) {
            (Ok(()), Ok(config)) => Ok(Self {
                config,
                leak_metric,
                leak_z,
                leak_score,
            }),
            (own, default) => {
                let problems: Vec<String> = [own.err(), default.err()]
                    .into_iter()
                    .flatten()
                    .map(|e| e.to_string())
                    .collect();
                Err(problems.join("; "))
            }
        }
    }

    fn evaluate(&self, input: &Input) -> Output {
        let mut result = drift::default_decision(&self.config, input);
        let analysis = drift::analyse(&self.config, input);
        let leaking = analysis
            .metrics
            .iter()
            .find(|m| m.metric == self.leak_metric && m.level >= self.leak_z && m.rate > 0.0);
        if let Some(m) = leaking
            && result.score < self.leak_score
        {
            log(
                Level::Info,
                &format!("{} leaking at z {:+.2}", m.metric, m.level),
            );
            result.score = self.leak_score;
            result.rate_of_change = m.rate;
            result.explanation = format!(
                "{} leaks: z {:+.2} ≥ {} and growing {:+.3}/s; {}",
                m.metric, m.level, self.leak_z, m.rate, result.explanation
            );
        }
        result
    }
}

umbra_policy_sdk::export_drift_policy!(ThisPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_policy_sdk::{Case, CaseInput};

    fn observation(path: &str) -> Input {
        let text = std::fs::read_to_string(path).expect("case file");
        let case: Case = serde_json::from_str(&text).expect("valid case");
        match case.input {
            CaseInput::Observation(o) => o,
            CaseInput::Failover(_) => panic!("{path} is a failover case"),
        }
    }

    #[test]
    fn a_leak_scores_at_least_the_floor() {
        let policy = ThisPolicy::configure(&[]).unwrap();
        let result = policy.evaluate(&observation("../../policies/cases/memory-leak.json"));
        assert_eq!(result.score, 0.8);
        assert!(
            result.explanation.starts_with("memory leaks: z +4.91 ≥ 4"),
            "{}",
            result.explanation
        );
    }

    #[test]
    fn other_cases_keep_the_default_decision() {
        let policy = ThisPolicy::configure(&[]).unwrap();
        for case in ["steady-state", "benign-spike", "cpu-ramp-with-5xx"] {
            let input = observation(&format!("../../policies/cases/{case}.json"));
            let default = drift::default_decision(&Config::default(), &input);
            assert_eq!(policy.evaluate(&input), default, "{case}");
        }
    }

    #[test]
    fn every_bad_key_is_reported() {
        let pairs = [("leak-z", "-1"), ("z-high", "0"), ("leak-scor", "1")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let Err(message) = ThisPolicy::configure(&pairs) else {
            panic!("accepted a bad configuration");
        };
        assert!(
            message.contains("`leak-z`: expected a number above 0"),
            "{message}"
        );
        assert!(
            message.contains("`z-high`: expected a number above 0"),
            "{message}"
        );
        assert!(message.contains("`leak-scor`: unknown key"), "{message}");
    }
}
