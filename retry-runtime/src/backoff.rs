//! Backoff arithmetic: the un-jittered delay before retry `k` for a policy.
//! Pure functions of the policy, saturating and panic-free for any attempt count or factor.

use crate::policy::{Backoff, Policy, MAX_DELAY};
use std::time::Duration;

/// The delay before retry `k` (`k = 1` is the first retry), before jitter, capped at `max`.
///
/// ```
/// use retry_runtime::{__private::delay_before_retry, Policy};
/// use std::time::Duration;
///
/// let p = Policy::DEFAULT.with_max(Duration::from_secs(1));
/// let ms = |k| delay_before_retry(&p, k).as_millis();
/// assert_eq!([ms(1), ms(2), ms(3), ms(4), ms(5)], [100, 200, 400, 800, 1000]);
/// ```
pub fn delay_before_retry(policy: &Policy, k: u32) -> Duration {
    let k = k.max(1);
    let raw = match policy.backoff() {
        Backoff::Fixed => policy.base(),
        Backoff::Linear => policy.base().saturating_mul(k),
        Backoff::Exponential { factor } => exponential(policy.base(), factor, k - 1, policy.max()),
    };
    raw.min(policy.max()).min(MAX_DELAY)
}

/// `base · factor^n`, computed without overflow and clamped to `cap`.
fn exponential(base: Duration, factor: f64, n: u32, cap: Duration) -> Duration {
    // A factor below 1 (or NaN) is refused at compile time; at run time it acts as 1.
    let factor = if factor.is_finite() && factor >= 1.0 {
        factor
    } else if factor == f64::INFINITY {
        return if n == 0 { base } else { cap };
    } else {
        1.0
    };
    if base.is_zero() || n == 0 || factor == 1.0 {
        return base;
    }
    // Exact integer arithmetic for integral factors keeps whole-millisecond delays exact.
    if factor.fract() == 0.0 && factor <= u32::MAX as f64 {
        // f ≥ 2 here, so the loop reaches the cap (at most ~2^64 ns) within 64 rounds.
        let f = factor as u32;
        let mut d = base;
        for _ in 0..n {
            d = d.saturating_mul(f);
            if d >= cap {
                return cap;
            }
        }
        return d;
    }
    let nanos = base.as_nanos() as f64 * factor.powi(n.min(i32::MAX as u32) as i32);
    if !nanos.is_finite() || nanos >= cap.as_nanos() as f64 {
        cap
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_doubles_from_base_until_the_cap() {
        let p = Policy::DEFAULT;
        let got: Vec<_> = (1..=7).map(|k| delay_before_retry(&p, k)).collect();
        assert_eq!(
            got,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(2000),
                ms(2000)
            ]
        );
    }

    #[test]
    fn fixed_and_linear_shapes() {
        let fixed = Policy::DEFAULT.with_backoff(Backoff::Fixed);
        let linear = Policy::DEFAULT.with_backoff(Backoff::Linear);
        assert_eq!(delay_before_retry(&fixed, 5), ms(100));
        assert_eq!(delay_before_retry(&linear, 3), ms(300));
        assert_eq!(delay_before_retry(&linear, u32::MAX), ms(2000));
    }

    #[test]
    fn huge_attempt_counts_and_factors_saturate_at_max() {
        let p = Policy::DEFAULT.with_backoff(Backoff::Exponential { factor: 1e300 });
        assert_eq!(delay_before_retry(&p, u32::MAX), ms(2000));
        let p = Policy::DEFAULT.with_backoff(Backoff::Exponential { factor: 1.5 });
        assert_eq!(delay_before_retry(&p, 2), ms(150));
        assert_eq!(delay_before_retry(&p, u32::MAX), ms(2000));
        // A hand-built policy without a cap sleeps at most a year (issue 12 item 18: tokio cut
        // longer sleeps to its far future while the log reported them uncut).
        let p = Policy::DEFAULT.with_max(Duration::MAX);
        assert_eq!(delay_before_retry(&p, u32::MAX), MAX_DELAY);
    }
}
