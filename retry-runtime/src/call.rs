//! One call of an annotated fn: the state the generated loop carries from attempt to attempt,
//! and `judge`, which decides after each attempt whether to return or to sleep and retry.

use crate::attempt::{self, AttemptScope};
use crate::backoff::delay_before_retry;
use crate::breaker::{Parked, Permit};
use crate::budget::RetrySlot;
use crate::describe::{Described, ErrorFormatter};
use crate::export;
use crate::jitter::{jittered, random_unit};
use crate::log::{self, Fields};
use crate::site::Site;
use crate::stats::GiveUpReason;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Span;

/// What the generated loop does after an attempt.
#[derive(Debug)]
pub enum Verdict<T, E> {
    /// Return this result from the fn.
    Return(Result<T, E>),
    /// Sleep this long, then run the next attempt.
    Retry(Duration),
}

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

/// The default `when`: every error is worth a retry.
pub fn every_error<E>(_: &E) -> bool {
    true
}

/// The default `retry_after`: no hint.
pub fn no_hint<E>(_: &E) -> Option<Duration> {
    None
}

/// What a call holds for a breaker: the running attempt's permit, in the call itself (a
/// first-try success reports it), and, in its state built on the first failure, the last
/// error (returned if the breaker refuses the next attempt). [`BreakerHeld<E>`] with a
/// `breaker`; `()` (nothing held) without one, so that a call without a breaker never holds
/// an `E` across an `.await` (its future stays `Send` even for an `E` that is not).
pub trait Held: Default {
    /// Where the call's state keeps the last error: `Option<E>`, or `()` for none.
    type Kept: Default;
    /// The next attempt was admitted with `permit`.
    fn admitted(&mut self, permit: Permit);
    /// The running attempt's permit, to report its outcome.
    fn take_permit(&mut self) -> Option<Permit>;
}

/// Keeps the last error of a call ([`Held::Kept`]): `Option<E>` keeps it, `()` drops it.
pub trait LastError<E>: Default {
    /// Keeps `error` (or drops it).
    fn keep(&mut self, error: E);
    /// The kept error, if any.
    fn take_error(&mut self) -> Option<E>;
}

impl<E> LastError<E> for () {
    #[inline]
    fn keep(&mut self, _: E) {}
    #[inline]
    fn take_error(&mut self) -> Option<E> {
        None
    }
}

impl<E> LastError<E> for Option<E> {
    #[inline]
    fn keep(&mut self, error: E) {
        *self = Some(error);
    }
    #[inline]
    fn take_error(&mut self) -> Option<E> {
        self.take()
    }
}

impl Held for () {
    type Kept = ();
    #[inline]
    fn admitted(&mut self, permit: Permit) {
        // Only a site without a breaker uses `()`, and its attempts ask for no permit.
        debug_assert!(false, "a breaker's permit for a call that holds nothing");
        drop(permit); // counts as neither success nor failure
    }
    #[inline]
    fn take_permit(&mut self) -> Option<Permit> {
        None
    }
}

/// What a call with a `breaker` holds (see [`Held`]): the running attempt's permit; the last
/// error, an `E`, lives in the call's state.
#[derive(Debug)]
pub struct BreakerHeld<E> {
    permit: Option<Parked>,
    error: PhantomData<fn() -> E>,
}

impl<E> Drop for BreakerHeld<E> {
    #[inline]
    fn drop(&mut self) {
        // Only a probe's permit has anything to give back when dropped unreported.
        if let Some(parked) = self.permit.filter(Parked::is_probe) {
            drop(parked.resume());
        }
    }
}

impl<E> Default for BreakerHeld<E> {
    fn default() -> Self {
        BreakerHeld {
            permit: None,
            error: PhantomData,
        }
    }
}

impl<E> Held for BreakerHeld<E> {
    type Kept = Option<E>;
    #[inline]
    fn admitted(&mut self, permit: Permit) {
        self.permit = Some(permit.park());
    }
    #[inline]
    fn take_permit(&mut self) -> Option<Permit> {
        self.permit.take().map(Parked::resume)
    }
}

/// The state of one call across its attempts. Created by the generated code at the top of
/// the fn; dropping it (with the fn's future) releases everything it holds. With a breaker,
/// `L` holds its permit, and its state the last error (see [`Held`]).
///
/// A first-try success only needs the site, the attempt's scope and (with a breaker) its
/// permit: everything else lives in `CallState`, built on first use (the first failure, a
/// deadline), so that such a call neither builds nor drops it.
#[derive(Debug)]
pub struct Call<L: Held = ()> {
    pub(crate) site: &'static Site,
    /// The attempt running or last run: its number (0 before the first), and whether a
    /// nested annotated call in it retried and gave up. The running attempt's body reads it
    /// through the thread-local `AttemptScope::enter` sets.
    pub(crate) scope: AttemptScope,
    /// The rest of the call's state; `None` until something needs it. Dropped by hand (see
    /// `Drop for Call`), so that dropping a call without it is one inline check.
    pub(crate) state: ManuallyDrop<Option<CallState<L::Kept>>>,
    /// With a breaker: the running attempt's permit.
    pub(crate) held: L,
}

impl<L: Held> Drop for Call<L> {
    #[inline]
    fn drop(&mut self) {
        if self.state.is_some() {
            // SAFETY: `state` is dropped here only, once, and not used afterwards.
            unsafe { drop_state(&mut self.state) }
        }
    }
}

/// Drops a call's state, out of line: inlined, the span's and the budget slot's drop code
/// made the annotated fn's future too big to drop inline, and every call paid an out-of-line
/// call to drop its finished future.
///
/// # Safety
/// Called once, and `state` not used afterwards (`Drop for Call`).
#[inline(never)]
unsafe fn drop_state<K>(state: &mut ManuallyDrop<Option<CallState<K>>>) {
    // SAFETY: the caller's promise.
    unsafe { ManuallyDrop::drop(state) }
}

/// What a call keeps beyond its attempt number and breaker permit, once a failure or a
/// deadline needs it.
#[derive(Debug)]
pub(crate) struct CallState<K> {
    /// When the call started, for a policy with a deadline.
    pub(crate) started: Option<Instant>,
    previous_delay: Duration,
    call_id: u64,
    pub(crate) span: Span,
    /// The budget's grant for the running retry (counts toward `max_concurrent`).
    pub(crate) slot: Option<RetrySlot>,
    /// The last attempt was cancelled by its timeout (`Some(true)`: by the deadline).
    pub(crate) timed_out: Option<bool>,
    /// The last attempt was not made (no call reached the downstream), and why: the breaker
    /// refused it (`BreakerOpen`) or the deadline left it no time (`Deadline`).
    pub(crate) not_made: Option<GiveUpReason>,
    /// With a breaker: the error the call returns if the breaker refuses its next attempt.
    pub(crate) last_error: K,
}

impl<K: Default> CallState<K> {
    fn new() -> Self {
        CallState {
            started: None,
            previous_delay: Duration::ZERO,
            call_id: 0,
            span: Span::none(),
            slot: None,
            timed_out: None,
            not_made: None,
            last_error: K::default(),
        }
    }
}

impl<L: Held> Call<L> {
    /// Runs `f` (a poll of the attempt's body, or a blocking attempt) in the call's span, if a
    /// failure opened one, and with the attempt in scope for `stormguard::attempt()`.
    #[inline]
    pub(crate) fn in_attempt<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.state.as_ref().map(|state| state.span.enter());
        self.scope.enter(f)
    }

    /// Starts a call at `site`, whose policy has no `deadline`. Reads no clock.
    #[inline]
    pub fn start(site: &'static Site) -> Self {
        debug_assert!(
            site.policy().deadline.is_none(),
            "a policy with a deadline starts with Call::start_with_deadline"
        );
        site.ensure_registered();
        Call {
            site,
            scope: AttemptScope::new(0),
            state: ManuallyDrop::new(None),
            held: L::default(),
        }
    }

    /// Starts a call at `site`, whose policy has a `deadline`: reads the clock, which the
    /// deadline counts from. (The macro picks this or [`Call::start`] at compile time, so
    /// that a call without a deadline neither branches on it nor stores a start time.)
    #[inline]
    pub fn start_with_deadline(site: &'static Site) -> Self {
        site.ensure_registered();
        Call {
            site,
            scope: AttemptScope::new(0),
            state: ManuallyDrop::new(Some(CallState {
                started: Some(Instant::now()),
                ..CallState::new()
            })),
            held: L::default(),
        }
    }

    /// The rest of the call's state, built on first use.
    #[inline]
    pub(crate) fn state(&mut self) -> &mut CallState<L::Kept> {
        self.state.get_or_insert_with(CallState::new)
    }

    /// The next attempt, for a policy without `timeout`, `deadline` or `breaker`.
    #[inline]
    pub fn attempt<F: Future>(&mut self, body: F) -> Attempt<'_, F, L> {
        self.scope.next();
        Attempt { call: self, body }
    }

    /// The body of an attempt [`Call::breaker_admits`] admitted (and counted).
    #[inline]
    pub fn admitted_attempt<F: Future>(&mut self, body: F) -> Attempt<'_, F, L> {
        Attempt { call: self, body }
    }

    /// The next attempt of a blocking fn.
    #[inline]
    pub fn attempt_blocking<R>(&mut self, body: impl FnOnce() -> R) -> R {
        self.scope.next();
        self.in_attempt(body)
    }

    /// Sleeps on tokio's clock before the next attempt.
    pub fn sleep(&self, delay: Duration) -> Pause {
        Pause::new(delay)
    }

    /// Sleeps the thread before the next attempt of a blocking fn; warns once per call site
    /// when that thread is a tokio runtime's.
    pub fn sleep_blocking(&self, delay: Duration) {
        if tokio::runtime::Handle::try_current().is_ok() && self.site.first_blocking_warning() {
            log::blocking_sleep_in_runtime(self.site.op());
        }
        std::thread::sleep(delay);
    }

    fn fields(&mut self) -> Fields {
        let policy = self.site.policy();
        Fields {
            op: self.site.op(),
            upstream: policy.breaker.unwrap_or(self.site.op()),
            call_id: self.call_id(),
            attempt: self.scope.number,
            max_attempts: policy.attempts,
        }
    }

    /// The call's id, assigned (and its span opened) at its first failure.
    pub(crate) fn call_id(&mut self) -> u64 {
        let site = self.site;
        let state = self.state();
        if state.call_id == 0 {
            state.call_id = log::next_call_id();
            state.span = log::call_span(site.op(), site.policy().breaker, state.call_id);
        }
        state.call_id
    }

    /// Decides what follows an attempt: return its result, or retry after a delay.
    ///
    /// Retries only when the attempt failed, `when` calls the error transient, no nested call
    /// retried it already, attempts remain, the server's hint is within `max`, the deadline
    /// leaves room for the sleep, the breaker is not open and the budget grants a token.
    /// Otherwise the last error is returned as it was.
    ///
    /// Always inlined, with the failure path kept out of line: with a breaker, `judge` was
    /// otherwise too big to inline, and its call and the verdict returned through memory were
    /// 1.5 ns of a call's 10.
    #[inline(always)]
    pub fn judge<T, E, W, H>(
        &mut self,
        result: Result<T, E>,
        format: ErrorFormatter<E>,
        when: &W,
        retry_after: &H,
    ) -> Verdict<T, E>
    where
        L::Kept: LastError<E>,
        W: Transient<E> + ?Sized,
        H: RetryHint<E> + ?Sized,
    {
        match result {
            Ok(value) => {
                if let Some(permit) = self.held.take_permit() {
                    permit.success();
                }
                self.on_success();
                Verdict::Return(Ok(value))
            }
            Err(error) => self.on_failure(error, format, when, retry_after),
        }
    }

    #[inline]
    fn on_success(&mut self) {
        if let Some(state) = &mut *self.state {
            // A retry that succeeds gives its tokens back: only retries that fail cost the
            // budget (as in gRPC's retry throttling). An outage, where retries fail, still
            // drains it; a steady failure rate is retried in full as long as successes fund
            // the failed retries.
            if let Some(slot) = state.slot.take() {
                slot.refund();
            }
        }
        self.site.record_success(self.scope.number);
        self.site.budget().deposit();
    }

    #[cold]
    #[inline(never)]
    fn on_failure<T, E, W, H>(
        &mut self,
        error: E,
        format: ErrorFormatter<E>,
        when: &W,
        retry_after: &H,
    ) -> Verdict<T, E>
    where
        L::Kept: LastError<E>,
        W: Transient<E> + ?Sized,
        H: RetryHint<E> + ?Sized,
    {
        self.state().slot = None;
        let counters = self.site.counters();
        let fields = self.fields();
        let described = Described(&error, format);
        let op = self.site.op();
        if let Some(reason) = self.state().not_made.take() {
            counters.failure(self.scope.number, false);
            if reason == GiveUpReason::BreakerOpen {
                counters.rejection();
                export::rejection(
                    op,
                    self.site.policy().breaker.unwrap_or(""),
                    self.scope.number,
                );
            }
            return self.give_up(&fields, error, format, reason);
        }
        counters.failure(self.scope.number, true);
        let timed_out = self.state().timed_out.take();
        export::failure(op, self.scope.number, timed_out.is_some());
        if timed_out.is_some() {
            counters.timeout();
        }
        let transient = when.is_transient(&error);
        if let Some(permit) = self.held.take_permit() {
            // A permanent error means the downstream answered: it counts as a success.
            if transient || timed_out.is_some() {
                permit.failure();
            } else {
                permit.success();
            }
        }
        match self.next_delay(transient, timed_out, retry_after, &error) {
            Ok(delay) => {
                counters.retry(self.scope.number);
                let state = self.state();
                state
                    .span
                    .in_scope(|| log::retrying(&fields, described, delay));
                export::retry(op);
                state.previous_delay = delay;
                state.last_error.keep(error);
                Verdict::Retry(delay)
            }
            Err(reason) => self.give_up(&fields, error, format, reason),
        }
    }

    /// The delay before the next attempt, or why there is none.
    fn next_delay<E, H: RetryHint<E> + ?Sized>(
        &mut self,
        transient: bool,
        timed_out: Option<bool>,
        retry_after: &H,
        error: &E,
    ) -> Result<Duration, GiveUpReason> {
        let site = self.site;
        let policy = site.policy();
        // An attempt cut off by the deadline ends the call for that reason, whatever `when`
        // says of the error (a `Classify` impl calls `DeadlineExceeded` permanent).
        if timed_out == Some(true) {
            return Err(GiveUpReason::Deadline);
        }
        if !transient {
            return Err(GiveUpReason::PermanentError);
        }
        if self.scope.take_retried_below() {
            return Err(GiveUpReason::RetriedBelow);
        }
        if self.scope.number >= policy.attempts {
            return Err(GiveUpReason::AttemptsExhausted);
        }
        let backoff = delay_before_retry(policy, self.scope.number);
        let mut delay = jittered(policy, backoff, self.state().previous_delay, random_unit());
        if let Some(hint) = retry_after.retry_after(error) {
            if hint > policy.max {
                return Err(GiveUpReason::RetryAfterTooLong);
            }
            delay = delay.max(hint);
        }
        if let (Some(deadline), Some(started)) = (policy.deadline, self.state().started) {
            // Room for the sleep and for an attempt after it (the timer's millisecond
            // granularity can round a sleep up).
            let attempt_room = Duration::from_millis(1);
            if started
                .elapsed()
                .saturating_add(delay)
                .saturating_add(attempt_room)
                >= deadline
            {
                return Err(GiveUpReason::Deadline);
            }
        }
        if let Some(breaker) = site.breaker() {
            if breaker.is_rejecting() {
                return Err(GiveUpReason::BreakerOpen);
            }
        }
        let cost = if timed_out.is_some() { 2 } else { 1 };
        let budget = site.budget();
        let granted = budget.try_withdraw(cost);
        export::budget_tokens(budget.name(), budget.tokens());
        match granted {
            Ok(slot) => self.state().slot = Some(slot),
            Err(_) => return Err(GiveUpReason::Budget),
        }
        Ok(delay)
    }

    fn give_up<T, E>(
        &mut self,
        fields: &Fields,
        error: E,
        format: ErrorFormatter<E>,
        reason: GiveUpReason,
    ) -> Verdict<T, E> {
        let described = Described(&error, format);
        let first = self.scope.number <= 1;
        let span = &self.state().span;
        if reason == GiveUpReason::BreakerOpen && first {
            span.in_scope(|| log::failed_fast(fields, described));
        } else {
            span.in_scope(|| log::gave_up(fields, described, reason));
        }
        self.site.counters().give_up(reason);
        export::give_up(self.site.op(), reason);
        if self.scope.number > 1 {
            self.site.record_retried_give_up();
        }
        // The enclosing annotated call (if any) must not retry what was retried here.
        if reason == GiveUpReason::RetriedBelow
            || (self.scope.number > 1 && reason != GiveUpReason::PermanentError)
        {
            attempt::mark_retried_below();
        }
        Verdict::Return(Err(error))
    }

    pub(crate) fn log_timeout(&mut self, limit: Duration) {
        let fields = self.fields();
        self.state()
            .span
            .in_scope(|| log::timed_out(&fields, limit));
    }
}

/// The sleep before a retry: tokio's `Sleep`, dropped out of line.
///
/// The annotated fn's future holds this across its second `.await`; inline, `Sleep`'s drop
/// (timer deregistration, runtime handle) made that future's drop glue too big to be inlined,
/// and every call, a first-try success included, paid an out-of-line call to drop it.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Pause {
    sleep: ManuallyDrop<tokio::time::Sleep>,
}

impl Pause {
    /// Tokio's `sleep(delay)`.
    #[inline]
    pub(crate) fn new(delay: Duration) -> Pause {
        Pause {
            sleep: ManuallyDrop::new(tokio::time::sleep(delay)),
        }
    }
}

impl Future for Pause {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: structural pinning of `sleep`: it is never moved out of `Pause`, and is
        // dropped in place (`Drop` below); `Pause` is `!Unpin` because `Sleep` is.
        unsafe { self.map_unchecked_mut(|pause| &mut *pause.sleep) }.poll(cx)
    }
}

impl Drop for Pause {
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: dropped here only, once, in place (see `poll`).
        unsafe { ManuallyDrop::drop(&mut self.sleep) }
    }
}

pin_project_lite::pin_project! {
    /// One attempt of a call without `timeout`, `deadline` or `breaker`: the body, polled
    /// with the attempt in scope.
    #[must_use = "futures do nothing unless polled"]
    pub struct Attempt<'a, F, L: Held> {
        call: &'a mut Call<L>,
        #[pin]
        body: F,
    }
}

impl<F: Future, L: Held> Future for Attempt<'_, F, L> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let body = this.body;
        this.call.in_attempt(|| body.poll(cx))
    }
}
