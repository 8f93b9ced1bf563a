//! Per-operation counters (calls, attempts, retries, give-ups by reason, timeouts, breaker
//! rejections) kept in lock-free atomics, and the in-process snapshot `stats()` reads.

use crate::counters::OpCounters;
use crate::registry;
use crate::site;
use std::sync::atomic::Ordering::Relaxed;

pub use crate::give_up::GiveUpReason;

/// Give-ups of one operation, by reason (see [`GiveUpReason`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
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
#[non_exhaustive]
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
    /// Hedged attempts started beside a slow one (`hedge = "…"`).
    pub hedges: u64,
    /// Calls won by a hedged attempt (one other than the attempt it was started beside).
    pub hedge_wins: u64,
}

impl OpStats {
    /// Adds one call site's counters.
    fn add(&mut self, c: &OpCounters) {
        let first_ok = c.first_try_successes.load(Relaxed);
        let retry_ok = c.retry_successes.load(Relaxed);
        self.calls += first_ok + c.first_failures.load(Relaxed);
        self.attempts +=
            first_ok + retry_ok + c.failed_attempts.load(Relaxed) + c.cancelled.load(Relaxed);
        self.retries += c.retries.load(Relaxed);
        self.retried_calls += c.retried_calls.load(Relaxed);
        self.first_try_successes += first_ok;
        self.retry_successes += retry_ok;
        for r in GiveUpReason::ALL {
            *self.give_ups.slot(r) += c.give_ups[r.index()].load(Relaxed);
        }
        self.timeouts += c.timeouts.load(Relaxed);
        self.rejections += c.rejections.load(Relaxed);
        self.hedges += c.hedges.load(Relaxed);
        self.hedge_wins += c.hedge_wins.load(Relaxed);
    }

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
#[non_exhaustive]
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
#[non_exhaustive]
pub struct BudgetStats {
    /// Budget name (a named budget: a call site's own budget is not listed here).
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
#[non_exhaustive]
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
    // Only the sites that ran (a call finished its first attempt) are listed.
    for site in site::sites().iter().filter(|s| s.counters().ran()) {
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
        operations[i].add(site.counters());
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
