//! `stormguard::http` against a real local axum server (127.0.0.1, a free port): which
//! statuses and transport errors are retried, and `Retry-After` in both its forms.
#![cfg(feature = "reqwest")]

mod common;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::Recorder;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use stormguard::http::{check, Error};
use stormguard::retry;

/// A server whose `/status/{code}` answers `code` with the `Retry-After` of the query's
/// `hint` kind (`/status/503/secs`, `/status/503/date`, …), counting requests per path.
#[derive(Clone, Default)]
struct Server {
    requests: Arc<AtomicU32>,
}

async fn start() -> (String, Server) {
    let server = Server::default();
    let app = Router::new()
        .route("/status/{code}", get(plain))
        .route("/status/{code}/{hint}", get(hinted))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, server)
}

async fn plain(State(s): State<Server>, Path(code): Path<u16>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    (StatusCode::from_u16(code).unwrap(), "body").into_response()
}

/// The first request answers `code` with a `Retry-After`, the next ones `200`.
async fn hinted(State(s): State<Server>, Path((code, hint)): Path<(u16, String)>) -> Response {
    if s.requests.fetch_add(1, Ordering::SeqCst) > 0 {
        return (StatusCode::OK, "ok").into_response();
    }
    let value = match hint.as_str() {
        "secs" => "2".to_string(),
        "date" => httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2)),
        "past" => httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600)),
        "long" => "30".to_string(),
        _ => "in a moment".to_string(), // malformed
    };
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::RETRY_AFTER, value)],
        "busy",
    )
        .into_response()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

stormguard::budgets! {
    // A budget holds only what its traffic earned, plus a start grant of min_per_sec × window:
    // this one's grant covers the retries these tests count, most of which fail.
    http_tests { min_per_sec: 100 }
}

#[retry(
    attempts = 3,
    base = "100ms",
    max = "5s",
    jitter = "none",
    budget = "http_tests",
    name = "http.get"
)]
async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, Error> {
    let response = check(client.get(url).send().await?)?;
    Ok(response.text().await?)
}

#[tokio::test(start_paused = true)]
async fn each_transient_status_is_retried() {
    let (base, server) = start().await;
    let client = client();
    for code in [408, 429, 500, 502, 503, 504] {
        server.requests.store(0, Ordering::SeqCst);
        let err = get_text(&client, &format!("{base}/status/{code}"))
            .await
            .unwrap_err();
        let Error::Status(status) = &err else {
            panic!("{code}: {err}")
        };
        assert_eq!(status.status().as_u16(), code);
        assert_eq!(server.requests.load(Ordering::SeqCst), 3, "{code}");
    }
}

#[tokio::test(start_paused = true)]
async fn each_permanent_status_is_returned_after_one_attempt() {
    let (base, server) = start().await;
    let client = client();
    for code in [400, 401, 403, 404, 405, 409, 410, 422, 501, 505] {
        server.requests.store(0, Ordering::SeqCst);
        let err = get_text(&client, &format!("{base}/status/{code}"))
            .await
            .unwrap_err();
        let Error::Status(status) = &err else {
            panic!("{code}: {err}")
        };
        assert_eq!(status.status().as_u16(), code);
        assert_eq!(status.url().path(), format!("/status/{code}"));
        assert_eq!(server.requests.load(Ordering::SeqCst), 1, "{code}");
    }
    // 1xx–3xx pass `check`.
    assert_eq!(
        get_text(&client, &format!("{base}/status/204"))
            .await
            .unwrap(),
        ""
    );
}

/// The `delay_ms` of the one retry of `url`, and the (paused) time the call took.
async fn retry_delay(url: &str) -> (u64, Duration) {
    let rec = Recorder::default();
    let _guard = rec.install();
    let start = tokio::time::Instant::now();
    assert_eq!(get_text(&client(), url).await.unwrap(), "ok");
    let took = start.elapsed();
    let retries: Vec<_> = rec
        .with("op", "http.get")
        .into_iter()
        .filter(|e| e.get("delay_ms").is_some())
        .collect();
    assert_eq!(retries.len(), 1, "{url}");
    (retries[0].get("delay_ms").unwrap().parse().unwrap(), took)
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_seconds_is_honoured() {
    let (base, _) = start().await;
    let (delay, took) = retry_delay(&format!("{base}/status/503/secs")).await;
    assert_eq!(delay, 2000);
    assert!(took >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured() {
    let (base, _) = start().await;
    let (delay, took) = retry_delay(&format!("{base}/status/429/date")).await;
    // An HTTP-date has whole seconds: "two seconds ahead" is between one and two from now.
    assert!((1000..=2000).contains(&delay), "{delay}");
    assert!(took >= Duration::from_millis(delay));
}

#[tokio::test(start_paused = true)]
async fn a_date_in_the_past_and_a_malformed_value_leave_the_backoff() {
    let (base, _) = start().await;
    let (delay, _) = retry_delay(&format!("{base}/status/503/past")).await;
    assert_eq!(delay, 100);
    let (base, _) = start().await;
    let (delay, _) = retry_delay(&format!("{base}/status/503/garbage")).await;
    assert_eq!(delay, 100);
}

#[tokio::test(start_paused = true)]
async fn a_hint_above_max_ends_the_retries() {
    let (base, server) = start().await;
    let rec = Recorder::default();
    let _guard = rec.install();
    let err = get_text(&client(), &format!("{base}/status/503/long"))
        .await
        .unwrap_err();
    let Error::Status(status) = err else { panic!() };
    assert_eq!(status.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    let events = rec.with("op", "http.get");
    assert_eq!(
        events.last().unwrap().get("reason"),
        Some("retry_after_too_long")
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rec = Recorder::default();
    let _guard = rec.install();
    let err = get_text(&client(), &format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    let Error::Transport(e) = err else { panic!() };
    assert!(e.is_connect());
    let events = rec.with("op", "http.get");
    assert_eq!(
        events.last().unwrap().get("reason"),
        Some("attempts_exhausted")
    );
}

/// A server that reads each request and closes the connection without an answer.
#[tokio::test(start_paused = true)]
async fn a_connection_closed_before_the_response_is_retried() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicU32::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = socket.read(&mut [0u8; 4096]).await;
            drop(socket);
        }
    });
    let err = get_text(&client(), &url).await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

fn never(_: &Error) -> bool {
    false
}

#[retry(attempts = 3, base = "100ms", jitter = "none", when = never, budget = "http_tests")]
async fn get_once(client: &reqwest::Client, url: &str) -> Result<String, Error> {
    let response = check(client.get(url).send().await?)?;
    Ok(response.text().await?)
}

#[tokio::test(start_paused = true)]
async fn an_explicit_when_overrides_the_impl() {
    let (base, server) = start().await;
    let _ = get_once(&client(), &format!("{base}/status/503"))
        .await
        .unwrap_err();
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[retry(
    attempts = 3,
    base = "100ms",
    jitter = "none",
    timeout = "1s",
    budget = "http_tests"
)]
async fn get_guarded(client: &reqwest::Client, url: &str) -> Result<String, Error> {
    let response = check(client.get(url).send().await?)?;
    Ok(response.text().await?)
}

#[tokio::test]
async fn a_guarded_fn_converts_the_timeout_and_keeps_the_statuses() {
    let (base, server) = start().await;
    let err = get_guarded(&client(), &format!("{base}/status/404"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Status(_)));
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}
