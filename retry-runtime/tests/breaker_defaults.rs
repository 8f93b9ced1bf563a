//! The default breaker's two promises (README "Circuit breakers"), at a quiet, a moderate and
//! a busy call site: a total outage opens it within about ten failures, and a steady 20%
//! failure rate practically never does. Paused clock, seeded draws: deterministic.
//! Issue 12 item 7 (at 0.5 calls/s an outage never opened it; at 2 calls/s a steady 20% opened
//! it three times an hour).

use retry_runtime::{Breaker, BreakerConfig, BreakerState};
use std::time::Duration;
use tokio::time::advance;

async fn start() {
    retry_runtime::__private::origin();
    advance(Duration::from_secs(1)).await;
}

/// Calls at `per_sec` for `calls` calls, each failing with probability `failure_rate`;
/// returns how often the breaker opened and the failures it took to open the first time.
async fn drive(
    b: &'static Breaker,
    per_sec: f64,
    calls: u64,
    failure_rate: f64,
    seed: u64,
) -> (u64, Option<u64>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let gap = Duration::from_secs_f64(1.0 / per_sec);
    let mut failures = 0;
    let mut first_open = None;
    for _ in 0..calls {
        if let Ok(permit) = b.admit() {
            if rng.f64() < failure_rate {
                failures += 1;
                permit.failure();
            } else {
                permit.success();
            }
        }
        if first_open.is_none() && b.state() == BreakerState::Open {
            first_open = Some(failures);
        }
        advance(gap).await;
    }
    (b.counts().opened, first_open)
}

#[tokio::test(start_paused = true)]
async fn a_total_outage_opens_a_quiet_site_within_ten_failures() {
    static B: Breaker = Breaker::new("defaults-quiet-outage", BreakerConfig::DEFAULT);
    start().await;
    let (opened, at) = drive(&B, 0.5, 60, 1.0, 1).await;
    assert!(opened >= 1, "a total outage at 0.5 calls/s never opened it");
    assert_eq!(at, Some(10));
}

#[tokio::test(start_paused = true)]
async fn a_total_outage_opens_a_busy_site_within_a_fifth_of_a_second() {
    static B: Breaker = Breaker::new("defaults-busy-outage", BreakerConfig::DEFAULT);
    start().await;
    // A second of successes at 100 calls/s, then every call fails.
    drive(&B, 100.0, 100, 0.0, 2).await;
    let began = tokio::time::Instant::now();
    let (_, at) = drive(&B, 100.0, 100, 1.0, 3).await;
    assert_eq!(at, Some(10));
    assert!(B.counts().opened >= 1);
    assert!(began.elapsed() >= Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_steady_20_percent_failure_rate_never_opens_a_moderate_site_in_a_day() {
    static B: Breaker = Breaker::new("defaults-2-per-sec", BreakerConfig::DEFAULT);
    start().await;
    let (opened, _) = drive(&B, 2.0, 2 * 86_400, 0.2, 4).await;
    assert_eq!(opened, 0, "a steady 20% opened it at 2 calls/s");
}

#[tokio::test(start_paused = true)]
async fn a_steady_20_percent_failure_rate_never_opens_a_quiet_or_busy_site() {
    static QUIET: Breaker = Breaker::new("defaults-quiet-20", BreakerConfig::DEFAULT);
    static BUSY: Breaker = Breaker::new("defaults-busy-20", BreakerConfig::DEFAULT);
    start().await;
    assert_eq!(
        drive(&QUIET, 0.5, 43_200, 0.2, 5).await.0,
        0,
        "a day at 0.5 calls/s"
    );
    assert_eq!(
        drive(&BUSY, 100.0, 360_000, 0.2, 6).await.0,
        0,
        "an hour at 100 calls/s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_high_partial_failure_rate_opens_a_busy_site_through_its_rate() {
    // 60% failures with the run-of-failures rule off: the failure-rate rule alone opens it.
    static B: Breaker = Breaker::new(
        "defaults-busy-60",
        BreakerConfig::DEFAULT.with_consecutive_failures(None),
    );
    start().await;
    let (opened, _) = drive(&B, 100.0, 2_000, 0.6, 7).await;
    assert!(
        opened >= 1,
        "60% failures at 100 calls/s never opened it by rate"
    );
}
