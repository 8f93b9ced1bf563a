//! Hedged attempts (`hedge = "…"`) on tokio's paused clock: when a hedge starts, which attempt
//! wins, what is dropped and when, and what the budget and the breaker allow.

mod common;

use common::Recorder;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;
use stormguard::retry;
use tokio::time::{sleep, Instant};

/// A downstream whose attempts take the latencies given, in order, and record when each one
/// started and was dropped.
struct Downstream {
    latencies: Vec<(u64, Result<u32, &'static str>)>,
    calls: AtomicU32,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
    log: Mutex<Vec<String>>,
    origin: Instant,
}

impl Downstream {
    fn new(latencies: &[(u64, Result<u32, &'static str>)]) -> Downstream {
        Downstream {
            latencies: latencies.to_vec(),
            calls: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
            log: Mutex::new(Vec::new()),
            origin: Instant::now(),
        }
    }

    fn at(&self) -> u128 {
        self.origin.elapsed().as_millis()
    }

    async fn call(&self) -> Result<u32, &'static str> {
        let n = self.calls.fetch_add(1, SeqCst);
        let attempt = stormguard::attempt();
        let (ms, outcome) = self.latencies[n as usize % self.latencies.len()];
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(now, SeqCst);
        self.log
            .lock()
            .unwrap()
            .push(format!("start {attempt} at {}", self.at()));
        struct Probe<'a>(&'a Downstream, u32, bool);
        impl Drop for Probe<'_> {
            fn drop(&mut self) {
                self.0.in_flight.fetch_sub(1, SeqCst);
                let what = if self.2 { "end" } else { "drop" };
                let line = format!("{what} {} at {}", self.1, self.0.at());
                self.0.log.lock().unwrap().push(line);
            }
        }
        let mut probe = Probe(self, attempt, false);
        sleep(Duration::from_millis(ms)).await;
        probe.2 = true;
        outcome
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[retry(attempts = 3, hedge = "50ms", name = "hedge::fixed")]
async fn fixed(d: &Downstream) -> Result<u32, &'static str> {
    d.call().await
}

#[retry(attempts = 3, hedge = "50ms", name = "hedge::counted")]
async fn counted(d: &Downstream) -> Result<u32, &'static str> {
    d.call().await
}

#[tokio::test(start_paused = true)]
async fn the_hedge_starts_at_the_delay_and_the_loser_is_dropped_when_the_winner_returns() {
    let d = Downstream::new(&[(500, Ok(1)), (20, Ok(2))]);
    assert_eq!(counted(&d).await, Ok(2));
    assert_eq!(
        d.log(),
        [
            "start 1 at 0",
            "start 2 at 50",
            "end 2 at 70",
            "drop 1 at 70"
        ]
    );
    let stats = stormguard::stats();
    let op = stats.operation("hedge::counted").unwrap();
    assert_eq!(
        (op.hedges, op.hedge_wins, op.attempts, op.calls),
        (1, 1, 2, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_attempt_before_the_delay_starts_no_hedge() {
    let d = Downstream::new(&[(10, Ok(1))]);
    assert_eq!(fixed(&d).await, Ok(1));
    assert_eq!(d.log(), ["start 1 at 0", "end 1 at 10"]);
}

#[retry(attempts = 3, hedge = "50ms", name = "hedge::never_more")]
async fn never_more(d: &Downstream) -> Result<u32, &'static str> {
    d.call().await
}

#[tokio::test(start_paused = true)]
async fn never_more_attempts_in_flight_than_attempts_allows() {
    let d = Downstream::new(&[(1_000, Ok(1)), (1_000, Ok(2)), (1_000, Ok(3)), (1, Ok(4))]);
    assert_eq!(never_more(&d).await, Ok(1));
    assert_eq!(d.calls.load(SeqCst), 3);
    assert_eq!(d.max_in_flight.load(SeqCst), 3);
    let log = d.log();
    assert_eq!(
        &log[..3],
        ["start 1 at 0", "start 2 at 50", "start 3 at 100"]
    );
    assert_eq!(
        &log[3..],
        ["end 1 at 1000", "drop 2 at 1000", "drop 3 at 1000"]
    );
}

#[derive(Debug, PartialEq)]
enum Failure {
    Busy,
    NotFound,
}

impl stormguard::Classify for Failure {
    fn is_transient(&self) -> bool {
        *self == Failure::Busy
    }
}

struct Scripted {
    d: Downstream,
}

impl Scripted {
    async fn call(&self) -> Result<u32, Failure> {
        match self.d.call().await {
            Ok(v) => Ok(v),
            Err("busy") => Err(Failure::Busy),
            Err(_) => Err(Failure::NotFound),
        }
    }
}

#[retry(attempts = 3, hedge = "50ms", name = "hedge::permanent")]
async fn permanent(s: &Scripted) -> Result<u32, Failure> {
    s.call().await
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_ends_the_call_and_drops_the_others() {
    let s = Scripted {
        d: Downstream::new(&[(500, Ok(1)), (30, Err("missing"))]),
    };
    assert_eq!(permanent(&s).await, Err(Failure::NotFound));
    assert_eq!(
        s.d.log(),
        [
            "start 1 at 0",
            "start 2 at 50",
            "end 2 at 80",
            "drop 1 at 80"
        ]
    );
}

#[retry(attempts = 3, hedge = "50ms", name = "hedge::transient")]
async fn transient(s: &Scripted) -> Result<u32, Failure> {
    s.call().await
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_starts_the_next_attempt_at_once() {
    let s = Scripted {
        d: Downstream::new(&[(10, Err("busy")), (10, Ok(2))]),
    };
    assert_eq!(transient(&s).await, Ok(2));
    assert_eq!(
        s.d.log(),
        [
            "start 1 at 0",
            "end 1 at 10",
            "start 2 at 10",
            "end 2 at 20"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_drops_every_attempt_in_flight() {
    let d = Downstream::new(&[(1_000, Ok(1))]);
    let call = fixed(&d);
    let _ = tokio::time::timeout(Duration::from_millis(120), call).await;
    assert_eq!(d.in_flight.load(SeqCst), 0);
    assert_eq!(
        d.log(),
        [
            "start 1 at 0",
            "start 2 at 50",
            "start 3 at 100",
            "drop 1 at 120",
            "drop 2 at 120",
            "drop 3 at 120"
        ]
    );
}

#[retry(attempts = 2, hedge = "p95", name = "hedge::p95")]
async fn p95(d: &Downstream) -> Result<u32, &'static str> {
    d.call().await
}

#[tokio::test(start_paused = true)]
async fn the_p95_delay_follows_a_shifting_latency_distribution() {
    // Before 100 measured attempts: no hedge at all, however slow.
    let d = Downstream::new(&[(10, Ok(1))]);
    for _ in 0..99 {
        p95(&d).await.unwrap();
    }
    let slow = Downstream::new(&[(1_000, Ok(1))]);
    p95(&slow).await.unwrap();
    assert_eq!(slow.calls.load(SeqCst), 1, "hedged before enough samples");
    for _ in 0..300 {
        p95(&d).await.unwrap();
    }
    // Now p95 ≈ 10 ms: a 30 ms attempt gets a hedge at about 10 ms.
    let hedged = Downstream::new(&[(30, Ok(1)), (30, Ok(2))]);
    p95(&hedged).await.unwrap();
    let log = hedged.log();
    assert_eq!(log[1], "start 2 at 11", "{log:?}");
    // The distribution shifts to 40 ms: after 1,100 attempts at 40 ms, a 30 ms attempt no
    // longer gets a hedge.
    let d40 = Downstream::new(&[(40, Ok(1))]);
    for _ in 0..1_100 {
        p95(&d40).await.unwrap();
    }
    let calm = Downstream::new(&[(30, Ok(1)), (30, Ok(2))]);
    p95(&calm).await.unwrap();
    assert_eq!(calm.calls.load(SeqCst), 1, "{:?}", calm.log());
}

#[derive(Debug)]
enum CallError {
    Guard(stormguard::GuardError),
    Downstream,
}

impl From<stormguard::GuardError> for CallError {
    fn from(e: stormguard::GuardError) -> Self {
        CallError::Guard(e)
    }
}

#[retry(
    attempts = 3,
    hedge = "50ms",
    timeout = "80ms",
    name = "hedge::timeout"
)]
async fn with_timeout(d: &Downstream) -> Result<u32, CallError> {
    d.call().await.map_err(|_| CallError::Downstream)
}

#[tokio::test(start_paused = true)]
async fn timeout_applies_to_each_attempt() {
    let d = Downstream::new(&[(1_000, Ok(1)), (1_000, Ok(2)), (1_000, Ok(3))]);
    let err = with_timeout(&d).await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Guard(stormguard::GuardError::Timeout { .. })
        ),
        "{err:?}"
    );
    // 1 starts at 0, 2 at 50 (hedge), 1 times out at 80 and 3 starts at once; 2 times out at
    // 130, 3 at 160: the call ends then, with the last timeout.
    assert_eq!(
        d.log(),
        [
            "start 1 at 0",
            "start 2 at 50",
            "drop 1 at 80",
            "start 3 at 80",
            "drop 2 at 130",
            "drop 3 at 160"
        ]
    );
}

// Two successes deposit 2 × 0.5 = the one token of `capacity`; nothing else funds it.
stormguard::budgets! {
    hedge_one_token { capacity: 1, ratio: 0.5, min_per_sec: 0 }
}

#[retry(
    attempts = 3,
    hedge = "50ms",
    budget = "hedge_one_token",
    name = "hedge::empty_budget"
)]
async fn on_one_token(d: &Downstream) -> Result<u32, &'static str> {
    d.call().await
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_skips_the_hedge_and_never_cancels_what_runs() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let fast = Downstream::new(&[(10, Ok(0))]);
    for _ in 0..2 {
        assert_eq!(on_one_token(&fast).await, Ok(0));
    }
    // The one token pays for this call's hedge (which wins); its success deposits only half
    // a token back.
    let funded = Downstream::new(&[(500, Ok(1)), (10, Ok(2))]);
    assert_eq!(on_one_token(&funded).await, Ok(2));
    assert_eq!(
        funded.log(),
        [
            "start 1 at 0",
            "start 2 at 50",
            "end 2 at 60",
            "drop 1 at 60"
        ]
    );
    // Now the budget is empty: no hedge, and the slow first attempt runs to its end (not
    // dropped) and its result is the call's.
    let slow = Downstream::new(&[(500, Ok(1)), (10, Ok(2))]);
    assert_eq!(on_one_token(&slow).await, Ok(1));
    assert_eq!(slow.log(), ["start 1 at 0", "end 1 at 500"]);
    assert_eq!(slow.calls.load(SeqCst), 1);
    let stats = stormguard::stats();
    let op = stats.operation("hedge::empty_budget").unwrap();
    assert_eq!(
        (op.calls, op.attempts, op.hedges, op.hedge_wins),
        (4, 5, 1, 1)
    );
    assert_eq!(op.total_give_ups(), 0);
    let budget = stats
        .budgets
        .iter()
        .find(|b| b.budget == "hedge_one_token")
        .unwrap();
    assert_eq!(budget.granted, 1);
    // Refused at each hedge delay while attempt 1 ran: 50, 100, …, 450 ms.
    assert!(budget.refused >= 1, "{budget:?}");
    let skipped: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| e.message().starts_with("hedge skipped"))
        .collect();
    assert!(!skipped.is_empty());
    assert_eq!(skipped.len() as u64, budget.refused, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .all(|e| e.get("reason") == Some("budget") && e.get("hedge_attempt") == Some("2")),
        "{skipped:?}"
    );
}

stormguard::breakers! {
    hedge_mid_call { consecutive_failures: 2, open_for: "10s" }
}

#[retry(
    attempts = 4,
    hedge = "50ms",
    breaker = "hedge_mid_call",
    name = "hedge::breaker"
)]
async fn behind_breaker(d: &Downstream) -> Result<u32, CallError> {
    d.call().await.map_err(|_| CallError::Downstream)
}

/// Another caller of the same downstream, whose failures open the breaker.
#[retry(
    attempts = 1,
    breaker = "hedge_mid_call",
    name = "hedge::breaker_opener"
)]
async fn failing_neighbour() -> Result<u32, CallError> {
    Err(CallError::Downstream)
}

#[tokio::test(start_paused = true)]
async fn a_breaker_opening_mid_call_stops_new_hedges() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let breaker = stormguard::breaker("hedge_mid_call");
    let d = Downstream::new(&[(500, Ok(1)), (1_000, Ok(2)), (10, Ok(3)), (10, Ok(4))]);
    let opener = async {
        // Attempt 2 (the hedge at 50 ms) runs; at 70 ms two failures elsewhere open the
        // breaker, before the next hedge delay (100 ms).
        sleep(Duration::from_millis(70)).await;
        for _ in 0..2 {
            assert!(matches!(
                failing_neighbour().await,
                Err(CallError::Downstream)
            ));
        }
        assert_eq!(breaker.state(), stormguard::BreakerState::Open);
        d.at()
    };
    let (result, opened_at) = tokio::join!(behind_breaker(&d), opener);
    assert_eq!(opened_at, 70);
    // No hedge after the opening; attempt 1 was not dropped and its success is the call's;
    // attempt 2 (started before) is dropped only when attempt 1 wins.
    assert!(matches!(result, Ok(1)), "{result:?}");
    assert_eq!(d.calls.load(SeqCst), 2);
    assert_eq!(
        d.log(),
        [
            "start 1 at 0",
            "start 2 at 50",
            "end 1 at 500",
            "drop 2 at 500"
        ]
    );
    let stats = stormguard::stats();
    let op = stats.operation("hedge::breaker").unwrap();
    assert_eq!(
        (op.calls, op.attempts, op.hedges, op.hedge_wins),
        (1, 2, 1, 0)
    );
    assert_eq!(op.total_give_ups(), 0);
    let skipped: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| e.message().starts_with("hedge skipped"))
        .collect();
    assert!(!skipped.is_empty());
    assert!(
        skipped
            .iter()
            .all(|e| e.get("reason") == Some("breaker") && e.get("hedge_attempt") == Some("3")),
        "{skipped:?}"
    );
}

#[retry(attempts = 3, hedge = "50ms", name = "hedge::live")]
async fn live(d: &Downstream) -> Result<u32, &'static str> {
    d.call().await
}

#[retry(attempts = 3, name = "hedge::sequential")]
async fn sequential(d: &Downstream) -> Result<u32, &'static str> {
    d.call().await
}

/// `hedge` is a live key: a reload moves the delay for the next call (here 50 ms → 20 ms →
/// p95), and it is refused where the site was not compiled hedged, or the value is no delay.
#[cfg(feature = "config")]
#[tokio::test(start_paused = true)]
async fn a_reload_moves_the_hedge_delay_for_the_next_call() {
    use stormguard::config;
    config::apply("[retry.\"hedge::live\"]\nhedge = \"20ms\"\n").unwrap();
    let d = Downstream::new(&[(500, Ok(1)), (5, Ok(2))]);
    assert_eq!(live(&d).await, Ok(2));
    assert_eq!(
        d.log()[..3],
        ["start 1 at 0", "start 2 at 20", "end 2 at 25"]
    );
    assert!(config::current().contains("hedge = \"20ms\"  # <text>:2"));
    // p95 before 100 samples: no hedge at all yet (the attempt runs alone).
    config::apply("[retry.\"hedge::live\"]\nhedge = \"p95\"\n").unwrap();
    let d = Downstream::new(&[(70, Ok(1))]);
    assert_eq!(live(&d).await, Ok(1));
    assert_eq!(d.log(), ["start 1 at 0", "end 1 at 70"]);

    let refused = [
        (
            "[retry.\"hedge::sequential\"]\nhedge = \"20ms\"\n",
            "compiled without `hedge`",
        ),
        (
            "[retry.\"hedge::live\"]\nhedge = \"p100\"\n",
            "p100 is outside p50–p99.9",
        ),
        (
            "[retry.\"hedge::live\"]\nhedge = \"p99.95\"\n",
            "percentiles take at most one decimal",
        ),
        ("[retry.\"hedge::live\"]\nhedge = \"0ms\"\n", "a zero delay"),
        (
            "[retry.\"hedge::live\"]\nhedge = \"soon\"\n",
            "hedge = \"50ms\"",
        ),
    ];
    for (text, advice) in refused {
        let err = config::apply(text).unwrap_err();
        assert_eq!(err.problems()[0].line(), 2, "{err}");
        assert!(err.to_string().contains(advice), "{text:?}: {err}");
    }
    config::apply("").unwrap();
    let d = Downstream::new(&[(500, Ok(1))]);
    assert_eq!(sequential(&d).await, Ok(1));
    // Back to the attribute's 50 ms.
    let d = Downstream::new(&[(500, Ok(1)), (5, Ok(2))]);
    assert_eq!(live(&d).await, Ok(2));
    assert_eq!(d.log()[..2], ["start 1 at 0", "start 2 at 50"]);
}
