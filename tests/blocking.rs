//! Blocking fns: retried with a blocking sleep, `deadline` honoured, and one warning (per call
//! site) when the sleep would stall a tokio worker thread.

mod common;

use common::Recorder;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use stormguard::retry;

#[derive(Debug, PartialEq)]
struct Busy;
impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("busy")
    }
}

#[retry(
    attempts = 2,
    base = "1ms",
    jitter = "none",
    name = "blocking.in_runtime"
)]
fn blocking_in_runtime(calls: &AtomicU32) -> Result<(), Busy> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(Busy)
}

#[tokio::test]
async fn a_blocking_sleep_inside_a_runtime_warns_once_to_make_the_fn_async() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let calls = AtomicU32::new(0);
    assert_eq!(blocking_in_runtime(&calls), Err(Busy));
    assert_eq!(blocking_in_runtime(&calls), Err(Busy));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let warnings: Vec<_> = rec
        .with("op", "blocking.in_runtime")
        .into_iter()
        .filter(|e| e.message().contains("make the fn `async`"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    // Said for both threads it may run on: tokio cannot tell a `spawn_blocking` thread apart.
    assert!(
        warnings[0].message().contains("under `spawn_blocking`"),
        "{warnings:#?}"
    );
}

#[retry(
    attempts = 50,
    base = "20ms",
    max = "20ms",
    jitter = "none",
    deadline = "100ms"
)]
fn blocking_with_deadline(calls: &AtomicU32) -> Result<(), Busy> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(Busy)
}

#[test]
fn a_blocking_fn_honours_its_deadline() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(blocking_with_deadline(&calls), Err(Busy));
    assert!(start.elapsed() < Duration::from_millis(500));
    let n = calls.load(Ordering::SeqCst);
    assert!(
        (2..=6).contains(&n),
        "{n} attempts in a 100ms deadline with 20ms sleeps"
    );
}

struct Counter {
    hits: u32,
}

impl Counter {
    #[retry(attempts = 3, base = "1ms")]
    fn bump(&mut self) -> Result<u32, Busy> {
        self.hits += 1;
        if self.hits < 3 {
            Err(Busy)
        } else {
            Ok(self.hits)
        }
    }
}

#[test]
fn a_blocking_method_with_mut_self_retries() {
    let mut c = Counter { hits: 0 };
    assert_eq!(c.bump(), Ok(3));
}

#[retry(
    attempts = 10,
    base = "100ms",
    max = "100ms",
    jitter = "none",
    deadline = "250ms"
)]
fn blocking_with_deadline_in_a_paused_runtime(calls: &AtomicU32) -> Result<(), Busy> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(Busy)
}

/// Issue 12 item 5: a blocking fn sleeps on std's clock, so its deadline counts on that clock
/// too, also inside a runtime whose tokio clock is paused (where it never passed: 10 attempts
/// where 3 were due).
#[tokio::test(start_paused = true)]
async fn a_blocking_deadline_counts_on_the_clock_its_sleeps_follow() {
    let calls = AtomicU32::new(0);
    assert_eq!(
        blocking_with_deadline_in_a_paused_runtime(&calls),
        Err(Busy)
    );
    let n = calls.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&n),
        "{n} attempts in a 250ms deadline with 100ms sleeps"
    );
}
