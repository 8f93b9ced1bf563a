//! `Classify` as the default `when` / `retry_after`: io kinds, a user's own impl, an explicit
//! key winning over the impl, aliases, and generic error types keeping "every error".

mod common;

use common::{Down, Recorder};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use stormguard::{retry, Classify};

static IO_CALLS: AtomicU32 = AtomicU32::new(0);

stormguard::budgets! {
    // A budget holds only what its traffic earned, plus a start grant of min_per_sec × window:
    // this one's grant covers every retry the io test counts (none of them succeeds).
    classify_io { min_per_sec: 100 }
}

#[retry(attempts = 3, base = "10ms", jitter = "none", budget = "classify_io")]
async fn io_call(kind: io::ErrorKind) -> io::Result<()> {
    IO_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(io::Error::new(kind, "downstream"))
}

#[tokio::test(start_paused = true)]
async fn io_errors_are_retried_by_kind_through_the_alias() {
    for (kind, attempts) in [
        (io::ErrorKind::ConnectionReset, 3),
        (io::ErrorKind::TimedOut, 3),
        (io::ErrorKind::ConnectionRefused, 3),
        (io::ErrorKind::UnexpectedEof, 3),
        (io::ErrorKind::NotFound, 1),
        (io::ErrorKind::PermissionDenied, 1),
        (io::ErrorKind::InvalidInput, 1),
        (io::ErrorKind::Other, 1),
    ] {
        IO_CALLS.store(0, Ordering::SeqCst);
        let err = io_call(kind).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(IO_CALLS.load(Ordering::SeqCst), attempts, "{kind:?}");
    }
}

/// A user's own error with its own impl: busy is transient with a hint, bad input is not.
#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Busy { retry_in: Duration },
    BadInput,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl Classify for ApiError {
    fn is_transient(&self) -> bool {
        matches!(self, ApiError::Busy { .. })
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Busy { retry_in } => Some(*retry_in),
            ApiError::BadInput => None,
        }
    }
}

static API_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(
    attempts = 4,
    base = "10ms",
    max = "5s",
    jitter = "none",
    name = "classify.own"
)]
async fn api_call(errors: &[ApiError]) -> Result<u32, ApiError> {
    let n = API_CALLS.fetch_add(1, Ordering::SeqCst) as usize;
    match errors.get(n) {
        Some(e) => Err(e.clone()),
        None => Ok(n as u32),
    }
}

#[tokio::test(start_paused = true)]
async fn a_users_own_impl_decides_and_its_hint_is_the_delay() {
    let rec = Recorder::default();
    let _guard = rec.install();
    API_CALLS.store(0, Ordering::SeqCst);
    let busy = ApiError::Busy {
        retry_in: Duration::from_millis(1500),
    };
    let start = tokio::time::Instant::now();
    assert_eq!(api_call(&[busy]).await, Ok(1));
    assert!(start.elapsed() >= Duration::from_millis(1500));
    let retries = rec.with("op", "classify.own");
    assert_eq!(retries[0].get("delay_ms"), Some("1500"));

    API_CALLS.store(0, Ordering::SeqCst);
    assert_eq!(
        api_call(&[ApiError::BadInput]).await,
        Err(ApiError::BadInput)
    );
    assert_eq!(API_CALLS.load(Ordering::SeqCst), 1);
    let give_up = rec.with("op", "classify.own");
    assert_eq!(
        give_up.last().unwrap().get("reason"),
        Some("permanent_error")
    );
}

fn always(_: &ApiError) -> bool {
    true
}

fn no_hint(_: &ApiError) -> Option<Duration> {
    None
}

static OVERRIDE_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", jitter = "none", when = always, name = "classify.when")]
async fn overridden_when() -> Result<(), ApiError> {
    OVERRIDE_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::BadInput)
}

#[retry(attempts = 2, base = "10ms", jitter = "none", retry_after = no_hint, name = "classify.hint")]
async fn overridden_hint() -> Result<(), ApiError> {
    Err(ApiError::Busy {
        retry_in: Duration::from_secs(1),
    })
}

#[tokio::test(start_paused = true)]
async fn an_explicit_key_wins_over_the_impl() {
    let rec = Recorder::default();
    let _guard = rec.install();
    // `when = always` retries what the impl calls permanent.
    assert_eq!(overridden_when().await, Err(ApiError::BadInput));
    assert_eq!(OVERRIDE_CALLS.load(Ordering::SeqCst), 3);
    // `retry_after = no_hint` drops the impl's hint; its `is_transient` still applies.
    let _ = overridden_hint().await;
    let retry = &rec.with("op", "classify.hint")[0];
    assert_eq!(retry.get("delay_ms"), Some("10"));
}

/// Where the fn is generic over its error, the bound is not known: every error is transient.
static GENERIC_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", jitter = "none")]
async fn generic_call<E: std::fmt::Debug>(make: fn() -> E) -> Result<(), E> {
    GENERIC_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(make())
}

/// With the bound written, the impl applies.
static BOUND_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", jitter = "none")]
async fn bound_call<E: Classify>(make: fn() -> E) -> Result<(), E> {
    BOUND_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(make())
}

#[tokio::test(start_paused = true)]
async fn a_generic_error_keeps_every_error_unless_bound_by_classify() {
    let _ = generic_call(|| io::Error::from(io::ErrorKind::NotFound)).await;
    assert_eq!(GENERIC_CALLS.load(Ordering::SeqCst), 3);
    let _ = bound_call(|| io::Error::from(io::ErrorKind::NotFound)).await;
    assert_eq!(BOUND_CALLS.load(Ordering::SeqCst), 1);
}

/// An error type without an impl keeps today's default.
static PLAIN_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", jitter = "none")]
async fn plain_call() -> Result<(), Down> {
    PLAIN_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Down)
}

#[tokio::test(start_paused = true)]
async fn an_error_without_an_impl_is_always_retried() {
    assert_eq!(plain_call().await, Err(Down));
    assert_eq!(PLAIN_CALLS.load(Ordering::SeqCst), 3);
}

/// A timeout converted into `io::Error` is `TimedOut`: retried.
static SLOW_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", jitter = "none", timeout = "100ms")]
async fn slow_call() -> io::Result<()> {
    SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_transient_for_io() {
    let err = slow_call().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 3);
}
