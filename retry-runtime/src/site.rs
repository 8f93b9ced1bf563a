//! One `#[retry]` call site: its `static` policy, operation name, counters and own budget,
//! the breaker and named budget it resolves once, on first use, and the list of every site.

use crate::alert::{self, AlertWindow};
use crate::breaker::{Breaker, BreakerConfig};
use crate::budget::{Budget, BudgetConfig};
use crate::counters::OpCounters;
use crate::latency::LatencyRecord;
use crate::policy::Policy;
use crate::registry;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::OnceLock;

/// Every `#[retry]` call site of the program, in any crate (collected at link time, so that
/// the names they use are known at start-up, before any call).
#[linkme::distributed_slice]
pub static CALL_SITES: [Site];

/// Every call site of the program.
pub fn sites() -> &'static [Site] {
    &CALL_SITES
}

/// Names that call sites give as `breaker = "…"` but no `breakers!` block declares, sorted,
/// each once: a start-up check (or a test) can assert this is empty to catch a typo.
///
/// ```
/// assert!(retry_runtime::undeclared_breakers().is_empty());
/// ```
pub fn undeclared_breakers() -> Vec<&'static str> {
    undeclared(|p| p.breaker(), registry::is_declared_breaker)
}

/// Names that call sites give as `budget = "…"` but no `budgets!` block declares, sorted,
/// each once (a budget named after a breaker needs no declaration).
///
/// ```
/// assert!(retry_runtime::undeclared_budgets().is_empty());
/// ```
pub fn undeclared_budgets() -> Vec<&'static str> {
    undeclared(|p| p.budget(), registry::is_declared_budget)
}

/// The breaker called `name`, for code that has the name only at run time: the declared one,
/// else the one a call site uses (created with the defaults if no call ran yet), else, for a
/// name that no block declares and no call site uses, one inert breaker with the defaults
/// that nothing else uses (with one warning per process): a lookup never grows memory.
pub fn breaker_by_name(name: &str) -> &'static Breaker {
    if let Some(found) = registry::find_breaker(name) {
        return found;
    }
    let used = CALL_SITES
        .iter()
        .filter_map(|site| site.policy.breaker())
        .find(|used| *used == name);
    if let Some(used) = used {
        return registry::breaker(used);
    }
    static UNKNOWN: OnceLock<&'static Breaker> = OnceLock::new();
    static WARNED: AtomicBool = AtomicBool::new(false);
    // Never opens (no rule can trip it): nothing reports into it, and if a caller does, one
    // typo's failures must not refuse another typo's calls.
    let inert = *UNKNOWN.get_or_init(|| {
        let never = BreakerConfig::DEFAULT
            .with_consecutive_failures(None)
            .with_min_calls(u32::MAX);
        Box::leak(Box::new(Breaker::new("<unknown>", never)))
    });
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: crate::log::TARGET,
            breaker = name,
            "no `stormguard::breakers!` block declares a circuit breaker `{name}` and no call site uses one: \
             `stormguard::breaker(\"{name}\")` returns an inert closed breaker (a typo?)"
        );
    }
    inert
}

fn undeclared(
    name: impl Fn(&Policy) -> Option<&'static str>,
    declared: impl Fn(&str) -> bool,
) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = CALL_SITES
        .iter()
        .filter_map(|site| name(&site.policy))
        .filter(|n| !declared(n))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The `static` that `#[retry]` emits inside each annotated fn.
///
/// ```
/// use retry_runtime::{__private::Site, Policy};
/// static SITE: Site = Site::new(Policy::DEFAULT, "billing::fetch_invoice");
/// assert_eq!(SITE.op(), "billing::fetch_invoice");
/// ```
#[derive(Debug)]
pub struct Site {
    policy: Policy,
    /// The policy calls start with: the compiled one, or the live configuration's override
    /// (leaked, never freed: a call in flight may hold it). Null until first read.
    live: AtomicPtr<Policy>,
    op: &'static str,
    counters: OpCounters,
    own_budget: Budget,
    budget: OnceLock<&'static Budget>,
    breaker: OnceLock<Option<&'static Breaker>>,
    warned_blocking: AtomicBool,
    /// The retry-success alert of this site's operation (shared by every site of the op).
    alert: OnceLock<&'static AlertWindow>,
    /// With `hedge = "pNN"`: the attempts' recent latencies (allocated at the first call).
    latency: OnceLock<Box<LatencyRecord>>,
    #[cfg(feature = "metrics")]
    metrics: OnceLock<crate::export::SiteMetrics>,
}

impl Site {
    /// A call site with `policy`, logged and counted as `op`.
    pub const fn new(policy: Policy, op: &'static str) -> Site {
        Site {
            policy,
            live: AtomicPtr::new(std::ptr::null_mut()),
            op,
            counters: OpCounters::new(),
            // Named after the operation: its own gauge in the metrics, not one mixed `""`.
            own_budget: Budget::new(op, BudgetConfig::DEFAULT),
            budget: OnceLock::new(),
            breaker: OnceLock::new(),
            warned_blocking: AtomicBool::new(false),
            alert: OnceLock::new(),
            latency: OnceLock::new(),
            #[cfg(feature = "metrics")]
            metrics: OnceLock::new(),
        }
    }

    /// The policy a call starting now runs with: the compiled one unless the live
    /// configuration overrides it (one atomic load; the first read applies
    /// `STORMGUARD_CONFIG`, with feature `config`).
    #[inline]
    pub fn policy(&'static self) -> &'static Policy {
        let live = self.live.load(Ordering::Acquire);
        if live.is_null() {
            return self.first_policy();
        }
        // SAFETY: `live` is null, `&self.policy`, or a leaked `Box<Policy>` (`set_live`).
        unsafe { &*live }
    }

    /// The policy as the attribute wrote it.
    pub fn compiled_policy(&self) -> &Policy {
        &self.policy
    }

    #[cold]
    fn first_policy(&'static self) -> &'static Policy {
        crate::startup::first_use();
        let live = self.live.load(Ordering::Acquire);
        if live.is_null() {
            // No configuration named this site: the compiled policy, unless a concurrent
            // apply set one in between (it wins).
            let compiled = &self.policy as *const Policy as *mut Policy;
            let _ = self.live.compare_exchange(
                std::ptr::null_mut(),
                compiled,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            // SAFETY: as in `policy`.
            return unsafe { &*self.live.load(Ordering::Acquire) };
        }
        // SAFETY: as in `policy`.
        unsafe { &*live }
    }

    /// Makes calls that start from now on run with `policy` (`None`: the compiled one).
    /// Calls in flight keep the policy they started with.
    #[cfg_attr(not(feature = "config"), allow(dead_code))]
    pub(crate) fn set_live(&'static self, policy: Option<Policy>) {
        let current = self.live.load(Ordering::Acquire);
        let next = match policy {
            // SAFETY: as in `policy`; an unchanged override is kept, not leaked again.
            Some(p) if !current.is_null() && unsafe { *current } == p => current,
            Some(p) if p != self.policy => Box::into_raw(Box::new(p)),
            _ => &self.policy as *const Policy as *mut Policy,
        };
        self.live.store(next, Ordering::Release);
    }

    /// The operation name in logs and stats.
    #[inline]
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// Counts a successful call (the success path: one atomic add, plus the metrics handles
    /// with feature `metrics`).
    #[inline]
    pub(crate) fn record_success(&'static self, attempt: u32) {
        self.counters.success(attempt);
        #[cfg(feature = "metrics")]
        self.metrics
            .get_or_init(|| crate::export::SiteMetrics::new(self.op))
            .success(attempt);
        if attempt > 1 {
            self.alert().record(self.op, true);
        }
    }

    /// The latency record of a `hedge = "pNN"` site, of the `permille`th percentile (the
    /// first hedged call's).
    pub(crate) fn latency(&self, permille: u16) -> &LatencyRecord {
        let record = self
            .latency
            .get_or_init(|| Box::new(LatencyRecord::new(permille)));
        if record.permille() != permille {
            record.retarget(permille); // a reload changed `hedge = "pNN"`
        }
        record
    }

    /// A call that retried gave up.
    pub(crate) fn record_retried_give_up(&self) {
        self.alert().record(self.op, false);
    }

    /// Its counters.
    pub fn counters(&self) -> &OpCounters {
        &self.counters
    }

    /// The alert window of this site's operation.
    fn alert(&self) -> &'static AlertWindow {
        self.alert.get_or_init(|| alert::window(self.op))
    }

    /// The budget this site's retries draw from.
    #[inline]
    pub fn budget(&'static self) -> &'static Budget {
        match self.policy.budget_name() {
            None => &self.own_budget,
            // Resolved outside the `OnceLock`: the first resolution may log a warning, and a
            // tracing layer that calls this very site must not re-enter its initialisation.
            Some(name) => match self.budget.get() {
                Some(budget) => budget,
                None => {
                    let budget = registry::budget(name, self.policy.budget().is_some());
                    self.budget.get_or_init(|| budget)
                }
            },
        }
    }

    /// The breaker guarding this site, if any.
    #[inline]
    pub fn breaker(&'static self) -> Option<&'static Breaker> {
        match self.policy.breaker() {
            None => None,
            // Outside the `OnceLock` too (see `budget`).
            Some(name) => match self.breaker.get() {
                Some(breaker) => *breaker,
                None => {
                    let breaker = registry::breaker(name);
                    *self.breaker.get_or_init(|| Some(breaker))
                }
            },
        }
    }

    /// True the first time it is asked (for one-time warnings about blocking sleeps).
    pub(crate) fn first_blocking_warning(&self) -> bool {
        !self.warned_blocking.swap(true, Ordering::Relaxed)
    }
}
