//! gRPC through tonic (feature `tonic`): which statuses are transient (Google AIP-194) and the
//! server's retry pushback (gRFC A6) as the `retry_after` hint.

use crate::classify::Classify;
use std::time::Duration;

/// The metadata key of gRPC retry pushback (gRFC A6): the server's delay, in milliseconds,
/// before the client may retry; a negative or unparsable value means "do not retry".
///
/// ```
/// use retry_runtime::{grpc::RETRY_PUSHBACK_MS, Classify};
/// use tonic::{metadata::MetadataMap, Code, Status};
///
/// let mut trailers = MetadataMap::new();
/// trailers.insert(RETRY_PUSHBACK_MS, "250".parse().unwrap());
/// let status = Status::with_metadata(Code::Unavailable, "overloaded", trailers);
/// assert_eq!(status.retry_after(), Some(std::time::Duration::from_millis(250)));
/// ```
pub const RETRY_PUSHBACK_MS: &str = "grpc-retry-pushback-ms";

/// What the server's pushback says.
enum Pushback {
    /// No pushback: the backoff decides.
    Absent,
    /// Retry no sooner than this.
    After(Duration),
    /// Negative or unparsable: do not retry.
    Stop,
}

fn pushback(status: &tonic::Status) -> Pushback {
    let Some(value) = status.metadata().get(RETRY_PUSHBACK_MS) else {
        return Pushback::Absent;
    };
    match value.to_str().ok().map(str::trim).map(str::parse::<i64>) {
        Some(Ok(ms)) if ms >= 0 => Pushback::After(Duration::from_millis(ms as u64)),
        _ => Pushback::Stop,
    }
}

/// Only `UNAVAILABLE` is transient, as Google's AIP-194 advises: it is the one code that
/// means "the request was not processed, try again". `DEADLINE_EXCEEDED`, `ABORTED`,
/// `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNKNOWN` and the rest are permanent here (the call may
/// have run, or will fail the same way); name a `when` to retry them.
///
/// The `grpc-retry-pushback-ms` trailer (gRFC A6) is the hint: `n ≥ 0` is a delay of n ms
/// (the larger of it and the backoff is slept, and one above `max` ends the retries); a
/// negative or unparsable value means the server asks not to be retried, so the status is
/// then permanent.
///
/// ```
/// use retry_runtime::{grpc::RETRY_PUSHBACK_MS, Classify};
/// use tonic::{metadata::MetadataMap, Code, Status};
///
/// assert!(Status::unavailable("restarting").is_transient());
/// assert!(!Status::not_found("no such invoice").is_transient());
///
/// let mut trailers = MetadataMap::new();
/// trailers.insert(RETRY_PUSHBACK_MS, "-1".parse().unwrap());
/// let stop = Status::with_metadata(Code::Unavailable, "draining", trailers);
/// assert!(!stop.is_transient()); // the server said: do not retry
/// ```
impl Classify for tonic::Status {
    fn is_transient(&self) -> bool {
        self.code() == tonic::Code::Unavailable && !matches!(pushback(self), Pushback::Stop)
    }

    fn retry_after(&self) -> Option<Duration> {
        match pushback(self) {
            Pushback::After(delay) => Some(delay),
            Pushback::Absent | Pushback::Stop => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{metadata::MetadataMap, Code, Status};

    fn with_pushback(code: Code, value: &str) -> Status {
        let mut trailers = MetadataMap::new();
        trailers.insert(RETRY_PUSHBACK_MS, value.parse().unwrap());
        Status::with_metadata(code, "m", trailers)
    }

    #[test]
    fn only_unavailable_is_transient() {
        let transient: Vec<Code> = (0..=16)
            .map(Code::from_i32)
            .filter(|&code| Status::new(code, "m").is_transient())
            .collect();
        assert_eq!(transient, [Code::Unavailable]);
    }

    #[test]
    fn pushback_is_the_hint_and_a_bad_one_stops() {
        let ok = with_pushback(Code::Unavailable, "1500");
        assert!(ok.is_transient());
        assert_eq!(ok.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(
            with_pushback(Code::Unavailable, "0").retry_after(),
            Some(Duration::ZERO)
        );
        for bad in ["-1", "-1500", "soon", "1.5", ""] {
            let s = with_pushback(Code::Unavailable, bad);
            assert!(!s.is_transient(), "{bad:?}");
            assert_eq!(s.retry_after(), None, "{bad:?}");
        }
        assert_eq!(Status::unavailable("m").retry_after(), None);
        // Pushback does not make a permanent code transient.
        assert!(!with_pushback(Code::NotFound, "100").is_transient());
    }
}
