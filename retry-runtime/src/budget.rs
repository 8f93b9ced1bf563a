//! Retry budgets: a success-funded token bucket per budget name (or per call site) that caps
//! retries to a fraction of real traffic, plus an optional cap on retries in flight.

use crate::clock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Tokens are counted in thousandths, so that a deposit of 0.1 is an integer add.
const MILLI: u64 = 1000;

/// The shape of one retry budget.
///
/// # Defaults
/// - `capacity`: 100 tokens (the bucket starts full)
/// - `ratio`: 0.1 token deposited per successful call
/// - `min_per_sec`: 1 retry per second allowed even when the bucket is empty
/// - `max_concurrent`: none (no cap on retries in flight)
///
/// ```
/// use retry_runtime::BudgetConfig;
/// const TIGHT: BudgetConfig = BudgetConfig::DEFAULT.with_capacity(10).with_max_concurrent(4);
/// assert_eq!(TIGHT.ratio, 0.1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    /// Bucket size, and its starting level.
    pub capacity: u32,
    /// Tokens deposited by each successful call.
    pub ratio: f64,
    /// Retries allowed per second even with an empty bucket.
    pub min_per_sec: u32,
    /// Most retries in flight at once (`None`: no cap).
    pub max_concurrent: Option<u32>,
}

impl BudgetConfig {
    /// 100 tokens, 0.1 per success, 1 retry per second when empty, no concurrency cap.
    pub const DEFAULT: BudgetConfig = BudgetConfig {
        capacity: 100,
        ratio: 0.1,
        min_per_sec: 1,
        max_concurrent: None,
    };
    /// Sets the bucket size.
    pub const fn with_capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }
    /// Sets the deposit per successful call.
    pub const fn with_ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }
    /// Sets the retries per second allowed when empty.
    pub const fn with_min_per_sec(mut self, min_per_sec: u32) -> Self {
        self.min_per_sec = min_per_sec;
        self
    }
    /// Caps the retries in flight.
    pub const fn with_max_concurrent(mut self, max: u32) -> Self {
        self.max_concurrent = Some(max);
        self
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a budget refused a retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The bucket is empty and this second's minimum is used up.
    Exhausted,
    /// `max_concurrent` retries are already in flight.
    Concurrency,
}

/// A token bucket shared by every call drawing on it. All operations are lock-free.
///
/// A retry withdraws its cost when it is decided; the call gives the tokens back
/// ([`RetrySlot::refund`]) when that retry succeeds, or is not made after all (a breaker
/// refused it, the deadline left no time), so only retries that fail cost the budget.
///
/// ```
/// use retry_runtime::{Budget, BudgetConfig};
/// static B: Budget = Budget::new("docs", BudgetConfig::DEFAULT.with_capacity(2).with_min_per_sec(0));
/// let a = B.try_withdraw(1).unwrap();
/// let b = B.try_withdraw(1).unwrap();
/// assert!(B.try_withdraw(1).is_err()); // empty: no retry
/// drop((a, b));
/// for _ in 0..10 { B.deposit(); }      // ten successes fund one retry
/// assert!(B.try_withdraw(1).is_ok());
/// ```
#[derive(Debug)]
pub struct Budget {
    name: &'static str,
    config: BudgetConfig,
    deposit_milli: u64,
    capacity_milli: u64,
    tokens_milli: AtomicU64,
    /// The `min_per_sec` allowance of an empty bucket, as a second bucket that refills
    /// continuously: `(last refill in ms of clock::now_nanos) << 20 | milli-tokens`.
    floor: AtomicU64,
    in_flight: AtomicU32,
    granted: AtomicU64,
    refused: AtomicU64,
}

impl Budget {
    /// A full budget.
    pub const fn new(name: &'static str, config: BudgetConfig) -> Budget {
        // NaN and negatives deposit nothing; a huge ratio is clamped so deposits cannot overflow.
        let ratio = if config.ratio > 0.0 {
            if config.ratio < 1e6 {
                config.ratio
            } else {
                1e6
            }
        } else {
            0.0
        };
        let capacity_milli = config.capacity as u64 * MILLI;
        Budget {
            name,
            config,
            deposit_milli: (ratio * MILLI as f64) as u64,
            capacity_milli,
            tokens_milli: AtomicU64::new(capacity_milli),
            floor: AtomicU64::new(FLOOR_UNUSED),
            in_flight: AtomicU32::new(0),
            granted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The budget's name (empty for a call site's own budget).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its configuration.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// Tokens in the bucket now.
    pub fn tokens(&self) -> f64 {
        self.tokens_milli.load(Relaxed).min(self.capacity_milli) as f64 / MILLI as f64
    }

    /// Retries in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Retries granted and refused so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.granted.load(Relaxed), self.refused.load(Relaxed))
    }

    /// Funds the bucket after a successful call: one load when it is full (the steady state),
    /// else one add.
    #[inline]
    pub fn deposit(&self) {
        if self.tokens_milli.load(Relaxed) < self.capacity_milli {
            self.credit(self.deposit_milli);
        }
    }

    /// Adds `milli` thousandths of a token, never leaving more than `capacity` for longer than
    /// the instant between the add and the clamp (withdrawals clamp what they read).
    fn credit(&self, milli: u64) {
        let before = self.tokens_milli.fetch_add(milli, AcqRel);
        if before.saturating_add(milli) > self.capacity_milli {
            self.tokens_milli.fetch_min(self.capacity_milli, AcqRel);
        }
    }

    /// Asks for one retry costing `cost` tokens. Never waits: `Err` means "do not retry".
    /// The returned slot counts the retry as in flight until it is dropped.
    pub fn try_withdraw(&'static self, cost: u32) -> Result<RetrySlot, Refusal> {
        let in_flight = if let Some(max) = self.config.max_concurrent {
            if self.in_flight.fetch_add(1, AcqRel) >= max {
                self.in_flight.fetch_sub(1, AcqRel);
                self.refused.fetch_add(1, Relaxed);
                return Err(Refusal::Concurrency);
            }
            true
        } else {
            false
        };
        let mut slot = RetrySlot {
            budget: self,
            in_flight,
            taken_milli: 0,
        };
        let want = cost as u64 * MILLI;
        // Compare against the stored value itself (a deposit may have left it above capacity
        // for a moment): the exchange then never waits on another thread's `fetch_min`.
        let mut stored = self.tokens_milli.load(Relaxed);
        loop {
            let available = stored.min(self.capacity_milli);
            if available < want {
                break;
            }
            match self
                .tokens_milli
                .compare_exchange_weak(stored, available - want, AcqRel, Relaxed)
            {
                Ok(_) => {
                    self.granted.fetch_add(1, Relaxed);
                    slot.taken_milli = want;
                    return Ok(slot);
                }
                Err(actual) => stored = actual,
            }
        }
        if self.take_minimum() {
            self.granted.fetch_add(1, Relaxed);
            return Ok(slot);
        }
        self.refused.fetch_add(1, Relaxed);
        Err(Refusal::Exhausted)
    }

    /// The `min_per_sec` allowance of an empty bucket (reads the clock: refusal path only).
    ///
    /// A small bucket of `min_per_sec` tokens refilled continuously at `min_per_sec` per
    /// second: it depends only on time differences, so runs on a paused clock are exact.
    fn take_minimum(&self) -> bool {
        let rate = u64::from(self.config.min_per_sec.min(FLOOR_MAX_PER_SEC));
        if rate == 0 {
            return false;
        }
        let full = rate * MILLI;
        let now_ms = clock::now_nanos() / 1_000_000;
        let mut word = self.floor.load(Acquire);
        loop {
            let (last_ms, level) = if word == FLOOR_UNUSED {
                (now_ms, full)
            } else {
                (word >> FLOOR_SHIFT, word & FLOOR_LEVEL_MASK)
            };
            let refill = now_ms.saturating_sub(last_ms).saturating_mul(rate);
            let level = level.saturating_add(refill).min(full);
            let (granted, level) = match level.checked_sub(MILLI) {
                Some(left) => (true, left),
                None => (false, level),
            };
            let next = (now_ms.max(last_ms) << FLOOR_SHIFT) | level;
            match self
                .floor
                .compare_exchange_weak(word, next, AcqRel, Acquire)
            {
                Ok(_) => return granted,
                Err(actual) => word = actual,
            }
        }
    }
}

/// `floor` before its first use (the allowance starts full).
const FLOOR_UNUSED: u64 = u64::MAX;
const FLOOR_SHIFT: u32 = 20;
const FLOOR_LEVEL_MASK: u64 = (1 << FLOOR_SHIFT) - 1;
/// The level is stored in 20 bits of milli-tokens.
const FLOOR_MAX_PER_SEC: u32 = ((1 << FLOOR_SHIFT) - 1) / MILLI as u32;

/// A granted retry, counted as in flight (for `max_concurrent`) until dropped.
#[derive(Debug)]
#[must_use = "dropping the slot ends the retry's place in `max_concurrent`"]
pub struct RetrySlot {
    budget: &'static Budget,
    /// Counted in `in_flight` (the budget has `max_concurrent`).
    in_flight: bool,
    /// Tokens taken from the bucket (0 when the `min_per_sec` floor granted it).
    taken_milli: u64,
}

impl RetrySlot {
    /// The retry was not made after all (the breaker refused it): its tokens go back.
    pub fn refund(mut self) {
        let taken = std::mem::take(&mut self.taken_milli);
        if taken > 0 {
            self.budget.credit(taken);
        }
    }
}

impl Drop for RetrySlot {
    fn drop(&mut self) {
        if self.in_flight {
            self.budget.in_flight.fetch_sub(1, AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_empty_bucket_still_allows_min_per_sec() {
        static B: Budget = Budget::new(
            "t-min",
            BudgetConfig::DEFAULT.with_capacity(0).with_min_per_sec(2),
        );
        assert!(B.try_withdraw(1).is_ok());
        assert!(B.try_withdraw(1).is_ok());
        assert_eq!(B.try_withdraw(1).unwrap_err(), Refusal::Exhausted);
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert!(B.try_withdraw(1).is_ok());
    }

    #[test]
    fn deposits_never_overfill() {
        static B: Budget = Budget::new("t-fill", BudgetConfig::DEFAULT.with_capacity(1));
        for _ in 0..100 {
            B.deposit();
        }
        assert_eq!(B.tokens(), 1.0);
        let _slot = B.try_withdraw(1).unwrap();
        assert_eq!(B.tokens(), 0.0);
    }

    #[test]
    fn a_refunded_retry_gives_its_tokens_back() {
        static B: Budget = Budget::new(
            "t-refund",
            BudgetConfig::DEFAULT.with_capacity(2).with_min_per_sec(0),
        );
        let slot = B.try_withdraw(2).unwrap();
        assert_eq!(B.tokens(), 0.0);
        slot.refund();
        assert_eq!(B.tokens(), 2.0);
    }

    #[test]
    fn max_concurrent_caps_retries_in_flight() {
        static B: Budget = Budget::new("t-conc", BudgetConfig::DEFAULT.with_max_concurrent(1));
        let first = B.try_withdraw(1).unwrap();
        assert_eq!(B.try_withdraw(1).unwrap_err(), Refusal::Concurrency);
        drop(first);
        assert!(B.try_withdraw(1).is_ok());
    }

    #[test]
    fn a_timeout_retry_costs_two() {
        static B: Budget = Budget::new(
            "t-cost",
            BudgetConfig::DEFAULT.with_capacity(3).with_min_per_sec(0),
        );
        let _a = B.try_withdraw(2).unwrap();
        assert!(B.try_withdraw(2).is_err());
        assert!(B.try_withdraw(1).is_ok());
    }
}
