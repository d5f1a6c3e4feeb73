//! How long the worker waits before it tries the server again after a
//! transport failure (registering, polling, reporting). Pure arithmetic; the
//! random part of the jitter is passed in so the schedule can be tested.

use std::time::Duration;

/// Capped exponential backoff: the `n`-th consecutive failure waits
/// `initial * multiplier^(n-1)`, at most `max`, shortened by up to `jitter`
/// (a fraction) so that many workers that lost the same server do not come
/// back in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Default 200 ms.
    pub initial: Duration,
    /// Default 10 s.
    pub max: Duration,
    /// Default 2.0.
    pub multiplier: f64,
    /// Default 0.25: each wait is 75-100% of the schedule.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures (1 = the first),
    /// before jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(64) as i32;
        let ms = self.initial.as_millis() as f64 * self.multiplier.max(1.0).powi(exponent);
        let capped = ms.min(self.max.as_millis() as f64).max(0.0);
        Duration::from_millis(capped as u64)
    }

    /// [`Backoff::delay`] shortened by `jitter * unit`, with `unit` in [0, 1].
    pub fn jittered(&self, failures: u32, unit: f64) -> Duration {
        let factor = 1.0 - self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        self.delay(failures).mul_f64(factor)
    }

    /// [`Backoff::jittered`] with a random `unit`.
    pub fn next_delay(&self, failures: u32) -> Duration {
        self.jittered(failures, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_initial_and_caps_at_max() {
        let backoff = Backoff::default();
        let schedule: Vec<u128> = (1..=9).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(
            schedule,
            vec![200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000]
        );
        // Huge failure counts neither overflow nor exceed the cap.
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(10));
        // 0 failures is treated like the first.
        assert_eq!(backoff.delay(0), Duration::from_millis(200));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let backoff = Backoff::default();
        assert_eq!(backoff.jittered(3, 0.0), Duration::from_millis(800));
        assert_eq!(backoff.jittered(3, 1.0), Duration::from_millis(600));
        for _ in 0..100 {
            let d = backoff.next_delay(20);
            assert!(
                d >= Duration::from_millis(7_500) && d <= Duration::from_secs(10),
                "{d:?}"
            );
        }
    }

    #[test]
    fn a_multiplier_below_one_never_shrinks_the_wait() {
        let backoff = Backoff {
            multiplier: 0.5,
            ..Backoff::default()
        };
        assert_eq!(backoff.delay(5), Duration::from_millis(200));
    }
}
