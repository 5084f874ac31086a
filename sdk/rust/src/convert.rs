//! Conversions between the generated WIT types ([`crate::bindings::types`])
//! and the plain types of `umbra-policy-logic`, both ways, by moving every
//! field (no copy of the sample vectors).

use umbra_policy_logic::types as logic;

use crate::bindings::types as wit;

fn into<A: Into<B>, B>(x: A) -> B {
    x.into()
}

fn vec<A: Into<B>, B>(x: Vec<A>) -> Vec<B> {
    x.into_iter().map(Into::into).collect()
}

fn opt<A: Into<B>, B>(x: Option<A>) -> Option<B> {
    x.map(Into::into)
}

/// `From` both ways for a record whose fields have the same names on both
/// sides; each field says how it converts (`into`, `vec` of records, `opt`
/// of a record).
macro_rules! record {
    ($name:ident { $($field:ident: $how:ident),* $(,)? }) => {
        impl From<wit::$name> for logic::$name {
            fn from(v: wit::$name) -> Self {
                Self { $($field: $how(v.$field)),* }
            }
        }

        impl From<logic::$name> for wit::$name {
            fn from(v: logic::$name) -> Self {
                Self { $($field: $how(v.$field)),* }
            }
        }
    };
}

record!(Baseline {
    mean: into,
    stddev: into,
    samples: into
});
/// The host builds windows through `DeviceWindow`'s checked constructors,
/// so an inconsistent one cannot arrive from it; if one ever did, the
/// policy traps (the host then answers with its native fallback and counts
/// the fault) rather than decide on misaligned data.
impl From<wit::DeviceWindow> for logic::DeviceWindow {
    fn from(w: wit::DeviceWindow) -> Self {
        // `vec` converts in place: both baselines have the same layout.
        let window =
            logic::DeviceWindow::from_columns(w.metrics, w.values, w.missing, vec(w.baselines));
        match window {
            Ok(window) => window,
            Err(error) => panic!("the host sent an inconsistent device window: {error}"),
        }
    }
}

impl From<logic::DeviceWindow> for wit::DeviceWindow {
    fn from(w: logic::DeviceWindow) -> Self {
        let (metrics, values, missing, baselines) = w.columns();
        Self {
            metrics: metrics.to_owned(),
            values: values.to_vec(),
            missing: missing.to_vec(),
            baselines: baselines.iter().cloned().map(Into::into).collect(),
        }
    }
}
record!(StatusClasses {
    informational: into,
    success: into,
    redirect: into,
    client_error: into,
    server_error: into,
});
record!(HealthCheck {
    name: into,
    ok: into,
    latency_ms: into,
    status_classes: into,
    db_connected: into,
});
record!(MirrorStats {
    packets: into,
    bytes: into,
    flows: into,
    tcp_resets: into
});
record!(Prediction {
    probability: into,
    horizon_ms: into,
    model_version: into
});
record!(Observation {
    now_ms: into,
    timestamps_ms: into,
    primary: into,
    shadow: into,
    health: vec,
    mirror: into,
    prediction: opt,
});
record!(DriftResult {
    score: into,
    rate_of_change: into,
    explanation: into
});
record!(Signal {
    name: into,
    weight: into,
    detail: into
});
record!(CorrelationResult {
    score: into,
    signals: vec
});
record!(FailoverState {
    consecutive_over: into,
    last_go_ms: into,
    recent_go_ms: into
});
record!(FailoverInput {
    now_ms: into,
    drift: into,
    correlation: into,
    prediction: opt,
    state: into,
});
record!(FailoverDecision {
    verdict: into,
    reason: into,
    state: into
});

impl From<wit::Verdict> for logic::Verdict {
    fn from(v: wit::Verdict) -> Self {
        match v {
            wit::Verdict::Go => Self::Go,
            wit::Verdict::Hold => Self::Hold,
        }
    }
}

impl From<logic::Verdict> for wit::Verdict {
    fn from(v: logic::Verdict) -> Self {
        match v {
            logic::Verdict::Go => Self::Go,
            logic::Verdict::Hold => Self::Hold,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[should_panic(expected = "inconsistent device window")]
    fn an_inconsistent_window_traps() {
        let _ = logic::DeviceWindow::from(wit::DeviceWindow {
            metrics: "cpu\nmemory".into(),
            values: vec![1.0; 3],
            missing: Vec::new(),
            baselines: Vec::new(),
        });
    }

    use super::*;

    fn observation() -> logic::Observation {
        let series = |name: &str, v: f64| logic::Series {
            name: name.into(),
            values: vec![v, v + 1.0, v + 2.0],
            missing: vec![1],
            baseline: logic::Baseline {
                mean: v,
                stddev: 0.5,
                samples: 42,
            },
        };
        logic::Observation {
            now_ms: 3,
            timestamps_ms: vec![1, 2, 3],
            primary: logic::DeviceWindow::from_series([series("cpu", 1.0), series("memory", 2.0)])
                .unwrap(),
            shadow: logic::DeviceWindow::from_series([series("cpu", 3.0)]).unwrap(),
            health: vec![logic::HealthCheck {
                name: "db".into(),
                ok: false,
                latency_ms: 12.5,
                status_classes: logic::StatusClasses {
                    informational: 1,
                    success: 2,
                    redirect: 3,
                    client_error: 4,
                    server_error: 5,
                },
                db_connected: Some(false),
            }],
            mirror: logic::MirrorStats {
                packets: 10,
                bytes: 20,
                flows: 30,
                tcp_resets: 40,
            },
            prediction: Some(logic::Prediction {
                probability: 0.25,
                horizon_ms: 30_000,
                model_version: "gru-7".into(),
            }),
        }
    }

    #[test]
    fn observation_round_trips_with_every_field() {
        let original = observation();
        let through: wit::Observation = original.clone().into();
        assert_eq!(through.primary.metrics, "cpu\nmemory");
        assert_eq!(through.primary.values, [1.0, 2.0, 3.0, 2.0, 3.0, 4.0]);
        assert_eq!(through.primary.missing, [1, 4]);
        assert_eq!(through.health[0].status_classes.server_error, 5);
        assert_eq!(logic::Observation::from(through), original);
    }

    #[test]
    fn failover_input_and_decision_round_trip() {
        let input = logic::FailoverInput {
            now_ms: -7,
            drift: logic::DriftResult {
                score: 0.5,
                rate_of_change: -0.25,
                explanation: "e".into(),
            },
            correlation: logic::CorrelationResult {
                score: 0.75,
                signals: vec![logic::Signal {
                    name: "s".into(),
                    weight: 0.75,
                    detail: "d".into(),
                }],
            },
            prediction: None,
            state: logic::FailoverState {
                consecutive_over: 2,
                last_go_ms: Some(5),
                recent_go_ms: vec![5, 6],
            },
        };
        let through: wit::FailoverInput = input.clone().into();
        assert_eq!(logic::FailoverInput::from(through), input);
        for verdict in [logic::Verdict::Go, logic::Verdict::Hold] {
            let decision = logic::FailoverDecision {
                verdict,
                reason: "r".into(),
                state: input.state.clone(),
            };
            let through: wit::FailoverDecision = decision.clone().into();
            assert_eq!(logic::FailoverDecision::from(through), decision);
        }
    }
}
