//! Named circuit breakers: the `Breaker` that decides per attempt whether the downstream is
//! called, built from its config, state machine, failure window and permits (one file each).

mod config;
#[cfg(feature = "redis")]
mod fleet;
mod manual;
mod permit;
mod state;
mod window;

pub use config::{BreakerConfig, Window};
#[cfg(feature = "redis")]
pub(crate) use fleet::{FleetView, LOCAL_CHANGE};
pub use manual::Force;
pub use permit::Permit;
pub(crate) use permit::RawPermit;
pub use state::BreakerState;

use crate::loom::{
    clock_now, AtomicU32, AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use config::Geometry;
use state::*;
use std::fmt;
use std::time::Duration;
use window::FailureWindow;

/// What a breaker has seen since the process started.
///
/// ```
/// use retry_runtime::{Breaker, BreakerConfig};
///
/// static INVENTORY: Breaker = Breaker::new("inventory", BreakerConfig::DEFAULT);
/// INVENTORY.admit().unwrap().success();
/// INVENTORY.admit().unwrap().failure();
/// let c = INVENTORY.counts();
/// assert_eq!((c.successes, c.failures, c.consecutive_failures), (1, 1, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BreakerCounts {
    /// Attempts reported with [`Permit::success`] (probes and late reports included).
    pub successes: u64,
    /// Attempts reported with [`Permit::failure`] (probes and late reports included).
    pub failures: u64,
    /// Calls refused by [`Breaker::admit`].
    pub rejections: u64,
    /// How many times the breaker opened (from Closed or from HalfOpen).
    pub opened: u64,
    /// The current run of failures while closed (0 when not closed).
    pub consecutive_failures: u32,
}

/// Keeps the state word on a cache line of its own: the closed admit reads it on every call,
/// while the counters beside it are written on every call.
#[repr(align(128))]
struct Padded<T>(T);

/// One named circuit breaker: decides, per attempt, whether the downstream gets called.
///
/// Lock-free and allocation-free: a closed [`admit`](Breaker::admit) is one atomic load, and
/// recording a success while closed is one atomic add and no clock read (a [`Window::Time`]
/// reads the clock once per batch of successes); a failure reads the clock and judges the
/// window. `Breaker::new` is a `const fn`, so a breaker lives in a `static` and
/// needs no init call.
///
/// ```
/// use retry_runtime::{Breaker, BreakerConfig, BreakerState};
///
/// static PAYMENTS: Breaker = Breaker::new(
///     "payments",
///     BreakerConfig::DEFAULT.with_consecutive_failures(Some(2)),
/// );
///
/// for _ in 0..2 {
///     let permit = PAYMENTS.admit().expect("closed: admitted");
///     permit.failure(); // the downstream call failed
/// }
/// assert_eq!(PAYMENTS.state(), BreakerState::Open);
/// let retry_in = PAYMENTS.admit().unwrap_err(); // refused without calling
/// assert!(retry_in <= PAYMENTS.config().open_for());
/// ```
///
/// Every state change emits one `info` event with target `stormguard`, message
/// `circuit breaker state changed` and the fields `breaker`, `from`, `to`, `reason` and
/// `failures`.
pub struct Breaker {
    state: Padded<AtomicU64>,
    name: &'static str,
    config: BreakerConfig,
    geometry: Geometry,
    /// The live configuration's limits (null: `config`'s); see `manual.rs`.
    tuned: std::sync::atomic::AtomicPtr<manual::Tuned>,
    /// Manual control: `manual::FORCE_*`.
    force: std::sync::atomic::AtomicU8,
    /// When the current open period ends (clock nanoseconds); valid once `open_gen` names it.
    open_until: AtomicU64,
    /// The generation whose `open_until` is published.
    open_gen: AtomicU32,
    /// Until when (clock nanoseconds) an open breaker stays open past its open time because
    /// another process of the fleet holds the half-open probes (`fleet.rs`); 0: no hold.
    hold_until: AtomicU64,
    /// When the current half-open period gives up on its probes (clock nanoseconds); valid
    /// once `probe_gen` names it.
    probe_until: AtomicU64,
    /// The generation whose `probe_until` is published.
    probe_gen: AtomicU32,
    /// The current open duration before jitter (nanoseconds): `open_for`, doubled per failed
    /// probe up to `open_max`.
    open_dur: AtomicU64,
    /// generation (32 bits) | failures in a row (32 bits).
    consecutive: AtomicU64,
    /// The failure window (the calls and failures of the last `window`).
    window: FailureWindow,
    /// Successes not counted by the window counters above: probes and late reports.
    successes: AtomicU64,
    failures: AtomicU64,
    rejections: AtomicU64,
    opened: AtomicU64,
}

macro_rules! new_breaker {
    ($name:expr, $config:expr) => {
        Breaker {
            state: Padded(AtomicU64::new(closed_word(0))),
            name: $name,
            geometry: Geometry::of(&$config),
            config: $config,
            tuned: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            force: std::sync::atomic::AtomicU8::new(manual::FORCE_AUTO),
            open_until: AtomicU64::new(0),
            open_gen: AtomicU32::new(0),
            hold_until: AtomicU64::new(0),
            probe_until: AtomicU64::new(0),
            probe_gen: AtomicU32::new(0),
            open_dur: AtomicU64::new(0),
            consecutive: AtomicU64::new(0),
            window: FailureWindow::new(),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    };
}

impl Breaker {
    /// A closed breaker named `name` (the name appears in logs and errors).
    ///
    /// ```
    /// use retry_runtime::{Breaker, BreakerConfig};
    ///
    /// static SEARCH: Breaker = Breaker::new("search", BreakerConfig::DEFAULT.with_half_open_probes(2));
    /// assert_eq!(SEARCH.name(), "search");
    /// ```
    #[cfg(not(loom))]
    pub const fn new(name: &'static str, config: BreakerConfig) -> Breaker {
        new_breaker!(name, config)
    }

    /// A closed breaker named `name` (not `const` under loom, whose atomics are not).
    #[cfg(loom)]
    pub fn new(name: &'static str, config: BreakerConfig) -> Breaker {
        new_breaker!(name, config)
    }

    /// The name given to [`Breaker::new`].
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The config it judges by: the one given to [`Breaker::new`] unless the live
    /// configuration changed it, as written (out-of-range values are only clamped where they
    /// are used).
    pub fn config(&self) -> &BreakerConfig {
        match self.tuned() {
            Some(tuned) => &tuned.config,
            None => &self.config,
        }
    }

    /// The config given to [`Breaker::new`] (its `breakers!` block).
    pub fn compiled_config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Asks to make one call.
    ///
    /// `Ok(permit)` if admitted: always while closed, and for one of the
    /// `half_open_probes` trial slots while half-open. Report the outcome with
    /// [`Permit::success`] or [`Permit::failure`]; dropping the permit counts as neither.
    ///
    /// `Err(retry_in)` if refused: while open, the time left before a probe may be admitted;
    /// while half-open with every probe slot taken, the time left before the breaker gives up
    /// on those probes (`probe_timeout` after the first): it then opens again, and the call
    /// that finds it so is refused with the new open time. Never `Duration::ZERO`.
    /// The first `admit` after the open time has passed moves the breaker to half-open and is
    /// its first probe.
    ///
    /// ```
    /// use retry_runtime::{Breaker, BreakerConfig};
    ///
    /// static LEDGER: Breaker = Breaker::new("ledger", BreakerConfig::DEFAULT);
    /// match LEDGER.admit() {
    ///     Ok(permit) => permit.success(), // call the downstream, then report
    ///     Err(retry_in) => panic!("open, retry in {retry_in:?}"),
    /// }
    /// ```
    #[inline]
    pub fn admit(&'static self) -> Result<Permit, Duration> {
        let word = self.state.0.load(Acquire);
        if word & KIND_MASK == CLOSED {
            return Ok(Permit {
                breaker: self,
                generation: generation_of(word),
                probe: false,
            });
        }
        self.admit_slow(clock_now())
    }

    #[cold]
    fn admit_slow(&'static self, now: u64) -> Result<Permit, Duration> {
        if self.force.load(std::sync::atomic::Ordering::Acquire) == manual::FORCE_OPEN {
            return self.refuse(self.limits().open_for);
        }
        let mut word = self.state.0.load(Acquire);
        loop {
            let generation = generation_of(word);
            let next = match word & KIND_MASK {
                CLOSED => {
                    return Ok(Permit {
                        breaker: self,
                        generation,
                        probe: false,
                    })
                }
                OPEN => match self.refusing_for(generation, now) {
                    0 => half_open_word(generation.wrapping_add(1), 1, 0),
                    left => return self.refuse(left),
                },
                _ => {
                    if in_flight_of(word) + succeeded_of(word) >= self.limits().probes {
                        match self.probe_left(generation, now) {
                            0 => open_word(generation.wrapping_add(1)),
                            left => return self.refuse(left),
                        }
                    } else {
                        word + IN_FLIGHT_ONE
                    }
                }
            };
            match self.state.0.compare_exchange(word, next, AcqRel, Acquire) {
                Ok(_) if next & KIND_MASK == OPEN => {
                    // The probes of this half-open period outlived `probe_timeout`: open
                    // again, as after a failed probe (their late reports are ignored).
                    let reopened = generation.wrapping_add(1);
                    self.enter_open(reopened, BreakerState::HalfOpen, now, "probe timed out", 0);
                    return self.refuse(self.open_left(reopened, now));
                }
                Ok(_) => {
                    if word & KIND_MASK == OPEN {
                        let probing = generation_of(next);
                        self.probe_until
                            .store(now.saturating_add(self.limits().probe_timeout), Relaxed);
                        self.probe_gen.store(probing, Release);
                        self.log(
                            BreakerState::Open,
                            BreakerState::HalfOpen,
                            "open time elapsed",
                            0,
                        );
                    }
                    return Ok(Permit {
                        breaker: self,
                        generation: generation_of(next),
                        probe: true,
                    });
                }
                Err(actual) => word = actual,
            }
        }
    }

    fn refuse(&self, left: u64) -> Result<Permit, Duration> {
        self.rejections.fetch_add(1, Relaxed);
        // Never "0ns" (an `open_for` of zero still means "ask again").
        Err(Duration::from_nanos(left.max(1)))
    }

    /// Nanoseconds left in the open period of `generation`; while its opener has not yet
    /// published the end (a few instructions after its CAS), the nominal duration, never 0.
    fn open_left(&self, generation: u32, now: u64) -> u64 {
        if self.open_gen.load(Acquire) == generation {
            self.open_until.load(Relaxed).saturating_sub(now)
        } else {
            self.open_dur.load(Relaxed).max(1)
        }
    }

    /// Nanoseconds an open breaker of period `generation` still refuses calls: its open time
    /// left, or the fleet's hold on the probes if longer (0 without one: see `fleet.rs`).
    fn refusing_for(&self, generation: u32, now: u64) -> u64 {
        let held = self.hold_until.load(Acquire).saturating_sub(now);
        self.open_left(generation, now).max(held)
    }

    /// Nanoseconds left before the half-open period `generation` gives up on its probes; while
    /// its opener has not yet published the end, the nominal `probe_timeout`, never 0.
    fn probe_left(&self, generation: u32, now: u64) -> u64 {
        if self.probe_gen.load(Acquire) == generation {
            self.probe_until.load(Relaxed).saturating_sub(now)
        } else {
            self.limits().probe_timeout
        }
    }

    /// True if an [`admit`](Breaker::admit) now would be refused: open and its open time has
    /// not passed yet, or half-open with every probe slot taken. No side effects; reads the
    /// clock only when open.
    ///
    /// ```
    /// use retry_runtime::{Breaker, BreakerConfig};
    ///
    /// static CACHE: Breaker = Breaker::new("cache", BreakerConfig::DEFAULT);
    /// assert!(!CACHE.is_rejecting());
    /// ```
    pub fn is_rejecting(&self) -> bool {
        let word = self.state.0.load(Acquire);
        if self.force.load(std::sync::atomic::Ordering::Acquire) == manual::FORCE_OPEN {
            return true;
        }
        match word & KIND_MASK {
            CLOSED => false,
            OPEN => self.refusing_for(generation_of(word), clock_now()) > 0,
            _ => in_flight_of(word) + succeeded_of(word) >= self.limits().probes,
        }
    }

    /// The current state.
    ///
    /// An open breaker whose open time has passed still reports `Open` until the next
    /// [`admit`](Breaker::admit) moves it to `HalfOpen`; [`is_rejecting`](Breaker::is_rejecting)
    /// and [`retry_in`](Breaker::retry_in) tell whether that time has passed.
    ///
    /// ```
    /// use retry_runtime::{Breaker, BreakerConfig, BreakerState};
    ///
    /// static MAIL: Breaker = Breaker::new("mail", BreakerConfig::DEFAULT);
    /// assert_eq!(MAIL.state(), BreakerState::Closed);
    /// ```
    pub fn state(&self) -> BreakerState {
        kind_of(self.state.0.load(Acquire))
    }

    /// While open, the time left before a probe may be admitted (`Duration::ZERO` once it has
    /// passed); `None` when closed or half-open.
    ///
    /// ```
    /// use retry_runtime::{Breaker, BreakerConfig};
    ///
    /// static GEO: Breaker = Breaker::new("geo", BreakerConfig::DEFAULT);
    /// assert_eq!(GEO.retry_in(), None);
    /// ```
    pub fn retry_in(&self) -> Option<Duration> {
        let word = self.state.0.load(Acquire);
        if word & KIND_MASK != OPEN {
            return None;
        }
        let left = self.refusing_for(generation_of(word), clock_now());
        Some(Duration::from_nanos(left))
    }

    /// The counters since the process started.
    ///
    /// ```
    /// use retry_runtime::{Breaker, BreakerConfig, BreakerCounts};
    ///
    /// static AUTH: Breaker = Breaker::new("auth", BreakerConfig::DEFAULT);
    /// assert_eq!(AUTH.counts(), BreakerCounts::default());
    /// ```
    pub fn counts(&self) -> BreakerCounts {
        let word = self.state.0.load(Acquire);
        let run = self.consecutive.load(Relaxed);
        let consecutive_failures =
            if word & KIND_MASK == CLOSED && (run >> 32) as u32 == generation_of(word) {
                run as u32
            } else {
                0
            };
        let recorded = self.window.calls_seen.load(Relaxed);
        let recorded_successes = recorded.saturating_sub(self.window.failures.load(Relaxed));
        BreakerCounts {
            successes: self.successes.load(Relaxed)
                + self.window.successes.load(Relaxed)
                + recorded_successes,
            failures: self.failures.load(Relaxed),
            rejections: self.rejections.load(Relaxed),
            opened: self.opened.load(Relaxed),
            consecutive_failures,
        }
    }

    /// A success costs one atomic add (plus three loads): a count window derives its buckets'
    /// calls from the add's sequence number, a time window counts successes into its buckets in
    /// batches (see [`Breaker::count_in_batch`]), so neither reads the clock per success.
    #[inline]
    pub(super) fn on_success(&self, generation: u32, probe: bool) {
        if probe {
            self.successes.fetch_add(1, Relaxed);
            self.probe_done(generation, ProbeOutcome::Success);
            return;
        }
        if self.state.0.load(Relaxed) != closed_word(generation) {
            // Admitted before the breaker opened: too late to count in the window.
            self.successes.fetch_add(1, Relaxed);
            return;
        }
        if self.geometry.by_calls {
            self.window.calls_seen.fetch_add(1, Relaxed);
        } else {
            let n = self.window.successes.fetch_add(1, Relaxed) + 1;
            if n >= self.window.batch_due.load(Relaxed) {
                self.count_in_batch(generation, n);
            }
        }
        if self.consecutive.load(Relaxed) as u32 != 0 {
            self.consecutive.store(0, Relaxed);
        }
    }

    pub(super) fn on_failure(&self, generation: u32, probe: bool, now: u64) {
        self.failures.fetch_add(1, Relaxed);
        if probe {
            self.probe_done(generation, ProbeOutcome::Failure { now });
            return;
        }
        let closed = closed_word(generation);
        if self.state.0.load(Relaxed) != closed {
            return; // admitted before the breaker opened: too late to count
        }
        let run = self.bump_consecutive(generation);
        if !self.geometry.by_calls {
            self.close_batch_for_failure(generation, now);
        }
        let at = self.record_failure(generation, now);
        if self.force.load(std::sync::atomic::Ordering::Acquire) == manual::FORCE_CLOSED {
            return; // counted, never judged
        }
        let g = self.limits();
        let trip = if g.consecutive != 0 && run >= g.consecutive {
            Some(("consecutive failures", run))
        } else {
            let (calls, failures) = self.window_counts(generation, at);
            let rate_reached = calls >= g.min_calls && failures as f64 >= g.rate * calls as f64;
            rate_reached.then_some(("failure rate", failures))
        };
        let Some((reason, failures)) = trip else {
            return;
        };
        let next = generation.wrapping_add(1);
        if self
            .state
            .0
            .compare_exchange(closed, open_word(next), AcqRel, Relaxed)
            .is_ok()
        {
            self.enter_open(next, BreakerState::Closed, now, reason, failures);
        }
    }

    /// Counts one more failure in a row for the closed period `generation`; returns the run.
    fn bump_consecutive(&self, generation: u32) -> u64 {
        let mut current = self.consecutive.load(Relaxed);
        loop {
            let run = if (current >> 32) as u32 == generation {
                (current as u32).saturating_add(1)
            } else {
                1
            };
            let next = ((generation as u64) << 32) | run as u64;
            match self
                .consecutive
                .compare_exchange(current, next, Relaxed, Relaxed)
            {
                Ok(_) => return run as u64,
                Err(actual) => current = actual,
            }
        }
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::window::BUCKETS;
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn breaker_is_sync_and_permit_is_send() {
        assert_send_sync::<Breaker>();
        assert_send_sync::<Permit>();
    }

    #[test]
    fn state_word_round_trips() {
        let w = half_open_word(u32::MAX, 3, 4);
        assert_eq!(kind_of(w), BreakerState::HalfOpen);
        assert_eq!(
            (generation_of(w), in_flight_of(w), succeeded_of(w)),
            (u32::MAX, 3, 4)
        );
        assert_eq!(kind_of(open_word(7)), BreakerState::Open);
        assert_eq!(generation_of(closed_word(7)), 7);
    }

    #[test]
    fn the_macros_probe_limit_is_the_state_words() {
        // `breakers!` rejects `half_open_probes` above 32,767 (MAX_HALF_OPEN_PROBES in
        // retry-macros/src/config.rs): every value it accepts is honoured, none cut.
        assert_eq!(MAX_PROBES, 32_767);
        let most = BreakerConfig::DEFAULT.with_half_open_probes(32_767);
        assert_eq!(Geometry::of(&most).probes, 32_767);
    }

    #[test]
    fn count_window_geometry_holds_about_n_calls() {
        for n in 1..=1000u32 {
            let g = Geometry::of(&BreakerConfig::DEFAULT.with_window(Window::Calls(n)));
            let fewest = (g.depth - 1) * g.span + 1;
            let most = g.depth * g.span;
            assert!(g.depth as usize <= BUCKETS, "n = {n}");
            assert!(fewest <= n as u64 && n as u64 <= most, "n = {n}");
            assert!(most - fewest < g.span.max(1), "n = {n}");
            if n <= 10 {
                assert_eq!((fewest, most), (n as u64, n as u64));
            }
        }
    }
}
