//! Retry budgets: an outage drains the bucket and retries stop (the call returns its last
//! error at once), successes refill it, a name shares one bucket, `max_concurrent` caps bursts.

mod common;

use common::{Down, Recorder};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use stormguard::{retry, GiveUpReason};
use tokio::time::Instant;

stormguard::budgets! {
    tiny { capacity: 3, ratio: 0.5, min_per_sec: 0 }
    shared { capacity: 4, min_per_sec: 0 }
    capped { capacity: 1000, max_concurrent: 2 }
}

static TINY_UP: AtomicU32 = AtomicU32::new(0);
static TINY_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", budget = "tiny", name = "budget.tiny")]
async fn on_tiny() -> Result<(), Down> {
    TINY_CALLS.fetch_add(1, Ordering::SeqCst);
    if TINY_UP.load(Ordering::SeqCst) == 1 {
        Ok(())
    } else {
        Err(Down)
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_returns_the_last_error_at_once_and_successes_refill_it() {
    let rec = Recorder::default();
    let _guard = rec.install();
    // 3 tokens: the first call retries twice, the second once, then no more retries.
    for _ in 0..4 {
        assert_eq!(on_tiny().await, Err(Down));
    }
    assert_eq!(TINY_CALLS.load(Ordering::SeqCst), 3 + 2 + 1 + 1);
    let start = Instant::now();
    assert_eq!(on_tiny().await, Err(Down));
    assert_eq!(start.elapsed(), Duration::ZERO, "refusal never waits");
    let refusals = rec.with("reason", "budget_exhausted");
    assert_eq!(refusals.len(), 4);
    assert_eq!(refusals[0].level, tracing::Level::ERROR);
    let op = stormguard::stats()
        .operation("budget.tiny")
        .cloned()
        .unwrap();
    assert_eq!(op.give_ups(GiveUpReason::Budget), 4);

    // Two successes deposit 2 × 0.5 = one retry.
    TINY_UP.store(1, Ordering::SeqCst);
    on_tiny().await.unwrap();
    on_tiny().await.unwrap();
    TINY_UP.store(0, Ordering::SeqCst);
    let before = TINY_CALLS.load(Ordering::SeqCst);
    assert_eq!(on_tiny().await, Err(Down));
    assert_eq!(TINY_CALLS.load(Ordering::SeqCst) - before, 2);
}

static SHARED_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 5, base = "10ms", budget = "shared")]
async fn shared_a() -> Result<(), Down> {
    SHARED_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Down)
}

#[retry(attempts = 5, base = "10ms", budget = "shared")]
async fn shared_b() -> Result<(), Down> {
    SHARED_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Down)
}

#[tokio::test(start_paused = true)]
async fn one_name_is_one_bucket_across_call_sites() {
    let _ = shared_a().await; // 1 + 4 retries: drains the 4 tokens
    let _ = shared_b().await; // no token left: 1 call
    assert_eq!(SHARED_CALLS.load(Ordering::SeqCst), 6);
}

static OWN_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "1ms", name = "budget.default")]
async fn default_budget() -> Result<(), Down> {
    OWN_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Down)
}

#[tokio::test(start_paused = true)]
async fn the_default_budget_caps_a_total_outage_near_one_extra_call_per_ten() {
    // 1000 logical calls against a dead downstream, one every 10 ms (10 s of outage).
    let logical = 1000;
    for _ in 0..logical {
        let _ = default_budget().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = OWN_CALLS.load(Ordering::SeqCst);
    // The first 100 tokens (a bounded burst), then about min_per_sec (1) retry per second.
    let amplification = calls as f64 / logical as f64;
    assert!(calls >= logical, "{calls}");
    assert!(amplification <= 1.15, "amplification {amplification}");
    // Naive retries would have cost 3.0×.
}

static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static MAX_IN_FLIGHT: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", budget = "capped")]
async fn capped_retry() -> Result<(), Down> {
    if stormguard::attempt() > 1 {
        let n = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        MAX_IN_FLIGHT.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
    Err(Down)
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_caps_the_retries_in_flight() {
    let tasks: Vec<_> = (0..20).map(|_| tokio::spawn(capped_retry())).collect();
    for t in tasks {
        let _ = t.await.unwrap();
    }
    assert!(MAX_IN_FLIGHT.load(Ordering::SeqCst) <= 2);
    assert!(MAX_IN_FLIGHT.load(Ordering::SeqCst) >= 1);
}

stormguard::budgets! {
    refunded { capacity: 2, min_per_sec: 0 }
}

static REFUND_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 2, base = "1ms", budget = "refunded")]
async fn fails_once_then_succeeds() -> Result<(), Down> {
    if REFUND_CALLS.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
        Err(Down)
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_succeeds_gives_its_token_back() {
    // Ten calls that each need one retry, through a bucket of two tokens: every retry succeeds,
    // so none of them costs the budget, and none is refused.
    for _ in 0..10 {
        assert_eq!(fails_once_then_succeeds().await, Ok(()));
    }
    assert_eq!(REFUND_CALLS.load(Ordering::SeqCst), 20);
    let stats = stormguard::stats();
    let budget = stats
        .budgets
        .iter()
        .find(|b| b.budget == "refunded")
        .unwrap();
    assert_eq!(budget.tokens, 2.0);
    assert_eq!(budget.refused, 0);
}

#[retry(
    attempts = 2,
    base = "1ms",
    max = "1ms",
    budget = "budget-name-nobody-declares"
)]
async fn with_a_budget_typo() -> Result<(), Down> {
    Ok(())
}

/// Issue 12 item 16: a typo in `budget = "…"` warns once, as an undeclared breaker does.
#[tokio::test(start_paused = true)]
async fn an_undeclared_budget_name_warns_once_and_is_listed() {
    let rec = Recorder::default();
    let _guard = rec.install();
    with_a_budget_typo().await.unwrap();
    with_a_budget_typo().await.unwrap();
    let warnings = rec.with("budget", "budget-name-nobody-declares");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].level, tracing::Level::WARN);
    assert!(stormguard::undeclared_budgets().contains(&"budget-name-nobody-declares"));
}
