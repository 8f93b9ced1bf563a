//! Hedged attempts (`hedge = "…"`): the attempts of one call in flight side by side, the delay
//! after which the next one starts beside a slow one, and what a finished attempt means.

use super::{Call, ErrorSlot, PermitSlot, StartTime, Timer, Verdict};
use crate::breaker::Permit;
use crate::budget::RetrySlot;
use crate::describe::{Described, ErrorFormatter};
use crate::error::{FromGuardError, GuardError};
use crate::export;
use crate::give_up::GiveUpReason;
use crate::latency::LatencyRecord;
use crate::log;
use crate::policy::Hedge;
use crate::scope::AttemptScope;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{RetryHint, Transient};

/// How a hedged call turns its own limits into the fn's error type: [`WithGuard`] for a fn
/// with `timeout`, `deadline` or `breaker` (its `E: From<GuardError>`), [`NoGuard`] without
/// (no guard error can arise, and `E` needs no such impl).
pub trait GuardErrors<E>: Copy + Unpin {
    /// `error` as an `E`.
    fn guard_error(self, error: GuardError) -> E;
}

/// See [`GuardErrors`]: a hedged fn without `timeout`, `deadline` or `breaker`.
#[derive(Clone, Copy, Debug)]
pub struct NoGuard;

/// See [`GuardErrors`]: a hedged fn with `timeout`, `deadline` or `breaker`.
#[derive(Clone, Copy, Debug)]
pub struct WithGuard;

impl<E> GuardErrors<E> for NoGuard {
    fn guard_error(self, error: GuardError) -> E {
        // The macro picks `NoGuard` only for a policy without timeout, deadline and breaker,
        // none of which the live configuration can add: nothing makes a guard error here.
        unreachable!("a guard error ({error}) in a call without timeout, deadline or breaker")
    }
}

impl<E: FromGuardError> GuardErrors<E> for WithGuard {
    #[inline]
    fn guard_error(self, error: GuardError) -> E {
        E::from_guard_error(error)
    }
}

/// What the generated loop does next in a hedged call.
#[derive(Debug)]
pub enum HedgeStep<R> {
    /// Start the next attempt: `hedging.start(body)`.
    Start,
    /// An attempt finished with this result: ask [`Call::after_hedged_attempt`].
    Done(R),
}

pin_project_lite::pin_project! {
    /// One attempt in flight.
    struct Running<F> {
        #[pin]
        body: F,
        #[pin]
        timer: Option<Timer>,
        scope: AttemptScope,
        permit: Option<Permit>,
        slot: Option<RetrySlot>,
        // When it started, on the call's clock (0: not measured).
        started_at: u64,
        // Started beside a running attempt, by the hedge delay.
        hedged: bool,
    }
}

/// What is known of the attempt that just finished, for [`Call::after_hedged_attempt`].
#[derive(Debug, Default)]
struct Finished {
    number: u32,
    permit: Option<Permit>,
    hedged: bool,
    /// Its latency, when the percentile needs it.
    latency: Option<Duration>,
    /// Cancelled by its limit (`Some(true)`: the deadline's).
    timed_out: Option<bool>,
    /// Not made: the breaker refused it, or the deadline left no time.
    skipped: Option<GiveUpReason>,
    retried_below: bool,
}

/// The admission of the attempt about to start: its number, permit and budget slot.
#[derive(Debug)]
struct Admitted {
    number: u32,
    permit: Option<Permit>,
    slot: Option<RetrySlot>,
    hedged: bool,
    started_at: u64,
}

pin_project_lite::pin_project! {
    /// The attempts of one hedged call: the first in place (a call whose first attempt wins
    /// allocates nothing), the hedges beside it boxed.
    #[must_use = "a hedged call's attempts"]
    pub struct Hedging<F> {
        #[pin]
        first: Option<Running<F>>,
        more: Vec<Pin<Box<Running<F>>>>,
        // Armed once the newest attempt is pending: when it fires, a hedge may start.
        #[pin]
        delay: Option<Timer>,
        // Attempts started.
        started: u32,
        // The next attempt should start now (the first, or one after a transient failure).
        start_now: bool,
        // Granted for the attempt `start` begins.
        admitted: Option<Admitted>,
        finished: Finished,
        // Transient failures that started another attempt.
        retries: u32,
    }
}

impl<F> Default for Hedging<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F> Hedging<F> {
    /// No attempt yet; the first starts at the first [`Call::hedge_next`].
    #[inline]
    pub fn new() -> Self {
        Hedging {
            first: None,
            more: Vec::new(),
            delay: None,
            started: 0,
            start_now: true,
            admitted: None,
            finished: Finished::default(),
            retries: 0,
        }
    }

    /// Attempts in flight.
    fn running(&self) -> usize {
        self.first.is_some() as usize + self.more.len()
    }

    /// Starts `body` as the attempt [`HedgeStep::Start`] admitted.
    #[inline]
    pub fn start(self: Pin<&mut Self>, body: F) {
        let mut this = self.project();
        let Some(admitted) = this.admitted.take() else {
            // Only `HedgeStep::Start` leads here, and it always admits first.
            debug_assert!(false, "a hedged attempt started without admission");
            return;
        };
        *this.started = admitted.number;
        this.delay.set(None);
        let running = Running {
            body,
            timer: None,
            scope: AttemptScope::new(admitted.number),
            permit: admitted.permit,
            slot: admitted.slot,
            started_at: admitted.started_at,
            hedged: admitted.hedged,
        };
        if this.first.is_none() {
            this.first.set(Some(running));
        } else {
            this.more.push(Box::pin(running));
        }
    }

    /// Drops every attempt in flight (another won), counting them.
    /// Drops every attempt still running; returns how many. With `record` (`hedge = "pNN"`),
    /// each one's time so far is recorded as a latency: it took at least that long, and
    /// leaving the slow attempts that lost out of the record would bias it fast (the delay
    /// would settle below the real percentile and hedge too often).
    fn cancel_all(self: Pin<&mut Self>, record: Option<&LatencyRecord>) -> u64 {
        let mut this = self.project();
        let cancelled = this.first.is_some() as u64 + this.more.len() as u64;
        if let Some(record) = record.filter(|_| cancelled > 0) {
            let now = crate::clock::now_nanos();
            let first = this.first.as_ref().get_ref().as_ref().map(|r| r.started_at);
            let starts = first
                .into_iter()
                .chain(this.more.iter().map(|r| r.started_at));
            for started in starts.filter(|s| *s != 0) {
                record.record(Duration::from_nanos(now.saturating_sub(started)));
            }
        }
        this.first.set(None);
        this.more.clear();
        this.delay.set(None);
        cancelled
    }
}

/// An attempt's poll: its body in its own scope, under its limit.
enum Polled<R> {
    Pending,
    Ready(R),
    TimedOut(Duration, bool),
}

fn poll_running<F: Future>(
    mut running: Pin<&mut Running<F>>,
    limit: Option<(Duration, bool)>,
    cx: &mut Context<'_>,
) -> Polled<F::Output> {
    let this = running.as_mut().project();
    let body = this.body;
    if let Poll::Ready(out) = this.scope.enter(|| body.poll(cx)) {
        return Polled::Ready(out);
    }
    let Some((limit, by_deadline)) = limit else {
        return Polled::Pending;
    };
    let mut timer = this.timer;
    if timer.is_none() {
        timer.set(Some(Timer::new(limit)));
    }
    match timer.as_pin_mut().map(|t| t.poll(cx)) {
        Some(Poll::Ready(())) => Polled::TimedOut(limit, by_deadline),
        _ => Polled::Pending,
    }
}

impl<L: PermitSlot, S: StartTime> Call<L, S> {
    /// Runs the attempts of a hedged call until the generated loop must act: start the next
    /// attempt ([`HedgeStep::Start`]) or judge one that finished ([`HedgeStep::Done`]).
    /// `R` is the fn's return type; `guard` is [`WithGuard`] or [`NoGuard`].
    #[inline]
    pub fn hedge_next<'a, R, F, G>(
        &'a mut self,
        hedging: Pin<&'a mut Hedging<F>>,
        guard: G,
    ) -> HedgeNext<'a, F, R, L, S, G> {
        HedgeNext {
            call: self,
            hedging,
            guard,
            result: PhantomData,
        }
    }

    /// The site's latency record, when `hedge = "pNN"` measures attempts.
    fn latency_record(&self) -> Option<&'static LatencyRecord> {
        match self.policy.hedge()? {
            Hedge::Percentile(permille) => Some(self.site.latency(permille)),
            Hedge::After(_) => None,
        }
    }

    /// The delay after which a hedge starts beside the newest attempt, if one may.
    fn hedge_delay(&self) -> Option<Duration> {
        match self.policy.hedge()? {
            Hedge::After(delay) => Some(delay),
            Hedge::Percentile(permille) => self.site.latency(permille).percentile(),
        }
    }

    /// Decides what a finished attempt of a hedged call means: its success or permanent error
    /// ends the call (every other attempt dropped at once); a transient failure starts the
    /// next attempt at once (after the server's `retry_after` hint, if nothing else runs),
    /// while attempts, budget and breaker allow; otherwise the call waits for the attempts
    /// still running, or returns this error.
    pub fn after_hedged_attempt<T, E, F, W, H>(
        &mut self,
        result: Result<T, E>,
        mut hedging: Pin<&mut Hedging<F>>,
        format: ErrorFormatter<E>,
        when: &W,
        retry_after: &H,
    ) -> Verdict<T, E>
    where
        L::Kept: ErrorSlot<E>,
        W: Transient<E> + ?Sized,
        H: RetryHint<E> + ?Sized,
    {
        let finished = std::mem::take(hedging.as_mut().project().finished);
        self.scope = AttemptScope::new(finished.number);
        let record = self.latency_record();
        if let (Some(latency), Some(record)) = (finished.latency, record) {
            record.record(latency);
        }
        let counters = self.site.counters();
        let op = self.site.op();
        let error = match result {
            Ok(value) => {
                if let Some(permit) = finished.permit {
                    permit.success();
                }
                counters.cancelled(hedging.as_mut().cancel_all(record));
                if finished.hedged {
                    counters.hedge_win();
                    export::hedge_win(op);
                }
                self.on_success(if hedging.retries == 0 { 1 } else { 2 });
                return Verdict::Return(Ok(value));
            }
            Err(error) => error,
        };
        let fields = self.fields();
        if let Some(reason) = finished.skipped {
            // Not made: only when nothing else runs (see `Call::admit_next`).
            return self.not_made(&fields, error, format, reason);
        }
        let transient = when.is_transient(&error);
        self.attempt_failed(finished.timed_out, transient, finished.permit);
        let running = hedging.running() > 0;
        let reason = if finished.timed_out == Some(true) {
            Some(GiveUpReason::Deadline)
        } else if !transient {
            Some(GiveUpReason::PermanentError)
        } else if finished.retried_below {
            Some(GiveUpReason::RetriedBelow)
        } else {
            None
        };
        if let Some(reason) = reason {
            counters.cancelled(hedging.as_mut().cancel_all(record));
            return self.give_up(&fields, error, format, reason);
        }
        let policy = self.policy;
        // A transient failure: the next attempt, or wait for those in flight, or give up.
        let next = if hedging.started >= policy.attempts() {
            Err(GiveUpReason::AttemptsExhausted)
        } else if self.site.breaker().is_some_and(|b| b.is_rejecting()) {
            Err(GiveUpReason::BreakerOpen)
        } else {
            let hint = retry_after.retry_after(&error).unwrap_or(Duration::ZERO);
            if hint > policy.max() {
                Err(GiveUpReason::RetryAfterTooLong)
            } else {
                let cost = if finished.timed_out.is_some() { 2 } else { 1 };
                match self.site.budget().try_withdraw(cost) {
                    Ok(slot) => Ok((slot, hint)),
                    Err(_) => Err(GiveUpReason::Budget),
                }
            }
        };
        match next {
            Ok((slot, hint)) => {
                // Nothing else runs: sleep for the server's hint, if any, then start.
                let delay = if running { Duration::ZERO } else { hint };
                // The first retry of the call counts it among the calls that retried.
                let nth = if hedging.retries == 0 { 1 } else { 2 };
                counters.retry(nth);
                export::retry(op, nth);
                self.state()
                    .span
                    .in_scope(|| log::retrying(&fields, Described(&error, format), delay));
                let this = hedging.as_mut().project();
                *this.retries += 1;
                *this.start_now = true;
                *this.admitted = Some(Admitted {
                    number: *this.started + 1,
                    permit: None,
                    slot: Some(slot),
                    hedged: false,
                    started_at: 0,
                });
                Verdict::Retry(delay)
            }
            // Others still run: one of them may yet succeed; this error is dropped.
            Err(_) if running => Verdict::Retry(Duration::ZERO),
            Err(reason) => self.give_up(&fields, error, format, reason),
        }
    }
}

/// The future of [`Call::hedge_next`].
#[must_use = "futures do nothing unless polled"]
pub struct HedgeNext<'a, F, R, L: PermitSlot, S: StartTime, G> {
    call: &'a mut Call<L, S>,
    hedging: Pin<&'a mut Hedging<F>>,
    guard: G,
    result: PhantomData<fn() -> R>,
}

impl<F, T, E, L, S, G> Future for HedgeNext<'_, F, Result<T, E>, L, S, G>
where
    F: Future<Output = Result<T, E>>,
    L: PermitSlot,
    S: StartTime,
    G: GuardErrors<E>,
{
    type Output = HedgeStep<Result<T, E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Only references and `Copy` values: nothing here is pinned structurally.
        let this = self.get_mut();
        let call = &mut *this.call;
        let guard = this.guard;
        let hedging = this.hedging.as_mut();
        let mut hedging = hedging;
        if hedging.start_now {
            if let Some(step) = call.admit_next(hedging.as_mut(), guard) {
                return Poll::Ready(step);
            }
        }
        let policy = call.policy;
        let limit = call.attempt_limit();
        let measure = matches!(policy.hedge(), Some(Hedge::Percentile(_)));
        let mut h = hedging.project();
        // The attempts in flight, oldest first; the first to finish is judged.
        let mut polled = None;
        if let Some(first) = h.first.as_mut().as_pin_mut() {
            match poll_running(first, limit, cx) {
                Polled::Pending => {}
                done => polled = Some((done, None)),
            }
        }
        if polled.is_none() {
            for (i, running) in h.more.iter_mut().enumerate() {
                match poll_running(running.as_mut(), limit, cx) {
                    Polled::Pending => {}
                    done => {
                        polled = Some((done, Some(i)));
                        break;
                    }
                }
            }
        }
        if let Some((done, index)) = polled {
            let now = if measure {
                crate::clock::now_nanos()
            } else {
                0
            };
            let (number, permit, hedged, started_at, retried_below) = {
                let take = |r: Pin<&mut Running<F>>| {
                    let r = r.project();
                    (
                        r.scope.number,
                        r.permit.take(),
                        *r.hedged,
                        *r.started_at,
                        r.scope.retried_below(),
                    )
                };
                match index {
                    None => take(h.first.as_mut().as_pin_mut().expect("polled")),
                    Some(i) => take(h.more[i].as_mut()),
                }
            };
            // Dropped (cancelled) before anything else happens.
            match index {
                None => h.first.set(None),
                Some(i) => drop(h.more.remove(i)),
            }
            h.delay.set(None);
            *h.finished = Finished {
                number,
                permit,
                hedged,
                latency: (started_at != 0)
                    .then(|| Duration::from_nanos(now.saturating_sub(started_at))),
                timed_out: None,
                skipped: None,
                retried_below,
            };
            let result = match done {
                Polled::Ready(result) => result,
                Polled::TimedOut(limit, by_deadline) => {
                    h.finished.timed_out = Some(by_deadline);
                    h.finished.latency = None;
                    call.scope = AttemptScope::new(number);
                    call.log_timeout(limit);
                    Err(guard.guard_error(call.limit_error(limit, by_deadline)))
                }
                Polled::Pending => unreachable!("only finished attempts are taken"),
            };
            return Poll::Ready(HedgeStep::Done(result));
        }
        // All pending: arm the hedge delay, and start a hedge when it passes.
        if *h.started >= policy.attempts() {
            return Poll::Pending;
        }
        if h.delay.is_none() {
            match call.hedge_delay() {
                Some(delay) => h.delay.set(Some(Timer::new(delay))),
                None => return Poll::Pending,
            }
        }
        let fired = h
            .delay
            .as_mut()
            .as_pin_mut()
            .is_some_and(|timer| timer.poll(cx).is_ready());
        if !fired {
            return Poll::Pending;
        }
        h.delay.set(None);
        let number = *h.started + 1;
        match call.admit_hedge(number) {
            Some(admitted) => {
                *h.admitted = Some(admitted);
                Poll::Ready(HedgeStep::Start)
            }
            None => {
                // Skipped (budget or breaker): what runs keeps running; the next chance comes
                // after another delay.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl<L: PermitSlot, S: StartTime> Call<L, S> {
    /// Admits the attempt that starts now (the first, or the next after a transient failure,
    /// whose budget slot `after_hedged_attempt` took): the deadline, then the breaker. `None`:
    /// refused while other attempts run, which the call waits for.
    fn admit_next<F, T, E, G: GuardErrors<E>>(
        &mut self,
        hedging: Pin<&mut Hedging<F>>,
        guard: G,
    ) -> Option<HedgeStep<Result<T, E>>> {
        let h = hedging.project();
        *h.start_now = false;
        let number = *h.started + 1;
        let mut admitted = h.admitted.take().unwrap_or(Admitted {
            number,
            permit: None,
            slot: None,
            hedged: false,
            started_at: 0,
        });
        let running = h.first.is_some() || !h.more.is_empty();
        self.scope = AttemptScope::new(number);
        let refused = match self.attempt_limit() {
            Some((limit, true)) if limit.is_zero() => {
                Some((GiveUpReason::Deadline, self.limit_error(limit, true)))
            }
            _ => match self.site.breaker().map(|b| b.admit()) {
                Some(Ok(permit)) => {
                    admitted.permit = Some(permit);
                    None
                }
                Some(Err(retry_in)) => {
                    let op = self.site.op();
                    let breaker = self.policy.breaker().unwrap_or(op);
                    Some((
                        GiveUpReason::BreakerOpen,
                        GuardError::BreakerOpen {
                            op,
                            breaker,
                            retry_in,
                        },
                    ))
                }
                None => None,
            },
        };
        let Some((why, error)) = refused else {
            admitted.started_at = self.measure_start();
            *h.admitted = Some(admitted);
            return Some(HedgeStep::Start);
        };
        // Not made: the retry granted for it gives its tokens back.
        if let Some(slot) = admitted.slot.take() {
            slot.refund();
        }
        if running {
            return None;
        }
        *h.finished = Finished {
            number,
            skipped: Some(why),
            ..Finished::default()
        };
        Some(HedgeStep::Done(Err(guard.guard_error(error))))
    }

    /// Admits a hedge beside the attempts in flight: a budget token, then the breaker. `None`
    /// skips it (what runs keeps running).
    fn admit_hedge(&mut self, number: u32) -> Option<Admitted> {
        self.scope = AttemptScope::new(number);
        let op = self.site.op();
        let slot = match self.site.budget().try_withdraw(1) {
            Ok(slot) => slot,
            Err(_) => {
                log::hedge_skipped(op, number, "budget");
                return None;
            }
        };
        let permit = match self.site.breaker().map(|b| b.admit()) {
            Some(Ok(permit)) => Some(permit),
            Some(Err(_)) => {
                slot.refund();
                log::hedge_skipped(op, number, "breaker");
                return None;
            }
            None => None,
        };
        let delay = self.hedge_delay().unwrap_or_default();
        let fields = self.fields();
        self.state()
            .span
            .in_scope(|| log::hedging(&fields, number, delay));
        self.site.counters().hedge();
        export::hedge(op);
        Some(Admitted {
            number,
            permit,
            slot: Some(slot),
            hedged: true,
            started_at: self.measure_start(),
        })
    }

    /// The start of an attempt on the call's clock, when `hedge = "pNN"` measures it.
    fn measure_start(&self) -> u64 {
        match self.policy.hedge() {
            Some(Hedge::Percentile(_)) => crate::clock::now_nanos(),
            _ => 0,
        }
    }
}
