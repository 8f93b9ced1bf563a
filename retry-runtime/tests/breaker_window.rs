//! A time-window breaker counts successes in batches (one clock read per batch, not per
//! success); these runs on tokio's paused clock check that it opens when, and only when, an
//! exact window (every call kept with its time) reaches the failure rate.

use retry_runtime::__private::now_nanos;
use retry_runtime::{Breaker, BreakerConfig, BreakerState};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::{advance, Instant};

/// The time window these tests check against an exact one: `BreakerConfig::DEFAULT`'s window
/// (10 buckets of 1 s, rate 0.5), with the failure-rate rule alone and at least 20 calls, so
/// that the run-of-failures rule the defaults add does not open it first.
const WINDOW_ONLY: BreakerConfig = BreakerConfig::DEFAULT
    .with_consecutive_failures(None)
    .with_min_calls(20);

/// An exact window of [`WINDOW_ONLY`]'s shape: 10 buckets of 1 s, rate 0.5, at least 20 calls.
struct Exact {
    /// bucket → (calls, failures)
    buckets: BTreeMap<u64, (u64, u64)>,
}

const SPAN: u64 = 1_000_000_000;

impl Exact {
    fn new() -> Exact {
        Exact {
            buckets: BTreeMap::new(),
        }
    }

    /// Records one call now; true if it is a failure that brings the window to the rate.
    fn record(&mut self, failed: bool) -> bool {
        let epoch = now_nanos() / SPAN;
        let bucket = self.buckets.entry(epoch).or_default();
        bucket.0 += 1;
        bucket.1 += failed as u64;
        let oldest = (epoch + 1).saturating_sub(10);
        self.buckets.retain(|&e, _| e >= oldest);
        let (calls, failures) = self
            .buckets
            .values()
            .fold((0, 0), |(c, f), b| (c + b.0, f + b.1));
        failed && calls >= 20 && failures * 2 >= calls
    }
}

/// When the breaker opened and when the exact window would have, from the start of a run.
#[derive(Debug, Default)]
struct Opened {
    breaker: Option<Duration>,
    exact: Option<Duration>,
}

impl Opened {
    /// Both opened within `slack` of each other, or neither did.
    fn agree(&self, slack: Duration) -> bool {
        match (self.breaker, self.exact) {
            (None, None) => true,
            (Some(b), Some(x)) => b.abs_diff(x) <= slack,
            _ => false,
        }
    }
}

/// A stretch of traffic: `calls` calls, `per_sec` of them per second, each failing with
/// probability `failing`.
#[derive(Clone, Copy)]
struct Traffic {
    calls: u64,
    per_sec: u64,
    failing: f64,
}

/// Runs the stretches through `b` and the exact window, until both have opened or the traffic
/// ends.
async fn run(b: &'static Breaker, traffic: &[Traffic], seed: u64) -> Opened {
    retry_runtime::__private::origin();
    advance(Duration::from_secs(1)).await;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut exact = Exact::new();
    let mut opened = Opened::default();
    let began = Instant::now();
    let mut owed = Duration::ZERO;
    for stretch in traffic {
        let gap = Duration::from_nanos(1_000_000_000 / stretch.per_sec);
        for _ in 0..stretch.calls {
            let failed = rng.f64() < stretch.failing;
            if opened.exact.is_none() && exact.record(failed) {
                opened.exact = Some(began.elapsed());
            }
            if opened.breaker.is_none() {
                let permit = b.admit().expect("closed until it opens");
                if failed {
                    permit.failure();
                } else {
                    permit.success();
                }
                if b.state() == BreakerState::Open {
                    opened.breaker = Some(began.elapsed());
                }
            }
            if opened.breaker.is_some() && opened.exact.is_some() {
                return opened;
            }
            // Advance the paused clock in steps of at least 10 µs, so that a burst does not
            // cost one `advance` per call (yet its calls do not all happen at one instant).
            owed += gap;
            if owed >= Duration::from_micros(10) {
                advance(owed).await;
                owed = Duration::ZERO;
            }
        }
    }
    opened
}

fn slack() -> Duration {
    Duration::from_millis(250)
}

#[tokio::test(start_paused = true)]
async fn an_outage_after_heavy_traffic_opens_it_when_an_exact_window_would() {
    static B: Breaker = Breaker::new("window-outage", WINDOW_ONLY);
    let traffic = [
        Traffic {
            calls: 40_000,
            per_sec: 2_000,
            failing: 0.0,
        },
        Traffic {
            calls: 20_000,
            per_sec: 2_000,
            failing: 1.0,
        },
    ];
    let opened = run(&B, &traffic, 1).await;
    assert!(opened.agree(slack()), "{opened:?}");
    // 20 s of successes, then the failures outweigh the successes left in the window.
    let after = opened.breaker.unwrap() - Duration::from_secs(20);
    assert!(after > Duration::from_secs(4), "{opened:?}");
    assert_eq!(B.counts().successes, 40_000, "no success lost in a batch");
}

#[tokio::test(start_paused = true)]
async fn a_steady_failure_rate_below_the_threshold_never_opens_it() {
    static B: Breaker = Breaker::new("window-steady-40", WINDOW_ONLY);
    // (Starting at 40 % straight away, the first 20 calls could reach 50 % by chance.)
    let traffic = [
        Traffic {
            calls: 2_000,
            per_sec: 2_000,
            failing: 0.05,
        },
        Traffic {
            calls: 60_000,
            per_sec: 2_000,
            failing: 0.4,
        },
    ];
    let opened = run(&B, &traffic, 2).await;
    assert_eq!(opened.breaker, None, "{opened:?}");
    assert!(opened.agree(slack()), "{opened:?}");
}

#[tokio::test(start_paused = true)]
async fn a_rising_failure_rate_opens_it_when_an_exact_window_would() {
    static B: Breaker = Breaker::new("window-rising", WINDOW_ONLY);
    let traffic = [
        Traffic {
            calls: 20_000,
            per_sec: 5_000,
            failing: 0.05,
        },
        Traffic {
            calls: 100_000,
            per_sec: 5_000,
            failing: 0.7,
        },
    ];
    let opened = run(&B, &traffic, 3).await;
    assert!(
        opened.breaker.is_some() && opened.agree(slack()),
        "{opened:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_burst_long_ago_does_not_dilute_a_later_outage() {
    static B: Breaker = Breaker::new("window-burst", WINDOW_ONLY);
    // 1 000 successes within a millisecond, then 30 s of nothing, then an outage at 10 calls
    // per second. An exact window opens at the 20th failure (after 2 s). The batch in
    // progress when the burst ended (`p` < 64 successes) is spread over the 30 s it took, a
    // third of it into the window: those count toward `min_calls` and dilute the rate, so it
    // opens at failure max(20 - p/3, p/3), between the 10th and the 22nd.
    let burst = Traffic {
        calls: 1_000,
        per_sec: 1_000_000,
        failing: 0.0,
    };
    let opened = run(&B, &[burst], 4).await;
    assert_eq!(opened.breaker, None);
    advance(Duration::from_secs(30)).await;
    let began = Instant::now();
    let mut failures = 0;
    while B.state() == BreakerState::Closed {
        B.admit().unwrap().failure();
        failures += 1;
        advance(Duration::from_millis(100)).await;
    }
    assert!(
        (10..=22).contains(&failures),
        "{failures} after {:?}",
        began.elapsed()
    );
}

/// Heavy traffic sizes the batches for it; then the traffic falls to 50 calls per second.
fn heavy_then_light(light_successes: u64) -> [Traffic; 3] {
    [
        Traffic {
            calls: 48_000,
            per_sec: 16_000,
            failing: 0.0,
        },
        Traffic {
            calls: 1,
            per_sec: 50,
            failing: 1.0,
        },
        Traffic {
            calls: light_successes,
            per_sec: 50,
            failing: 0.0,
        },
    ]
}

#[tokio::test(start_paused = true)]
async fn a_fall_in_traffic_then_a_run_of_failures_sees_the_light_traffic() {
    static B: Breaker = Breaker::new("window-fall-run", WINDOW_ONLY);
    // 12 s at 50 successes per second after the fall, then 20 failures in a row: the window
    // holds ~500 successes and 20 failures (4 %).
    let [heavy, blip, light] = heavy_then_light(600);
    let run_of_failures = Traffic {
        calls: 20,
        per_sec: 50,
        failing: 1.0,
    };
    let opened = run(&B, &[heavy, blip, light, run_of_failures], 7).await;
    assert_eq!((opened.breaker, opened.exact), (None, None), "{opened:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fall_in_traffic_keeps_its_successes_in_their_buckets() {
    static B: Breaker = Breaker::new("window-fall-buckets", WINDOW_ONLY);
    // 9 s of light successes closed by one failure, 2 s more, then 2 s of failures: the 9 s
    // of successes must stay in the window until they are 10 s old.
    let [heavy, blip, light] = heavy_then_light(450);
    let tail = [
        blip,
        Traffic {
            calls: 100,
            per_sec: 50,
            failing: 0.0,
        },
        Traffic {
            calls: 110,
            per_sec: 50,
            failing: 1.0,
        },
    ];
    let traffic: Vec<Traffic> = [heavy, blip, light].into_iter().chain(tail).collect();
    let opened = run(&B, &traffic, 8).await;
    assert_eq!((opened.breaker, opened.exact), (None, None), "{opened:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fall_in_traffic_keeps_the_window_true() {
    static B: Breaker = Breaker::new("window-fall", WINDOW_ONLY);
    static C: Breaker = Breaker::new("window-fall-60", WINDOW_ONLY);
    let heavy = Traffic {
        calls: 48_000,
        per_sec: 16_000,
        failing: 0.0,
    };
    let below = [
        heavy,
        Traffic {
            calls: 6_000,
            per_sec: 100,
            failing: 0.3,
        },
    ];
    let opened = run(&B, &below, 5).await;
    assert_eq!(opened.breaker, None, "{opened:?}");
    assert!(opened.agree(slack()), "{opened:?}");

    let above = [
        heavy,
        Traffic {
            calls: 6_000,
            per_sec: 100,
            failing: 0.6,
        },
    ];
    let opened = run(&C, &above, 6).await;
    assert!(
        opened.breaker.is_some() && opened.agree(slack()),
        "{opened:?}"
    );
}
