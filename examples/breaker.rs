//! A circuit breaker through a real outage of a real (local) HTTP server: it opens when the
//! server goes down, fails fast while open, probes, and closes once the server is back.
//!
//! ```text
//! cargo run --example breaker
//! ```
//!
//! The server on 127.0.0.1 answers `200` for 1 s, `503` for the next 2 s (the outage), then
//! `200` again. One client calls every 50 ms. Watch the `circuit breaker state changed` logs:
//! Closed → Open after 3 failures in a row, Open → HalfOpen after `open_for`, a failed probe
//! (Open again, for twice as long), then HalfOpen → Closed when the probe succeeds.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::time::{Duration, Instant};
use stormguard::{BreakerState, GuardError};
use tracing_subscriber::EnvFilter;

stormguard::breakers! {
    inventory { consecutive_failures: 3, open_for: "500ms", open_max: "2s" }
}

#[derive(Debug)]
enum CallError {
    Status(u16),
    Transport(reqwest::Error),
    Guard(GuardError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Status(code) => write!(f, "HTTP {code}"),
            CallError::Transport(e) => write!(f, "transport error: {e}"),
            CallError::Guard(e) => write!(f, "{e}"),
        }
    }
}

impl From<GuardError> for CallError {
    fn from(e: GuardError) -> Self {
        CallError::Guard(e)
    }
}

/// One retry at most: the breaker, not the retries, protects the downstream here.
#[stormguard::retry(
    attempts = 2,
    base = "20ms",
    max = "100ms",
    timeout = "1s",
    breaker = "inventory"
)]
async fn stock(client: &reqwest::Client, url: &str) -> Result<String, CallError> {
    let resp = client.get(url).send().await.map_err(CallError::Transport)?;
    if !resp.status().is_success() {
        return Err(CallError::Status(resp.status().as_u16()));
    }
    resp.text().await.map_err(CallError::Transport)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .init();

    let started = Instant::now();
    let app = Router::new().route(
        "/stock",
        get(move || async move {
            let t = started.elapsed();
            if t >= Duration::from_secs(1) && t < Duration::from_secs(3) {
                (StatusCode::SERVICE_UNAVAILABLE, "down")
            } else {
                (StatusCode::OK, "42")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/stock", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    let breaker = stormguard::breaker("inventory");
    let (mut ok, mut failed, mut fast) = (0, 0, 0);
    while started.elapsed() < Duration::from_millis(5500) {
        match stock(&client, &url).await {
            Ok(_) => ok += 1,
            Err(CallError::Guard(e)) if e.is_breaker_open() => fast += 1,
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let counts = breaker.counts();
    println!(
        "\n{ok} calls succeeded, {failed} failed at the server, {fast} failed fast while the breaker was open"
    );
    println!(
        "breaker `inventory`: {:?}; opened {} times; {} rejections",
        breaker.state(),
        counts.opened,
        counts.rejections
    );
    assert_eq!(breaker.state(), BreakerState::Closed, "recovered");
    Ok(())
}
