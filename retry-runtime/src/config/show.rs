//! How the live configuration reads to a person: `current()`'s TOML with each value's origin,
//! and the `old → new` list an applied change logs.

use super::duration;
use super::layer::{Layer, Set};
use super::resolve::{merged_breaker, merged_budget, merged_retry, Names};
use crate::breaker::Force;
use crate::policy::{Backoff, Hedge, Jitter, Policy};
use std::fmt::Display;
use std::fmt::Write as _;
use std::time::Duration;

pub(super) fn ms(d: Duration) -> String {
    duration::show(d.as_nanos().min(u64::MAX as u128) as u64)
}

/// Pushes `key old → new` onto `$changes` when the getter `key` differs, each side shown by
/// `$show` (which takes a reference).
macro_rules! diff {
    ($changes:ident, $old:ident, $new:ident, $key:ident, $show:expr) => {
        if $old.$key() != $new.$key() {
            $changes.push(format!(
                concat!(stringify!($key), " {} → {}"),
                $show(&$old.$key()),
                $show(&$new.$key())
            ));
        }
    };
}

fn plain<T: Display>(v: &T) -> String {
    v.to_string()
}

fn dur(d: &Duration) -> String {
    ms(*d)
}

fn dur_or_none(d: &Option<Duration>) -> String {
    d.map_or("none".into(), ms)
}

fn hedge_or_none(h: &Option<Hedge>) -> String {
    h.map_or("none".into(), hedge_text)
}

/// As the attribute writes it: `50ms`, `p95`, `p99.9`.
fn hedge_text(h: Hedge) -> String {
    match h {
        Hedge::After(d) => ms(d),
        Hedge::Percentile(p) if p % 10 == 0 => format!("p{}", p / 10),
        Hedge::Percentile(p) => format!("p{}.{}", p / 10, p % 10),
    }
}

fn count_or(none: &'static str) -> impl Fn(&Option<u32>) -> String {
    move |n| n.map_or(none.to_string(), |n| n.to_string())
}

pub(super) fn policy_diff(old: &Policy, new: &Policy) -> Vec<String> {
    let mut d = Vec::new();
    diff!(d, old, new, attempts, plain);
    diff!(d, old, new, backoff, |b: &Backoff| backoff_name(*b));
    diff!(d, old, new, base, dur);
    diff!(d, old, new, max, dur);
    diff!(d, old, new, jitter, |j: &Jitter| jitter_name(*j));
    diff!(d, old, new, timeout, dur_or_none);
    diff!(d, old, new, deadline, dur_or_none);
    diff!(d, old, new, hedge, hedge_or_none);
    d
}

pub(super) fn breaker_diff(old: &crate::BreakerConfig, new: &crate::BreakerConfig) -> Vec<String> {
    let mut d = Vec::new();
    diff!(d, old, new, consecutive_failures, count_or("off"));
    diff!(d, old, new, failure_rate, plain);
    diff!(d, old, new, min_calls, plain);
    diff!(d, old, new, open_for, dur);
    diff!(d, old, new, open_max, dur);
    diff!(d, old, new, half_open_probes, plain);
    diff!(d, old, new, probe_timeout, dur);
    d
}

pub(super) fn budget_diff(old: &crate::BudgetConfig, new: &crate::BudgetConfig) -> Vec<String> {
    let mut d = Vec::new();
    diff!(d, old, new, capacity, plain);
    diff!(d, old, new, ratio, plain);
    diff!(d, old, new, min_per_sec, plain);
    diff!(d, old, new, max_concurrent, count_or("none"));
    d
}

pub(super) fn backoff_name(b: Backoff) -> &'static str {
    match b {
        Backoff::Exponential { .. } => "exp",
        Backoff::Fixed => "fixed",
        Backoff::Linear => "linear",
    }
}

pub(super) fn jitter_name(j: Jitter) -> &'static str {
    match j {
        Jitter::None => "none",
        Jitter::Full => "full",
        Jitter::Equal => "equal",
        Jitter::Decorrelated => "decorrelated",
    }
}

/// Where a value came from: the layer that set it, else `compiled` (`attribute` or `block`)
/// where the compiled value is not the default, else `default`.
fn origin<T>(set: Option<&Set<T>>, compiled_differs: bool, compiled: &str) -> String {
    match set {
        Some(s) => s.origin.to_string(),
        None if compiled_differs => compiled.to_string(),
        None => "default".to_string(),
    }
}

/// Writes `key = value  # origin` for the key of the merged `$keys`.
macro_rules! line {
    ($out:ident, $keys:ident, $compiled:literal, $key:ident, $value:expr, $differs:expr) => {
        let _ = writeln!(
            $out,
            "{} = {}  # {}",
            stringify!($key),
            $value,
            origin($keys.$key.as_ref(), $differs, $compiled)
        );
    };
}

pub(super) fn print_current(names: &Names, file: &Layer, env: &Layer) -> String {
    let mut out = String::from(
        "# stormguard's effective configuration; each value's origin is in its comment.\n",
    );
    let def = Policy::DEFAULT;
    for (op, sites) in &names.ops {
        let p = sites[0].policy();
        let c = sites[0].compiled_policy();
        let keys = merged_retry(file, env, op);
        let _ = writeln!(out, "\n[retry.\"{}\"]", op.escape_default());
        let enabled = keys.enabled.as_ref().is_none_or(|s| s.value);
        // The kill switch shows as itself; the attempts it suspends stay as they were.
        let attempts = match &keys.attempts {
            _ if enabled => p.attempts(),
            Some(s) => s.value,
            None => c.attempts(),
        };
        line!(
            out,
            keys,
            "attribute",
            attempts,
            attempts,
            c.attempts() != def.attempts()
        );
        match p.backoff() {
            Backoff::Exponential { factor } if factor != 2.0 => {
                let _ = writeln!(out, "# backoff = \"exp\" with factor {factor} (set by the attribute; not a key here)");
            }
            b => {
                line!(
                    out,
                    keys,
                    "attribute",
                    backoff,
                    format!("\"{}\"", backoff_name(b)),
                    c.backoff() != def.backoff()
                );
            }
        }
        line!(
            out,
            keys,
            "attribute",
            base,
            format!("\"{}\"", ms(p.base())),
            c.base() != def.base()
        );
        line!(
            out,
            keys,
            "attribute",
            max,
            format!("\"{}\"", ms(p.max())),
            c.max() != def.max()
        );
        line!(
            out,
            keys,
            "attribute",
            jitter,
            format!("\"{}\"", jitter_name(p.jitter())),
            c.jitter() != def.jitter()
        );
        if let Some(t) = p.timeout() {
            line!(
                out,
                keys,
                "attribute",
                timeout,
                format!("\"{}\"", ms(t)),
                true
            );
        }
        if let Some(t) = p.deadline() {
            line!(
                out,
                keys,
                "attribute",
                deadline,
                format!("\"{}\"", ms(t)),
                true
            );
        }
        if let Some(h) = p.hedge() {
            line!(
                out,
                keys,
                "attribute",
                hedge,
                format!("\"{}\"", hedge_text(h)),
                true
            );
        }
        line!(out, keys, "attribute", enabled, enabled, false);
    }
    let bdef = crate::BreakerConfig::DEFAULT;
    for (name, breaker) in &names.breakers {
        let keys = merged_breaker(file, env, name);
        let (c, k) = (breaker.config(), breaker.compiled_config());
        let _ = writeln!(out, "\n[breaker.\"{}\"]", name.escape_default());
        line!(
            out,
            keys,
            "block",
            consecutive_failures,
            c.consecutive_failures().unwrap_or(0),
            k.consecutive_failures() != bdef.consecutive_failures()
        );
        line!(
            out,
            keys,
            "block",
            failure_rate,
            format_float(c.failure_rate()),
            k.failure_rate() != bdef.failure_rate()
        );
        line!(
            out,
            keys,
            "block",
            min_calls,
            c.min_calls().max(1),
            k.min_calls() != bdef.min_calls()
        );
        line!(
            out,
            keys,
            "block",
            open_for,
            format!("\"{}\"", ms(c.open_for())),
            k.open_for() != bdef.open_for()
        );
        line!(
            out,
            keys,
            "block",
            open_max,
            format!("\"{}\"", ms(c.open_max().max(c.open_for()))),
            k.open_max() != bdef.open_max()
        );
        line!(
            out,
            keys,
            "block",
            half_open_probes,
            c.half_open_probes().clamp(1, 32767),
            k.half_open_probes() != bdef.half_open_probes()
        );
        line!(
            out,
            keys,
            "block",
            probe_timeout,
            format!("\"{}\"", ms(c.probe_timeout())),
            k.probe_timeout() != bdef.probe_timeout()
        );
        let force = match breaker.forced() {
            Force::Auto => "auto",
            Force::Open => "open",
            Force::Closed => "closed",
        };
        if keys.force.is_some() {
            line!(out, keys, "block", force, format!("\"{force}\""), false);
        } else {
            let by = if breaker.forced() == Force::Auto {
                "default"
            } else {
                "code, through the breaker's handle"
            };
            let _ = writeln!(
                out,
                "# force = \"{force}\"  (not from the configuration: {by})"
            );
        }
    }
    let udef = crate::BudgetConfig::DEFAULT;
    for (name, budget) in &names.budgets {
        let keys = merged_budget(file, env, name);
        let (c, k) = (budget.config(), budget.compiled_config());
        let _ = writeln!(out, "\n[budget.\"{}\"]", name.escape_default());
        line!(
            out,
            keys,
            "block",
            capacity,
            c.capacity(),
            k.capacity() != udef.capacity()
        );
        line!(
            out,
            keys,
            "block",
            ratio,
            format_float(c.ratio()),
            k.ratio() != udef.ratio()
        );
        line!(
            out,
            keys,
            "block",
            min_per_sec,
            c.min_per_sec(),
            k.min_per_sec() != udef.min_per_sec()
        );
        if let Some(m) = c.max_concurrent() {
            line!(out, keys, "block", max_concurrent, m.max(1), true);
        }
    }
    out
}

pub(super) fn format_float(x: f64) -> String {
    let s = format!("{x}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}
