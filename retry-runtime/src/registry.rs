//! Name → thing: the breakers and budgets declared with `breakers!`/`budgets!` (collected at
//! link time, no init call, indexed by name once), and the ones call sites use undeclared.

use crate::breaker::{Breaker, BreakerConfig};
use crate::budget::{Budget, BudgetConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// Every breaker declared with `stormguard::breakers!`, in any crate of the program.
#[linkme::distributed_slice]
pub static DECLARED_BREAKERS: [&'static Breaker];

/// Every budget declared with `stormguard::budgets!`, in any crate of the program.
#[linkme::distributed_slice]
pub static DECLARED_BUDGETS: [&'static Budget];

/// A breaker or a budget: something looked up by its name.
trait Named: Sync + 'static {
    const KIND: &'static str;
    fn entry_name(&self) -> &'static str;
}

impl Named for Breaker {
    const KIND: &'static str = "circuit breaker";
    fn entry_name(&self) -> &'static str {
        self.name()
    }
}

impl Named for Budget {
    const KIND: &'static str = "retry budget";
    fn entry_name(&self) -> &'static str {
        self.name()
    }
}

/// The declared entries of one kind by name (built once, read without a lock), and the ones
/// created for names that call sites use without a declaration.
struct Names<T: 'static> {
    declared: OnceLock<Declared<T>>,
    undeclared: Mutex<Option<HashMap<&'static str, &'static T>>>,
    warned_duplicates: AtomicBool,
}

struct Declared<T: 'static> {
    by_name: HashMap<&'static str, &'static T>,
    /// In declaration (link) order, each name once.
    all: Vec<&'static T>,
    /// Names declared more than once (only the first declaration is used).
    duplicates: Vec<&'static str>,
}

static BREAKERS: Names<Breaker> = Names::new();
static BUDGETS: Names<Budget> = Names::new();

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: Named> Names<T> {
    const fn new() -> Self {
        Names {
            declared: OnceLock::new(),
            undeclared: Mutex::new(None),
            warned_duplicates: AtomicBool::new(false),
        }
    }

    /// The declared entries, indexed on first use. Logs nothing while indexing (a tracing layer
    /// may call back into the registry); the duplicate warning comes after, once.
    fn declared(&self, slice: &'static [&'static T]) -> &Declared<T> {
        let declared = self.declared.get_or_init(|| {
            let mut by_name = HashMap::with_capacity(slice.len());
            let mut all = Vec::with_capacity(slice.len());
            let mut duplicates = Vec::new();
            for &entry in slice {
                match by_name.entry(entry.entry_name()) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(entry);
                        all.push(entry);
                    }
                    std::collections::hash_map::Entry::Occupied(_) => {
                        duplicates.push(entry.entry_name())
                    }
                }
            }
            Declared {
                by_name,
                all,
                duplicates,
            }
        });
        if !declared.duplicates.is_empty() && !self.warned_duplicates.swap(true, Ordering::Relaxed)
        {
            for name in &declared.duplicates {
                tracing::warn!(
                    target: crate::log::TARGET,
                    name,
                    "{} `{name}` is declared in more than one block (two modules or two crates); the first declaration is used, the others are ignored: keep one",
                    T::KIND,
                );
            }
        }
        declared
    }

    fn find(&self, slice: &'static [&'static T], name: &str) -> Option<&'static T> {
        if let Some(&found) = self.declared(slice).by_name.get(name) {
            return Some(found);
        }
        lock(&self.undeclared).as_ref()?.get(name).copied()
    }

    /// The entry called `name`; created with `create` (and leaked: one per name a call site
    /// uses, for the life of the process) the first time a name no block declares is used.
    /// Returns whether it was created now, for the caller to log outside the lock.
    fn find_or_create(
        &self,
        slice: &'static [&'static T],
        name: &'static str,
        create: impl FnOnce() -> T,
    ) -> (&'static T, bool) {
        if let Some(&found) = self.declared(slice).by_name.get(name) {
            return (found, false);
        }
        let mut undeclared = lock(&self.undeclared);
        let undeclared = undeclared.get_or_insert_with(HashMap::new);
        if let Some(&found) = undeclared.get(name) {
            return (found, false);
        }
        let created: &'static T = Box::leak(Box::new(create()));
        undeclared.insert(name, created);
        (created, true)
    }

    /// Every entry, declared ones first (in declaration order), then the created ones by name.
    fn all(&self, slice: &'static [&'static T]) -> Vec<(&'static T, bool)> {
        let mut all: Vec<(&'static T, bool)> = self
            .declared(slice)
            .all
            .iter()
            .map(|&t| (t, true))
            .collect();
        let mut created: Vec<&'static T> = lock(&self.undeclared)
            .iter()
            .flat_map(|m| m.values().copied())
            .collect();
        created.sort_by_key(|t| t.entry_name());
        all.extend(created.into_iter().map(|t| (t, false)));
        all
    }

    fn is_declared(&self, slice: &'static [&'static T], name: &str) -> bool {
        self.declared(slice).by_name.contains_key(name)
    }
}

/// The breaker called `name`: the declared one, else one with the defaults, created (and
/// warned about, once) at first use. Cold path: call sites cache the answer.
pub fn breaker(name: &'static str) -> &'static Breaker {
    let (breaker, created) = BREAKERS.find_or_create(&DECLARED_BREAKERS, name, || {
        Breaker::new(name, BreakerConfig::DEFAULT)
    });
    if created {
        // After the lock is released: a tracing layer may call back into the registry.
        tracing::warn!(
            target: crate::log::TARGET,
            breaker = name,
            "circuit breaker `{name}` is used but not declared in any `stormguard::breakers!` block; \
             it runs with the defaults (a typo?)"
        );
    }
    breaker
}

/// The breaker called `name`, declared or already in use; never creates one.
pub fn find_breaker(name: &str) -> Option<&'static Breaker> {
    BREAKERS.find(&DECLARED_BREAKERS, name)
}

/// True if a `breakers!` block declares `name`.
pub(crate) fn is_declared_breaker(name: &str) -> bool {
    BREAKERS.is_declared(&DECLARED_BREAKERS, name)
}

/// True if a `budgets!` block declares `name`.
pub(crate) fn is_declared_budget(name: &str) -> bool {
    BUDGETS.is_declared(&DECLARED_BUDGETS, name)
}

/// Every breaker declared or in use, with whether it was declared.
pub fn breakers() -> Vec<(&'static Breaker, bool)> {
    BREAKERS.all(&DECLARED_BREAKERS)
}

/// The budget called `name`: the declared one, else one with the defaults. A name given as
/// `budget = "…"` that no block declares is warned about once (a typo?); the budget a breaker's
/// name implies needs no declaration.
pub fn budget(name: &'static str, explicit: bool) -> &'static Budget {
    let (budget, created) = BUDGETS.find_or_create(&DECLARED_BUDGETS, name, || {
        Budget::new(name, BudgetConfig::DEFAULT)
    });
    if created && explicit {
        tracing::warn!(
            target: crate::log::TARGET,
            budget = name,
            "retry budget `{name}` is used but not declared in any `stormguard::budgets!` block; \
             it runs with the defaults (a typo?)"
        );
    }
    budget
}

/// Every named budget declared or in use.
pub fn budgets() -> Vec<&'static Budget> {
    BUDGETS
        .all(&DECLARED_BUDGETS)
        .into_iter()
        .map(|(b, _)| b)
        .collect()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Issue 12 item 4, across crates (where no compile error can see both blocks): one entry,
    /// the first declared, and the name listed as duplicated (for the one warning).
    #[test]
    fn a_name_declared_twice_is_one_entry_the_first() {
        static FIRST: Breaker = Breaker::new("dup", BreakerConfig::DEFAULT.with_min_calls(1));
        static SECOND: Breaker = Breaker::new("dup", BreakerConfig::DEFAULT.with_min_calls(2));
        static OTHER: Breaker = Breaker::new("other", BreakerConfig::DEFAULT);
        static SLICE: [&Breaker; 3] = [&FIRST, &SECOND, &OTHER];
        let names: Names<Breaker> = Names::new();
        let found = names.find(&SLICE, "dup").unwrap();
        assert!(std::ptr::eq(found, &FIRST));
        let all = names.all(&SLICE);
        assert_eq!(all.len(), 2, "one entry per name");
        assert_eq!(names.declared(&SLICE).duplicates, vec!["dup"]);
        assert!(names.warned_duplicates.load(Ordering::Relaxed), "warned");
    }
}
