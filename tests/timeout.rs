//! Per-attempt timeouts that really cancel, the whole-call deadline, and `GuardError`: a
//! timed-out attempt is dropped at its timeout instant, before anything else happens.

mod common;

use common::Recorder;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use stormguard::{retry, GuardError};
use tokio::time::{sleep, Instant};

#[derive(Debug, Clone, PartialEq)]
enum FetchError {
    Down,
    Guard(GuardError),
}
impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Down => f.write_str("down"),
            FetchError::Guard(g) => g.fmt(f),
        }
    }
}
impl From<GuardError> for FetchError {
    fn from(e: GuardError) -> Self {
        FetchError::Guard(e)
    }
}

/// Counts live attempts and records, for each event, the paused-clock millisecond.
struct Probe {
    live: AtomicU32,
    max_live: AtomicU32,
    log: Mutex<Vec<(String, u128)>>,
    start: Mutex<Option<Instant>>,
}
impl Probe {
    const fn new() -> Self {
        Probe {
            live: AtomicU32::new(0),
            max_live: AtomicU32::new(0),
            log: Mutex::new(Vec::new()),
            start: Mutex::new(None),
        }
    }
    fn start(&self) {
        *self.start.lock().unwrap() = Some(Instant::now());
    }
    fn note(&self, what: String) {
        let ms = self.start.lock().unwrap().unwrap().elapsed().as_millis();
        self.log.lock().unwrap().push((what, ms));
    }
    fn enter(&'static self) -> Live {
        let n = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_live.fetch_max(n, Ordering::SeqCst);
        self.note(format!("start {}", stormguard::attempt()));
        Live {
            probe: self,
            attempt: stormguard::attempt(),
        }
    }
    fn log(&self) -> Vec<(String, u128)> {
        self.log.lock().unwrap().clone()
    }
}

/// Held by an attempt; its drop is the moment the attempt is cancelled or ends.
struct Live {
    probe: &'static Probe,
    attempt: u32,
}
impl Drop for Live {
    fn drop(&mut self) {
        self.probe.live.fetch_sub(1, Ordering::SeqCst);
        self.probe.note(format!("drop {}", self.attempt));
    }
}

static HANGS_ONCE: Probe = Probe::new();
#[retry(attempts = 3, base = "100ms", jitter = "none", timeout = "500ms")]
async fn hangs_first_time() -> Result<&'static str, FetchError> {
    let _live = HANGS_ONCE.enter();
    if stormguard::attempt() == 1 {
        sleep(Duration::from_secs(3600)).await;
    }
    Ok("fast")
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_is_dropped_at_its_timeout_before_the_next_one_starts() {
    HANGS_ONCE.start();
    assert_eq!(hangs_first_time().await, Ok("fast"));
    assert_eq!(
        HANGS_ONCE.log(),
        [
            ("start 1".to_string(), 0),
            ("drop 1".to_string(), 500),
            ("start 2".to_string(), 600),
            ("drop 2".to_string(), 600),
        ]
    );
    assert_eq!(HANGS_ONCE.max_live.load(Ordering::SeqCst), 1);
    assert_eq!(HANGS_ONCE.live.load(Ordering::SeqCst), 0);
}

static ALWAYS_HANGS: Probe = Probe::new();
#[retry(
    attempts = 3,
    base = "100ms",
    jitter = "none",
    timeout = "200ms",
    name = "timeout.always_hangs"
)]
async fn always_hangs() -> Result<(), FetchError> {
    let _live = ALWAYS_HANGS.enter();
    sleep(Duration::from_secs(3600)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn every_attempt_timing_out_returns_the_timeout_error_and_logs_each_cancel() {
    let rec = Recorder::default();
    let _guard = rec.install();
    ALWAYS_HANGS.start();
    let start = Instant::now();
    let err = always_hangs().await.unwrap_err();
    let FetchError::Guard(g) = &err else {
        panic!("{err:?}")
    };
    assert!(g.is_timeout());
    assert!(!g.is_breaker_open());
    assert_eq!(
        g,
        &GuardError::Timeout {
            op: "timeout.always_hangs",
            attempt: 3,
            after: Duration::from_millis(200)
        }
    );
    assert_eq!(
        err.to_string(),
        "timeout.always_hangs: attempt 3 timed out after 200ms"
    );
    // 200 + 100 + 200 + 200 + 200
    assert_eq!(start.elapsed(), Duration::from_millis(900));
    assert_eq!(ALWAYS_HANGS.max_live.load(Ordering::SeqCst), 1);
    let cancels: Vec<_> = rec
        .with("op", "timeout.always_hangs")
        .into_iter()
        .filter(|e| e.get("timeout_ms").is_some())
        .collect();
    assert_eq!(cancels.len(), 3);
    assert_eq!(cancels[0].get("timeout_ms"), Some("200"));
    assert_eq!(cancels[0].get("retry_attempt"), Some("1"));
    assert!(cancels[0].get("call_id").is_some());
}

static DROPPED: Probe = Probe::new();
#[retry(attempts = 5, base = "1s", jitter = "none", timeout = "10s")]
async fn slow_forever() -> Result<(), FetchError> {
    let _live = DROPPED.enter();
    sleep(Duration::from_millis(300)).await;
    Err(FetchError::Down)
}

#[tokio::test(start_paused = true)]
async fn dropping_the_callers_future_cancels_everything_it_started() {
    DROPPED.start();
    // Mid-attempt.
    let r = tokio::time::timeout(Duration::from_millis(100), slow_forever()).await;
    assert!(r.is_err());
    assert_eq!(DROPPED.live.load(Ordering::SeqCst), 0);
    // Mid-sleep (the first attempt failed at 300ms; the sleep runs until 1300ms).
    let r = tokio::time::timeout(Duration::from_millis(800), slow_forever()).await;
    assert!(r.is_err());
    assert_eq!(DROPPED.live.load(Ordering::SeqCst), 0);
    // Nothing runs on: advancing the clock starts no attempt.
    let attempts_before = DROPPED.log().len();
    sleep(Duration::from_secs(60)).await;
    assert_eq!(DROPPED.log().len(), attempts_before);
}

fn timeouts_are_permanent(e: &FetchError) -> bool {
    !matches!(e, FetchError::Guard(g) if g.is_timeout())
}

static THROUGH_WHEN: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 3, timeout = "50ms", when = timeouts_are_permanent)]
async fn timeout_judged_by_when() -> Result<(), FetchError> {
    THROUGH_WHEN.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_converted_timeout_goes_through_when() {
    assert!(timeout_judged_by_when().await.is_err());
    assert_eq!(THROUGH_WHEN.load(Ordering::SeqCst), 1);
}

static DEADLINE: Probe = Probe::new();
#[retry(
    attempts = 10,
    base = "100ms",
    jitter = "none",
    timeout = "400ms",
    deadline = "1s",
    name = "timeout.deadline"
)]
async fn deadline_cuts_the_attempt() -> Result<(), FetchError> {
    let _live = DEADLINE.enter();
    sleep(Duration::from_secs(3600)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_deadline_shortens_the_last_attempt_and_ends_the_call() {
    DEADLINE.start();
    let err = deadline_cuts_the_attempt().await.unwrap_err();
    // 0–400 timeout, sleep 100, 500–900 timeout, sleep 200 would end at 1100 > 1000: give up.
    assert_eq!(
        DEADLINE.log(),
        [
            ("start 1".to_string(), 0),
            ("drop 1".to_string(), 400),
            ("start 2".to_string(), 500),
            ("drop 2".to_string(), 900),
        ]
    );
    assert!(matches!(
        err,
        FetchError::Guard(GuardError::Timeout { attempt: 2, .. })
    ));
}

static SHORT_DEADLINE: Probe = Probe::new();
#[retry(
    attempts = 10,
    base = "100ms",
    jitter = "none",
    timeout = "400ms",
    deadline = "650ms"
)]
async fn deadline_left_below_timeout() -> Result<(), FetchError> {
    let _live = SHORT_DEADLINE.enter();
    sleep(Duration::from_secs(3600)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_attempts_limit_is_the_smaller_of_timeout_and_the_deadline_left() {
    SHORT_DEADLINE.start();
    let err = deadline_left_below_timeout().await.unwrap_err();
    // 0–400 timeout, sleep 100, then only 150ms of the deadline are left for attempt 2.
    assert_eq!(SHORT_DEADLINE.log()[3], ("drop 2".to_string(), 650));
    let FetchError::Guard(g) = err else { panic!() };
    assert!(g.is_timeout());
    assert!(matches!(g, GuardError::DeadlineExceeded { attempt: 2, .. }));
}

#[retry(timeout = "1s")]
async fn io_result_with_timeout() -> std::io::Result<u8> {
    sleep(Duration::from_secs(5)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn io_errors_carry_a_timeout_as_timed_out() {
    let err = io_result_with_timeout().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

#[retry(timeout = "1s")]
async fn instant() -> Result<u8, FetchError> {
    Ok(9)
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_completes_at_once_is_not_delayed() {
    let start = Instant::now();
    assert_eq!(instant().await, Ok(9));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[retry(
    attempts = 3,
    base = "10ms",
    max = "20ms",
    jitter = "none",
    deadline = "60ms"
)]
async fn down_with_a_deadline() -> Result<(), FetchError> {
    Err(FetchError::Down)
}

/// Issue 12 item 1: when the wake-up after a backoff sleep comes at or past the deadline (a
/// busy runtime, a paused VM), the call returns attempt 1's real error, not a
/// `DeadlineExceeded` for an attempt that never ran.
#[tokio::test(start_paused = true)]
async fn a_late_wake_up_past_the_deadline_returns_the_last_real_error() {
    let mut call = std::pin::pin!(down_with_a_deadline());
    // Attempt 1 fails and the call sleeps; the timer fires only after the deadline passed.
    assert!(futures_poll_once(call.as_mut()).is_pending());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(call.await, Err(FetchError::Down));
}

fn futures_poll_once<F: std::future::Future>(
    f: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    let waker = std::task::Waker::noop();
    f.poll(&mut std::task::Context::from_waker(waker))
}
