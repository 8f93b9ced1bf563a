//! Why a call stopped retrying and returned its last error: the reasons every log, stat and
//! metric names, in one fixed order.

use std::fmt;

/// Why a call stopped retrying and returned its last error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// Every attempt was used.
    AttemptsExhausted,
    /// `when` called the error permanent.
    PermanentError,
    /// The retry budget (or its concurrency cap) refused the retry.
    Budget,
    /// The deadline left no room for the next sleep, or ran out during an attempt.
    Deadline,
    /// The circuit breaker is open.
    BreakerOpen,
    /// The server's `retry_after` hint was above `max`.
    RetryAfterTooLong,
    /// A nested annotated call already retried this failure (only the innermost layer retries).
    RetriedBelow,
}

impl GiveUpReason {
    /// Every reason, in a fixed order.
    pub const ALL: [GiveUpReason; 7] = [
        GiveUpReason::AttemptsExhausted,
        GiveUpReason::PermanentError,
        GiveUpReason::Budget,
        GiveUpReason::Deadline,
        GiveUpReason::BreakerOpen,
        GiveUpReason::RetryAfterTooLong,
        GiveUpReason::RetriedBelow,
    ];

    /// The `reason` field of logs and the `reason` label of metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::AttemptsExhausted => "attempts_exhausted",
            GiveUpReason::PermanentError => "permanent_error",
            GiveUpReason::Budget => "budget_exhausted",
            GiveUpReason::Deadline => "deadline",
            GiveUpReason::BreakerOpen => "breaker_open",
            GiveUpReason::RetryAfterTooLong => "retry_after_too_long",
            GiveUpReason::RetriedBelow => "retried_below",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
