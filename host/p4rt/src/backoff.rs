//! Capped, jittered exponential backoff between reconnection attempts.

use std::time::Duration;

use rand::Rng;

use crate::config::BackoffConfig;

/// The delays before successive reconnection attempts.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Self { config, attempt: 0 }
    }

    /// The delay before the next attempt, with randomness from `rng`.
    pub(crate) fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        let share = if jitter > 0.0 {
            1.0 - rng.random_range(0.0..=jitter)
        } else {
            1.0
        };
        ceiling.mul_f64(share)
    }

    /// The delay before the next attempt without jitter.
    fn ceiling(&self) -> Duration {
        let initial = self.config.initial.as_secs_f64();
        let exponent = i32::try_from(self.attempt).unwrap_or(i32::MAX);
        let grown = initial * self.config.multiplier.max(1.0).powi(exponent);
        let max = self.config.max.as_secs_f64();
        Duration::from_secs_f64(if grown.is_finite() {
            grown.min(max)
        } else {
            max
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn config(jitter: f64) -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            multiplier: 2.0,
            jitter,
        }
    }

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::new(config(0.0));
        let delays: Vec<_> = (0..8).map(|_| backoff.next_delay(&mut rng)).collect();
        let millis: Vec<_> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        // Many failures do not overflow.
        for _ in 0..10_000 {
            backoff.next_delay(&mut rng);
        }
        assert_eq!(backoff.next_delay(&mut rng), Duration::from_secs(2));
    }

    #[test]
    fn jitter_shortens_within_bounds_and_varies() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = Vec::new();
        for _ in 0..50 {
            let mut backoff = Backoff::new(config(0.5));
            for _ in 0..3 {
                backoff.next_delay(&mut rng);
            }
            // The fourth delay's ceiling is 800 ms.
            let delay = backoff.next_delay(&mut rng);
            assert!(delay <= Duration::from_millis(800), "{delay:?}");
            assert!(delay >= Duration::from_millis(400), "{delay:?}");
            seen.push(delay);
        }
        seen.sort();
        seen.dedup();
        assert!(seen.len() > 10, "jitter does not vary: {seen:?}");
    }
}
