//! Named circuit breakers through `#[retry(breaker = "…")]`: fail fast when open, stop
//! retrying when the breaker opens mid-call, probe gently, never count permanent errors.

mod common;

use common::Recorder;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use stormguard::{retry, BreakerState, GuardError};
use tokio::time::sleep;

stormguard::breakers! {
    fail_fast { consecutive_failures: 3, open_for: "10s" }
    mid_call { consecutive_failures: 2, open_for: "10s" }
    permanent { consecutive_failures: 2, open_for: "10s" }
    probes { consecutive_failures: 1, open_for: "1s", half_open_probes: 2 }
    cancelled { consecutive_failures: 1, open_for: "1s" }
    timeouts { consecutive_failures: 2, open_for: "10s" }
    deadline_edge { consecutive_failures: 10, open_for: "10s" }
    refund_edge { consecutive_failures: 2, open_for: "10s" }
    held_error { consecutive_failures: 10, open_for: "10s" }
    stuck_probe { consecutive_failures: 1, open_for: "1s", probe_timeout: "10s" }
}

stormguard::budgets! {
    // Starts with min(capacity, min_per_sec × window) = 5 tokens: no success is needed.
    refund_edge { capacity: 5, min_per_sec: 1 }
}

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Unavailable,
    NotFound,
    Guard(GuardError),
}
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl From<GuardError> for ApiError {
    fn from(e: GuardError) -> Self {
        ApiError::Guard(e)
    }
}
fn is_transient(e: &ApiError) -> bool {
    !matches!(e, ApiError::NotFound)
}

static FAST_CALLS: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 1, breaker = "fail_fast", name = "breaker.fail_fast")]
async fn fail_fast_call() -> Result<(), ApiError> {
    FAST_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Unavailable)
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_without_calling_and_says_when_it_probes() {
    for _ in 0..3 {
        assert_eq!(fail_fast_call().await, Err(ApiError::Unavailable));
    }
    assert_eq!(stormguard::breaker("fail_fast").state(), BreakerState::Open);
    let err = fail_fast_call().await.unwrap_err();
    assert_eq!(
        FAST_CALLS.load(Ordering::SeqCst),
        3,
        "no call made while open"
    );
    let ApiError::Guard(g) = err else {
        panic!("{err:?}")
    };
    assert!(g.is_breaker_open());
    let GuardError::BreakerOpen {
        breaker, retry_in, ..
    } = g
    else {
        panic!()
    };
    assert_eq!(breaker, "fail_fast");
    assert!(retry_in <= Duration::from_secs(10) && retry_in > Duration::from_secs(9));
    assert!(g.to_string().contains("`fail_fast` is open"));
    let op = stormguard::stats()
        .operation("breaker.fail_fast")
        .cloned()
        .unwrap();
    assert_eq!(op.rejections, 1);
}

static MID_CALLS: AtomicU32 = AtomicU32::new(0);
#[retry(
    attempts = 5,
    base = "10ms",
    breaker = "mid_call",
    name = "breaker.mid_call"
)]
async fn mid_call() -> Result<(), ApiError> {
    MID_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Unavailable)
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_the_breaker_opens_mid_call_with_the_last_real_error() {
    let rec = Recorder::default();
    let _guard = rec.install();
    assert_eq!(mid_call().await, Err(ApiError::Unavailable));
    assert_eq!(MID_CALLS.load(Ordering::SeqCst), 2);
    let give_up = rec.with("op", "breaker.mid_call").pop().unwrap();
    assert_eq!(give_up.get("reason"), Some("breaker_open"));
    // Transitions are logged at info with the breaker's name.
    assert!(rec
        .with("breaker", "mid_call")
        .iter()
        .any(|e| e.level == tracing::Level::INFO));
}

static PERMANENT_CALLS: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 1, breaker = "permanent", when = is_transient)]
async fn not_found() -> Result<(), ApiError> {
    PERMANENT_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::NotFound)
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_mean_the_downstream_answered_and_never_trip_it() {
    for _ in 0..20 {
        assert_eq!(not_found().await, Err(ApiError::NotFound));
    }
    assert_eq!(
        stormguard::breaker("permanent").state(),
        BreakerState::Closed
    );
    assert_eq!(PERMANENT_CALLS.load(Ordering::SeqCst), 20);
}

static TIMEOUT_CALLS: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 1, breaker = "timeouts", timeout = "100ms", when = is_transient)]
async fn hangs() -> Result<(), ApiError> {
    TIMEOUT_CALLS.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timeouts_count_against_the_breaker() {
    let _ = hangs().await;
    let _ = hangs().await;
    assert_eq!(stormguard::breaker("timeouts").state(), BreakerState::Open);
}

static PROBE_GATE: AtomicBool = AtomicBool::new(false);
static PROBE_CALLS: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 1, breaker = "probes")]
async fn probed() -> Result<(), ApiError> {
    PROBE_CALLS.fetch_add(1, Ordering::SeqCst);
    if PROBE_GATE.load(Ordering::SeqCst) {
        sleep(Duration::from_millis(100)).await;
        Ok(())
    } else {
        Err(ApiError::Unavailable)
    }
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_probes_then_closes_when_they_succeed() {
    let _ = probed().await;
    assert_eq!(stormguard::breaker("probes").state(), BreakerState::Open);
    sleep(Duration::from_millis(1500)).await;
    PROBE_GATE.store(true, Ordering::SeqCst);
    let before = PROBE_CALLS.load(Ordering::SeqCst);
    let tasks: Vec<_> = (0..50).map(|_| tokio::spawn(probed())).collect();
    let mut refused = 0;
    for t in tasks {
        if let Err(ApiError::Guard(g)) = t.await.unwrap() {
            assert!(g.is_breaker_open());
            refused += 1;
        }
    }
    assert_eq!(
        PROBE_CALLS.load(Ordering::SeqCst) - before,
        2,
        "exactly two probes"
    );
    assert_eq!(refused, 48);
    assert_eq!(stormguard::breaker("probes").state(), BreakerState::Closed);
}

static CANCEL_GATE: AtomicBool = AtomicBool::new(false);
#[retry(attempts = 1, breaker = "cancelled")]
async fn cancellable() -> Result<(), ApiError> {
    if CANCEL_GATE.load(Ordering::SeqCst) {
        sleep(Duration::from_secs(60)).await;
        Ok(())
    } else {
        Err(ApiError::Unavailable)
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_gives_its_permit_back() {
    let _ = cancellable().await;
    sleep(Duration::from_millis(1500)).await;
    CANCEL_GATE.store(true, Ordering::SeqCst);
    // The probe is admitted, then its caller gives up on it.
    let r = tokio::time::timeout(Duration::from_millis(10), cancellable()).await;
    assert!(r.is_err());
    // The breaker is not stuck: the next caller gets to probe.
    CANCEL_GATE.store(false, Ordering::SeqCst);
    assert_eq!(
        cancellable().await,
        Err(ApiError::Unavailable),
        "admitted as a probe"
    );
    assert_eq!(stormguard::breaker("cancelled").state(), BreakerState::Open);
}

#[retry(attempts = 1, breaker = "never-declared-anywhere")]
async fn undeclared() -> Result<(), ApiError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_undeclared_name_warns_once_and_is_listed() {
    let rec = Recorder::default();
    let _guard = rec.install();
    undeclared().await.unwrap();
    undeclared().await.unwrap();
    assert!(stormguard::undeclared_breakers().contains(&"never-declared-anywhere"));
    let warnings = rec.with("breaker", "never-declared-anywhere");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].level, tracing::Level::WARN);
    assert!(!stormguard::undeclared_breakers().contains(&"fail_fast"));
}

static EDGE_CALLS: AtomicU32 = AtomicU32::new(0);
#[retry(
    attempts = 3,
    deadline = "100ms",
    base = "99500us",
    backoff = "fixed",
    jitter = "none",
    breaker = "deadline_edge"
)]
async fn at_the_deadline_edge() -> Result<(), ApiError> {
    EDGE_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Unavailable)
}

/// Regression: a sleep that ended (rounded up to the timer's millisecond) at the deadline used
/// to start an attempt with no time left, which took a breaker permit and was charged as a
/// failure, and the call returned `DeadlineExceeded` instead of the real error.
#[tokio::test(start_paused = true)]
async fn an_attempt_with_no_time_left_is_not_made_nor_charged_to_the_breaker() {
    assert_eq!(at_the_deadline_edge().await, Err(ApiError::Unavailable));
    assert_eq!(EDGE_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(stormguard::breaker("deadline_edge").counts().failures, 1);
}

#[retry(attempts = 2, base = "100ms", jitter = "none", breaker = "refund_edge")]
async fn retries_into_an_opening_breaker() -> Result<(), ApiError> {
    Err(ApiError::Unavailable)
}

#[retry(attempts = 1, breaker = "refund_edge")]
async fn trips_it_meanwhile() -> Result<(), ApiError> {
    Err(ApiError::Unavailable)
}

/// A retry granted by the budget but then refused by a breaker that opened during the sleep
/// is not made, so its token goes back to the budget.
#[tokio::test(start_paused = true)]
async fn a_retry_refused_after_its_sleep_gives_its_token_back() {
    let first = tokio::spawn(retries_into_an_opening_breaker());
    tokio::time::sleep(Duration::from_millis(10)).await; // the first call sleeps before its retry
    assert_eq!(trips_it_meanwhile().await, Err(ApiError::Unavailable));
    assert_eq!(
        stormguard::breaker("refund_edge").state(),
        BreakerState::Open
    );
    assert_eq!(
        first.await.unwrap(),
        Err(ApiError::Unavailable),
        "the last real error"
    );
    let budget = stormguard::stats();
    let budget = budget
        .budgets
        .iter()
        .find(|b| b.budget == "refund_edge")
        .unwrap();
    assert_eq!(budget.tokens, 5.0, "the refused retry's token was refunded");
}

/// An error that holds something the next attempt needs (a pooled connection, say): the
/// pool has one, and the error gives it back when dropped.
#[derive(Debug)]
struct HoldsConnection;
static CONNECTION_FREE: AtomicBool = AtomicBool::new(true);
impl Drop for HoldsConnection {
    fn drop(&mut self) {
        CONNECTION_FREE.store(true, Ordering::SeqCst);
    }
}
impl From<GuardError> for HoldsConnection {
    fn from(_: GuardError) -> Self {
        HoldsConnection
    }
}

static FOUND_FREE: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 3, base = "10ms", breaker = "held_error")]
async fn takes_the_connection() -> Result<(), HoldsConnection> {
    if CONNECTION_FREE.swap(false, Ordering::SeqCst) {
        FOUND_FREE.fetch_add(1, Ordering::SeqCst);
    }
    Err(HoldsConnection)
}

#[tokio::test(start_paused = true)]
async fn the_last_error_is_dropped_before_the_next_attempt_runs() {
    // The breaker keeps the last error across the sleep (to return it if it refuses the next
    // attempt), but not into the next attempt: each of the 3 attempts finds the connection.
    assert!(takes_the_connection().await.is_err());
    assert_eq!(FOUND_FREE.load(Ordering::SeqCst), 3);
}

static STUCK_DOWN: AtomicBool = AtomicBool::new(true);
static STUCK_HANG: AtomicBool = AtomicBool::new(false);
#[retry(attempts = 1, breaker = "stuck_probe")]
async fn stuck_probe_call() -> Result<(), ApiError> {
    if STUCK_HANG.swap(false, Ordering::SeqCst) {
        std::future::pending::<()>().await; // accepted, never answered, no `timeout`
    }
    if STUCK_DOWN.load(Ordering::SeqCst) {
        Err(ApiError::Unavailable)
    } else {
        Ok(())
    }
}

fn refused_for(r: Result<(), ApiError>) -> Duration {
    match r {
        Err(ApiError::Guard(GuardError::BreakerOpen { retry_in, .. })) => retry_in,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Issue 12 item 3: a half-open probe that hangs on a fn without `timeout` held its slot
/// forever (every later call failed fast "probing again in 0ns"). After `probe_timeout` the
/// breaker opens again, and the next probe finds the recovered downstream.
#[tokio::test(start_paused = true)]
async fn a_probe_that_hangs_is_given_up_after_the_probe_timeout() {
    assert!(stuck_probe_call().await.is_err());
    assert_eq!(
        stormguard::breaker("stuck_probe").state(),
        BreakerState::Open
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    STUCK_DOWN.store(false, Ordering::SeqCst); // the downstream recovers...
    STUCK_HANG.store(true, Ordering::SeqCst); // ...but the first probe's connection hangs
    let hung = tokio::spawn(stuck_probe_call());
    tokio::task::yield_now().await;
    assert_eq!(
        stormguard::breaker("stuck_probe").state(),
        BreakerState::HalfOpen
    );
    let waiting = refused_for(stuck_probe_call().await);
    assert!(
        waiting > Duration::ZERO && waiting <= Duration::from_secs(10),
        "{waiting:?}"
    );

    tokio::time::advance(Duration::from_secs(10)).await;
    let reopened = refused_for(stuck_probe_call().await);
    assert!(reopened > Duration::ZERO, "never 0ns");
    assert_eq!(
        stormguard::breaker("stuck_probe").state(),
        BreakerState::Open
    );

    tokio::time::advance(reopened).await;
    assert_eq!(stuck_probe_call().await, Ok(()), "the next probe closes it");
    assert_eq!(
        stormguard::breaker("stuck_probe").state(),
        BreakerState::Closed
    );
    hung.abort();
}
