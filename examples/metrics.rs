//! Serves stormguard's metrics in the Prometheus text format on 127.0.0.1 while it drives
//! annotated calls against a local flaky server. Run: `cargo run --example metrics --features metrics`.

use axum::{http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stormguard::retry;

#[derive(Debug)]
struct Unavailable(u16);
impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.0)
    }
}

/// Starts the Prometheus recorder and a server with `/metrics` (the exposition) and `/flaky`
/// (every third request fails with 503). Returns the server's address.
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
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, handle))
}

#[retry(attempts = 3, base = "10ms", name = "flaky_fetch")]
async fn flaky_fetch(client: &reqwest::Client, url: &str) -> Result<String, Unavailable> {
    let resp = client.get(url).send().await.map_err(|_| Unavailable(0))?;
    if !resp.status().is_success() {
        return Err(Unavailable(resp.status().as_u16()));
    }
    resp.text().await.map_err(|_| Unavailable(0))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (addr, _handle) = serve().await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    let flaky = format!("http://{addr}/flaky");
    for _ in 0..30 {
        flaky_fetch(&client, &flaky).await.ok();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
