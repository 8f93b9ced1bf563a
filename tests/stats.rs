//! `stormguard::stats()`: per-operation counters, the derived retry success rate, the
//! rate-limited alert when that rate falls, and the serde form of the snapshot.

mod common;

use common::{Down, Recorder};
use std::time::Duration;
use stormguard::{retry, GiveUpReason};

#[retry(attempts = 3, base = "1ms", name = "stats.counted")]
async fn counted(fail_first: u32) -> Result<(), Down> {
    if stormguard::attempt() <= fail_first {
        Err(Down)
    } else {
        Ok(())
    }
}

#[retry(attempts = 2, timeout = "10ms", name = "stats.timeouts")]
async fn times_out() -> Result<(), std::io::Error> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn counts_calls_attempts_retries_and_give_ups_per_operation() {
    counted(0).await.unwrap();
    counted(0).await.unwrap();
    counted(2).await.unwrap();
    counted(9).await.unwrap_err();
    times_out().await.unwrap_err();

    let stats = stormguard::stats();
    let op = stats.operation("stats.counted").expect("listed");
    assert_eq!(op.calls, 4);
    assert_eq!(op.attempts, 2 + 3 + 3);
    assert_eq!(op.retries, 4);
    assert_eq!(op.retried_calls, 2);
    assert_eq!(op.first_try_successes, 2);
    assert_eq!(op.retry_successes, 1);
    assert_eq!(op.give_ups(GiveUpReason::AttemptsExhausted), 1);
    assert_eq!(op.total_give_ups(), 1);
    assert_eq!(op.retry_success_rate(), 0.5);
    assert_eq!(op.success_rate(), 0.75);

    let t = stats.operation("stats.timeouts").unwrap();
    assert_eq!(t.timeouts, 2);
    assert_eq!(t.attempts, 2);
    // Iterable and Debug.
    assert!(stats.iter().any(|o| o.op == "stats.counted"));
    assert!(format!("{stats:?}").contains("stats.counted"));
}

stormguard::budgets! {
    // Large enough that the budget never hides the retries this test counts: it starts with
    // min(capacity, min_per_sec × window) = 100,000 tokens, for an hour.
    stats_alert { capacity: 100000, min_per_sec: 1000, window: "1h" }
}

#[retry(
    attempts = 2,
    base = "1ms",
    name = "stats.alerting",
    budget = "stats_alert"
)]
async fn mostly_failing(n: u32) -> Result<(), Down> {
    if n % 5 == 0 && stormguard::attempt() == 2 {
        Ok(())
    } else {
        Err(Down)
    }
}

#[tokio::test(start_paused = true)]
async fn a_falling_retry_success_rate_warns_once_per_window() {
    stormguard::set_retry_success_alert(0.95, Duration::from_secs(60), 10);
    let rec = Recorder::default();
    let _guard = rec.install();
    for n in 0..100 {
        let _ = mostly_failing(n).await;
    }
    let alerts: Vec<_> = rec
        .with("op", "stats.alerting")
        .into_iter()
        .filter(|e| e.get("retry_success_rate").is_some())
        .collect();
    assert_eq!(alerts.len(), 1, "rate limited: {alerts:#?}");
    assert_eq!(alerts[0].level, tracing::Level::WARN);
    // A new window may warn again.
    tokio::time::advance(Duration::from_secs(61)).await;
    for n in 0..20 {
        let _ = mostly_failing(n).await;
    }
    let again = rec
        .with("op", "stats.alerting")
        .into_iter()
        .filter(|e| e.get("retry_success_rate").is_some())
        .count();
    assert_eq!(again, 2);
}

#[retry(
    attempts = 2,
    base = "1ms",
    name = "stats.shared_op",
    budget = "stats_alert"
)]
async fn shared_op_here() -> Result<(), Down> {
    Err(Down)
}

#[retry(
    attempts = 2,
    base = "1ms",
    name = "stats.shared_op",
    budget = "stats_alert"
)]
async fn shared_op_there() -> Result<(), Down> {
    Err(Down)
}

/// Issue 12 item 9: the alert is judged per operation, not per call site: two sites sharing a
/// `name`, 15 failed retried calls each, pass the alert's minimum of 20 together.
#[tokio::test(start_paused = true)]
async fn the_alert_judges_an_operation_across_its_call_sites() {
    stormguard::set_retry_success_alert(0.95, Duration::from_secs(60), 10);
    let rec = Recorder::default();
    let _guard = rec.install();
    for _ in 0..15 {
        let _ = shared_op_here().await;
        let _ = shared_op_there().await;
    }
    let alerts = rec
        .with("op", "stats.shared_op")
        .into_iter()
        .filter(|e| e.get("retry_success_rate").is_some())
        .count();
    assert_eq!(alerts, 1, "one operation, one window, one alert");
}

#[cfg(feature = "serde")]
#[tokio::test(start_paused = true)]
async fn the_snapshot_serializes() {
    counted(1).await.unwrap();
    let json = serde_json::to_value(stormguard::stats()).unwrap();
    let ops = json["operations"].as_array().unwrap();
    let op = ops.iter().find(|o| o["op"] == "stats.counted").unwrap();
    assert!(op["retries"].as_u64().unwrap() >= 1);
    assert!(op["give_ups"]["attempts_exhausted"].is_u64());
}
