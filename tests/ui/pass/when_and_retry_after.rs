//! `when` and `retry_after` with real fns (and paths to them), and a closure.
#![deny(warnings)]

use std::time::Duration;
use stormguard::retry;

#[derive(Debug, PartialEq)]
enum HttpError {
    Unavailable { retry_after: Option<Duration> },
    NotFound,
}

fn is_transient(e: &HttpError) -> bool {
    matches!(e, HttpError::Unavailable { .. })
}

mod hints {
    use super::HttpError;
    use std::time::Duration;

    pub fn server_hint(e: &HttpError) -> Option<Duration> {
        match e {
            HttpError::Unavailable { retry_after } => *retry_after,
            HttpError::NotFound => None,
        }
    }
}

#[retry(attempts = 3, base = "1ms", max = "1s", when = is_transient, retry_after = hints::server_hint)]
async fn get(path: &str) -> Result<String, HttpError> {
    match (path, stormguard::attempt()) {
        ("/missing", _) => Err(HttpError::NotFound),
        (_, 1) => Err(HttpError::Unavailable {
            retry_after: Some(Duration::from_millis(300)),
        }),
        _ => Ok(path.to_string()),
    }
}

#[retry(attempts = 3, base = "1ms", when = |e: &HttpError| *e != HttpError::NotFound)]
async fn with_closure() -> Result<u32, HttpError> {
    Err(HttpError::NotFound)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let start = tokio::time::Instant::now();
    assert_eq!(get("/ok").await, Ok("/ok".to_string()));
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "the server's hint was honoured"
    );
    assert_eq!(get("/missing").await, Err(HttpError::NotFound));
    assert_eq!(with_closure().await, Err(HttpError::NotFound));
}
