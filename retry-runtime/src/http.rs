//! HTTP through reqwest (feature `reqwest`): a response's status as an error that knows
//! whether it is transient, the `Retry-After` header in both its forms, and reqwest's errors.
//!
//! The whole client side of a retried fetch is the annotated fn:
//!
//! ```text
//! #[stormguard::retry(attempts = 4, timeout = "2s")]
//! async fn fetch_invoice(client: &reqwest::Client, url: &str) -> Result<String, stormguard::http::Error> {
//!     let response = stormguard::http::check(client.get(url).send().await?)?;
//!     Ok(response.text().await?)
//! }
//! ```
//!
//! [`Error`] implements [`Classify`], so the fn needs no `when` and no `retry_after`: a 503 is
//! retried after the server's `Retry-After`, a 404 is returned at once.
//!
//! # Which errors are transient
//!
//! Statuses 408, 429, 500, 502, 503 and 504: the AWS SDK's list of transient 5xx responses
//! (500, 502, 503, 504), plus 408 (Request Timeout) and 429 (Too Many Requests) as
//! Microsoft's HTTP resilience handler (`Microsoft.Extensions.Http.Resilience`) and
//! TrueLayer's `reqwest-retry` also retry them. Every other status is permanent: a 4xx fails
//! the same way every time, and a 501 or 505 will not start working.
//!
//! Transport errors: a timeout, a connect error (refused, DNS, unreachable), or a connection
//! closed or reset before the response came (hyper's incomplete message or canceled request,
//! an io `ConnectionReset` or `ConnectionAborted` in the source chain) are transient. Body,
//! decode, builder and redirect errors are permanent: the server answered, or the request
//! itself is wrong.

use crate::classify::Classify;
use crate::error::GuardError;
use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime};

/// Passes a 1xx–3xx response; turns any other into a [`StatusError`] that keeps the status,
/// the URL and the parsed `Retry-After` (read against the system clock, since an HTTP-date is
/// wall-clock time). The response body is dropped.
///
/// ```
/// # use retry_runtime::http::check;
/// # async fn serve(status: &'static str, header: &'static str) -> String {
/// #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// #     let url = format!("http://{}/", listener.local_addr().unwrap());
/// #     tokio::spawn(async move {
/// #         while let Ok((mut socket, _)) = listener.accept().await {
/// #             let _ = socket.read(&mut [0u8; 4096]).await;
/// #             let reply = format!("HTTP/1.1 {status}\r\n{header}content-length: 0\r\nconnection: close\r\n\r\n");
/// #             let _ = socket.write_all(reply.as_bytes()).await;
/// #         }
/// #     });
/// #     url
/// # }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let url = serve("503 Service Unavailable", "Retry-After: 2\r\n").await; // a local server
/// let client = reqwest::Client::new();
/// let error = check(client.get(&url).send().await.unwrap()).unwrap_err();
/// assert_eq!(error.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(2)));
/// # }
/// ```
pub fn check(response: reqwest::Response) -> Result<reqwest::Response, StatusError> {
    let status = response.status();
    if status.is_informational() || status.is_success() || status.is_redirection() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    Err(StatusError {
        status,
        url: response.url().clone(),
        retry_after,
    })
}

/// Parses a `Retry-After` value (RFC 9110, section 10.2.3): `delay-seconds` (`"120"`) or an
/// HTTP-date in any of its three formats (IMF-fixdate `"Sun, 06 Nov 1994 08:49:37 GMT"`,
/// the obsolete RFC 850 `"Sunday, 06-Nov-94 08:49:37 GMT"` and asctime
/// `"Sun Nov  6 08:49:37 1994"`), as the delay from `now`.
///
/// A date in the past is a zero delay; anything else (a negative or fractional number, a
/// malformed date, an empty value) is `None`, as if the header were absent. Surrounding
/// whitespace is ignored; a number of seconds too large for a `Duration` saturates.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use retry_runtime::http::parse_retry_after;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_775); // 1994-11-06 08:49:35 GMT
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(2)));
/// assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), Some(Duration::from_secs(2)));
/// assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), Some(Duration::from_secs(2)));
/// assert_eq!(parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a response status is worth a retry: 408, 429, 500, 502, 503, 504 (see the
/// [module](self) documentation for the sources).
fn is_transient_status(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A response whose status is not 1xx–3xx, as [`check`] makes it: the status, the URL and the
/// server's `Retry-After`.
///
/// ```
/// # use retry_runtime::{http::check, Classify};
/// # async fn serve(status: &'static str, header: &'static str) -> String {
/// #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// #     let url = format!("http://{}/", listener.local_addr().unwrap());
/// #     tokio::spawn(async move {
/// #         while let Ok((mut socket, _)) = listener.accept().await {
/// #             let _ = socket.read(&mut [0u8; 4096]).await;
/// #             let reply = format!("HTTP/1.1 {status}\r\n{header}content-length: 0\r\nconnection: close\r\n\r\n");
/// #             let _ = socket.write_all(reply.as_bytes()).await;
/// #         }
/// #     });
/// #     url
/// # }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let url = serve("404 Not Found", "").await; // a local server
/// let client = reqwest::Client::new();
/// let error = check(client.get(&url).send().await.unwrap()).unwrap_err();
/// assert_eq!(error.status().as_u16(), 404);
/// assert_eq!(error.url().as_str(), url);
/// assert!(!error.is_transient()); // a 404 is not retried
/// assert!(error.to_string().starts_with("HTTP 404 Not Found from http://127.0.0.1:"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct StatusError {
    status: reqwest::StatusCode,
    url: reqwest::Url,
    retry_after: Option<Duration>,
}

impl StatusError {
    /// The response's status.
    pub fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    /// The server's `Retry-After`, parsed by [`parse_retry_after`] when the response came.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The URL of the response (after redirects).
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} from {}", self.status, self.url)?;
        if let Some(after) = self.retry_after {
            write!(f, " (Retry-After: {after:?})")?;
        }
        Ok(())
    }
}

impl StdError for StatusError {}

/// 408, 429, 500, 502, 503 and 504 are transient; the hint is the response's `Retry-After`.
impl Classify for StatusError {
    fn is_transient(&self) -> bool {
        is_transient_status(self.status)
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// A timeout, a connect error, or a connection closed or reset before the response is
/// transient; so is an error of `error_for_status` with a transient status. Body, decode,
/// builder and redirect errors are permanent.
///
/// ```
/// # use retry_runtime::Classify;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // A port nobody listens on: the connection is refused.
/// let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
/// let error = reqwest::get(format!("http://127.0.0.1:{port}/")).await.unwrap_err();
/// assert!(error.is_connect() && error.is_transient());
/// # }
/// ```
impl Classify for reqwest::Error {
    fn is_transient(&self) -> bool {
        if let Some(status) = self.status() {
            return is_transient_status(status);
        }
        // First: reqwest reports a timeout while reading the body as a body error too.
        if self.is_timeout() || self.is_connect() {
            return true;
        }
        if self.is_body() || self.is_decode() || self.is_builder() || self.is_redirect() {
            return false;
        }
        closed_before_response(self)
    }
}

/// A connection closed or reset before the response came, somewhere in `error`'s sources.
fn closed_before_response(error: &reqwest::Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_canceled() {
                return true;
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ) {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

/// Everything a retried HTTP call can fail with: an error status, a transport error, or the
/// guard's own [`GuardError`] (which `timeout`, `deadline` and `breaker` need). `?` converts
/// all three. Its `Display` and `source()` are the inner error's.
///
/// ```
/// # use retry_runtime::{http, Classify, GuardError};
/// # use std::time::Duration;
/// let timeout = GuardError::Timeout { op: "fetch", attempt: 1, after: Duration::from_secs(2) };
/// let error = http::Error::from(timeout);
/// assert!(error.is_transient()); // a timed-out attempt is retried
/// assert!(matches!(error, http::Error::Guard(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a status that is not 1xx–3xx.
    Status(StatusError),
    /// No usable answer: connect error, timeout, reset connection, unreadable body.
    Transport(reqwest::Error),
    /// stormguard ended the attempt: a timeout, the deadline, an open breaker.
    Guard(GuardError),
}

impl From<StatusError> for Error {
    fn from(e: StatusError) -> Self {
        Error::Status(e)
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error::Transport(e)
    }
}

impl From<GuardError> for Error {
    fn from(e: GuardError) -> Self {
        Error::Guard(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Status(e) => e.fmt(f),
            Error::Transport(e) => e.fmt(f),
            Error::Guard(e) => e.fmt(f),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Status(e) => e.source(),
            Error::Transport(e) => e.source(),
            Error::Guard(e) => e.source(),
        }
    }
}

/// As the error it holds: [`StatusError`]'s statuses and `Retry-After`, `reqwest::Error`'s
/// transport errors, [`GuardError`]'s timeout.
impl Classify for Error {
    fn is_transient(&self) -> bool {
        match self {
            Error::Status(e) => e.is_transient(),
            Error::Transport(e) => e.is_transient(),
            Error::Guard(e) => e.is_transient(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status(e) => e.retry_after(),
            Error::Transport(e) => e.retry_after(),
            Error::Guard(e) => e.retry_after(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 1994-11-06 08:49:35 GMT, two seconds before RFC 9110's example date.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_775)
    }

    #[test]
    fn delay_seconds() {
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("2", now()), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120\t", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn the_three_date_formats() {
        let two = Some(Duration::from_secs(2));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now()),
            two
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now()),
            two
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now()), two);
    }

    #[test]
    fn a_past_date_is_zero() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_none() {
        for value in [
            "",
            " ",
            "-1",
            "+5",
            "1.5",
            "2s",
            "soon",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "06 Nov 1994 08:49:37 GMT",
            "١٢", // non-ASCII digits
        ] {
            assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
        }
    }

    #[test]
    fn statuses_are_split_as_documented() {
        let transient: Vec<u16> = (100..1000)
            .filter(|&code| is_transient_status(reqwest::StatusCode::from_u16(code).unwrap()))
            .collect();
        assert_eq!(transient, [408, 429, 500, 502, 503, 504]);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_string(value in any::<String>(), secs in 0u64..253_402_300_799) {
            let _ = parse_retry_after(&value, SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        }

        #[test]
        fn never_panics_on_date_like_strings(value in "[A-Za-z]{3,9},? [0-9 ]{1,2}[- ][A-Za-z]{3}[- ][0-9]{2,4} [0-9:]{8}( GMT)?") {
            let _ = parse_retry_after(&value, now());
        }

        #[test]
        fn round_trips_httpdate_output(date in 0u64..253_402_300_799, now in 0u64..253_402_300_799) {
            let date_t = SystemTime::UNIX_EPOCH + Duration::from_secs(date);
            let now_t = SystemTime::UNIX_EPOCH + Duration::from_secs(now);
            let value = httpdate::fmt_http_date(date_t);
            prop_assert_eq!(
                parse_retry_after(&value, now_t),
                Some(Duration::from_secs(date.saturating_sub(now)))
            );
        }

        #[test]
        fn round_trips_delay_seconds(secs in any::<u64>()) {
            prop_assert_eq!(parse_retry_after(&secs.to_string(), now()), Some(Duration::from_secs(secs)));
        }
    }
}
