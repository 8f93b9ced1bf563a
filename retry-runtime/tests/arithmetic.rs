//! Property tests of the backoff and jitter arithmetic: every delay within its bounds,
//! monotone before the cap, never above `max`, for any attempt count, factor and base.

use proptest::prelude::*;
use retry_runtime::__private::delay_before_retry;
use retry_runtime::__private::jittered;
use retry_runtime::{Backoff, Jitter, Policy};
use std::time::Duration;

fn policy() -> impl Strategy<Value = Policy> {
    let backoff = prop_oneof![
        (1.0f64..1e6).prop_map(|factor| Backoff::Exponential { factor }),
        Just(Backoff::Exponential { factor: 2.0 }),
        Just(Backoff::Fixed),
        Just(Backoff::Linear),
    ];
    let jitter = prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated)
    ];
    (0u64..10_000_000_000, 0u64..u64::MAX / 2, backoff, jitter).prop_map(
        |(base, extra, backoff, jitter)| {
            let base = Duration::from_nanos(base);
            let max = base.saturating_add(Duration::from_nanos(extra));
            Policy::DEFAULT
                .with_base(base)
                .with_max(max)
                .with_backoff(backoff)
                .with_jitter(jitter)
        },
    )
}

proptest! {
    #[test]
    fn backoff_is_monotone_and_capped(p in policy(), k in 1u32..u32::MAX) {
        let d = delay_before_retry(&p, k);
        prop_assert!(d <= p.max());
        prop_assert!(delay_before_retry(&p, k + 1) >= d);
        if k == 1 {
            prop_assert_eq!(d, p.base().min(p.max()));
        }
    }

    #[test]
    fn exponential_is_exact_before_the_cap(base_ms in 1u64..1000, k in 1u32..20) {
        let p = Policy::DEFAULT
            .with_base(Duration::from_millis(base_ms))
            .with_max(Duration::MAX);
        prop_assert_eq!(
            delay_before_retry(&p, k),
            Duration::from_millis(base_ms << (k - 1))
        );
    }

    #[test]
    fn every_jitter_mode_stays_in_its_range_and_under_max(
        p in policy(),
        k in 1u32..200,
        previous_ns in 0u64..u64::MAX,
        unit in 0.0f64..1.0,
    ) {
        let d = delay_before_retry(&p, k);
        let previous = Duration::from_nanos(previous_ns);
        let j = jittered(&p, d, previous, unit);
        prop_assert!(j <= p.max(), "{:?} above max {:?}", j, p.max());
        match p.jitter() {
            Jitter::None => prop_assert_eq!(j, d),
            Jitter::Full => prop_assert!(j <= d),
            Jitter::Equal => prop_assert!(j >= d / 2 && j <= d),
            Jitter::Decorrelated => prop_assert!(j >= p.base().min(p.max())),
        }
    }

    #[test]
    fn nonsense_factors_never_panic(factor in proptest::num::f64::ANY, k in 0u32..u32::MAX) {
        let p = Policy::DEFAULT.with_backoff(Backoff::Exponential { factor });
        let d = delay_before_retry(&p, k);
        prop_assert!(d <= p.max());
    }
}

/// Issue 12 item 18: the extreme policies a hand-built `Policy` allows neither panic nor
/// sleep past a year (the delay the logs report is the one slept).
#[test]
fn extreme_delays_are_capped_at_a_year_and_never_panic() {
    use retry_runtime::{Backoff, Jitter, Policy};
    use std::time::Duration;
    let year = Duration::from_secs(365 * 24 * 3600);
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let p = Policy::DEFAULT
            .with_base(Duration::MAX)
            .with_max(Duration::MAX)
            .with_backoff(Backoff::Exponential { factor: 1e300 })
            .with_jitter(jitter);
        for unit in [0.0, 0.5, 1.0, f64::NAN, f64::INFINITY] {
            let backoff = retry_runtime::__private::delay_before_retry(&p, 40);
            assert!(backoff <= year);
            let d = retry_runtime::__private::jittered(&p, Duration::MAX, Duration::MAX, unit);
            assert!(d <= year, "{jitter:?} {unit}: {d:?}");
        }
    }
}
