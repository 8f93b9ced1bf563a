//! Delays between attempts on tokio's paused clock: exact shapes, jitter bounds, `when`,
//! `retry_after`, `deadline`, and the last error returned as it was.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use stormguard::retry;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
struct Boom(u32);
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boom #{}", self.0)
    }
}

/// Records the instant of each attempt, relative to `start`.
struct Clock {
    start: Mutex<Option<Instant>>,
    marks: Mutex<Vec<u128>>,
}
impl Clock {
    const fn new() -> Self {
        Clock {
            start: Mutex::new(None),
            marks: Mutex::new(Vec::new()),
        }
    }
    fn start(&self) {
        *self.start.lock().unwrap() = Some(Instant::now());
    }
    fn mark(&self) {
        let start = self.start.lock().unwrap().expect("started");
        self.marks.lock().unwrap().push(start.elapsed().as_millis());
    }
    fn marks(&self) -> Vec<u128> {
        self.marks.lock().unwrap().clone()
    }
}

static EXP: Clock = Clock::new();
#[retry(
    attempts = 5,
    backoff = "exp",
    base = "100ms",
    max = "2s",
    jitter = "none"
)]
async fn always_fails_exp() -> Result<(), Boom> {
    EXP.mark();
    Err(Boom(stormguard::attempt()))
}

#[tokio::test(start_paused = true)]
async fn exponential_without_jitter_sleeps_100_200_400_800_ms_exactly() {
    EXP.start();
    let err = always_fails_exp().await.unwrap_err();
    assert_eq!(err, Boom(5), "the last error is returned as it was");
    assert_eq!(EXP.marks(), [0, 100, 300, 700, 1500]);
}

static CAPPED: Clock = Clock::new();
#[retry(attempts = 6, base = "400ms", max = "1s", jitter = "none")]
async fn capped() -> Result<(), Boom> {
    CAPPED.mark();
    Err(Boom(0))
}

#[tokio::test(start_paused = true)]
async fn max_caps_every_delay() {
    CAPPED.start();
    let _ = capped().await;
    // 400, 800, then 1000 capped three times.
    assert_eq!(CAPPED.marks(), [0, 400, 1200, 2200, 3200, 4200]);
}

static FIXED: Clock = Clock::new();
#[retry(attempts = 4, backoff = "fixed", base = "250ms", jitter = "none")]
async fn fixed() -> Result<(), Boom> {
    FIXED.mark();
    Err(Boom(0))
}

static LINEAR: Clock = Clock::new();
#[retry(attempts = 4, backoff = "linear", base = "100ms", jitter = "none")]
async fn linear() -> Result<(), Boom> {
    LINEAR.mark();
    Err(Boom(0))
}

#[tokio::test(start_paused = true)]
async fn fixed_and_linear_shapes() {
    FIXED.start();
    let _ = fixed().await;
    LINEAR.start();
    let _ = linear().await;
    assert_eq!(FIXED.marks(), [0, 250, 500, 750]);
    assert_eq!(LINEAR.marks(), [0, 100, 300, 600]);
}

stormguard::budgets! {
    // 7 retries in a row with no success: more than the 5 tokens a default budget starts
    // with; this one starts with min_per_sec × window = 50.
    backoff_roomy { min_per_sec: 10 }
}

static JITTERED: Clock = Clock::new();
#[retry(attempts = 8, base = "100ms", max = "300ms", budget = "backoff_roomy")]
async fn jittered_default() -> Result<(), Boom> {
    JITTERED.mark();
    Err(Boom(0))
}

#[tokio::test(start_paused = true)]
async fn full_jitter_by_default_stays_within_the_backoff_and_max() {
    JITTERED.start();
    let _ = jittered_default().await;
    let marks = JITTERED.marks();
    assert_eq!(marks.len(), 8);
    let gaps: Vec<u128> = marks.windows(2).map(|w| w[1] - w[0]).collect();
    let bounds = [100, 200, 300, 300, 300, 300, 300];
    for (gap, bound) in gaps.iter().zip(bounds) {
        assert!(*gap <= bound, "gap {gap} above {bound}: {gaps:?}");
    }
    assert!(
        gaps.iter().any(|g| *g != gaps[0]),
        "jitter varies: {gaps:?}"
    );
}

static EQUAL: Clock = Clock::new();
#[retry(attempts = 4, base = "200ms", max = "2s", jitter = "equal")]
async fn equal_jitter() -> Result<(), Boom> {
    EQUAL.mark();
    Err(Boom(0))
}

static DECORRELATED: Clock = Clock::new();
#[retry(attempts = 6, base = "100ms", max = "500ms", jitter = "decorrelated")]
async fn decorrelated_jitter() -> Result<(), Boom> {
    DECORRELATED.mark();
    Err(Boom(0))
}

#[tokio::test(start_paused = true)]
async fn equal_and_decorrelated_jitter_stay_in_their_ranges() {
    EQUAL.start();
    DECORRELATED.start();
    let _ = equal_jitter().await;
    let _ = decorrelated_jitter().await;
    let gaps = |m: Vec<u128>| m.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>();
    for (gap, full) in gaps(EQUAL.marks()).into_iter().zip([200u128, 400, 800]) {
        assert!(
            gap >= full / 2 && gap <= full,
            "equal jitter {gap} outside [{}, {full}]",
            full / 2
        );
    }
    for gap in gaps(DECORRELATED.marks()) {
        assert!(
            (100..=500).contains(&gap),
            "decorrelated {gap} outside [base, max]"
        );
    }
}

fn only_odd_is_transient(e: &Boom) -> bool {
    e.0 % 2 == 1
}

static PERMANENT_CALLS: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 5, base = "10ms", when = only_odd_is_transient)]
async fn permanent_on_second() -> Result<(), Boom> {
    PERMANENT_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Boom(stormguard::attempt()))
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_returned_at_once() {
    assert_eq!(permanent_on_second().await, Err(Boom(2)));
    assert_eq!(PERMANENT_CALLS.load(Ordering::SeqCst), 2);
}

#[derive(Debug, PartialEq)]
struct Busy {
    retry_after_ms: u64,
}
fn hint(e: &Busy) -> Option<Duration> {
    Some(Duration::from_millis(e.retry_after_ms))
}

static HINTED: Clock = Clock::new();
#[retry(attempts = 3, base = "10ms", max = "2s", jitter = "none", retry_after = hint)]
async fn honours_hint() -> Result<u32, Busy> {
    HINTED.mark();
    if stormguard::attempt() == 1 {
        Err(Busy {
            retry_after_ms: 1500,
        })
    } else {
        Ok(7)
    }
}

static TOO_LONG_CALLS: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 3, max = "2s", retry_after = hint)]
async fn hint_above_max() -> Result<u32, Busy> {
    TOO_LONG_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Busy {
        retry_after_ms: 60_000,
    })
}

#[tokio::test(start_paused = true)]
async fn retry_after_hint_sets_a_longer_delay_and_above_max_ends_the_retries() {
    HINTED.start();
    assert_eq!(honours_hint().await, Ok(7));
    assert_eq!(HINTED.marks(), [0, 1500]);
    let start = Instant::now();
    assert!(hint_above_max().await.is_err());
    assert_eq!(TOO_LONG_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

static DEADLINED: Clock = Clock::new();
#[retry(
    attempts = 10,
    base = "100ms",
    max = "10s",
    jitter = "none",
    deadline = "1s"
)]
async fn under_deadline() -> Result<(), std::io::Error> {
    DEADLINED.mark();
    Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "down",
    )) // transient
}

#[tokio::test(start_paused = true)]
async fn deadline_starts_no_sleep_that_would_end_past_it() {
    DEADLINED.start();
    let start = Instant::now();
    let err = under_deadline().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "down",
        "the last real error, not a deadline error"
    );
    // 0, 100, 300, 700; the next sleep (800ms) would end at 1500 > 1000.
    assert_eq!(DEADLINED.marks(), [0, 100, 300, 700]);
    assert!(start.elapsed() < Duration::from_secs(1));
}

static ONCE: AtomicU32 = AtomicU32::new(0);
#[retry(attempts = 1)]
async fn single_attempt() -> Result<(), Boom> {
    ONCE.fetch_add(1, Ordering::SeqCst);
    Err(Boom(1))
}

#[tokio::test(start_paused = true)]
async fn attempts_1_means_no_retry() {
    assert_eq!(single_attempt().await, Err(Boom(1)));
    assert_eq!(ONCE.load(Ordering::SeqCst), 1);
}

#[retry(attempts = 3, base = "5ms")]
fn blocking_fetch(counter: &AtomicU32) -> Result<u32, Boom> {
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    if n < 3 {
        Err(Boom(n))
    } else {
        Ok(n)
    }
}

#[test]
fn a_sync_fn_retries_with_a_blocking_sleep() {
    let counter = AtomicU32::new(0);
    assert_eq!(blocking_fetch(&counter), Ok(3));
}
