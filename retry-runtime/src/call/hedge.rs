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

pin_project_lite::pin_project! {
    /// One attempt of a hedged call: admitted (its body not given yet), running, or finished
    /// (its body dropped at once, what the call needs of it kept until it is judged). Its
    /// limit and its latency count from the moment it first waits, the moment from which the
    /// hedge delay beside it counts too.
    struct Running<F> {
        #[pin]
        body: Option<F>,
        scope: AttemptScope,
        permit: Option<Permit>,
        slot: Option<RetrySlot>,
        // When it first waited, on the call's clock (0: not yet).
        waited_at: u64,
        // When its limit (`timeout`, or what the deadline left) passes (0: none).
        expires_at: u64,
        // Its limit is what the deadline left.
        by_deadline: bool,
        // Started beside a running attempt, by the hedge delay.
        hedged: bool,
        // Finished: cut by its limit (`Some(true)`: the deadline's).
        timed_out: Option<bool>,
        // Finished without being made: the breaker refused it, or the deadline left no time.
        skipped: Option<GiveUpReason>,
    }
}

impl<F> Running<F> {
    /// Attempt `number`, admitted with the budget `slot` that pays for it (a retry's or a
    /// hedge's; the first attempt's is the call's own).
    #[inline]
    fn admitted(number: u32, slot: Option<RetrySlot>, hedged: bool) -> Self {
        Running {
            body: None,
            scope: AttemptScope::new(number),
            permit: None,
            slot,
            waited_at: 0,
            expires_at: 0,
            by_deadline: false,
            hedged,
            timed_out: None,
            skipped: None,
        }
    }

    /// It waits from `now` on (if it did not already): its limit, if any, counts from now.
    fn begin_waiting(self: Pin<&mut Self>, now: u64, limit: Option<(Duration, bool)>) {
        let this = self.project();
        if *this.waited_at != 0 {
            return;
        }
        *this.waited_at = now;
        if let Some((limit, by_deadline)) = limit {
            *this.expires_at = now.saturating_add(crate::clock::nanos(limit)).max(1);
            *this.by_deadline = by_deadline;
        }
    }

    /// Its limit, and whether it was what the deadline left.
    fn limit(&self) -> (Duration, bool) {
        let limit = self.expires_at.saturating_sub(self.waited_at);
        (Duration::from_nanos(limit), self.by_deadline)
    }

    /// Its time so far: zero if it never waited (it finished within its first poll, before a
    /// hedge delay could have begun), with no clock read.
    fn elapsed(&self) -> Duration {
        match self.waited_at {
            0 => Duration::ZERO,
            waited => Duration::from_nanos(crate::clock::now_nanos().saturating_sub(waited)),
        }
    }
}

/// The attempts in flight, oldest first.
fn each<'a, F>(
    first: &'a Option<Running<F>>,
    more: &'a [Pin<Box<Running<F>>>],
) -> impl Iterator<Item = &'a Running<F>> {
    first.iter().chain(more.iter().map(|r| &**r))
}

/// An attempt's body, polled in the attempt's own scope (`None`: it has none to poll).
fn poll_body<F: Future>(running: Pin<&mut Running<F>>, cx: &mut Context<'_>) -> Poll<F::Output> {
    let this = running.project();
    let Some(body) = this.body.as_pin_mut() else {
        return Poll::Pending;
    };
    let _in = this.scope.entered();
    body.poll(cx)
}

/// Where an attempt of [`Hedging`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Nowhere,
    First,
    // An index in `more` (at most `attempts`, a `u32`): 8 bytes where `usize` made 16.
    More(u32),
}

/// What the judgement of a finished attempt needs of it, taken out of [`Hedging`].
#[derive(Debug)]
struct Judged {
    number: u32,
    permit: Option<Permit>,
    hedged: bool,
    /// Its latency, when the percentile needs it (an attempt that finished by itself).
    latency: Option<Duration>,
    timed_out: Option<bool>,
    skipped: Option<GiveUpReason>,
    retried_below: bool,
}

pin_project_lite::pin_project! {
    /// The attempts of one hedged call: the first in place (a call whose first attempt wins
    /// allocates nothing), the hedges beside it boxed, and one timer for all of them.
    #[must_use = "a hedged call's attempts"]
    pub struct Hedging<F> {
        #[pin]
        first: Option<Running<F>>,
        more: Vec<Pin<Box<Running<F>>>>,
        // Set to the soonest of the hedge delay and the attempts' limits (made the first
        // time an attempt waits, then only reset).
        timer: Option<Timer>,
        // What `timer` is set to, on the call's clock.
        timer_at: u64,
        // When the next hedge may start beside the newest attempt (0: not armed).
        hedge_at: u64,
        // Attempts started.
        started: u32,
        // Transient failures that started another attempt.
        retries: u32,
        // The next attempt should start now (the first, or one after a transient failure).
        start_now: bool,
        // The attempt admitted, whose body `start` gives; the one finished, to be judged.
        pending: At,
        done: At,
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
            timer: None,
            timer_at: 0,
            hedge_at: 0,
            started: 0,
            retries: 0,
            start_now: true,
            pending: At::Nowhere,
            done: At::Nowhere,
        }
    }

    /// Attempts held: in flight, and the one admitted or finished, if any.
    fn running(&self) -> usize {
        self.first.is_some() as usize + self.more.len()
    }

    /// Takes `running` in (in place as the first if that is free, else boxed beside it).
    /// Inlined, so that the attempt is written where it goes (built by the caller and copied,
    /// its 16-byte loads stalled behind the smaller stores that had just built it).
    #[inline(always)]
    fn place(self: Pin<&mut Self>, running: Running<F>) -> At {
        let mut this = self.project();
        if this.first.is_none() {
            this.first.set(Some(running));
            At::First
        } else {
            this.more.push(Box::pin(running));
            At::More(this.more.len() as u32 - 1)
        }
    }

    /// The attempt at `at`.
    fn at(self: Pin<&mut Self>, at: At) -> Option<Pin<&mut Running<F>>> {
        let this = self.project();
        match at {
            At::Nowhere => None,
            At::First => this.first.as_pin_mut(),
            At::More(i) => this.more.get_mut(i as usize).map(|r| r.as_mut()),
        }
    }

    /// Drops the attempt at `at` (the others keep their places, but for `more`'s later ones).
    #[inline]
    fn remove(self: Pin<&mut Self>, at: At) {
        let mut this = self.project();
        match at {
            At::Nowhere => {}
            At::First => this.first.set(None),
            At::More(i) => drop(this.more.remove(i as usize)),
        }
    }

    /// Starts `body` as the attempt just admitted.
    #[inline]
    fn start(mut self: Pin<&mut Self>, body: F) {
        let at = std::mem::replace(self.as_mut().project().pending, At::Nowhere);
        let Some(running) = self.as_mut().at(at) else {
            // Only an admission leads here, and it always places the attempt first.
            debug_assert!(false, "a hedged attempt started without admission");
            return;
        };
        let running = running.project();
        let number = running.scope.number;
        let mut body_slot = running.body;
        body_slot.set(Some(body));
        let this = self.project();
        *this.started = number;
        *this.hedge_at = 0;
    }

    /// The attempt at `at` is done: its body is dropped at once, and it waits to be judged.
    fn finish(mut self: Pin<&mut Self>, at: At) -> Option<Pin<&mut Running<F>>> {
        let h = self.as_mut().project();
        *h.done = at;
        *h.hedge_at = 0;
        let mut running = self.at(at)?;
        running.as_mut().project().body.set(None);
        Some(running)
    }

    /// Takes the finished attempt out, with what its judgement needs (`measure`: its latency,
    /// for `hedge = "pNN"`, if it finished by itself).
    #[inline]
    fn take_done(mut self: Pin<&mut Self>, measure: bool) -> Judged {
        let at = std::mem::replace(self.as_mut().project().done, At::Nowhere);
        let Some(running) = self.as_mut().at(at) else {
            // Only a finished attempt leads to the judgement, and it always marks one.
            unreachable!("a hedged attempt judged without a finished one")
        };
        let by_itself = running.timed_out.is_none() && running.skipped.is_none();
        let latency = (measure && by_itself).then(|| running.elapsed());
        let r = running.project();
        let judged = Judged {
            number: r.scope.number,
            permit: r.permit.take(),
            hedged: *r.hedged,
            latency,
            timed_out: *r.timed_out,
            skipped: *r.skipped,
            retried_below: r.scope.retried_below(),
        };
        self.remove(at);
        judged
    }

    /// Drops every attempt still running; returns how many. With `record` (`hedge = "pNN"`),
    /// each one's time so far is recorded as a latency: it took at least that long, and
    /// leaving the slow attempts that lost out of the record would bias it fast (the delay
    /// would settle below the real percentile and hedge too often).
    fn cancel_all(self: Pin<&mut Self>, record: Option<&LatencyRecord>) -> u64 {
        let mut this = self.project();
        let cancelled = this.first.is_some() as u64 + this.more.len() as u64;
        if cancelled == 0 {
            return 0;
        }
        if let Some(record) = record {
            let now = crate::clock::now_nanos();
            let first = this.first.as_ref().get_ref().as_ref().map(|r| r.waited_at);
            let waits = first
                .into_iter()
                .chain(this.more.iter().map(|r| r.waited_at));
            for waited in waits.filter(|w| *w != 0) {
                record.record(Duration::from_nanos(now.saturating_sub(waited)));
            }
        }
        this.first.set(None);
        this.more.clear();
        *this.hedge_at = 0;
        cancelled
    }
}

impl<L: PermitSlot, S: StartTime> Call<L, S> {
    /// Runs the attempts of a hedged call, each built by `make` (the fn's body as an async
    /// block), until one finishes: its result is for [`Call::after_hedged_attempt`]. `R` is
    /// the fn's return type; `guard` is [`WithGuard`] or [`NoGuard`].
    #[inline]
    pub fn hedge_next<'a, R, F, M, G>(
        &'a mut self,
        hedging: Pin<&'a mut Hedging<F>>,
        guard: G,
        make: M,
    ) -> HedgeNext<'a, F, M, R, L, S, G>
    where
        M: FnMut() -> F,
    {
        HedgeNext {
            call: self,
            hedging,
            guard,
            make,
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

    /// When the next hedge may start, for an attempt that began waiting at `now` (0: none may,
    /// as `hedge = "pNN"` before its record has enough samples).
    fn hedge_at(&self, now: u64) -> u64 {
        match self.hedge_delay() {
            Some(delay) => now.saturating_add(crate::clock::nanos(delay)).max(1),
            None => 0,
        }
    }

    /// Decides what a finished attempt of a hedged call means: its success or permanent error
    /// ends the call (every other attempt dropped at once); a transient failure starts the
    /// next attempt at once (after the server's `retry_after` hint, if nothing else runs),
    /// while attempts, budget and breaker allow; otherwise the call waits for the attempts
    /// still running, or returns this error.
    ///
    /// Always inlined, with the failure path kept out of line, as [`Call::after_attempt`] is:
    /// a success is the call's common end.
    #[inline(always)]
    pub fn after_hedged_attempt<T, E, F, W, H>(
        &mut self,
        hedging: Pin<&mut Hedging<F>>,
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
                self.hedged_success(hedging);
                Verdict::Return(Ok(value))
            }
            Err(error) => self.after_hedged_failure(error, hedging, format, when, retry_after),
        }
    }

    /// Takes the attempt that finished out of `hedging`; it becomes the call's current one and
    /// its latency, when the percentile needs it, is recorded. Returns it, and the record for
    /// the attempts cancelled next.
    #[inline]
    fn judged<F>(
        &mut self,
        hedging: Pin<&mut Hedging<F>>,
    ) -> (Judged, Option<&'static LatencyRecord>) {
        let record = self.latency_record();
        let finished = hedging.take_done(record.is_some());
        self.scope = AttemptScope::new(finished.number);
        if let (Some(latency), Some(record)) = (finished.latency, record) {
            record.record(latency);
        }
        (finished, record)
    }

    /// The attempt just finished succeeded: the others are dropped, the latency recorded.
    #[inline]
    fn hedged_success<F>(&mut self, mut hedging: Pin<&mut Hedging<F>>) {
        let (finished, record) = self.judged(hedging.as_mut());
        if let Some(permit) = finished.permit {
            permit.success();
        }
        if hedging.running() > 0 {
            let cancelled = hedging.as_mut().cancel_all(record);
            self.site.counters().cancelled(cancelled);
        }
        if finished.hedged {
            self.site.counters().hedge_win();
            export::hedge_win(self.site.op());
        }
        self.on_success(if hedging.retries == 0 { 1 } else { 2 });
    }

    /// [`Call::after_hedged_attempt`] for a failed attempt.
    #[inline(never)]
    fn after_hedged_failure<T, E, F, W, H>(
        &mut self,
        error: E,
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
        let (finished, record) = self.judged(hedging.as_mut());
        let counters = self.site.counters();
        let op = self.site.op();
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
                let number = hedging.started + 1;
                let at = hedging
                    .as_mut()
                    .place(Running::admitted(number, Some(slot), false));
                let this = hedging.as_mut().project();
                *this.retries += 1;
                *this.start_now = true;
                *this.pending = at;
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
pub struct HedgeNext<'a, F, M, R, L: PermitSlot, S: StartTime, G> {
    call: &'a mut Call<L, S>,
    hedging: Pin<&'a mut Hedging<F>>,
    guard: G,
    make: M,
    result: PhantomData<fn() -> R>,
}

impl<F, M, T, E, L, S, G> Future for HedgeNext<'_, F, M, Result<T, E>, L, S, G>
where
    F: Future<Output = Result<T, E>>,
    // The generated closure borrows the fn's arguments: it is `Unpin`.
    M: FnMut() -> F + Unpin,
    L: PermitSlot,
    S: StartTime,
    G: GuardErrors<E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Only references, the closure and `Copy` values: nothing here is pinned structurally.
        let this = self.get_mut();
        let call = &mut *this.call;
        let guard = this.guard;
        let make = &mut this.make;
        let mut hedging = this.hedging.as_mut();
        if hedging.start_now {
            match call.admit_next(hedging.as_mut(), guard) {
                Some(Ok(())) => hedging.as_mut().start(make()),
                Some(Err(refused)) => return Poll::Ready(Err(refused)),
                None => {}
            }
        }
        // Each turn polls the attempts in flight (again after a hedge started), oldest first;
        // the first to finish is judged.
        loop {
            let mut h = hedging.as_mut().project();
            let mut done = None;
            if let Some(first) = h.first.as_mut().as_pin_mut() {
                if let Poll::Ready(result) = poll_body(first, cx) {
                    done = Some((At::First, result));
                }
            }
            if done.is_none() {
                for (i, running) in h.more.iter_mut().enumerate() {
                    if let Poll::Ready(result) = poll_body(running.as_mut(), cx) {
                        done = Some((At::More(i as u32), result));
                        break;
                    }
                }
            }
            if let Some((at, result)) = done {
                hedging.finish(at);
                return Poll::Ready(result);
            }
            // All wait. Those that just began to: their limits (and latencies) count from
            // now, and a hedge may start a delay after the newest began.
            let mut now = 0;
            let arm_hedge = *h.hedge_at == 0 && *h.started < call.policy.attempts();
            if arm_hedge || each(h.first.as_ref().get_ref(), h.more).any(|r| r.waited_at == 0) {
                now = crate::clock::now_nanos();
                let limit = call.attempt_limit();
                let first = h.first.as_mut().as_pin_mut();
                for running in first
                    .into_iter()
                    .chain(h.more.iter_mut().map(|r| r.as_mut()))
                {
                    running.begin_waiting(now, limit);
                }
                if arm_hedge {
                    *h.hedge_at = call.hedge_at(now);
                }
            }
            loop {
                let limits = each(h.first.as_ref().get_ref(), h.more).map(|r| r.expires_at);
                let Some(at) = limits.chain([*h.hedge_at]).filter(|at| *at != 0).min() else {
                    return Poll::Pending;
                };
                let timer = match h.timer {
                    None => h.timer.insert(Timer::at(at)),
                    Some(timer) => {
                        if *h.timer_at != at {
                            timer.reset(at);
                        }
                        timer
                    }
                };
                *h.timer_at = at;
                if Pin::new(timer).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // It fired: the time is at least what it was set to.
                now = crate::clock::now_nanos().max(at).max(now);
                let passed = |r: &Running<F>| r.expires_at != 0 && r.expires_at <= now;
                let expired = match h.first.as_ref().get_ref() {
                    Some(first) if passed(first) => Some((At::First, first.limit())),
                    _ => h
                        .more
                        .iter()
                        .enumerate()
                        .find_map(|(i, r)| passed(r).then(|| (At::More(i as u32), r.limit()))),
                };
                if let Some((at, (limit, by_deadline))) = expired {
                    if let Some(finished) = hedging.finish(at) {
                        let finished = finished.project();
                        *finished.timed_out = Some(by_deadline);
                        call.scope = AttemptScope::new(finished.scope.number);
                    }
                    call.log_timeout(limit);
                    let error = call.limit_error(limit, by_deadline);
                    return Poll::Ready(Err(guard.guard_error(error)));
                }
                if *h.hedge_at != 0 && *h.hedge_at <= now {
                    *h.hedge_at = 0;
                    let number = *h.started + 1;
                    if let Some(hedge) = call.admit_hedge(number) {
                        let at = hedging.as_mut().place(hedge);
                        *hedging.as_mut().project().pending = at;
                        hedging.as_mut().start(make());
                        break;
                    }
                    // Skipped (budget or breaker): what runs keeps running; the next chance
                    // comes after another delay.
                    *h.hedge_at = call.hedge_at(now);
                }
            }
        }
    }
}

impl<L: PermitSlot, S: StartTime> Call<L, S> {
    /// Admits the attempt that starts now (the first, or the next after a transient failure,
    /// which `after_hedged_attempt` placed with its budget slot): the deadline, then the
    /// breaker. `Some(Ok)`: admitted, its body is to start; `None`: refused while other
    /// attempts run, which the call waits for; `Some(Err)`: refused with nothing else
    /// running, the attempt's outcome.
    fn admit_next<F, E, G: GuardErrors<E>>(
        &mut self,
        mut hedging: Pin<&mut Hedging<F>>,
        guard: G,
    ) -> Option<Result<(), E>> {
        let number = hedging.started + 1;
        let h = hedging.as_mut().project();
        *h.start_now = false;
        let at = match std::mem::replace(h.pending, At::Nowhere) {
            At::Nowhere => hedging
                .as_mut()
                .place(Running::admitted(number, None, false)),
            at => at,
        };
        self.scope = AttemptScope::new(number);
        let admission = match self.attempt_limit() {
            Some((limit, true)) if limit.is_zero() => {
                Err((GiveUpReason::Deadline, self.limit_error(limit, true)))
            }
            _ => match self.site.breaker().map(|b| b.admit()) {
                Some(Ok(permit)) => Ok(Some(permit)),
                Some(Err(retry_in)) => {
                    let op = self.site.op();
                    let breaker = self.policy.breaker().unwrap_or(op);
                    Err((
                        GiveUpReason::BreakerOpen,
                        GuardError::BreakerOpen {
                            op,
                            breaker,
                            retry_in,
                        },
                    ))
                }
                None => Ok(None),
            },
        };
        let others = hedging.running() > 1;
        let running = hedging.as_mut().at(at)?.project();
        let (why, error) = match admission {
            Ok(permit) => {
                *running.permit = permit;
                *hedging.project().pending = at;
                return Some(Ok(()));
            }
            Err(refused) => refused,
        };
        // Not made: the retry granted for it gives its tokens back.
        if let Some(slot) = running.slot.take() {
            slot.refund();
        }
        if others {
            hedging.remove(at);
            return None;
        }
        *running.skipped = Some(why);
        *hedging.project().done = at;
        Some(Err(guard.guard_error(error)))
    }

    /// Admits a hedge beside the attempts in flight: a budget token, then the breaker. `None`
    /// skips it (what runs keeps running).
    fn admit_hedge<F>(&mut self, number: u32) -> Option<Running<F>> {
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
        let mut hedge = Running::admitted(number, Some(slot), true);
        hedge.permit = permit;
        Some(hedge)
    }
}
