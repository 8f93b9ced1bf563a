//! Safe retries for async Rust, from one attribute.
//!
//! A retry with no backoff, no jitter and no limit turns one slow downstream into an outage:
//! every failure is multiplied by the number of attempts, all clients retry at the same
//! instant, and the downstream never gets the quiet it needs to recover. `#[retry]` makes the
//! safe thing the one-line thing: exponential backoff with jitter, async sleeps on tokio's
//! clock, per-attempt timeouts that really cancel, named circuit breakers, retry budgets that
//! keep a fleet from multiplying an outage, and structured attempt logs and stats.
//!
//! ```
//! use stormguard::retry;
//!
//! #[derive(Debug)]
//! struct FetchError;
//! impl std::fmt::Display for FetchError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("503") }
//! }
//!
//! #[retry(attempts = 3, backoff = "exp", base = "100ms", max = "2s", jitter)]
//! async fn fetch_invoice(id: u32) -> Result<String, FetchError> {
//!     if stormguard::attempt() < 3 { Err(FetchError) } else { Ok(format!("invoice {id}")) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! assert_eq!(fetch_invoice(7).await.unwrap(), "invoice 7");
//! # }
//! ```
//!
//! See [`retry`] for every key, [`breakers!`] and [`budgets!`] for the config blocks, and
//! [`stats()`] for the in-process counters.

#![warn(missing_docs)]

/// Retries the `async fn` (or blocking fn) it annotates, which must return `Result`.
///
/// ```
/// # #[derive(Debug)] struct E; impl std::fmt::Display for E { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("e") } }
/// #[stormguard::retry(attempts = 5, backoff = "linear", base = "50ms", max = "1s", jitter = "equal")]
/// async fn ping() -> Result<(), E> { Ok(()) }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { ping().await.unwrap(); }
/// ```
///
/// | key | meaning | default |
/// |---|---|---|
/// | `attempts = N` | total calls, the first included (N ≥ 1) | 3 |
/// | `backoff = "exp" \| "fixed" \| "linear"` | delay before retry k: base·factor^(k-1), base, base·k | "exp" |
/// | `base = "100ms"` | first delay | 100ms |
/// | `factor = 2` | growth of "exp" | 2 |
/// | `max = "2s"` | cap on any one delay | 2s |
/// | `jitter` / `jitter = "full" \| "equal" \| "decorrelated" \| "none"` | randomisation of each delay | "full" |
/// | `timeout = "500ms"` | per-attempt limit; the attempt is dropped (cancelled) when it passes | none |
/// | `deadline = "5s"` | limit on the whole call, attempts and sleeps together | none |
/// | `when = path` | `fn(&E) -> bool`: is this error transient? | `E`'s [`Classify`] impl, else every error |
/// | `retry_after = path` | `fn(&E) -> Option<Duration>`: the server's hint | `E`'s [`Classify`] impl, else none |
/// | `breaker = "name"` | the named circuit breaker guarding this downstream | none |
/// | `budget = "name"` | the named retry budget | the breaker's name, else one per call site |
/// | `name = "…"` | operation name in logs and stats | module path + fn name |
/// | `crate = "path"` | where this crate lives | `::stormguard` |
///
/// ## `when` and `retry_after`: which errors to retry, and the server's hint
///
/// ```
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// enum HttpError { Status(u16, Option<u64>), Connect }
/// # impl std::fmt::Display for HttpError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
///
/// fn is_transient(e: &HttpError) -> bool {
///     match e {
///         HttpError::Status(code, _) => *code >= 500 || *code == 429,
///         HttpError::Connect => true,
///     }
/// }
/// fn server_hint(e: &HttpError) -> Option<Duration> {
///     match e {
///         HttpError::Status(_, Some(secs)) => Some(Duration::from_secs(*secs)),
///         _ => None,
///     }
/// }
///
/// #[stormguard::retry(when = is_transient, retry_after = server_hint, max = "5s")]
/// async fn get() -> Result<(), HttpError> {
///     Err(HttpError::Status(404, None)) // permanent: returned at once, no retry
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// assert!(matches!(get().await, Err(HttpError::Status(404, _))));
/// # }
/// ```
///
/// ## `timeout`, `deadline` and `breaker`: the guard can end a call
///
/// ```
/// use stormguard::GuardError;
///
/// stormguard::breakers! {
///     inventory { consecutive_failures: 5, open_for: "30s" }
/// }
///
/// #[derive(Debug)]
/// enum Error { Down, Guard(GuardError) }
/// # impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
/// impl From<GuardError> for Error {
///     fn from(e: GuardError) -> Self { Error::Guard(e) }
/// }
///
/// #[stormguard::retry(timeout = "500ms", deadline = "2s", breaker = "inventory")]
/// async fn stock(sku: &str) -> Result<u32, Error> {
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await; // hangs: cut off at 500ms
///     Ok(sku.len() as u32)
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let Err(Error::Guard(e)) = stock("sku-1").await else { panic!() };
/// assert!(e.is_timeout());
/// # }
/// ```
///
/// `timeout`, `deadline` and `breaker` need `E: From<GuardError>` (on a blocking fn, which
/// takes no `timeout`, `deadline` only limits the sleeps and needs nothing).
///
/// # What it expands to
///
/// The fn keeps its signature; its body becomes a `static` call site whose policy names only
/// the keys written, and a loop that runs the body once per attempt and asks the runtime what
/// next. `#[retry] async fn fetch(x: u32) -> Result<u32, E> { Ok(x) }`, as the macro prints
/// it, 30 lines (`cargo expand` also expands linkme's attribute, which registers the call
/// site for the live configuration, 4 lines here, into 15: 41 in all). The judgement's
/// arguments are the error's formatter, `when`, `retry_after` (the error type's `Classify`
/// impl if it has one, else every error transient and no hint; a key written replaces its
/// line) and the result:
///
/// ```text
/// pub async fn fetch(x: u32) -> Result<u32, E> {
///     use ::stormguard::__private::{self as __stormguard, formatter::*};
///     #[__stormguard::linkme::distributed_slice(__stormguard::CALL_SITES)]
///     #[linkme(crate = __stormguard::linkme)]
///     static __STORMGUARD_SITE: __stormguard::Site =
///         __stormguard::Site::new(__stormguard::Policy::DEFAULT, "my_crate::fetch");
///     let mut __stormguard_call = __stormguard::Call::<(), ()>::start(&__STORMGUARD_SITE);
///     loop {
///         let __stormguard_delay = {
///             let __stormguard_result = __stormguard_call
///                 .attempt::<Result<u32, E>, _>(async {
///                     if false {
///                         return __stormguard::unreachable_output::<Result<u32, E>>();
///                     }
///                     Ok(x)
///                 })
///                 .await;
///             match __stormguard_call.after_attempt(
///                 (&&&__stormguard::ErrorType::of(&__stormguard_result)).__stormguard_formatter(),
///                 &(&&__stormguard::DefaultWhen::of(&__stormguard_result)).__stormguard_classify(),
///                 &(&&__stormguard::DefaultWhen::of(&__stormguard_result)).__stormguard_classify(),
///                 __stormguard_result,
///             ) {
///                 __stormguard::Verdict::Return(__stormguard_return) => return __stormguard_return,
///                 __stormguard::Verdict::Retry(__stormguard_delay) => __stormguard_delay,
///             }
///         };
///         __stormguard_call.sleep(__stormguard_delay).await;
///     }
/// }
/// ```
///
/// `timeout` and `deadline` make the attempt `guarded_attempt` (and the call
/// `Call::<_, Started>`, which keeps its start time); `breaker` asks `admit()` first; `hedge`
/// runs `hedge_next(…, || async { … })`, which starts each attempt from the closure; a
/// blocking fn runs `attempt_blocking(|| …)` and `sleep_blocking`.
pub use retry_macros::retry;

/// Declares named circuit breakers, once, in a config module of your crate (no init call).
///
/// ```
/// stormguard::breakers! {
///     payments { consecutive_failures: 5, open_for: "30s" }
///     search   { failure_rate: 0.5, window: "10s", min_calls: 20, open_for: "5s", half_open_probes: 2 }
/// }
/// assert_eq!(stormguard::breaker("payments").config().consecutive_failures(), Some(5));
/// ```
pub use retry_macros::breakers;

/// Declares named retry budgets, next to the breakers (no init call). Keys: `capacity`,
/// `ratio`, `min_per_sec`, `max_concurrent`, `window` (README, "Retry budgets").
///
/// ```
/// stormguard::budgets! {
///     payments { capacity: 50, ratio: 0.2, min_per_sec: 2, max_concurrent: 10 }
///     bulk     { ratio: 0.05, window: "30s" }
/// }
/// ```
pub use retry_macros::budgets;

/// An error that knows whether it is transient: where the fn's error type implements it and
/// the attribute has no `when` (resp. `retry_after`), the call site uses the impl.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use stormguard::Classify;
///
/// #[derive(Debug)]
/// enum ApiError { Busy { retry_in_ms: u64 }, BadRequest }
/// # impl std::fmt::Display for ApiError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
///
/// impl Classify for ApiError {
///     fn is_transient(&self) -> bool {
///         matches!(self, ApiError::Busy { .. })
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             ApiError::Busy { retry_in_ms } => Some(Duration::from_millis(*retry_in_ms)),
///             ApiError::BadRequest => None,
///         }
///     }
/// }
///
/// static CALLS: AtomicU32 = AtomicU32::new(0);
///
/// #[stormguard::retry(attempts = 5)] // no `when`, no `retry_after`: the impl decides
/// async fn submit() -> Result<(), ApiError> {
///     match CALLS.fetch_add(1, Ordering::SeqCst) {
///         0 => Err(ApiError::Busy { retry_in_ms: 300 }), // retried after 300ms
///         _ => Err(ApiError::BadRequest),                // permanent: returned at once
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let start = tokio::time::Instant::now();
/// assert!(matches!(submit().await, Err(ApiError::BadRequest)));
/// assert_eq!(CALLS.load(Ordering::SeqCst), 2);
/// assert!(start.elapsed() >= Duration::from_millis(300));
/// # }
/// ```
///
/// An explicit `when = path` (or `retry_after = path`) wins over the impl; an error type
/// without an impl, or a generic `E` whose bounds do not include `Classify`, keeps the default
/// (every error is transient, no hint).
pub use retry_runtime::Classify;

pub use retry_runtime::{
    attempt, set_retry_success_alert, stats, undeclared_breakers, undeclared_budgets, Backoff,
    Breaker, BreakerConfig, BreakerCounts, BreakerState, BreakerStats, Budget, BudgetConfig,
    BudgetStats, Force, GiveUpReason, GiveUps, GuardError, Hedge, Jitter, OpStats, Permit, Policy,
    Stats, Window,
};

/// The circuit breaker called `name`: the one declared in a [`breakers!`] block, else the one
/// a call site uses with the defaults. A name that no block declares and no call site uses
/// gets one inert closed breaker that nothing else uses (and one warning per process): a
/// lookup never grows memory, and [`undeclared_breakers`] lists only the names call sites use.
///
/// ```
/// stormguard::breakers! { docs_handle { consecutive_failures: 3 } }
/// assert_eq!(stormguard::breaker("docs_handle").state(), stormguard::BreakerState::Closed);
/// ```
pub fn breaker(name: &str) -> &'static Breaker {
    retry_runtime::__private::breaker_by_name(name)
}

/// Seeds the jitter generator of the current thread, so that a simulation or a test on a
/// current-thread runtime draws the same delays on every run.
///
/// ```
/// stormguard::seed_jitter(42);
/// ```
pub fn seed_jitter(seed: u64) {
    retry_runtime::__private::seed_jitter(seed);
}

/// Live configuration (default feature `config`): override the policy of any `#[retry]`
/// operation, and the limits of any breaker or budget, by name, from a TOML file and
/// `STORMGUARD__…` environment variables, at start-up (`STORMGUARD_CONFIG=path`) and while
/// the program runs; with a kill switch (`enabled = false`) and manual breaker control
/// (`force`). See the README section "Changing policies without a rebuild".
///
/// ```
/// #[stormguard::retry(attempts = 3, name = "docs::fetch")]
/// async fn fetch() -> Result<(), std::io::Error> { Ok(()) }
///
/// stormguard::config::apply(r#"
///     [retry."docs::fetch"]
///     attempts = 5
/// "#).unwrap();
/// assert!(stormguard::config::current().contains("attempts = 5  # <text>:3"));
///
/// let err = stormguard::config::apply("[retry.\"docs::fecth\"]\nattempts = 5\n").unwrap_err();
/// assert!(err.to_string().contains("did you mean `docs::fetch`?"), "{err}");
/// # stormguard::config::apply("").unwrap();
/// ```
#[cfg(feature = "config")]
pub mod config {
    pub use retry_runtime::config::{apply, current, load, watch, ConfigError, Problem};
}

/// HTTP through reqwest (feature `reqwest`): [`check`](http::check) turns an error status
/// into an error that knows whether it is transient and carries the server's `Retry-After`.
///
/// The whole client side of a retried fetch is the annotated fn:
///
/// ```
/// # use axum::{http::StatusCode, routing::get, Router};
/// # use std::sync::atomic::{AtomicU32, Ordering};
/// # static SEEN: AtomicU32 = AtomicU32::new(0);
/// #[stormguard::retry(attempts = 4, timeout = "2s")]
/// async fn fetch_invoice(client: &reqwest::Client, url: &str) -> Result<String, stormguard::http::Error> {
///     let response = stormguard::http::check(client.get(url).send().await?)?;
///     Ok(response.text().await?)
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let app = Router::new()
/// #     .route("/invoice/7", get(|| async {
/// #         match SEEN.fetch_add(1, Ordering::SeqCst) {
/// #             0 => Err((StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")])),
/// #             _ => Ok("invoice 7"),
/// #         }
/// #     }));
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// # let base = format!("http://{}", listener.local_addr().unwrap());
/// # tokio::spawn(async move { axum::serve(listener, app).await });
/// let client = reqwest::Client::new();
/// // The local server answers 503 with `Retry-After: 0` once, then 200; anything else is 404.
/// assert_eq!(fetch_invoice(&client, &format!("{base}/invoice/7")).await.unwrap(), "invoice 7");
/// let error = fetch_invoice(&client, &format!("{base}/invoice/8")).await.unwrap_err();
/// let stormguard::http::Error::Status(status) = error else { panic!("{error}") };
/// assert_eq!(status.status(), 404); // returned after one attempt
/// # assert_eq!(SEEN.load(Ordering::SeqCst), 2);
/// # }
/// ```
///
/// Transient statuses: 408, 429, 500, 502, 503, 504 (the AWS SDK's 5xx list, plus 408 and
/// 429 as Microsoft's HTTP resilience handler retries them); every other status is
/// permanent. Transient transport errors: timeouts, connect errors, a connection closed or
/// reset before the response. `Retry-After` is read in both its forms (seconds and
/// HTTP-date, see [`parse_retry_after`](http::parse_retry_after)); the delay is then the
/// larger of it and the backoff, and a hint above `max` ends the retries.
#[cfg(feature = "reqwest")]
pub mod http {
    pub use retry_runtime::http::{check, parse_retry_after, Error, StatusError};
}

/// gRPC through tonic (feature `tonic`): `Classify for tonic::Status` retries only
/// `UNAVAILABLE` (Google AIP-194) and takes the server's `grpc-retry-pushback-ms` trailer as
/// the hint; a negative or unparsable pushback means "do not retry" (gRFC A6).
///
/// ```
/// use stormguard::grpc::RETRY_PUSHBACK_MS;
/// use tonic::{metadata::MetadataMap, Code, Status};
///
/// static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
///
/// #[stormguard::retry(attempts = 3, max = "2s")] // no `when`: the impl decides
/// async fn lookup() -> Result<u32, Status> {
///     if CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
///         let mut trailers = MetadataMap::new();
///         trailers.insert(RETRY_PUSHBACK_MS, "300".parse().unwrap());
///         return Err(Status::with_metadata(Code::Unavailable, "restarting", trailers));
///     }
///     Err(Status::not_found("no such item")) // permanent: returned at once
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let start = tokio::time::Instant::now();
/// assert_eq!(lookup().await.unwrap_err().code(), Code::NotFound);
/// assert!(start.elapsed() >= std::time::Duration::from_millis(300)); // the pushback
/// assert_eq!(CALLS.load(std::sync::atomic::Ordering::SeqCst), 2);
/// # }
/// ```
///
/// `tonic::Status` has no `From<GuardError>`, so a fn that returns it takes no `timeout`,
/// `deadline` or `breaker`; wrap it in an error type of your own for those (with a
/// `Classify` impl that asks the status).
#[cfg(feature = "tonic")]
pub mod grpc {
    pub use retry_runtime::grpc::RETRY_PUSHBACK_MS;
}

/// What generated code names. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use core::option::Option::{self, None, Some};
    pub use core::result::Result::{Err, Ok};
    pub use core::time::Duration;
    pub use retry_runtime::__private::default_when::DefaultWhen;
    pub use retry_runtime::__private::describe::ErrorType;

    /// The autoref-dispatch traits (error formatter, error slot, default `when`), glob-imported by generated
    /// code: only these names, none a user's body could mean.
    pub mod formatter {
        pub use retry_runtime::__private::default_when::{
            ViaClassify as __StormguardViaClassify, ViaDefault as __StormguardViaDefault,
        };
        pub use retry_runtime::__private::describe::{
            ViaDebug as __StormguardViaDebug, ViaDisplay as __StormguardViaDisplay,
            ViaTypeName as __StormguardViaTypeName,
        };
        pub use retry_runtime::__private::{
            KeepNoError as __StormguardKeepNoError, KeepSendError as __StormguardKeepSendError,
        };
    }
    pub use retry_runtime::__private::{
        linkme, BreakerSlot, Call, ErrorKept, Hedging, KeepError, NoGuard, ReturnsResult, Site,
        Started, StartedBlocking, Verdict, WithGuard, CALL_SITES, DECLARED_BREAKERS,
        DECLARED_BUDGETS,
    };
    pub use retry_runtime::{
        Backoff, Breaker, BreakerConfig, Budget, BudgetConfig, Hedge, Jitter, Policy, Window,
    };

    /// True while the `[fleet]` names are shared through Redis (feature `redis`).
    #[cfg(feature = "redis")]
    pub use retry_runtime::__private::fleet_connected;

    /// Only names the type `R`, so that the attempt's body is checked against it; never called.
    #[inline(always)]
    pub fn unreachable_output<R>() -> R {
        unreachable!("stormguard: this branch only pins the attempt's output type")
    }
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
