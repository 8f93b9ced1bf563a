//! The retry policy of one call site: how many attempts, which backoff and jitter, which limits.
//! `#[retry]` turns its attribute into a `const Policy`; nothing here is parsed at run time.

use std::time::Duration;

/// The shape of the delay before retry `k` (the first retry is `k = 1`).
///
/// # Defaults
/// - `Exponential { factor: 2.0 }`
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backoff {
    /// `base · factor^(k-1)`.
    Exponential {
        /// Growth per retry, at least 1.
        factor: f64,
    },
    /// `base` before every retry.
    Fixed,
    /// `base · k`.
    Linear,
}

/// How each delay is randomised, so that callers who failed together do not retry together.
///
/// Every mode is capped at the policy's `max`: no delay ever exceeds it.
///
/// # Defaults
/// - `Full`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// The delay as computed by the backoff (lock-step retries: avoid in production).
    None,
    /// Uniform in `[0, d]` ("full jitter").
    Full,
    /// Uniform in `[d/2, d]` ("equal jitter").
    Equal,
    /// Uniform in `[base, 3 · previous delay]` ("decorrelated jitter").
    Decorrelated,
}

/// When a hedged call starts its next attempt beside the running one (`hedge = "…"`).
///
/// ```
/// use retry_runtime::{Hedge, Policy};
/// use std::time::Duration;
///
/// const FIXED: Policy = Policy::DEFAULT.with_hedge(Hedge::After(Duration::from_millis(50)));
/// const P95: Policy = Policy::DEFAULT.with_hedge(Hedge::Percentile(950));
/// assert_eq!(P95.hedge(), Some(Hedge::Percentile(950)));
/// assert!(FIXED.hedge().is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hedge {
    /// After this fixed delay.
    After(Duration),
    /// After the call site's recent latency at this percentile, in tenths of a percent
    /// (`950` is p95, `999` is p99.9; 500 to 999), once enough attempts were measured.
    Percentile(u16),
}

/// The longest delay before a retry, whatever the policy says: a year. The attribute takes no
/// longer duration; a policy built by hand is capped here, so that the delay the logs report
/// is the one slept (tokio's timers stop at about 30 years).
pub const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Everything one `#[retry]` call site decided at compile time.
///
/// Built with `const fn` builders, so that it can live in a `static`:
///
/// ```
/// use retry_runtime::{Backoff, Jitter, Policy};
/// use std::time::Duration;
///
/// const POLICY: Policy = Policy::DEFAULT
///     .with_attempts(5)
///     .with_backoff(Backoff::Linear)
///     .with_base(Duration::from_millis(50))
///     .with_jitter(Jitter::Equal);
/// assert_eq!(POLICY.attempts(), 5);
/// assert_eq!(POLICY.max(), Duration::from_secs(2));
/// ```
///
/// # Defaults
/// - `attempts`: 3 (the first call included)
/// - `backoff`: exponential, factor 2
/// - `base`: 100 ms, `max`: 2 s
/// - `jitter`: full
/// - `timeout`, `deadline`, `breaker`: none
/// - `budget`: the breaker's name if there is one, else one budget per call site
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Total calls, the first included (at least 1).
    attempts: u32,
    /// Delay shape.
    backoff: Backoff,
    /// First delay.
    base: Duration,
    /// Cap on any one delay, jitter included.
    max: Duration,
    /// Randomisation of each delay.
    jitter: Jitter,
    /// Per-attempt limit: the attempt is dropped when it passes.
    timeout: Option<Duration>,
    /// Limit on the whole call, attempts and sleeps together.
    deadline: Option<Duration>,
    /// Name of the circuit breaker guarding the downstream.
    breaker: Option<&'static str>,
    /// Name of a shared retry budget; `None` means the breaker's name, else the call site's own.
    budget: Option<&'static str>,
    /// When to start a hedged attempt beside a slow one.
    hedge: Option<Hedge>,
}

impl Policy {
    /// The safe default: 3 attempts, exponential backoff 100 ms → 2 s with full jitter.
    pub const DEFAULT: Policy = Policy {
        attempts: 3,
        backoff: Backoff::Exponential { factor: 2.0 },
        base: Duration::from_millis(100),
        max: Duration::from_secs(2),
        jitter: Jitter::Full,
        timeout: None,
        deadline: None,
        breaker: None,
        budget: None,
        hedge: None,
    };

    /// Sets the total number of attempts (values below 1 act as 1).
    pub const fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = if attempts == 0 { 1 } else { attempts };
        self
    }
    /// Sets the delay shape.
    pub const fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
    /// Sets the first delay.
    pub const fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }
    /// Sets the cap on any one delay.
    pub const fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }
    /// Sets the jitter mode.
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }
    /// Sets the per-attempt timeout.
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Hedges the call: starts the next attempt beside a running one after `hedge`.
    pub const fn with_hedge(mut self, hedge: Hedge) -> Self {
        self.hedge = Some(hedge);
        self
    }
    /// When a hedged attempt starts, if the call hedges.
    #[inline]
    pub const fn hedge(&self) -> Option<Hedge> {
        self.hedge
    }
    /// Sets the whole-call deadline.
    pub const fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
    /// Names the circuit breaker.
    pub const fn with_breaker(mut self, name: &'static str) -> Self {
        self.breaker = Some(name);
        self
    }
    /// Names the retry budget.
    pub const fn with_budget(mut self, name: &'static str) -> Self {
        self.budget = Some(name);
        self
    }

    /// `attempts` (see the field list above).
    #[inline]
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// `backoff` (see the field list above).
    #[inline]
    pub const fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// `base` (see the field list above).
    #[inline]
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// `max` (see the field list above).
    #[inline]
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// `jitter` (see the field list above).
    #[inline]
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// `timeout` (see the field list above).
    #[inline]
    pub const fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// `deadline` (see the field list above).
    #[inline]
    pub const fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// `breaker` (see the field list above).
    #[inline]
    pub const fn breaker(&self) -> Option<&'static str> {
        self.breaker
    }

    /// `budget` (see the field list above).
    #[inline]
    pub const fn budget(&self) -> Option<&'static str> {
        self.budget
    }

    /// The budget this policy draws from: its own name, else the breaker's, else `None`
    /// (the call site's own budget).
    pub const fn budget_name(&self) -> Option<&'static str> {
        match self.budget {
            Some(name) => Some(name),
            None => self.breaker,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::DEFAULT
    }
}
