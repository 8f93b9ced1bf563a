//! Feature `metrics`: the Prometheus rules and the Grafana dashboard in `ops/` checked against
//! the exposition the metrics example really serves while it drives a failing downstream.
#![cfg(feature = "metrics")]

#[path = "../examples/metrics.rs"]
#[allow(dead_code)]
mod example;
mod ops_support;

use ops_support::{promtool, run_promtool, template_labels, Catalog, Exposition, Kind, TempDir};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

const RULES: &str = include_str!("../ops/prometheus/stormguard-rules.yml");
const RULES_TEST: &str = "ops/prometheus/stormguard-rules.test.yml";
const DASHBOARD: &str = include_str!("../ops/grafana/stormguard.json");
const README: &str = include_str!("../README.md");

/// The `job` label the generated promtool case gives the scraped series.
const JOB: &str = "stormguard";

/// Two scrapes of the example's `/metrics`: after 6 rounds of calls, and after 30 more.
struct Scrapes {
    before: Exposition,
    after: Exposition,
    instance: String,
}

/// The scenario runs once per test binary (the recorder is global) on a runtime of its own,
/// so that every test reads the same scrapes.
fn scrapes() -> &'static Scrapes {
    static SCRAPES: OnceLock<Scrapes> = OnceLock::new();
    SCRAPES.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (addr, _handle) = example::serve().await.unwrap();
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let scrape = || async {
                let body = client
                    .get(format!("http://{addr}/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                Exposition::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
            };
            example::drive(&client, addr, 6).await;
            let before = scrape().await;
            example::drive(&client, addr, 30).await;
            let after = scrape().await;
            Scrapes {
                before,
                after,
                instance: addr.to_string(),
            }
        })
    })
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}"))
}

/// Checks every rule of a rules file, in order (a recording rule's output is known to the
/// rules after it), against `catalog`; returns the catalog with the recorded series added.
fn check_rules(mut catalog: Catalog, rules_yaml: &str) -> Result<Catalog, String> {
    let rules: Value = serde_norway::from_str(rules_yaml).map_err(|e| e.to_string())?;
    let groups = rules["groups"].as_array().ok_or("no `groups`")?;
    for rule in groups
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
    {
        let expr = rule["expr"].as_str().ok_or("a rule without `expr`")?;
        if let Some(record) = rule["record"].as_str() {
            catalog.record(record, expr)?;
            continue;
        }
        let alert = rule["alert"]
            .as_str()
            .ok_or("a rule without `record` or `alert`")?;
        let labels = catalog
            .check(expr)
            .map_err(|e| format!("{alert}: {e}"))?
            .ok_or_else(|| format!("{alert}: a scalar expression"))?;
        for field in ["labels", "annotations"] {
            for (key, template) in rule[field].as_object().into_iter().flatten() {
                let template = template.as_str().unwrap_or_default();
                for l in template_labels(template) {
                    if !labels.contains_key(&l) {
                        return Err(format!(
                            "{alert}: {field}.{key} reads $labels.{l}, which the expression's \
                             series do not have (they have: {})",
                            labels.keys().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
        }
    }
    Ok(catalog)
}

fn rules_catalog() -> Catalog {
    check_rules(Catalog::from_exposition(&scrapes().after), RULES).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_rule_reads_only_names_labels_and_values_the_exporter_emits() {
    let catalog = rules_catalog();
    // The scenario emitted every series of the exporter's table.
    for name in [
        "stormguard_calls_total",
        "stormguard_attempts_total",
        "stormguard_retries_total",
        "stormguard_retried_calls_total",
        "stormguard_retry_successes_total",
        "stormguard_giveups_total",
        "stormguard_rejections_total",
        "stormguard_breaker_state",
        "stormguard_budget_tokens",
    ] {
        assert!(catalog.exported().contains(name), "{name} not scraped");
    }
}

#[test]
fn the_static_check_rejects_a_renamed_metric_label_or_value() {
    let catalog = rules_catalog();
    for (expr, says) in [
        (
            "rate(stormguard_call_total[5m])",
            "`stormguard_call_total` is neither",
        ),
        (
            "sum by (breaker) (rate(stormguard_calls_total[5m]))",
            "have no label `breaker`",
        ),
        (
            "stormguard_giveups_total{reason=\"budget_exhaustion\"}",
            "reason=\"budget_exhaustion\"",
        ),
        (
            "op:stormguard_calls:rate5m{breaker=\"payments\"}",
            "`op:stormguard_calls:rate5m` has no label `breaker`",
        ),
        (
            "stormguard_breaker_state > 0 and on (op) stormguard_calls_total",
            "`and on (op)`: the left side has no label `op`",
        ),
    ] {
        let err = catalog.check(expr).expect_err(expr);
        assert!(err.contains(says), "{expr}: {err}");
    }
    // The shipped rules with the denominator renamed, as an exporter rename would leave them.
    let renamed = RULES.replace("stormguard_retried_calls_total", "stormguard_retried_total");
    let err = check_rules(Catalog::from_exposition(&scrapes().after), &renamed).unwrap_err();
    assert!(
        err.contains("`stormguard_retried_total` is neither"),
        "{err}"
    );
    // An annotation that reads a label the alert's series lose in aggregation.
    let lost = RULES.replace("{{ $labels.op }}: only", "{{ $labels.instance }}: only");
    let err = check_rules(Catalog::from_exposition(&scrapes().after), &lost).unwrap_err();
    assert!(err.contains("$labels.instance"), "{err}");
}

#[test]
fn the_readme_metrics_table_lists_what_the_exporter_emits() {
    let section = README
        .split("\n## Metrics\n")
        .nth(1)
        .expect("a README section \"Metrics\"");
    let section = section.split("\n## ").next().unwrap();
    let documented: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let scraped: BTreeSet<String> = scrapes().after.families().into_keys().collect();
    assert_eq!(documented, scraped);
}

/// What the dashboard asks Prometheus, with Grafana's variables replaced by values PromQL
/// parses.
struct DashboardQueries {
    /// (panel title, PromQL) of every target.
    panels: Vec<(String, String)>,
    /// (metric selector, label) of every `label_values(metric, label)` variable.
    label_values: Vec<(String, String)>,
}

fn dashboard_queries(dashboard: &Value) -> DashboardQueries {
    let variables: Vec<String> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| v["name"].as_str().expect("a variable name").to_string())
        .collect();
    let substitute = |expr: &str| {
        let mut e = expr
            .replace("$__rate_interval", "5m")
            .replace("$__interval", "1m")
            .replace("$__range", "1h");
        for v in &variables {
            e = e
                .replace(&format!("${{{v}}}"), ".*")
                .replace(&format!("${v}"), ".*");
        }
        assert!(!e.contains('$'), "an unknown Grafana variable in `{expr}`");
        e
    };
    let mut panels = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target with `expr`");
            panels.push((title.clone(), substitute(expr)));
        }
    }
    let mut label_values = Vec::new();
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let query = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .expect("a query variable's query");
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| {
                panic!("variable query `{query}`: expected label_values(metric, label)")
            });
        let (metric, label) = inner.rsplit_once(',').expect("label_values(metric, label)");
        label_values.push((substitute(metric.trim()), label.trim().to_string()));
    }
    DashboardQueries {
        panels,
        label_values,
    }
}

#[test]
fn the_dashboard_is_importable_and_reads_only_known_series() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    // What Grafana's import needs, and the templating the issue asks for.
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    assert!(
        dashboard["id"].is_null(),
        "an exported dashboard carries no instance id"
    );
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let var = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable `{name}`"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for name in ["op", "breaker"] {
        assert_eq!(var(name)["type"], "query");
        assert_eq!(var(name)["datasource"]["uid"], "${datasource}");
        assert_eq!(var(name)["includeAll"], true);
        assert_eq!(var(name)["multi"], true);
    }
    // Panels: unique ids, a place on the grid, the Prometheus variable as data source.
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("a panel id")),
            "duplicate id"
        );
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "{}: gridPos.{k}", p["title"]);
        }
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            for t in p["targets"].as_array().expect("targets") {
                assert!(t["refId"].is_string(), "{}: refId", p["title"]);
            }
        }
    }
    // The panels of the issue, each over its variable.
    let panel = |title: &str| {
        panels
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel \"{title}\""))
    };
    let exprs = |p: &Value| -> String {
        p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["expr"].as_str().unwrap().to_string())
            .collect()
    };
    for title in [
        "Calls per second",
        "Retries per second",
        "Retry success rate",
        "Retries per call",
        "Give-ups by reason",
        "Attempts by outcome",
    ] {
        assert!(
            exprs(panel(title)).contains("$op"),
            "{title} is not filtered by $op"
        );
    }
    for title in ["Breaker state", "Calls refused by the breaker"] {
        assert!(exprs(panel(title)).contains("$breaker"), "{title}");
    }
    assert_eq!(panel("Breaker state")["type"], "state-timeline");
    assert!(exprs(panel("Budget tokens")).contains("stormguard_budget_tokens"));
    // The 95% line on the success rate.
    let steps = panel("Retry success rate")["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap();
    assert!(steps.iter().any(|s| s["value"] == 0.95), "{steps:?}");

    // Every query reads only the exporter's series or the recording rules'.
    let catalog = rules_catalog();
    let mut used = check_dashboard(&catalog, &dashboard).unwrap_or_else(|e| panic!("{e}"));
    // Between them, the rules and the dashboard show every series the exporter emits.
    used.extend(
        catalog
            .exported()
            .iter()
            .filter(|m| RULES.contains(m.as_str()))
            .cloned(),
    );
    assert_eq!(&used, catalog.exported());
}

/// Checks every panel query and variable query of `dashboard` against `catalog`; returns the
/// exporter's metrics the panels read.
fn check_dashboard(catalog: &Catalog, dashboard: &Value) -> Result<BTreeSet<String>, String> {
    let DashboardQueries {
        panels,
        label_values,
    } = dashboard_queries(dashboard);
    if panels.len() < 8 {
        return Err(format!("only {} queries: {panels:?}", panels.len()));
    }
    let mut used = BTreeSet::new();
    for (title, expr) in &panels {
        catalog
            .check(expr)
            .map_err(|e| format!("panel \"{title}\": {e}"))?;
        used.extend(
            catalog
                .exported()
                .iter()
                .filter(|m| expr.contains(m.as_str()))
                .cloned(),
        );
    }
    for (metric, label) in label_values {
        let labels = catalog
            .check(&metric)?
            .ok_or_else(|| format!("label_values({metric}, …): a scalar"))?;
        if !labels.contains_key(&label) {
            return Err(format!(
                "label_values({metric}, {label}): no label `{label}`"
            ));
        }
    }
    Ok(used)
}

#[test]
fn the_dashboard_check_rejects_a_renamed_metric_or_label() {
    let catalog = rules_catalog();
    for (from, to, says) in [
        (
            "stormguard_attempts_total{",
            "stormguard_attempt_total{",
            "panel \"Attempts by outcome\": `stormguard_attempt_total` is neither",
        ),
        (
            "sum by (op, reason)",
            "sum by (op, cause)",
            "have no label `cause`",
        ),
        (
            "label_values(stormguard_breaker_state, breaker)",
            "label_values(stormguard_breaker_state, name)",
            "no label `name`",
        ),
    ] {
        let text = DASHBOARD.replace(from, to);
        assert_ne!(text, DASHBOARD, "{from}");
        let dashboard: Value = serde_json::from_str(&text).unwrap();
        let err = check_dashboard(&catalog, &dashboard).expect_err(to);
        assert!(err.contains(says), "{to}: {err}");
    }
}

#[test]
fn promtool_checks_and_tests_the_shipped_rules() {
    let Some(promtool) = promtool() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    run_promtool(
        &promtool,
        root,
        &["check", "rules", "ops/prometheus/stormguard-rules.yml"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run_promtool(&promtool, root, &["test", "rules", RULES_TEST])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("SUCCESS"), "{out}");
}

/// `name{k="v",…}` in PromQL's series notation.
fn series(name: &str, labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// How long the generated timeline runs, in 1-minute steps, and when it is evaluated.
const STEPS: u32 = 30;
const EVAL_MINUTES: u32 = 25;

/// A promtool test case built from the two scrapes: every scraped series goes on at the pace
/// it kept between them (one step per minute), and the expectations are computed here from
/// the same deltas with the thresholds the README documents.
fn generated_case(s: &Scrapes) -> Value {
    let target = |labels: &[(String, String)]| {
        let mut l = labels.to_vec();
        l.push(("instance".to_string(), s.instance.clone()));
        l.push(("job".to_string(), JOB.to_string()));
        l.sort();
        l
    };
    let mut input = Vec::new();
    for ((name, labels), (kind, now)) in &s.after.samples {
        let values = match kind {
            Kind::Counter => {
                let was = s
                    .before
                    .samples
                    .get(&(name.clone(), labels.clone()))
                    .map_or(0.0, |v| v.1);
                format!("{was}+{}x{STEPS}", now - was)
            }
            Kind::Gauge => format!("{now}+0x{STEPS}"),
        };
        input.push(json!({"series": series(name, &target(labels)), "values": values}));
    }

    let delta = |name: &str, labels: &[(&str, &str)]| {
        s.after
            .value(name, labels)
            .map(|now| now - s.before.value(name, labels).unwrap_or(0.0))
    };
    let rules = yaml(RULES);
    let severity = |alert: &str| -> String {
        rules["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .find(|r| r["alert"] == alert)
            .map(|r| r["labels"]["severity"].as_str().unwrap().to_string())
            .unwrap()
    };
    let mut firing: Vec<BTreeMap<&str, String>> = Vec::new();
    let mut fire = |alert: &str, labels: &[(&'static str, &str)]| {
        let mut l: BTreeMap<&str, String> =
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        l.insert("alertname", alert.to_string());
        l.insert("alertstate", "firing".to_string());
        l.insert("job", JOB.to_string());
        l.insert("severity", severity(alert));
        firing.push(l);
    };
    let mut values = Vec::new();
    let mut close_to = |expr: String, labels: &[(&str, &str)], expected: f64| {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.push(("job".to_string(), JOB.to_string()));
        l.sort();
        values.push(json!({
            "expr": format!("abs({expr} - {expected}) < bool 1e-9"),
            "eval_time": format!("{EVAL_MINUTES}m"),
            "exp_samples": [{"labels": series("", &l), "value": 1}],
        }));
    };

    let ops: BTreeSet<String> = s
        .after
        .samples
        .keys()
        .filter(|(name, _)| name == "stormguard_calls_total")
        .flat_map(|(_, labels)| {
            labels
                .iter()
                .filter(|(k, _)| k == "op")
                .map(|(_, v)| v.clone())
        })
        .collect();
    for op in &ops {
        let l = [("op", op.as_str())];
        let calls = delta("stormguard_calls_total", &l).unwrap();
        let retried = delta("stormguard_retried_calls_total", &l);
        let successes = delta("stormguard_retry_successes_total", &l).unwrap_or(0.0);
        let retries = delta("stormguard_retries_total", &l);
        let refused = delta(
            "stormguard_giveups_total",
            &[l[0], ("reason", "budget_exhausted")],
        );
        if let Some(retried) = retried.filter(|r| *r > 0.0) {
            let rate = successes / retried;
            let selector = format!("op:stormguard_retry_success:ratio_rate10m{{op=\"{op}\"}}");
            close_to(selector, &l, rate);
            if rate < 0.95 && 10.0 * retried >= 20.0 {
                fire("StormguardRetrySuccessLow", &l);
            }
        }
        if let Some(retries) = retries {
            let per_call = retries / calls;
            let selector = format!("op:stormguard_retries_per_call:ratio_rate10m{{op=\"{op}\"}}");
            close_to(selector, &l, per_call);
            if per_call > 0.1 && 10.0 * calls >= 100.0 {
                fire("StormguardRetryRatioHigh", &l);
            }
        }
        if let Some(refused) = refused {
            let r = [l[0], ("reason", "budget_exhausted")];
            let selector = format!(
                "op_reason:stormguard_giveups:rate5m{{op=\"{op}\",reason=\"budget_exhausted\"}}"
            );
            close_to(selector, &r, refused / 60.0);
            if 10.0 * refused > 10.0 {
                fire("StormguardBudgetExhausted", &r);
            }
        }
    }
    for ((name, labels), (_, state)) in &s.after.samples {
        if name != "stormguard_breaker_state" {
            continue;
        }
        let breaker = &labels.iter().find(|(k, _)| k == "breaker").unwrap().1;
        let refused: f64 = ops
            .iter()
            .filter_map(|op| {
                delta(
                    "stormguard_rejections_total",
                    &[("op", op), ("breaker", breaker)],
                )
            })
            .sum();
        let selector = format!("breaker:stormguard_breaker_open:count{{breaker=\"{breaker}\"}}");
        close_to(selector, &[("breaker", breaker)], f64::from(*state == 1.0));
        if *state > 0.0 && refused > 0.0 {
            fire(
                "StormguardBreakerOpen",
                &[("breaker", breaker), ("instance", &s.instance)],
            );
        }
    }

    // The scenario makes every alert fire at least once, and not every alert for every op.
    let names: BTreeSet<&str> = firing.iter().map(|l| l["alertname"].as_str()).collect();
    assert_eq!(names.len(), 4, "the scenario fired only {names:?}");
    assert!(firing.len() < 3 * ops.len() + 1, "{firing:?}");
    let exp_alerts: Vec<Value> = firing
        .iter()
        .map(|l| {
            let l: Vec<(String, String)> =
                l.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            json!({"labels": series("ALERTS", &l), "value": 1})
        })
        .collect();
    values.push(json!({
        "expr": "ALERTS{alertstate=\"firing\"}",
        "eval_time": format!("{EVAL_MINUTES}m"),
        "exp_samples": exp_alerts,
    }));
    json!({
        "rule_files": ["stormguard-rules.yml"],
        "evaluation_interval": "1m",
        "group_eval_order": ["stormguard.records", "stormguard.alerts"],
        "tests": [{
            "name": "the scraped series of the metrics example",
            "interval": "1m",
            "input_series": input,
            "promql_expr_test": values,
        }],
    })
}

/// Writes `rules` and the generated case into a fresh directory and runs promtool on them.
fn run_generated(promtool: &Path, rules: &str) -> Result<String, String> {
    let dir = TempDir::new("scraped");
    std::fs::write(dir.0.join("stormguard-rules.yml"), rules).unwrap();
    let case = serde_norway::to_string(&generated_case(scrapes())).unwrap();
    std::fs::write(dir.0.join("scraped.test.yml"), &case).unwrap();
    run_promtool(promtool, &dir.0, &["test", "rules", "scraped.test.yml"])
        .map_err(|e| format!("{e}\n--- generated case ---\n{case}"))
}

#[test]
fn the_scraped_series_drive_the_rules_in_promtool() {
    let Some(promtool) = promtool() else { return };
    let out = run_generated(&promtool, RULES).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn a_renamed_metric_fails_the_generated_promtool_case() {
    let Some(promtool) = promtool() else { return };
    for (from, to) in [
        ("stormguard_retried_calls_total", "stormguard_retried_total"),
        ("stormguard_rejections_total", "stormguard_rejected_total"),
        ("reason=\"budget_exhausted\"", "reason=\"budget\""),
    ] {
        let renamed = RULES.replace(from, to);
        assert_ne!(renamed, RULES);
        let err = run_generated(&promtool, &renamed).expect_err(to);
        assert!(err.contains("FAILED"), "{err}");
    }
}
