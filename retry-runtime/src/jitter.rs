//! Jitter: turns the backoff's delay into a random one, so that callers who failed together
//! spread their retries out. Every mode is capped at the policy's `max`.

use crate::policy::{Jitter, Policy, MAX_DELAY};
use std::time::Duration;

/// Applies `policy.jitter()` to `delay` (the backoff's delay for this retry).
///
/// `previous` is the delay actually slept before the previous retry (zero before the first);
/// only `Decorrelated` reads it. `unit` is a random number in `[0, 1)`.
///
/// ```
/// use retry_runtime::{__private::jittered, Jitter, Policy};
/// use std::time::Duration;
///
/// let p = Policy::DEFAULT.with_jitter(Jitter::Equal);
/// let d = jittered(&p, Duration::from_millis(400), Duration::ZERO, 0.5);
/// assert_eq!(d, Duration::from_millis(300)); // half fixed, half random
/// ```
pub fn jittered(policy: &Policy, delay: Duration, previous: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let max = policy.max().min(MAX_DELAY);
    let delay = delay.min(max);
    let d = match policy.jitter() {
        Jitter::None => delay,
        Jitter::Full => scaled(delay, unit),
        Jitter::Equal => {
            let half = delay / 2;
            half + scaled(delay - half, unit)
        }
        Jitter::Decorrelated => {
            let low = policy.base().min(max);
            let prev = if previous.is_zero() { low } else { previous };
            let high = prev.saturating_mul(3).min(max).max(low);
            low + scaled(high - low, unit)
        }
    };
    d.min(max)
}

/// `d · unit` for `unit` in `[0, 1]`, never above `d` (`Duration::mul_f64` panics where the
/// float product rounds above `Duration::MAX`).
fn scaled(d: Duration, unit: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * unit)
        .unwrap_or(d)
        .min(d)
}

/// A random number in `[0, 1)` from the thread's generator.
pub fn random_unit() -> f64 {
    fastrand::f64()
}

/// Seeds the current thread's jitter generator, for reproducible simulations and tests.
///
/// ```
/// retry_runtime::__private::seed_jitter(7);
/// let a = retry_runtime::__private::random_unit();
/// retry_runtime::__private::seed_jitter(7);
/// assert_eq!(a, retry_runtime::__private::random_unit());
/// ```
pub fn seed(seed: u64) {
    fastrand::seed(seed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn full_jitter_spans_zero_to_the_delay() {
        let p = Policy::DEFAULT;
        assert_eq!(jittered(&p, ms(400), ms(0), 0.0), ms(0));
        assert_eq!(jittered(&p, ms(400), ms(0), 0.25), ms(100));
    }

    #[test]
    fn decorrelated_grows_from_the_previous_delay_and_stays_under_max() {
        let p = Policy::DEFAULT.with_jitter(Jitter::Decorrelated);
        assert_eq!(jittered(&p, ms(100), ms(0), 0.0), ms(100));
        assert_eq!(jittered(&p, ms(100), ms(500), 0.5), ms(800));
        assert_eq!(jittered(&p, ms(100), ms(1900), 1.0), ms(2000));
    }

    #[test]
    fn garbage_random_numbers_stay_in_bounds() {
        let p = Policy::DEFAULT;
        assert_eq!(jittered(&p, ms(400), ms(0), f64::NAN), ms(0));
        assert_eq!(jittered(&p, ms(400), ms(0), 7.0), ms(400));
    }
}
