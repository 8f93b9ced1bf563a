//! The circuit breaker's state machine on tokio's paused clock: when it opens, how long it stays
//! open, how half-open probes decide, and that late or abandoned permits cannot corrupt it.

use retry_runtime::{Breaker, BreakerConfig, BreakerState, Permit, Window};
use std::fmt;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;
use tokio::time::advance;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Trips on the first failure, stays open 1 s, one probe.
const TRIP_AT_ONCE: BreakerConfig = BreakerConfig::DEFAULT
    .with_consecutive_failures(Some(1))
    .with_open_for(secs(1));

/// Pins the process-wide clock origin before this test's paused clock moves, then moves it on:
/// tests share the origin but each has its own paused clock, which must not start before it.
async fn start() {
    retry_runtime::__private::origin();
    advance(secs(1)).await;
}

fn fail(b: &'static Breaker, n: usize) {
    for _ in 0..n {
        b.admit().expect("admitted").failure();
    }
}

fn succeed(b: &'static Breaker, n: usize) {
    for _ in 0..n {
        b.admit().expect("admitted").success();
    }
}

/// Runs `f` on `n` threads at once (released together by a barrier), inside this test's
/// runtime so that they read its paused clock; returns their results.
fn on_threads<T: Send>(n: usize, f: impl Fn(&Barrier) -> T + Sync) -> Vec<T> {
    let handle = tokio::runtime::Handle::current();
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let _runtime = handle.enter();
                    f(&barrier)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

#[tokio::test(start_paused = true)]
async fn opens_after_consecutive_failures() {
    static B: Breaker = Breaker::new(
        "consecutive",
        BreakerConfig::DEFAULT.with_consecutive_failures(Some(3)),
    );
    start().await;
    fail(&B, 2);
    succeed(&B, 1); // a success ends the run
    fail(&B, 2);
    assert_eq!(B.state(), BreakerState::Closed);
    assert_eq!(B.counts().consecutive_failures, 2);
    fail(&B, 1);
    assert_eq!(B.state(), BreakerState::Open);
    assert_eq!(B.admit().unwrap_err(), secs(5));
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_time_window_opens_only_after_min_calls() {
    static ALL_FAIL: Breaker =
        Breaker::new("rate-min-calls", BreakerConfig::DEFAULT.with_min_calls(10));
    static HALF_FAIL: Breaker =
        Breaker::new("rate-half", BreakerConfig::DEFAULT.with_min_calls(10));
    start().await;

    for _ in 0..9 {
        fail(&ALL_FAIL, 1);
        advance(ms(100)).await;
    }
    assert_eq!(
        ALL_FAIL.state(),
        BreakerState::Closed,
        "9 calls < min_calls"
    );
    fail(&ALL_FAIL, 1);
    assert_eq!(ALL_FAIL.state(), BreakerState::Open);

    succeed(&HALF_FAIL, 6);
    fail(&HALF_FAIL, 4); // 40 %
    fail(&HALF_FAIL, 1); // 5 of 11
    assert_eq!(HALF_FAIL.state(), BreakerState::Closed);
    fail(&HALF_FAIL, 1); // 6 of 12: the rate is reached
    assert_eq!(HALF_FAIL.state(), BreakerState::Open);
    assert_eq!(HALF_FAIL.counts().opened, 1);
}

#[tokio::test(start_paused = true)]
async fn time_window_forgets_calls_older_than_the_window() {
    // The failure-rate rule alone (the default's run-of-failures rule would open both).
    const RATE_ONLY: BreakerConfig = BreakerConfig::DEFAULT
        .with_consecutive_failures(None)
        .with_min_calls(10);
    static REMEMBERS: Breaker = Breaker::new("time-window-8s", RATE_ONLY);
    static FORGETS: Breaker = Breaker::new("time-window-11s", RATE_ONLY);
    start().await;

    fail(&REMEMBERS, 9);
    fail(&FORGETS, 9);
    advance(secs(8)).await;
    fail(&REMEMBERS, 1);
    assert_eq!(
        REMEMBERS.state(),
        BreakerState::Open,
        "8 s ago is inside a 10 s window"
    );

    advance(secs(3)).await;
    fail(&FORGETS, 9);
    assert_eq!(FORGETS.state(), BreakerState::Closed, "11 s ago is outside");
    fail(&FORGETS, 1);
    assert_eq!(FORGETS.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn count_window_forgets_old_calls() {
    static B: Breaker = Breaker::new(
        "count-window",
        BreakerConfig::DEFAULT
            .with_window(Window::Calls(10))
            .with_min_calls(10),
    );
    static SHORT: Breaker = Breaker::new(
        "count-window-5",
        BreakerConfig::DEFAULT
            .with_window(Window::Calls(5))
            .with_min_calls(5),
    );
    start().await;
    fail(&B, 9); // fewer than min_calls: not judged
    succeed(&B, 10); // pushes the 9 failures out of the last 10 calls
    fail(&B, 1); // 1 of the last 10 (it would be 10 of 20 if old calls stayed)
    assert_eq!(B.state(), BreakerState::Closed);
    fail(&B, 4); // 5 of the last 10
    assert_eq!(B.state(), BreakerState::Open);

    fail(&SHORT, 4);
    succeed(&SHORT, 5);
    fail(&SHORT, 2); // 2 of the last 5 (6 of 11 if old calls stayed)
    assert_eq!(SHORT.state(), BreakerState::Closed);
    fail(&SHORT, 1); // 3 of the last 5
    assert_eq!(SHORT.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn default_config_never_opens_at_steady_20_percent_failures() {
    static B: Breaker = Breaker::new("steady-20", BreakerConfig::DEFAULT);
    start().await;
    let mut rng = fastrand::Rng::with_seed(20);
    for _ in 0..10_000 {
        // 100 calls/s for 100 s
        let permit = B.admit().expect("never refused");
        if rng.f64() < 0.2 {
            permit.failure();
        } else {
            permit.success();
        }
        advance(ms(10)).await;
    }
    let c = B.counts();
    assert_eq!(
        (B.state(), c.opened, c.rejections),
        (BreakerState::Closed, 0, 0)
    );
    assert!((1_800..2_200).contains(&c.failures), "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn default_config_opens_within_seconds_of_total_outage() {
    static B: Breaker = Breaker::new("outage", BreakerConfig::DEFAULT);
    start().await;
    let began = tokio::time::Instant::now();
    let mut opened_after = None;
    for _ in 0..500 {
        // 50 calls/s for 10 s, every one failing
        match B.admit() {
            Ok(permit) => permit.failure(),
            Err(_) => {
                opened_after.get_or_insert(began.elapsed());
            }
        }
        advance(ms(20)).await;
    }
    let opened_after = opened_after.expect("opened");
    assert!(opened_after <= secs(1), "opened after {opened_after:?}");
    // Open at the 10th failure in a row (the default's consecutive-failures rule), for 5 s,
    // then one probe that fails and reopens it for about 10 s.
    let c = B.counts();
    assert_eq!((c.failures, c.opened), (11, 2), "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn open_rejects_until_open_for_passes_then_half_open() {
    static B: Breaker = Breaker::new(
        "open-for",
        BreakerConfig::DEFAULT
            .with_consecutive_failures(Some(1))
            .with_open_for(secs(5)),
    );
    start().await;
    fail(&B, 1);
    assert_eq!(B.retry_in(), Some(secs(5)));
    advance(ms(4_999)).await;
    assert!(B.is_rejecting());
    assert_eq!(B.admit().unwrap_err(), ms(1));
    assert_eq!(B.retry_in(), Some(ms(1)));

    advance(ms(1)).await;
    assert!(!B.is_rejecting());
    assert_eq!(
        B.state(),
        BreakerState::Open,
        "still Open until an admit moves it"
    );
    assert_eq!(B.retry_in(), Some(Duration::ZERO));

    let probe = B
        .admit()
        .expect("the first admit after open_for is a probe");
    assert!(probe.is_probe());
    assert_eq!(B.state(), BreakerState::HalfOpen);
    assert_eq!(B.retry_in(), None);
    assert!(B.is_rejecting());
    assert_eq!(
        B.admit().unwrap_err(),
        secs(10),
        "a probe is in flight: refused until the probe timeout, never for 0ns"
    );
    probe.success();
    assert_eq!(B.state(), BreakerState::Closed);
    assert_eq!(B.counts().rejections, 2);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_n_probes_among_many() {
    static B: Breaker = Breaker::new("probes-3", TRIP_AT_ONCE.with_half_open_probes(3));
    start().await;
    fail(&B, 1);
    advance(secs(1)).await;

    let admitted = on_threads(32, |barrier| {
        barrier.wait();
        let permit = B.admit().ok();
        barrier.wait(); // everyone has asked before anyone lets go
        permit.map(|p| {
            assert!(p.is_probe());
            drop(p);
        })
    });
    assert_eq!(admitted.iter().flatten().count(), 3);
    assert_eq!(B.state(), BreakerState::HalfOpen);
    assert_eq!(B.counts().rejections, 29);
    assert_eq!(B.counts().opened, 1);
}

#[tokio::test(start_paused = true)]
async fn all_probes_succeed_closes() {
    static B: Breaker = Breaker::new("all-probes", TRIP_AT_ONCE.with_half_open_probes(2));
    start().await;
    fail(&B, 1);
    advance(secs(1)).await;
    let (first, second) = (B.admit().unwrap(), B.admit().unwrap());
    assert!(first.is_probe() && second.is_probe());
    first.success();
    assert_eq!(B.state(), BreakerState::HalfOpen);
    assert_eq!(
        B.admit().unwrap_err(),
        secs(10),
        "a succeeded probe keeps its slot (refused until the probe timeout)"
    );
    second.success();
    assert_eq!(B.state(), BreakerState::Closed);
    let closed = B.admit().unwrap();
    assert!(!closed.is_probe());
    closed.success();
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens_for_about_twice_as_long_capped_by_open_max() {
    static B: Breaker = Breaker::new("reopen", TRIP_AT_ONCE.with_open_max(secs(3)));
    start().await;
    fail(&B, 1);
    assert_eq!(B.retry_in(), Some(secs(1)));

    let mut open_times = vec![];
    for _ in 0..4 {
        advance(B.retry_in().unwrap()).await;
        B.admit().expect("probe").failure();
        open_times.push(B.retry_in().expect("open again"));
    }
    assert!(
        (ms(1_800)..=ms(2_200)).contains(&open_times[0]),
        "{open_times:?}"
    );
    for t in &open_times[1..] {
        assert!((ms(2_700)..=secs(3)).contains(t), "{open_times:?}");
    }

    advance(B.retry_in().unwrap()).await;
    B.admit().expect("probe").success();
    fail(&B, 1);
    assert_eq!(B.retry_in(), Some(secs(1)), "closing resets the open time");
    assert_eq!(B.counts().opened, 6);
}

#[tokio::test(start_paused = true)]
async fn dropped_probe_permit_is_given_back() {
    static B: Breaker = Breaker::new("dropped-probe", TRIP_AT_ONCE);
    start().await;
    fail(&B, 1);
    advance(secs(1)).await;
    let probe = B.admit().unwrap();
    assert!(B.admit().is_err());
    drop(probe);
    assert_eq!(B.state(), BreakerState::HalfOpen);
    assert!(!B.is_rejecting());
    let probe = B.admit().expect("the slot is free again");
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(B.state(), BreakerState::Closed);
    let c = B.counts();
    assert_eq!(
        (c.successes, c.failures),
        (1, 1),
        "the dropped probe counts as neither"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_gives_its_permit_back() {
    static B: Breaker = Breaker::new("cancelled-probe", TRIP_AT_ONCE);
    start().await;
    fail(&B, 1);
    advance(secs(1)).await;
    let attempt = async {
        let probe = B.admit().unwrap();
        tokio::time::sleep(secs(60)).await;
        probe.success();
    };
    assert!(tokio::time::timeout(ms(100), attempt).await.is_err());
    assert!(!B.is_rejecting());
    B.admit().expect("the slot is free again").success();
    assert_eq!(B.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_probe_gives_its_permit_back() {
    static B: Breaker = Breaker::new("panicking-probe", TRIP_AT_ONCE);
    start().await;
    fail(&B, 1);
    advance(secs(1)).await;
    let attempt = tokio::spawn(async {
        let _probe = B.admit().unwrap();
        panic!("the attempt panicked (expected by this test)");
    });
    assert!(attempt.await.unwrap_err().is_panic());
    assert!(!B.is_rejecting());
    B.admit().expect("the slot is free again").failure();
    assert_eq!(B.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn stale_permit_from_previous_generation_is_ignored() {
    static B: Breaker = Breaker::new(
        "stale",
        BreakerConfig::DEFAULT
            .with_consecutive_failures(Some(2))
            .with_open_for(secs(1))
            .with_half_open_probes(2),
    );
    start().await;

    // Permits admitted while closed, reporting after the breaker opened.
    let late_success = B.admit().unwrap();
    let late_failure = B.admit().unwrap();
    let later_failure = B.admit().unwrap();
    fail(&B, 2);
    assert_eq!(B.state(), BreakerState::Open);
    late_success.success();
    late_failure.failure();
    assert_eq!(B.state(), BreakerState::Open);
    assert_eq!(
        B.retry_in(),
        Some(secs(1)),
        "a late failure does not extend the open time"
    );

    // A probe of an earlier half-open round, reporting in the next one.
    advance(secs(1)).await;
    let old_probe = B.admit().unwrap();
    B.admit().unwrap().failure(); // the round fails
    advance(B.retry_in().unwrap()).await;
    let p1 = B.admit().unwrap();
    old_probe.success(); // must not count as one of this round's two successes
    p1.success();
    assert_eq!(B.state(), BreakerState::HalfOpen);
    let p2 = B.admit().expect("this round's second slot");
    p2.success();
    assert_eq!(B.state(), BreakerState::Closed);

    // A closed-time permit from before all that, failing into the new closed period: it
    // neither extends nor restarts the current run.
    fail(&B, 1);
    later_failure.failure();
    assert_eq!(B.state(), BreakerState::Closed, "not part of this run");
    assert_eq!(B.counts().consecutive_failures, 1);
    fail(&B, 1);
    assert_eq!(B.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn closing_starts_a_fresh_window() {
    const CONFIG: BreakerConfig = BreakerConfig::DEFAULT
        .with_min_calls(4)
        .with_consecutive_failures(Some(5))
        .with_open_for(secs(1));
    static B: Breaker = Breaker::new("fresh-window", CONFIG);
    static BY_CALLS: Breaker =
        Breaker::new("fresh-count-window", CONFIG.with_window(Window::Calls(10)));
    start().await;
    fresh_window_after_closing(&B).await;
    fresh_window_after_closing(&BY_CALLS).await;
}

async fn fresh_window_after_closing(b: &'static Breaker) {
    fail(b, 4);
    assert_eq!(b.state(), BreakerState::Open);
    advance(secs(1)).await;
    b.admit().unwrap().success();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.counts().consecutive_failures, 0);
    // The 4 failures are 1 s old (the last 4 calls), well inside the window, yet forgotten:
    // 3 calls are fewer than min_calls, and the 4th makes it 3 failures of 4 (not 3 of 8).
    succeed(b, 1);
    fail(b, 2);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(b, 1);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn counts_track_outcomes_rejections_and_openings() {
    static B: Breaker = Breaker::new("counts", TRIP_AT_ONCE);
    start().await;
    succeed(&B, 3);
    drop(B.admit().unwrap()); // neither
    fail(&B, 1);
    assert!(B.admit().is_err());
    assert!(B.admit().is_err());
    let c = B.counts();
    assert_eq!(
        (c.successes, c.failures, c.rejections, c.opened),
        (3, 1, 2, 1)
    );
    assert!(format!("{B:?}").contains("Open"));
}

/// One `info` event seen by [`Transitions`].
#[derive(Clone, Debug, Default, PartialEq)]
struct Transition {
    breaker: String,
    from: String,
    to: String,
    reason: String,
    failures: u64,
    message: String,
}

impl tracing::field::Visit for Transition {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "breaker" => self.breaker = value.to_owned(),
            "reason" => self.reason = value.to_owned(),
            _ => self.record_debug(field, &value),
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "failures" {
            self.failures = value;
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let value = format!("{value:?}");
        match field.name() {
            "from" => self.from = value,
            "to" => self.to = value,
            "message" => self.message = value,
            _ => {}
        }
    }
}

/// A minimal subscriber that keeps the `stormguard` events of one breaker.
#[derive(Clone)]
struct Transitions {
    breaker: &'static str,
    seen: Arc<Mutex<Vec<Transition>>>,
}

impl Transitions {
    fn pairs(&self) -> Vec<(String, String)> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .map(|t| (t.from.clone(), t.to.clone()))
            .collect()
    }
}

impl tracing::Subscriber for Transitions {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "stormguard"
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut t = Transition::default();
        event.record(&mut t);
        if *event.metadata().level() == tracing::Level::INFO && t.breaker == self.breaker {
            self.seen.lock().unwrap().push(t);
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(start_paused = true)]
async fn transitions_emit_one_info_event_each() {
    static B: Breaker = Breaker::new(
        "events",
        BreakerConfig::DEFAULT
            .with_consecutive_failures(Some(2))
            .with_open_for(secs(1)),
    );
    start().await;
    let transitions = Transitions {
        breaker: "events",
        seen: Arc::default(),
    };
    let dispatch = tracing::Dispatch::new(transitions.clone());
    let _default = tracing::dispatcher::set_default(&dispatch);
    let pair = |from: &str, to: &str| (from.to_owned(), to.to_owned());

    // 16 threads fail at once: one of them opens the breaker, and only it logs.
    on_threads(16, |barrier| {
        tracing::dispatcher::with_default(&dispatch, || {
            let permit = B.admit().unwrap();
            barrier.wait();
            permit.failure();
        })
    });
    assert_eq!(transitions.pairs(), [pair("Closed", "Open")]);
    assert_eq!(B.counts().opened, 1);
    let opened = transitions.seen.lock().unwrap()[0].clone();
    assert_eq!(opened.reason, "consecutive failures");
    assert_eq!(opened.message, "circuit breaker state changed");
    assert!(opened.failures >= 2, "{opened:?}");

    // 16 threads ask once the open time has passed: one moves it to half-open.
    advance(secs(1)).await;
    on_threads(16, |barrier| {
        tracing::dispatcher::with_default(&dispatch, || {
            barrier.wait();
            B.admit().ok().map(Permit::failure)
        })
    });
    advance(B.retry_in().unwrap()).await;
    B.admit().unwrap().success();
    assert!(B.admit().is_ok_and(|p| !p.is_probe()));

    assert_eq!(
        transitions.pairs(),
        [
            pair("Closed", "Open"),
            pair("Open", "HalfOpen"),
            pair("HalfOpen", "Open"),
            pair("Open", "HalfOpen"),
            pair("HalfOpen", "Closed"),
        ]
    );
    let seen = transitions.seen.lock().unwrap();
    let reasons: Vec<&str> = seen.iter().map(|t| t.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "consecutive failures",
            "open time elapsed",
            "probe failed",
            "open time elapsed",
            "probes succeeded"
        ]
    );
}
