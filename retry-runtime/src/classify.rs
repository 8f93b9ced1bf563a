//! `Classify`: an error that knows whether it is transient (worth a retry) and what the server
//! hinted, with the impls for `std::io::Error` and the guard's own `GuardError`.

use crate::error::GuardError;
use std::io;
use std::time::Duration;

/// An error that knows whether the same call may succeed later, and when the server asked to
/// be called again.
///
/// A `#[retry]` fn whose error type implements `Classify` uses [`Classify::is_transient`] as
/// its `when` and [`Classify::retry_after`] as its `retry_after`, unless the attribute names
/// its own (an explicit key wins). An error type without an impl keeps the default: every
/// error is transient, no hint. The same holds for a generic error type `E` whose bounds do
/// not include `Classify` at the annotated fn.
///
/// Shipped impls: `std::io::Error`, `GuardError`, and, behind features, `http::Error`,
/// `http::StatusError` and `reqwest::Error` (`reqwest`), `tonic::Status` (`tonic`),
/// `anyhow::Error` (`anyhow`). Each impl's documentation lists what it calls transient and why.
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::Classify;
///
/// enum ApiError { Busy { retry_in_ms: u64 }, BadRequest }
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
/// assert!(!ApiError::BadRequest.is_transient());
/// assert_eq!(ApiError::Busy { retry_in_ms: 250 }.retry_after(), Some(Duration::from_millis(250)));
/// ```
pub trait Classify {
    /// Worth a retry: the same call may succeed later (a timeout, a reset connection, a 503).
    fn is_transient(&self) -> bool;

    /// The server's hint of the earliest useful retry (`Retry-After`, gRPC pushback).
    ///
    /// The delay before the next attempt is then the larger of this hint and the backoff, and
    /// a hint above the attribute's `max` ends the retries. The default is no hint.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Transient kinds: `ConnectionRefused`, `ConnectionReset`, `ConnectionAborted`,
/// `NotConnected`, `BrokenPipe`, `TimedOut`, `Interrupted`, `WouldBlock`, `UnexpectedEof`,
/// `HostUnreachable`, `NetworkUnreachable`, `NetworkDown`, `AddrNotAvailable`: the network
/// or the peer failed in a way the next attempt may not meet. Every other kind
/// (`NotFound`, `PermissionDenied`, `InvalidInput`, `InvalidData`, `Other`, …) is permanent:
/// the same call fails the same way.
///
/// An `io::Error` that carries a [`GuardError`] (as `From<GuardError>` makes it) is
/// classified as that `GuardError`.
///
/// ```
/// use std::io::{Error, ErrorKind};
/// use retry_runtime::Classify;
///
/// assert!(Error::from(ErrorKind::ConnectionReset).is_transient());
/// assert!(!Error::from(ErrorKind::PermissionDenied).is_transient());
/// ```
impl Classify for io::Error {
    fn is_transient(&self) -> bool {
        if let Some(guard) = self.get_ref().and_then(|e| e.downcast_ref::<GuardError>()) {
            return guard.is_transient();
        }
        is_transient_kind(self.kind())
    }
}

/// The io kinds that [`Classify for io::Error`](Classify#impl-Classify-for-Error) calls
/// transient.
pub(crate) fn is_transient_kind(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
            | Interrupted
            | WouldBlock
            | UnexpectedEof
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
            | AddrNotAvailable
    )
}

/// `Timeout` is transient (the next attempt gets a fresh `timeout`); `DeadlineExceeded` and
/// `BreakerOpen` are permanent (the call's time is up; the breaker said no).
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::{Classify, GuardError};
///
/// let timeout = GuardError::Timeout { op: "op", attempt: 1, after: Duration::from_millis(500) };
/// assert!(timeout.is_transient());
/// let open = GuardError::BreakerOpen { op: "op", breaker: "payments", retry_in: Duration::from_secs(5) };
/// assert!(!open.is_transient());
/// ```
impl Classify for GuardError {
    fn is_transient(&self) -> bool {
        matches!(self, GuardError::Timeout { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_are_split_as_documented() {
        use io::ErrorKind::*;
        for kind in [
            ConnectionRefused,
            ConnectionReset,
            ConnectionAborted,
            NotConnected,
            BrokenPipe,
            TimedOut,
            Interrupted,
            WouldBlock,
            UnexpectedEof,
            HostUnreachable,
            NetworkUnreachable,
            NetworkDown,
            AddrNotAvailable,
        ] {
            assert!(io::Error::from(kind).is_transient(), "{kind:?}");
        }
        for kind in [
            NotFound,
            PermissionDenied,
            AlreadyExists,
            InvalidInput,
            InvalidData,
            Unsupported,
            OutOfMemory,
            Other,
        ] {
            assert!(!io::Error::from(kind).is_transient(), "{kind:?}");
        }
        assert_eq!(io::Error::other("x").retry_after(), None);
    }

    #[test]
    fn an_io_error_holding_a_guard_error_is_classified_as_it() {
        let open = GuardError::BreakerOpen {
            op: "op",
            breaker: "b",
            retry_in: Duration::from_secs(1),
        };
        let deadline = GuardError::DeadlineExceeded {
            op: "op",
            attempt: 2,
            deadline: Duration::from_secs(1),
        };
        let timeout = GuardError::Timeout {
            op: "op",
            attempt: 1,
            after: Duration::from_secs(1),
        };
        assert!(!io::Error::from(open).is_transient());
        // `From<GuardError>` makes both `TimedOut`; only the per-attempt timeout is transient.
        assert!(!io::Error::from(deadline).is_transient());
        assert!(io::Error::from(timeout).is_transient());
    }
}
