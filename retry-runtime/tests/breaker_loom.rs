//! Loom model of the half-open race: threads admit, succeed, fail and drop probes at once on a
//! breaker with one probe slot (and two, where probes can also resolve at once); and of the
//! closed breaker's window, where successes and failures race to count batches in. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p retry-runtime --test breaker_loom --release`.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use retry_runtime::{Breaker, BreakerConfig, BreakerState, Window};
use std::time::Duration;

/// Opens on the first failure; under loom the clock stands still, so an open time of zero
/// means "due at once" and every reopening is immediately probe-able again.
const CONFIG: BreakerConfig = BreakerConfig::DEFAULT
    .with_consecutive_failures(Some(1))
    .with_open_for(Duration::ZERO)
    .with_open_max(Duration::ZERO)
    .with_half_open_probes(1);

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Success,
    Failure,
    Drop,
}

/// A fresh breaker with `slots` probe slots, opened and due for a probe (loom atomics cannot
/// live in a `static`).
fn open_breaker(slots: u32) -> &'static Breaker {
    let config = CONFIG.with_half_open_probes(slots);
    let b: &'static Breaker = Box::leak(Box::new(Breaker::new("loom", config)));
    b.admit().expect("closed").failure();
    assert_eq!(b.state(), BreakerState::Open);
    b
}

/// One attempt: admit, and if admitted report `outcome`. `probes` counts the probe permits
/// held right now; there must never be more than the breaker's slots.
fn attempt(b: &'static Breaker, probes: &AtomicUsize, outcome: Outcome) {
    let Ok(permit) = b.admit() else { return };
    if permit.is_probe() {
        let slots = b.config().half_open_probes() as usize;
        assert!(
            probes.fetch_add(1, SeqCst) < slots,
            "more probes admitted at once than there are slots"
        );
        thread::yield_now();
        probes.fetch_sub(1, SeqCst);
    }
    match outcome {
        Outcome::Success => permit.success(),
        Outcome::Failure => permit.failure(),
        Outcome::Drop => drop(permit),
    }
}

/// Once every permit is resolved, the breaker is Closed or Open, or half-open with a slot free:
/// never half-open with nothing in flight to ever close or reopen it. A half-open breaker
/// closes once its free slots' probes succeed.
fn assert_not_stuck(b: &'static Breaker) {
    for _ in 0..b.config().half_open_probes() {
        if b.state() != BreakerState::HalfOpen {
            break;
        }
        assert!(!b.is_rejecting(), "stuck half-open");
        let probe = b.admit().expect("a free slot admits a probe");
        assert!(probe.is_probe());
        probe.success();
    }
    assert_ne!(
        b.state(),
        BreakerState::HalfOpen,
        "half-open after all slots succeeded"
    );
}

fn race(slots: u32, outcomes: &'static [Outcome]) {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(move || {
        let b = open_breaker(slots);
        let probes = Arc::new(AtomicUsize::new(0));
        let (last, others) = outcomes.split_last().unwrap();
        let threads: Vec<_> = others
            .iter()
            .map(|&outcome| {
                let probes = probes.clone();
                thread::spawn(move || attempt(b, &probes, outcome))
            })
            .collect();
        attempt(b, &probes, *last);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(probes.load(SeqCst), 0);
        assert_not_stuck(b);
    });
}

#[test]
fn racing_probes_success_and_failure() {
    race(1, &[Outcome::Success, Outcome::Failure]);
}

#[test]
fn racing_probes_success_and_drop() {
    race(1, &[Outcome::Success, Outcome::Drop]);
}

#[test]
fn racing_probes_failure_and_drop() {
    race(1, &[Outcome::Failure, Outcome::Drop]);
}

#[test]
fn racing_probes_success_failure_and_drop() {
    race(1, &[Outcome::Success, Outcome::Failure, Outcome::Drop]);
}

#[test]
fn two_slots_racing_success_success_and_drop() {
    race(2, &[Outcome::Success, Outcome::Success, Outcome::Drop]);
}

#[test]
fn two_slots_racing_success_failure_and_drop() {
    race(2, &[Outcome::Success, Outcome::Failure, Outcome::Drop]);
}

/// While one thread opens the breaker (open for 1 s; loom's clock stands still), another one
/// asks: it is admitted (closed) or refused, but never given a probe, even before the opener
/// has published when the open time ends.
#[test]
fn an_opening_breaker_is_never_due_early() {
    loom::model(|| {
        let config = CONFIG.with_open_for(Duration::from_secs(1));
        let b: &'static Breaker = Box::leak(Box::new(Breaker::new("loom", config)));
        let failing = b.admit().expect("closed");
        // The asker is spawned and the opener runs first: loom's DPOR then schedules the
        // asker before each of the opener's stores it depends on.
        let asker = thread::spawn(move || {
            for _ in 0..2 {
                match b.admit() {
                    Ok(permit) => {
                        assert!(
                            !permit.is_probe(),
                            "probe admitted before the open time passed"
                        );
                        drop(permit);
                    }
                    Err(retry_in) => assert!(retry_in > Duration::ZERO),
                }
            }
        });
        failing.failure();
        asker.join().unwrap();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.is_rejecting());
        assert_eq!(b.retry_in(), Some(Duration::from_secs(1)));
    });
}

/// Two threads report outcomes to a closed time-window breaker at once: successes that close
/// batches (under loom the clock stands still, so every success is due) race a failure that
/// closes the batch in progress before judging. Once all are reported, the window holds each
/// call exactly once: no batch lost, none counted twice, and the next batch can be claimed.
#[test]
fn racing_successes_and_a_failure_count_every_call_once() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        // Never opens: the window is only counted.
        let config = BreakerConfig::DEFAULT.with_min_calls(u32::MAX);
        let b: &'static Breaker = Box::leak(Box::new(Breaker::new("loom-window", config)));
        let other = thread::spawn(move || {
            b.admit().unwrap().success();
            b.admit().unwrap().failure();
        });
        b.admit().unwrap().success();
        b.admit().unwrap().success();
        other.join().unwrap();
        assert_eq!(b.window_now(), (4, 1));
        b.admit().unwrap().success();
        assert_eq!(b.window_now(), (5, 1), "a batch claim was never released");
    });
}

/// The same for a count window, whose calls are numbered by one atomic add.
#[test]
fn a_count_window_numbers_every_call_once() {
    loom::model(|| {
        let config = BreakerConfig::DEFAULT
            .with_window(Window::Calls(100))
            .with_min_calls(u32::MAX);
        let b: &'static Breaker = Box::leak(Box::new(Breaker::new("loom-count", config)));
        let other = thread::spawn(move || {
            b.admit().unwrap().success();
            b.admit().unwrap().failure();
        });
        b.admit().unwrap().success();
        other.join().unwrap();
        assert_eq!(b.window_now(), (3, 1));
        assert_eq!(b.counts().successes, 2);
    });
}
