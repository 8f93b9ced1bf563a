//! The user's `when` and `retry_after` as the call sees them: traits over `fn(&E) -> bool` and
//! `fn(&E) -> Option<Duration>`, with pointed messages for a wrong signature.

use std::time::Duration;

/// `when = path`: is this error transient (worth a retry)?
#[diagnostic::on_unimplemented(
    message = "`when` must name a fn(&{E}) -> bool",
    label = "expected a fn taking `&{E}` and returning `bool`",
    note = "write `fn is_transient(e: &{E}) -> bool {{ … }}` and `when = is_transient`"
)]
pub trait Transient<E> {
    /// True to retry.
    fn is_transient(&self, error: &E) -> bool;
}

impl<E, F: Fn(&E) -> bool> Transient<E> for F {
    #[inline]
    fn is_transient(&self, error: &E) -> bool {
        self(error)
    }
}

/// `retry_after = path`: the server's hint for the next delay.
#[diagnostic::on_unimplemented(
    message = "`retry_after` must name a fn(&{E}) -> Option<std::time::Duration>",
    label = "expected a fn taking `&{E}` and returning `Option<Duration>`",
    note = "write `fn hint(e: &{E}) -> Option<std::time::Duration> {{ … }}` and `retry_after = hint`"
)]
pub trait RetryHint<E> {
    /// The delay the server asked for, if any.
    fn retry_after(&self, error: &E) -> Option<Duration>;
}

impl<E, F: Fn(&E) -> Option<Duration>> RetryHint<E> for F {
    #[inline]
    fn retry_after(&self, error: &E) -> Option<Duration> {
        self(error)
    }
}
