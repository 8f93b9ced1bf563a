//! Serves stormguard's metrics in the Prometheus text format on 127.0.0.1 while it drives
//! annotated calls against a local flaky server and a local failing one, so that every series
//! the alerting rules in `ops/prometheus/` read is emitted (retries that succeed and fail, an
//! open breaker refusing calls, an empty retry budget).
//! Run: `cargo run --example metrics --features metrics`.

use axum::{http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stormguard::{retry, GuardError};

stormguard::breakers! {
    // Opens after the first call's three failed attempts, then refuses calls.
    metrics_guard { consecutive_failures: 3, open_for: "60s" }
}

stormguard::budgets! {
    // Room for one retry and no floor: every later retry is refused.
    metrics_starved { capacity: 1, ratio: 0.1, min_per_sec: 0 }
    // Room for every retry of the example: retries that all fail. A budget holds only what
    // its recent successes earned: `flaky_fetch` shares it, and each of its successes funds
    // ten retries.
    metrics_down { capacity: 1000, ratio: 10, min_per_sec: 1 }
}

#[derive(Debug)]
struct Unavailable(u16);
impl From<GuardError> for Unavailable {
    fn from(_: GuardError) -> Self {
        Unavailable(0)
    }
}
impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.0)
    }
}

/// Starts the Prometheus recorder and a server with `/metrics` (the exposition), `/flaky`
/// (every third request fails with 503) and `/down` (every request fails with 503). Returns
/// the server's address.
pub async fn serve() -> std::io::Result<(std::net::SocketAddr, PrometheusHandle)> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    let scrape = handle.clone();
    let hits = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/metrics", get(move || std::future::ready(scrape.render())))
        .route(
            "/flaky",
            get(move || {
                let n = hits.fetch_add(1, Ordering::Relaxed);
                std::future::ready(if n % 3 == 0 {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy")
                } else {
                    (StatusCode::OK, "ok")
                })
            }),
        )
        .route(
            "/down",
            get(|| std::future::ready((StatusCode::SERVICE_UNAVAILABLE, "down"))),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, handle))
}

async fn request(client: &reqwest::Client, url: &str) -> Result<String, Unavailable> {
    let resp = client.get(url).send().await.map_err(|_| Unavailable(0))?;
    if !resp.status().is_success() {
        return Err(Unavailable(resp.status().as_u16()));
    }
    resp.text().await.map_err(|_| Unavailable(0))
}

/// Retries that succeed: one call in three retries once.
#[retry(
    attempts = 3,
    base = "10ms",
    budget = "metrics_down",
    name = "flaky_fetch"
)]
async fn flaky_fetch(client: &reqwest::Client, url: &str) -> Result<String, Unavailable> {
    request(client, url).await
}

/// Retries that fail: every attempt of every call fails.
#[retry(
    attempts = 3,
    base = "1ms",
    budget = "metrics_down",
    name = "down_fetch"
)]
async fn down_fetch(client: &reqwest::Client, url: &str) -> Result<String, Unavailable> {
    request(client, url).await
}

/// A budget that refuses retries (give-up reason `budget_exhausted`).
#[retry(
    attempts = 3,
    base = "1ms",
    budget = "metrics_starved",
    name = "starved_fetch"
)]
async fn starved_fetch(client: &reqwest::Client, url: &str) -> Result<String, Unavailable> {
    request(client, url).await
}

/// A breaker that opens and then refuses calls (`stormguard_rejections_total`).
#[retry(
    attempts = 3,
    base = "1ms",
    breaker = "metrics_guard",
    name = "guarded_fetch"
)]
async fn guarded_fetch(client: &reqwest::Client, url: &str) -> Result<String, Unavailable> {
    request(client, url).await
}

/// Makes `calls` calls of each operation against the server at `addr`: `flaky_fetch` against
/// `/flaky`, the others against `/down`.
pub async fn drive(client: &reqwest::Client, addr: std::net::SocketAddr, calls: usize) {
    let flaky = format!("http://{addr}/flaky");
    let down = format!("http://{addr}/down");
    for _ in 0..calls {
        flaky_fetch(client, &flaky).await.ok();
        down_fetch(client, &down).await.ok();
        starved_fetch(client, &down).await.ok();
        guarded_fetch(client, &down).await.ok();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (addr, _handle) = serve().await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    drive(&client, addr, 30).await;
    let body = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .map_err(std::io::Error::other)?
        .text()
        .await
        .map_err(std::io::Error::other)?;
    println!("GET http://{addr}/metrics\n");
    for line in body.lines().filter(|l| l.contains("stormguard_")) {
        println!("{line}");
    }
    Ok(())
}
