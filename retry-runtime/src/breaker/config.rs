//! What a breaker is configured with: `BreakerConfig` and its `Window` as written, and the
//! `Geometry` of integers the hot paths use, derived from it once.

use super::state::MAX_PROBES;
use super::window::BUCKETS;
use std::time::Duration;

/// Which calls the failure rate is computed over.
///
/// ```
/// use retry_runtime::{BreakerConfig, Window};
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
/// use retry_runtime::{BreakerConfig, Window};
/// use std::time::Duration;
///
/// const PAYMENTS: BreakerConfig = BreakerConfig::DEFAULT
///     .with_consecutive_failures(Some(5))
///     .with_open_for(Duration::from_secs(30));
/// assert_eq!(PAYMENTS.min_calls(), 100);
/// assert_eq!(PAYMENTS.window(), Window::Time(Duration::from_secs(10)));
/// ```
///
/// # Defaults
/// - `consecutive_failures`: 10
/// - `failure_rate`: 0.5
/// - `window`: `Window::Time(10 s)`
/// - `min_calls`: 100
/// - `open_for`: 5 s
/// - `open_max`: 300 s
/// - `half_open_probes`: 1
/// - `probe_timeout`: 10 s
///
/// With these, a total outage opens the breaker at its 10th failure at any traffic level (a
/// quiet call site included), and a steady 20 % failure rate practically never does: ten
/// failures in a row come once in 0.2^-10 ≈ 9.8 million calls (about once in 56 days at 2
/// calls/s), and the failure rate is judged only over 100 calls or more, where reaching 50 %
/// at a 20 % rate has a probability of about 10^-11. A rising failure rate that is not total
/// (say 60 %) opens it through the rate rule at a busy site and through the run of failures at
/// a quiet one. `tests/breaker_defaults.rs` checks each of these at 0.5, 2 and 100 calls/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Open after this many failures in a row (while closed); `None` for no such rule.
    /// `Some(0)` acts as `Some(1)`.
    consecutive_failures: Option<u32>,
    /// Open when this share of the calls in the window failed, in `(0, 1]`; values outside
    /// that range (and NaN) act as 1.
    failure_rate: f64,
    /// The calls the failure rate is computed over.
    window: Window,
    /// The failure rate is not judged before the window holds this many calls (at least 1;
    /// with a `Calls` window, at most as many as the window always holds).
    min_calls: u32,
    /// How long the breaker stays open the first time.
    open_for: Duration,
    /// The longest it stays open after failed probes (never below `open_for`).
    open_max: Duration,
    /// How many trial calls the half-open breaker lets through at once, from 1 to 32767; all
    /// of them must succeed to close it.
    half_open_probes: u32,
    /// How long the half-open breaker waits for its probes: when every probe slot has been
    /// taken for this long (a probe that hangs on a fn without `timeout`), it opens again, as
    /// after a failed probe.
    probe_timeout: Duration,
}

impl BreakerConfig {
    /// The defaults listed above.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        consecutive_failures: Some(10),
        failure_rate: 0.5,
        window: Window::Time(Duration::from_secs(10)),
        min_calls: 100,
        open_for: Duration::from_secs(5),
        open_max: Duration::from_secs(300),
        half_open_probes: 1,
        probe_timeout: Duration::from_secs(10),
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

    /// Sets `probe_timeout`.
    pub const fn with_probe_timeout(mut self, d: Duration) -> Self {
        self.probe_timeout = d;
        self
    }

    /// Sets `half_open_probes`.
    pub const fn with_half_open_probes(mut self, n: u32) -> Self {
        self.half_open_probes = n;
        self
    }
}

impl BreakerConfig {
    /// `consecutive_failures` (see the field list above).
    pub const fn consecutive_failures(&self) -> Option<u32> {
        self.consecutive_failures
    }

    /// `failure_rate` (see the field list above).
    pub const fn failure_rate(&self) -> f64 {
        self.failure_rate
    }

    /// `window` (see the field list above).
    pub const fn window(&self) -> Window {
        self.window
    }

    /// `min_calls` (see the field list above).
    pub const fn min_calls(&self) -> u32 {
        self.min_calls
    }

    /// `open_for` (see the field list above).
    pub const fn open_for(&self) -> Duration {
        self.open_for
    }

    /// `open_max` (see the field list above).
    pub const fn open_max(&self) -> Duration {
        self.open_max
    }

    /// `probe_timeout` (see the field list above).
    pub const fn probe_timeout(&self) -> Duration {
        self.probe_timeout
    }

    /// `half_open_probes` (see the field list above).
    pub const fn half_open_probes(&self) -> u32 {
        self.half_open_probes
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The config turned into the integers the hot paths use, computed once in `Breaker::new`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub(super) by_calls: bool,
    /// Bucket width: nanoseconds, or calls; at least 1.
    pub(super) span: u64,
    /// Buckets summed, the current one included: 1 to `BUCKETS`.
    pub(super) depth: u64,
    pub(super) min_calls: u64,
    pub(super) rate: f64,
    /// 0: no consecutive rule.
    pub(super) consecutive: u64,
    pub(super) probes: u64,
    pub(super) open_for: u64,
    pub(super) open_max: u64,
    /// At least 1.
    pub(super) probe_timeout: u64,
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
    pub(super) const fn of(c: &BreakerConfig) -> Geometry {
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
        let probe_timeout = at_least_1(nanos(c.probe_timeout));
        Geometry {
            probe_timeout,
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
