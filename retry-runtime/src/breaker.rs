//! Named circuit breakers: the Closed → Open → HalfOpen state machine behind `breaker = "…"`,
//! its failure window and the permits that admit each attempt, all in atomics.

use std::fmt;
use std::mem::ManuallyDrop;
use std::time::Duration;

#[cfg(loom)]
use loom::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
#[cfg(not(loom))]
use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};

/// Where a breaker stands.
///
/// ```
/// use retry_runtime::breaker::{Breaker, BreakerConfig, BreakerState};
///
/// static SEARCH: Breaker = Breaker::new("search", BreakerConfig::DEFAULT);
/// assert_eq!(SEARCH.state(), BreakerState::Closed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum BreakerState {
    /// Calls flow and their outcomes are counted.
    Closed,
    /// Calls are refused until the open time has passed.
    Open,
    /// A few trial calls (probes) decide between `Closed` and `Open`.
    HalfOpen,
}

/// Which calls the failure rate is computed over.
///
/// ```
/// use retry_runtime::breaker::{BreakerConfig, Window};
/// use std::time::Duration;
///
/// const BY_TIME: BreakerConfig = BreakerConfig::DEFAULT.with_window(Window::Time(Duration::from_secs(30)));
/// const BY_COUNT: BreakerConfig = BreakerConfig::DEFAULT.with_window(Window::Calls(100));
/// assert_ne!(BY_TIME, BY_COUNT);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    /// The calls of the last `d`, counted in 10 buckets of `d / 10`: the window slides one
    /// bucket at a time, so it holds the last 90 % to 100 % of `d`. Successes are counted
    /// into the buckets in batches of up to 64 (one clock read per batch), each spread evenly
    /// over the time it took: under steady traffic a batch takes a sixteenth of a bucket, and
    /// a success lands within that of its time; after a burst followed by silence, up to one
    /// batch is spread over the silence.
    Time(Duration),
    /// The last `n` calls, counted in buckets of `⌈n / 10⌉` calls: the oldest bucket leaves
    /// in one piece, so the window holds `n` calls give or take `⌈n / 10⌉ − 1` (exactly `n`
    /// up to 10). Never reads the clock.
    Calls(u32),
}

/// When a breaker opens and how long it stays open.
///
/// Built with `const fn` builders, so that it can configure a breaker in a `static`:
///
/// ```
/// use retry_runtime::breaker::{BreakerConfig, Window};
/// use std::time::Duration;
///
/// const PAYMENTS: BreakerConfig = BreakerConfig::DEFAULT
///     .with_consecutive_failures(Some(5))
///     .with_open_for(Duration::from_secs(30));
/// assert_eq!(PAYMENTS.min_calls, 20);
/// assert_eq!(PAYMENTS.window, Window::Time(Duration::from_secs(10)));
/// ```
///
/// # Defaults
/// - `consecutive_failures`: none (only the failure rate opens the breaker)
/// - `failure_rate`: 0.5
/// - `window`: `Window::Time(10 s)`
/// - `min_calls`: 20
/// - `open_for`: 5 s
/// - `open_max`: 300 s
/// - `half_open_probes`: 1
///
/// With these, a steady 20 % failure rate never opens the breaker, and a total outage opens it
/// as soon as 20 calls have failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Open after this many failures in a row (while closed); `None` for no such rule.
    /// `Some(0)` acts as `Some(1)`.
    pub consecutive_failures: Option<u32>,
    /// Open when this share of the calls in the window failed, in `(0, 1]`; values outside
    /// that range (and NaN) act as 1.
    pub failure_rate: f64,
    /// The calls the failure rate is computed over.
    pub window: Window,
    /// The failure rate is not judged before the window holds this many calls (at least 1;
    /// with a `Calls` window, at most as many as the window always holds).
    pub min_calls: u32,
    /// How long the breaker stays open the first time.
    pub open_for: Duration,
    /// The longest it stays open after failed probes (never below `open_for`).
    pub open_max: Duration,
    /// How many trial calls the half-open breaker lets through at once, from 1 to 32767; all
    /// of them must succeed to close it.
    pub half_open_probes: u32,
}

impl BreakerConfig {
    /// The defaults listed above.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        consecutive_failures: None,
        failure_rate: 0.5,
        window: Window::Time(Duration::from_secs(10)),
        min_calls: 20,
        open_for: Duration::from_secs(5),
        open_max: Duration::from_secs(300),
        half_open_probes: 1,
    };

    /// Sets `consecutive_failures`.
    pub const fn with_consecutive_failures(mut self, n: Option<u32>) -> Self {
        self.consecutive_failures = n;
        self
    }

    /// Sets `failure_rate`.
    pub const fn with_failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = rate;
        self
    }

    /// Sets `window`.
    pub const fn with_window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// Sets `min_calls`.
    pub const fn with_min_calls(mut self, n: u32) -> Self {
        self.min_calls = n;
        self
    }

    /// Sets `open_for`.
    pub const fn with_open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self
    }

    /// Sets `open_max`.
    pub const fn with_open_max(mut self, d: Duration) -> Self {
        self.open_max = d;
        self
    }

    /// Sets `half_open_probes`.
    pub const fn with_half_open_probes(mut self, n: u32) -> Self {
        self.half_open_probes = n;
        self
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a breaker has seen since the process started.
///
/// ```
/// use retry_runtime::breaker::{Breaker, BreakerConfig};
///
/// static INVENTORY: Breaker = Breaker::new("inventory", BreakerConfig::DEFAULT);
/// INVENTORY.admit().unwrap().success();
/// INVENTORY.admit().unwrap().failure();
/// let c = INVENTORY.counts();
/// assert_eq!((c.successes, c.failures, c.consecutive_failures), (1, 1, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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

// The state word: kind (2 bits) | probes in flight (15) | probes succeeded (15) | generation (32).
// Every transition bumps the generation, so a permit can tell whether the state it was admitted
// in still holds. Half-open bookkeeping lives in the same word, so one CAS decides each step.
const KIND_MASK: u64 = 0b11;
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const IN_FLIGHT_SHIFT: u32 = 2;
const SUCCEEDED_SHIFT: u32 = 17;
const FIELD_MASK: u64 = (1 << 15) - 1;
const GEN_SHIFT: u32 = 32;
const IN_FLIGHT_ONE: u64 = 1 << IN_FLIGHT_SHIFT;
const MAX_PROBES: u64 = FIELD_MASK;

const fn closed_word(generation: u32) -> u64 {
    ((generation as u64) << GEN_SHIFT) | CLOSED
}

const fn open_word(generation: u32) -> u64 {
    ((generation as u64) << GEN_SHIFT) | OPEN
}

const fn half_open_word(generation: u32, in_flight: u64, succeeded: u64) -> u64 {
    ((generation as u64) << GEN_SHIFT)
        | (succeeded << SUCCEEDED_SHIFT)
        | (in_flight << IN_FLIGHT_SHIFT)
        | HALF_OPEN
}

const fn generation_of(word: u64) -> u32 {
    (word >> GEN_SHIFT) as u32
}

const fn in_flight_of(word: u64) -> u64 {
    (word >> IN_FLIGHT_SHIFT) & FIELD_MASK
}

const fn succeeded_of(word: u64) -> u64 {
    (word >> SUCCEEDED_SHIFT) & FIELD_MASK
}

const fn kind_of(word: u64) -> BreakerState {
    match word & KIND_MASK {
        CLOSED => BreakerState::Closed,
        OPEN => BreakerState::Open,
        _ => BreakerState::HalfOpen,
    }
}

// A window bucket word: tag (32 bits: generation low 8 | epoch low 24) | count (32 bits).
// The tag makes stale buckets (an older epoch, or an earlier closed period) read as empty, so
// nothing is ever reset eagerly: closing the breaker starts a fresh window for free.
const BUCKETS: usize = 10;
const TAG_SHIFT: u32 = 32;
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;

// A time window counts successes into its buckets in batches sized to take about this share
// of a bucket, of at most `MAX_BATCH` successes (see `Breaker::count_in_batch`).
const BATCHES_PER_BUCKET: u64 = 16;
const MAX_BATCH: u64 = 64;
/// Claims a batch whatever its size (`batch_due` is `u64::MAX` only while claimed).
const ANY_CALLER: u64 = u64::MAX - 1;

// A count window's start: generation (low 16 bits) | sequence number (low 48 bits).
const BASE_SHIFT: u32 = 48;
const BASE_GEN_MASK: u64 = 0xFFFF;
const BASE_SEQ_MASK: u64 = (1 << BASE_SHIFT) - 1;

const fn bucket_tag(generation: u32, epoch: u64) -> u64 {
    ((generation as u64 & 0xFF) << 24) | (epoch & 0xFF_FFFF)
}

/// Adds `n` to `word` if it carries `tag`, else restarts it at `n` under `tag`.
fn bump(word: &AtomicU64, tag: u64, n: u64) {
    let mut current = word.load(Relaxed);
    loop {
        if current >> TAG_SHIFT == tag {
            // If another thread re-tags the bucket in between, the calls land in the newer
            // epoch: off by one bucket at a bucket boundary, which the window tolerates.
            word.fetch_add(n, Relaxed);
            return;
        }
        match word.compare_exchange(current, (tag << TAG_SHIFT) | n, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

struct Bucket {
    calls: AtomicU64,
    failures: AtomicU64,
}

/// Keeps the state word on a cache line of its own: the closed admit reads it on every call,
/// while the counters beside it are written on every call.
#[repr(align(128))]
struct Padded<T>(T);

/// The config turned into the integers the hot paths use, computed once in `Breaker::new`.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    by_calls: bool,
    /// Bucket width: nanoseconds, or calls; at least 1.
    span: u64,
    /// Buckets summed, the current one included: 1 to `BUCKETS`.
    depth: u64,
    min_calls: u64,
    rate: f64,
    /// 0: no consecutive rule.
    consecutive: u64,
    probes: u64,
    open_for: u64,
    open_max: u64,
}

const fn nanos(d: Duration) -> u64 {
    let n = d.as_nanos();
    if n > u64::MAX as u128 {
        u64::MAX
    } else {
        n as u64
    }
}

const fn at_least_1(n: u64) -> u64 {
    if n == 0 {
        1
    } else {
        n
    }
}

impl Geometry {
    const fn of(c: &BreakerConfig) -> Geometry {
        let min_calls = at_least_1(c.min_calls as u64);
        let (by_calls, span, depth, min_calls) = match c.window {
            Window::Time(d) => (
                false,
                at_least_1(nanos(d) / BUCKETS as u64),
                BUCKETS as u64,
                min_calls,
            ),
            Window::Calls(n) => {
                let n = at_least_1(n as u64);
                let span = n.div_ceil(BUCKETS as u64);
                let depth = n.div_ceil(span);
                // The fewest calls the window holds (just after the oldest bucket left).
                let always = (depth - 1) * span + 1;
                let min = if min_calls < always {
                    min_calls
                } else {
                    always
                };
                (true, span, depth, min)
            }
        };
        let rate = if c.failure_rate > 0.0 && c.failure_rate <= 1.0 {
            c.failure_rate
        } else {
            1.0
        };
        let consecutive = match c.consecutive_failures {
            Some(n) => at_least_1(n as u64),
            None => 0,
        };
        let probes = at_least_1(c.half_open_probes as u64);
        let probes = if probes > MAX_PROBES {
            MAX_PROBES
        } else {
            probes
        };
        let open_for = nanos(c.open_for);
        let open_max = nanos(c.open_max);
        let open_max = if open_max < open_for {
            open_for
        } else {
            open_max
        };
        Geometry {
            by_calls,
            span,
            depth,
            min_calls,
            rate,
            consecutive,
            probes,
            open_for,
            open_max,
        }
    }
}

/// The clock every decision reads: tokio's, through [`crate::clock`]; a fixed instant under loom.
#[cfg(not(loom))]
fn clock_now() -> u64 {
    crate::clock::now_nanos()
}

#[cfg(loom)]
fn clock_now() -> u64 {
    1_000_000_000
}

/// The factor applied to a doubled open time: uniform in `[0.9, 1.1)`; exactly 1 under loom,
/// which needs every run of a model to take the same path.
#[cfg(not(loom))]
fn jitter_factor() -> f64 {
    0.9 + 0.2 * fastrand::f64()
}

#[cfg(loom)]
fn jitter_factor() -> f64 {
    1.0
}

/// One named circuit breaker: decides, per attempt, whether the downstream gets called.
///
/// Lock-free and allocation-free: a closed [`admit`](Breaker::admit) is one atomic load, and
/// recording a success while closed is one atomic add and no clock read (a [`Window::Time`]
/// reads the clock once per batch of successes); a failure reads the clock and judges the
/// window. `Breaker::new` is a `const fn`, so a breaker lives in a `static` and
/// needs no init call.
///
/// ```
/// use retry_runtime::breaker::{Breaker, BreakerConfig, BreakerState};
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
/// assert!(retry_in <= PAYMENTS.config().open_for);
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
    /// When the current open period ends (clock nanoseconds); valid once `open_gen` names it.
    open_until: AtomicU64,
    /// The generation whose `open_until` is published.
    open_gen: AtomicU32,
    /// The current open duration before jitter (nanoseconds): `open_for`, doubled per failed
    /// probe up to `open_max`.
    open_dur: AtomicU64,
    /// generation (32 bits) | failures in a row (32 bits).
    consecutive: AtomicU64,
    /// `Window::Calls`: the calls recorded in the window so far, its clock and the sequence
    /// number of each call (a bucket holds the calls numbered `e * span ..= e * span + span - 1`).
    calls_seen: AtomicU64,
    /// `Window::Calls`: the failures among `calls_seen` (for [`BreakerCounts`]).
    window_failures: AtomicU64,
    /// `Window::Calls`: where the current closed period's window starts, as
    /// generation (low 16 bits) << 48 | `calls_seen` then (low 48 bits).
    window_base: AtomicU64,
    /// `Window::Time`: successes of closed periods so far, counted into the buckets in batches.
    window_successes: AtomicU64,
    /// `Window::Time`: the `window_successes` count due for the next batch; `u64::MAX` while
    /// one thread is counting a batch in.
    batch_due: AtomicU64,
    /// `Window::Time`: the `window_successes` count and the clock when the last batch was
    /// counted in.
    batched: AtomicU64,
    batched_at: AtomicU64,
    buckets: [Bucket; BUCKETS],
    /// Successes not counted by the window counters above: probes and late reports.
    successes: AtomicU64,
    failures: AtomicU64,
    rejections: AtomicU64,
    opened: AtomicU64,
}

macro_rules! new_breaker {
    ($name:expr, $config:expr, $buckets:expr) => {
        Breaker {
            state: Padded(AtomicU64::new(closed_word(0))),
            name: $name,
            geometry: Geometry::of(&$config),
            config: $config,
            open_until: AtomicU64::new(0),
            open_gen: AtomicU32::new(0),
            open_dur: AtomicU64::new(0),
            consecutive: AtomicU64::new(0),
            calls_seen: AtomicU64::new(0),
            window_failures: AtomicU64::new(0),
            window_base: AtomicU64::new(0),
            window_successes: AtomicU64::new(0),
            batch_due: AtomicU64::new(1),
            batched: AtomicU64::new(0),
            batched_at: AtomicU64::new(0),
            buckets: $buckets,
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    };
}

/// What a probe reported.
#[derive(Clone, Copy)]
enum ProbeOutcome {
    Success,
    Failure { now: u64 },
    Dropped,
}

impl Breaker {
    /// A closed breaker named `name` (the name appears in logs and errors).
    ///
    /// ```
    /// use retry_runtime::breaker::{Breaker, BreakerConfig};
    ///
    /// static SEARCH: Breaker = Breaker::new("search", BreakerConfig::DEFAULT.with_half_open_probes(2));
    /// assert_eq!(SEARCH.name(), "search");
    /// ```
    #[cfg(not(loom))]
    pub const fn new(name: &'static str, config: BreakerConfig) -> Breaker {
        new_breaker!(
            name,
            config,
            [const {
                Bucket {
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                }
            }; BUCKETS]
        )
    }

    /// A closed breaker named `name` (not `const` under loom, whose atomics are not).
    #[cfg(loom)]
    pub fn new(name: &'static str, config: BreakerConfig) -> Breaker {
        new_breaker!(
            name,
            config,
            std::array::from_fn(|_| Bucket {
                calls: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            })
        )
    }

    /// The name given to [`Breaker::new`].
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The config given to [`Breaker::new`], as written (out-of-range values are only
    /// clamped where they are used).
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Asks to make one call.
    ///
    /// `Ok(permit)` if admitted: always while closed, and for one of the
    /// `half_open_probes` trial slots while half-open. Report the outcome with
    /// [`Permit::success`] or [`Permit::failure`]; dropping the permit counts as neither.
    ///
    /// `Err(retry_in)` if refused: while open, the time left before a probe may be admitted;
    /// while half-open with every probe slot taken, `Duration::ZERO` (a probe is in flight).
    /// The first `admit` after the open time has passed moves the breaker to half-open and is
    /// its first probe.
    ///
    /// ```
    /// use retry_runtime::breaker::{Breaker, BreakerConfig};
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
                OPEN => match self.open_left(generation, now) {
                    0 => half_open_word(generation.wrapping_add(1), 1, 0),
                    left => return self.refuse(left),
                },
                _ => {
                    if in_flight_of(word) + succeeded_of(word) >= self.geometry.probes {
                        return self.refuse(0);
                    }
                    word + IN_FLIGHT_ONE
                }
            };
            match self.state.0.compare_exchange(word, next, AcqRel, Acquire) {
                Ok(_) => {
                    if word & KIND_MASK == OPEN {
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
        Err(Duration::from_nanos(left))
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

    /// True if an [`admit`](Breaker::admit) now would be refused: open and its open time has
    /// not passed yet, or half-open with every probe slot taken. No side effects; reads the
    /// clock only when open.
    ///
    /// ```
    /// use retry_runtime::breaker::{Breaker, BreakerConfig};
    ///
    /// static CACHE: Breaker = Breaker::new("cache", BreakerConfig::DEFAULT);
    /// assert!(!CACHE.is_rejecting());
    /// ```
    pub fn is_rejecting(&self) -> bool {
        let word = self.state.0.load(Acquire);
        match word & KIND_MASK {
            CLOSED => false,
            OPEN => self.open_left(generation_of(word), clock_now()) > 0,
            _ => in_flight_of(word) + succeeded_of(word) >= self.geometry.probes,
        }
    }

    /// The current state.
    ///
    /// An open breaker whose open time has passed still reports `Open` until the next
    /// [`admit`](Breaker::admit) moves it to `HalfOpen`; [`is_rejecting`](Breaker::is_rejecting)
    /// and [`retry_in`](Breaker::retry_in) tell whether that time has passed.
    ///
    /// ```
    /// use retry_runtime::breaker::{Breaker, BreakerConfig, BreakerState};
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
    /// use retry_runtime::breaker::{Breaker, BreakerConfig};
    ///
    /// static GEO: Breaker = Breaker::new("geo", BreakerConfig::DEFAULT);
    /// assert_eq!(GEO.retry_in(), None);
    /// ```
    pub fn retry_in(&self) -> Option<Duration> {
        let word = self.state.0.load(Acquire);
        if word & KIND_MASK != OPEN {
            return None;
        }
        let left = self.open_left(generation_of(word), clock_now());
        Some(Duration::from_nanos(left))
    }

    /// The counters since the process started.
    ///
    /// ```
    /// use retry_runtime::breaker::{Breaker, BreakerConfig, BreakerCounts};
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
        let recorded = self.calls_seen.load(Relaxed);
        let recorded_successes = recorded.saturating_sub(self.window_failures.load(Relaxed));
        BreakerCounts {
            successes: self.successes.load(Relaxed)
                + self.window_successes.load(Relaxed)
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
    fn on_success(&self, generation: u32, probe: bool) {
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
            self.calls_seen.fetch_add(1, Relaxed);
        } else {
            let n = self.window_successes.fetch_add(1, Relaxed) + 1;
            if n >= self.batch_due.load(Relaxed) {
                self.count_in_batch(generation, n);
            }
        }
        if self.consecutive.load(Relaxed) as u32 != 0 {
            self.consecutive.store(0, Relaxed);
        }
    }

    /// Counts the batch of successes that ends with the one numbered `n` (successes of a
    /// time window are numbered by `window_successes`) into the window: the one thread that
    /// claims the batch reads the clock (see [`Breaker::close_batch`]).
    #[cold]
    #[inline(never)]
    fn count_in_batch(&self, generation: u32, n: u64) {
        if let Some(due) = self.claim_batch(n) {
            self.close_batch(generation, n, due, clock_now());
        } // else another thread is counting this batch in
    }

    /// Before a time window is judged: counts the successes since the last batch in, unless
    /// another thread is doing so (then [`Breaker::window`] estimates them).
    fn close_batch_for_failure(&self, generation: u32, now: u64) {
        if let Some(due) = self.claim_batch(ANY_CALLER) {
            let n = self.window_successes.load(Relaxed);
            self.close_batch(generation, n, due, now);
        }
    }

    /// Claims the right to close the batch in progress, for the success numbered `n` (or any
    /// caller, with `ANY_CALLER`); returns the count it was due at.
    fn claim_batch(&self, n: u64) -> Option<u64> {
        let due = self.batch_due.load(Relaxed);
        if n < due {
            return None; // not due, or `u64::MAX`: claimed by another thread
        }
        self.batch_due
            .compare_exchange(due, u64::MAX, Acquire, Relaxed)
            .ok()
    }

    /// Run by the thread holding the claim (the batch was due at `due`): counts the successes
    /// after the last batch, up to the one numbered `n`, into the window of the closed period
    /// `generation` as of `now`, then sizes the next batch and releases the claim.
    ///
    /// A batch's successes are spread evenly over the time it took. Sized for the rate, it
    /// takes a sixteenth of a bucket, so nearly all land in the bucket of now; one that took
    /// longer (the traffic fell since it was sized) is spread over the buckets it spanned,
    /// and its part older than the window is dropped. The next batch is sized to take
    /// `1 / BATCHES_PER_BUCKET` of a bucket at the rate just measured, at most twice the last
    /// and `MAX_BATCH`: one success at a time under light traffic, one clock read per
    /// `MAX_BATCH` successes under heavy traffic.
    fn close_batch(&self, generation: u32, n: u64, due: u64, now: u64) {
        let since = self.batched_at.load(Relaxed);
        let last = self.batched.load(Relaxed);
        let batch = n.saturating_sub(last);
        if batch != 0 && self.state.0.load(Relaxed) == closed_word(generation) {
            self.spread(generation, batch, since, now);
        }
        // After the buckets: a failure judged meanwhile on another thread may count this batch
        // twice (in the buckets and as in progress), never not at all.
        self.batched.store(n, Relaxed);
        self.batched_at.store(now, Relaxed);
        let sized = due.saturating_sub(last).max(batch);
        let most = sized.saturating_mul(2).min(MAX_BATCH);
        let next = match now.checked_sub(since) {
            _ if since == 0 => 1,            // nothing to measure against
            Some(0) => sized.min(MAX_BATCH), // no time passed: a paused clock
            None => 1,                       // another runtime's clock, behind this one
            Some(elapsed) => {
                let target = (self.geometry.span / BATCHES_PER_BUCKET).max(1);
                let at_rate = batch as u128 * target as u128 / elapsed as u128;
                (at_rate.min(most as u128) as u64).max(1)
            }
        };
        self.batch_due.store(n + next, Release);
    }

    /// Counts `batch` successes made evenly between `since` and `now` into the buckets of the
    /// closed period `generation` that are still in the window (all into the bucket of `now`
    /// if `since` is unknown or not before it).
    fn spread(&self, generation: u32, batch: u64, since: u64, now: u64) {
        let g = &self.geometry;
        let epoch = now / g.span;
        let bump_bucket =
            |e: u64, count: u64| bump(&self.bucket(e).calls, bucket_tag(generation, e), count);
        if since == 0 || since >= now || since / g.span >= epoch {
            bump_bucket(epoch, batch);
            return;
        }
        let elapsed = (now - since) as u128;
        // The part of the batch made by time `t`, rounded down: the shares of consecutive
        // buckets add up to the batch.
        let made_by = |t: u64| (batch as u128 * (t - since) as u128 / elapsed) as u64;
        let oldest = (since / g.span).max((epoch + 1).saturating_sub(g.depth));
        for e in oldest..=epoch {
            let from = (e * g.span).max(since);
            let to = ((e + 1).saturating_mul(g.span)).min(now);
            let share = made_by(to) - made_by(from);
            if share != 0 {
                bump_bucket(e, share);
            }
        }
    }

    fn on_failure(&self, generation: u32, probe: bool, now: u64) {
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
        let g = &self.geometry;
        let trip = if g.consecutive != 0 && run >= g.consecutive {
            Some(("consecutive failures", run))
        } else {
            let (calls, failures) = self.window(generation, at);
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

    /// `(calls, failures)` in the current closed period's window now (loom models only).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn window_now(&self) -> (u64, u64) {
        let generation = generation_of(self.state.0.load(Acquire));
        let at = if self.geometry.by_calls {
            match self.calls_seen.load(Relaxed) {
                0 => return (0, 0),
                seen => seen - 1,
            }
        } else {
            clock_now()
        };
        self.window(generation, at)
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

    /// Counts one failure of the closed period `generation` in the window; returns where it
    /// was recorded: its sequence number in a count window, its clock in a time window.
    fn record_failure(&self, generation: u32, now: u64) -> u64 {
        let g = &self.geometry;
        let (at, counts_calls) = if g.by_calls {
            self.window_failures.fetch_add(1, Relaxed);
            (self.calls_seen.fetch_add(1, Relaxed), false)
        } else {
            (now, true)
        };
        let epoch = at / g.span;
        let bucket = self.bucket(epoch);
        let tag = bucket_tag(generation, epoch);
        if counts_calls {
            bump(&bucket.calls, tag, 1);
        }
        bump(&bucket.failures, tag, 1);
        at
    }

    /// The bucket that counts the calls of `epoch` (reused every `BUCKETS` epochs).
    fn bucket(&self, epoch: u64) -> &Bucket {
        &self.buckets[(epoch % BUCKETS as u64) as usize]
    }

    /// `(calls, failures)` in the window of the closed period `generation` that ends with the
    /// failure recorded at `at` (see [`Breaker::record_failure`]).
    fn window(&self, generation: u32, at: u64) -> (u64, u64) {
        let g = &self.geometry;
        let epoch = at / g.span;
        let oldest = (epoch + 1).saturating_sub(g.depth);
        let (mut calls, mut failures) = (0, 0);
        for e in oldest..=epoch {
            let bucket = self.bucket(e);
            let tag = bucket_tag(generation, e);
            let f = bucket.failures.load(Relaxed);
            if f >> TAG_SHIFT == tag {
                failures += f & COUNT_MASK;
            }
            let c = bucket.calls.load(Relaxed);
            if !g.by_calls && c >> TAG_SHIFT == tag {
                calls += c & COUNT_MASK;
            }
        }
        if g.by_calls {
            // Every call numbered from the window's first bucket (or from the period's first
            // call, if later) up to this one.
            let start = (oldest * g.span).max(self.window_start(generation, at));
            calls = at + 1 - start;
        } else {
            calls += self.batch_so_far(oldest * g.span, at);
        }
        (calls, failures)
    }

    /// The successes of the time-window batch in progress (not in the buckets yet) that fall
    /// after `start` (the window's first bucket), spread as [`Breaker::close_batch`] spreads
    /// them: normally none, as the failure being judged closed the batch, unless another
    /// thread held its claim.
    fn batch_so_far(&self, start: u64, now: u64) -> u64 {
        let pending =
            (self.window_successes.load(Relaxed)).saturating_sub(self.batched.load(Relaxed));
        let since = self.batched_at.load(Relaxed);
        if since == 0 || since >= start || now <= since {
            return pending;
        }
        (pending as u128 * (now - start) as u128 / (now - since) as u128) as u64
    }

    /// The sequence number of the first call of the closed period `generation` (count
    /// window), or `seq` itself while the close that began it is still being published.
    fn window_start(&self, generation: u32, seq: u64) -> u64 {
        let base = self.window_base.load(Relaxed);
        if base >> BASE_SHIFT != generation as u64 & BASE_GEN_MASK {
            return seq;
        }
        // The base is stored as its low 48 bits; it is at most 2^47 calls back.
        let back = seq.wrapping_sub(base) & BASE_SEQ_MASK;
        if back <= seq && back < 1 << (BASE_SHIFT - 1) {
            seq - back
        } else {
            seq
        }
    }

    /// Starts the window of the closed period `generation` at the next call: a count window
    /// from the next sequence number, a time window with no batch of successes in progress
    /// (a success from the closed period before is not carried over).
    fn start_window(&self, generation: u32) {
        if self.geometry.by_calls {
            let seq = self.calls_seen.load(Relaxed) & BASE_SEQ_MASK;
            let packed = ((generation as u64 & BASE_GEN_MASK) << BASE_SHIFT) | seq;
            self.window_base.store(packed, Relaxed);
        } else if self.claim_batch(ANY_CALLER).is_some() {
            let n = self.window_successes.load(Relaxed);
            self.batched.store(n, Relaxed);
            self.batched_at.store(0, Relaxed);
            self.batch_due.store(n + 1, Release);
        }
    }

    /// A probe of the half-open period `generation` reported (or was dropped). Results from an
    /// earlier period are ignored: its slots were never part of the current one.
    fn probe_done(&self, generation: u32, outcome: ProbeOutcome) {
        let mut word = self.state.0.load(Acquire);
        loop {
            if word & KIND_MASK != HALF_OPEN || generation_of(word) != generation {
                return;
            }
            let in_flight = in_flight_of(word);
            if in_flight == 0 {
                debug_assert!(false, "probe permit without a slot");
                return;
            }
            let next = match outcome {
                ProbeOutcome::Dropped => word - IN_FLIGHT_ONE,
                ProbeOutcome::Failure { .. } => open_word(generation.wrapping_add(1)),
                ProbeOutcome::Success => {
                    let succeeded = succeeded_of(word) + 1;
                    if succeeded >= self.geometry.probes {
                        // Before the CAS, so that the closed period's first calls find it
                        // (nothing is recorded in a window while half-open).
                        self.start_window(generation.wrapping_add(1));
                        closed_word(generation.wrapping_add(1))
                    } else {
                        half_open_word(generation, in_flight - 1, succeeded)
                    }
                }
            };
            match self.state.0.compare_exchange(word, next, AcqRel, Acquire) {
                Ok(_) => {
                    match (outcome, next & KIND_MASK) {
                        (ProbeOutcome::Failure { now }, _) => self.enter_open(
                            generation.wrapping_add(1),
                            BreakerState::HalfOpen,
                            now,
                            "probe failed",
                            1,
                        ),
                        (ProbeOutcome::Success, CLOSED) => self.log(
                            BreakerState::HalfOpen,
                            BreakerState::Closed,
                            "probes succeeded",
                            0,
                        ),
                        _ => {}
                    }
                    return;
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Run by the one thread whose CAS opened the breaker (period `generation`): sets and
    /// publishes the end of the open period, then logs.
    fn enter_open(
        &self,
        generation: u32,
        from: BreakerState,
        now: u64,
        reason: &'static str,
        failures: u64,
    ) {
        let g = &self.geometry;
        let (nominal, open_for) = if from == BreakerState::Closed {
            (g.open_for, g.open_for)
        } else {
            // Reopened by a failed probe: twice as long, with jitter, up to `open_max`.
            let previous = self.open_dur.load(Relaxed).max(g.open_for);
            let doubled = previous.saturating_mul(2).min(g.open_max);
            let jittered = (doubled as f64 * jitter_factor()) as u64;
            (doubled, jittered.min(g.open_max))
        };
        self.open_dur.store(nominal, Relaxed);
        self.open_until.store(now.saturating_add(open_for), Relaxed);
        self.open_gen.store(generation, Release);
        self.opened.fetch_add(1, Relaxed);
        self.log(from, BreakerState::Open, reason, failures);
    }

    fn log(&self, from: BreakerState, to: BreakerState, reason: &'static str, failures: u64) {
        tracing::info!(
            target: "stormguard",
            breaker = self.name,
            from = ?from,
            to = ?to,
            reason = reason,
            failures = failures,
            "circuit breaker state changed"
        );
        crate::export::breaker_state(self.name, to);
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

/// Proof of admission for one attempt, from [`Breaker::admit`].
///
/// Consumed by [`success`](Permit::success) or [`failure`](Permit::failure). Dropped without
/// either (a cancelled or panicking attempt), it gives a half-open probe slot back and counts
/// as neither, so a breaker never gets stuck half-open. A permit reports into the state it was
/// admitted in: if the breaker has changed state since, its outcome is counted in
/// [`BreakerCounts`] but does not move the breaker.
///
/// ```
/// use retry_runtime::breaker::{Breaker, BreakerConfig};
///
/// static BILLING: Breaker = Breaker::new("billing", BreakerConfig::DEFAULT);
///
/// fn call_downstream() -> Result<u32, std::io::Error> { Ok(7) }
///
/// let permit = BILLING.admit().expect("closed");
/// match call_downstream() {
///     Ok(_) => permit.success(),
///     Err(_) => permit.failure(),
/// }
/// assert_eq!(BILLING.counts().successes, 1);
/// ```
#[must_use = "report the attempt with success() or failure(); dropping the permit counts it as neither"]
pub struct Permit {
    breaker: &'static Breaker,
    generation: u32,
    probe: bool,
}

/// A [`Permit`] with its drop obligation set aside, to be kept in a struct without drop glue
/// (see [`Permit::park`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parked {
    breaker: &'static Breaker,
    generation: u32,
    probe: bool,
}

impl Parked {
    /// The permit again: report it, or drop it.
    #[inline]
    pub(crate) fn resume(self) -> Permit {
        Permit {
            breaker: self.breaker,
            generation: self.generation,
            probe: self.probe,
        }
    }

    /// True for a half-open trial call, whose slot must be given back if it is never reported.
    #[inline]
    pub(crate) fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Permit {
    /// The attempt succeeded (or failed in a way that shows the downstream is up).
    #[inline]
    pub fn success(self) {
        let permit = ManuallyDrop::new(self);
        permit.breaker.on_success(permit.generation, permit.probe);
    }

    /// The attempt failed in a way that counts against the downstream (transient error or
    /// timeout).
    pub fn failure(self) {
        let permit = ManuallyDrop::new(self);
        permit
            .breaker
            .on_failure(permit.generation, permit.probe, clock_now());
    }

    /// Sets the permit aside without its drop glue; the holder must [`Parked::resume`] it.
    #[inline]
    pub(crate) fn park(self) -> Parked {
        let permit = ManuallyDrop::new(self);
        Parked {
            breaker: permit.breaker,
            generation: permit.generation,
            probe: permit.probe,
        }
    }

    /// True if this permit is one of the half-open trial calls.
    ///
    /// ```
    /// use retry_runtime::breaker::{Breaker, BreakerConfig};
    ///
    /// static DNS: Breaker = Breaker::new("dns", BreakerConfig::DEFAULT);
    /// let permit = DNS.admit().unwrap();
    /// assert!(!permit.is_probe()); // closed: an ordinary call
    /// permit.success();
    /// ```
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        if self.probe {
            self.breaker
                .probe_done(self.generation, ProbeOutcome::Dropped);
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("probe", &self.probe)
            .field("generation", &self.generation)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
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
