//! `--fleet [N]`: N processes (copies of this executable) call one local TCP downstream through
//! an outage, with local, Redis-shared, and shared-then-Redis-killed breakers and budgets.

// The parent starts a `redis-server` of its own (free port of 127.0.0.1, no persistence) for
// each shared variant, serves the downstream itself, and starts the fleet with
// `STORM_FLEET_CHILD` set. Every process gets the same wall-clock schedule (warm-up, outage,
// recovery, in `SystemTime` milliseconds, the one clock they share); the downstream fails every
// request inside the outage. Each process logs its breaker's transitions and its link to Redis
// (a `tracing` layer, timestamped when the event happens) and, at the end, what its calls did;
// the parent adds the downstream's log of every request and prints the comparison.
// `STORM_FLEET_DUMP=DIR` also writes those logs, one file per variant.

use std::io::Write as _;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::fleet_rig::{bursts, now_ms, request, Down, Downstream, Redis};

/// The fleet's process: its number, set by the parent.
const CHILD_VAR: &str = "STORM_FLEET_CHILD";
/// Calls per second of each process.
const RATE: u64 = 20;
/// Calls before the outage (ms): the budgets fill from successes, the link to Redis is up.
const WARM_MS: u64 = 2000;
/// The total outage (ms): every request fails at once (`err`).
const OUTAGE_MS: u64 = 4000;
/// Calls after the outage (ms).
const AFTER_MS: u64 = 2000;
/// With Redis killed: this far into the outage (ms).
const KILL_AFTER_MS: u64 = 2000;
/// Time the processes get to start before the schedule begins (ms).
const STARTUP_MS: u64 = 800;
/// Longest wait for a process's calls after its last one started: a call ends within its 3
/// attempts of at most 500 ms and their pauses, so a call not back by then lost its result.
const DRAIN: Duration = Duration::from_secs(3);
/// `sync` of the shared variants (ms).
const SYNC_MS: u64 = 100;
/// Probe requests closer than this (ms) belong to one half-open window.
const WINDOW_GAP_MS: u64 = 50;

/// The one name shared: breaker and budget.
const NAME: &str = "storm_fleet";

stormguard::breakers! {
    // Half-open after 500 ms, one probe, no doubling (so a local breaker probes every 500 ms).
    storm_fleet { consecutive_failures: 5, open_for: "500ms", open_max: "500ms", half_open_probes: 1, probe_timeout: "1s" }
}

stormguard::budgets! {
    storm_fleet { capacity: 20, ratio: 0.125, min_per_sec: 1 }
}

/// The run's schedule, in wall-clock milliseconds.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    start: u64,
    outage_start: u64,
    outage_end: u64,
    end: u64,
}

impl Schedule {
    fn from_now() -> Schedule {
        let start = now_ms() + STARTUP_MS;
        Schedule {
            start,
            outage_start: start + WARM_MS,
            outage_end: start + WARM_MS + OUTAGE_MS,
            end: start + WARM_MS + OUTAGE_MS + AFTER_MS,
        }
    }

    fn failing(&self, t: u64) -> bool {
        (self.outage_start..self.outage_end).contains(&t)
    }

    fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            self.start, self.outage_start, self.outage_end, self.end
        )
    }

    fn decode(s: &str) -> Option<Schedule> {
        let v: Vec<u64> = s
            .split(' ')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        Some(Schedule {
            start: *v.first()?,
            outage_start: *v.get(1)?,
            outage_end: *v.get(2)?,
            end: *v.get(3)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// One process of the fleet.
// ---------------------------------------------------------------------------------------------

/// What every process calls: the defaults' backoff, a timeout per attempt, the named breaker
/// and budget (shared or not, as the configuration says).
#[stormguard::retry(
    name = "storm_fleet",
    attempts = 3,
    timeout = "500ms",
    breaker = "storm_fleet",
    budget = "storm_fleet"
)]
async fn guarded(addr: &str, id: u32) -> Result<(), Down> {
    request(addr, id).await
}

/// The same without the breaker: the budget alone bounds the retries.
#[stormguard::retry(
    name = "storm_fleet_budget_only",
    attempts = 3,
    timeout = "500ms",
    budget = "storm_fleet"
)]
async fn budgeted(addr: &str, id: u32) -> Result<(), Down> {
    request(addr, id).await
}

/// Prints the breaker's transitions and the link to Redis as they happen, on stdout:
/// `state <ms> <to> <reason>` and `link <ms> <0|1>`.
struct Transitions;

#[derive(Default)]
struct Fields {
    message: String,
    breaker: String,
    to: String,
    reason: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "breaker" => self.breaker = value.to_owned(),
            "reason" => self.reason = value.to_owned(),
            "message" => self.message = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "to" => self.to = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Transitions {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "stormguard" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let t = now_ms();
        let line = if f.message == "circuit breaker state changed" && f.breaker == NAME {
            format!("state {t} {} {}", f.to, f.reason)
        } else if f.message.starts_with("stormguard fleet:") && f.message.contains("unreachable") {
            format!("link {t} 0")
        } else if f.message.starts_with("stormguard fleet:")
            && (f.message.contains(" is back;") || f.message.contains(": sharing "))
        {
            format!("link {t} 1")
        } else {
            return;
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// In a process started by the fleet's parent (`STORM_FLEET_CHILD` set): makes its calls,
/// prints what happened, and returns true. Elsewhere: does nothing and returns false.
pub fn child_main() -> bool {
    let Ok(id) = std::env::var(CHILD_VAR) else {
        return false;
    };
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let id: u32 = id.parse().expect("STORM_FLEET_CHILD is a number");
    let n: u64 = env("STORM_FLEET_N").parse().expect("STORM_FLEET_N");
    let schedule = Schedule::decode(&env("STORM_FLEET_SCHEDULE")).expect("STORM_FLEET_SCHEDULE");
    let addr: &'static str = Box::leak(env("STORM_FLEET_DOWNSTREAM").into_boxed_str());
    let with_breaker = env("STORM_FLEET_FN") != "budgeted";
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry().with(Transitions).init();
    let config = env("STORM_FLEET_CONFIG");
    if !config.is_empty() {
        if let Err(e) = stormguard::config::apply(&config) {
            println!("config-error {e}");
            std::process::exit(2);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let every = 1000 / RATE;
        // The processes' calls interleave evenly rather than all at once.
        let phase = every * u64::from(id) / n.max(1);
        let wait = (schedule.start + phase).saturating_sub(now_ms());
        let first = tokio::time::Instant::now() + Duration::from_millis(wait);
        let mut tick = tokio::time::interval_at(first, Duration::from_millis(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut calls = Vec::new();
        loop {
            tick.tick().await;
            let started = now_ms();
            if started >= schedule.end {
                break;
            }
            let call = tokio::spawn(async move {
                let ok = if with_breaker {
                    guarded(addr, id).await.is_ok()
                } else {
                    budgeted(addr, id).await.is_ok()
                };
                (started, now_ms(), ok)
            });
            calls.push((started, call));
        }
        let deadline = tokio::time::Instant::now() + DRAIN;
        let (mut ok, mut failed, mut lost, mut panicked) = (0u64, 0u64, 0u64, 0u64);
        let (mut in_outage, mut slowest) = (0u64, 0u64);
        let mut first_ok_after: Option<u64> = None;
        let total = calls.len();
        for (started, call) in calls {
            if schedule.failing(started) {
                in_outage += 1;
            }
            match tokio::time::timeout_at(deadline, call).await {
                Ok(Ok((started, ended, good))) => {
                    slowest = slowest.max(ended - started);
                    if good {
                        ok += 1;
                        if ended >= schedule.outage_end {
                            first_ok_after = Some(first_ok_after.map_or(ended, |f| f.min(ended)));
                        }
                    } else {
                        failed += 1;
                    }
                }
                Ok(Err(e)) if e.is_panic() => panicked += 1,
                Ok(Err(_)) | Err(_) => lost += 1,
            }
        }
        let first = first_ok_after.map_or("-".to_owned(), |t| t.to_string());
        println!("done {total} {in_outage} {ok} {failed} {lost} {panicked} {first} {slowest}");
    });
    true
}

// ---------------------------------------------------------------------------------------------
// The parent: Redis, the downstream, the processes, the measurements.
// ---------------------------------------------------------------------------------------------

/// The three variants the issue compares (breaker and budget), and the budget alone, local and
/// shared (the amplification a budget allows when no breaker stops the calls first).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Local,
    Shared,
    Killed,
    BudgetLocal,
    BudgetShared,
}

impl Variant {
    fn label(self) -> String {
        match self {
            Variant::Local | Variant::BudgetLocal => "local".to_owned(),
            Variant::Shared | Variant::BudgetShared => {
                format!("shared (`sync = \"{SYNC_MS}ms\"`)")
            }
            Variant::Killed => format!(
                "shared, Redis killed {:.0} s into the outage",
                KILL_AFTER_MS as f64 / 1000.0
            ),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Variant::Local => "local",
            Variant::Shared => "shared",
            Variant::Killed => "killed",
            Variant::BudgetLocal => "budget-local",
            Variant::BudgetShared => "budget-shared",
        }
    }

    fn shared(self) -> bool {
        !matches!(self, Variant::Local | Variant::BudgetLocal)
    }

    fn breaker(self) -> bool {
        !matches!(self, Variant::BudgetLocal | Variant::BudgetShared)
    }
}

/// What one process printed.
#[derive(Default)]
struct Proc {
    /// (time ms, state, reason) of every transition of its breaker.
    states: Vec<(u64, String, String)>,
    /// (time ms, connected) of every change of its link to Redis.
    links: Vec<(u64, bool)>,
    calls: u64,
    outage_calls: u64,
    failed_calls: u64,
    lost: u64,
    panicked: u64,
    first_ok_after: Option<u64>,
    slowest: u64,
    /// Lines of stderr that say something panicked, a bad exit, or no `done` line.
    trouble: Vec<String>,
}

impl Proc {
    fn parse(out: &Output) -> Proc {
        let mut p = Proc::default();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut done = false;
        for line in stdout.lines() {
            let mut f = line.splitn(4, ' ');
            match (f.next(), f.next().and_then(|t| t.parse::<u64>().ok())) {
                (Some("state"), Some(t)) => {
                    let to = f.next().unwrap_or_default().to_owned();
                    let reason = f.next().unwrap_or_default().to_owned();
                    p.states.push((t, to, reason));
                }
                (Some("link"), Some(t)) => p.links.push((t, f.next() == Some("1"))),
                (Some("done"), Some(total)) => {
                    let v: Vec<&str> = line.split(' ').skip(2).collect();
                    let num = |i: usize| v.get(i).and_then(|x| x.parse().ok());
                    p.calls = total;
                    p.outage_calls = num(0).unwrap_or(0);
                    p.failed_calls = num(2).unwrap_or(0);
                    p.lost = num(3).unwrap_or(0);
                    p.panicked = num(4).unwrap_or(0);
                    p.first_ok_after = num(5);
                    p.slowest = num(6).unwrap_or(0);
                    done = true;
                }
                _ => p.trouble.push(line.to_owned()),
            }
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        p.trouble.extend(
            stderr
                .lines()
                .filter(|l| l.contains("panicked"))
                .map(str::to_owned),
        );
        if !out.status.success() {
            p.trouble.push(format!("exit: {}", out.status));
        }
        if !done {
            p.trouble.push("no `done` line".to_owned());
        }
        p
    }

    /// Its breaker's first opening in the outage.
    fn opened(&self, s: &Schedule) -> Option<u64> {
        self.states
            .iter()
            .find(|(t, to, _)| to == "Open" && s.failing(*t))
            .map(|(t, _, _)| *t)
    }
}

/// What one variant measured.
struct Row {
    variant: Variant,
    processes: usize,
    calls_in_outage: u64,
    requests_in_outage: usize,
    first_attempts_sent: usize,
    /// The first opening anywhere, after the outage's start (ms).
    first_open: Option<u64>,
    /// From the first opening to the last process's (ms); `None` if one never opened.
    stop_lag: Option<u64>,
    /// Processes whose breaker never opened in the outage.
    never_opened: usize,
    opened_by_fleet: usize,
    /// From when the probes are counted (ms after the outage's start) and how long (ms).
    probes_from: u64,
    probes_for: u64,
    /// Requests per half-open window.
    windows: Vec<usize>,
    /// From the outage's end to each process's first success (ms).
    recovery: Vec<Option<u64>>,
    calls: u64,
    failed_calls: u64,
    lost: u64,
    panicked: u64,
    trouble: Vec<String>,
    slowest: u64,
    /// From the kill to each process's fall-back (ms).
    fell_back: Vec<Option<u64>>,
    /// Processes connected to Redis when the outage started (shared variants).
    connected_at_outage: usize,
}

fn spawn(
    id: u32,
    n: u32,
    down: &Downstream,
    schedule: &Schedule,
    config: &str,
    breaker: bool,
) -> Child {
    let exe = std::env::current_exe().expect("the path of this executable");
    let mut cmd = Command::new(exe);
    // The lab's processes read only what the lab gives them.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("STORMGUARD") {
            cmd.env_remove(k);
        }
    }
    cmd.env(CHILD_VAR, id.to_string())
        .env("STORM_FLEET_N", n.to_string())
        .env("STORM_FLEET_SCHEDULE", schedule.encode())
        .env("STORM_FLEET_DOWNSTREAM", &down.addr)
        .env("STORM_FLEET_CONFIG", config)
        .env(
            "STORM_FLEET_FN",
            if breaker { "guarded" } else { "budgeted" },
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting a process of the fleet")
}

fn run(rt: &tokio::runtime::Runtime, variant: Variant, n: u32) -> Row {
    let mut redis = variant.shared().then(|| {
        let mut redis = Redis::on_free_port();
        redis.start();
        redis
    });
    let config = redis.as_ref().map_or(String::new(), |r| {
        format!(
            "[fleet]\nredis = \"{}\"\nshare = [\"{NAME}\"]\nsync = \"{SYNC_MS}ms\"\nprefix = \"storm-lab-{}\"\n",
            r.url(),
            variant.key()
        )
    });
    let schedule = Schedule::from_now();
    let down = Downstream::start(rt, move |t| schedule.failing(t));
    // A thread per process collects its output as it runs (no pipe fills up).
    let procs: Vec<std::thread::JoinHandle<Output>> = (0..n)
        .map(|id| {
            let child = spawn(id, n, &down, &schedule, &config, variant.breaker());
            std::thread::spawn(move || child.wait_with_output().expect("a fleet process's output"))
        })
        .collect();
    let killed = (variant == Variant::Killed).then(|| {
        let at = schedule.outage_start + KILL_AFTER_MS;
        std::thread::sleep(Duration::from_millis(at.saturating_sub(now_ms())));
        // Timed before the signal: a process may see its connection close before `kill`
        // returns (it waits for the exit).
        let at = now_ms();
        if let Some(r) = redis.as_mut() {
            r.kill();
        }
        at
    });
    let done: Vec<Proc> = procs
        .into_iter()
        .map(|p| Proc::parse(&p.join().expect("a collecting thread")))
        .collect();
    drop(redis);

    let s = &schedule;
    if let Some(dir) = std::env::var_os("STORM_FLEET_DUMP") {
        dump(std::path::Path::new(&dir), variant, s, killed, &down, &done);
    }
    let during = down.requests(s.outage_start, s.outage_end);
    let opened: Vec<Option<u64>> = done.iter().map(|p| p.opened(s)).collect();
    let first_open = opened.iter().flatten().min().copied();
    let never_opened = opened.iter().filter(|o| o.is_none()).count();
    let last_open = opened.iter().flatten().max().copied();
    let stop_lag = match (first_open, last_open) {
        (Some(f), Some(l)) if never_opened == 0 => Some(l - f),
        _ => None,
    };
    // Probes: the requests that arrive while every breaker should be open (from the last
    // opening; with Redis killed, from the kill: then the local breakers' own).
    let probes_from = killed.unwrap_or_else(|| last_open.map_or(s.outage_end, |t| t + 1));
    let probe_times: Vec<u64> = down
        .requests(probes_from, s.outage_end)
        .iter()
        .map(|r| r.0)
        .collect();
    let recovery = done
        .iter()
        .map(|p| p.first_ok_after.map(|t| t - s.outage_end))
        .collect();
    let fell_back = match killed {
        Some(k) => done
            .iter()
            .map(|p| {
                p.links
                    .iter()
                    .find(|(t, up)| *t >= k && !up)
                    .map(|(t, _)| t - k)
            })
            .collect(),
        None => Vec::new(),
    };
    let connected_at = |p: &Proc| {
        p.links
            .iter()
            .rev()
            .find(|(t, _)| *t <= s.outage_start)
            .is_some_and(|(_, up)| *up)
    };
    Row {
        variant,
        processes: done.len(),
        calls_in_outage: done.iter().map(|p| p.outage_calls).sum(),
        requests_in_outage: during.len(),
        first_attempts_sent: during.iter().filter(|r| r.2 <= 1).count(),
        first_open: first_open.map(|t| t - s.outage_start),
        stop_lag,
        never_opened,
        opened_by_fleet: done
            .iter()
            .map(|p| {
                p.states
                    .iter()
                    .filter(|(t, _, why)| s.failing(*t) && why == "opened by the fleet")
                    .count()
            })
            .sum(),
        probes_from: probes_from - s.outage_start,
        probes_for: s.outage_end.saturating_sub(probes_from),
        windows: bursts(&probe_times, WINDOW_GAP_MS),
        recovery,
        calls: done.iter().map(|p| p.calls).sum(),
        failed_calls: done.iter().map(|p| p.failed_calls).sum(),
        lost: done.iter().map(|p| p.lost).sum(),
        panicked: done.iter().map(|p| p.panicked).sum(),
        trouble: done
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.trouble.iter().map(move |l| format!("process {i}: {l}")))
            .collect(),
        slowest: done.iter().map(|p| p.slowest).max().unwrap_or(0),
        fell_back,
        connected_at_outage: done.iter().filter(|p| connected_at(p)).count(),
    }
}

/// `STORM_FLEET_DUMP=DIR`: every request, transition and link change of a variant, one per
/// line, in `DIR/<variant>.txt` (for a closer look than the table's).
fn dump(
    dir: &std::path::Path,
    variant: Variant,
    s: &Schedule,
    killed: Option<u64>,
    down: &Downstream,
    done: &[Proc],
) {
    use std::fmt::Write as _;
    let mut text = format!("schedule {} killed {killed:?}\n", s.encode());
    for (t, who, attempt) in down.requests(0, u64::MAX) {
        let _ = writeln!(text, "request {t} {who} {attempt}");
    }
    for (i, p) in done.iter().enumerate() {
        for (t, to, why) in &p.states {
            let _ = writeln!(text, "state {t} {i} {to} {why}");
        }
        for (t, up) in &p.links {
            let _ = writeln!(text, "link {t} {i} {}", u8::from(*up));
        }
    }
    let path = dir.join(format!("{}.txt", variant.key()));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn range(v: &[u64]) -> String {
    match (v.iter().min(), v.iter().max()) {
        (Some(a), Some(b)) if a == b => format!("{a}"),
        (Some(a), Some(b)) => format!("{a}–{b}"),
        _ => "–".to_owned(),
    }
}

fn windows(w: &[usize]) -> String {
    if w.is_empty() {
        return "none".to_owned();
    }
    let mut sorted = w.to_vec();
    sorted.sort_unstable();
    let (lo, hi, mid) = (
        sorted[0],
        sorted[sorted.len() - 1],
        sorted[sorted.len() / 2],
    );
    if lo == hi {
        format!("{lo} in each of {} windows", w.len())
    } else {
        format!("{lo}–{hi}, median {mid}, in {} windows", w.len())
    }
}

/// The breaker variants' table, then the budget alone's, as Markdown.
fn table(all: &[Row], n: u32) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let rows: Vec<&Row> = all.iter().filter(|r| r.variant.breaker()).collect();
    let _ = writeln!(
        out,
        "\n### Fleet: {n} processes × {RATE} calls/s, one downstream, {:.0} s total outage after {:.0} s\n",
        OUTAGE_MS as f64 / 1000.0,
        WARM_MS as f64 / 1000.0
    );
    let head: Vec<String> = rows.iter().map(|r| r.variant.label()).collect();
    let _ = writeln!(
        out,
        "| | {} |\n|---|{}",
        head.join(" | "),
        "---|".repeat(rows.len())
    );
    let line = |out: &mut String, rows: &[&Row], what: &str, cell: &dyn Fn(&Row) -> String| {
        let cells: Vec<String> = rows.iter().map(|r| cell(r)).collect();
        let _ = writeln!(out, "| {what} | {} |", cells.join(" | "));
    };
    line(
        &mut out,
        &rows,
        "calls made in the outage (first attempts, refused ones included)",
        &|r| r.calls_in_outage.to_string(),
    );
    line(&mut out, &rows, "downstream requests in the outage", &|r| {
        r.requests_in_outage.to_string()
    });
    line(
        &mut out,
        &rows,
        "amplification: requests / calls made",
        &|r| {
            format!(
                "{:.3}x",
                r.requests_in_outage as f64 / r.calls_in_outage.max(1) as f64
            )
        },
    );
    line(
        &mut out,
        &rows,
        "requests / first attempts that reached the downstream",
        &|r| {
            format!(
                "{:.3}x ({} / {})",
                r.requests_in_outage as f64 / r.first_attempts_sent.max(1) as f64,
                r.requests_in_outage,
                r.first_attempts_sent
            )
        },
    );
    line(
        &mut out,
        &rows,
        "first breaker opening (ms into the outage)",
        &|r| r.first_open.map_or("none".to_owned(), |t| t.to_string()),
    );
    line(
        &mut out,
        &rows,
        "first opening → last process stops calling (its breaker opens, ms)",
        &|r| match r.stop_lag {
            Some(l) => l.to_string(),
            None => format!("{} never opened", r.never_opened),
        },
    );
    line(&mut out, &rows, "breakers opened by the fleet", &|r| {
        format!("{} of {}", r.opened_by_fleet, r.processes)
    });
    line(
        &mut out,
        &rows,
        "requests per half-open window (probes)",
        &|r| windows(&r.windows),
    );
    line(
        &mut out,
        &rows,
        "probes, while every breaker is open",
        &|r| {
            let count: usize = r.windows.iter().sum();
            format!(
                "{count} in {:.2} s from {:.2} s into the outage ({:.1}/s)",
                r.probes_for as f64 / 1000.0,
                r.probes_from as f64 / 1000.0,
                count as f64 * 1000.0 / r.probes_for.max(1) as f64
            )
        },
    );
    line(
        &mut out,
        &rows,
        "recovery: outage end → last process's first success (ms)",
        &|r| {
            if r.recovery.iter().any(Option::is_none) {
                let never = r.recovery.iter().filter(|x| x.is_none()).count();
                return format!("{never} never succeeded");
            }
            let v: Vec<u64> = r.recovery.iter().flatten().copied().collect();
            format!(
                "{} (first process: {})",
                v.iter().max().unwrap_or(&0),
                v.iter().min().unwrap_or(&0)
            )
        },
    );
    line(&mut out, &rows, "calls without a result / panics", &|r| {
        format!("{} / {}", r.lost, r.panicked + r.trouble.len() as u64)
    });
    line(
        &mut out,
        &rows,
        "calls (of which failed), slowest call (ms)",
        &|r| format!("{} ({}), {}", r.calls, r.failed_calls, r.slowest),
    );
    line(
        &mut out,
        &rows,
        "connected to Redis at the outage's start",
        &|r| match r.variant {
            Variant::Local => "–".to_owned(),
            _ => format!("{} of {}", r.connected_at_outage, r.processes),
        },
    );
    line(
        &mut out,
        &rows,
        "fell back to local after the kill (ms)",
        &|r| match r.variant {
            Variant::Killed => {
                let v: Vec<u64> = r.fell_back.iter().flatten().copied().collect();
                let missing = r.fell_back.len() - v.len();
                if missing > 0 {
                    format!("{} ({missing} never)", range(&v))
                } else {
                    range(&v)
                }
            }
            _ => "–".to_owned(),
        },
    );
    let budget: Vec<&Row> = all.iter().filter(|r| !r.variant.breaker()).collect();
    if budget.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n### The budget alone (the same calls without the breaker)\n\n| | {} |\n|---|{}",
        budget
            .iter()
            .map(|r| r.variant.label())
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(budget.len())
    );
    line(&mut out, &budget, "first attempts in the outage", &|r| {
        r.first_attempts_sent.to_string()
    });
    line(&mut out, &budget, "retries in the outage", &|r| {
        (r.requests_in_outage - r.first_attempts_sent).to_string()
    });
    line(
        &mut out,
        &budget,
        "amplification: requests / first attempts",
        &|r| {
            format!(
                "{:.3}x",
                r.requests_in_outage as f64 / r.first_attempts_sent.max(1) as f64
            )
        },
    );
    line(&mut out, &budget, "calls without a result / panics", &|r| {
        format!("{} / {}", r.lost, r.panicked + r.trouble.len() as u64)
    });
    out
}

/// Runs the variants and prints the tables.
pub fn main(n: u32) {
    if !Redis::on_path() {
        println!("storm --fleet: skipped: redis-server is not on PATH (the fleet mode starts one of its own; e.g. apt-get install redis-server)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    for variant in [
        Variant::Local,
        Variant::Shared,
        Variant::Killed,
        Variant::BudgetLocal,
        Variant::BudgetShared,
    ] {
        eprintln!(
            "fleet: {}: {n} processes × {RATE} calls/s, {:.0} s outage, {:.0} s of calls (real time)…",
            variant.key(),
            OUTAGE_MS as f64 / 1000.0,
            (WARM_MS + OUTAGE_MS + AFTER_MS) as f64 / 1000.0
        );
        rows.push(run(&rt, variant, n));
    }
    eprintln!("fleet: done in {:.1} s", started.elapsed().as_secs_f64());
    print!("{}", table(&rows, n));
    let trouble: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.trouble
                .iter()
                .map(|t| format!("{}: {t}", r.variant.key()))
        })
        .collect();
    if !trouble.is_empty() {
        println!("\nWhat the processes reported besides their counts:");
        for t in trouble {
            println!("- {t}");
        }
    }
}
