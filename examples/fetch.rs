//! The README's demo: a real HTTP client retrying against a real (local) HTTP server.
//!
//! ```text
//! cargo run --example fetch --features reqwest
//! RUST_LOG=stormguard=debug cargo run --example fetch --features reqwest   # any tracing filter
//! ```
//!
//! It starts an axum server on 127.0.0.1 (a free port, no outside network) whose
//! `/invoice/{id}` route answers its first request with `503` and `Retry-After: 1` (seconds),
//! its second with `503` and `Retry-After` as an HTTP-date two seconds ahead, then `200`; an
//! unknown invoice is a `404`; and `/hung` hangs for 10 s on its first request. Then it shows,
//! through the attempt logs and `stormguard::stats()`:
//! 1. a transient failure retried after the server's hint, in both its forms, then a success;
//! 2. a permanent failure (`404`) returned at once, without a retry;
//! 3. a hung attempt cut off by `timeout` and retried, instead of waiting 10 s.
//!
//! The client side is the two annotated fns and nothing else: `stormguard::http::Error`
//! knows which statuses and transport errors are transient and carries the `Retry-After`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

// ---------------------------------------------------------------------------------------------
// The client side: this is the code a user of stormguard writes.
// ---------------------------------------------------------------------------------------------

/// One GET; only this I/O call is retried, never a whole handler.
#[stormguard::retry(attempts = 4, max = "3s", timeout = "2s")]
async fn fetch_invoice(
    client: &reqwest::Client,
    url: &str,
) -> Result<String, stormguard::http::Error> {
    let response = stormguard::http::check(client.get(url).send().await?)?;
    Ok(response.text().await?)
}

/// The same GET with a tight per-attempt timeout, for the `/hung` route.
#[stormguard::retry(attempts = 3, max = "1s", timeout = "500ms")]
async fn fetch_report(
    client: &reqwest::Client,
    url: &str,
) -> Result<String, stormguard::http::Error> {
    let response = stormguard::http::check(client.get(url).send().await?)?;
    Ok(response.text().await?)
}

// ---------------------------------------------------------------------------------------------
// The demo.
// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(tracing_subscriber::fmt::layer())
        .init();

    let base = start_server().await?;
    let client = reqwest::Client::builder().no_proxy().build()?;

    println!("\n== 1. a flaky downstream: 503 (Retry-After: 1), 503 (Retry-After: <a date 2 s ahead>), then 200");
    let started = Instant::now();
    let invoice = fetch_invoice(&client, &format!("{base}/invoice/7")).await?;
    println!("ok after {:.1?}: {invoice}", started.elapsed());

    println!("\n== 2. a permanent error: 404 is not retried");
    let started = Instant::now();
    match fetch_invoice(&client, &format!("{base}/invoice/999")).await {
        Err(stormguard::http::Error::Status(e)) if e.status() == 404 => {
            println!("failed fast after {:.1?}: {e}", started.elapsed())
        }
        other => return Err(format!("expected a 404, got {other:?}").into()),
    }

    println!("\n== 3. a hung downstream: the first request hangs for 10 s, timeout = \"500ms\"");
    let started = Instant::now();
    let report = fetch_report(&client, &format!("{base}/hung")).await?;
    let took = started.elapsed();
    println!("ok after {took:.1?} (not 10 s): {report}");
    assert!(
        took < Duration::from_secs(5),
        "the hung attempt was not cut off"
    );

    println!("\n== stormguard::stats()");
    let stats = stormguard::stats();
    for name in ["fetch_invoice", "fetch_report"] {
        let op = concat!(module_path!(), "::").to_owned() + name;
        let s = stats
            .operation(&op)
            .ok_or_else(|| format!("no stats for {op}"))?;
        println!(
            "{op}: calls {}, attempts {}, retries {}, timeouts {}, give-ups {}, retry success rate {:.0}%",
            s.calls,
            s.attempts,
            s.retries,
            s.timeouts,
            s.total_give_ups(),
            s.retry_success_rate() * 100.0,
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The downstream: a local axum server.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Downstream {
    invoice_requests: Arc<AtomicU32>,
    hung_requests: Arc<AtomicU32>,
}

/// Serves on a free port of 127.0.0.1 in a spawned task; returns its base URL.
async fn start_server() -> std::io::Result<String> {
    let app = Router::new()
        .route("/invoice/{id}", get(invoice))
        .route("/hung", get(hung))
        .with_state(Downstream::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// Invoice 7 exists; the first two requests find the server overloaded, and it says when to
/// come back: in seconds, then as an HTTP-date. Others are 404.
async fn invoice(State(s): State<Downstream>, Path(id): Path<u32>) -> Response {
    if id != 7 {
        return (StatusCode::NOT_FOUND, format!("no invoice {id}")).into_response();
    }
    let retry_after = match s.invoice_requests.fetch_add(1, Ordering::SeqCst) {
        0 => "1".to_string(),
        1 => httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2)),
        _ => return (StatusCode::OK, format!("invoice {id}: 3 items, 42.00 EUR")).into_response(),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, retry_after)],
        "overloaded, come back later",
    )
        .into_response()
}

/// Hangs for 10 s on its first request, answers at once afterwards.
async fn hung(State(s): State<Downstream>) -> &'static str {
    if s.hung_requests.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    "quarterly report"
}
