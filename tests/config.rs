//! Live configuration (`stormguard::config`): reloads change the next call and not the one in
//! flight, the kill switch, manual breaker control, the environment layer, `current()`, and
//! every kind of bad input rejected whole, with file, line, column, key and advice.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use stormguard::{config, retry, BreakerState, GuardError};
use tokio::time::Instant;

/// The configuration is process-wide: the tests of this file take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

stormguard::breakers! {
    cfg_pay { consecutive_failures: 2, open_for: "10s" }
}

stormguard::budgets! {
    cfg_budget { capacity: 50 }
    // Enough for every retry of these tests: the policy alone decides the attempts.
    cfg_free { capacity: 100000, min_per_sec: 100000 }
}

#[derive(Debug)]
enum Error {
    Down,
    Guard(GuardError),
}
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl From<GuardError> for Error {
    fn from(e: GuardError) -> Self {
        Error::Guard(e)
    }
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

/// Always fails: the attempts and delays are the policy's.
#[retry(
    attempts = 3,
    base = "100ms",
    max = "10s",
    jitter = "none",
    backoff = "fixed",
    budget = "cfg_free",
    name = "cfg::flaky"
)]
async fn flaky() -> Result<(), Error> {
    FLAKY_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(Error::Down)
}

static PAY_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(
    attempts = 1,
    breaker = "cfg_pay",
    budget = "cfg_budget",
    name = "cfg::pay"
)]
async fn pay(ok: bool) -> Result<(), Error> {
    PAY_CALLS.fetch_add(1, Ordering::SeqCst);
    if ok {
        Ok(())
    } else {
        Err(Error::Down)
    }
}

#[retry(attempts = 2, timeout = "1s", name = "cfg::timed")]
async fn timed() -> Result<(), Error> {
    Ok(())
}

#[retry(attempts = 2, base = "0ms", budget = "cfg_free", name = "cfg::race")]
async fn race(attempts: &AtomicU32) -> Result<(), Error> {
    attempts.fetch_add(1, Ordering::Relaxed);
    tokio::task::yield_now().await;
    Err(Error::Down)
}

/// Runs `f`, counting the attempts `FLAKY_CALLS` sees and the time the call took.
async fn timed_flaky() -> (u32, Duration) {
    let before = FLAKY_CALLS.load(Ordering::SeqCst);
    let start = Instant::now();
    let _ = flaky().await;
    (FLAKY_CALLS.load(Ordering::SeqCst) - before, start.elapsed())
}

/// The configuration's values without the origin comments.
fn values(toml: &str) -> Vec<String> {
    toml.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split("  #").next().unwrap().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_reload_changes_the_next_call_and_not_the_one_in_flight() {
    let _turn = TURN.lock().await;
    config::apply("").unwrap();
    let in_flight = tokio::spawn(timed_flaky());
    // Attempt 1 has failed; the call sleeps its 100ms before attempt 2.
    tokio::time::sleep(Duration::from_millis(10)).await;
    config::apply("[retry.\"cfg::flaky\"]\nattempts = 5\nbase = \"1s\"\n").unwrap();
    let (attempts, took) = in_flight.await.unwrap();
    assert_eq!(
        (attempts, took),
        (3, Duration::from_millis(200)),
        "the policy it started with"
    );
    let (attempts, took) = timed_flaky().await;
    assert_eq!(
        (attempts, took),
        (5, Duration::from_secs(4)),
        "the reloaded policy"
    );
    // Removing the keys restores the compiled values.
    config::apply("").unwrap();
    assert_eq!(timed_flaky().await, (3, Duration::from_millis(200)));
}

#[tokio::test(start_paused = true)]
async fn the_kill_switch_stops_retries_at_once_and_comes_back() {
    let _turn = TURN.lock().await;
    config::apply("[retry.\"cfg::flaky\"]\nenabled = false\n").unwrap();
    assert_eq!(timed_flaky().await, (1, Duration::ZERO));
    assert!(config::current().contains("enabled = false  # <text>:2"));
    config::apply("[retry.\"cfg::flaky\"]\nenabled = true\n").unwrap();
    assert_eq!(
        timed_flaky().await.0,
        3,
        "{:?}\n{}",
        stormguard::stats().operation("cfg::flaky"),
        config::current()
    );
    config::apply("").unwrap();
}

#[tokio::test(start_paused = true)]
async fn force_open_fails_fast_and_auto_resumes_the_state_machine() {
    let _turn = TURN.lock().await;
    let breaker = stormguard::breaker("cfg_pay");
    config::apply("[breaker.cfg_pay]\nforce = \"open\"\n").unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
    let before = PAY_CALLS.load(Ordering::SeqCst);
    let err = pay(true).await.unwrap_err();
    assert!(
        matches!(err, Error::Guard(GuardError::BreakerOpen { .. })),
        "{err:?}"
    );
    assert_eq!(
        PAY_CALLS.load(Ordering::SeqCst),
        before,
        "the downstream was not called"
    );
    // Long after `open_for`, still open: forced.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(pay(true).await.is_err());
    // Back to automatic: the next call is a probe, its success closes the breaker.
    config::apply("[breaker.cfg_pay]\nforce = \"auto\"\n").unwrap();
    pay(true).await.unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    // Forced closed: failures are counted but never open it.
    config::apply("[breaker.cfg_pay]\nforce = \"closed\"\n").unwrap();
    for _ in 0..5 {
        let _ = pay(false).await;
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    // Removing `force` hands back to the state machine: two failures in a row open it.
    config::apply("").unwrap();
    let _ = pay(false).await;
    let _ = pay(false).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    breaker.force(stormguard::Force::Closed);
    breaker.force(stormguard::Force::Auto);
}

#[tokio::test]
async fn breaker_and_budget_limits_change_and_their_state_carries_over() {
    let _turn = TURN.lock().await;
    let breaker = stormguard::breaker("cfg_pay");
    let failures_before = breaker.counts().failures;
    config::apply("[breaker.cfg_pay]\nopen_for = \"30s\"\nconsecutive_failures = 7\n[budget.cfg_budget]\nratio = 0.5\n").unwrap();
    assert_eq!(breaker.config().open_for(), Duration::from_secs(30));
    assert_eq!(breaker.config().consecutive_failures(), Some(7));
    assert_eq!(
        breaker.counts().failures,
        failures_before,
        "counts carry over"
    );
    let now = config::current();
    assert!(now.contains("open_for = \"30s\"  # <text>:2"), "{now}");
    assert!(now.contains("ratio = 0.5  # <text>:5"), "{now}");
    config::apply("").unwrap();
    assert_eq!(
        breaker.config().open_for(),
        Duration::from_secs(10),
        "compiled again"
    );
    assert!(config::current().contains("open_for = \"10s\"  # block"));
}

#[tokio::test]
async fn current_round_trips_through_apply() {
    let _turn = TURN.lock().await;
    config::apply("[retry.\"cfg::flaky\"]\nattempts = 4\n[breaker.cfg_pay]\nmin_calls = 30\n")
        .unwrap();
    let first = config::current();
    config::apply(&first).unwrap();
    let second = config::current();
    assert_eq!(values(&first), values(&second));
    assert!(first.contains("attempts = 4  # <text>:2"));
    assert!(second.contains("attempts = 4  # <text>:"));
    assert!(
        first.contains("[retry.\"cfg::timed\"]\nattempts = 2  # attribute"),
        "{first}"
    );
    assert!(first.contains("timeout = \"1s\"  # attribute"), "{first}");
    config::apply("").unwrap();
}

#[tokio::test]
async fn the_environment_overrides_the_file() {
    let _turn = TURN.lock().await;
    // SAFETY (edition 2021: safe): the tests of this file take turns.
    std::env::set_var("STORMGUARD__RETRY__CFG__FLAKY__ATTEMPTS", "6");
    std::env::set_var("STORMGUARD__BREAKER__CFG_PAY__OPEN_FOR", "42s");
    let applied = config::apply("[retry.\"cfg::flaky\"]\nattempts = 4\n");
    let now = config::current();
    let bad = {
        std::env::set_var("STORMGUARD__RETRY__CFG__FLAKI__ATTEMPTS", "2");
        let r = config::apply("");
        std::env::remove_var("STORMGUARD__RETRY__CFG__FLAKI__ATTEMPTS");
        r
    };
    std::env::remove_var("STORMGUARD__RETRY__CFG__FLAKY__ATTEMPTS");
    std::env::remove_var("STORMGUARD__BREAKER__CFG_PAY__OPEN_FOR");
    applied.unwrap();
    assert!(
        now.contains("attempts = 6  # env STORMGUARD__RETRY__CFG__FLAKY__ATTEMPTS"),
        "{now}"
    );
    assert!(
        now.contains("open_for = \"42s\"  # env STORMGUARD__BREAKER__CFG_PAY__OPEN_FOR"),
        "{now}"
    );
    let bad = bad.unwrap_err().to_string();
    assert!(
        bad.contains("STORMGUARD__RETRY__CFG__FLAKI__ATTEMPTS"),
        "{bad}"
    );
    assert!(bad.contains("did you mean `CFG__FLAKY`?"), "{bad}");
    config::apply("").unwrap();
    assert!(config::current().contains("attempts = 3  # default"));
}

/// Each bad text: the problem's (line, column, key) and a piece of its advice; nothing applied.
#[tokio::test]
async fn bad_input_is_rejected_whole_with_its_place_and_advice() {
    let _turn = TURN.lock().await;
    config::apply("[retry.\"cfg::flaky\"]\nattempts = 4\n").unwrap();
    let before = config::current();
    let cases: &[(&str, (usize, usize, &str), &str)] = &[
        (
            "[retry.\"cfg::flaky\"\nattempts = 2\n",
            (1, 20, ""),
            "not valid TOML",
        ),
        (
            "[retri.\"cfg::flaky\"]\nattempts = 2\n",
            (1, 2, "retri"),
            "did you mean `retry`?",
        ),
        (
            "[retry.\"cfg::flaky\"]\natempts = 2\n",
            (2, 1, "atempts"),
            "did you mean `attempts`?",
        ),
        (
            "[retry.\"cfg::flakey\"]\nattempts = 2\n",
            (2, 1, "cfg::flakey"),
            "did you mean `cfg::flaky`?",
        ),
        (
            "[breaker.cfg_pya]\nopen_for = \"1s\"\n",
            (2, 1, "cfg_pya"),
            "did you mean `cfg_pay`?",
        ),
        (
            "[budget.cfg_budgte]\nratio = 0.1\n",
            (2, 1, "cfg_budgte"),
            "did you mean `cfg_budget`?",
        ),
        (
            "[retry.\"cfg::flaky\"]\nbase = 200\n",
            (2, 8, "base"),
            "base = \"200ms\"",
        ),
        (
            "[retry.\"cfg::flaky\"]\nbase = \"200\"\n",
            (2, 8, "base"),
            "the unit is missing",
        ),
        (
            "[retry.\"cfg::flaky\"]\nbase = \"3s\"\nmax = \"1s\"\n",
            (3, 1, "max"),
            "write max = \"3s\" or more",
        ),
        (
            "[retry.\"cfg::flaky\"]\nattempts = 0\n",
            (2, 12, "attempts"),
            "enabled = false",
        ),
        (
            "[budget.cfg_budget]\nratio = -0.5\n",
            (2, 9, "ratio"),
            "0 or more",
        ),
        (
            "[budget.cfg_budget]\nratio = \"lots\"\n",
            (2, 9, "ratio"),
            "leave out the quotes",
        ),
        (
            "[retry.\"cfg::flaky\"]\nattempts = \"5\"\n",
            (2, 12, "attempts"),
            "write attempts = 5",
        ),
        (
            "[retry.\"cfg::flaky\"]\ntimeout = \"1s\"\n",
            (2, 1, "timeout"),
            "add `timeout = \"…\"` to its #[retry] attribute",
        ),
        (
            "[breaker.cfg_pay]\nforce = \"shut\"\n",
            (2, 9, "force"),
            "force = \"open\"",
        ),
        (
            "[breaker.cfg_pay]\nwindow = \"10s\"\n",
            (2, 1, "window"),
            "breakers!",
        ),
        (
            "attempts = 2\n",
            (1, 1, "attempts"),
            "under a section header",
        ),
        // One good section and one bad: nothing of it is applied.
        (
            "[retry.\"cfg::flaky\"]\nattempts = 9\n[breaker.cfg_pay]\nopen_for = \"soon\"\n",
            (4, 12, "open_for"),
            "a number must come before each unit",
        ),
    ];
    for (text, (line, column, key), advice) in cases {
        let err = config::apply(text).expect_err(text);
        let p = &err.problems()[0];
        assert_eq!(
            (p.line(), p.column(), p.key()),
            (*line, *column, *key),
            "{text:?}: {err}"
        );
        assert!(err.to_string().contains(advice), "{text:?}: {err}");
        assert_eq!(
            config::current(),
            before,
            "{text:?} changed the configuration"
        );
    }
    // An empty file is valid: no overrides.
    config::apply("").unwrap();
    assert!(config::current().contains("[retry.\"cfg::flaky\"]\nattempts = 3  # default"));
}

/// `[fleet]`'s bad input (feature `redis`): rejected whole, at its line, with what to write,
/// and a Redis URL's credentials never repeated in a message.
#[cfg(feature = "redis")]
#[tokio::test]
async fn bad_fleet_sections_are_rejected_whole_with_advice() {
    let _turn = TURN.lock().await;
    config::apply("").unwrap();
    let before = config::current();
    let cases: &[(&str, (usize, &str), &str)] = &[
        (
            "[fleet]\nredis = \"http://admin:hunter2@cache:6379\"\nshare = [\"cfg_pay\"]\n",
            (2, "redis"),
            "write redis = \"redis://host:6379/0\"",
        ),
        (
            "[fleet]\nredis = \"redis://127.0.0.1:1/0\"\nshare = [\"cfg_pya\"]\n",
            (3, "share"),
            "did you mean `cfg_pay`?",
        ),
        (
            "[fleet]\nredis = \"redis://127.0.0.1:1/0\"\nshare = \"cfg_pay\"\n",
            (3, "share"),
            "share = [\"payments\"]",
        ),
        (
            "[fleet]\nredis = \"redis://127.0.0.1:1/0\"\nsync = \"1ms\"\n",
            (3, "sync"),
            "between 10ms and 60s",
        ),
        (
            "[fleet]\nshare = [\"cfg_pay\"]\n",
            (2, "redis"),
            "`[fleet]` needs the Redis",
        ),
        (
            "[fleet]\nurl = \"redis://127.0.0.1:1/0\"\n",
            (2, "url"),
            "unknown key `url` in a `[fleet]` section",
        ),
        (
            "[fleet]\nredis = \"redis://127.0.0.1:1/0\"\nprefix = \"two words\"\n",
            (3, "prefix"),
            "without spaces",
        ),
        // A Redis Cluster's seed nodes: URLs as strings, TCP ones, at least one.
        (
            "[fleet]\nshare = [\"cfg_pay\"]\nredis = [\"redis://admin:hunter2@10.0.0.1:7000\", 7001]\n",
            (3, "redis"),
            "each seed node of a Redis Cluster is a URL as a string",
        ),
        (
            "[fleet]\nredis = [\"unix:///run/redis.sock\"]\n",
            (2, "redis"),
            "not the URL of a Redis Cluster's node",
        ),
        (
            "[fleet]\nredis = []\n",
            (2, "redis"),
            "at least one seed node",
        ),
        // A good breaker change beside a bad fleet: neither applies.
        (
            "[breaker.cfg_pay]\nopen_for = \"1s\"\n[fleet]\nredis = \"redis://127.0.0.1:1/0\"\nshare = [\"nope\"]\n",
            (5, "share"),
            "no circuit breaker or retry budget",
        ),
    ];
    for (text, (line, key), advice) in cases {
        let err = config::apply(text).expect_err(text);
        let p = &err.problems()[0];
        assert_eq!((p.line(), p.key()), (*line, *key), "{text:?}: {err}");
        assert!(err.to_string().contains(advice), "{text:?}: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(
            config::current(),
            before,
            "{text:?} changed the configuration"
        );
    }
}

/// Without feature `redis`, `[fleet]` says which feature to enable instead of half-working.
#[cfg(not(feature = "redis"))]
#[tokio::test]
async fn a_fleet_section_without_the_redis_feature_says_what_to_enable() {
    let _turn = TURN.lock().await;
    let err = config::apply("[fleet]\nredis = \"redis://127.0.0.1:6379/0\"\n").unwrap_err();
    assert_eq!(err.problems()[0].line(), 1);
    assert!(err.to_string().contains("feature `redis`"), "{err}");
}

/// Reloads racing 10,000 calls: every call runs one whole version from start to end (2 or 4
/// attempts, never a mix).
#[test]
fn reloads_racing_many_calls_never_tear_a_policy() {
    let _turn = TURN.blocking_lock();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reloader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let attempts = if n % 2 == 0 { 4 } else { 2 };
                config::apply(&format!("[retry.\"cfg::race\"]\nattempts = {attempts}\n")).unwrap();
                n += 1;
            }
            n
        })
    };
    let seen = rt.block_on(async {
        let tasks: Vec<_> = (0..10_000)
            .map(|_| {
                tokio::spawn(async {
                    let attempts = AtomicU32::new(0);
                    let _ = race(&attempts).await;
                    attempts.load(Ordering::Relaxed)
                })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen
    });
    stop.store(true, Ordering::Relaxed);
    let reloads = reloader.join().unwrap();
    let torn: Vec<_> = seen.iter().filter(|n| **n != 2 && **n != 4).collect();
    assert!(
        torn.is_empty(),
        "{:?}: {} calls mixed two versions, e.g. {:?}",
        stormguard::stats().operation("cfg::race"),
        torn.len(),
        &torn[..torn.len().min(5)]
    );
    let fours = seen.iter().filter(|n| **n == 4).count();
    println!("{reloads} reloads; {fours} of 10000 calls ran the 4-attempt version");
    assert!(reloads > 1, "the reloads raced the calls");
    config::apply("").unwrap();
}
