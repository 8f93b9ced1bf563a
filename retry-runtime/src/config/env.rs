//! The environment layer of the live configuration: `STORMGUARD__<SECTION>__<NAME>__<KEY>`
//! variables, matched to the program's names and parsed as one-key TOML documents.

use super::error::{ConfigError, Problem};
use super::layer::{self, Layer};
use super::resolve::Names;

/// Parses and checks the environment layer.
pub(super) fn env_layer(names: &Names) -> Result<Layer, ConfigError> {
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
        if parts.len() == 3 && parts[1].eq_ignore_ascii_case("fleet") {
            // `[fleet]` has keys and no names: STORMGUARD__FLEET__REDIS=redis://…
            let key = parts[2].to_ascii_lowercase();
            match fleet_value(&var, &key, &value) {
                Ok(one) => merge_layer(&mut layer, one),
                Err(e) => problems.extend(e.problems().iter().cloned()),
            }
            continue;
        }
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
        match one_key(&var, &header, &value) {
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

/// One variable's value under `header` (ending in `key = `): as TOML (a number, a boolean, a
/// quoted string, a list), else as a string.
fn one_key(var: &str, header: &str, value: &str) -> Result<Layer, ConfigError> {
    let as_toml = format!("{header}{value}\n");
    if toml::de::DeTable::parse(&as_toml).is_ok() {
        layer::parse(var, &as_toml, Some(var))
    } else {
        let quoted = format!("{header}\"{}\"\n", value.escape_default());
        layer::parse(var, &quoted, Some(var))
    }
}

/// `STORMGUARD__FLEET__<KEY>`; `SHARE` also takes a comma-separated list of names.
fn fleet_value(var: &str, key: &str, value: &str) -> Result<Layer, ConfigError> {
    let header = format!("[fleet]\n{key} = ");
    let list_like = value.trim_start().starts_with('[');
    if key == "share" && !list_like {
        let names: Vec<String> = value
            .split(',')
            .map(|n| format!("\"{}\"", n.trim().escape_default()))
            .collect();
        return one_key(var, &header, &format!("[{}]", names.join(", ")));
    }
    one_key(var, &header, value)
}

/// A name as an environment variable spells it.
pub(super) fn env_form(name: &str) -> String {
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

pub(super) fn merge_layer(into: &mut Layer, one: Layer) {
    macro_rules! fold {
        ($section:ident, $($field:ident),*) => {
            for (name, keys) in one.$section {
                let entry = into.$section.entry(name).or_default();
                $(if keys.$field.is_some() { entry.$field = keys.$field; })*
            }
        };
    }
    fold!(retry, attempts, backoff, base, max, jitter, timeout, deadline, hedge, enabled);
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
    let (into, one) = (&mut into.fleet, one.fleet);
    macro_rules! keep {
        ($($field:ident),*) => { $(if one.$field.is_some() { into.$field = one.$field; })* };
    }
    keep!(redis, share, sync, prefix);
}
