//! Live configuration: retry policies, breakers and budgets overridden by name from a TOML file
//! and `STORMGUARD__…` variables, applied whole or not at all, reloaded while the program runs.
//!
//! ```toml
//! [retry."billing::fetch_invoice"]   # an op name: `name = "…"`, else module path + fn
//! attempts = 5
//! base = "200ms"
//! enabled = false                    # kill switch: one attempt, no retries
//!
//! [breaker.payments]
//! open_for = "10s"
//! force = "open"                     # "open" | "closed" | "auto"
//!
//! [budget.payments]
//! ratio = 0.2
//! ```
//!
//! `STORMGUARD_CONFIG=path` is loaded at the first call of any annotated fn; [`load`],
//! [`apply`] and [`watch`] replace the file layer as a whole later. A variable
//! `STORMGUARD__<SECTION>__<NAME>__<KEY>` (the name upper-cased, every character other than a
//! letter or digit as `_`: `STORMGUARD__RETRY__BILLING__FETCH_INVOICE__ATTEMPTS=5`) overrides
//! the file; the environment is read again at every apply.

#[path = "../../../retry-macros/src/duration.rs"]
#[allow(dead_code)]
mod duration;
mod error;
mod layer;
mod resolve;
mod watch;

pub use error::{ConfigError, Problem};
pub use watch::watch;

use crate::breaker::{Breaker, Force};
use crate::policy::{Backoff, Jitter, Policy};
use layer::{ForceKey, Layer};
use resolve::{Names, Plan};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

/// What was applied last: the file layer, and the `force` each breaker got from it.
struct Applied {
    file: Layer,
    env: Layer,
    forced: BTreeMap<&'static str, ForceKey>,
}

static APPLIED: Mutex<Option<Applied>> = Mutex::new(None);

/// Applies `text` (TOML) as the file layer, replacing the previous one whole; or changes
/// nothing and says why.
///
/// ```
/// // A program with no `#[retry]` site named "nowhere":
/// let err = retry_runtime::config::apply("[retry.nowhere]\nattempts = 2\n").unwrap_err();
/// assert!(err.to_string().contains("no `#[retry]` call site"));
/// retry_runtime::config::apply("").unwrap(); // empty: no overrides
/// ```
pub fn apply(text: &str) -> Result<(), ConfigError> {
    crate::startup::first_use();
    install(layer::parse("<text>", text, None)?)
}

/// Reads and applies the TOML file at `path` (see [`apply`]).
///
/// ```
/// let err = retry_runtime::config::load("/nonexistent/stormguard.toml").unwrap_err();
/// assert!(err.to_string().contains("cannot read"));
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<(), ConfigError> {
    crate::startup::first_use();
    load_file(path.as_ref())
}

fn load_file(path: &Path) -> Result<(), ConfigError> {
    read_and_apply(path).map(drop)
}

/// Reads and applies the file at `path`; returns the text applied.
fn read_and_apply(path: &Path) -> Result<String, ConfigError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::from(Problem::new(
            &source,
            0,
            0,
            "",
            format!("cannot read the file ({e}); check the path given to STORMGUARD_CONFIG, `config::load` or `config::watch`"),
        ))
    })?;
    install(layer::parse(&source, &text, None)?)?;
    Ok(text)
}

/// The effective configuration as TOML, each value with where it came from (`default`,
/// `attribute`, `block`, a file and line, or an environment variable) in a comment. Applying
/// it changes nothing.
///
/// ```
/// let values = |toml: &str| toml.lines().map(|l| l.split("  #").next().unwrap().to_owned())
///     .filter(|l| !l.starts_with('#')).collect::<Vec<_>>();
/// let before = retry_runtime::config::current();
/// retry_runtime::config::apply(&before).unwrap();
/// assert_eq!(values(&retry_runtime::config::current()), values(&before));
/// ```
pub fn current() -> String {
    crate::startup::first_use();
    let names = Names::of_program();
    let guard = APPLIED.lock().unwrap_or_else(|p| p.into_inner());
    let empty = Layer::default();
    let (file, env) = match &*guard {
        Some(a) => (&a.file, &a.env),
        None => (&empty, &empty),
    };
    print_current(&names, file, env)
}

/// Parses and checks the environment layer.
fn env_layer() -> Result<Layer, ConfigError> {
    let names = Names::of_program();
    let mut layer = Layer::default();
    let mut problems = Vec::new();
    let mut vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("STORMGUARD__"))
        .collect();
    vars.sort();
    for (var, value) in vars {
        let parts: Vec<&str> = var.split("__").collect();
        let problem = |message: String| Problem::new(&var, 0, 0, "", message);
        if parts.len() < 4 {
            problems.push(problem(format!(
                "write STORMGUARD__<SECTION>__<NAME>__<KEY>, like STORMGUARD__RETRY__BILLING__FETCH_INVOICE__ATTEMPTS=5 (section one of {})",
                layer::list(layer::SECTIONS)
            )));
            continue;
        }
        let section = parts[1].to_ascii_lowercase();
        let key = parts[parts.len() - 1].to_ascii_lowercase();
        let wanted = parts[2..parts.len() - 1].join("__");
        let known: Vec<&str> = match section.as_str() {
            "retry" => names.ops.keys().copied().collect(),
            "breaker" => names.breakers.keys().copied().collect(),
            "budget" => names.budgets.keys().copied().collect(),
            other => {
                problems.push(problem(format!(
                    "unknown section `{other}`; {}write one of {}",
                    layer::did_you_mean(other, layer::SECTIONS),
                    layer::list(layer::SECTIONS)
                )));
                continue;
            }
        };
        let Some(name) = known.iter().find(|n| env_form(n) == wanted) else {
            let forms: Vec<String> = known.iter().map(|n| env_form(n)).collect();
            problems.push(problem(format!(
                "no {section} named like `{wanted}` in this program; {}the names are {}",
                layer::did_you_mean(&wanted, &forms),
                layer::list(&forms.iter().map(String::as_str).collect::<Vec<_>>())
            )));
            continue;
        };
        // The value as TOML (a number, a boolean, a quoted string), else as a string.
        let header = format!("[{section}.\"{}\"]\n{key} = ", name.escape_default());
        let as_toml = format!("{header}{value}\n");
        let quoted = format!("{header}\"{}\"\n", value.escape_default());
        let parsed = if toml::de::DeTable::parse(&as_toml).is_ok() {
            layer::parse(&var, &as_toml, Some(&var))
        } else {
            layer::parse(&var, &quoted, Some(&var))
        };
        match parsed {
            Ok(one) => merge_layer(&mut layer, one),
            Err(e) => problems.extend(e.problems().iter().cloned()),
        }
    }
    if problems.is_empty() {
        Ok(layer)
    } else {
        Err(ConfigError::new(problems))
    }
}

/// The kill switch of `op` as the two layers set it (`true`: retries on).
fn enabled_in(file: &Layer, env: &Layer, op: &str) -> bool {
    let get = |l: &Layer| {
        l.retry
            .get(op)
            .and_then(|k| k.enabled.as_ref())
            .map(|s| s.value)
    };
    get(env).or(get(file)).unwrap_or(true)
}

/// A name as an environment variable spells it.
fn env_form(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn merge_layer(into: &mut Layer, one: Layer) {
    macro_rules! fold {
        ($section:ident, $($field:ident),*) => {
            for (name, keys) in one.$section {
                let entry = into.$section.entry(name).or_default();
                $(if keys.$field.is_some() { entry.$field = keys.$field; })*
            }
        };
    }
    fold!(retry, attempts, backoff, base, max, jitter, timeout, deadline, enabled);
    fold!(
        breaker,
        consecutive_failures,
        failure_rate,
        min_calls,
        open_for,
        open_max,
        half_open_probes,
        probe_timeout,
        force
    );
    fold!(budget, capacity, ratio, min_per_sec, max_concurrent);
}

/// Checks `file` with the environment over it against the program, then sets all of it.
fn install(file: Layer) -> Result<(), ConfigError> {
    let names = Names::of_program();
    let mut guard = APPLIED.lock().unwrap_or_else(|p| p.into_inner());
    let env = env_layer()?;
    let plan = resolve::plan(&names, &file, &env)?;
    let previous = guard.take().unwrap_or(Applied {
        file: Layer::default(),
        env: Layer::default(),
        forced: BTreeMap::new(),
    });
    let was_enabled = |op: &str| enabled_in(&previous.file, &previous.env, op);
    let (changes, forced, to_force) = commit(&plan, &previous.forced, was_enabled);
    *guard = Some(Applied { file, env, forced });
    drop(guard);
    // Outside the lock: a tracing layer may call back into the library. Forcing logs.
    for (breaker, force) in to_force {
        breaker.force(force);
    }
    if !changes.is_empty() {
        tracing::info!(
            target: crate::log::TARGET,
            changes = changes.join("; ").as_str(),
            "stormguard configuration applied: {}",
            changes.join("; ")
        );
    }
    Ok(())
}

type Forced = (
    Vec<String>,
    BTreeMap<&'static str, ForceKey>,
    Vec<(&'static Breaker, Force)>,
);

/// Sets every value of `plan`; returns the changes (old → new) for the log, the `force` now
/// given by the configuration, and the breakers whose manual control it changes.
fn commit(
    plan: &Plan,
    previous: &BTreeMap<&'static str, ForceKey>,
    was_enabled: impl Fn(&str) -> bool,
) -> Forced {
    let mut changes = Vec::new();
    let mut seen_ops = Vec::new();
    for (site, policy, enabled) in &plan.sites {
        let old = *site.policy();
        let was_enabled = was_enabled(site.op());
        site.set_live(*policy);
        let new = *site.policy();
        if !seen_ops.contains(&site.op()) {
            seen_ops.push(site.op());
            let mut diff = policy_diff(&old, &new);
            if was_enabled != *enabled {
                diff.push(format!("enabled {was_enabled} → {enabled}"));
                diff.retain(|d| !d.starts_with("attempts"));
            }
            if !diff.is_empty() {
                changes.push(format!("retry.\"{}\": {}", site.op(), diff.join(", ")));
            }
        }
    }
    for (breaker, config, _) in &plan.breakers {
        let old = *breaker.config();
        breaker.retune(*config);
        let new = *breaker.config();
        let diff = breaker_diff(&old, &new);
        if !diff.is_empty() {
            changes.push(format!("breaker.{}: {}", breaker.name(), diff.join(", ")));
        }
    }
    for (budget, config) in &plan.budgets {
        let (old, _) = (*budget.config(), ());
        budget.retune(*config);
        let new = *budget.config();
        let diff = budget_diff(&old, &new);
        if !diff.is_empty() {
            changes.push(format!("budget.{}: {}", budget.name(), diff.join(", ")));
        }
    }
    let mut forced = BTreeMap::new();
    let mut to_force = Vec::new();
    for (breaker, _, force) in &plan.breakers {
        let before = previous.get(breaker.name()).copied();
        if let Some(f) = force {
            forced.insert(breaker.name(), *f);
        }
        // Only a change of the configured value moves the breaker: code that forced it
        // through its handle keeps control while the file says nothing new.
        if *force != before {
            let to = match force.unwrap_or(ForceKey::Auto) {
                ForceKey::Open => Force::Open,
                ForceKey::Closed => Force::Closed,
                ForceKey::Auto => Force::Auto,
            };
            changes.push(format!(
                "breaker.{}: force {:?} → {:?}",
                breaker.name(),
                breaker.forced(),
                to
            ));
            to_force.push((*breaker, to));
        }
    }
    (changes, forced, to_force)
}

fn ms(d: std::time::Duration) -> String {
    duration::show(d.as_nanos().min(u64::MAX as u128) as u64)
}

fn policy_diff(old: &Policy, new: &Policy) -> Vec<String> {
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

fn breaker_diff(old: &crate::BreakerConfig, new: &crate::BreakerConfig) -> Vec<String> {
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

fn budget_diff(old: &crate::BudgetConfig, new: &crate::BudgetConfig) -> Vec<String> {
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

fn backoff_name(b: Backoff) -> &'static str {
    match b {
        Backoff::Exponential { .. } => "exp",
        Backoff::Fixed => "fixed",
        Backoff::Linear => "linear",
    }
}

fn jitter_name(j: Jitter) -> &'static str {
    match j {
        Jitter::None => "none",
        Jitter::Full => "full",
        Jitter::Equal => "equal",
        Jitter::Decorrelated => "decorrelated",
    }
}

fn print_current(names: &Names, file: &Layer, env: &Layer) -> String {
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

fn format_float(x: f64) -> String {
    let s = format!("{x}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// `STORMGUARD_CONFIG` (and the environment layer), applied at the first call.
#[linkme::distributed_slice(crate::startup::AT_FIRST_USE)]
static LOAD_AT_FIRST_USE: fn() = load_at_first_use;

fn load_at_first_use() {
    let result = match std::env::var_os("STORMGUARD_CONFIG") {
        Some(path) => load_file(Path::new(&path)),
        None if std::env::vars_os()
            .any(|(k, _)| k.to_string_lossy().starts_with("STORMGUARD__")) =>
        {
            install(Layer::default())
        }
        None => return,
    };
    if let Err(e) = result {
        tracing::error!(
            target: crate::log::TARGET,
            "STORMGUARD_CONFIG / STORMGUARD__… not applied; running with the compiled configuration: {e}"
        );
    }
}
