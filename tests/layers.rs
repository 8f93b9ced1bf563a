//! Layered retries do not multiply: when a nested annotated call retried and gave up, the
//! layers above it return that failure instead of retrying it again.
//!
//! Budgets start empty (only successes fund retries), so each test first funds its own
//! budget with successful calls; the counts asserted are the layering's, not the budget's.

mod common;

use common::Down;
use std::sync::atomic::{AtomicU32, Ordering};
use stormguard::retry;

stormguard::budgets! {
    layers_three { min_per_sec: 0 }
    layers_outer { min_per_sec: 0 }
    layers_flaky { min_per_sec: 0 }
}

/// 400 successes: 50 tokens in `budget`.
macro_rules! fund {
    ($budget:tt) => {{
        #[retry(budget = $budget)]
        async fn up() -> Result<(), Down> {
            Ok(())
        }
        for _ in 0..400 {
            up().await.unwrap();
        }
    }};
}

static BOTTOM_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(
    attempts = 3,
    base = "10ms",
    name = "layers.bottom",
    budget = "layers_three"
)]
async fn bottom() -> Result<(), Down> {
    BOTTOM_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Down)
}

#[retry(
    attempts = 3,
    base = "10ms",
    name = "layers.middle",
    budget = "layers_three"
)]
async fn middle() -> Result<(), Down> {
    bottom().await
}

#[retry(
    attempts = 3,
    base = "10ms",
    name = "layers.top",
    budget = "layers_three"
)]
async fn top() -> Result<(), Down> {
    middle().await
}

#[tokio::test(start_paused = true)]
async fn three_layers_of_three_attempts_cost_the_bottom_three_calls_not_27() {
    fund!("layers_three");
    for _ in 0..10 {
        assert_eq!(top().await, Err(Down));
    }
    assert_eq!(BOTTOM_CALLS.load(Ordering::SeqCst), 30);
    let stats = stormguard::stats();
    let top = stats.operation("layers.top").unwrap();
    assert_eq!(top.retries, 0);
    assert_eq!(top.give_ups(stormguard::GiveUpReason::RetriedBelow), 10);
    assert_eq!(stats.operation("layers.bottom").unwrap().retries, 20);
}

static OUTER_ONLY_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(
    attempts = 1,
    name = "layers.inner_without_retries",
    budget = "layers_outer"
)]
async fn inner_without_retries() -> Result<(), Down> {
    OUTER_ONLY_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Down)
}

#[retry(
    attempts = 3,
    base = "10ms",
    name = "layers.outer_retries",
    budget = "layers_outer"
)]
async fn outer_retries() -> Result<(), Down> {
    inner_without_retries().await
}

#[tokio::test(start_paused = true)]
async fn an_inner_call_that_did_not_retry_leaves_the_retry_to_the_outer_one() {
    fund!("layers_outer");
    assert_eq!(outer_retries().await, Err(Down));
    assert_eq!(OUTER_ONLY_CALLS.load(Ordering::SeqCst), 3);
}

static SEQUENTIAL: AtomicU32 = AtomicU32::new(0);

#[retry(
    attempts = 2,
    base = "10ms",
    name = "layers.flaky_inner",
    budget = "layers_flaky"
)]
async fn flaky_inner() -> Result<u32, Down> {
    let n = SEQUENTIAL.fetch_add(1, Ordering::SeqCst);
    if n == 0 {
        Err(Down)
    } else {
        Ok(n)
    }
}

#[retry(
    attempts = 3,
    base = "10ms",
    name = "layers.outer_of_flaky",
    budget = "layers_flaky"
)]
async fn outer_of_flaky() -> Result<u32, Down> {
    flaky_inner().await
}

#[tokio::test(start_paused = true)]
async fn an_inner_retry_that_succeeds_is_invisible_to_the_outer_call() {
    fund!("layers_flaky");
    assert_eq!(outer_of_flaky().await, Ok(1));
    let stats = stormguard::stats();
    assert_eq!(stats.operation("layers.outer_of_flaky").unwrap().retries, 0);
    assert_eq!(
        stats
            .operation("layers.flaky_inner")
            .unwrap()
            .retry_successes,
        1
    );
}

static NESTED_OUTER_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 2, base = "1ms", max = "1ms")]
async fn unrelated_task_call() -> Result<(), Down> {
    Err(Down) // retries once, then gives up
}

#[retry(attempts = 3, base = "1ms", max = "1ms")]
fn outer_blocking_running_an_executor() -> Result<(), Down> {
    NESTED_OUTER_CALLS.fetch_add(1, Ordering::SeqCst);
    // A nested executor inside the attempt: an unrelated task of it retries and gives up.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let unrelated = tokio::spawn(unrelated_task_call());
        assert_eq!(unrelated.await.unwrap(), Err(Down));
    });
    Err(Down)
}

/// Issue 12 item 6: an unrelated task's give-up, polled by a nested executor inside an
/// attempt, no longer stops the outer call from retrying its own failure (1 attempt instead
/// of 3).
#[test]
fn a_nested_executors_unrelated_task_does_not_suppress_the_outer_retries() {
    assert_eq!(outer_blocking_running_an_executor(), Err(Down));
    assert_eq!(NESTED_OUTER_CALLS.load(Ordering::SeqCst), 3);
}
