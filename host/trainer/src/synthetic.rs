//! Small seeded synthetic traces for tests and smoke runs: a load that ramps
//! into a hard failure, and fault-free traces with benign spikes. Realistic
//! scenarios come from `umbra-scenario`; these only need to be learnable.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use umbra_model::{Device, Transform};

use crate::data::{FeatureSpec, Recording};
use crate::train::TrainConfig;

/// Tick of the synthetic traces, as in the simulated lab.
pub const TICK_MS: u64 = 500;

/// The features the synthetic traces record.
#[must_use]
pub fn features() -> Vec<FeatureSpec> {
    vec![
        FeatureSpec::new(Device::Primary, "cpu", Transform::Raw),
        FeatureSpec::new(Device::Primary, "drops", Transform::Log1p),
        FeatureSpec::new(Device::Primary, "health-latency-ms", Transform::Log1p),
        FeatureSpec::new(Device::Shadow, "cpu", Transform::Raw),
    ]
}

/// `n` traces of `ticks` ticks; even-numbered ones fail, with the fault
/// starting between 30 % and 60 % of the trace and the hard failure 20–30 s
/// later. About 2 % of samples are missing.
#[must_use]
pub fn recordings(n: usize, ticks: usize, seed: u64) -> Vec<Recording> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let failing = i % 2 == 0;
            let fault_start = rng.random_range(ticks * 3 / 10..ticks * 6 / 10);
            let ramp = rng.random_range(40..60usize);
            let onset = failing.then_some(fault_start + ramp);
            let base_cpu: f64 = rng.random_range(0.25..0.5);
            let spike_at = rng.random_range(0..ticks);
            let mut cpu = Vec::with_capacity(ticks);
            let mut drops = Vec::with_capacity(ticks);
            let mut latency = Vec::with_capacity(ticks);
            let mut shadow = Vec::with_capacity(ticks);
            for t in 0..ticks {
                // Progress through the fault, 0 before it and 1 at the failure.
                let f = match onset {
                    Some(onset) if t >= fault_start => {
                        ((t - fault_start) as f64 / (onset - fault_start) as f64).min(1.0)
                    }
                    _ => 0.0,
                };
                // A short benign spike every trace has, failing or not.
                let spike = if t.abs_diff(spike_at) < 3 { 0.25 } else { 0.0 };
                let sample = |rng: &mut StdRng, v: f64| (rng.random::<f64>() >= 0.02).then_some(v);
                let noise = rng.random_range(-0.05..0.05);
                cpu.push(sample(
                    &mut rng,
                    (base_cpu + spike + 0.5 * f + noise).clamp(0.0, 1.0),
                ));
                let d = rng.random_range(0.0..5.0) * (1.0 + 200.0 * f * f);
                drops.push(sample(&mut rng, d));
                let l = 2.0 + rng.random_range(0.0..1.0) + 400.0 * f.powi(3) + 20.0 * spike;
                latency.push(sample(&mut rng, l));
                let s = 0.2 + rng.random_range(-0.03..0.03);
                shadow.push(sample(&mut rng, s));
            }
            let mut r = Recording::new(
                format!("synthetic-{seed}-{i}"),
                TICK_MS,
                onset.map(|o| o as u64 * TICK_MS),
            );
            r.insert(Device::Primary, "cpu", cpu);
            r.insert(Device::Primary, "drops", drops);
            r.insert(Device::Primary, "health-latency-ms", latency);
            r.insert(Device::Shadow, "cpu", shadow);
            r
        })
        .collect()
}

/// A configuration that trains a tiny model on [`recordings`] in seconds.
#[must_use]
pub fn quick_config(seed: u64) -> TrainConfig {
    TrainConfig {
        window: 8,
        tick_ms: TICK_MS,
        horizon_ms: 10_000,
        stride: 2,
        positive_stride: 2,
        skip_early_fault: false,
        hidden: 8,
        epochs: 12,
        batch_size: 64,
        learning_rate: 0.02,
        patience: 4,
        val_fraction: 0.25,
        seed,
        threshold: 0.5,
        features: features(),
        baseline_ticks: 0,
        model_version: format!("synthetic-{seed}"),
        progress: false,
    }
}
