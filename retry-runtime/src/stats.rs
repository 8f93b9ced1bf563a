//! Per-operation counters (calls, attempts, retries, give-ups by reason, timeouts, breaker
//! rejections) kept in lock-free atomics, and the in-process snapshot `stats()` reads.

use crate::registry;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The live counters of one call site. The success path touches one of them.
#[derive(Debug)]
pub struct OpCounters {
    first_try_successes: AtomicU64,
    first_failures: AtomicU64,
    failed_attempts: AtomicU64,
    retries: AtomicU64,
    retried_calls: AtomicU64,
    retry_successes: AtomicU64,
    give_ups: [AtomicU64; 7],
    timeouts: AtomicU64,
    rejections: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

impl OpCounters {
    /// All zero.
    pub const fn new() -> Self {
        OpCounters {
            first_try_successes: ZERO,
            first_failures: ZERO,
            failed_attempts: ZERO,
            retries: ZERO,
            retried_calls: ZERO,
            retry_successes: ZERO,
            give_ups: [ZERO; 7],
            timeouts: ZERO,
            rejections: ZERO,
        }
    }

    #[inline]
    pub(crate) fn success(&self, attempt: u32) {
        if attempt <= 1 {
            self.first_try_successes.fetch_add(1, Relaxed);
        } else {
            self.retry_successes.fetch_add(1, Relaxed);
        }
    }
    pub(crate) fn failure(&self, attempt: u32, made_call: bool) {
        if attempt <= 1 {
            self.first_failures.fetch_add(1, Relaxed);
        }
        if made_call {
            self.failed_attempts.fetch_add(1, Relaxed);
        }
    }
    pub(crate) fn retry(&self, attempt: u32) {
        if attempt <= 1 {
            self.retried_calls.fetch_add(1, Relaxed);
        }
        self.retries.fetch_add(1, Relaxed);
    }
    pub(crate) fn give_up(&self, reason: GiveUpReason) {
        self.give_ups[reason.index()].fetch_add(1, Relaxed);
    }
    pub(crate) fn timeout(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }
    pub(crate) fn rejection(&self) {
        self.rejections.fetch_add(1, Relaxed);
    }

    fn add_to(&self, s: &mut OpStats) {
        let first_ok = self.first_try_successes.load(Relaxed);
        let retry_ok = self.retry_successes.load(Relaxed);
        s.calls += first_ok + self.first_failures.load(Relaxed);
        s.attempts += first_ok + retry_ok + self.failed_attempts.load(Relaxed);
        s.retries += self.retries.load(Relaxed);
        s.retried_calls += self.retried_calls.load(Relaxed);
        s.first_try_successes += first_ok;
        s.retry_successes += retry_ok;
        for r in GiveUpReason::ALL {
            *s.give_ups.slot(r) += self.give_ups[r.index()].load(Relaxed);
        }
        s.timeouts += self.timeouts.load(Relaxed);
        s.rejections += self.rejections.load(Relaxed);
    }
}

impl Default for OpCounters {
    fn default() -> Self {
        Self::new()
    }
}

/// Give-ups of one operation, by reason (see [`GiveUpReason`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GiveUps {
    /// Every attempt was used.
    pub attempts_exhausted: u64,
    /// `when` called the error permanent.
    pub permanent_error: u64,
    /// The retry budget refused.
    pub budget_exhausted: u64,
    /// The deadline left no room.
    pub deadline: u64,
    /// The breaker was open.
    pub breaker_open: u64,
    /// The server asked for a delay above `max`.
    pub retry_after_too_long: u64,
    /// A nested call already retried the failure.
    pub retried_below: u64,
}

impl GiveUps {
    /// The count for `reason`.
    pub fn get(&self, reason: GiveUpReason) -> u64 {
        let mut copy = *self;
        *copy.slot(reason)
    }

    fn slot(&mut self, reason: GiveUpReason) -> &mut u64 {
        match reason {
            GiveUpReason::AttemptsExhausted => &mut self.attempts_exhausted,
            GiveUpReason::PermanentError => &mut self.permanent_error,
            GiveUpReason::Budget => &mut self.budget_exhausted,
            GiveUpReason::Deadline => &mut self.deadline,
            GiveUpReason::BreakerOpen => &mut self.breaker_open,
            GiveUpReason::RetryAfterTooLong => &mut self.retry_after_too_long,
            GiveUpReason::RetriedBelow => &mut self.retried_below,
        }
    }
}

/// A snapshot of one operation's counters (all call sites sharing its name, summed).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct OpStats {
    /// Operation name (`name = "…"`, else module path and fn name).
    pub op: &'static str,
    /// Calls that finished their first attempt.
    pub calls: u64,
    /// Attempts that reached the downstream.
    pub attempts: u64,
    /// Retries started.
    pub retries: u64,
    /// Calls that retried at least once.
    pub retried_calls: u64,
    /// Calls that succeeded on their first attempt.
    pub first_try_successes: u64,
    /// Calls that succeeded after one or more retries.
    pub retry_successes: u64,
    /// Calls that gave up, by reason.
    pub give_ups: GiveUps,
    /// Attempts cancelled by their timeout.
    pub timeouts: u64,
    /// Attempts refused by an open breaker.
    pub rejections: u64,
}

impl OpStats {
    /// Calls that gave up for `reason`.
    pub fn give_ups(&self, reason: GiveUpReason) -> u64 {
        self.give_ups.get(reason)
    }

    /// Calls that gave up, for any reason.
    pub fn total_give_ups(&self) -> u64 {
        GiveUpReason::ALL
            .iter()
            .map(|r| self.give_ups.get(*r))
            .sum()
    }

    /// Of the calls that retried, the share that ended in success: the number to alert on
    /// (a falling rate means retries are hiding a failing downstream). 1.0 when no call retried.
    pub fn retry_success_rate(&self) -> f64 {
        if self.retried_calls == 0 {
            1.0
        } else {
            (self.retry_successes as f64 / self.retried_calls as f64).min(1.0)
        }
    }

    /// Of all calls, the share that ended in success.
    pub fn success_rate(&self) -> f64 {
        if self.calls == 0 {
            1.0
        } else {
            ((self.first_try_successes + self.retry_successes) as f64 / self.calls as f64).min(1.0)
        }
    }
}

/// A circuit breaker as seen by [`stats()`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BreakerStats {
    /// Breaker name.
    pub breaker: &'static str,
    /// Its state now.
    pub state: crate::breaker::BreakerState,
    /// Its counts.
    pub counts: crate::breaker::BreakerCounts,
    /// Declared in a `breakers!` block (false: a name used with the defaults).
    pub declared: bool,
}

/// A retry budget as seen by [`stats()`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BudgetStats {
    /// Budget name (empty for a call site's own budget, which shows under its operation).
    pub budget: &'static str,
    /// Tokens left.
    pub tokens: f64,
    /// Retries granted.
    pub granted: u64,
    /// Retries refused.
    pub refused: u64,
}

/// Everything [`stats()`] saw, at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stats {
    /// One entry per operation name, sorted by name.
    pub operations: Vec<OpStats>,
    /// One entry per breaker in use or declared, sorted by name.
    pub breakers: Vec<BreakerStats>,
    /// One entry per named budget in use or declared, sorted by name.
    pub budgets: Vec<BudgetStats>,
}

impl Stats {
    /// The operation called `op`, if it ran.
    pub fn operation(&self, op: &str) -> Option<&OpStats> {
        self.operations.iter().find(|s| s.op == op)
    }
    /// The breaker called `name`, if known.
    pub fn breaker(&self, name: &str) -> Option<&BreakerStats> {
        self.breakers.iter().find(|s| s.breaker == name)
    }
    /// Iterates over the operations.
    pub fn iter(&self) -> std::slice::Iter<'_, OpStats> {
        self.operations.iter()
    }
}

impl<'a> IntoIterator for &'a Stats {
    type Item = &'a OpStats;
    type IntoIter = std::slice::Iter<'a, OpStats>;
    fn into_iter(self) -> Self::IntoIter {
        self.operations.iter()
    }
}

/// A snapshot of every operation, breaker and named budget used so far in this process.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// for op in &retry_runtime::stats() {
///     if op.retry_success_rate() < 0.95 {
///         eprintln!("{}: retries are failing", op.op);
///     }
/// }
/// # }
/// ```
pub fn stats() -> Stats {
    let mut operations: Vec<OpStats> = Vec::new();
    for site in registry::sites() {
        let op = site.op();
        let i = match operations.iter().position(|s| s.op == op) {
            Some(i) => i,
            None => {
                operations.push(OpStats {
                    op,
                    ..OpStats::default()
                });
                operations.len() - 1
            }
        };
        site.counters().add_to(&mut operations[i]);
    }
    operations.sort_by(|a, b| a.op.cmp(b.op));
    let mut breakers: Vec<BreakerStats> = registry::breakers()
        .into_iter()
        .map(|(b, declared)| BreakerStats {
            breaker: b.name(),
            state: b.state(),
            counts: b.counts(),
            declared,
        })
        .collect();
    breakers.sort_by(|a, b| a.breaker.cmp(b.breaker));
    let mut budgets: Vec<BudgetStats> = registry::budgets()
        .into_iter()
        .map(|b| {
            let (granted, refused) = b.counts();
            BudgetStats {
                budget: b.name(),
                tokens: b.tokens(),
                granted,
                refused,
            }
        })
        .collect();
    budgets.sort_by(|a, b| a.budget.cmp(b.budget));
    Stats {
        operations,
        breakers,
        budgets,
    }
}
