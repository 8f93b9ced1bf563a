//! Name → thing: the breakers and budgets declared with `breakers!`/`budgets!` (collected at
//! link time, no init call), the ones used but never declared, and every call site seen.

use crate::breaker::{Breaker, BreakerConfig};
use crate::budget::{Budget, BudgetConfig};
use crate::site::Site;
use std::sync::Mutex;

/// Every breaker declared with `stormguard::breakers!`, in any crate of the program.
#[linkme::distributed_slice]
pub static DECLARED_BREAKERS: [&'static Breaker];

/// Every budget declared with `stormguard::budgets!`, in any crate of the program.
#[linkme::distributed_slice]
pub static DECLARED_BUDGETS: [&'static Budget];

static UNDECLARED_BREAKERS: Mutex<Vec<&'static Breaker>> = Mutex::new(Vec::new());
static UNDECLARED_BUDGETS: Mutex<Vec<&'static Budget>> = Mutex::new(Vec::new());
static SITES: Mutex<Vec<&'static Site>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The breaker called `name`: the declared one, else one with the defaults, created (and
/// warned about, once) at first use. Cold path: call sites cache the answer.
pub fn breaker(name: &'static str) -> &'static Breaker {
    if let Some(b) = DECLARED_BREAKERS.iter().find(|b| b.name() == name) {
        return b;
    }
    let mut undeclared = lock(&UNDECLARED_BREAKERS);
    if let Some(b) = undeclared.iter().find(|b| b.name() == name) {
        return b;
    }
    tracing::warn!(
        target: "stormguard",
        breaker = name,
        "circuit breaker `{name}` is used but not declared in any `stormguard::breakers!` block; \
         it runs with the defaults (a typo?)"
    );
    let b: &'static Breaker = Box::leak(Box::new(Breaker::new(name, BreakerConfig::DEFAULT)));
    undeclared.push(b);
    b
}

/// Like [`breaker`], for a name known only at run time (looks it up, never creates one).
pub fn find_breaker(name: &str) -> Option<&'static Breaker> {
    if let Some(b) = DECLARED_BREAKERS.iter().find(|b| b.name() == name) {
        return Some(*b);
    }
    lock(&UNDECLARED_BREAKERS)
        .iter()
        .find(|b| b.name() == name)
        .copied()
}

/// Names of the breakers used so far without a declaration: a start-up check or a test can
/// assert this is empty to catch a typo in `breaker = "…"`.
///
/// ```
/// assert!(retry_runtime::undeclared_breakers().is_empty());
/// ```
pub fn undeclared_breakers() -> Vec<&'static str> {
    lock(&UNDECLARED_BREAKERS)
        .iter()
        .map(|b| b.name())
        .collect()
}

/// Every breaker declared or in use, with whether it was declared.
pub fn breakers() -> Vec<(&'static Breaker, bool)> {
    let mut all: Vec<(&'static Breaker, bool)> =
        DECLARED_BREAKERS.iter().map(|b| (*b, true)).collect();
    all.extend(lock(&UNDECLARED_BREAKERS).iter().map(|b| (*b, false)));
    all
}

/// The budget called `name`: the declared one, else one with the defaults.
pub fn budget(name: &'static str) -> &'static Budget {
    if let Some(b) = DECLARED_BUDGETS.iter().find(|b| b.name() == name) {
        return b;
    }
    let mut undeclared = lock(&UNDECLARED_BUDGETS);
    if let Some(b) = undeclared.iter().find(|b| b.name() == name) {
        return b;
    }
    let b: &'static Budget = Box::leak(Box::new(Budget::new(name, BudgetConfig::DEFAULT)));
    undeclared.push(b);
    b
}

/// Every named budget declared or in use.
pub fn budgets() -> Vec<&'static Budget> {
    let mut all: Vec<&'static Budget> = DECLARED_BUDGETS.to_vec();
    all.extend(lock(&UNDECLARED_BUDGETS).iter().copied());
    all
}

pub(crate) fn register_site(site: &'static Site) {
    lock(&SITES).push(site);
}

/// Every call site that has run at least once.
pub fn sites() -> Vec<&'static Site> {
    lock(&SITES).clone()
}
