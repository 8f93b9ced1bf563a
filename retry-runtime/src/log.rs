//! The attempt logs: one `retry` span per failing call and the `tracing` events for a retry,
//! a timed-out attempt and a give-up. Field names here are public API (see the README).

use crate::describe::Described;
use crate::give_up::GiveUpReason;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::Span;

/// The `target` of every stormguard event and span.
pub const TARGET: &str = "stormguard";

static NEXT_CALL_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id tying the attempts of one call together (`call_id` field).
pub(crate) fn next_call_id() -> u64 {
    NEXT_CALL_ID.fetch_add(1, Ordering::Relaxed)
}

/// The span of one call, opened at its first failure (the success path opens none).
pub(crate) fn call_span(op: &'static str, breaker: Option<&'static str>, call_id: u64) -> Span {
    tracing::info_span!(target: TARGET, "retry", op, breaker, call_id)
}

/// What every event of one call carries.
pub(crate) struct Fields {
    pub op: &'static str,
    pub upstream: &'static str,
    pub call_id: u64,
    pub attempt: u32,
    pub max_attempts: u32,
}

/// One event of a call: the fields every call event carries (named once, here: they are
/// public API), then the event's own fields and its message.
macro_rules! call_event {
    ($level:ident, $f:expr, { $($field:tt)* }, $($message:tt)+) => {
        tracing::$level!(
            target: TARGET,
            op = $f.op,
            retry_attempt = $f.attempt,
            max_attempts = $f.max_attempts,
            upstream = $f.upstream,
            call_id = $f.call_id,
            $($field)*
            $($message)+
        )
    };
}

pub(crate) fn retrying<E>(f: &Fields, error: Described<'_, E>, delay: Duration) {
    call_event!(
        warn,
        f,
        { error = %error, delay_ms = delay.as_millis() as u64, },
        "attempt {} of {} failed; retrying in {:?}",
        f.attempt,
        f.max_attempts,
        delay,
    );
}

pub(crate) fn gave_up<E>(f: &Fields, error: Described<'_, E>, reason: GiveUpReason) {
    call_event!(
        error,
        f,
        { error = %error, reason = reason.as_str(), },
        "giving up after attempt {} of {}: {}",
        f.attempt,
        f.max_attempts,
        reason,
    );
}

/// A call refused by an open breaker before any attempt reached the downstream: the breaker's
/// own transition events tell the story, so each fast failure is only a `debug` event (an
/// open breaker in front of heavy traffic would otherwise flood the error log).
pub(crate) fn failed_fast<E>(f: &Fields, error: Described<'_, E>) {
    call_event!(
        debug,
        f,
        { error = %error, reason = GiveUpReason::BreakerOpen.as_str(), },
        "failing fast: {error}",
    );
}

pub(crate) fn timed_out(f: &Fields, timeout: Duration) {
    call_event!(
        warn,
        f,
        { timeout_ms = timeout.as_millis() as u64, },
        "attempt {} timed out after {:?}; cancelled",
        f.attempt,
        timeout,
    );
}

/// A hedge starts beside the attempts in flight (`debug`: hedges are routine).
pub(crate) fn hedging(f: &Fields, attempt: u32, delay: Duration) {
    call_event!(
        debug,
        f,
        { hedge_attempt = attempt, delay_ms = delay.as_millis() as u64, },
        "attempt {} of {} starts beside the running one after {:?}",
        attempt,
        f.max_attempts,
        delay,
    );
}

/// A hedge that was due was not started (`why`: "budget" or "breaker").
pub(crate) fn hedge_skipped(op: &'static str, attempt: u32, why: &'static str) {
    tracing::debug!(
        target: TARGET,
        op,
        hedge_attempt = attempt,
        reason = why,
        "hedge skipped ({why}); the running attempt goes on"
    );
}

pub(crate) fn blocking_sleep_in_runtime(op: &'static str) {
    tracing::warn!(
        target: TARGET,
        op,
        "#[retry] on the sync fn `{op}` sleeps with std::thread::sleep while a tokio runtime \
         polls this thread (a task on a worker, where every task queued there waits, or a \
         `block_on` future); make the fn `async` to get non-blocking sleeps, or call it through \
         `tokio::task::spawn_blocking`"
    );
}
