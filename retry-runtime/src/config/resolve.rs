//! The program's names (call sites, breakers, budgets, known at start-up) and the layers laid
//! over their compiled values: the whole new configuration, checked before any of it is set.

use super::duration::show;
use super::error::{ConfigError, Problem};
use super::layer::{
    did_you_mean, BreakerKeys, BudgetKeys, ForceKey, Layer, Origin, RetryKeys, Set,
};
use crate::breaker::{Breaker, BreakerConfig};
use crate::budget::{Budget, BudgetConfig};
use crate::policy::Policy;
use crate::registry::{self, DECLARED_BREAKERS, DECLARED_BUDGETS};
use crate::site::{Site, CALL_SITES};
use std::collections::BTreeMap;

/// Every name the program declares or uses, by section.
pub(crate) struct Names {
    pub(crate) ops: BTreeMap<&'static str, Vec<&'static Site>>,
    pub(crate) breakers: BTreeMap<&'static str, &'static Breaker>,
    pub(crate) budgets: BTreeMap<&'static str, &'static Budget>,
}

impl Names {
    pub(crate) fn of_program() -> Names {
        let mut ops: BTreeMap<&'static str, Vec<&'static Site>> = BTreeMap::new();
        let mut breakers = BTreeMap::new();
        let mut budgets = BTreeMap::new();
        for b in DECLARED_BREAKERS {
            breakers.entry(b.name()).or_insert(*b);
        }
        for b in DECLARED_BUDGETS {
            budgets.entry(b.name()).or_insert(*b);
        }
        for site in CALL_SITES.iter() {
            ops.entry(site.op()).or_default().push(site);
            let policy = site.compiled_policy();
            if let Some(name) = policy.breaker() {
                breakers
                    .entry(name)
                    .or_insert_with(|| registry::breaker(name));
            }
            if let Some(name) = policy.budget_name() {
                budgets
                    .entry(name)
                    .or_insert_with(|| registry::budget(name, policy.budget().is_some()));
            }
        }
        Names {
            ops,
            breakers,
            budgets,
        }
    }
}

/// What applying sets: every item's new value (`None`: its compiled one).
pub(crate) struct Plan {
    pub(crate) sites: Vec<(&'static Site, Option<Policy>, bool)>,
    pub(crate) breakers: Vec<(&'static Breaker, Option<BreakerConfig>, Option<ForceKey>)>,
    pub(crate) budgets: Vec<(&'static Budget, Option<BudgetConfig>)>,
    /// What `[fleet]` shares (`None`: nothing; feature `redis`).
    #[cfg(feature = "redis")]
    pub(crate) fleet: Option<crate::fleet::FleetPlan>,
}

fn at<T>(set: &Set<T>, key: &str, message: String) -> Problem {
    match &set.origin {
        Origin::File { source, .. } => Problem::new(source, set.at.0, set.at.1, key, message),
        Origin::Env(var) => Problem::new(var, 0, 0, key, message),
    }
}

fn unknown_name<V>(
    problems: &mut Vec<Problem>,
    section: &str,
    given: &BTreeMap<String, V>,
    known: &[&str],
    first_key: impl Fn(&V) -> Option<(Origin, (usize, usize))>,
) {
    for (name, keys) in given {
        if known.contains(&name.as_str()) {
            continue;
        }
        let what = match section {
            "retry" => "no `#[retry]` call site of this program has the operation name",
            "breaker" => {
                "no `breakers!` block or call site of this program has a circuit breaker named"
            }
            _ => "no `budgets!` block or call site of this program has a retry budget named",
        };
        let message = format!(
            "{what} `{name}`; {}the names are: {}",
            did_you_mean(name, known),
            if known.is_empty() {
                "(none)".to_string()
            } else {
                super::layer::list(known)
            }
        );
        let p = match first_key(keys) {
            Some((origin, pos)) => at(
                &Set {
                    value: (),
                    origin,
                    at: pos,
                },
                name,
                message,
            ),
            None => Problem::new("<config>", 0, 0, name, message),
        };
        problems.push(p);
    }
}

macro_rules! first_origin {
    ($keys:expr, $($field:ident),*) => {{
        let mut found = None;
        $(if found.is_none() { if let Some(s) = &$keys.$field { found = Some((s.origin.clone(), s.at)); } })*
        found
    }};
}

/// `over` laid on `under`, key by key.
macro_rules! merge {
    ($under:expr, $over:expr, $($field:ident),*) => {{
        let mut merged = $under.clone();
        $(if let Some(v) = &$over.$field { merged.$field = Some(v.clone()); })*
        merged
    }};
}

pub(super) fn merged_retry(file: &Layer, env: &Layer, op: &str) -> RetryKeys {
    let under = file.retry.get(op).cloned().unwrap_or_default();
    match env.retry.get(op) {
        Some(over) => {
            merge!(
                under, over, attempts, backoff, base, max, jitter, timeout, deadline, hedge,
                enabled
            )
        }
        None => under,
    }
}

pub(super) fn merged_breaker(file: &Layer, env: &Layer, name: &str) -> BreakerKeys {
    let under = file.breaker.get(name).cloned().unwrap_or_default();
    match env.breaker.get(name) {
        Some(over) => merge!(
            under,
            over,
            consecutive_failures,
            failure_rate,
            min_calls,
            open_for,
            open_max,
            half_open_probes,
            probe_timeout,
            force
        ),
        None => under,
    }
}

pub(super) fn merged_budget(file: &Layer, env: &Layer, name: &str) -> BudgetKeys {
    let under = file.budget.get(name).cloned().unwrap_or_default();
    match env.budget.get(name) {
        Some(over) => merge!(under, over, capacity, ratio, min_per_sec, max_concurrent),
        None => under,
    }
}

/// Lays `env` over `file` over the compiled values of every name; every problem, or the plan.
pub(crate) fn plan(names: &Names, file: &Layer, env: &Layer) -> Result<Plan, ConfigError> {
    let mut problems = Vec::new();
    let ops: Vec<&str> = names.ops.keys().copied().collect();
    let breakers: Vec<&str> = names.breakers.keys().copied().collect();
    let budgets: Vec<&str> = names.budgets.keys().copied().collect();
    for layer in [file, env] {
        unknown_name(&mut problems, "retry", &layer.retry, &ops, |k| {
            first_origin!(
                k, attempts, backoff, base, max, jitter, timeout, deadline, hedge, enabled
            )
        });
        unknown_name(&mut problems, "breaker", &layer.breaker, &breakers, |k| {
            first_origin!(
                k,
                consecutive_failures,
                failure_rate,
                min_calls,
                open_for,
                open_max,
                half_open_probes,
                probe_timeout,
                force
            )
        });
        unknown_name(&mut problems, "budget", &layer.budget, &budgets, |k| {
            first_origin!(k, capacity, ratio, min_per_sec, max_concurrent)
        });
    }

    let mut plan = Plan {
        sites: Vec::new(),
        breakers: Vec::new(),
        budgets: Vec::new(),
        #[cfg(feature = "redis")]
        fleet: fleet_plan(names, file, env, &mut problems),
    };
    for (op, sites) in &names.ops {
        let keys = merged_retry(file, env, op);
        for site in sites {
            match site_policy(site.compiled_policy(), &keys, op) {
                Ok(p) => plan.sites.push((
                    site,
                    (keys != RetryKeys::default()).then_some(p),
                    keys.enabled.as_ref().is_none_or(|e| e.value),
                )),
                Err(p) => {
                    if !problems.contains(&p) {
                        problems.push(p)
                    }
                }
            }
        }
    }
    for (name, breaker) in &names.breakers {
        let keys = merged_breaker(file, env, name);
        match breaker_config(breaker.compiled_config(), &keys) {
            Ok(c) => plan.breakers.push((
                breaker,
                (keys != BreakerKeys::default()).then_some(c),
                keys.force.map(|f| f.value),
            )),
            Err(p) => problems.push(p),
        }
    }
    for (name, budget) in &names.budgets {
        let keys = merged_budget(file, env, name);
        let c = budget_config(budget.compiled_config(), &keys);
        plan.budgets
            .push((budget, (keys != BudgetKeys::default()).then_some(c)));
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(ConfigError::new(problems))
    }
}

/// The environment's value of a key, else the file's.
#[cfg(feature = "redis")]
fn pick<T: Clone>(file: &Option<Set<T>>, env: &Option<Set<T>>) -> Option<Set<T>> {
    env.clone().or_else(|| file.clone())
}

/// `[fleet]` with the environment over the file, checked against the program's names.
#[cfg(feature = "redis")]
fn fleet_plan(
    names: &Names,
    file: &Layer,
    env: &Layer,
    problems: &mut Vec<Problem>,
) -> Option<crate::fleet::FleetPlan> {
    let (under, over) = (&file.fleet, &env.fleet);
    let redis: Option<Set<crate::redis_at::RedisAt>> = pick(&under.redis, &over.redis);
    let share: Option<Set<Vec<String>>> = pick(&under.share, &over.share);
    let sync: Option<Set<std::time::Duration>> = pick(&under.sync, &over.sync);
    let prefix: Option<Set<String>> = pick(&under.prefix, &over.prefix);
    let first = [
        redis.as_ref().map(|s| s.origin.clone()),
        share.as_ref().map(|s| s.origin.clone()),
        sync.as_ref().map(|s| s.origin.clone()),
        prefix.as_ref().map(|s| s.origin.clone()),
    ]
    .into_iter()
    .flatten()
    .next()?;
    let Some(redis) = redis else {
        let (source, line) = match first {
            Origin::File { source, line } => (source, line),
            Origin::Env(var) => (var, 0),
        };
        problems.push(Problem::new(&source, line, 0, "redis", "`[fleet]` needs the Redis to share through; write redis = \"redis://127.0.0.1:6379/0\" under it (or set STORMGUARD__FLEET__REDIS), or remove the section".into()));
        return None;
    };
    let mut breakers = Vec::new();
    let mut budgets = Vec::new();
    if let Some(share) = &share {
        for name in &share.value {
            let breaker = names.breakers.get(name.as_str());
            let budget = names.budgets.get(name.as_str());
            if breaker.is_none() && budget.is_none() {
                let mut known: Vec<&str> = names.breakers.keys().copied().collect();
                known.extend(names.budgets.keys().copied().filter(|n| !n.is_empty()));
                known.sort();
                known.dedup();
                problems.push(at(share, "share", format!(
                    "no circuit breaker or retry budget of this program is named `{name}`; {}the names are: {}",
                    did_you_mean(name, &known),
                    if known.is_empty() { "(none)".to_string() } else { super::layer::list(&known) }
                )));
                continue;
            }
            breakers.extend(breaker.copied());
            budgets.extend(budget.copied());
        }
    }
    Some(crate::fleet::FleetPlan {
        redis: redis.value,
        prefix: prefix.map_or_else(|| "stormguard".to_owned(), |p| p.value),
        sync: sync.map_or(std::time::Duration::from_millis(200), |s| s.value),
        breakers,
        budgets,
    })
}

fn site_policy(compiled: &Policy, keys: &RetryKeys, op: &str) -> Result<Policy, Problem> {
    let mut p = *compiled;
    if let Some(s) = &keys.attempts {
        p = p.with_attempts(s.value);
    }
    if let Some(s) = &keys.backoff {
        p = p.with_backoff(s.value);
    }
    if let Some(s) = &keys.base {
        p = p.with_base(s.value);
    }
    if let Some(s) = &keys.max {
        if s.value.is_zero() {
            // The attribute's own rule and words.
            return Err(at(s, "max", "`max` caps each pause between attempts, so `max = \"0ms\"` would retry at once, with no pause, every time (a burst on a struggling server); write a positive cap, like `max = \"2s\"`, or, if back-to-back retries are really meant, leave out `max` and write `base = \"0ms\"`".into()));
        }
        p = p.with_max(s.value);
    }
    if let Some(s) = &keys.jitter {
        p = p.with_jitter(s.value);
    }
    if let Some(s) = &keys.timeout {
        if compiled.timeout().is_none() {
            return Err(at(s, "timeout", format!(
                "the call site of `{op}` was compiled without `timeout` (its error type need not hold a timeout error), so none can be set here; add `timeout = \"…\"` to its #[retry] attribute, then tune it here"
            )));
        }
        p = p.with_timeout(s.value);
    }
    if let Some(s) = &keys.deadline {
        if compiled.deadline().is_none() {
            return Err(at(s, "deadline", format!(
                "the call site of `{op}` was compiled without `deadline`, so none can be set here; add `deadline = \"…\"` to its #[retry] attribute, then tune it here"
            )));
        }
        p = p.with_deadline(s.value);
    }
    if let Some(s) = &keys.hedge {
        if compiled.hedge().is_none() {
            return Err(at(s, "hedge", format!(
                "the call site of `{op}` was compiled without `hedge` (hedged attempts run beside each other, which its body must allow), so none can be set here; add `hedge = \"…\"` to its #[retry] attribute, then tune it here (to stop hedging during an incident, write enabled = false: one attempt, no hedges)"
            )));
        }
        p = p.with_hedge(s.value);
    }
    if p.max() < p.base() && (keys.max.is_some() || keys.base.is_some()) {
        let message = format!(
            "`max` ({}) is below `base` ({}): no delay could reach its first step; write max = \"{}\" or more, or lower `base`",
            show(p.max().as_nanos() as u64),
            show(p.base().as_nanos() as u64),
            show(p.base().as_nanos() as u64)
        );
        return Err(match (&keys.max, &keys.base) {
            (Some(m), _) => at(m, "max", message),
            (None, Some(b)) => at(b, "base", message),
            (None, None) => unreachable!("checked above"),
        });
    }
    if keys.enabled.as_ref().is_some_and(|e| !e.value) {
        p = p.with_attempts(1);
    }
    Ok(p)
}

fn breaker_config(compiled: &BreakerConfig, keys: &BreakerKeys) -> Result<BreakerConfig, Problem> {
    let mut c = *compiled;
    if let Some(s) = &keys.consecutive_failures {
        c = c.with_consecutive_failures((s.value != 0).then_some(s.value));
    }
    if let Some(s) = &keys.failure_rate {
        c = c.with_failure_rate(s.value);
    }
    if let Some(s) = &keys.min_calls {
        c = c.with_min_calls(s.value);
    }
    if let Some(s) = &keys.open_for {
        c = c.with_open_for(s.value);
    }
    if let Some(s) = &keys.open_max {
        c = c.with_open_max(s.value);
    }
    if let Some(s) = &keys.half_open_probes {
        c = c.with_half_open_probes(s.value);
    }
    if let Some(s) = &keys.probe_timeout {
        c = c.with_probe_timeout(s.value);
    }
    if c.open_max() < c.open_for() && (keys.open_max.is_some() || keys.open_for.is_some()) {
        let message = format!(
            "`open_max` ({}) is below `open_for` ({}): a reopened breaker would wait less than the first time; write open_max = \"{}\" or more",
            show(c.open_max().as_nanos() as u64),
            show(c.open_for().as_nanos() as u64),
            show(c.open_for().as_nanos() as u64)
        );
        return Err(match (&keys.open_max, &keys.open_for) {
            (Some(m), _) => at(m, "open_max", message),
            (None, Some(f)) => at(f, "open_for", message),
            (None, None) => unreachable!("checked above"),
        });
    }
    Ok(c)
}

fn budget_config(compiled: &BudgetConfig, keys: &BudgetKeys) -> BudgetConfig {
    let mut c = *compiled;
    if let Some(s) = &keys.capacity {
        c = c.with_capacity(s.value);
    }
    if let Some(s) = &keys.ratio {
        c = c.with_ratio(s.value);
    }
    if let Some(s) = &keys.min_per_sec {
        c = c.with_min_per_sec(s.value);
    }
    if let Some(s) = &keys.max_concurrent {
        c = c.with_max_concurrent(s.value);
    }
    c
}
