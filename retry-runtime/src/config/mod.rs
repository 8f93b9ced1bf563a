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
mod env;
mod error;
mod layer;
#[path = "../../../retry-macros/src/percentile.rs"]
mod percentile;
mod resolve;
mod show;
mod watch;

pub use error::{ConfigError, Problem};
pub use watch::watch;

use crate::breaker::{Breaker, Force};
use layer::{ForceKey, Layer};
use resolve::{Names, Plan};
use std::collections::BTreeMap;
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
    show::print_current(&names, file, env)
}

/// The kill switch of `op` as the two layers set it (`true`: retries on).
pub(super) fn enabled_in(file: &Layer, env: &Layer, op: &str) -> bool {
    let get = |l: &Layer| {
        l.retry
            .get(op)
            .and_then(|k| k.enabled.as_ref())
            .map(|s| s.value)
    };
    get(env).or(get(file)).unwrap_or(true)
}

/// Checks `file` with the environment over it against the program, then sets all of it.
fn install(file: Layer) -> Result<(), ConfigError> {
    let names = Names::of_program();
    let mut guard = APPLIED.lock().unwrap_or_else(|p| p.into_inner());
    let env = env::env_layer(&names)?;
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
    #[cfg(feature = "redis")]
    crate::fleet::configure(plan.fleet);
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
            let mut diff = show::policy_diff(&old, &new);
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
        let diff = show::breaker_diff(&old, &new);
        if !diff.is_empty() {
            changes.push(format!("breaker.{}: {}", breaker.name(), diff.join(", ")));
        }
    }
    for (budget, config) in &plan.budgets {
        let old = *budget.config();
        budget.retune(*config);
        let new = *budget.config();
        let diff = show::budget_diff(&old, &new);
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
