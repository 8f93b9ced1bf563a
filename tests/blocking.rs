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
    assert!(
        warnings[0]
            .message()
            .contains("call it through `tokio::task::spawn_blocking`"),
        "{warnings:#?}"
    );
}

#[retry(
    attempts = 2,
    base = "1ms",
    jitter = "none",
    name = "blocking.off_the_workers"
)]
fn blocking_off_the_workers(calls: &AtomicU32) -> Result<(), Busy> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(Busy)
}

fn stall_warnings(rec: &Recorder) -> usize {
    rec.with("op", "blocking.off_the_workers")
        .iter()
        .filter(|e| e.message().contains("make the fn `async`"))
        .count()
}

/// Issue 12 item 15: under `spawn_blocking` (and `block_in_place`) a blocking sleep stalls no
/// other task, and is not warned of; the same call site in a task on a worker is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_sleep_off_the_workers_is_not_warned_of() {
    let calls = std::sync::Arc::new(AtomicU32::new(0));
    let (c, rec) = (calls.clone(), Recorder::default());
    let (rec_blocking, rec_in_place) = (rec.clone(), rec.clone());
    let blocking = tokio::task::spawn_blocking(move || {
        let _guard = rec_blocking.install();
        blocking_off_the_workers(&c)
    });
    assert_eq!(blocking.await.unwrap(), Err(Busy));
    let c = calls.clone();
    let in_place = tokio::spawn(async move {
        tokio::task::block_in_place(|| {
            let _guard = rec_in_place.install();
            blocking_off_the_workers(&c)
        })
    });
    assert_eq!(in_place.await.unwrap(), Err(Busy));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(stall_warnings(&rec), 0, "{:#?}", rec.events());
    // The same call site in a task that a worker thread polls.
    let (c, rec_task) = (calls.clone(), rec.clone());
    let on_a_worker = tokio::spawn(async move {
        let _guard = rec_task.install();
        blocking_off_the_workers(&c)
    });
    assert_eq!(on_a_worker.await.unwrap(), Err(Busy));
    assert_eq!(stall_warnings(&rec), 1, "{:#?}", rec.events());
}

/// The cooperative budget a task poll has left: spent to its end (it is reset at each poll).
fn budget_left() -> usize {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut left = 0;
    while tokio::task::coop::has_budget_remaining() {
        if let std::task::Poll::Ready(spent) = tokio::task::coop::poll_proceed(&mut cx) {
            spent.made_progress();
        }
        left += 1;
    }
    left
}

#[retry(attempts = 2, base = "1ms", jitter = "none")]
fn blocking_budget_probe(calls: &AtomicU32) -> Result<(), Busy> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(Busy)
}

/// Telling a task's thread from the blocking pool's spends the task's budget to find its end,
/// and puts it back: the task's poll has as much left as one that made no such call.
#[tokio::test]
async fn telling_the_threads_apart_leaves_the_tasks_budget_as_it_was() {
    let untouched = tokio::spawn(async { budget_left() }).await.unwrap();
    let after = tokio::spawn(async {
        let calls = AtomicU32::new(0);
        assert_eq!(blocking_budget_probe(&calls), Err(Busy));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        budget_left()
    })
    .await
    .unwrap();
    assert!(untouched > 0);
    assert_eq!(after, untouched);
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
