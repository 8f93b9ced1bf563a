//! Retry budgets: the successes of the last `window` fund retries (`ratio` tokens each, at most
//! `capacity`), plus a `min_per_sec` floor while successes are recent and a cap in flight.

#[cfg(feature = "redis")]
mod fleet;
mod ledger;

#[cfg(feature = "redis")]
pub(crate) use fleet::LeaseReport;

use crate::clock;
use ledger::{Grant, Ledger, Shape};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The shape of one retry budget.
///
/// # Defaults
/// - `capacity`: 100 tokens at most (a budget starts empty: only successes fund it)
/// - `ratio`: 0.125 token deposited per successful call
/// - `min_per_sec`: 1 retry per second allowed beyond the tokens, while the window saw a success
/// - `max_concurrent`: none (no cap on retries in flight)
/// - `window`: 5 s (a deposit expires after it; the floor needs a success within it)
///
/// ```
/// use retry_runtime::BudgetConfig;
/// const TIGHT: BudgetConfig = BudgetConfig::DEFAULT.with_capacity(10).with_max_concurrent(4);
/// assert_eq!(TIGHT.ratio(), 0.125);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    /// The most tokens the budget may hold.
    capacity: u32,
    /// Tokens deposited by each successful call.
    ratio: f64,
    /// Retries allowed per second beyond the tokens, while the window saw a success.
    min_per_sec: u32,
    /// Most retries in flight at once (`None`: no cap).
    max_concurrent: Option<u32>,
    /// How long a deposit lasts, and how recent a success must be for the floor.
    window: Duration,
}

impl BudgetConfig {
    /// At most 100 tokens, 0.125 per success, kept 5 s; 1 retry per second beyond them while the
    /// last 5 s saw a success; no concurrency cap.
    pub const DEFAULT: BudgetConfig = BudgetConfig {
        capacity: 100,
        ratio: 0.125,
        min_per_sec: 1,
        max_concurrent: None,
        window: Duration::from_secs(5),
    };
    /// Sets the most tokens held.
    pub const fn with_capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }
    /// Sets the deposit per successful call.
    pub const fn with_ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }
    /// Sets the retries per second allowed beyond the tokens.
    pub const fn with_min_per_sec(mut self, min_per_sec: u32) -> Self {
        self.min_per_sec = min_per_sec;
        self
    }
    /// Caps the retries in flight.
    pub const fn with_max_concurrent(mut self, max: u32) -> Self {
        self.max_concurrent = Some(max);
        self
    }
    /// Sets how long a deposit lasts.
    pub const fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
}

impl BudgetConfig {
    /// `capacity` (see the field list above).
    pub const fn capacity(&self) -> u32 {
        self.capacity
    }

    /// `ratio` (see the field list above).
    pub const fn ratio(&self) -> f64 {
        self.ratio
    }

    /// `min_per_sec` (see the field list above).
    pub const fn min_per_sec(&self) -> u32 {
        self.min_per_sec
    }

    /// `max_concurrent` (see the field list above).
    pub const fn max_concurrent(&self) -> Option<u32> {
        self.max_concurrent
    }

    /// `window` (see the field list above).
    pub const fn window(&self) -> Duration {
        self.window
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
    /// The window's deposits are spent and the floor does not apply (or is used up).
    Exhausted,
    /// `max_concurrent` retries are already in flight.
    Concurrency,
}

/// `fresh` before the first success: that success reads the clock once, to date the start.
const UNTOUCHED: u64 = u64::MAX;

/// The retry budget shared by every call drawing on it.
///
/// A successful call counts itself in one atomic (one load once the count is high enough to
/// fill the bucket: no clock, no lock). The retry path, which reads the clock anyway, books
/// those successes into the last `window` (as spread evenly since it last looked: the
/// successes were not timed), drops what expired, and withdraws the retry's cost (1, 2 after a
/// timeout) from the oldest deposits. So the budget holds about `ratio` × the successes of
/// the last `window` minus the retries of that window, never more than `capacity`, and never
/// more than its own recent traffic earned: it starts empty. Beyond the tokens, `min_per_sec`
/// retries a second are allowed while the window saw a success. A retry that is not made
/// after all (a breaker refused it, the deadline left no time) gives its cost back.
///
/// ```
/// use retry_runtime::{Budget, BudgetConfig};
/// static B: Budget = Budget::new("docs", BudgetConfig::DEFAULT.with_ratio(0.1).with_min_per_sec(0));
/// assert!(B.try_withdraw(1).is_err()); // nothing earned yet: no retry
/// for _ in 0..20 { B.deposit(); }      // twenty successes fund two retries
/// let a = B.try_withdraw(1).unwrap();
/// let b = B.try_withdraw(1).unwrap();
/// assert!(B.try_withdraw(1).is_err());
/// drop((a, b));
/// ```
#[derive(Debug)]
pub struct Budget {
    name: &'static str,
    config: BudgetConfig,
    shape: Shape,
    /// The live configuration's limits (null: `config`'s and `shape`'s); leaked, never freed.
    tuned: std::sync::atomic::AtomicPtr<(BudgetConfig, Shape)>,
    /// Successes not booked into the ledger yet, saturating at `fresh_max` (`UNTOUCHED`
    /// before the first one).
    fresh: AtomicU64,
    fresh_max: u64,
    /// When the first success happened (ms of `clock::now_nanos`), 0 before it.
    first_ms: AtomicU64,
    ledger: Mutex<Ledger>,
    /// The ledger's tokens after the last retry decision (f64 bits), for the tokens gauge,
    /// which the success path refreshes without the lock.
    booked: AtomicU64,
    /// The tokens gauge's handle, registered at the first success (feature `metrics`).
    #[cfg(feature = "metrics")]
    gauge: std::sync::OnceLock<metrics::Gauge>,
    in_flight: AtomicU32,
    granted: AtomicU64,
    refused: AtomicU64,
    /// The fleet's tokens this process may spend (milli-tokens; `fleet::LOCAL`: not shared,
    /// or Redis unreachable, and the local ledger decides). See `budget/fleet.rs`.
    #[cfg(feature = "redis")]
    lease: std::sync::atomic::AtomicI64,
}

impl Budget {
    /// An empty budget.
    pub const fn new(name: &'static str, config: BudgetConfig) -> Budget {
        // NaN and negatives deposit nothing; a huge ratio is clamped.
        let ratio = if config.ratio > 0.0 {
            if config.ratio < 1e6 {
                config.ratio
            } else {
                1e6
            }
        } else {
            0.0
        };
        // Counting successes beyond what fills the bucket twice over (and keeps the floor
        // open) changes nothing once they are booked within the window: the count stops
        // there, and the success path is a load again.
        let fill = if ratio > 0.0 {
            (config.capacity as f64 / ratio) as u64
        } else {
            0
        };
        let fresh_max = fill.saturating_mul(2).saturating_add(64);
        Budget {
            name,
            config,
            shape: Shape {
                capacity: config.capacity as f64,
                ratio,
                min_per_sec: config.min_per_sec as f64,
                window_ms: ledger::window_ms(config.window),
                start: start_grant(config),
            },
            tuned: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            fresh: AtomicU64::new(UNTOUCHED),
            fresh_max: if fresh_max < UNTOUCHED - 1 {
                fresh_max
            } else {
                UNTOUCHED - 1
            },
            first_ms: AtomicU64::new(0),
            ledger: Mutex::new(Ledger::new()),
            booked: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            gauge: std::sync::OnceLock::new(),
            in_flight: AtomicU32::new(0),
            granted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            #[cfg(feature = "redis")]
            lease: std::sync::atomic::AtomicI64::new(fleet::LOCAL),
        }
    }

    /// The budget's name (empty for a call site's own budget).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its configuration: the one given to [`Budget::new`] unless the live configuration
    /// changed it.
    pub fn config(&self) -> &BudgetConfig {
        match self.tuned() {
            Some((config, _)) => config,
            None => &self.config,
        }
    }

    /// The configuration given to [`Budget::new`] (its `budgets!` block).
    pub fn compiled_config(&self) -> &BudgetConfig {
        &self.config
    }

    fn tuned(&self) -> Option<&(BudgetConfig, Shape)> {
        // SAFETY: null or a leaked box (`retune`), never freed.
        unsafe {
            self.tuned
                .load(std::sync::atomic::Ordering::Acquire)
                .as_ref()
        }
    }

    fn shape(&self) -> &Shape {
        match self.tuned() {
            Some((_, shape)) => shape,
            None => &self.shape,
        }
    }

    /// Counts from now on by `config` (`None`: the compiled one); tokens, grants and the
    /// ledger carry over. Its `window` must be the compiled one (the live configuration
    /// checks it).
    #[cfg_attr(not(feature = "config"), allow(dead_code))]
    pub(crate) fn retune(&self, config: Option<BudgetConfig>) {
        let next = match config {
            Some(c) if c == self.config => std::ptr::null_mut(),
            Some(c) if self.tuned().is_some_and(|(t, _)| *t == c) => return,
            Some(c) => Box::into_raw(Box::new((c, Budget::new(self.name, c).shape))),
            None => std::ptr::null_mut(),
        };
        self.tuned.store(next, std::sync::atomic::Ordering::Release);
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tokens held as of the last retry decision, plus the successes counted since (not yet
    /// aged: that happens on the retry path), at most `capacity`.
    pub fn tokens(&self) -> f64 {
        let fresh = match self.fresh.load(Relaxed) {
            UNTOUCHED => 0,
            n => n,
        };
        let shape = self.shape();
        let held = self.ledger().tokens() + fresh as f64 * shape.ratio;
        held.min(shape.capacity)
    }

    /// Retries in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Retries granted and refused so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.granted.load(Relaxed), self.refused.load(Relaxed))
    }

    /// Counts a successful call: one load once enough successes are counted to fill the
    /// bucket (the steady state), else one add. No clock, no lock.
    #[inline]
    pub fn deposit(&self) {
        let n = self.fresh.load(Relaxed);
        if n < self.fresh_max {
            let _counted = self.fresh.fetch_add(1, Relaxed);
            // With feature `metrics`: the tokens gauge follows the refill every 32 successes
            // (and when the count fills the bucket), not only at the next retry decision.
            #[cfg(feature = "metrics")]
            if (_counted + 1) % 32 == 0 || _counted + 1 == self.fresh_max {
                self.export_tokens();
            }
        } else if n == UNTOUCHED {
            self.first_deposit();
        }
    }

    /// Sets the tokens gauge from the last decision's tokens and the successes since (no lock).
    #[cfg(feature = "metrics")]
    #[cold]
    #[inline(never)]
    fn export_tokens(&self) {
        let fresh = match self.fresh.load(Relaxed) {
            UNTOUCHED => 0,
            n => n,
        };
        let booked = f64::from_bits(self.booked.load(Relaxed));
        let shape = self.shape();
        let tokens = (booked + fresh as f64 * shape.ratio).min(shape.capacity);
        self.gauge().set(tokens);
    }

    /// The tokens gauge, registered once (the first success registers it: no allocation on
    /// the success path afterwards).
    #[cfg(feature = "metrics")]
    fn gauge(&self) -> &metrics::Gauge {
        self.gauge
            .get_or_init(|| crate::export::budget_tokens_gauge(self.name))
    }

    /// The budget's first success ever: dates the start of its earnings (one clock read in
    /// the budget's life), so that its first retry decision knows over how long they came.
    #[cold]
    #[inline(never)]
    fn first_deposit(&self) {
        #[cfg(feature = "metrics")]
        self.gauge();
        let now_ms = clock::now_nanos() / 1_000_000;
        let _ = self
            .first_ms
            .compare_exchange(0, now_ms.max(1), AcqRel, Relaxed);
        if self
            .fresh
            .compare_exchange(UNTOUCHED, 1, AcqRel, Relaxed)
            .is_err()
        {
            self.deposit();
        }
    }

    /// Asks for one retry costing `cost` tokens. Never waits: `Err` means "do not retry".
    /// The returned slot counts the retry as in flight until it is dropped. Reads the clock
    /// and takes the budget's lock for a few arithmetic steps (the retry path only).
    pub fn try_withdraw(&'static self, cost: u32) -> Result<RetrySlot, Refusal> {
        let in_flight = if let Some(max) = self.config().max_concurrent {
            if self.in_flight.fetch_add(1, AcqRel) >= max {
                self.in_flight.fetch_sub(1, AcqRel);
                self.refused.fetch_add(1, Relaxed);
                return Err(Refusal::Concurrency);
            }
            true
        } else {
            false
        };
        let slot = RetrySlot {
            budget: self,
            in_flight,
            grant: None,
        };
        let now_ms = clock::now_nanos() / 1_000_000;
        let grant = {
            // One shape for the whole decision, even if a reload retunes the budget meanwhile.
            let shape = self.shape();
            let mut ledger = self.ledger();
            // Shared: the fleet's lease decides; the local ledger still books the same retry,
            // so that it is right when Redis goes away (the sync task books the successes,
            // which it also reports to the fleet).
            #[cfg(feature = "redis")]
            let leased = self.lease.load(Acquire) != fleet::LOCAL;
            #[cfg(not(feature = "redis"))]
            let leased = false;
            if !leased {
                self.book(shape, &mut ledger, now_ms);
            }
            let grant = ledger.take(shape, now_ms, f64::from(cost));
            self.booked.store(ledger.tokens().to_bits(), Relaxed);
            (grant, leased)
        };
        #[cfg(feature = "redis")]
        if grant.1 {
            let paid = self.take_lease(cost).map(|milli| Paid::Fleet {
                milli,
                local: grant.0,
            });
            return self.decide(slot, paid);
        }
        self.decide(slot, grant.0.map(Paid::Local))
    }

    /// Books the successes counted since the last look into the ledger (under its lock);
    /// returns how many there were (at least; the count saturates at `fresh_max`).
    fn book(&self, shape: &Shape, ledger: &mut Ledger, now_ms: u64) -> u64 {
        let successes = match self.fresh.load(Acquire) {
            UNTOUCHED => 0,
            _ => self.fresh.swap(0, AcqRel),
        };
        let mut since = self.first_ms.load(Acquire);
        if successes >= self.fresh_max {
            // The count saturated: it tells only that at least this many came, so they
            // are dated within the last window (spread over a long healthy stretch, they
            // would have earned almost nothing when an outage begins).
            since = since.max(now_ms.saturating_sub(shape.window_ms));
        }
        ledger.collect(shape, now_ms, since, successes);
        successes
    }

    /// Counts the decision and hands out the slot.
    fn decide(&self, mut slot: RetrySlot, paid: Option<Paid>) -> Result<RetrySlot, Refusal> {
        // The tokens gauge, from this decision's ledger (every success is booked now), set
        // after the lock is released: a recorder is user code.
        #[cfg(feature = "metrics")]
        self.gauge()
            .set(f64::from_bits(self.booked.load(Relaxed)).min(self.shape().capacity));
        match paid {
            Some(paid) => {
                self.granted.fetch_add(1, Relaxed);
                slot.grant = Some(paid);
                Ok(slot)
            }
            None => {
                self.refused.fetch_add(1, Relaxed);
                Err(Refusal::Exhausted)
            }
        }
    }
}

/// What paid for a granted retry.
#[derive(Debug)]
enum Paid {
    /// The local ledger's tokens or floor.
    Local(Grant),
    /// The fleet's lease (milli-tokens), and what the local ledger booked beside it.
    #[cfg(feature = "redis")]
    Fleet { milli: i64, local: Option<Grant> },
}

/// What a budget starts with: `min_per_sec` × `window` tokens (5 by default), at most
/// `capacity`, dated at its first event (first success or first retry decision) and expiring
/// a window later. It lets a new process retry its first failures; a process that has run
/// for a window has only what its successes earned.
const fn start_grant(config: BudgetConfig) -> f64 {
    let secs = config.window.as_millis() as f64 / 1000.0;
    let grant = config.min_per_sec as f64 * secs;
    if grant < config.capacity as f64 {
        grant
    } else {
        config.capacity as f64
    }
}

/// A granted retry, counted as in flight (for `max_concurrent`) until dropped.
#[derive(Debug)]
#[must_use = "dropping the slot ends the retry's place in `max_concurrent`"]
pub struct RetrySlot {
    budget: &'static Budget,
    /// Counted in `in_flight` (the budget has `max_concurrent`).
    in_flight: bool,
    /// What paid for it: tokens, the `min_per_sec` floor, or the fleet's lease.
    grant: Option<Paid>,
}

impl RetrySlot {
    /// The retry was not made after all (the breaker refused it, the deadline left no
    /// time): what it took goes back.
    pub fn refund(mut self) {
        let b = self.budget;
        match self.grant.take() {
            Some(Paid::Local(grant)) => b.ledger().give_back(b.shape(), grant),
            #[cfg(feature = "redis")]
            Some(Paid::Fleet { milli, local }) => {
                b.return_lease(milli);
                if let Some(grant) = local {
                    b.ledger().give_back(b.shape(), grant);
                }
            }
            None => {}
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

    fn deposit(b: &Budget, n: u32) {
        for _ in 0..n {
            b.deposit();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_tokens_min_per_sec_applies_while_successes_are_recent() {
        static B: Budget = Budget::new(
            "t-min",
            BudgetConfig::DEFAULT.with_capacity(0).with_min_per_sec(2),
        );
        assert_eq!(
            B.try_withdraw(1).unwrap_err(),
            Refusal::Exhausted,
            "no success yet"
        );
        deposit(&B, 1);
        assert!(B.try_withdraw(1).is_ok());
        assert!(B.try_withdraw(1).is_ok());
        assert_eq!(B.try_withdraw(1).unwrap_err(), Refusal::Exhausted);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(B.try_withdraw(1).is_ok());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            B.try_withdraw(1).unwrap_err(),
            Refusal::Exhausted,
            "the success is older than the window"
        );
    }

    #[test]
    fn a_budget_starts_empty_and_never_overfills() {
        static B: Budget = Budget::new("t-fill", BudgetConfig::DEFAULT.with_capacity(1));
        assert_eq!(B.tokens(), 0.0);
        deposit(&B, 100);
        assert_eq!(B.tokens(), 1.0);
        let _slot = B.try_withdraw(1).unwrap();
        assert_eq!(B.tokens(), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire_after_the_window() {
        static B: Budget = Budget::new(
            "t-expire",
            BudgetConfig::DEFAULT
                .with_min_per_sec(0)
                .with_window(Duration::from_secs(2)),
        );
        deposit(&B, 16); // 2 tokens
        assert!(B.try_withdraw(1).is_ok());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(B.try_withdraw(1).unwrap_err(), Refusal::Exhausted);
    }

    #[test]
    fn a_refunded_retry_gives_its_tokens_back() {
        static B: Budget = Budget::new(
            "t-refund",
            BudgetConfig::DEFAULT.with_capacity(2).with_min_per_sec(0),
        );
        deposit(&B, 16);
        let slot = B.try_withdraw(2).unwrap();
        assert_eq!(B.tokens(), 0.0);
        slot.refund();
        assert_eq!(B.tokens(), 2.0);
    }

    #[test]
    fn max_concurrent_caps_retries_in_flight() {
        static B: Budget = Budget::new("t-conc", BudgetConfig::DEFAULT.with_max_concurrent(1));
        deposit(&B, 80);
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
        deposit(&B, 24);
        let _a = B.try_withdraw(2).unwrap();
        assert!(B.try_withdraw(2).is_err());
        assert!(B.try_withdraw(1).is_ok());
    }
}
