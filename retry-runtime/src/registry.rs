//! Name → thing: the breakers and budgets declared with `breakers!`/`budgets!` (collected at
//! link time, no init call) and the ones used but never declared.

use crate::breaker::{Breaker, BreakerConfig};
use crate::budget::{Budget, BudgetConfig};
use std::sync::Mutex;

/// Every breaker declared with `stormguard::breakers!`, in any crate of the program.
#[linkme::distributed_slice]
pub static DECLARED_BREAKERS: [&'static Breaker];

/// Every budget declared with `stormguard::budgets!`, in any crate of the program.
#[linkme::distributed_slice]
pub static DECLARED_BUDGETS: [&'static Budget];

static UNDECLARED_BREAKERS: Mutex<Vec<&'static Breaker>> = Mutex::new(Vec::new());
static UNDECLARED_BUDGETS: Mutex<Vec<&'static Budget>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The breaker called `name`: the declared one, else one with the defaults, created (and
/// warned about, once) at first use. Cold path: call sites cache the answer.
pub fn breaker(name: &'static str) -> &'static Breaker {
    declared_or_created(&DECLARED_BREAKERS, &UNDECLARED_BREAKERS, name, || {
        tracing::warn!(
            target: "stormguard",
            breaker = name,
            "circuit breaker `{name}` is used but not declared in any `stormguard::breakers!` block; \
             it runs with the defaults (a typo?)"
        );
        Breaker::new(name, BreakerConfig::DEFAULT)
    })
}

/// Like [`breaker`], for a name known only at run time (looks it up, never creates one).
pub fn find_breaker(name: &str) -> Option<&'static Breaker> {
    declared_or_known(&DECLARED_BREAKERS, &lock(&UNDECLARED_BREAKERS), name)
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
    declared_or_created(&DECLARED_BUDGETS, &UNDECLARED_BUDGETS, name, || {
        Budget::new(name, BudgetConfig::DEFAULT)
    })
}

/// A breaker or a budget: something looked up by its name.
trait Named {
    fn entry_name(&self) -> &str;
}

impl Named for Breaker {
    fn entry_name(&self) -> &str {
        self.name()
    }
}

impl Named for Budget {
    fn entry_name(&self) -> &str {
        self.name()
    }
}

/// The entry called `name` among the declared ones, else among those created at first use.
fn declared_or_known<T: Named>(
    declared: &[&'static T],
    undeclared: &[&'static T],
    name: &str,
) -> Option<&'static T> {
    declared
        .iter()
        .chain(undeclared)
        .find(|t| t.entry_name() == name)
        .copied()
}

/// The entry called `name`, created by `create` (and leaked: one per name, for the life of
/// the process) the first time a name that no block declares is used. Cold path: call sites
/// cache the answer.
fn declared_or_created<T: Named>(
    declared: &[&'static T],
    undeclared: &Mutex<Vec<&'static T>>,
    name: &'static str,
    create: impl FnOnce() -> T,
) -> &'static T {
    if let Some(found) = declared_or_known(declared, &[], name) {
        return found;
    }
    let mut undeclared = lock(undeclared);
    if let Some(found) = declared_or_known(&[], &undeclared, name) {
        return found;
    }
    let created: &'static T = Box::leak(Box::new(create()));
    undeclared.push(created);
    created
}

/// Every named budget declared or in use.
pub fn budgets() -> Vec<&'static Budget> {
    let mut all: Vec<&'static Budget> = DECLARED_BUDGETS.to_vec();
    all.extend(lock(&UNDECLARED_BUDGETS).iter().copied());
    all
}
