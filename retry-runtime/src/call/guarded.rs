//! The guarded attempt: breaker admission, the per-attempt `timeout` and the call's
//! `deadline` around one attempt, cancelling (dropping) the attempt the moment a limit passes.

use super::{Call, ErrorSlot, PermitSlot, StartTime, Timer};
use crate::error::{FromGuardError, GuardError};
use crate::give_up::GiveUpReason;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

impl<L: PermitSlot, S: StartTime> Call<L, S> {
    /// The next attempt, for a policy with `timeout`, `deadline` or `breaker`.
    ///
    /// Asks the breaker first (refused: no call is made; the first attempt returns
    /// `GuardError::BreakerOpen`, a later one the last real error). Then runs the body under
    /// the smaller of `timeout` and what is left of the deadline; when that passes, the body
    /// is dropped at once, before anything else happens, and the attempt returns
    /// `GuardError::Timeout` (or `DeadlineExceeded`).
    #[inline]
    pub fn guarded_attempt<F, T, E>(&mut self, body: F) -> Guarded<'_, F, L, S>
    where
        F: Future<Output = Result<T, E>>,
        E: FromGuardError,
        L::Kept: ErrorSlot<E>,
    {
        self.scope.next();
        Guarded {
            call: self,
            body: Some(body),
            timer: None,
            limit: Limit::NOT_ADMITTED,
        }
    }

    /// The next attempt of a blocking fn with a `breaker` (blocking fns take no `timeout`).
    pub fn guarded_attempt_blocking<T, E>(
        &mut self,
        body: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: FromGuardError,
        L::Kept: ErrorSlot<E>,
    {
        match self.admit() {
            Ok(()) => self.in_attempt(body),
            Err(retry_in) => self.refused_attempt(retry_in),
        }
    }

    /// Before the next attempt of a policy with a `breaker` and neither `timeout` nor
    /// `deadline`: counts the attempt and asks the breaker. Admitted, the body runs as a
    /// plain attempt ([`Call::admitted_attempt`]), without the timer's bookkeeping; refused,
    /// [`Call::refused_attempt`] is the attempt's outcome. The macro emits the `match`, so
    /// that the attempt's future is the plain one.
    #[inline]
    pub fn admit(&mut self) -> Result<(), Duration> {
        self.scope.next();
        self.ask_breaker()
    }

    /// The outcome of an attempt the breaker refused (see [`Call::admit`]): as
    /// [`guarded_attempt`](Call::guarded_attempt)'s, the last real error, or
    /// `GuardError::BreakerOpen` for a first attempt.
    #[cold]
    #[inline(never)]
    pub fn refused_attempt<T, E>(&mut self, retry_in: Duration) -> Result<T, E>
    where
        E: FromGuardError,
        L::Kept: ErrorSlot<E>,
    {
        Err(self.refused(retry_in))
    }

    /// Asks the breaker (if any) for a permit, held until the attempt's outcome is judged;
    /// refused, the time before it lets a probe through.
    #[inline]
    fn ask_breaker(&mut self) -> Result<(), Duration> {
        if let Some(breaker) = self.site.breaker() {
            let permit = breaker.admit()?;
            self.held.admitted(permit);
        }
        // The last error is only for an attempt that is not made: dropped before the admitted
        // attempt runs (it may hold a connection or a permit of the user's that it needs).
        if let Some(state) = &mut *self.state {
            state.last_error = L::Kept::default();
        }
        Ok(())
    }

    /// The error of an attempt the breaker refused (see [`Call::skipped`]).
    #[cold]
    #[inline(never)]
    fn refused<E>(&mut self, retry_in: Duration) -> E
    where
        E: FromGuardError,
        L::Kept: ErrorSlot<E>,
    {
        let op = self.site.op();
        let breaker = self.policy.breaker().unwrap_or(op);
        self.skip_attempt(GiveUpReason::BreakerOpen, || GuardError::BreakerOpen {
            op,
            breaker,
            retry_in,
        })
    }

    /// The error of an attempt that is not made (the breaker refused it, or the deadline left
    /// it no time): the retry granted for it gives its tokens back, and the call returns its
    /// last real error, or `guard_error` for a first attempt.
    #[cold]
    #[inline(never)]
    fn skip_attempt<E>(&mut self, why: GiveUpReason, guard_error: impl FnOnce() -> GuardError) -> E
    where
        E: FromGuardError,
        L::Kept: ErrorSlot<E>,
    {
        let state = self.state();
        state.skipped = Some(why);
        if let Some(slot) = state.slot.take() {
            slot.refund();
        }
        match state.last_error.take_error() {
            Some(last) => last,
            None => E::from_guard_error(guard_error()),
        }
    }

    /// The time this attempt may take, and whether the deadline (not `timeout`) sets it.
    #[inline]
    pub(super) fn attempt_limit(&self) -> Option<(Duration, bool)> {
        let policy = self.policy;
        let left = policy
            .deadline()
            .map(|deadline| deadline.saturating_sub(self.elapsed()));
        match (policy.timeout(), left) {
            (Some(t), Some(l)) if l < t => Some((l, true)),
            (Some(t), _) => Some((t, false)),
            (None, Some(l)) => Some((l, true)),
            (None, None) => None,
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn limit_error(&self, limit: Duration, by_deadline: bool) -> GuardError {
        let op = self.site.op();
        match (by_deadline, self.policy.deadline()) {
            (true, Some(deadline)) => GuardError::DeadlineExceeded {
                op,
                attempt: self.scope.number,
                deadline,
            },
            _ => GuardError::Timeout {
                op,
                attempt: self.scope.number,
                after: limit,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// One attempt under the breaker, `timeout` and `deadline`.
    #[must_use = "futures do nothing unless polled"]
    pub struct Guarded<'a, F, L: PermitSlot, S: StartTime> {
        call: &'a mut Call<L, S>,
        #[pin]
        body: Option<F>,
        timer: Option<Timer>,
        limit: Limit,
    }
}

/// A guarded attempt's limit, set when it is admitted, in one word: the time it may take in
/// nanoseconds (bit 63: the deadline sets it, not `timeout`), or one of the two values below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limit(u64);

impl Limit {
    /// Not admitted yet: the limit is not known.
    const NOT_ADMITTED: Limit = Limit(u64::MAX);
    /// Admitted, without a limit.
    const NONE: Limit = Limit(u64::MAX - 1);
    const BY_DEADLINE: u64 = 1 << 63;

    /// The longest limit kept (292 years): with the deadline's bit set, still below the two
    /// values above.
    const LONGEST: u64 = Limit::BY_DEADLINE - 3;

    /// `limit` in one word (one longer than [`LONGEST`](Self::LONGEST) is kept as that).
    fn new(limit: Option<(Duration, bool)>) -> Limit {
        match limit {
            None => Limit::NONE,
            Some((time, by_deadline)) => {
                let nanos = u64::try_from(time.as_nanos())
                    .unwrap_or(u64::MAX)
                    .min(Limit::LONGEST);
                Limit(nanos | if by_deadline { Limit::BY_DEADLINE } else { 0 })
            }
        }
    }

    /// The time the attempt may take, and whether the deadline sets it.
    fn get(self) -> Option<(Duration, bool)> {
        (self != Limit::NONE && self != Limit::NOT_ADMITTED).then(|| {
            let nanos = self.0 & !Limit::BY_DEADLINE;
            (
                Duration::from_nanos(nanos),
                self.0 & Limit::BY_DEADLINE != 0,
            )
        })
    }
}

impl<F, T, E, L, S> Future for Guarded<'_, F, L, S>
where
    F: Future<Output = Result<T, E>>,
    E: FromGuardError,
    L: PermitSlot,
    S: StartTime,
    L::Kept: ErrorSlot<E>,
{
    type Output = Result<T, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let mut this = self.project();
        if *this.limit == Limit::NOT_ADMITTED {
            // The deadline first: an attempt with no time left is not made at all, so it
            // takes no breaker permit and is charged to nobody.
            let limit = this.call.attempt_limit();
            if let Some((limit, true)) = limit {
                if limit.is_zero() {
                    this.body.set(None);
                    let out_of_time = this.call.limit_error(limit, true);
                    let e = this
                        .call
                        .skip_attempt(GiveUpReason::Deadline, || out_of_time);
                    return Poll::Ready(Err(e));
                }
            }
            if let Err(retry_in) = this.call.ask_breaker() {
                this.body.set(None);
                return Poll::Ready(Err(this.call.refused(retry_in)));
            }
            *this.limit = Limit::new(limit);
        }
        let Some(body) = this.body.as_mut().as_pin_mut() else {
            panic!("a guarded attempt was polled after it completed");
        };
        let polled = {
            let _in = this.call.attempt_entered();
            body.poll(cx)
        };
        if polled.is_ready() {
            this.body.set(None);
            return polled;
        }
        let Some((limit, by_deadline)) = this.limit.get() else {
            return Poll::Pending;
        };
        // The timer is created only once the attempt is pending: an attempt that completes on
        // its first poll costs no timer registration.
        let timer = this.timer.get_or_insert_with(|| Timer::new(limit));
        match Pin::new(timer).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                // Cancel the stale attempt now, before the log, the delay and the next attempt.
                this.body.set(None);
                // The timeout is this layer's own failure, whatever a nested call inside the
                // attempt did before it: only a completed attempt reports a retry below it.
                this.call.scope.take_retried_below();
                this.call.state().timed_out = Some(by_deadline);
                this.call.log_timeout(limit);
                let e = this.call.limit_error(limit, by_deadline);
                Poll::Ready(Err(E::from_guard_error(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limit;
    use std::time::Duration;

    #[test]
    fn a_limit_keeps_its_time_and_who_set_it_in_one_word() {
        assert_eq!(std::mem::size_of::<Limit>(), 8);
        assert_eq!(Limit::NOT_ADMITTED.get(), None);
        assert_eq!(Limit::new(None).get(), None);
        for limit in [
            (Duration::ZERO, true),
            (Duration::ZERO, false),
            (Duration::from_nanos(1_500_000_001), true),
            (Duration::from_millis(250), false),
        ] {
            assert_eq!(Limit::new(Some(limit)).get(), Some(limit));
        }
        // Beyond 2^63 ns (292 years) it is kept as just under, still a limit.
        for by_deadline in [true, false] {
            let far = Limit::new(Some((Duration::MAX, by_deadline))).get();
            let longest = Duration::from_nanos(Limit::LONGEST);
            assert_eq!(far, Some((longest, by_deadline)));
        }
    }
}
