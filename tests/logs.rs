//! The attempt logs: one warn event per failed attempt with the documented fields, one error
//! event per give-up saying why, all carrying one `call_id` per call, inside a `retry` span.

mod common;

use common::Recorder;
use stormguard::retry;

#[derive(Debug)]
struct Unavailable;
impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("503 service unavailable")
    }
}

#[retry(
    attempts = 3,
    base = "100ms",
    jitter = "none",
    name = "logs.always_down"
)]
async fn always_down() -> Result<(), Unavailable> {
    Err(Unavailable)
}

#[tokio::test(start_paused = true)]
async fn each_failed_attempt_logs_the_documented_fields() {
    let rec = Recorder::default();
    let _guard = rec.install();
    always_down().await.unwrap_err();
    always_down().await.unwrap_err();

    let retries = rec.with("op", "logs.always_down");
    let warns: Vec<_> = retries
        .iter()
        .filter(|e| e.level == tracing::Level::WARN)
        .collect();
    assert_eq!(warns.len(), 4, "two retries per call: {retries:#?}");
    let first = warns[0];
    assert_eq!(first.target, "stormguard");
    assert_eq!(first.get("retry_attempt"), Some("1"));
    assert_eq!(first.get("max_attempts"), Some("3"));
    assert_eq!(first.get("error"), Some("503 service unavailable"));
    assert_eq!(first.get("delay_ms"), Some("100"));
    assert_eq!(warns[1].get("delay_ms"), Some("200"));
    assert_eq!(first.get("upstream"), Some("logs.always_down"));
    assert_eq!(first.span_names, ["retry"]);

    let gave_up: Vec<_> = retries
        .iter()
        .filter(|e| e.level == tracing::Level::ERROR)
        .collect();
    assert_eq!(gave_up.len(), 2);
    assert_eq!(gave_up[0].get("reason"), Some("attempts_exhausted"));
    assert_eq!(gave_up[0].get("retry_attempt"), Some("3"));

    // Every attempt of one call carries the same call_id; two calls have two.
    let ids: Vec<&str> = retries.iter().map(|e| e.get("call_id").unwrap()).collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    assert_ne!(ids[2], ids[3]);
    assert_eq!(ids[3], ids[4]);
    assert_eq!(ids[4], ids[5]);
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug only
struct NoDisplay {
    code: u16,
}

#[retry(attempts = 2, base = "1ms", name = "logs.debug_only")]
async fn debug_only() -> Result<(), NoDisplay> {
    Err(NoDisplay { code: 418 })
}

#[tokio::test(start_paused = true)]
async fn an_error_without_display_is_logged_with_debug() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let _ = debug_only().await;
    let events = rec.with("op", "logs.debug_only");
    assert_eq!(events[0].get("error"), Some("NoDisplay { code: 418 }"));
}

fn never_transient(_: &Unavailable) -> bool {
    false
}

#[retry(when = never_transient, name = "logs.permanent")]
async fn permanent() -> Result<(), Unavailable> {
    Err(Unavailable)
}

#[retry(
    attempts = 5,
    base = "400ms",
    jitter = "none",
    deadline = "1s",
    name = "logs.deadline"
)]
async fn deadline_bound() -> Result<(), std::io::Error> {
    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow")) // transient
}

#[tokio::test(start_paused = true)]
async fn give_ups_say_why() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let _ = permanent().await;
    let _ = deadline_bound().await;
    let permanent = rec.with("op", "logs.permanent");
    assert_eq!(permanent.len(), 1);
    assert_eq!(permanent[0].get("reason"), Some("permanent_error"));
    let deadline = rec.with("op", "logs.deadline");
    assert_eq!(deadline.last().unwrap().get("reason"), Some("deadline"));
}

#[retry(name = "logs.quiet")]
async fn quiet() -> Result<u8, Unavailable> {
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_success_logs_nothing() {
    let rec = Recorder::default();
    let _guard = rec.install();
    assert_eq!(quiet().await.unwrap(), 1);
    assert!(rec.events().is_empty(), "{:?}", rec.events());
}
