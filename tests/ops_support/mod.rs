//! Helpers of tests/ops.rs: the scraped exposition, a static check of PromQL against it
//! (names, labels, label values), and promtool (found, or a one-line skip).

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr, LabelModifier, VectorMatchCardinality};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Labels every scraped series gets from its scrape target.
pub const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// One series: its metric name and its labels, sorted.
pub type SeriesKey = (String, Vec<(String, String)>);

/// The samples of one scrape of the Prometheus text format.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Series → (kind, value).
    pub samples: BTreeMap<SeriesKey, (Kind, f64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Exposition {
    pub fn parse(text: &str) -> Result<Self, String> {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).map_err(|e| e.to_string())?;
        let mut samples = BTreeMap::new();
        for s in scrape.samples {
            let (kind, value) = match s.value {
                prometheus_parse::Value::Counter(v) => (Kind::Counter, v),
                prometheus_parse::Value::Gauge(v) => (Kind::Gauge, v),
                other => return Err(format!("{}: unexpected sample {other:?}", s.metric)),
            };
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            samples.insert((s.metric, labels), (kind, value));
        }
        Ok(Exposition { samples })
    }

    /// Metric names, each with its label names and the values seen for each.
    pub fn families(&self) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
        let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (name, labels) in self.samples.keys() {
            let family = out.entry(name.clone()).or_default();
            for (k, v) in labels {
                family.entry(k.clone()).or_default().insert(v.clone());
            }
        }
        out
    }

    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.samples.get(&(name.to_string(), labels)).map(|s| s.1)
    }
}

/// The label names a series of an expression carries, each with the values it can take where
/// they are known (`None`: any value, e.g. `instance`).
pub type LabelSet = BTreeMap<String, Option<BTreeSet<String>>>;

/// The metric names an expression may use, with their labels: the exporter's, plus each
/// recording rule's output once it has been added.
#[derive(Debug, Default)]
pub struct Catalog {
    metrics: BTreeMap<String, LabelSet>,
    exported: BTreeSet<String>,
}

impl Catalog {
    /// The exporter's metrics as scraped; every one also gets the target labels.
    pub fn from_exposition(exposition: &Exposition) -> Self {
        let mut catalog = Catalog::default();
        for (name, labels) in exposition.families() {
            let mut set: LabelSet = labels.into_iter().map(|(k, v)| (k, Some(v))).collect();
            for l in TARGET_LABELS {
                set.insert(l.to_string(), None);
            }
            catalog.exported.insert(name.clone());
            catalog.metrics.insert(name, set);
        }
        catalog
    }

    pub fn exported(&self) -> &BTreeSet<String> {
        &self.exported
    }

    /// Adds the series a recording rule writes: `record` with the labels of `expr`.
    pub fn record(&mut self, record: &str, expr: &str) -> Result<(), String> {
        let labels = self
            .check(expr)?
            .ok_or_else(|| format!("record {record}: `{expr}` is a scalar, not a vector"))?;
        self.metrics.insert(record.to_string(), labels);
        Ok(())
    }

    /// Parses `expr` and checks every metric name, label and label value in it; returns the
    /// labels of its result (`None`: a scalar).
    pub fn check(&self, expr: &str) -> Result<Option<LabelSet>, String> {
        let ast = parser::parse(expr).map_err(|e| format!("`{expr}` does not parse: {e}"))?;
        self.labels_of(&ast)
            .map_err(|e| format!("{e}\n  in: {expr}"))
    }

    fn labels_of(&self, expr: &Expr) -> Result<Option<LabelSet>, String> {
        match expr {
            Expr::VectorSelector(vs) => self.selector(vs.name.as_deref(), &vs.matchers),
            Expr::MatrixSelector(ms) => self.selector(ms.vs.name.as_deref(), &ms.vs.matchers),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(None),
            Expr::Paren(p) => self.labels_of(&p.expr),
            Expr::Unary(u) => self.labels_of(&u.expr),
            Expr::Subquery(s) => self.labels_of(&s.expr),
            Expr::Call(call) => {
                let mut first = None;
                for arg in &call.args.args {
                    let labels = self.labels_of(arg)?;
                    if first.is_none() {
                        first = labels;
                    }
                }
                Ok(first)
            }
            Expr::Aggregate(agg) => {
                if let Some(param) = &agg.param {
                    self.labels_of(param)?;
                }
                let inner = self
                    .labels_of(&agg.expr)?
                    .ok_or_else(|| format!("{} over a scalar", agg.op))?;
                let op = agg.op.to_string();
                match &agg.modifier {
                    Some(LabelModifier::Include(by)) => {
                        let mut out = LabelSet::new();
                        for l in &by.labels {
                            let values = inner.get(l).ok_or_else(|| {
                                format!(
                                    "`{op} by ({l})`: the series aggregated have no label `{l}` (they have: {})",
                                    names(&inner)
                                )
                            })?;
                            out.insert(l.clone(), values.clone());
                        }
                        if matches!(op.as_str(), "topk" | "bottomk" | "limitk") {
                            return Ok(Some(inner));
                        }
                        Ok(Some(out))
                    }
                    Some(LabelModifier::Exclude(without)) => {
                        let mut out = inner;
                        for l in &without.labels {
                            out.remove(l);
                        }
                        Ok(Some(out))
                    }
                    None if matches!(op.as_str(), "topk" | "bottomk" | "limitk") => Ok(Some(inner)),
                    None => Ok(Some(LabelSet::new())),
                }
            }
            Expr::Binary(bin) => {
                let lhs = self.labels_of(&bin.lhs)?;
                let rhs = self.labels_of(&bin.rhs)?;
                let (lhs, rhs) = match (lhs, rhs) {
                    (None, None) => return Ok(None),
                    (Some(v), None) | (None, Some(v)) => return Ok(Some(v)),
                    (Some(l), Some(r)) => (l, r),
                };
                let modifier = bin.modifier.as_ref();
                let matching = modifier.and_then(|m| m.matching.as_ref());
                let op = bin.op.to_string();
                if let Some(LabelModifier::Include(on)) = matching {
                    for l in &on.labels {
                        for (side, set) in [("left", &lhs), ("right", &rhs)] {
                            if !set.contains_key(l) {
                                return Err(format!(
                                    "`{op} on ({l})`: the {side} side has no label `{l}` (it has: {})",
                                    names(set)
                                ));
                            }
                        }
                    }
                }
                if bin.op.is_set_operator() {
                    let mut out = lhs;
                    if op == "or" {
                        for (k, v) in rhs {
                            out.entry(k).or_insert(v);
                        }
                    }
                    return Ok(Some(out));
                }
                let card = modifier.map(|m| &m.card);
                let (mut out, other) = match card {
                    Some(VectorMatchCardinality::OneToMany(_)) => (rhs, lhs),
                    _ => (lhs, rhs),
                };
                match (card, matching) {
                    (
                        Some(
                            VectorMatchCardinality::ManyToOne(extra)
                            | VectorMatchCardinality::OneToMany(extra),
                        ),
                        _,
                    ) => {
                        for l in &extra.labels {
                            let values = other.get(l).ok_or_else(|| {
                                format!("`group_left/right ({l})`: no label `{l}` to copy")
                            })?;
                            out.insert(l.clone(), values.clone());
                        }
                    }
                    (_, Some(LabelModifier::Include(on))) => {
                        out.retain(|k, _| on.labels.contains(k));
                    }
                    (_, Some(LabelModifier::Exclude(ignoring))) => {
                        out.retain(|k, _| !ignoring.labels.contains(k));
                    }
                    _ => {}
                }
                Ok(Some(out))
            }
            Expr::Extension(_) => Err("an extension expression".to_string()),
        }
    }

    fn selector(
        &self,
        name: Option<&str>,
        matchers: &promql_parser::label::Matchers,
    ) -> Result<Option<LabelSet>, String> {
        let all: Vec<&Matcher> = matchers
            .matchers
            .iter()
            .chain(matchers.or_matchers.iter().flatten())
            .collect();
        let name = name
            .map(str::to_string)
            .or_else(|| {
                all.iter()
                    .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
                    .map(|m| m.value.clone())
            })
            .ok_or("a selector without a metric name")?;
        let labels = self.metrics.get(&name).ok_or_else(|| {
            format!(
                "`{name}` is neither emitted by the exporter nor recorded by a rule (known: {})",
                self.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        for m in all.iter().filter(|m| m.name != "__name__") {
            let values = labels.get(&m.name).ok_or_else(|| {
                format!(
                    "`{name}` has no label `{}` (it has: {})",
                    m.name,
                    names(labels)
                )
            })?;
            if let (MatchOp::Equal, Some(values)) = (&m.op, values) {
                if !values.contains(&m.value) {
                    return Err(format!(
                        "no series of `{name}` has {}=\"{}\" (seen: {})",
                        m.name,
                        m.value,
                        values.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        Ok(Some(labels.clone()))
    }
}

fn names(set: &LabelSet) -> String {
    set.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The `$labels.NAME` a template reads.
pub fn template_labels(template: &str) -> BTreeSet<String> {
    template
        .split("$labels.")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// promtool, or `None` after one line saying why it was skipped. With `CI` set a missing
/// promtool fails the test instead.
pub fn promtool() -> Option<PathBuf> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("promtool"));
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "promtool not found and CI is set: .ci/run installs it (apt-get install -y prometheus)"
        );
    }
    println!("skipped: promtool not found (apt-get install prometheus)");
    None
}

/// Runs promtool with `args` in `dir`; Err holds its output.
pub fn run_promtool(promtool: &Path, dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("promtool: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("promtool {} failed:\n{text}", args.join(" ")))
    }
}

/// A fresh directory under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("stormguard-ops-{}-{tag}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}
