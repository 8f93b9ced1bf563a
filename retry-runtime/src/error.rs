//! `GuardError`: the error stormguard itself produces when a timeout, the deadline or an open
//! breaker ends an attempt, and the conversion into the user's error type.

use std::fmt;
use std::time::Duration;

/// Why the guard (not the downstream) ended an attempt or a call.
///
/// Returned to the caller through the fn's own error type, which must implement
/// `From<GuardError>` when `timeout`, `deadline` or `breaker` is used.
///
/// ```
/// use retry_runtime::GuardError;
/// use std::time::Duration;
///
/// let e = GuardError::Timeout { op: "billing::fetch_invoice", attempt: 2, after: Duration::from_millis(500) };
/// assert!(e.is_timeout());
/// assert_eq!(e.to_string(), "billing::fetch_invoice: attempt 2 timed out after 500ms");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuardError {
    /// One attempt ran longer than `timeout` and was cancelled.
    Timeout {
        /// Operation name.
        op: &'static str,
        /// Which attempt (1-based).
        attempt: u32,
        /// How long it ran before it was cancelled.
        after: Duration,
    },
    /// The whole call ran out of its `deadline`; the running attempt was cancelled.
    DeadlineExceeded {
        /// Operation name.
        op: &'static str,
        /// Which attempt was running (1-based).
        attempt: u32,
        /// The deadline.
        deadline: Duration,
    },
    /// The circuit breaker is open: no call was made.
    BreakerOpen {
        /// Operation name.
        op: &'static str,
        /// Breaker name.
        breaker: &'static str,
        /// When the breaker will admit a probe again.
        retry_in: Duration,
    },
}

impl GuardError {
    /// True for a per-attempt timeout or an exceeded deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            GuardError::Timeout { .. } | GuardError::DeadlineExceeded { .. }
        )
    }

    /// True when an open circuit breaker refused the call.
    pub fn is_breaker_open(&self) -> bool {
        matches!(self, GuardError::BreakerOpen { .. })
    }
}

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardError::Timeout { op, attempt, after } => {
                write!(f, "{op}: attempt {attempt} timed out after {after:?}")
            }
            GuardError::DeadlineExceeded {
                op,
                attempt,
                deadline,
            } => write!(
                f,
                "{op}: deadline of {deadline:?} exceeded during attempt {attempt}"
            ),
            GuardError::BreakerOpen {
                op,
                breaker,
                retry_in,
            } => write!(
                f,
                "{op}: circuit breaker `{breaker}` is open; it probes again in {retry_in:?}"
            ),
        }
    }
}

impl std::error::Error for GuardError {}

impl From<GuardError> for std::io::Error {
    /// Timeouts become `ErrorKind::TimedOut`; an open breaker `ErrorKind::Other`.
    fn from(e: GuardError) -> Self {
        let kind = if e.is_timeout() {
            std::io::ErrorKind::TimedOut
        } else {
            std::io::ErrorKind::Other
        };
        std::io::Error::new(kind, e)
    }
}

/// The bound behind `timeout`, `deadline` and `breaker`: the fn's error type can carry a
/// [`GuardError`]. Implemented for every `E: From<GuardError>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold a `stormguard::GuardError`, which `timeout`, `deadline` and `breaker` return",
    label = "the error type of this fn must implement `From<stormguard::GuardError>`",
    note = "add `impl From<stormguard::GuardError> for {Self} {{ fn from(e: stormguard::GuardError) -> Self {{ … }} }}`, or drop `timeout`, `deadline` and `breaker` from #[retry]"
)]
pub trait FromGuardError: Sized {
    /// Wraps the guard's error into the user's error type.
    fn from_guard_error(e: GuardError) -> Self;
}

impl<E: From<GuardError>> FromGuardError for E {
    fn from_guard_error(e: GuardError) -> Self {
        E::from(e)
    }
}
