//! How the live configuration reads to a person: `current()`'s TOML with each value's origin,
//! and the `old → new` list an applied change logs.

use super::duration;
use super::enabled_in;
use super::layer::{self, Layer};
use super::resolve::Names;
use crate::breaker::Force;
use crate::policy::{Backoff, Jitter, Policy};
use std::fmt::Write as _;

pub(super) fn ms(d: std::time::Duration) -> String {
    duration::show(d.as_nanos().min(u64::MAX as u128) as u64)
}

pub(super) fn policy_diff(old: &Policy, new: &Policy) -> Vec<String> {
    let mut d = Vec::new();
    if old.attempts() != new.attempts() {
        d.push(format!("attempts {} → {}", old.attempts(), new.attempts()));
    }
    if old.backoff() != new.backoff() {
        d.push(format!(
            "backoff {} → {}",
            backoff_name(old.backoff()),
            backoff_name(new.backoff())
        ));
    }
    if old.base() != new.base() {
        d.push(format!("base {} → {}", ms(old.base()), ms(new.base())));
    }
    if old.max() != new.max() {
        d.push(format!("max {} → {}", ms(old.max()), ms(new.max())));
    }
    if old.jitter() != new.jitter() {
        d.push(format!(
            "jitter {} → {}",
            jitter_name(old.jitter()),
            jitter_name(new.jitter())
        ));
    }
    if old.timeout() != new.timeout() {
        d.push(format!(
            "timeout {} → {}",
            old.timeout().map_or("none".into(), ms),
            new.timeout().map_or("none".into(), ms)
        ));
    }
    if old.deadline() != new.deadline() {
        d.push(format!(
            "deadline {} → {}",
            old.deadline().map_or("none".into(), ms),
            new.deadline().map_or("none".into(), ms)
        ));
    }
    d
}

pub(super) fn breaker_diff(old: &crate::BreakerConfig, new: &crate::BreakerConfig) -> Vec<String> {
    let mut d = Vec::new();
    let n = |o: Option<u32>| o.map_or("off".to_string(), |n| n.to_string());
    if old.consecutive_failures() != new.consecutive_failures() {
        d.push(format!(
            "consecutive_failures {} → {}",
            n(old.consecutive_failures()),
            n(new.consecutive_failures())
        ));
    }
    if old.failure_rate() != new.failure_rate() {
        d.push(format!(
            "failure_rate {} → {}",
            old.failure_rate(),
            new.failure_rate()
        ));
    }
    if old.min_calls() != new.min_calls() {
        d.push(format!(
            "min_calls {} → {}",
            old.min_calls(),
            new.min_calls()
        ));
    }
    if old.open_for() != new.open_for() {
        d.push(format!(
            "open_for {} → {}",
            ms(old.open_for()),
            ms(new.open_for())
        ));
    }
    if old.open_max() != new.open_max() {
        d.push(format!(
            "open_max {} → {}",
            ms(old.open_max()),
            ms(new.open_max())
        ));
    }
    if old.half_open_probes() != new.half_open_probes() {
        d.push(format!(
            "half_open_probes {} → {}",
            old.half_open_probes(),
            new.half_open_probes()
        ));
    }
    if old.probe_timeout() != new.probe_timeout() {
        d.push(format!(
            "probe_timeout {} → {}",
            ms(old.probe_timeout()),
            ms(new.probe_timeout())
        ));
    }
    d
}

pub(super) fn budget_diff(old: &crate::BudgetConfig, new: &crate::BudgetConfig) -> Vec<String> {
    let mut d = Vec::new();
    if old.capacity() != new.capacity() {
        d.push(format!("capacity {} → {}", old.capacity(), new.capacity()));
    }
    if old.ratio() != new.ratio() {
        d.push(format!("ratio {} → {}", old.ratio(), new.ratio()));
    }
    if old.min_per_sec() != new.min_per_sec() {
        d.push(format!(
            "min_per_sec {} → {}",
            old.min_per_sec(),
            new.min_per_sec()
        ));
    }
    if old.max_concurrent() != new.max_concurrent() {
        let n = |o: Option<u32>| o.map_or("none".to_string(), |n| n.to_string());
        d.push(format!(
            "max_concurrent {} → {}",
            n(old.max_concurrent()),
            n(new.max_concurrent())
        ));
    }
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

pub(super) fn print_current(names: &Names, file: &Layer, env: &Layer) -> String {
    let mut out = String::from(
        "# stormguard's effective configuration; each value's origin is in its comment.\n",
    );
    fn origin<T>(
        env: Option<&layer::Set<T>>,
        file: Option<&layer::Set<T>>,
        compiled_differs: bool,
        compiled: &str,
    ) -> String {
        match (env, file) {
            (Some(s), _) | (None, Some(s)) => s.origin.to_string(),
            _ if compiled_differs => compiled.to_string(),
            _ => "default".to_string(),
        }
    }
    let def = Policy::DEFAULT;
    for (op, sites) in &names.ops {
        let site = sites[0];
        let p = site.policy();
        let c = site.compiled_policy();
        let (f, e) = (file.retry.get(*op), env.retry.get(*op));
        let _ = writeln!(out, "\n[retry.\"{}\"]", op.escape_default());
        macro_rules! line {
            ($key:ident, $value:expr, $differs:expr) => {
                let _ = writeln!(
                    out,
                    "{} = {}  # {}",
                    stringify!($key),
                    $value,
                    origin(
                        e.and_then(|k| k.$key.as_ref()),
                        f.and_then(|k| k.$key.as_ref()),
                        $differs,
                        "attribute"
                    )
                );
            };
        }
        let enabled = enabled_in(file, env, op);
        let attempts = if enabled {
            p.attempts()
        } else {
            // The kill switch shows as itself; the attempts it suspends stay as they were.
            let mut keys = file.retry.get(*op).cloned().unwrap_or_default();
            if let Some(ek) = e {
                if ek.attempts.is_some() {
                    keys.attempts = ek.attempts.clone();
                }
            }
            keys.attempts.map_or(c.attempts(), |s| s.value)
        };
        line!(attempts, attempts, c.attempts() != def.attempts());
        if let Backoff::Exponential { factor } = p.backoff() {
            if factor != 2.0 {
                let _ = writeln!(out, "# backoff = \"exp\" with factor {factor} (set by the attribute; not a key here)");
            } else {
                line!(backoff, "\"exp\"", c.backoff() != def.backoff());
            }
        } else {
            line!(
                backoff,
                format!("\"{}\"", backoff_name(p.backoff())),
                c.backoff() != def.backoff()
            );
        }
        line!(
            base,
            format!("\"{}\"", ms(p.base())),
            c.base() != def.base()
        );
        line!(max, format!("\"{}\"", ms(p.max())), c.max() != def.max());
        line!(
            jitter,
            format!("\"{}\"", jitter_name(p.jitter())),
            c.jitter() != def.jitter()
        );
        if let Some(t) = p.timeout() {
            line!(timeout, format!("\"{}\"", ms(t)), true);
        }
        if let Some(t) = p.deadline() {
            line!(deadline, format!("\"{}\"", ms(t)), true);
        }
        line!(enabled, enabled, false);
    }
    let bdef = crate::BreakerConfig::DEFAULT;
    for (name, breaker) in &names.breakers {
        let (f, e) = (file.breaker.get(*name), env.breaker.get(*name));
        let c = breaker.config();
        let k = breaker.compiled_config();
        let _ = writeln!(out, "\n[breaker.\"{}\"]", name.escape_default());
        macro_rules! line {
            ($key:ident, $value:expr, $differs:expr) => {
                let _ = writeln!(
                    out,
                    "{} = {}  # {}",
                    stringify!($key),
                    $value,
                    origin(
                        e.and_then(|k| k.$key.as_ref()),
                        f.and_then(|k| k.$key.as_ref()),
                        $differs,
                        "block"
                    )
                );
            };
        }
        line!(
            consecutive_failures,
            c.consecutive_failures().unwrap_or(0),
            k.consecutive_failures() != bdef.consecutive_failures()
        );
        line!(
            failure_rate,
            format_float(c.failure_rate()),
            k.failure_rate() != bdef.failure_rate()
        );
        line!(
            min_calls,
            c.min_calls().max(1),
            k.min_calls() != bdef.min_calls()
        );
        line!(
            open_for,
            format!("\"{}\"", ms(c.open_for())),
            k.open_for() != bdef.open_for()
        );
        line!(
            open_max,
            format!("\"{}\"", ms(c.open_max().max(c.open_for()))),
            k.open_max() != bdef.open_max()
        );
        line!(
            half_open_probes,
            c.half_open_probes().clamp(1, 32767),
            k.half_open_probes() != bdef.half_open_probes()
        );
        line!(
            probe_timeout,
            format!("\"{}\"", ms(c.probe_timeout())),
            k.probe_timeout() != bdef.probe_timeout()
        );
        let force = match breaker.forced() {
            Force::Auto => "auto",
            Force::Open => "open",
            Force::Closed => "closed",
        };
        let configured = e
            .and_then(|k| k.force.as_ref())
            .or(f.and_then(|k| k.force.as_ref()));
        if configured.is_some() {
            line!(force, format!("\"{force}\""), false);
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
        let (f, e) = (file.budget.get(*name), env.budget.get(*name));
        let c = budget.config();
        let k = budget.compiled_config();
        let _ = writeln!(out, "\n[budget.\"{}\"]", name.escape_default());
        macro_rules! line {
            ($key:ident, $value:expr, $differs:expr) => {
                let _ = writeln!(
                    out,
                    "{} = {}  # {}",
                    stringify!($key),
                    $value,
                    origin(
                        e.and_then(|k| k.$key.as_ref()),
                        f.and_then(|k| k.$key.as_ref()),
                        $differs,
                        "block"
                    )
                );
            };
        }
        line!(capacity, c.capacity(), k.capacity() != udef.capacity());
        line!(ratio, format_float(c.ratio()), k.ratio() != udef.ratio());
        line!(
            min_per_sec,
            c.min_per_sec(),
            k.min_per_sec() != udef.min_per_sec()
        );
        if let Some(m) = c.max_concurrent() {
            line!(max_concurrent, m.max(1), true);
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
