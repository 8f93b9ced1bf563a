//! `timeout`, `deadline` and `breaker` with an error type that has `From<GuardError>`.
#![deny(warnings)]

use std::time::Duration;
use stormguard::{retry, GuardError};

#[derive(Debug)]
enum ApiError {
    Guard(GuardError),
}

impl From<GuardError> for ApiError {
    fn from(e: GuardError) -> Self {
        ApiError::Guard(e)
    }
}

stormguard::breakers! {
    payments { consecutive_failures: 5, open_for: "30s" }
}

#[retry(attempts = 2, base = "1ms", timeout = "100ms")]
async fn slow() -> Result<u32, ApiError> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(1)
}

#[retry(attempts = 3, base = "1ms", deadline = "5s")]
async fn within_deadline() -> Result<u32, ApiError> {
    Ok(2)
}

#[retry(breaker = "payments")]
async fn charge(cents: u64) -> Result<u64, ApiError> {
    Ok(cents)
}

#[retry(timeout = "1s")]
async fn io_error() -> std::io::Result<u32> {
    Ok(3)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    match slow().await {
        Err(ApiError::Guard(e)) => assert!(e.is_timeout(), "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(within_deadline().await.unwrap(), 2);
    assert_eq!(charge(250).await.unwrap(), 250);
    assert_eq!(io_error().await.unwrap(), 3);
}
