//! One call of an annotated fn: the state the generated loop carries from attempt to attempt,
//! and `after_attempt`, which decides whether to return or to sleep and retry.

mod attempt;
mod guarded;
mod hedge;
mod output;
mod slot;
mod start;
mod when;

pub use attempt::{Attempt, Timer};
pub use guarded::Guarded;
pub use hedge::{GuardErrors, HedgeNext, Hedging, NoGuard, WithGuard};
pub use output::ReturnsResult;
pub use slot::{
    BreakerSlot, ErrorKept, ErrorSlot, KeepError, KeepNoError, KeepSendError, PermitSlot,
};
pub use start::{StartTime, Started, StartedBlocking};
pub use when::{RetryHint, Transient};

use crate::backoff::delay_before_retry;
use crate::breaker::Permit;
use crate::budget::RetrySlot;
use crate::describe::{Described, ErrorFormatter};
use crate::export;
use crate::give_up::GiveUpReason;
use crate::jitter::{jittered, random_unit};
use crate::log::{self, Fields};
use crate::policy::Policy;
use crate::scope::{self, AttemptScope};
use crate::site::Site;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::time::Duration;
use tracing::Span;

/// What the generated loop does after an attempt.
#[derive(Debug)]
pub enum Verdict<T, E> {
    /// Return this result from the fn.
    Return(Result<T, E>),
    /// Sleep this long, then run the next attempt.
    Retry(Duration),
}

/// The state of one call across its attempts. Created by the generated code at the top of
/// the fn; dropping it (with the fn's future) releases everything it holds. With a breaker,
/// `L` holds its permit, and its state the last error (see [`PermitSlot`]).
///
/// A first-try success only needs the site, the attempt's scope and (with a breaker) its
/// permit: everything else lives in `CallState`, built on first use (the first failure, a
/// deadline), so that such a call neither builds nor drops it.
#[derive(Debug)]
pub struct Call<L: PermitSlot = (), S: StartTime = ()> {
    pub(crate) site: &'static Site,
    /// The policy this call runs with from start to end, read once at its start (a live
    /// reload changes the calls that start after it).
    pub(crate) policy: &'static Policy,
    /// The attempt running or last run: its number (0 before the first), and whether a
    /// nested annotated call in it retried and gave up. The running attempt's body reads it
    /// through the thread-local `AttemptScope::entered` sets.
    pub(crate) scope: AttemptScope,
    /// The rest of the call's state; `None` until something needs it. Dropped by hand (see
    /// `Drop for Call`), so that dropping a call without it is one inline check.
    pub(crate) state: ManuallyDrop<Option<Box<CallState<L::Kept>>>>,
    /// With a `deadline`: when the call started ([`Started`]); `()` without one. Kept here
    /// rather than in the state, so that a deadline costs a success no allocation.
    pub(crate) started: S,
    /// With a breaker: the running attempt's permit.
    pub(crate) held: L,
}

/// A call's span and attempt, entered ([`Call::attempt_entered`]): the attempt leaves scope
/// first, then the span is exited (fields drop in order).
pub(crate) struct InAttempt<'a> {
    _scope: crate::scope::Entered<'a>,
    _span: Option<tracing::span::Entered<'a>>,
}

impl<L: PermitSlot, S: StartTime> Drop for Call<L, S> {
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
unsafe fn drop_state<K>(state: &mut ManuallyDrop<Option<Box<CallState<K>>>>) {
    // SAFETY: the caller's promise.
    unsafe { ManuallyDrop::drop(state) }
}

/// What a call keeps beyond its attempt number, start time and breaker permit, once a
/// failure needs it: boxed, so that the annotated fn's future stays small (an allocation on
/// the failure path only).
#[derive(Debug)]
pub(crate) struct CallState<K> {
    previous_delay: Duration,
    call_id: u64,
    pub(crate) span: Span,
    /// The budget's grant for the running retry (counts toward `max_concurrent`).
    pub(crate) slot: Option<RetrySlot>,
    /// The last attempt was cancelled by its timeout (`Some(true)`: by the deadline).
    pub(crate) timed_out: Option<bool>,
    /// The last attempt was not made (no call reached the downstream), and why: the breaker
    /// refused it (`BreakerOpen`) or the deadline left it no time (`Deadline`).
    pub(crate) skipped: Option<GiveUpReason>,
    /// With a breaker: the error the call returns if the breaker refuses its next attempt.
    pub(crate) last_error: K,
}

impl<K: Default> CallState<K> {
    fn new() -> Self {
        CallState {
            previous_delay: Duration::ZERO,
            call_id: 0,
            span: Span::none(),
            slot: None,
            timed_out: None,
            skipped: None,
            last_error: K::default(),
        }
    }
}

impl<L: PermitSlot, S: StartTime> Call<L, S> {
    /// Runs `f` (a poll of the attempt's body, or a blocking attempt) in the call's span, if a
    /// failure opened one, and with the attempt in scope for `stormguard::attempt()`.
    #[inline]
    pub(crate) fn in_attempt<R>(&self, f: impl FnOnce() -> R) -> R {
        let _in = self.attempt_entered();
        f()
    }

    /// The call's span (if a failure opened one) and its attempt entered until the guard
    /// drops: what [`in_attempt`](Self::in_attempt) does, without a closure to instantiate
    /// per annotated fn (an attempt's poll uses it).
    #[inline]
    pub(crate) fn attempt_entered(&self) -> InAttempt<'_> {
        let span = self.state.as_ref().map(|state| state.span.enter());
        InAttempt {
            _scope: self.scope.entered(),
            _span: span,
        }
    }

    /// Starts a call at `site`. With `S` = [`Started`] (the macro's choice for a policy with a
    /// `deadline`) it reads the clock, which the deadline counts from; with `()` it reads none
    /// and stores no start time.
    #[inline]
    pub fn start(site: &'static Site) -> Self {
        Self::start_with(site, L::default())
    }

    /// Starts a call at `site` whose breaker or error slot is `held` (see [`KeepError`]).
    #[inline]
    pub fn start_with(site: &'static Site, held: L) -> Self {
        let policy = site.policy();
        debug_assert_eq!(
            policy.deadline().is_some(),
            S::KEPT,
            "a policy with a deadline starts a Call<_, Started>, one without a Call<_, ()>"
        );
        Call {
            site,
            policy,
            scope: AttemptScope::new(0),
            state: ManuallyDrop::new(None),
            started: S::now(),
            held,
        }
    }

    /// Time since the call started (a call with a `deadline`).
    #[inline]
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The rest of the call's state, built on first use.
    #[inline]
    pub(crate) fn state(&mut self) -> &mut CallState<L::Kept> {
        self.state.get_or_insert_with(|| Box::new(CallState::new()))
    }

    /// The next attempt, for a policy without `timeout`, `deadline` or `breaker`.
    #[inline]
    pub fn attempt<R: ReturnsResult, F: Future<Output = R>>(
        &mut self,
        body: F,
    ) -> Attempt<'_, F, L, S> {
        self.scope.next();
        Attempt { call: self, body }
    }

    /// The body of an attempt [`Call::admit`] admitted (and counted).
    #[inline]
    pub fn admitted_attempt<R: ReturnsResult, F: Future<Output = R>>(
        &mut self,
        body: F,
    ) -> Attempt<'_, F, L, S> {
        Attempt { call: self, body }
    }

    /// The next attempt of a blocking fn.
    #[inline]
    pub fn attempt_blocking<R: ReturnsResult>(&mut self, body: impl FnOnce() -> R) -> R {
        self.scope.next();
        self.in_attempt(body)
    }

    /// Sleeps on tokio's clock before the next attempt.
    pub fn sleep(&self, delay: Duration) -> Timer {
        Timer::new(delay)
    }

    /// Sleeps the thread before the next attempt of a blocking fn; warns once per call site
    /// when that thread is polling a tokio task (not under `spawn_blocking`).
    pub fn sleep_blocking(&self, delay: Duration) {
        if crate::task_thread::polls_a_task() && self.site.first_blocking_warning() {
            log::blocking_sleep_in_runtime(self.site.op());
        }
        std::thread::sleep(delay);
    }

    fn fields(&mut self) -> Fields {
        let policy = self.policy;
        Fields {
            op: self.site.op(),
            upstream: policy.breaker().unwrap_or(self.site.op()),
            call_id: self.call_id(),
            attempt: self.scope.number,
            max_attempts: policy.attempts(),
        }
    }

    /// The call's id, assigned (and its span opened) at its first failure.
    pub(crate) fn call_id(&mut self) -> u64 {
        let (op, breaker) = (self.site.op(), self.policy.breaker());
        let state = self.state();
        if state.call_id == 0 {
            state.call_id = log::next_call_id();
            state.span = log::call_span(op, breaker, state.call_id);
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
    /// Always inlined, with the failure path kept out of line: with a breaker, `after_attempt` was
    /// otherwise too big to inline, and its call and the verdict returned through memory were
    /// 1.5 ns of a call's 10.
    #[inline(always)]
    pub fn after_attempt<T, E, W, H>(
        &mut self,
        format: ErrorFormatter<E>,
        when: &W,
        retry_after: &H,
        result: Result<T, E>,
    ) -> Verdict<T, E>
    where
        L::Kept: ErrorSlot<E>,
        W: Transient<E> + ?Sized,
        H: RetryHint<E> + ?Sized,
    {
        match result {
            Ok(value) => {
                if let Some(permit) = self.held.take_permit() {
                    permit.success();
                }
                self.on_success(self.scope.number);
                Verdict::Return(Ok(value))
            }
            Err(error) => self.on_failure(error, format, when, retry_after),
        }
    }

    /// Counts a success after `attempt` attempts (2 or more: after a retry).
    #[inline]
    fn on_success(&mut self, attempt: u32) {
        if let Some(state) = &mut *self.state {
            // A retry that succeeds keeps its cost: every retry is extra load, so retries stay
            // within `ratio` of the successes at every failure rate (docs/STORM.md). Only the
            // place in `max_concurrent` ends here.
            drop(state.slot.take());
        }
        self.site.record_success(attempt);
        self.site.budget().deposit();
    }

    /// Ends a call whose current attempt was not made (`reason`: the breaker refused it, or the
    /// deadline left it no time), counting it as such.
    fn not_made<T, E>(
        &mut self,
        fields: &Fields,
        error: E,
        format: ErrorFormatter<E>,
        reason: GiveUpReason,
    ) -> Verdict<T, E> {
        let counters = self.site.counters();
        counters.failure(self.scope.number, false);
        if reason == GiveUpReason::BreakerOpen {
            counters.rejection();
            let breaker = self.policy.breaker().unwrap_or("");
            export::rejection(self.site.op(), breaker, self.scope.number);
        }
        self.give_up(fields, error, format, reason)
    }

    /// Counts the current attempt's failure (`timed_out`: cancelled by its limit) and reports
    /// it to its breaker `permit`: a failure if `transient` or timed out, else a success (a
    /// permanent error means the downstream answered).
    fn attempt_failed(&self, timed_out: Option<bool>, transient: bool, permit: Option<Permit>) {
        let counters = self.site.counters();
        counters.failure(self.scope.number, true);
        export::failure(self.site.op(), self.scope.number, timed_out.is_some());
        if timed_out.is_some() {
            counters.timeout();
        }
        if let Some(permit) = permit {
            if transient || timed_out.is_some() {
                permit.failure();
            } else {
                permit.success();
            }
        }
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
        L::Kept: ErrorSlot<E>,
        W: Transient<E> + ?Sized,
        H: RetryHint<E> + ?Sized,
    {
        self.state().slot = None;
        let counters = self.site.counters();
        let fields = self.fields();
        let described = Described(&error, format);
        let op = self.site.op();
        if let Some(reason) = self.state().skipped.take() {
            return self.not_made(&fields, error, format, reason);
        }
        let timed_out = self.state().timed_out.take();
        let transient = when.is_transient(&error);
        let permit = self.held.take_permit();
        self.attempt_failed(timed_out, transient, permit);
        match self.next_delay(transient, timed_out, retry_after, &error) {
            Ok(delay) => {
                let attempt = self.scope.number;
                counters.retry(attempt);
                let state = self.state();
                state
                    .span
                    .in_scope(|| log::retrying(&fields, described, delay));
                export::retry(op, attempt);
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
        let policy = self.policy;
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
        if self.scope.number >= policy.attempts() {
            return Err(GiveUpReason::AttemptsExhausted);
        }
        let backoff = delay_before_retry(policy, self.scope.number);
        let mut delay = jittered(policy, backoff, self.state().previous_delay, random_unit());
        if let Some(hint) = retry_after.retry_after(error) {
            if hint > policy.max() {
                return Err(GiveUpReason::RetryAfterTooLong);
            }
            delay = delay.max(hint);
        }
        if let Some(deadline) = policy.deadline() {
            // Room for the sleep and for an attempt after it (the timer's millisecond
            // granularity can round a sleep up).
            let attempt_room = Duration::from_millis(1);
            if self
                .elapsed()
                .saturating_add(delay)
                .saturating_add(attempt_room)
                >= deadline
            {
                return Err(GiveUpReason::Deadline);
            }
        }
        if let Some(breaker) = self.site.breaker() {
            if breaker.is_rejecting() {
                return Err(GiveUpReason::BreakerOpen);
            }
        }
        let cost = if timed_out.is_some() { 2 } else { 1 };
        let budget = self.site.budget();
        match budget.try_withdraw(cost) {
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
            scope::mark_retried_below();
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
