//! One `#[retry]` call site: its `static` policy, operation name, counters and own budget,
//! the breaker and named budget it resolves once, on first use, and the list of every site.

use crate::alert::AlertWindow;
use crate::breaker::Breaker;
use crate::budget::{Budget, BudgetConfig};
use crate::counters::OpCounters;
use crate::policy::Policy;
use crate::registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// Every call site that has run at least once.
static SITES: Mutex<Vec<&'static Site>> = Mutex::new(Vec::new());

/// Every call site that has run at least once.
pub fn sites() -> Vec<&'static Site> {
    SITES.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
    op: &'static str,
    counters: OpCounters,
    own_budget: Budget,
    budget: OnceLock<&'static Budget>,
    breaker: OnceLock<Option<&'static Breaker>>,
    registered: AtomicBool,
    warned_blocking: AtomicBool,
    alert: AlertWindow,
    #[cfg(feature = "metrics")]
    metrics: OnceLock<crate::export::SiteMetrics>,
}

impl Site {
    /// A call site with `policy`, logged and counted as `op`.
    pub const fn new(policy: Policy, op: &'static str) -> Site {
        Site {
            policy,
            op,
            counters: OpCounters::new(),
            own_budget: Budget::new("", BudgetConfig::DEFAULT),
            budget: OnceLock::new(),
            breaker: OnceLock::new(),
            registered: AtomicBool::new(false),
            warned_blocking: AtomicBool::new(false),
            alert: AlertWindow::new(),
            #[cfg(feature = "metrics")]
            metrics: OnceLock::new(),
        }
    }

    /// The policy.
    #[inline]
    pub fn policy(&self) -> &Policy {
        &self.policy
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
            self.alert.record(self.op, true);
        }
    }

    /// A call that retried gave up.
    pub(crate) fn record_retried_give_up(&self) {
        self.alert.record(self.op, false);
    }

    /// Its counters.
    pub fn counters(&self) -> &OpCounters {
        &self.counters
    }

    /// Registers the site for `stats()` on its first call (one load afterwards).
    #[inline]
    pub(crate) fn ensure_registered(&'static self) {
        if !self.registered.load(Ordering::Relaxed) && !self.registered.swap(true, Ordering::AcqRel)
        {
            SITES.lock().unwrap_or_else(|p| p.into_inner()).push(self);
        }
    }

    /// The budget this site's retries draw from.
    #[inline]
    pub fn budget(&'static self) -> &'static Budget {
        match self.policy.budget_name() {
            None => &self.own_budget,
            Some(name) => self.budget.get_or_init(|| registry::budget(name)),
        }
    }

    /// The breaker guarding this site, if any.
    #[inline]
    pub fn breaker(&'static self) -> Option<&'static Breaker> {
        match self.policy.breaker() {
            None => None,
            Some(name) => *self.breaker.get_or_init(|| Some(registry::breaker(name))),
        }
    }

    /// True the first time it is asked (for one-time warnings about blocking sleeps).
    pub(crate) fn first_blocking_warning(&self) -> bool {
        !self.warned_blocking.swap(true, Ordering::Relaxed)
    }
}
