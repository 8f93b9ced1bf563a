//! The live counters of one call site (calls, attempts, retries, give-ups by reason, timeouts,
//! breaker rejections), kept in lock-free atomics; `stats()` sums them into snapshots.

use crate::give_up::GiveUpReason;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The live counters of one call site. The success path touches one of them.
#[derive(Debug)]
pub struct OpCounters {
    pub(crate) first_try_successes: AtomicU64,
    pub(crate) first_failures: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) retried_calls: AtomicU64,
    pub(crate) retry_successes: AtomicU64,
    pub(crate) give_ups: [AtomicU64; 7],
    pub(crate) timeouts: AtomicU64,
    pub(crate) rejections: AtomicU64,
    pub(crate) hedges: AtomicU64,
    pub(crate) hedge_wins: AtomicU64,
    /// Attempts in flight dropped because another attempt of their call ended it.
    pub(crate) cancelled: AtomicU64,
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
            hedges: ZERO,
            hedge_wins: ZERO,
            cancelled: ZERO,
        }
    }

    /// True once a call finished its first attempt.
    pub(crate) fn ran(&self) -> bool {
        self.first_try_successes.load(Relaxed) != 0 || self.first_failures.load(Relaxed) != 0
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
    pub(crate) fn hedge(&self) {
        self.hedges.fetch_add(1, Relaxed);
    }
    pub(crate) fn hedge_win(&self) {
        self.hedge_wins.fetch_add(1, Relaxed);
    }
    pub(crate) fn cancelled(&self, attempts: u64) {
        if attempts != 0 {
            self.cancelled.fetch_add(attempts, Relaxed);
        }
    }
    pub(crate) fn rejection(&self) {
        self.rejections.fetch_add(1, Relaxed);
    }
}

impl Default for OpCounters {
    fn default() -> Self {
        Self::new()
    }
}
