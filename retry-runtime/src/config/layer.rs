//! One layer of the live configuration (a TOML file or text, or the `STORMGUARD__…`
//! environment): parsed and checked key by key into typed overrides, each with its origin.

use super::error::{ConfigError, Problem};
use super::{duration, percentile};
use crate::policy::{Backoff, Hedge, Jitter};
use std::collections::BTreeMap;
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Where a value came from, for `current()` and for errors.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Origin {
    /// A file or text given to `load`/`apply`/`watch`, at this line.
    File { source: String, line: usize },
    /// An environment variable.
    Env(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { source, line } => write!(f, "{source}:{line}"),
            Origin::Env(var) => write!(f, "env {var}"),
        }
    }
}

/// A value and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Set<T> {
    pub(crate) value: T,
    pub(crate) origin: Origin,
    /// Line and column (1-based) of the key, for errors found when layers are combined.
    pub(crate) at: (usize, usize),
}

/// `[retry."op"]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RetryKeys {
    pub(crate) attempts: Option<Set<u32>>,
    pub(crate) backoff: Option<Set<Backoff>>,
    pub(crate) base: Option<Set<Duration>>,
    pub(crate) max: Option<Set<Duration>>,
    pub(crate) jitter: Option<Set<Jitter>>,
    pub(crate) timeout: Option<Set<Duration>>,
    pub(crate) deadline: Option<Set<Duration>>,
    pub(crate) hedge: Option<Set<Hedge>>,
    pub(crate) enabled: Option<Set<bool>>,
}

/// Manual control as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ForceKey {
    Open,
    Closed,
    Auto,
}

/// `[breaker.name]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct BreakerKeys {
    pub(crate) consecutive_failures: Option<Set<u32>>,
    pub(crate) failure_rate: Option<Set<f64>>,
    pub(crate) min_calls: Option<Set<u32>>,
    pub(crate) open_for: Option<Set<Duration>>,
    pub(crate) open_max: Option<Set<Duration>>,
    pub(crate) half_open_probes: Option<Set<u32>>,
    pub(crate) probe_timeout: Option<Set<Duration>>,
    pub(crate) force: Option<Set<ForceKey>>,
}

/// `[budget.name]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct BudgetKeys {
    pub(crate) capacity: Option<Set<u32>>,
    pub(crate) ratio: Option<Set<f64>>,
    pub(crate) min_per_sec: Option<Set<u32>>,
    pub(crate) max_concurrent: Option<Set<u32>>,
}

/// `[fleet]`: breakers and budgets shared through Redis (feature `redis`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FleetKeys {
    /// The Redis to share through (its URLs may hold credentials: never printed or logged
    /// whole).
    pub(crate) redis: Option<Set<crate::redis_at::RedisAt>>,
    pub(crate) share: Option<Set<Vec<String>>>,
    pub(crate) sync: Option<Set<Duration>>,
    pub(crate) prefix: Option<Set<String>>,
}

/// Every override of one layer, by section and name.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Layer {
    pub(crate) retry: BTreeMap<String, RetryKeys>,
    pub(crate) breaker: BTreeMap<String, BreakerKeys>,
    pub(crate) budget: BTreeMap<String, BudgetKeys>,
    pub(crate) fleet: FleetKeys,
}

pub(crate) const SECTIONS: &[&str] = &["retry", "breaker", "budget", "fleet"];
pub(crate) const FLEET_KEYS: &[&str] = &["redis", "share", "sync", "prefix"];
/// The shortest and longest `sync` accepted.
pub(crate) const FLEET_SYNC: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(60));
pub(crate) const RETRY_KEYS: &[&str] = &[
    "attempts", "backoff", "base", "max", "jitter", "timeout", "deadline", "hedge", "enabled",
];
pub(crate) const BREAKER_KEYS: &[&str] = &[
    "consecutive_failures",
    "failure_rate",
    "min_calls",
    "open_for",
    "open_max",
    "half_open_probes",
    "probe_timeout",
    "force",
];
pub(crate) const BUDGET_KEYS: &[&str] = &["capacity", "ratio", "min_per_sec", "max_concurrent"];

/// Where in the text a key or value is, for messages.
pub(crate) struct Place<'a> {
    pub(crate) source: &'a str,
    pub(crate) text: &'a str,
    /// An environment variable's name: every problem names it instead of a line.
    pub(crate) env: Option<&'a str>,
}

impl Place<'_> {
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn origin(&self, offset: usize) -> Origin {
        match self.env {
            Some(var) => Origin::Env(var.to_owned()),
            None => Origin::File {
                source: self.source.to_owned(),
                line: self.line_col(offset).0,
            },
        }
    }

    pub(crate) fn problem(&self, offset: usize, key: &str, message: String) -> Problem {
        let (line, column) = self.line_col(offset);
        Problem::new(
            self.env.unwrap_or(self.source),
            if self.env.is_some() { 0 } else { line },
            if self.env.is_some() { 0 } else { column },
            key,
            message,
        )
    }
}

/// Parses `text` (from `source`, a path or `"<text>"`; from the variable `env`) into a layer,
/// or every problem in it.
pub(crate) fn parse(source: &str, text: &str, env: Option<&str>) -> Result<Layer, ConfigError> {
    let place = Place { source, text, env };
    let root = DeTable::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = format!(
            "this is not valid TOML: {}; write `key = value` lines under `[retry.\"op\"]`, `[breaker.name]` or `[budget.name]` headers",
            e.message().trim_end_matches('\n')
        );
        ConfigError::from(place.problem(offset, "", message))
    })?;
    let mut layer = Layer::default();
    let mut problems = Vec::new();
    for (section, value) in root.get_ref() {
        let at = section.span().start;
        if section.get_ref() == "fleet" {
            parse_fleet(&mut layer.fleet, &mut problems, &place, at, value);
            continue;
        }
        let Some(names) = value.get_ref().as_table() else {
            problems.push(place.problem(
                at,
                section.get_ref(),
                format!(
                    "a top-level key; write it under a section header, one of {}",
                    list(SECTIONS)
                ),
            ));
            continue;
        };
        for (name, keys) in names {
            let Some(keys) = keys.get_ref().as_table() else {
                problems.push(place.problem(
                    name.span().start,
                    name.get_ref(),
                    format!(
                        "write a table: `[{section}.\"{name}\"]` and its keys on the lines below",
                        section = section.get_ref(),
                        name = name.get_ref()
                    ),
                ));
                continue;
            };
            let name_text = name.get_ref().to_string();
            for (key, value) in keys {
                let result = match section.get_ref().as_ref() {
                    "retry" => set_retry(
                        layer.retry.entry(name_text.clone()).or_default(),
                        &place,
                        key,
                        value,
                    ),
                    "breaker" => set_breaker(
                        layer.breaker.entry(name_text.clone()).or_default(),
                        &place,
                        key,
                        value,
                    ),
                    "budget" => set_budget(
                        layer.budget.entry(name_text.clone()).or_default(),
                        &place,
                        key,
                        value,
                    ),
                    other => Err(place.problem(
                        at,
                        other,
                        format!(
                            "unknown section `[{other}]`; {}write one of {}",
                            did_you_mean(other, SECTIONS),
                            list(SECTIONS)
                        ),
                    )),
                };
                if let Err(p) = result {
                    let repeat = problems.last().is_some_and(|last: &Problem| *last == p);
                    if !repeat {
                        problems.push(p);
                    }
                }
            }
            // A header with no keys still names something, to be checked.
            match section.get_ref().as_ref() {
                "retry" => drop(layer.retry.entry(name_text).or_default()),
                "breaker" => drop(layer.breaker.entry(name_text).or_default()),
                "budget" => drop(layer.budget.entry(name_text).or_default()),
                _ => {}
            }
        }
        if names.is_empty() && !SECTIONS.contains(&section.get_ref().as_ref()) {
            problems.push(place.problem(
                at,
                section.get_ref(),
                format!(
                    "unknown section `[{}]`; {}write one of {}",
                    section.get_ref(),
                    did_you_mean(section.get_ref(), SECTIONS),
                    list(SECTIONS)
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(layer)
    } else {
        Err(ConfigError::new(problems))
    }
}

type Key<'a> = Spanned<std::borrow::Cow<'a, str>>;
type Value<'a> = Spanned<DeValue<'a>>;

fn set<T>(place: &Place<'_>, key: &Key<'_>, value: T) -> Option<Set<T>> {
    let at = key.span().start;
    Some(Set {
        value,
        origin: place.origin(at),
        at: place.line_col(at),
    })
}

/// `[fleet]`'s keys, straight under the header (no names below it).
fn parse_fleet(
    keys: &mut FleetKeys,
    problems: &mut Vec<Problem>,
    place: &Place<'_>,
    at: usize,
    value: &Value<'_>,
) {
    let Some(table) = value.get_ref().as_table() else {
        problems.push(place.problem(at, "fleet", "`fleet` is a section: write a `[fleet]` header and its keys (redis, share, sync, prefix) on the lines below".into()));
        return;
    };
    if !cfg!(feature = "redis") {
        problems.push(place.problem(at, "fleet", "this program is built without Redis support, so `[fleet]` cannot apply; build it with stormguard's feature `redis` (`stormguard = { version = \"…\", features = [\"redis\"] }`), or remove the section".into()));
        return;
    }
    for (key, value) in table {
        if let Err(p) = set_fleet(keys, place, key, value) {
            problems.push(p);
        }
    }
}

fn set_fleet(
    keys: &mut FleetKeys,
    place: &Place<'_>,
    key: &Key<'_>,
    value: &Value<'_>,
) -> Result<(), Problem> {
    let k = key.get_ref().as_ref();
    match k {
        "redis" => {
            let at = match value.get_ref().as_array() {
                None => {
                    let url = string(place, key, value, "redis = \"redis://127.0.0.1:6379/0\"")?;
                    redis_url(place, value, url, false)?;
                    crate::redis_at::RedisAt::One(url.to_owned())
                }
                Some(items) => {
                    let example = "redis = [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000\"]";
                    let mut urls = Vec::new();
                    for item in items {
                        let Some(url) = item.get_ref().as_str() else {
                            return Err(bad(place, item, k, format!("each seed node of a Redis Cluster is a URL as a string; write {example}")));
                        };
                        redis_url(place, item, url, true)?;
                        urls.push(url.to_owned());
                    }
                    if urls.is_empty() {
                        return Err(bad(place, value, k, format!("a Redis Cluster needs at least one seed node; write {example}, or redis = \"redis://host:6379/0\" for one Redis")));
                    }
                    crate::redis_at::RedisAt::Cluster(urls)
                }
            };
            keys.redis = set(place, key, at);
        }
        "share" => {
            let example = "share = [\"payments\"]";
            let Some(items) = value.get_ref().as_array() else {
                return Err(bad(
                    place,
                    value,
                    k,
                    format!(
                        "expected a list of breaker and budget names, found {}; write {example}",
                        value.get_ref().type_str()
                    ),
                ));
            };
            let mut names = Vec::new();
            for item in items {
                match item.get_ref().as_str() {
                    Some(n) if !n.is_empty() => names.push(n.to_owned()),
                    _ => return Err(bad(place, item, k, format!("each item is a breaker's or budget's name as a string; write {example}"))),
                }
            }
            keys.share = set(place, key, names);
        }
        "sync" => {
            let d = dur(place, key, value)?;
            let (low, high) = FLEET_SYNC;
            if d < low || d > high {
                return Err(bad(place, value, k, format!("`sync` is how often each process exchanges counts with Redis: between {}ms and {}s; write sync = \"200ms\"", low.as_millis(), high.as_secs())));
            }
            keys.sync = set(place, key, d);
        }
        "prefix" => {
            let p = string(place, key, value, "prefix = \"stormguard:prod\"")?;
            if p.is_empty()
                || p.len() > 100
                || p.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(bad(place, value, k, "a key prefix is 1 to 100 characters without spaces; write prefix = \"stormguard:prod\"".into()));
            }
            keys.prefix = set(place, key, p.to_owned());
        }
        other => return Err(unknown_key(place, key, other, "fleet", FLEET_KEYS)),
    }
    Ok(())
}

/// Checks one Redis URL (`in_cluster`: a seed node of a Redis Cluster, reached over TCP). The
/// URL may hold a password: no message repeats it.
fn redis_url(
    place: &Place<'_>,
    value: &Value<'_>,
    url: &str,
    in_cluster: bool,
) -> Result<(), Problem> {
    let schemes: &[&str] = if in_cluster {
        &["redis", "rediss"]
    } else {
        &["redis", "rediss", "unix", "redis+unix"]
    };
    let scheme = url.split("://").next().unwrap_or("");
    if !url.contains("://") || !schemes.contains(&scheme) {
        let advice = if in_cluster {
            "this is not the URL of a Redis Cluster's node; write redis = [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000\"] (\"rediss://…\" for TLS, \"redis://user:password@host:7000\" with credentials)"
        } else {
            "this is not a Redis URL; write redis = \"redis://host:6379/0\" (\"rediss://…\" for TLS, \"redis://user:password@host:6379/0\" with credentials, \"unix:///path/to/redis.sock\" for a socket, or a list of URLs for the seed nodes of a Redis Cluster)"
        };
        return Err(bad(place, value, "redis", advice.into()));
    }
    #[cfg(feature = "redis")]
    if let Err(e) = redis::IntoConnectionInfo::into_connection_info(url) {
        return Err(bad(
            place,
            value,
            "redis",
            format!("this Redis URL does not parse ({e}); write redis = \"redis://host:6379/0\""),
        ));
    }
    Ok(())
}

fn set_retry(
    keys: &mut RetryKeys,
    place: &Place<'_>,
    key: &Key<'_>,
    value: &Value<'_>,
) -> Result<(), Problem> {
    let k = key.get_ref().as_ref();
    match k {
        "attempts" => {
            let n = count(place, key, value, 1, 1000, "attempts = 5")?;
            keys.attempts = set(place, key, n);
        }
        "backoff" => {
            let b = match string(place, key, value, "backoff = \"exp\"")? {
                "exp" => Backoff::Exponential { factor: 2.0 },
                "fixed" => Backoff::Fixed,
                "linear" => Backoff::Linear,
                other => return Err(bad(place, value, k, format!("{other:?} is not a backoff; write backoff = \"exp\", \"fixed\" or \"linear\""))),
            };
            keys.backoff = set(place, key, b);
        }
        "base" => keys.base = set(place, key, dur(place, key, value)?),
        "max" => keys.max = set(place, key, dur(place, key, value)?),
        "timeout" => keys.timeout = set(place, key, dur(place, key, value)?),
        "deadline" => keys.deadline = set(place, key, dur(place, key, value)?),
        "hedge" => {
            let text = string(place, key, value, "hedge = \"50ms\" or hedge = \"p95\"")?;
            let h = match text.strip_prefix('p') {
                Some(pct) => match percentile::parse(pct) {
                    Ok(permille) => Hedge::Percentile(permille),
                    Err(why) => return Err(bad(place, value, k, format!("{text:?}: {why}, or a fixed delay like hedge = \"50ms\""))),
                },
                None => match duration::parse(text) {
                    Ok(0) => return Err(bad(place, value, k, "a zero delay would start every attempt at once (each call multiplied); write a delay like hedge = \"50ms\", or a percentile like hedge = \"p95\"".into())),
                    Ok(nanos) => Hedge::After(Duration::from_nanos(nanos)),
                    Err(why) => return Err(bad(place, value, k, format!("{why}: hedge = \"50ms\", or a percentile like hedge = \"p95\""))),
                },
            };
            keys.hedge = set(place, key, h);
        }
        "jitter" => {
            let j = match string(place, key, value, "jitter = \"full\"")? {
                "none" => Jitter::None,
                "full" => Jitter::Full,
                "equal" => Jitter::Equal,
                "decorrelated" => Jitter::Decorrelated,
                other => return Err(bad(place, value, k, format!("{other:?} is not a jitter mode; write jitter = \"full\", \"equal\", \"decorrelated\" or \"none\""))),
            };
            keys.jitter = set(place, key, j);
        }
        "enabled" => match value.get_ref().as_bool() {
            Some(b) => keys.enabled = set(place, key, b),
            None => {
                return Err(bad(place, value, k, format!("expected true or false, found {}; write enabled = false to turn retries off (one attempt), enabled = true to turn them back on", value.get_ref().type_str())));
            }
        },
        other => return Err(unknown_key(place, key, other, "retry", RETRY_KEYS)),
    }
    Ok(())
}

fn set_breaker(
    keys: &mut BreakerKeys,
    place: &Place<'_>,
    key: &Key<'_>,
    value: &Value<'_>,
) -> Result<(), Problem> {
    let k = key.get_ref().as_ref();
    match k {
        "consecutive_failures" => {
            let n = count(
                place,
                key,
                value,
                0,
                u32::MAX as i64,
                "consecutive_failures = 10 (0 turns the rule off)",
            )?;
            keys.consecutive_failures = set(place, key, n);
        }
        "failure_rate" => {
            let r = number(place, key, value, "failure_rate = 0.5")?;
            if !(r > 0.0 && r <= 1.0) {
                return Err(bad(place, value, k, format!("{r} is not a failure rate; write a fraction above 0 and at most 1, like failure_rate = 0.5")));
            }
            keys.failure_rate = set(place, key, r);
        }
        "min_calls" => {
            keys.min_calls = set(
                place,
                key,
                count(place, key, value, 1, u32::MAX as i64, "min_calls = 20")?,
            )
        }
        "half_open_probes" => {
            keys.half_open_probes = set(
                place,
                key,
                count(place, key, value, 1, 32767, "half_open_probes = 1")?,
            )
        }
        "open_for" => keys.open_for = set(place, key, dur(place, key, value)?),
        "open_max" => keys.open_max = set(place, key, dur(place, key, value)?),
        "probe_timeout" => keys.probe_timeout = set(place, key, dur(place, key, value)?),
        "force" => {
            let f = match string(place, key, value, "force = \"open\"")? {
                "open" => ForceKey::Open,
                "closed" => ForceKey::Closed,
                "auto" => ForceKey::Auto,
                other => return Err(bad(place, value, k, format!("{other:?} is not a manual control; write force = \"open\" (refuse every call), \"closed\" (never open) or \"auto\" (the state machine decides)"))),
            };
            keys.force = set(place, key, f);
        }
        "window" => {
            return Err(place.problem(key.span().start, k, "a breaker's `window` is fixed when the program is built (its buckets are laid out for it); change it in the `stormguard::breakers!` block, or remove this line".into()));
        }
        other => return Err(unknown_key(place, key, other, "breaker", BREAKER_KEYS)),
    }
    Ok(())
}

fn set_budget(
    keys: &mut BudgetKeys,
    place: &Place<'_>,
    key: &Key<'_>,
    value: &Value<'_>,
) -> Result<(), Problem> {
    let k = key.get_ref().as_ref();
    match k {
        "capacity" => {
            keys.capacity = set(
                place,
                key,
                count(place, key, value, 0, u32::MAX as i64, "capacity = 100")?,
            )
        }
        "ratio" => {
            let r = number(place, key, value, "ratio = 0.125")?;
            if !(0.0..=1e6).contains(&r) {
                return Err(bad(place, value, k, format!("{r} is not a ratio; write the tokens each success deposits, 0 or more, like ratio = 0.2")));
            }
            keys.ratio = set(place, key, r);
        }
        "min_per_sec" => {
            keys.min_per_sec = set(
                place,
                key,
                count(place, key, value, 0, u32::MAX as i64, "min_per_sec = 1")?,
            )
        }
        "max_concurrent" => {
            keys.max_concurrent = set(
                place,
                key,
                count(place, key, value, 1, u32::MAX as i64, "max_concurrent = 10")?,
            )
        }
        "window" => {
            return Err(place.problem(key.span().start, k, "a budget's `window` is fixed when the program is built (its ledger is laid out for it); change it in the `stormguard::budgets!` block, or remove this line".into()));
        }
        other => return Err(unknown_key(place, key, other, "budget", BUDGET_KEYS)),
    }
    Ok(())
}

fn bad(place: &Place<'_>, value: &Value<'_>, key: &str, message: String) -> Problem {
    place.problem(value.span().start, key, message)
}

fn unknown_key(
    place: &Place<'_>,
    key: &Key<'_>,
    k: &str,
    section: &str,
    known: &[&str],
) -> Problem {
    place.problem(
        key.span().start,
        k,
        format!(
            "unknown key `{k}` in a `[{section}{}]` section; {}the keys are {}",
            if section == "fleet" { "" } else { "…" },
            did_you_mean(k, known),
            list(known)
        ),
    )
}

fn string<'v>(
    place: &Place<'_>,
    key: &Key<'_>,
    value: &'v Value<'_>,
    example: &str,
) -> Result<&'v str, Problem> {
    value.get_ref().as_str().ok_or_else(|| {
        bad(
            place,
            value,
            key.get_ref(),
            format!(
                "expected a string, found {}; write {example}",
                value.get_ref().type_str()
            ),
        )
    })
}

fn dur(place: &Place<'_>, key: &Key<'_>, value: &Value<'_>) -> Result<Duration, Problem> {
    let k = key.get_ref().as_ref();
    match value.get_ref() {
        DeValue::String(s) => duration::parse(s)
            .map(Duration::from_nanos)
            .map_err(|why| bad(place, value, k, format!("{why}: {k} = \"2s\""))),
        DeValue::Integer(i) => Err(bad(place, value, k, format!("{} has no unit; write it as a string with a unit, like {k} = \"{}ms\" or {k} = \"{}s\"", i.as_str(), i.as_str(), i.as_str()))),
        other => Err(bad(place, value, k, format!("expected a duration string, found {}; write {k} = \"2s\"", other.type_str()))),
    }
}

fn count(
    place: &Place<'_>,
    key: &Key<'_>,
    value: &Value<'_>,
    min: i64,
    max: i64,
    example: &str,
) -> Result<u32, Problem> {
    let k = key.get_ref().as_ref();
    let DeValue::Integer(i) = value.get_ref() else {
        return Err(bad(
            place,
            value,
            k,
            format!(
                "expected a whole number, found {}; write {example}",
                describe(value.get_ref())
            ),
        ));
    };
    let digits = i.as_str().replace('_', "");
    let parsed = i64::from_str_radix(
        digits
            .trim_start_matches("0x")
            .trim_start_matches("0o")
            .trim_start_matches("0b"),
        i.radix(),
    );
    match parsed {
        Ok(n) if n >= min && n <= max => Ok(n as u32),
        _ if k == "attempts" => Err(bad(place, value, k, format!("{} is not a number of attempts: the first call counts as one, so write attempts = 1 (no retries) up to attempts = {max}; to turn retries off, enabled = false says so", i.as_str()))),
        _ => Err(bad(place, value, k, format!("{} is out of range ({min} to {max}); write {example}", i.as_str()))),
    }
}

fn number(
    place: &Place<'_>,
    key: &Key<'_>,
    value: &Value<'_>,
    example: &str,
) -> Result<f64, Problem> {
    let k = key.get_ref().as_ref();
    let n = match value.get_ref() {
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
        DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite()).ok_or_else(|| {
        bad(
            place,
            value,
            k,
            format!(
                "expected a number, found {}; write {example}",
                describe(value.get_ref())
            ),
        )
    })
}

fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string {s:?} (leave out the quotes)"),
        other => other.type_str().to_string(),
    }
}

pub(crate) fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `did you mean `x`? ` for the nearest of `known` (at most a third of the letters off).
pub(crate) fn did_you_mean<S: AsRef<str>>(word: &str, known: &[S]) -> String {
    let best = known
        .iter()
        .map(|k| (edit_distance(word, k.as_ref()), k.as_ref()))
        .min();
    match best {
        Some((d, k)) if d <= (word.chars().count().max(k.chars().count()) / 3).max(1) => {
            format!("did you mean `{k}`? ")
        }
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut above: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row[j + 1] = (above[j] + cost).min(above[j + 1] + 1).min(row[j] + 1);
        }
        above = row;
    }
    above[b.len()]
}
