//! The README's demo: a real HTTP client retrying against a real (local) HTTP server.
//!
//! ```text
//! cargo run --example fetch
//! RUST_LOG=stormguard=debug cargo run --example fetch   # any tracing filter
//! ```
//!
//! It starts an axum server on 127.0.0.1 (a free port, no outside network) whose
//! `/invoice/{id}` route answers its first two requests with `503` and `Retry-After: 1`, then
//! `200`; an unknown invoice is a `404`; and `/hung` hangs for 10 s on its first request.
//! Then it shows, through the attempt logs and `stormguard::stats()`:
//! 1. a transient failure retried after the server's hint, then a success;
//! 2. a permanent failure (`404`) returned at once, without a retry;
//! 3. a hung attempt cut off by `timeout` and retried, instead of waiting 10 s.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stormguard::GuardError;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

// ---------------------------------------------------------------------------------------------
// The client side: this is the code a user of stormguard writes.
// ---------------------------------------------------------------------------------------------

/// Everything a fetch can fail with. The `Guard` variant is what lets `timeout` (and
/// `deadline`, `breaker`) end an attempt with a value of this type.
#[derive(Debug)]
enum FetchError {
    /// The server answered with an error status.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused or reset, client-side timeout, unreadable body.
    Transport(reqwest::Error),
    /// stormguard ended the attempt (timeout, deadline, open breaker).
    Guard(GuardError),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status {
                code,
                retry_after: Some(after),
            } => write!(f, "HTTP {code} (Retry-After: {after:?})"),
            FetchError::Status { code, .. } => write!(f, "HTTP {code}"),
            FetchError::Transport(e) => write!(f, "transport error: {e}"),
            FetchError::Guard(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Status { .. } => None,
            FetchError::Transport(e) => Some(e),
            FetchError::Guard(e) => Some(e),
        }
    }
}

impl From<GuardError> for FetchError {
    fn from(e: GuardError) -> Self {
        FetchError::Guard(e)
    }
}

impl From<reqwest::Error> for FetchError {
    fn from(e: reqwest::Error) -> Self {
        FetchError::Transport(e)
    }
}

/// Worth a retry: 5xx, 429, timeouts and connection errors. A 4xx is the caller's fault and
/// fails the same way every time, so it is returned at once.
fn is_transient(e: &FetchError) -> bool {
    match e {
        FetchError::Status { code, .. } => *code >= 500 || *code == 429,
        FetchError::Transport(e) => e.is_timeout() || e.is_connect(),
        FetchError::Guard(e) => e.is_timeout(),
    }
}

/// The server's `Retry-After`, already parsed into the error.
fn server_hint(e: &FetchError) -> Option<Duration> {
    match e {
        FetchError::Status { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// One GET; only this I/O call is retried, never a whole handler.
#[stormguard::retry(attempts = 4, base = "100ms", max = "3s", when = is_transient, retry_after = server_hint, timeout = "2s")]
async fn fetch_invoice(client: &reqwest::Client, url: &str) -> Result<String, FetchError> {
    get_text(client, url).await
}

/// The same GET with a tight per-attempt timeout, for the `/hung` route.
#[stormguard::retry(attempts = 3, base = "100ms", max = "1s", when = is_transient, timeout = "500ms")]
async fn fetch_report(client: &reqwest::Client, url: &str) -> Result<String, FetchError> {
    get_text(client, url).await
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, FetchError> {
    let response = client.get(url).send().await?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(FetchError::Status {
            code: status.as_u16(),
            retry_after,
        });
    }
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

    println!("\n== 1. a flaky downstream: 503 twice (Retry-After: 1), then 200");
    let started = Instant::now();
    let invoice = fetch_invoice(&client, &format!("{base}/invoice/7")).await?;
    println!("ok after {:.1?}: {invoice}", started.elapsed());

    println!("\n== 2. a permanent error: 404 is not retried");
    let started = Instant::now();
    match fetch_invoice(&client, &format!("{base}/invoice/999")).await {
        Err(e @ FetchError::Status { code: 404, .. }) => {
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

/// Invoice 7 exists; the first two requests find the server overloaded. Others are 404.
async fn invoice(State(s): State<Downstream>, Path(id): Path<u32>) -> Response {
    if id != 7 {
        return (StatusCode::NOT_FOUND, format!("no invoice {id}")).into_response();
    }
    if s.invoice_requests.fetch_add(1, Ordering::SeqCst) < 2 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "overloaded, come back in 1 s",
        )
            .into_response();
    }
    (StatusCode::OK, format!("invoice {id}: 3 items, 42.00 EUR")).into_response()
}

/// Hangs for 10 s on its first request, answers at once afterwards.
async fn hung(State(s): State<Downstream>) -> &'static str {
    if s.hung_requests.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    "quarterly report"
}
