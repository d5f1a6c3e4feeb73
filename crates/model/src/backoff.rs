//! Retry policy arithmetic: whether another attempt is allowed and how long to
//! wait before it.

use std::time::Duration;

use uuid::Uuid;

use crate::template::RetryPolicy;

impl RetryPolicy {
    /// Whether a step that just failed its `attempt`-th try may run again.
    pub fn has_attempts_left(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// Delay before the retry that follows failed attempt number `attempt`
    /// (1-based): `initial * multiplier^(attempt-1)`, capped at `max`, then
    /// spread by ±`jitter`.
    ///
    /// The jitter is derived from `seed` (the step id) and the attempt rather
    /// than a random source, so the delay is reproducible in tests and still
    /// spreads different steps apart.
    pub fn delay_after(&self, attempt: u32, seed: Uuid) -> Duration {
        let b = &self.backoff;
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base_ms = b.initial.as_millis() as f64 * b.multiplier.powi(exponent);
        let capped = base_ms.min(b.max.as_millis() as f64);
        let unit = unit_interval(seed, attempt); // in [0, 1)
        let factor = 1.0 + b.jitter * (2.0 * unit - 1.0);
        let ms = (capped * factor)
            .max(0.0)
            .min(b.max.as_millis() as f64 * (1.0 + b.jitter));
        Duration::from_millis(ms.round() as u64)
    }
}

/// A deterministic pseudo-random number in [0, 1) from a step id and attempt.
fn unit_interval(seed: Uuid, attempt: u32) -> f64 {
    // SplitMix64 over the id's bits and the attempt.
    let (hi, lo) = seed.as_u64_pair();
    let mut z = hi ^ lo.rotate_left(17) ^ (u64::from(attempt)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;
    use crate::template::Backoff;

    fn policy(initial_ms: u64, max_ms: u64, multiplier: f64, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            backoff: Backoff {
                initial: HumanDuration(Duration::from_millis(initial_ms)),
                max: HumanDuration(Duration::from_millis(max_ms)),
                multiplier,
                jitter,
            },
        }
    }

    #[test]
    fn grows_exponentially_and_caps_without_jitter() {
        let p = policy(100, 1_000, 2.0, 0.0);
        let id = Uuid::nil();
        let delays: Vec<u128> = (1..=6).map(|a| p.delay_after(a, id).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn jitter_stays_within_bounds_and_differs_between_steps() {
        let p = policy(1_000, 60_000, 1.0, 0.2);
        let mut distinct = std::collections::BTreeSet::new();
        for i in 0..200u128 {
            let d = p.delay_after(1, Uuid::from_u128(i * 7919)).as_millis();
            assert!((800..=1_200).contains(&d), "delay {d} outside ±20%");
            distinct.insert(d);
        }
        assert!(distinct.len() > 50, "jitter should spread delays");
    }

    #[test]
    fn attempts_left_counts_the_first_attempt() {
        let mut p = policy(1, 1, 1.0, 0.0);
        p.max_attempts = 1;
        assert!(!p.has_attempts_left(1));
        p.max_attempts = 3;
        assert!(p.has_attempts_left(2));
        assert!(!p.has_attempts_left(3));
    }
}
