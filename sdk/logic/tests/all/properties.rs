//! Properties of the default decisions and of the helpers that must hold on
//! any input, including NaN, infinities, ragged series and hostile states:
//! scores in [0, 1] and never NaN, decisions deterministic, the failover
//! cooldown and cap never violated over any sequence of ticks.

use proptest::prelude::*;
use umbra_policy_logic::failover::HOUR_MS;
use umbra_policy_logic::stats;
use umbra_policy_logic::{
    Baseline, CorrelationConfig, CorrelationResult, DeviceWindow, DriftConfig, DriftResult,
    FailoverConfig, FailoverInput, FailoverState, HealthCheck, MirrorStats, Observation,
    Prediction, Series, Signal, StatusClasses, Verdict, correlation, drift, failover,
};

/// Mostly ordinary numbers, sometimes anything at all (NaN, ±∞, huge).
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e6..1e6f64,
        1 => prop::num::f64::ANY,
        1 => Just(0.0),
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    -1e6..1e6f64
}

const NAMES: &[&str] = &[
    "cpu",
    "memory",
    "rx-pps",
    "tx-pps",
    "http-5xx-rate",
    "health-latency-ms",
];

fn baseline() -> impl Strategy<Value = Baseline> {
    (
        number(),
        prop_oneof![4 => 0.0..100.0f64, 1 => number()],
        0u32..40,
    )
        .prop_map(|(mean, stddev, samples)| Baseline {
            mean,
            stddev,
            samples,
        })
}

fn series(n: usize, value: BoxedStrategy<f64>) -> impl Strategy<Value = Series> {
    (
        prop::sample::select(NAMES),
        // Usually one value per timestamp; sometimes ragged.
        prop_oneof![4 => Just(n), 1 => 0..n + 3],
        prop::collection::vec(value, n + 3),
        prop::collection::vec(0u32..80, 0..6),
        baseline(),
    )
        .prop_map(|(name, len, mut values, missing, baseline)| {
            values.truncate(len);
            Series {
                name: name.to_string(),
                values,
                missing,
                baseline,
            }
        })
}

fn health_check() -> impl Strategy<Value = HealthCheck> {
    (
        prop::sample::select(&["web", "db"][..]),
        any::<bool>(),
        number(),
        prop::array::uniform5(any::<u32>()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(name, ok, latency_ms, c, db_connected)| HealthCheck {
            name: name.into(),
            ok,
            latency_ms,
            status_classes: StatusClasses {
                informational: c[0],
                success: c[1],
                redirect: c[2],
                client_error: c[3],
                server_error: c[4],
            },
            db_connected,
        })
}

/// A device window of `series`, all cut to the shortest (a window's
/// metrics share their sample count; it may still differ from the
/// observation's timestamps).
fn window(mut series: Vec<Series>) -> DeviceWindow {
    let len = series.iter().map(|s| s.values.len()).min().unwrap_or(0);
    for s in &mut series {
        s.values.truncate(len);
    }
    DeviceWindow::from_series(series).expect("names are valid")
}

fn prediction(p: BoxedStrategy<f64>) -> impl Strategy<Value = Prediction> {
    (p, any::<u64>()).prop_map(|(probability, horizon_ms)| Prediction {
        probability,
        horizon_ms,
        model_version: "m".into(),
    })
}

fn observation_with(value: BoxedStrategy<f64>) -> impl Strategy<Value = Observation> {
    (1usize..70).prop_flat_map(move |n| {
        (
            -2_000_000_000_000i64..2_000_000_000_000,
            prop::collection::vec(0i64..5000, n),
            prop::collection::vec(series(n, value.clone()), 0..5),
            prop::collection::vec(series(n, value.clone()), 0..5),
            prop::collection::vec(health_check(), 0..3),
            (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>()),
            prop::option::of(prediction(value.clone())),
        )
            .prop_map(|(start, steps, primary, shadow, health, m, prediction)| {
                let timestamps_ms: Vec<i64> = steps
                    .iter()
                    .scan(start, |t, step| {
                        *t += step;
                        Some(*t)
                    })
                    .collect();
                Observation {
                    now_ms: timestamps_ms.last().copied().unwrap_or(start),
                    timestamps_ms,
                    primary: window(primary),
                    shadow: window(shadow),
                    health,
                    mirror: MirrorStats {
                        packets: m.0,
                        bytes: m.1,
                        flows: m.2,
                        tcp_resets: m.3,
                    },
                    prediction,
                }
            })
    })
}

fn observation() -> impl Strategy<Value = Observation> {
    observation_with(number().boxed())
}

/// Valid drift configurations, far from the defaults.
fn drift_config() -> impl Strategy<Value = DriftConfig> {
    (
        3usize..80,
        0.001..2.0f64,
        0.0..1.0f64,
        0.0..5.0f64,
        0.1..10.0f64,
        0.0..1.0f64,
        0.001..1.0f64,
    )
        .prop_map(
            |(rate_window, rate_high, slack, z_low, width, rate_weight, alpha)| {
                let mut config = DriftConfig {
                    rate_window,
                    rate_high,
                    cusum_slack: slack,
                    z_low,
                    z_high: z_low + width,
                    rate_weight,
                    ..DriftConfig::default()
                };
                config.scoring.ewma_alpha = alpha;
                config.scoring.min_baseline_samples = 0;
                config
            },
        )
}

fn unit(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

fn failover_state() -> impl Strategy<Value = FailoverState> {
    (
        prop_oneof![3 => 0u32..5, 1 => any::<u32>()],
        prop::option::of(prop_oneof![3 => -HOUR_MS..HOUR_MS, 1 => any::<i64>()]),
        prop::collection::vec(
            prop_oneof![3 => -2 * HOUR_MS..HOUR_MS, 1 => any::<i64>()],
            0..6,
        ),
    )
        .prop_map(
            |(consecutive_over, last_go_ms, recent_go_ms)| FailoverState {
                consecutive_over,
                last_go_ms,
                recent_go_ms,
            },
        )
}

fn failover_input() -> impl Strategy<Value = FailoverInput> {
    (
        prop_oneof![3 => -HOUR_MS..HOUR_MS, 1 => any::<i64>()],
        number(),
        number(),
        prop::option::of(prediction(
            prop_oneof![3 => 0.0..1.0f64, 1 => number()].boxed(),
        )),
        failover_state(),
    )
        .prop_map(|(now_ms, d, c, prediction, state)| FailoverInput {
            now_ms,
            drift: DriftResult {
                score: d,
                rate_of_change: 0.0,
                explanation: String::new(),
            },
            correlation: CorrelationResult {
                score: c,
                signals: vec![Signal {
                    name: "s".into(),
                    weight: c,
                    detail: String::new(),
                }],
            },
            prediction,
            state,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn drift_is_bounded_and_deterministic(o in observation()) {
        let config = DriftConfig::default();
        let result = drift(&config, &o);
        prop_assert!(unit(result.score), "{result:?}");
        prop_assert!(result.rate_of_change.is_finite(), "{result:?}");
        prop_assert_eq!(drift(&config, &o.clone()), result);
    }

    #[test]
    fn drift_decides_as_the_full_analysis(o in observation(), config in drift_config()) {
        // `drift` looks at the shadow only where it can matter; the answer
        // must be the one of the full, exact analysis.
        let full = umbra_policy_logic::drift::explain(&umbra_policy_logic::drift::analyse(&config, &o));
        let fast = drift(&config, &o);
        prop_assert_eq!(fast.score.to_bits(), full.score.to_bits());
        prop_assert_eq!(fast.rate_of_change.to_bits(), full.rate_of_change.to_bits());
        prop_assert_eq!(fast.explanation, full.explanation);
    }

    #[test]
    fn drift_is_bounded_under_any_valid_config(o in observation(), config in drift_config()) {
        let result = drift(&config, &o);
        prop_assert!(unit(result.score), "{result:?}");
        prop_assert!(result.rate_of_change.is_finite(), "{result:?}");
    }

    #[test]
    fn correlation_is_bounded_sorted_and_deterministic(o in observation()) {
        let config = CorrelationConfig::default();
        let result = correlation(&config, &o);
        prop_assert!(unit(result.score), "{result:?}");
        for s in &result.signals {
            prop_assert!(unit(s.weight) && s.weight >= config.min_weight, "{s:?}");
        }
        for pair in result.signals.windows(2) {
            prop_assert!(pair[0].weight >= pair[1].weight);
        }
        // Noisy-OR: never below its strongest signal.
        if let Some(top) = result.signals.first() {
            prop_assert!(result.score >= top.weight - 1e-12);
        }
        prop_assert_eq!(correlation(&config, &o.clone()), result);
    }

    #[test]
    fn failover_is_bounded_and_deterministic(i in failover_input()) {
        let config = FailoverConfig::default();
        let d = failover(&config, &i);
        prop_assert_eq!(failover(&config, &i.clone()), d.clone());
        prop_assert!(d.state.recent_go_ms.len() <= config.max_per_hour as usize);
        prop_assert!(d.state.recent_go_ms.iter().all(|&t| t > i.now_ms.saturating_sub(HOUR_MS)));
        if d.verdict == Verdict::Go {
            let sane = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
            let p = i.prediction.as_ref().map_or(0.0, |p| sane(p.probability));
            prop_assert!(
                sane(i.drift.score) >= config.drift_threshold || p >= config.probability_threshold
            );
            prop_assert!(i.state.consecutive_over.saturating_add(1) >= config.corroborated_hysteresis);
            if let Some(last) = i.state.last_go_ms {
                prop_assert!(i.now_ms.saturating_sub(last) >= config.cooldown_ms);
            }
            prop_assert_eq!(d.state.consecutive_over, 0);
            prop_assert_eq!(d.state.last_go_ms, Some(i.now_ms));
            prop_assert!(d.reason.starts_with("go: "));
        } else {
            prop_assert!(d.reason.starts_with("hold: "));
        }
    }

    #[test]
    fn failover_never_breaks_cooldown_or_cap_over_a_sequence(
        ticks in prop::collection::vec((1i64..600_000, 0.0..1.0f64, prop::option::of(0.0..1.0f64), 0.0..1.0f64), 1..200),
        hysteresis in 1u32..4,
        cooldown_ms in 0i64..900_000,
        max_per_hour in 1u32..4,
    ) {
        let config = FailoverConfig {
            hysteresis,
            corroborated_hysteresis: hysteresis.min(2),
            cooldown_ms,
            max_per_hour,
            ..FailoverConfig::default()
        };
        let mut now = 1_700_000_000_000i64;
        let mut state = FailoverState::default();
        let mut gos = Vec::new();
        let mut run = 0u32;
        for (dt, d, p, c) in ticks {
            now += dt;
            let decision = failover(&config, &FailoverInput {
                now_ms: now,
                drift: DriftResult { score: d, rate_of_change: 0.0, explanation: String::new() },
                correlation: CorrelationResult { score: c, signals: Vec::new() },
                prediction: p.map(|probability| Prediction { probability, horizon_ms: 1, model_version: String::new() }),
                state,
            });
            let over = d >= config.drift_threshold || p.is_some_and(|p| p >= config.probability_threshold);
            run = if over { run + 1 } else { 0 };
            if decision.verdict == Verdict::Go {
                prop_assert!(over);
                prop_assert!(run >= config.corroborated_hysteresis);
                gos.push(now);
                run = 0;
            }
            state = decision.state;
        }
        for pair in gos.windows(2) {
            prop_assert!(pair[1] - pair[0] >= cooldown_ms, "{gos:?}");
        }
        for (i, &t) in gos.iter().enumerate() {
            let in_hour = gos[..=i].iter().filter(|&&g| g > t - HOUR_MS).count();
            prop_assert!(in_hour <= max_per_hour as usize, "{gos:?}");
        }
    }

    #[test]
    fn observations_round_trip_through_json(mut o in observation_with(finite().boxed())) {
        // JSON has no NaN or infinities: the case format carries finite
        // numbers only.
        let fix = |x: &mut f64| if !x.is_finite() { *x = 0.0 };
        for w in [&mut o.primary, &mut o.shadow] {
            let mut series = w.to_series();
            for s in &mut series {
                fix(&mut s.baseline.mean);
                fix(&mut s.baseline.stddev);
            }
            *w = DeviceWindow::from_series(series).unwrap();
        }
        for h in &mut o.health {
            fix(&mut h.latency_ms);
        }
        let text = serde_json::to_string(&o).unwrap();
        let back: Observation = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, o);
    }

    #[test]
    fn helpers_never_return_non_finite(
        xs in prop::collection::vec(number(), 0..50),
        ys in prop::collection::vec(number(), 0..50),
        q in 0.0..=1.0f64,
        alpha in 0.001..=1.0f64,
        window in 0usize..10,
    ) {
        let points: Vec<(f64, f64)> = xs.iter().copied().zip(ys.iter().copied()).collect();
        for x in [
            stats::mean(&xs), stats::stddev(&xs), stats::ewma(&xs, alpha),
            stats::slope(&points), stats::quantile(&xs, q),
        ].into_iter().flatten() {
            prop_assert!(x.is_finite());
        }
        if let Some(r) = stats::pearson(&xs, &ys) {
            prop_assert!((-1.0..=1.0).contains(&r));
        }
        for r in stats::rolling_pearson(&xs, &ys, window).into_iter().flatten() {
            prop_assert!((-1.0..=1.0).contains(&r));
        }
        let c = stats::cusum(&points, alpha);
        prop_assert!(c.rise.is_finite() && c.rise >= 0.0 && c.fall.is_finite() && c.fall >= 0.0);
        prop_assert!(unit(stats::noisy_or(xs.iter().copied())));
        prop_assert!(unit(stats::ramp(q, -1.0, 2.0)));
    }

    #[test]
    fn quantiles_are_monotone_and_within_range(
        xs in prop::collection::vec(finite(), 1..50),
        a in 0.0..=1.0f64,
        b in 0.0..=1.0f64,
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let ql = stats::quantile(&xs, lo).unwrap();
        let qh = stats::quantile(&xs, hi).unwrap();
        prop_assert!(ql <= qh);
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(min <= ql && qh <= max);
        let e = stats::ewma(&xs, a.max(0.01)).unwrap();
        prop_assert!(min - 1e-6 <= e && e <= max + 1e-6);
    }
}
