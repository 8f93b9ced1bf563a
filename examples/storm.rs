//! The storm lab: many clients, a capacity-limited downstream, an outage, and the retry
//! strategies side by side, in a deterministic simulation (tokio's paused clock, seeded RNG).
//!
//! ```text
//! cargo run --release --example storm            # progress on stderr, the table, docs/storm.svg
//! cargo run --release --example storm -- --json  # one JSON object per (scenario, strategy)
//! cargo run --release --example storm -- --wire  # the same claim on real sockets, small scale
//! cargo run --release --example storm --features redis -- --fleet  # 20 processes, local vs Redis-shared
//! ```
//!
//! Options: `--scenario a|b|c|d|e|f|g|h` (repeatable; all by default: (e) is Brooker's
//! failure-rate sweep, (f) his client-count model, (g) a lone client, (h) tail latency and
//! hedging), `--svg PATH` (default
//! `docs/storm.svg`; the budget chart of (e) and (f) goes beside it, `storm-budgets.svg`),
//! `--no-svg`, `--fleet [N]` (feature `redis`: N processes, default 20, on real sockets with
//! local breakers and budgets against ones shared through a `redis-server` the lab starts, see
//! `examples/storm/fleet.rs`). The model and its assumptions are in `examples/storm/model.rs`
//! and `docs/STORM.md`.
//!
//! Fresh state per run: budgets and breakers are process-wide statics (one per call site or
//! name), so every (scenario, strategy) runs in a child process of its own: this executable,
//! started again with `STORM_RUN` set (see `model::run_isolated`). Runs are independent and
//! reproducible: `--scenario a` gives the same numbers as the full lab.

#[cfg(feature = "redis")]
#[path = "storm/fleet.rs"]
mod fleet;
#[cfg(feature = "redis")]
#[allow(dead_code)] // shared with tests/fleet.rs, which uses other parts of it
#[path = "storm/fleet_rig.rs"]
mod fleet_rig;
#[allow(dead_code)] // shared with tests/storm.rs, which uses other parts of it
#[path = "storm/model.rs"]
mod model;
#[path = "storm/wire.rs"]
mod wire;

use model::{Config, Kind, Report};
use std::fmt::Write as _;
use std::io::Write as _;

struct Options {
    json: bool,
    wire: bool,
    /// `--fleet [N]`: the fleet mode's process count.
    fleet: Option<u32>,
    scenarios: Vec<char>,
    svg: Option<String>,
    series: bool,
    seed: Option<u64>,
}

fn options() -> Options {
    let mut o = Options {
        json: false,
        wire: false,
        fleet: None,
        scenarios: Vec::new(),
        svg: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/storm.svg").to_owned()),
        series: false,
        seed: None,
    };
    let mut args = std::env::args().skip(1).peekable();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--wire" => o.wire = true,
            "--fleet" => {
                let n = args.peek().and_then(|s| s.parse::<u32>().ok());
                if n.is_some() {
                    args.next();
                }
                o.fleet = Some(n.unwrap_or(20).max(1));
            }
            "--no-svg" => o.svg = None,
            "--series" => o.series = true,
            "--seed" => o.seed = Some(args.next().and_then(|s| s.parse().ok()).expect("--seed N")),
            "--svg" => o.svg = Some(args.next().expect("--svg PATH")),
            "--scenario" => {
                let s = args.next().expect("--scenario a|b|c|d|e|f|g|h");
                match s.as_str() {
                    "a" | "b" | "c" | "d" | "e" | "f" | "g" | "h" => {
                        o.scenarios.push(s.chars().next().unwrap())
                    }
                    _ => panic!("--scenario takes a, b, c, d, e, f, g or h"),
                }
            }
            "-h" | "--help" => {
                eprintln!("usage: storm [--json] [--wire] [--fleet [N]] [--scenario a|b|c|d|e|f|g|h]... [--svg PATH | --no-svg] [--series] [--seed N]");
                std::process::exit(0);
            }
            other => panic!("unknown option `{other}` (try --help)"),
        }
    }
    if o.scenarios.is_empty() {
        o.scenarios = vec!['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    }
    o
}

fn main() {
    if model::child_main() {
        return;
    }
    #[cfg(feature = "redis")]
    if fleet::child_main() {
        return;
    }
    let o = options();
    if let Some(n) = o.fleet {
        #[cfg(feature = "redis")]
        return fleet::main(n);
        #[cfg(not(feature = "redis"))]
        {
            eprintln!("storm: --fleet shares breakers and budgets through Redis, which needs the `redis` feature: add `--features redis` (cargo run --release --example storm --features redis -- --fleet {n})");
            std::process::exit(2);
        }
    }
    if o.wire {
        wire::main();
        return;
    }
    let mut runs = Vec::new();
    for &id in &o.scenarios {
        let base = Config::scenario(id).seed;
        for mut cfg in Config::sweep(id) {
            if let Some(seed) = o.seed {
                cfg.seed = seed.wrapping_add(cfg.seed.wrapping_sub(base));
            }
            runs.extend(cfg.kinds().iter().map(|&kind| (cfg, kind)));
        }
    }
    let started = std::time::Instant::now();
    let total = runs.len();
    progress(0, total, "starting");
    let exe = std::env::current_exe().expect("the path of this executable");
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let series = model::run_all(
        || std::process::Command::new(&exe),
        &runs,
        parallel,
        |n| progress(n, total, "runs done"),
    );
    progress(
        total,
        total,
        &format!("runs done in {:.1} s", started.elapsed().as_secs_f64()),
    );
    eprintln!();
    // The parts of a fleet add up to the fleet.
    let mut merged: Vec<(Config, Kind, model::Series)> = Vec::new();
    for ((cfg, kind), s) in runs.iter().zip(series) {
        let same = |(c, k, _): &&mut (Config, Kind, model::Series)| {
            c.id == cfg.id
                && c.clients == cfg.clients
                && c.failure_rate == cfg.failure_rate
                && c.tail == cfg.tail
                && k == kind
        };
        match merged.iter_mut().find(|m| same(m)) {
            Some((_, _, total)) => total.add(&s),
            None => merged.push((*cfg, *kind, s)),
        }
    }
    let mut reports: Vec<(Config, Vec<Report>)> = Vec::new();
    for (cfg, kind, s) in &merged {
        if o.series {
            print_series(cfg, *kind, s);
        }
        let report = Report::new(cfg, *kind, s);
        match reports.last_mut() {
            Some((c, rows))
                if c.id == cfg.id
                    && c.clients == cfg.clients
                    && c.failure_rate == cfg.failure_rate
                    && c.tail == cfg.tail =>
            {
                rows.push(report)
            }
            _ => reports.push((*cfg, vec![report])),
        }
    }
    if o.json {
        for (cfg, rows) in &reports {
            for r in rows {
                println!("{}", json(cfg, r));
            }
        }
    } else {
        print!("{}", table(&reports));
    }
    if let Some(path) = &o.svg {
        let timed: Vec<_> = reports
            .iter()
            .filter(|(c, _)| ('a'..='d').contains(&c.id))
            .cloned()
            .collect();
        if !timed.is_empty() {
            std::fs::write(path, svg(&timed)).unwrap_or_else(|e| panic!("writing {path}: {e}"));
            eprintln!("wrote {path}");
        }
        let sweep: Vec<_> = reports
            .iter()
            .filter(|(c, _)| c.id == 'e' || c.id == 'f')
            .cloned()
            .collect();
        if !sweep.is_empty() {
            let path = std::path::Path::new(path).with_file_name("storm-budgets.svg");
            std::fs::write(&path, budget_svg(&sweep))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            eprintln!("wrote {}", path.display());
        }
    }
}

/// Per second: offered requests, goodput, downstream calls (for `--series`).
fn print_series(cfg: &Config, kind: Kind, s: &model::Series) {
    println!(
        "\n{} / {}: second, offered, goodput, calls",
        cfg.id,
        kind.label()
    );
    let per_s = (1.0 / model::BUCKET).round() as usize;
    for (i, chunk) in s.offered.chunks(per_s).enumerate() {
        let from = i * per_s;
        let to = (from + per_s).min(s.succeeded.len());
        let offered: u32 = chunk.iter().sum();
        let ok: u32 = s.succeeded[from..to].iter().sum();
        let calls: u32 = s.calls[from..to.min(s.calls.len())].iter().sum();
        println!(
            "{i:>3} {offered:>5} {:>6.1}% {calls:>6}",
            ok as f64 * 100.0 / offered.max(1) as f64
        );
    }
}

/// One updating line on stderr: a bar, the count, what runs now.
fn progress(done: usize, total: usize, what: &str) {
    let width = 28;
    let filled = done * width / total.max(1);
    let bar: String = (0..width)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K[{bar}] {done}/{total} {what}");
    let _ = err.flush();
}

fn recovery(r: &Report, cfg: &Config) -> String {
    match r.recovery_s {
        _ if cfg.outage <= 0.0 => "n/a".to_owned(),
        Some(s) => format!("{s:.1} s"),
        None => format!(
            "never (> {:.0} s)",
            cfg.duration - cfg.outage_start - cfg.outage
        ),
    }
}

/// The table, as Markdown.
fn table(reports: &[(Config, Vec<Report>)]) -> String {
    let mut out = String::new();
    for id in ['e', 'f'] {
        let sweep: Vec<_> = reports.iter().filter(|(c, _)| c.id == id).collect();
        if let Some((first, rows)) = sweep.first() {
            let _ = writeln!(out, "\n### {}\n", first.describe());
            let head: Vec<&str> = rows.iter().map(|r| r.kind.label()).collect();
            let what = if id == 'e' {
                "failure rate"
            } else {
                "clients (rps each)"
            };
            let _ = writeln!(
                out,
                "| {what} | {} |\n|---|{}",
                head.join(" | "),
                "---:|".repeat(head.len())
            );
            for (cfg, rows) in &sweep {
                let key = if id == 'e' {
                    format!("{:.2}", cfg.failure_rate)
                } else {
                    format!(
                        "{} ({})",
                        cfg.clients,
                        trim(cfg.load * cfg.capacity / f64::from(cfg.clients))
                    )
                };
                let cells: Vec<String> = rows
                    .iter()
                    .map(|r| format!("{:.3}x / {:.2}%", r.amplification, r.success_rate * 100.0))
                    .collect();
                let _ = writeln!(out, "| {key} | {} |", cells.join(" | "));
            }
        }
    }
    for (cfg, rows) in reports.iter().filter(|(c, _)| c.id != 'e' && c.id != 'f') {
        if cfg.id == 'h' {
            // One table for every share of slow attempts.
            if !reports
                .iter()
                .find(|(c, _)| c.id == 'h')
                .is_some_and(|(c, _)| c.tail == cfg.tail)
            {
                continue;
            }
            let _ = writeln!(
                out,
                "\n### {}\n\n| slow attempts | strategy | p50 | p99 | p99.9 | extra load (attempts / request - 1) | client success |\n|---:|---|---:|---:|---:|---:|---:|",
                cfg.describe()
            );
            for (cfg, rows) in reports.iter().filter(|(c, _)| c.id == 'h') {
                for r in rows {
                    let [p50, p99, p999] = r.latency_ms.unwrap_or([f64::NAN; 3]);
                    let _ = writeln!(
                        out,
                        "| {:.0}% | {} | {p50:.0} ms | {p99:.0} ms | {p999:.0} ms | {:.2}% | {:.2}% |",
                        cfg.tail * 100.0,
                        r.kind.label(),
                        (r.amplification - 1.0) * 100.0,
                        r.success_rate * 100.0
                    );
                }
            }
            continue;
        }
        if cfg.id == 'g' {
            let _ = writeln!(
                out,
                "\n### {}\n\n| strategy | load (calls / request) | client success |\n|---|---:|---:|",
                cfg.describe()
            );
            for r in rows {
                let _ = writeln!(
                    out,
                    "| {} | {:.3}x | {:.2}% |",
                    r.kind.label(),
                    r.amplification,
                    r.success_rate * 100.0
                );
            }
            continue;
        }
        let _ = writeln!(out, "\n### {}\n", cfg.describe());
        if cfg.outage > 0.0 {
            let _ = writeln!(out, "| strategy | amplification (outage) | after its first {:.0} s | peak load / 100 ms | time to 95% goodput | client success |", model::OUTAGE_HEAD);
        } else {
            let _ = writeln!(out, "| strategy | load (calls / request) | – | peak load / 100 ms | time to 95% goodput | client success |");
        }
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for r in rows {
            let late = if cfg.outage > 0.0 {
                format!("{:.3}x", r.amplification_late)
            } else {
                "–".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {:.3}x | {} | {:.2}x capacity | {} | {:.2}% |",
                r.kind.label(),
                r.amplification,
                late,
                r.peak_load,
                recovery(r, cfg),
                r.success_rate * 100.0
            );
        }
    }
    out
}

/// One JSON object, by hand.
fn json(cfg: &Config, r: &Report) -> String {
    let recovery = match r.recovery_s {
        Some(s) => format!("{s:.1}"),
        None => "null".to_owned(),
    };
    let recovered = if cfg.outage > 0.0 {
        r.recovery_s.is_some().to_string()
    } else {
        "null".to_owned()
    };
    let latency = match r.latency_ms {
        Some([p50, p99, p999]) => {
            format!(
                ",\"tail\":{},\"p50_ms\":{p50:.0},\"p99_ms\":{p99:.0},\"p999_ms\":{p999:.0}",
                cfg.tail
            )
        }
        None => String::new(),
    };
    format!(
        "{{\"scenario\":\"{}\",\"strategy\":\"{}\",\"clients\":{},\"failure_rate\":{},\"amplification\":{:.4},\"amplification_late\":{:.4},\"peak_load\":{:.3},\"recovery_s\":{},\"recovered\":{},\"success_rate\":{:.5}{}}}",
        cfg.id,
        r.kind.key(),
        cfg.clients,
        cfg.failure_rate,
        r.amplification,
        r.amplification_late,
        r.peak_load,
        recovery,
        recovered,
        r.success_rate,
        latency
    )
}

const COLORS: [&str; 9] = [
    "#222222", // no retries
    "#d62728", // immediate
    "#ff7f0e", // fixed
    "#9467bd", // exp, no jitter
    "#1f77b4", // exp, full jitter
    "#2ca02c", // stormguard defaults
    "#17becf", // stormguard + breaker
    "#e377c2", // stormguard hedge 50ms
    "#8c564b", // stormguard hedge p95
];

/// Downstream load over time, one panel per scenario, one polyline per strategy.
fn svg(reports: &[(Config, Vec<Report>)]) -> String {
    let (w, panel_h, left, right, top, gap) = (960.0, 260.0, 60.0, 210.0, 40.0, 60.0);
    let plot_w = w - left - right;
    let h = top + reports.len() as f64 * (panel_h + gap);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Downstream load per 100 ms (× capacity), by retry strategy</text>"
    );
    for (p, (cfg, rows)) in reports.iter().enumerate() {
        let y0 = top + p as f64 * (panel_h + gap);
        // Clipped at 4x capacity so that the sustained load stays readable; the spikes
        // above it are labelled with their height.
        let peak = rows.iter().map(|r| r.peak_load).fold(1.0, f64::max);
        let y_max = nice_ceiling(peak * 1.05).min(4.0);
        let x_of = |t: f64| left + t / cfg.duration * plot_w;
        let y_of = |v: f64| y0 + panel_h - v.min(y_max) / y_max * panel_h;
        let _ = writeln!(
            s,
            "<text x=\"{left}\" y=\"{}\" font-weight=\"bold\">{}</text>",
            y0 - 6.0,
            escape(&cfg.describe())
        );
        if cfg.outage > 0.0 {
            let (xa, xb) = (x_of(cfg.outage_start), x_of(cfg.outage_start + cfg.outage));
            let _ = writeln!(
                s,
                "<rect x=\"{xa:.1}\" y=\"{y0}\" width=\"{:.1}\" height=\"{panel_h}\" fill=\"#f3e0e0\"/>",
                xb - xa
            );
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#a04040\">outage</text>",
                xa + 4.0,
                y0 + panel_h - 6.0
            );
            if cfg.warmup > 0.0 {
                let xw = x_of(cfg.outage_start + cfg.outage + cfg.warmup);
                let _ = writeln!(
                    s,
                    "<rect x=\"{xb:.1}\" y=\"{y0}\" width=\"{:.1}\" height=\"{panel_h}\" fill=\"#f7efd8\"/>",
                    xw - xb
                );
            }
        }
        // Axes, grid and ticks.
        let step = y_max / 5.0;
        for i in 0..=5 {
            let v = step * i as f64;
            let y = y_of(v);
            let _ = writeln!(
                s,
                "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                left + plot_w,
                left - 6.0,
                y + 4.0,
                trim(v)
            );
        }
        let mut t = 0.0;
        while t <= cfg.duration + 1e-9 {
            let x = x_of(t);
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#444\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t:.0}</text>",
                y0 + panel_h,
                y0 + panel_h + 5.0,
                y0 + panel_h + 18.0
            );
            t += 10.0;
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (s)</text>",
            left + plot_w / 2.0,
            y0 + panel_h + 34.0
        );
        let _ = writeln!(
            s,
            "<path d=\"M{left},{y0} V{:.1} H{:.1}\" fill=\"none\" stroke=\"#444\"/>",
            y0 + panel_h,
            left + plot_w
        );
        let yc = y_of(1.0);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{yc:.1}\" x2=\"{:.1}\" y2=\"{yc:.1}\" stroke=\"#000\" stroke-dasharray=\"6 4\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#000\">capacity</text>",
            left + plot_w,
            left + plot_w - 56.0,
            yc - 4.0
        );
        // One polyline per strategy; the ones drawn last are on top.
        for (i, r) in rows.iter().enumerate() {
            let mut pts = String::new();
            let buckets = ((cfg.duration / model::BUCKET) as usize).min(r.load.len());
            for (b, v) in r.load.iter().take(buckets).enumerate() {
                let _ = write!(
                    pts,
                    "{:.1},{:.1} ",
                    x_of((b as f64 + 0.5) * model::BUCKET),
                    y_of(*v)
                );
            }
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.2\" stroke-opacity=\"0.85\" points=\"{}\"/>",
                COLORS[i % COLORS.len()],
                pts.trim_end()
            );
        }
        // Spikes above the top of the panel: their height, in the strategy's colour.
        let mut labels = 0;
        for (i, r) in rows.iter().enumerate() {
            if r.peak_load <= y_max {
                continue;
            }
            let b = r.load.iter().position(|&v| v == r.peak_load).unwrap_or(0);
            let x = x_of((b as f64 + 0.5) * model::BUCKET);
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\" font-weight=\"bold\">↑ {:.1}×</text>",
                x + 3.0,
                y0 + 28.0 + labels as f64 * 14.0,
                COLORS[i % COLORS.len()],
                r.peak_load
            );
            labels += 1;
        }
        // Legend.
        for (i, r) in rows.iter().enumerate() {
            let ly = y0 + 10.0 + i as f64 * 18.0;
            let lx = left + plot_w + 16.0;
            let _ = writeln!(
                s,
                "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                lx + 22.0,
                COLORS[i % COLORS.len()],
                lx + 28.0,
                ly + 4.0,
                escape(r.kind.label())
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn nice_ceiling(v: f64) -> f64 {
    for c in [
        1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0,
    ] {
        if v <= c {
            return c;
        }
    }
    (v / 10.0).ceil() * 10.0
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The colour of a strategy in the budget chart.
fn kind_color(kind: Kind) -> &'static str {
    match kind {
        Kind::NoRetry => "#222222",
        Kind::ThreeRetries => "#d62728",
        Kind::Defaults => "#2ca02c",
        Kind::BrookerBucket => "#1f77b4",
        _ => "#999999",
    }
}

/// Load against failure rate (e) and against client count (f): one panel each, one line per
/// strategy, the goals dashed.
fn budget_svg(reports: &[(Config, Vec<Report>)]) -> String {
    let (w, h, top, panel_w, panel_h, left, gap) = (980.0, 420.0, 50.0, 380.0, 300.0, 60.0, 110.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Downstream load (calls / request), Brooker's models</text>"
    );
    let y_max = 3.0;
    let y_min = 0.9;
    for (p, id) in ['e', 'f'].into_iter().enumerate() {
        let rows: Vec<&(Config, Vec<Report>)> =
            reports.iter().filter(|(c, _)| c.id == id).collect();
        if rows.is_empty() {
            continue;
        }
        let x0 = left + p as f64 * (panel_w + gap);
        let y_of =
            |v: f64| top + panel_h - (v.clamp(y_min, y_max) - y_min) / (y_max - y_min) * panel_h;
        let x_of = move |x: f64| {
            if id == 'e' {
                x0 + x / 0.8 * panel_w
            } else {
                x0 + x.log10() / 3.0 * panel_w
            }
        };
        let (title, ticks): (&str, Vec<(f64, String)>) = if id == 'e' {
            (
                "(e) against the failure rate (100 clients x 10 rps)",
                [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
                    .iter()
                    .map(|&x| (x, format!("{:.0}%", x * 100.0)))
                    .collect(),
            )
        } else {
            (
                "(f) against the client count (30 s total outage)",
                [1.0, 10.0, 100.0, 1000.0]
                    .iter()
                    .map(|&n| (n, format!("{n:.0}")))
                    .collect(),
            )
        };
        let _ = writeln!(
            s,
            "<text x=\"{x0}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
            top - 8.0,
            escape(title)
        );
        for i in 0..=7 {
            let v = y_min + (y_max - y_min) * i as f64 / 7.0;
            let y = y_of(v);
            let _ = writeln!(
                s,
                "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}x</text>",
                x0 + panel_w,
                x0 - 6.0,
                y + 4.0
            );
        }
        for (x, label) in &ticks {
            let xx = x_of(*x);
            let _ = writeln!(
                s,
                "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#444\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
                top + panel_h,
                top + panel_h + 5.0,
                top + panel_h + 18.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x0 + panel_w / 2.0,
            top + panel_h + 36.0,
            if id == 'e' {
                "failure rate"
            } else {
                "clients (same total traffic, each its own budget)"
            }
        );
        let _ = writeln!(
            s,
            "<path d=\"M{x0},{top} V{:.1} H{:.1}\" fill=\"none\" stroke=\"#444\"/>",
            top + panel_h,
            x0 + panel_w
        );
        let goals: &[(f64, &str)] = if id == 'e' {
            &[(1.15, "goal 1.15x")]
        } else {
            &[(1.2, "goal 1.2x (N ≤ 100)"), (1.35, "1.35x (N = 1,000)")]
        };
        for (g, label) in goals {
            let y = y_of(*g);
            let _ = writeln!(
                s,
                "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#2ca02c\" stroke-dasharray=\"5 4\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#2ca02c\" text-anchor=\"end\">{}</text>",
                x0 + panel_w,
                x0 + panel_w - 4.0,
                y - 4.0,
                escape(label)
            );
        }
        let kinds: Vec<Kind> = rows[0].1.iter().map(|r| r.kind).collect();
        for (i, kind) in kinds.iter().enumerate() {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|(c, rs)| {
                    let r = rs.iter().find(|r| r.kind == *kind)?;
                    let x = if id == 'e' {
                        c.failure_rate
                    } else {
                        f64::from(c.clients)
                    };
                    Some((x_of(x), y_of(r.amplification)))
                })
                .collect();
            let line: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let color = kind_color(*kind);
            // Above the top of the panel: the height, in the strategy's colour.
            let top_load = rows
                .iter()
                .filter_map(|(_, rs)| rs.iter().find(|r| r.kind == *kind))
                .map(|r| r.amplification)
                .fold(0.0, f64::max);
            if top_load > y_max {
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\" font-weight=\"bold\">↑ {top_load:.1}x</text>",
                    x0 + 8.0,
                    top + 16.0
                );
            }
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                line.join(" ")
            );
            for (x, y) in &pts {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
            if p == 0 {
                let ly = top + panel_h + 60.0;
                let lx = x0 + i as f64 * 190.0;
                let _ = writeln!(
                    s,
                    "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    lx + 22.0,
                    lx + 28.0,
                    ly + 4.0,
                    escape(kind.label())
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}
