//! Fleet-shared breakers and budgets on a real `redis-server` and real OS processes: this test
//! binary starts Redis on a free port, a TCP downstream, and copies of itself as the fleet's
//! processes (`FLEET_CHILD` set), then measures what the fleet sends through an outage and
//! through Redis faults (down at start, paused with SIGSTOP, killed, restarted empty, slow).
//!
//! And that the success path of a shared name allocates no more than an unshared twin's while
//! the sync thread runs (a per-thread counting allocator in one child process).
//!
//! Without `redis-server` on PATH it prints one line and passes, unless
//! `STORMGUARD_REDIS_TESTS` is set (CI sets it): then a missing Redis fails the test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stormguard::retry;

#[allow(dead_code)] // shared with the storm lab's `--fleet`, which uses other parts of it
#[path = "../examples/storm/fleet_rig.rs"]
mod fleet_rig;
use fleet_rig::{bursts, free_port, now_ms, request, wait_listening, Down, Downstream, Redis};

/// Makes `redis` answer nothing for `secs`, then carry on (a slow Redis, not a dead one).
fn slow_for(redis: &Redis, secs: f64) -> std::thread::JoinHandle<()> {
    let port = redis.port.to_string();
    std::thread::spawn(move || {
        let status = Command::new("redis-cli")
            .args(["-p", &port, "DEBUG", "SLEEP", &secs.to_string()])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli DEBUG SLEEP");
    })
}

/// The rig's downstream, failing while the flag returned with it is set.
fn switched_downstream(rt: &tokio::runtime::Runtime) -> (Downstream, Arc<AtomicBool>) {
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    (
        Downstream::start(rt, move |_| flag.load(Ordering::SeqCst)),
        failing,
    )
}

// ---------------------------------------------------------------------------------------
// Allocations per thread (read only by the `alloc` child; every process of the binary counts).
// ---------------------------------------------------------------------------------------

struct PerThreadCounting;

thread_local! {
    // `const`: no lazy initialisation and no destructor to register, so touching it from the
    // allocator never allocates (nor recurses).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// This thread's allocations (`alloc`, `alloc_zeroed` and `realloc`) so far.
fn allocations() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

unsafe impl GlobalAlloc for PerThreadCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: PerThreadCounting = PerThreadCounting;

// ---------------------------------------------------------------------------------------
// The fleet's process (the child).
// ---------------------------------------------------------------------------------------

stormguard::breakers! {
    payments { consecutive_failures: 5, open_for: "600ms", open_max: "600ms", half_open_probes: 1, probe_timeout: "1s" }
    // The allocation check's twins: the same declaration, only `alloc_shared` in `[fleet]`.
    alloc_shared { consecutive_failures: 5, open_for: "600ms", half_open_probes: 1 }
    alloc_local { consecutive_failures: 5, open_for: "600ms", half_open_probes: 1 }
}

stormguard::budgets! {
    payments { capacity: 20, ratio: 0.125, min_per_sec: 1 }
    alloc_shared { capacity: 20, ratio: 0.125, min_per_sec: 1 }
    alloc_local { capacity: 20, ratio: 0.125, min_per_sec: 1 }
}

#[retry(
    name = "guarded",
    attempts = 3,
    backoff = "fixed",
    base = "5ms",
    timeout = "500ms",
    breaker = "payments",
    budget = "payments"
)]
async fn guarded(addr: &str, id: u32) -> Result<(), Down> {
    request(addr, id).await
}

#[retry(
    name = "budgeted",
    attempts = 3,
    backoff = "fixed",
    base = "5ms",
    timeout = "500ms",
    budget = "payments"
)]
async fn budgeted(addr: &str, id: u32) -> Result<(), Down> {
    request(addr, id).await
}

#[retry(breaker = "alloc_shared", budget = "alloc_shared")]
#[inline(never)]
async fn alloc_shared(x: u64) -> Result<u64, Down> {
    Ok(std::hint::black_box(x).wrapping_add(1))
}

#[retry(breaker = "alloc_local", budget = "alloc_local")]
#[inline(never)]
async fn alloc_local(x: u64) -> Result<u64, Down> {
    Ok(std::hint::black_box(x).wrapping_add(1))
}

/// Calls per batch and batches of the allocation check: 1,000 calls of each twin, the batches
/// spread over several `sync` rounds (a pause between them), counted around the calls only.
const ALLOC_BATCH: u64 = 50;
const ALLOC_BATCHES: u64 = 20;

/// The `alloc` child: on a current-thread runtime, 200 calls of each twin to warm up, then,
/// while shared through Redis, this thread's allocations over 1,000 successful calls of each.
/// Prints `alloc <shared> <unshared> <sanity> <ms the batches spanned> <still connected>`.
fn alloc_child() {
    tracing_subscriber::fmt()
        .with_env_filter("stormguard=info")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if let Err(e) = stormguard::config::apply(&std::env::var("FLEET_CONFIG").unwrap()) {
        println!("config-error {e}");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The counter sees this thread's allocations: one `Vec`, one count.
        let before = allocations();
        drop(std::hint::black_box(vec![0u8; 16]));
        let sanity = allocations() - before;
        for i in 0..200 {
            alloc_shared(i).await.unwrap();
            alloc_local(i).await.unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !stormguard::__private::fleet_connected() {
            if tokio::time::Instant::now() > deadline {
                println!("alloc-error not connected to Redis within 5 s");
                std::process::exit(3);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (mut shared, mut local) = (0, 0);
        let started = now_ms();
        for batch in 0..ALLOC_BATCHES {
            // Alternate which twin goes first.
            for twin in [batch % 2, 1 - batch % 2] {
                let before = allocations();
                for i in 0..ALLOC_BATCH {
                    let out = if twin == 0 {
                        alloc_shared(i).await
                    } else {
                        alloc_local(i).await
                    };
                    assert!(out.is_ok(), "a call of the allocation check failed");
                }
                let n = allocations() - before;
                if twin == 0 {
                    shared += n;
                } else {
                    local += n;
                }
            }
            tokio::time::sleep(Duration::from_millis(SYNC_MS / 4)).await;
        }
        let spanned = now_ms() - started;
        let connected = stormguard::__private::fleet_connected();
        println!(
            "alloc {shared} {local} {sanity} {spanned} {}",
            connected as u8
        );
    });
}

fn child() {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let id: u32 = env("FLEET_ID").parse().unwrap();
    let addr = env("FLEET_DOWNSTREAM");
    let run = Duration::from_millis(env("FLEET_RUN_MS").parse().unwrap());
    let every = Duration::from_millis(env("FLEET_EVERY_MS").parse().unwrap());
    let budget_only = env("FLEET_FN") == "budgeted";
    tracing_subscriber::fmt()
        .with_env_filter("stormguard=info")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if let Err(e) = stormguard::config::apply(&env("FLEET_CONFIG")) {
        println!("config-error {e}");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let addr: &'static str = Box::leak(addr.into_boxed_str());
        // Transitions of the breaker and of the link to Redis, as this process sees them.
        tokio::spawn(async {
            let breaker = stormguard::breaker("payments");
            let (mut state, mut link) = (None, None);
            loop {
                let s = breaker.state();
                if state != Some(s) {
                    println!("state {} {s:?}", now_ms());
                    state = Some(s);
                }
                let l = stormguard::__private::fleet_connected();
                if link != Some(l) {
                    println!("connected {} {}", now_ms(), l as u8);
                    link = Some(l);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let end = tokio::time::Instant::now() + run;
        let mut calls = Vec::new();
        let mut tick = tokio::time::interval(every);
        while tokio::time::Instant::now() < end {
            tick.tick().await;
            calls.push(tokio::spawn(async move {
                let started = now_ms();
                let r = if budget_only {
                    budgeted(addr, id).await
                } else {
                    guarded(addr, id).await
                };
                (started, r.is_ok(), now_ms() - started)
            }));
        }
        let (mut ok, mut failed, mut slowest) = (0, 0, 0);
        for c in calls {
            let (_, good, took) = c.await.unwrap();
            if good {
                ok += 1
            } else {
                failed += 1
            }
            slowest = slowest.max(took);
        }
        println!("done {ok} {failed} {slowest}");
    });
}

// ---------------------------------------------------------------------------------------
// The parent: Redis, the downstream, the processes, the measurements.
// ---------------------------------------------------------------------------------------

/// One process of the fleet, its output collected as it runs.
struct Proc {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

struct Spec<'a> {
    id: u32,
    downstream: &'a str,
    config: &'a str,
    run_ms: u64,
    every_ms: u64,
    function: &'a str,
    /// The roots the process trusts for `rediss://` (`SSL_CERT_FILE`; `None`: the system's).
    ca_file: Option<&'a str>,
}

fn spawn(spec: Spec<'_>) -> Proc {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("FLEET_CHILD", "1")
        .env("FLEET_ID", spec.id.to_string())
        .env("FLEET_DOWNSTREAM", spec.downstream)
        .env("FLEET_CONFIG", spec.config)
        .env("FLEET_RUN_MS", spec.run_ms.to_string())
        .env("FLEET_EVERY_MS", spec.every_ms.to_string())
        .env("FLEET_FN", spec.function)
        .env_remove("STORMGUARD_CONFIG")
        .env_remove("SSL_CERT_FILE")
        .envs(spec.ca_file.map(|f| ("SSL_CERT_FILE", f)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let collect = |pipe: Box<dyn std::io::Read + Send>| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let into = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                into.lock().unwrap().push(line);
            }
        });
        lines
    };
    let out = collect(Box::new(child.stdout.take().unwrap()));
    let err = collect(Box::new(child.stderr.take().unwrap()));
    Proc { child, out, err }
}

impl Proc {
    fn finish(mut self) -> Finished {
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50)); // the readers drain the pipes
        let out = self.out.lock().unwrap().clone();
        let err = self.err.lock().unwrap().clone();
        assert!(
            status.success(),
            "a fleet process failed ({status}):\n{}\n{}",
            out.join("\n"),
            err.join("\n")
        );
        Finished { out, err }
    }
}

struct Finished {
    out: Vec<String>,
    err: Vec<String>,
}

impl Finished {
    /// Times of the `kind` lines (`state`, `connected`) whose value is `value`.
    fn times(&self, kind: &str, value: &str) -> Vec<u64> {
        self.out
            .iter()
            .filter_map(|l| {
                let mut p = l.split(' ');
                (p.next() == Some(kind)).then_some(())?;
                let t = p.next()?.parse().ok()?;
                (p.next() == Some(value)).then_some(t)
            })
            .collect()
    }

    /// (ok, failed, slowest ms) from the `done` line.
    fn done(&self) -> (u64, u64, u64) {
        let line = self.out.iter().find(|l| l.starts_with("done ")).unwrap();
        let v: Vec<u64> = line[5..].split(' ').map(|x| x.parse().unwrap()).collect();
        (v[0], v[1], v[2])
    }

    fn warns(&self, containing: &str) -> usize {
        self.err
            .iter()
            .filter(|l| l.contains("WARN") && l.contains(containing))
            .count()
    }

    fn infos(&self, containing: &str) -> usize {
        self.err
            .iter()
            .filter(|l| l.contains("INFO") && l.contains(containing))
            .count()
    }
}

fn fleet_config(redis: &str, prefix: &str, sync_ms: u64) -> String {
    format!("[fleet]\nredis = \"{redis}\"\nshare = [\"payments\"]\nsync = \"{sync_ms}ms\"\nprefix = \"{prefix}\"\n")
}

const SYNC_MS: u64 = 100;

/// What one outage run measured.
#[derive(Debug)]
struct OutageRun {
    /// From the first breaker opening to each other process's opening (ms).
    open_lag: Vec<u64>,
    /// Requests after the last process stopped calling, per half-open window, until the end.
    probes_per_window: Vec<usize>,
    /// From the outage's end to the last process's first successful request (ms).
    recovery: u64,
    opened_by_fleet: usize,
}

/// N processes; process 0 calls every 5 ms, the others every 100 ms (so only process 0 can
/// reach `consecutive_failures` quickly); a 3 s outage after 1 s.
///
/// With `kill`, that Redis is killed 1.5 s into the outage, and the probes are counted from
/// then on (the local breakers' own).
fn outage_run(
    rt: &tokio::runtime::Runtime,
    config: &str,
    n: u32,
    kill: Option<&mut Redis>,
) -> OutageRun {
    let (down, failing) = switched_downstream(rt);
    let procs: Vec<Proc> = (0..n)
        .map(|id| {
            spawn(Spec {
                id,
                downstream: &down.addr,
                config,
                run_ms: 6000,
                every_ms: if id == 0 { 5 } else { 100 },
                function: "guarded",
                ca_file: None,
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let outage_start = now_ms();
    failing.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    let killed = kill.map(|redis| {
        redis.kill();
        now_ms()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let outage_end = now_ms();
    failing.store(false, Ordering::SeqCst);
    let done: Vec<Finished> = procs.into_iter().map(Proc::finish).collect();
    for (i, f) in done.iter().enumerate() {
        // Every call returned (the process waits for all), none held up by Redis: at most
        // its 3 attempts of at most 500 ms and their pauses.
        let (_, _, slowest) = f.done();
        assert!(slowest < 1700, "process {i}: a call took {slowest} ms");
        assert!(
            f.err.iter().all(|l| !l.contains("panicked")),
            "process {i} panicked"
        );
    }

    let opened = |f: &Finished| {
        f.times("state", "Open")
            .into_iter()
            .find(|t| *t >= outage_start)
            .expect("every process's breaker opens in the outage")
    };
    let first_open = done.iter().map(opened).min().unwrap();
    let open_lag: Vec<u64> = done[1..].iter().map(|f| opened(f) - first_open).collect();
    // Calls (first attempts) after every process opened: only probes, by half-open window.
    let all_open = first_open + open_lag.iter().copied().max().unwrap_or(0);
    let during = down.requests(killed.unwrap_or(all_open + 1), outage_end);
    let probe_times: Vec<u64> = during.iter().map(|r| r.0).collect();
    let after = down.requests(outage_end, u64::MAX);
    let recovery = (0..n)
        .map(|id| {
            after
                .iter()
                .find(|r| r.1 == id)
                .map_or(u64::MAX, |r| r.0 - outage_end)
        })
        .max()
        .unwrap();
    OutageRun {
        open_lag,
        probes_per_window: bursts(&probe_times, 50),
        recovery,
        opened_by_fleet: done.iter().map(|f| f.infos("opened by the fleet")).sum(),
    }
}

fn shared_breaker_stops_the_fleet(rt: &tokio::runtime::Runtime, redis: &Redis) {
    let n = 6;
    let shared = outage_run(
        rt,
        &fleet_config(&redis.url(), "t-outage", SYNC_MS),
        n,
        None,
    );
    let local = outage_run(rt, "", n, None);
    let mut doomed = Redis::on_free_port();
    doomed.start();
    let config = fleet_config(&doomed.url(), "t-killed", SYNC_MS);
    let killed = outage_run(rt, &config, n, Some(&mut doomed));
    println!("fleet: outage, {n} processes, sync {SYNC_MS} ms, half_open_probes 1");
    println!("  shared: {shared:?}");
    println!("  local:  {local:?}");
    println!(
        "  shared, Redis killed 1.5 s into the outage (probes counted from the kill): {killed:?}"
    );
    // Within `sync` + 100 ms of the first opening, every process has opened.
    assert!(
        shared.open_lag.iter().all(|l| *l <= SYNC_MS + 100),
        "open lag {:?}",
        shared.open_lag
    );
    assert!(shared.opened_by_fleet >= (n - 1) as usize);
    // The fleet's half-open probes: one per window, not one per process.
    assert!(!shared.probes_per_window.is_empty());
    assert!(
        shared.probes_per_window.iter().all(|p| *p <= 1),
        "probes per half-open window: {:?}",
        shared.probes_per_window
    );
    assert!(shared.recovery < 2000, "recovery {} ms", shared.recovery);
    // Redis gone mid-outage: the local breakers carry on and the fleet still recovers.
    assert!(
        killed.recovery < 2000,
        "recovery without Redis {} ms",
        killed.recovery
    );
}

/// Amplification of a shared budget (no breaker) against the same processes' local budgets.
fn shared_budget_bounds_the_fleet(rt: &tokio::runtime::Runtime, redis: &Redis) {
    let run = |config: &str| {
        let (down, failing) = switched_downstream(rt);
        let procs: Vec<Proc> = (0..5)
            .map(|id| {
                spawn(Spec {
                    id,
                    downstream: &down.addr,
                    config,
                    run_ms: 5000,
                    every_ms: 20,
                    function: "budgeted",
                    ca_file: None,
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2500));
        let start = now_ms();
        failing.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2000));
        let end = now_ms();
        failing.store(false, Ordering::SeqCst);
        for p in procs {
            p.finish();
        }
        let during = down.requests(start, end);
        let first = during.iter().filter(|r| r.2 <= 1).count() as f64;
        during.len() as f64 / first
    };
    let shared = run(&fleet_config(&redis.url(), "t-budget", SYNC_MS));
    let local = run("");
    println!("fleet: budget, 5 processes × 50 calls/s, 2 s outage, capacity 20: amplification shared {shared:.3}, local {local:.3}");
    assert!(shared <= 1.1, "shared amplification {shared:.3}");
    assert!(shared < local, "shared {shared:.3} vs local {local:.3}");
}

/// Redis down at start-up, paused, killed, restarted empty, slow (`DEBUG SLEEP`): every
/// process keeps serving,
/// falls back within about one `sync`, logs one `warn` per fall, and reconnects.
fn faults_fall_back_and_recover(rt: &tokio::runtime::Runtime) {
    let mut redis = Redis::on_free_port();
    let down = Downstream::start(rt, |_| false);
    let config = fleet_config(&redis.url(), "t-faults", SYNC_MS);
    let procs: Vec<Proc> = (0..3)
        .map(|id| {
            spawn(Spec {
                id,
                downstream: &down.addr,
                config: &config,
                run_ms: 10500,
                every_ms: 20,
                function: "guarded",
                ca_file: None,
            })
        })
        .collect();
    let t0 = now_ms();
    std::thread::sleep(Duration::from_millis(1000));
    redis.start();
    let started = now_ms();
    std::thread::sleep(Duration::from_millis(2000));
    redis.signal("-STOP");
    let stopped = now_ms();
    std::thread::sleep(Duration::from_millis(1000));
    redis.signal("-CONT");
    let resumed = now_ms();
    std::thread::sleep(Duration::from_millis(2000));
    redis.kill();
    let killed = now_ms();
    std::thread::sleep(Duration::from_millis(500));
    redis.start();
    let restarted = now_ms();
    std::thread::sleep(Duration::from_millis(1500));
    let slowed = now_ms();
    slow_for(&redis, 0.5).join().unwrap();
    let answering = now_ms();
    let done: Vec<Finished> = procs.into_iter().map(Proc::finish).collect();
    let mut report = BTreeMap::new();
    for (i, f) in done.iter().enumerate() {
        let ups = f.times("connected", "1");
        let downs = f.times("connected", "0");
        let first_after = |v: &[u64], t: u64| v.iter().copied().find(|x| *x >= t).map(|x| x - t);
        let up_after_start = first_after(&ups, started).expect("connects once Redis starts");
        let down_after_stop = first_after(&downs, stopped).expect("falls back when paused");
        let up_after_cont = first_after(&ups, resumed).expect("reconnects after SIGCONT");
        let down_after_kill = first_after(&downs, killed).expect("falls back when killed");
        let up_after_restart = first_after(&ups, restarted).expect("reconnects to an empty Redis");
        let down_after_slow = first_after(&downs, slowed).expect("falls back when Redis is slow");
        let up_after_slow = first_after(&ups, answering).expect("reconnects when it answers");
        let (ok, failed, slowest) = f.done();
        report.insert(
            i,
            (
                up_after_start,
                down_after_stop,
                up_after_cont,
                down_after_kill,
                up_after_restart,
                down_after_slow,
                up_after_slow,
                ok,
                failed,
                slowest,
            ),
        );
        // Paused, killed or slow, Redis is given up within one `sync` (a round every half
        // `sync`, each given half a `sync`), plus 100 ms for a busy machine's scheduling.
        assert!(
            down_after_stop <= SYNC_MS + 100,
            "SIGSTOP noticed after {down_after_stop} ms"
        );
        assert!(
            down_after_kill <= SYNC_MS + 100,
            "kill noticed after {down_after_kill} ms; process {i}'s warnings: {:#?}",
            f.err
                .iter()
                .filter(|l| l.contains("WARN"))
                .collect::<Vec<_>>()
        );
        assert!(
            down_after_slow <= SYNC_MS + 100,
            "a slow Redis noticed after {down_after_slow} ms"
        );
        assert!(up_after_start <= 2500 && up_after_cont <= 2500 && up_after_restart <= 2500);
        assert!(
            up_after_slow <= 2500,
            "back {up_after_slow} ms after Redis answers again"
        );
        // No call lost its result or waited on Redis: all succeeded, none slow.
        assert_eq!(failed, 0, "process {i}: failed calls");
        assert!(ok >= 400, "process {i}: {ok} calls");
        assert!(slowest < 100, "process {i}: a call took {slowest} ms");
        // One `warn` per fall (down at start, paused, killed, slow), one per return (started,
        // resumed, restarted, answering again).
        assert_eq!(f.warns("is unreachable"), 4, "process {i}: {:#?}", f.err);
        assert_eq!(f.warns("is back;"), 4, "process {i}: {:#?}", f.err);
        assert!(
            f.err.iter().all(|l| !l.contains("panicked")),
            "process {i} panicked"
        );
    }
    let _ = t0;
    println!("fleet: faults, 3 processes, sync {SYNC_MS} ms; per process (connected after start, fell back after SIGSTOP, reconnected after SIGCONT, fell back after kill, reconnected after restart, fell back when slow (DEBUG SLEEP 0.5), reconnected after it (ms), ok, failed, slowest call ms): {report:?}");
}

/// `budget.lua` run by hand (`redis-cli EVAL`) as process `me`'s round `round` would run it:
/// `(lease granted, fleet's tokens left)`, in milli-tokens. The budget: capacity 20 tokens,
/// 0.125 per success, no floor, a 10 s window, a start grant of 10; `successes` reported in
/// batch `round`, 4 tokens wanted.
fn budget_round(
    redis: &Redis,
    prefix: &str,
    me: &str,
    (left, round, answered, dropped, successes): (i64, u64, u64, i64, u64),
) -> (i64, i64) {
    let script = include_str!("../retry-runtime/src/fleet/budget.lua");
    let key = format!("{prefix}:budget:{{b}}");
    let keys = [
        key.clone(),
        format!("{key}:acked:{me}"),
        format!("{key}:leases"),
    ];
    let mut args: Vec<String> = [20_000, 125, 0, 10_000, 10_000, left, 4_000]
        .iter()
        .chain(&[round as i64, answered as i64, dropped])
        .map(i64::to_string)
        .collect();
    args.extend([me.to_owned(), "60000".to_owned()]);
    args.extend([round.to_string(), successes.to_string()]);
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "EVAL", script, "3"])
        .args(keys)
        .args(args)
        .output()
        .expect("redis-cli runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<i64> = text
        .lines()
        .map(|l| l.trim().parse().unwrap_or_else(|_| panic!("EVAL: {text}")))
        .collect();
    (v[0], v[1])
}

/// Issue 17: a lease is given back once, whatever round a fault cut: with rounds whose answer
/// is lost after Redis applied them, and rounds Redis never saw, what the fleet holds plus what
/// the process holds stays the start grant minus what the process spent.
fn a_cut_round_loses_no_lease(redis: &Redis) {
    let round =
        |r: (i64, u64, u64, i64)| budget_round(redis, "t-cut", "p", (r.0, r.1, r.2, r.3, 0));
    // Round 1, answered: the process holds 4 tokens, the fleet 6.
    let (held, fleet) = round((0, 1, 0, -1));
    assert_eq!((held, fleet), (4_000, 6_000));
    let spent = 1_000;
    // Round 2 gives back 3 (1 spent) and is applied, but its answer is lost: the process goes
    // local, dropping the 3 it holds; Redis lent it 4 it never received.
    let _lost = round((held - spent, 2, 1, -1));
    // Round 3, back: the fleet takes back the lost grant (not the 3 again) and lends 4 more.
    let (held, fleet) = round((0, 3, 1, 3_000));
    assert_eq!(
        held + fleet,
        10_000 - spent,
        "after a cut round Redis applied"
    );
    // Round 4 never reaches Redis; the process spent 0.5 of its 4 and drops 3.5 going local.
    let spent = spent + 500;
    let dropped = held - 500;
    // Round 5, back: the fleet's record still ends at round 3, so the 3.5 dropped return.
    let (held, fleet) = round((0, 5, 3, dropped));
    assert_eq!(
        held + fleet,
        10_000 - spent,
        "after a cut round Redis never saw"
    );
    // Round 6 applied and lost, then round 7 (back) applied and lost too, then round 8: each
    // lost grant returns once, the dropped lease not at all (round 6 gave it back already).
    let _lost = round((held, 6, 5, -1));
    let _lost = round((0, 7, 5, held));
    let (held, fleet) = round((0, 8, 5, held));
    assert_eq!(
        held + fleet,
        10_000 - spent,
        "after two cut rounds in a row"
    );
    println!("fleet: cut rounds: the fleet's tokens plus the process's lease stay the start grant minus what was spent (10 - 1.5 = {} tokens) after a round applied and lost, one never sent, and two lost in a row", (held + fleet) as f64 / 1000.0);
}

/// Issue 17: the fleet's burst is one `capacity`, leases included. Twenty processes (as
/// `budget.lua` sees them) each report 40 successes a round (5 tokens: the ledger would refill
/// at once) and want 4 tokens: what they hold plus what the fleet has left never passes the
/// capacity, 20 tokens.
fn the_fleets_leases_count_against_its_capacity(redis: &Redis) {
    let mut held = vec![0i64; 20];
    let mut most = 0;
    for round in 1..=3u64 {
        for p in 0..held.len() {
            let me = format!("p{p}");
            let (granted, fleet) =
                budget_round(redis, "t-cap", &me, (held[p], round, round - 1, -1, 40));
            held[p] = granted;
            most = most.max(fleet);
            let total: i64 = held.iter().sum::<i64>() + fleet;
            assert!(
                total <= 20_000,
                "round {round}, process {p}: leases {held:?} and {fleet} left make {total} milli-tokens, over the capacity"
            );
        }
    }
    let leased: i64 = held.iter().sum();
    println!(
        "fleet: burst: 20 processes wanting 4 tokens each, the ledger refilled every round: {} tokens leased, {} processes holding some, at most {} left in the ledger (capacity 20)",
        leased / 1000,
        held.iter().filter(|h| **h > 0).count(),
        most / 1000
    );
    assert_eq!(leased, 20_000, "the capacity, all leased out");
}

/// A fresh, empty directory of this test run's, for `what`'s files.
fn fresh_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stormguard-fleet-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `command` (`what`, in a failure's message) to its end; panics unless it succeeded.
fn run_ok(command: &mut Command, what: &str) -> std::process::Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what} does not run: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A Redis Cluster of three primaries of the test's own: free ports of 127.0.0.1, no
/// persistence, its node files in a fresh directory; stopped when dropped.
struct Cluster {
    ports: Vec<u16>,
    nodes: Vec<Child>,
    dir: std::path::PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = fresh_dir("cluster");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes = ports
            .iter()
            .map(|port| {
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                    .current_dir(&dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server starts")
            })
            .collect();
        let cluster = Cluster { ports, nodes, dir };
        for port in &cluster.ports {
            wait_listening(*port, "a cluster node");
        }
        let addrs: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        run_ok(
            Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addrs)
                .args(["--cluster-replicas", "0", "--cluster-yes"]),
            "redis-cli --cluster create",
        );
        let ok = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            cluster
                .cli(&["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
        });
        assert!(ok, "the cluster did not reach cluster_state:ok");
        cluster
    }

    /// The index of the node that serves `slot` (from `CLUSTER NODES`: `… 0-5460`).
    fn owner_of(&self, slot: u32) -> usize {
        let nodes = self.cli(&["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serves = fields.iter().skip(8).any(|range| {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            });
            if serves {
                let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
                return self.ports.iter().position(|p| *p == port).unwrap();
            }
        }
        panic!("no node serves slot {slot}: {nodes}");
    }

    fn kill(&mut self, node: usize) {
        let _ = self.nodes[node].kill();
        let _ = self.nodes[node].wait();
    }

    /// `redis-cli -c` (following redirections) on the first node.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &self.ports[0].to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Issue 17, a Redis Cluster (`redis = ["redis://…"]`, one seed node: the client finds the
/// others): the outage of `shared_breaker_stops_the_fleet`, four processes, shared through a
/// cluster of three primaries; the breaker's and budget's keys live on the node of their slot.
fn shared_through_a_cluster(rt: &tokio::runtime::Runtime) {
    let mut cluster = Cluster::start();
    let config = format!(
        "[fleet]\nredis = [\"redis://127.0.0.1:{}\"]\nshare = [\"payments\"]\nsync = \"{SYNC_MS}ms\"\nprefix = \"t-cluster\"\n",
        cluster.ports[0]
    );
    let n = 4;
    let run = outage_run(rt, &config, n, None);
    let slot = cluster.cli(&["CLUSTER", "KEYSLOT", "t-cluster:breaker:{payments}"]);
    let breaker_key = cluster.cli(&["EXISTS", "t-cluster:breaker:{payments}"]);
    let budget_key = cluster.cli(&["EXISTS", "t-cluster:budget:{payments}"]);
    println!(
        "fleet: cluster of 3 primaries, one seed given, {n} processes: {run:?}; the names' slot {}",
        slot.trim()
    );
    assert_eq!(
        breaker_key.trim(),
        "1",
        "the shared breaker's key in the cluster"
    );
    assert_eq!(
        budget_key.trim(),
        "1",
        "the shared budget's key in the cluster"
    );
    assert!(run.opened_by_fleet >= (n - 1) as usize, "{run:?}");
    assert!(
        run.open_lag.iter().all(|l| *l <= SYNC_MS + 100),
        "open lag {:?}",
        run.open_lag
    );
    assert!(
        !run.probes_per_window.is_empty() && run.probes_per_window.iter().all(|p| *p <= 1),
        "probes per half-open window: {:?}",
        run.probes_per_window
    );
    // The node of the names' slot killed (the others up): every process falls back within
    // one `sync` and every call still returns.
    let slot: u32 = slot.trim().parse().unwrap();
    let owner = cluster.owner_of(slot);
    let down = Downstream::start(rt, |_| false);
    let procs: Vec<Proc> = (0..2)
        .map(|id| {
            spawn(Spec {
                id,
                downstream: &down.addr,
                config: &config,
                run_ms: 2500,
                every_ms: 20,
                function: "guarded",
                ca_file: None,
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    cluster.kill(owner);
    let killed = now_ms();
    for (i, f) in procs.into_iter().map(Proc::finish).enumerate() {
        let (ok, failed, slowest) = f.done();
        let fell = f.times("connected", "0").into_iter().find(|t| *t >= killed);
        println!("fleet: cluster, the slot's node killed: process {i} fell back after {:?} ms; {ok} ok, {failed} failed, slowest {slowest} ms", fell.map(|t| t - killed));
        assert!(
            fell.is_some_and(|t| t - killed <= SYNC_MS + 100),
            "process {i} did not fall back within sync + 100 ms: {:#?}",
            f.err
        );
        assert!(
            ok > 0 && failed == 0 && slowest < 100,
            "process {i}: {ok} ok, {failed} failed, slowest {slowest} ms"
        );
    }
}

/// The files of a CA of the test's own and of a server certificate for 127.0.0.1 it signed
/// (made with `openssl`), in a fresh directory: (directory, CA certificate).
fn test_certificates() -> (std::path::PathBuf, String) {
    let dir = fresh_dir("tls");
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ],
        &["req", "-newkey", "rsa:2048", "-nodes"],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
        ],
    ];
    let rest: [&[&str]; 3] = [
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=stormguard test CA",
        ],
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    ];
    for (step, rest) in steps.iter().zip(rest) {
        run_ok(
            Command::new("openssl")
                .args(*step)
                .args(rest)
                .current_dir(&dir),
            &format!("openssl {step:?}"),
        );
    }
    let ca = dir.join("ca.pem").to_str().unwrap().to_owned();
    (dir, ca)
}

/// Issue 17: `rediss://` with credentials in the URL. A `redis-server` that speaks only TLS and
/// wants a password: with the test CA trusted, a process shares through it; with a wrong
/// password, or with only the system's roots (the certificate is really verified), it falls
/// back with a `warn`; the password reaches no log line in any case.
fn tls_and_credentials(rt: &tokio::runtime::Runtime) {
    if Command::new("openssl").arg("version").output().is_err() {
        if std::env::var_os("STORMGUARD_REDIS_TESTS").is_some() {
            panic!("STORMGUARD_REDIS_TESTS is set but openssl is not on PATH (apt-get install -y openssl)");
        }
        println!("fleet: tls skipped: openssl is not on PATH (it makes the test certificates)");
        return;
    }
    let (dir, ca) = test_certificates();
    let port = free_port();
    const PASSWORD: &str = "pw-7f3a9c-secret";
    let file = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let mut server = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
        ])
        .args(["--tls-ca-cert-file", &ca, "--tls-auth-clients", "no"])
        .args([
            "--requirepass",
            PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    wait_listening(port, "redis-server (TLS)");
    let down = Downstream::start(rt, |_| false);
    let run = |url: &str, prefix: &str, ca_file: Option<&str>| {
        let config = fleet_config(url, prefix, SYNC_MS);
        spawn(Spec {
            id: 0,
            downstream: &down.addr,
            config: &config,
            run_ms: 800,
            every_ms: 50,
            function: "guarded",
            ca_file,
        })
        .finish()
    };
    let url = |password: &str| format!("rediss://:{password}@127.0.0.1:{port}/0");
    let shared = run(&url(PASSWORD), "t-tls", Some(&ca));
    let wrong_password = run(&url("not-the-pw-41c2"), "t-tls-pw", Some(&ca));
    let untrusted = run(&url(PASSWORD), "t-tls-ca", None);
    let key_exists = Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            &ca,
            "-p",
            &port.to_string(),
            "--no-auth-warning",
        ])
        .args(["-a", PASSWORD, "EXISTS", "t-tls:breaker:{payments}"])
        .output()
        .expect("redis-cli runs");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let first_warn = |f: &Finished| {
        f.err
            .iter()
            .find(|l| l.contains("WARN"))
            .cloned()
            .unwrap_or_default()
    };
    println!(
        "fleet: tls: trusted CA and password: connected {:?}; wrong password: {}; system roots only: {}",
        shared.times("connected", "1"),
        first_warn(&wrong_password),
        first_warn(&untrusted)
    );
    for (what, f) in [
        ("shared", &shared),
        ("wrong password", &wrong_password),
        ("untrusted", &untrusted),
    ] {
        let (ok, failed, _) = f.done();
        assert!(ok > 0 && failed == 0, "{what}: {ok} ok, {failed} failed");
        for line in f.out.iter().chain(&f.err) {
            assert!(
                !line.contains(PASSWORD) && !line.contains("not-the-pw-41c2"),
                "{what}: a password in a log line: {line}"
            );
        }
    }
    // Connected (a handshake slower than `sync` on a busy machine may have cost a first try).
    assert!(
        !shared.times("connected", "1").is_empty(),
        "no sharing over TLS: {:#?}",
        shared.err
    );
    assert_eq!(
        String::from_utf8_lossy(&key_exists.stdout).trim(),
        "1",
        "the shared breaker's key"
    );
    assert!(
        shared.infos("through Redis at rediss://***@127.0.0.1") == 1,
        "{:#?}",
        shared.err
    );
    for (what, f) in [
        ("wrong password", &wrong_password),
        ("untrusted", &untrusted),
    ] {
        assert!(
            f.times("connected", "1").is_empty(),
            "{what}: shared anyway"
        );
        assert_eq!(f.warns("is unreachable"), 1, "{what}: {:#?}", f.err);
    }
}

/// Whether `key` exists in the test's Redis (one inline command on a plain socket).
fn redis_exists(redis: &Redis, key: &str) -> bool {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    s.write_all(format!("EXISTS {key}\r\n").as_bytes()).unwrap();
    let mut answer = [0u8; 4];
    s.read_exact(&mut answer).unwrap();
    &answer == b":1\r\n"
}

/// Issue 17: the success path of a shared name allocates nothing more than an unshared twin's
/// while the sync thread runs (a child process counting its calling thread's allocations).
fn shared_name_allocates_nothing_more(redis: &Redis) {
    let config = format!(
        "[fleet]\nredis = \"{}\"\nshare = [\"alloc_shared\"]\nsync = \"{SYNC_MS}ms\"\nprefix = \"t-alloc\"\n",
        redis.url()
    );
    let f = spawn(Spec {
        id: 0,
        downstream: "",
        config: &config,
        run_ms: 0,
        every_ms: 0,
        function: "alloc",
        ca_file: None,
    })
    .finish();
    let line = f
        .out
        .iter()
        .find(|l| l.starts_with("alloc "))
        .unwrap_or_else(|| {
            panic!(
                "no allocation counts:\n{}\n{}",
                f.out.join("\n"),
                f.err.join("\n")
            )
        });
    let v: Vec<u64> = line[6..].split(' ').map(|x| x.parse().unwrap()).collect();
    let (shared, local, sanity, spanned, connected) = (v[0], v[1], v[2], v[3], v[4]);
    let calls = ALLOC_BATCH * ALLOC_BATCHES;
    println!(
        "fleet: allocations on the calling thread over {calls} successful calls after 200 warm-up calls, sync {SYNC_MS} ms, the calls spread over {spanned} ms: shared name {shared}, unshared twin {local} (the counter saw {sanity} for one Vec)"
    );
    assert!(sanity >= 1, "the counting allocator counted nothing");
    assert_eq!(connected, 1, "no longer shared at the end of the calls");
    assert!(
        spanned >= 2 * SYNC_MS,
        "the calls spanned {spanned} ms, fewer than two sync rounds"
    );
    // The shared name really went through Redis, the twin did not.
    assert!(redis_exists(redis, "t-alloc:budget:{alloc_shared}"));
    assert!(!redis_exists(redis, "t-alloc:budget:{alloc_local}"));
    assert_eq!(
        shared, local,
        "a shared name's success path allocated {shared} times, its unshared twin's {local}"
    );
}

fn main() {
    if std::env::var_os("FLEET_CHILD").is_some() {
        if std::env::var("FLEET_FN").is_ok_and(|f| f == "alloc") {
            return alloc_child();
        }
        return child();
    }
    if !Redis::on_path() {
        if std::env::var_os("STORMGUARD_REDIS_TESTS").is_some() {
            panic!("STORMGUARD_REDIS_TESTS is set but redis-server is not on PATH (apt-get install -y redis-server)");
        }
        println!("fleet: skipped: redis-server is not on PATH (install it, or set STORMGUARD_REDIS_TESTS=1 to make its absence a failure)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut redis = Redis::on_free_port();
    redis.start();
    shared_breaker_stops_the_fleet(&rt, &redis);
    shared_budget_bounds_the_fleet(&rt, &redis);
    faults_fall_back_and_recover(&rt);
    shared_name_allocates_nothing_more(&redis);
    a_cut_round_loses_no_lease(&redis);
    the_fleets_leases_count_against_its_capacity(&redis);
    tls_and_credentials(&rt);
    shared_through_a_cluster(&rt);
    println!("fleet: 8 scenarios passed");
}
