//! Retry budgets: a budget starts empty and only successes fund it, an outage drains it and
//! retries stop (the call returns its last error at once), a name shares one budget, every
//! retry costs its token (a retry that succeeds too), `max_concurrent` caps bursts.

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
    // A budget starts empty: before any success, a failure is not retried.
    assert_eq!(on_tiny().await, Err(Down));
    assert_eq!(TINY_CALLS.load(Ordering::SeqCst), 1);
    // Six successes deposit 6 × 0.5 = the 3 tokens of `capacity`.
    TINY_UP.store(1, Ordering::SeqCst);
    for _ in 0..6 {
        on_tiny().await.unwrap();
    }
    TINY_UP.store(0, Ordering::SeqCst);
    let before = TINY_CALLS.load(Ordering::SeqCst);
    // 3 tokens: the first call retries twice, the second once, then no more retries.
    for _ in 0..4 {
        assert_eq!(on_tiny().await, Err(Down));
    }
    assert_eq!(TINY_CALLS.load(Ordering::SeqCst) - before, 3 + 2 + 1 + 1);
    let start = Instant::now();
    assert_eq!(on_tiny().await, Err(Down));
    assert_eq!(start.elapsed(), Duration::ZERO, "refusal never waits");
    let refusals = rec.with("reason", "budget_exhausted");
    assert_eq!(refusals.len(), 5);
    assert_eq!(refusals[0].level, tracing::Level::ERROR);
    let op = stormguard::stats()
        .operation("budget.tiny")
        .cloned()
        .unwrap();
    assert_eq!(op.give_ups(GiveUpReason::Budget), 5);

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

#[retry(attempts = 5, base = "10ms", budget = "shared")]
async fn shared_ok() -> Result<(), Down> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn one_name_is_one_bucket_across_call_sites() {
    for _ in 0..32 {
        shared_ok().await.unwrap(); // 32 × 0.125: the 4 tokens of `capacity`
    }
    let _ = shared_a().await; // 1 + 4 retries: drains the 4 tokens
    let _ = shared_b().await; // no token left: 1 call
    assert_eq!(SHARED_CALLS.load(Ordering::SeqCst), 6);
}

static OWN_CALLS: AtomicU32 = AtomicU32::new(0);

static OWN_UP: AtomicU32 = AtomicU32::new(1);

#[retry(attempts = 3, base = "1ms", name = "budget.default")]
async fn default_budget() -> Result<(), Down> {
    OWN_CALLS.fetch_add(1, Ordering::SeqCst);
    if OWN_UP.load(Ordering::SeqCst) == 1 {
        Ok(())
    } else {
        Err(Down)
    }
}

#[tokio::test(start_paused = true)]
async fn the_default_budget_caps_a_total_outage_near_one_extra_call_per_ten() {
    // 10 s of successes, then 1000 logical calls against a dead downstream, one every 10 ms
    // (10 s of outage).
    for _ in 0..1000 {
        default_budget().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    OWN_UP.store(0, Ordering::SeqCst);
    let before = OWN_CALLS.load(Ordering::SeqCst);
    let logical = 1000;
    for _ in 0..logical {
        let _ = default_budget().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = OWN_CALLS.load(Ordering::SeqCst) - before;
    // What the last window's successes earned (a bounded burst: 500 × 0.125 = 62.5 tokens),
    // then min_per_sec (1) retry per second until those successes are older than the window.
    let amplification = calls as f64 / logical as f64;
    assert!(
        calls >= logical + 60,
        "the earned burst was retried: {calls}"
    );
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

#[retry(attempts = 3, base = "10ms", budget = "capped")]
async fn capped_ok() -> Result<(), Down> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_caps_the_retries_in_flight() {
    for _ in 0..400 {
        capped_ok().await.unwrap(); // 50 tokens
    }
    let tasks: Vec<_> = (0..20).map(|_| tokio::spawn(capped_retry())).collect();
    for t in tasks {
        let _ = t.await.unwrap();
    }
    assert!(MAX_IN_FLIGHT.load(Ordering::SeqCst) <= 2);
    assert!(MAX_IN_FLIGHT.load(Ordering::SeqCst) >= 1);
}

stormguard::budgets! {
    paid { capacity: 2, min_per_sec: 0 }
}

static PAID_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 2, base = "1ms", budget = "paid")]
async fn fails_once_then_succeeds() -> Result<(), Down> {
    if PAID_CALLS.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
        Err(Down)
    } else {
        Ok(())
    }
}

#[retry(budget = "paid")]
async fn paid_ok() -> Result<(), Down> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_succeeds_still_costs_its_token() {
    // Every retry is extra load on the downstream, whether it succeeds or not: at a 30%
    // failure rate, refunding the ones that succeed let nearly all retries through (1.36×
    // the load, docs/STORM.md). 16 successes fund the 2 tokens of `capacity`.
    for _ in 0..16 {
        paid_ok().await.unwrap();
    }
    // Each call fails once, retries and succeeds: it spends 1 token and deposits 0.125.
    assert_eq!(fails_once_then_succeeds().await, Ok(()));
    assert_eq!(fails_once_then_succeeds().await, Ok(()));
    assert_eq!(
        fails_once_then_succeeds().await,
        Err(Down),
        "0.25 token left"
    );
    let stats = stormguard::stats();
    let budget = stats.budgets.iter().find(|b| b.budget == "paid").unwrap();
    assert_eq!(budget.tokens, 0.25);
    assert_eq!((budget.granted, budget.refused), (2, 1));
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
