//! What `#[retry]` costs next to the plain call and next to the peers (backon, tokio-retry),
//! in one criterion run. Groups: `success` (a body that returns at once), `success_1us` and
//! `ratio_1us` (a ~1 µs body; the ratio lines are paired against the plain call),
//! `not_inlined` (the instant body with every fn `#[inline(never)]`, as a user's call is),
//! `hedge` and `hedge_ratio` (hedged calls whose first attempt wins before the delay, not
//! inlined, next to the plain fn and `timeout`),
//! `yield_once` (an attempt pending on its first poll: `timeout` arms its timer), `clock`,
//! `fail_twice` (the retry path, paused clock), `contention` and `contention_fail_once`
//! (many tasks on two workers through one named breaker and budget), and with feature `redis`
//! `fleet` and `fleet_ratio` (a breaker and budget shared through `[fleet]` and a live
//! `redis-server` the bench starts, against its unshared twin; skipped, with one line saying
//! why, without `redis-server` on PATH).
//!
//! Every figure is the time of one call: each criterion batch runs `iters` calls in a loop
//! inside one `block_on` of a runtime created once, and times only the loop, so that runtime
//! entry does not drown the nanoseconds. Reproduce `docs/PERFORMANCE.md` with
//! `cargo bench --bench overhead -- --warm-up-time 1 --measurement-time 3`.

use backon::{ExponentialBuilder, Retryable};
use criterion::{criterion_group, criterion_main, Criterion};
use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};
use stormguard::{retry, GuardError};
use tokio::runtime::{Builder, Runtime};
use tokio_retry::strategy::ExponentialBackoff;
use tokio_retry::Retry;

#[derive(Debug)]
pub struct E;

impl std::fmt::Display for E {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unavailable")
    }
}

impl From<GuardError> for E {
    fn from(_: GuardError) -> Self {
        E
    }
}

stormguard::breakers! {
    // The success-path breaker, declared as the docs show it.
    bench { consecutive_failures: 5, open_for: "30s" }
    // A failure-rate breaker over a time window, and over the last 100 calls.
    bench_rate { failure_rate: 0.5, window: "10s", min_calls: 20, open_for: "5s" }
    bench_calls { failure_rate: 0.5, window: 100, min_calls: 20, open_for: "5s" }
    // Shared by the retry-path and contention benches, which fail on purpose: never opens.
    bench_shared { consecutive_failures: 4000000000, failure_rate: 1.0, min_calls: 4000000000 }
    // The `fleet` group's twins: the same declaration, one of them shared through `[fleet]`.
    bench_fleet { consecutive_failures: 5, open_for: "30s" }
    bench_local { consecutive_failures: 5, open_for: "30s" }
    // A second unshared twin: its pair with the first is the noise and code-layout floor.
    bench_local2 { consecutive_failures: 5, open_for: "30s" }
}

stormguard::budgets! {
    // Each success deposits 3 tokens, more than the retries of a call take (every retry
    // keeps its cost), so the budget never runs dry mid-run.
    bench_shared { capacity: 1000000, ratio: 3 }
    // The `fleet` group's twins (as the breakers above).
    bench_fleet { capacity: 100, ratio: 0.1 }
    bench_local { capacity: 100, ratio: 0.1 }
    bench_local2 { capacity: 100, ratio: 0.1 }
}

/// The body of the "instant" fns: one add on a `black_box`ed input.
#[inline(always)]
fn instant(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// Iterations of [`spin`] for a body of about 1 µs on the machine of `docs/PERFORMANCE.md`
/// (the plain `success_1us` line shows what it really took).
const SPIN: u64 = 3_500;

/// A body that costs about 1 µs of CPU: a stand-in for a fast I/O call.
#[inline(always)]
fn spin(x: u64) -> u64 {
    let mut acc = x;
    for i in 0..SPIN {
        acc = black_box(acc.wrapping_add(i));
    }
    acc
}

/// The same fn, plain and under each option and each peer, with the body `$work`.
macro_rules! variants {
    ($module:ident, $work:path $(, #[$attr:meta])*) => {
        mod $module {
            use super::*;

            $(#[$attr])*
            pub async fn plain(x: u64) -> Result<u64, E> {
                Ok($work(x))
            }

            #[retry]
            $(#[$attr])*
            pub async fn defaults(x: u64) -> Result<u64, E> {
                Ok($work(x))
            }

            #[retry(breaker = "bench")]
            $(#[$attr])*
            pub async fn breaker(x: u64) -> Result<u64, E> {
                Ok($work(x))
            }

            #[retry(breaker = "bench_rate")]
            $(#[$attr])*
            pub async fn breaker_rate(x: u64) -> Result<u64, E> {
                Ok($work(x))
            }

            #[retry(breaker = "bench_calls")]
            $(#[$attr])*
            pub async fn breaker_calls(x: u64) -> Result<u64, E> {
                Ok($work(x))
            }

            #[retry(budget = "bench-budget")]
            $(#[$attr])*
            pub async fn budget(x: u64) -> Result<u64, E> {
                Ok($work(x))
            }

            #[retry(breaker = "bench", budget = "bench-budget")]
            $(#[$attr])*
            pub async fn breaker_and_budget(x: u64) -> Result<u64, E> {
                Ok($work(x))
            }

            #[retry(timeout = "1s")]
            $(#[$attr])*
            pub async fn timeout(x: u64) -> Result<u64, E> {
                Ok($work(x))
            }

            /// tokio's own timeout, for comparison: it reads the clock up front.
            $(#[$attr])*
            pub async fn tokio_timeout(x: u64) -> Result<u64, E> {
                match tokio::time::timeout(Duration::from_secs(1), plain(x)).await {
                    Ok(r) => r,
                    Err(_) => Err(E),
                }
            }

            $(#[$attr])*
            pub async fn backon(x: u64) -> Result<u64, E> {
                (|| plain(x)).retry(ExponentialBuilder::default()).await
            }

            $(#[$attr])*
            pub async fn tokio_retry(x: u64) -> Result<u64, E> {
                let strategy = ExponentialBackoff::from_millis(100)
                    .max_delay(Duration::from_secs(2))
                    .take(2);
                Retry::start(strategy, || plain(x)).await
            }
        }
    };
}

variants!(now, super::instant);
variants!(micro, super::spin);
// As a user's crate sees them: an annotated fn is rarely inlined into its caller.
variants!(not_inlined, super::instant, #[inline(never)]);

/// The defaults, with the live configuration overriding the site's policy (see `success`).
mod live {
    use super::*;

    #[retry(name = "bench::live")]
    #[inline(never)]
    pub async fn defaults(x: u64) -> Result<u64, E> {
        Ok(instant(x))
    }
}

/// A body that yields once before answering, so that the attempt is pending on its first
/// poll: `timeout` must then arm its timer.
mod yield_once {
    use super::*;

    pub async fn plain(x: u64) -> Result<u64, E> {
        tokio::task::yield_now().await;
        Ok(instant(x))
    }

    #[retry]
    pub async fn defaults(x: u64) -> Result<u64, E> {
        tokio::task::yield_now().await;
        Ok(instant(x))
    }

    #[retry(timeout = "1s")]
    pub async fn timeout(x: u64) -> Result<u64, E> {
        tokio::task::yield_now().await;
        Ok(instant(x))
    }
}

/// Hedged fns whose first attempt wins before the delay, not inlined into the caller (the
/// `not_inlined` group's plain and `timeout` fns are their baselines).
mod hedged {
    use super::*;

    #[retry(hedge = "50ms")]
    #[inline(never)]
    pub async fn fixed(x: u64) -> Result<u64, E> {
        Ok(instant(x))
    }

    #[retry(hedge = "p95")]
    #[inline(never)]
    pub async fn p95(x: u64) -> Result<u64, E> {
        Ok(instant(x))
    }

    /// Pending on its first poll: the hedge delay's timer is armed, as `timeout`'s is.
    #[retry(hedge = "50ms")]
    #[inline(never)]
    pub async fn fixed_yield(x: u64) -> Result<u64, E> {
        tokio::task::yield_now().await;
        Ok(instant(x))
    }

    #[retry(hedge = "p95")]
    #[inline(never)]
    pub async fn p95_yield(x: u64) -> Result<u64, E> {
        tokio::task::yield_now().await;
        Ok(instant(x))
    }

    #[inline(never)]
    pub async fn plain_yield(x: u64) -> Result<u64, E> {
        tokio::task::yield_now().await;
        Ok(instant(x))
    }

    #[retry(timeout = "1s")]
    #[inline(never)]
    pub async fn timeout_yield(x: u64) -> Result<u64, E> {
        tokio::task::yield_now().await;
        Ok(instant(x))
    }
}

/// Twins for the `fleet` group: the same breaker and budget declarations, not inlined; only
/// `bench_fleet` is named in the `[fleet]` section that group applies.
#[cfg(feature = "redis")]
mod fleet_fns {
    use super::*;

    #[retry(breaker = "bench_fleet", budget = "bench_fleet")]
    #[inline(never)]
    pub async fn shared(x: u64) -> Result<u64, E> {
        Ok(instant(x))
    }

    #[retry(breaker = "bench_local", budget = "bench_local")]
    #[inline(never)]
    pub async fn unshared(x: u64) -> Result<u64, E> {
        Ok(instant(x))
    }

    /// The same again, also unshared (the control of `shared_vs_unshared`).
    #[retry(breaker = "bench_local2", budget = "bench_local2")]
    #[inline(never)]
    pub async fn unshared2(x: u64) -> Result<u64, E> {
        Ok(instant(x))
    }
}

/// Fails twice, then succeeds; every delay is zero (`sleep(0)` for all three libraries), on a
/// paused clock (tokio's timer wheel would otherwise round each `sleep(0)` up to its next
/// millisecond tick, and the figure would be the tick, not the code).
mod fail_twice {
    use super::*;

    #[retry(base = "0ms", max = "1ms", jitter = "none", budget = "bench_shared")]
    pub async fn sg(x: u64) -> Result<u64, E> {
        if stormguard::attempt() < 3 {
            Err(E)
        } else {
            Ok(instant(x))
        }
    }

    #[retry(
        base = "0ms",
        max = "1ms",
        jitter = "none",
        breaker = "bench_shared",
        budget = "bench_shared"
    )]
    pub async fn sg_breaker_and_budget(x: u64) -> Result<u64, E> {
        if stormguard::attempt() < 3 {
            Err(E)
        } else {
            Ok(instant(x))
        }
    }

    pub async fn backon(x: u64) -> Result<u64, E> {
        super::backon_failing(x, 3).await
    }

    pub async fn tokio_retry(x: u64) -> Result<u64, E> {
        super::tokio_retry_failing(x, 3).await
    }
}

/// Many tasks on two workers through one named breaker and budget.
mod shared {
    use super::*;

    #[retry(breaker = "bench_shared", budget = "bench_shared")]
    pub async fn success(x: u64) -> Result<u64, E> {
        Ok(instant(x))
    }

    /// Fails once, then succeeds: the budget's withdraw and refund, the breaker's failure.
    #[retry(
        base = "0ms",
        max = "1ms",
        jitter = "none",
        breaker = "bench_shared",
        budget = "bench_shared"
    )]
    pub async fn fail_once(x: u64) -> Result<u64, E> {
        if stormguard::attempt() < 2 {
            Err(E)
        } else {
            Ok(instant(x))
        }
    }

    pub async fn backon_fail_once(x: u64) -> Result<u64, E> {
        super::backon_failing(x, 2).await
    }

    pub async fn tokio_retry_fail_once(x: u64) -> Result<u64, E> {
        super::tokio_retry_failing(x, 2).await
    }
}

/// backon with zero delays, around a body that fails until its `first_ok`-th attempt.
async fn backon_failing(x: u64, first_ok: u32) -> Result<u64, E> {
    let mut attempt = 0;
    let builder = ExponentialBuilder::default()
        .with_min_delay(Duration::ZERO)
        .with_max_times(2);
    (|| {
        attempt += 1;
        let n = attempt;
        async move {
            if n < first_ok {
                Err(E)
            } else {
                Ok(instant(x))
            }
        }
    })
    .retry(builder)
    .await
}

/// tokio-retry with zero delays, around a body that fails until its `first_ok`-th attempt.
async fn tokio_retry_failing(x: u64, first_ok: u32) -> Result<u64, E> {
    let mut attempt = 0;
    let strategy = ExponentialBackoff::from_millis(0).take(2);
    Retry::start(strategy, || {
        attempt += 1;
        let n = attempt;
        async move {
            if n < first_ok {
                Err(E)
            } else {
                Ok(instant(x))
            }
        }
    })
    .await
}

/// Runs `iters` calls of `f` one after the other in one `block_on`, and times the loop.
fn sequential<F, Fut>(rt: &Runtime, iters: u64, f: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<u64, E>>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let out = f(black_box(i)).await;
            assert!(black_box(out).is_ok(), "a benchmarked call failed");
        }
        start.elapsed()
    })
}

/// Calls per chunk in [`paired`].
const CHUNK: u64 = 64;

/// Runs `iters` calls of `variant` and as many of `plain`, in alternating chunks of [`CHUNK`]
/// calls (each well under a scheduler time slice, so that both see the same machine), and
/// returns the variant's time scaled to a plain call of 1 µs: a line of 1010 ns reads "1%
/// slower than the plain call". On a shared machine this paired ratio is stable where two
/// separately timed µs-scale lines are not.
fn paired<P, PF, V, VF>(rt: &Runtime, iters: u64, plain: P, variant: V) -> Duration
where
    P: Fn(u64) -> PF,
    PF: Future<Output = Result<u64, E>>,
    V: Fn(u64) -> VF,
    VF: Future<Output = Result<u64, E>>,
{
    rt.block_on(async {
        let (mut t_plain, mut t_variant) = (Duration::ZERO, Duration::ZERO);
        let mut done = 0;
        while done < iters {
            let n = CHUNK.min(iters - done);
            // Alternate which side goes first, so that neither always runs on a warmer cache.
            for side in [done / CHUNK % 2, 1 - done / CHUNK % 2] {
                let start = Instant::now();
                for i in done..done + n {
                    let out = if side == 0 {
                        plain(black_box(i)).await
                    } else {
                        variant(black_box(i)).await
                    };
                    assert!(black_box(out).is_ok(), "a benchmarked call failed");
                }
                let took = start.elapsed();
                if side == 0 {
                    t_plain += took;
                } else {
                    t_variant += took;
                }
            }
            done += n;
        }
        let ratio = t_variant.as_secs_f64() / t_plain.as_secs_f64();
        Duration::from_secs_f64(ratio * 1e-6 * iters as f64)
    })
}

/// Tasks that share the calls of one batch in [`concurrent`], on the success path.
const TASKS: u64 = 64;

/// Tasks on the retry path: each retry sleeps until the timer's next millisecond tick (no
/// paused clock on a multi-thread runtime), so enough tasks must be in flight to keep both
/// workers busy through the tick and measure the code, not the tick.
const RETRY_TASKS: u64 = 8_192;

/// Runs `iters` calls of `f` spread over `tasks` tasks on a multi-thread runtime, and times
/// the whole batch (spawns and joins included: the same for every line of a group).
fn concurrent<F, Fut>(rt: &Runtime, iters: u64, tasks: u64, f: F) -> Duration
where
    F: Fn(u64) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<u64, E>> + Send + 'static,
{
    rt.block_on(async {
        let tasks = tasks.min(iters).max(1);
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let calls = iters / tasks + u64::from(t < iters % tasks);
                tokio::spawn(async move {
                    for i in 0..calls {
                        let out = f(black_box(i)).await;
                        assert!(black_box(out).is_ok(), "a benchmarked call failed");
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("a benchmark task panicked");
        }
        start.elapsed()
    })
}

fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

fn current_thread_paused() -> Runtime {
    Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime on a paused clock")
}

/// Adds `name` to `group`, timing `f` with [`sequential`] on `rt`.
macro_rules! bench_seq {
    ($group:expr, $rt:expr, $name:expr, $f:path) => {
        $group.bench_function($name, |b| b.iter_custom(|iters| sequential($rt, iters, $f)));
    };
}

fn success(c: &mut Criterion) {
    let rt = current_thread();
    let rt = &rt;
    let mut g = c.benchmark_group("success");
    bench_seq!(g, rt, "plain", now::plain);
    bench_seq!(g, rt, "defaults", now::defaults);
    bench_seq!(g, rt, "breaker", now::breaker);
    bench_seq!(g, rt, "breaker_rate", now::breaker_rate);
    bench_seq!(g, rt, "breaker_calls", now::breaker_calls);
    bench_seq!(g, rt, "budget", now::budget);
    bench_seq!(g, rt, "breaker_and_budget", now::breaker_and_budget);
    bench_seq!(g, rt, "timeout", now::timeout);
    bench_seq!(g, rt, "tokio_timeout", now::tokio_timeout);
    bench_seq!(g, rt, "backon", now::backon);
    bench_seq!(g, rt, "tokio_retry", now::tokio_retry);
    g.finish();

    // The same fns, none inlined into the loop (as a user's call usually is not).
    let mut g = c.benchmark_group("not_inlined");
    bench_seq!(g, rt, "plain", not_inlined::plain);
    bench_seq!(g, rt, "defaults", not_inlined::defaults);
    // The policy read through the live configuration's pointer, set to an override.
    stormguard::config::apply("[retry.\"bench::live\"]\nattempts = 4\n").expect("valid");
    bench_seq!(g, rt, "defaults_overridden", live::defaults);
    bench_seq!(g, rt, "breaker", not_inlined::breaker);
    bench_seq!(g, rt, "breaker_rate", not_inlined::breaker_rate);
    bench_seq!(g, rt, "breaker_calls", not_inlined::breaker_calls);
    bench_seq!(g, rt, "budget", not_inlined::budget);
    bench_seq!(g, rt, "breaker_and_budget", not_inlined::breaker_and_budget);
    bench_seq!(g, rt, "timeout", not_inlined::timeout);
    bench_seq!(g, rt, "tokio_timeout", not_inlined::tokio_timeout);
    bench_seq!(g, rt, "backon", not_inlined::backon);
    bench_seq!(g, rt, "tokio_retry", not_inlined::tokio_retry);
    g.finish();

    // What the ~1 µs body costs on its own (a separately timed line: noisy on a busy machine).
    let mut g = c.benchmark_group("success_1us");
    bench_seq!(g, rt, "plain", micro::plain);
    g.finish();

    // Each option over the same ~1 µs body, as a paired ratio to the plain call (1000 ns = 1×).
    let mut g = c.benchmark_group("ratio_1us");
    macro_rules! bench_ratio {
        ($name:expr, $f:path) => {
            g.bench_function($name, |b| {
                b.iter_custom(|iters| paired(rt, iters, micro::plain, $f))
            });
        };
    }
    bench_ratio!("plain", micro::plain);
    bench_ratio!("defaults", micro::defaults);
    bench_ratio!("breaker", micro::breaker);
    bench_ratio!("breaker_rate", micro::breaker_rate);
    bench_ratio!("breaker_calls", micro::breaker_calls);
    bench_ratio!("budget", micro::budget);
    bench_ratio!("breaker_and_budget", micro::breaker_and_budget);
    bench_ratio!("timeout", micro::timeout);
    bench_ratio!("tokio_timeout", micro::tokio_timeout);
    bench_ratio!("backon", micro::backon);
    bench_ratio!("tokio_retry", micro::tokio_retry);
    g.finish();

    // Hedged calls whose first attempt finishes before the delay (issue 16), none inlined:
    // side by side with the plain fn and `timeout`, then as paired ratios (ns per 1 µs of the
    // baseline: 1100 reads "10% slower than the baseline").
    let mut g = c.benchmark_group("hedge");
    bench_seq!(g, rt, "plain", not_inlined::plain);
    bench_seq!(g, rt, "timeout", not_inlined::timeout);
    bench_seq!(g, rt, "hedge_50ms", hedged::fixed);
    bench_seq!(g, rt, "hedge_p95", hedged::p95);
    bench_seq!(g, rt, "yield/plain", hedged::plain_yield);
    bench_seq!(g, rt, "yield/timeout", hedged::timeout_yield);
    bench_seq!(g, rt, "yield/hedge_50ms", hedged::fixed_yield);
    bench_seq!(g, rt, "yield/hedge_p95", hedged::p95_yield);
    g.finish();
    let mut g = c.benchmark_group("hedge_ratio");
    macro_rules! bench_pair {
        ($name:expr, $base:path, $f:path) => {
            g.bench_function($name, |b| {
                b.iter_custom(|iters| paired(rt, iters, $base, $f))
            });
        };
    }
    bench_pair!("50ms_vs_plain", not_inlined::plain, hedged::fixed);
    bench_pair!("50ms_vs_timeout", not_inlined::timeout, hedged::fixed);
    bench_pair!("p95_vs_plain", not_inlined::plain, hedged::p95);
    bench_pair!("p95_vs_timeout", not_inlined::timeout, hedged::p95);
    bench_pair!("timeout_vs_plain", not_inlined::plain, not_inlined::timeout);
    bench_pair!(
        "yield/50ms_vs_timeout",
        hedged::timeout_yield,
        hedged::fixed_yield
    );
    bench_pair!(
        "yield/p95_vs_timeout",
        hedged::timeout_yield,
        hedged::p95_yield
    );
    bench_pair!(
        "yield/timeout_vs_plain",
        hedged::plain_yield,
        hedged::timeout_yield
    );
    g.finish();

    let mut g = c.benchmark_group("yield_once");
    bench_seq!(g, rt, "plain", yield_once::plain);
    bench_seq!(g, rt, "defaults", yield_once::defaults);
    bench_seq!(g, rt, "timeout", yield_once::timeout);
    g.finish();
}

/// One clock read, as the breaker's window and tokio's timers do it. tokio's `test-util`
/// feature (on in this crate's dev-dependencies, for the paused clock) makes every
/// `tokio::time::Instant::now()` lock the runtime clock's mutex; a build without it reads
/// the std clock directly.
fn clock(c: &mut Criterion) {
    let rt = current_thread();
    let _entered = rt.enter();
    let mut g = c.benchmark_group("clock");
    g.bench_function("std_instant_now", |b| b.iter(std::time::Instant::now));
    g.bench_function("tokio_instant_now", |b| b.iter(tokio::time::Instant::now));
    g.finish();
}

fn retry_path(c: &mut Criterion) {
    let rt = current_thread_paused();
    let rt = &rt;
    let mut g = c.benchmark_group("fail_twice");
    bench_seq!(g, rt, "stormguard", fail_twice::sg);
    bench_seq!(
        g,
        rt,
        "stormguard_breaker_and_budget",
        fail_twice::sg_breaker_and_budget
    );
    bench_seq!(g, rt, "backon", fail_twice::backon);
    bench_seq!(g, rt, "tokio_retry", fail_twice::tokio_retry);
    g.finish();
}

fn contention(c: &mut Criterion) {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a multi-thread runtime");
    let rt = &rt;
    macro_rules! bench_par {
        ($g:expr, $name:expr, $tasks:expr, $f:path) => {
            $g.bench_function($name, |b| {
                b.iter_custom(|iters| concurrent(rt, iters, $tasks, $f))
            });
        };
    }
    let mut g = c.benchmark_group("contention");
    bench_par!(g, "plain", TASKS, now::plain);
    bench_par!(g, "defaults", TASKS, now::defaults);
    bench_par!(g, "breaker_and_budget", TASKS, shared::success);
    g.finish();

    let mut g = c.benchmark_group("contention_fail_once");
    bench_par!(g, "stormguard", RETRY_TASKS, shared::fail_once);
    bench_par!(g, "backon", RETRY_TASKS, shared::backon_fail_once);
    bench_par!(g, "tokio_retry", RETRY_TASKS, shared::tokio_retry_fail_once);
    g.finish();
}

/// A `redis-server` of the bench's own on a free port of 127.0.0.1, without persistence;
/// killed on drop.
#[cfg(feature = "redis")]
struct BenchRedis {
    port: u16,
    process: std::process::Child,
}

#[cfg(feature = "redis")]
impl BenchRedis {
    /// `Err` says why not (no `redis-server` on PATH, or it did not listen within 5 s).
    fn start() -> Result<BenchRedis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        let process = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server did not start ({e}); is it on PATH?"))?;
        let redis = BenchRedis { port, process };
        let until = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > until {
                return Err(format!(
                    "redis-server did not listen on port {port} within 5 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(redis)
    }
}

#[cfg(feature = "redis")]
impl Drop for BenchRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Issue 17: a name shared through `[fleet]` (a live Redis, the `stormguard-fleet` thread
/// syncing every 100 ms beside the bench) against its unshared twin and the plain fn, on the
/// success path, nothing inlined; then as paired ratios (ns per 1 µs of the baseline: 1010
/// reads "1% slower than the baseline").
#[cfg(feature = "redis")]
fn fleet(c: &mut Criterion) {
    let redis = match BenchRedis::start() {
        Ok(r) => r,
        Err(why) => {
            println!("fleet: group skipped: {why}");
            return;
        }
    };
    // `BENCH_FLEET_SHARE=bench_local` shares the other twin instead: the control that tells
    // the sharing from the two fns' code layout.
    let share = std::env::var("BENCH_FLEET_SHARE").unwrap_or_else(|_| "bench_fleet".into());
    println!(
        "fleet: sharing {share:?} through the redis-server on port {}",
        redis.port
    );
    let config = format!(
        "[fleet]\nredis = \"redis://127.0.0.1:{}/0\"\nshare = [\"{share}\"]\nsync = \"100ms\"\nprefix = \"bench\"\n",
        redis.port
    );
    stormguard::config::apply(&config).expect("a valid [fleet] section");
    let until = Instant::now() + Duration::from_secs(5);
    while !stormguard::__private::fleet_connected() {
        if Instant::now() > until {
            println!(
                "fleet: group skipped: not connected to the redis-server on port {} within 5 s",
                redis.port
            );
            stormguard::config::apply("").expect("an empty configuration");
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let rt = current_thread();
    let rt = &rt;
    let mut g = c.benchmark_group("fleet");
    bench_seq!(g, rt, "plain", not_inlined::plain);
    bench_seq!(g, rt, "unshared", fleet_fns::unshared);
    bench_seq!(g, rt, "shared", fleet_fns::shared);
    g.finish();
    let mut g = c.benchmark_group("fleet_ratio");
    macro_rules! bench_pair {
        ($name:expr, $base:path, $f:path) => {
            g.bench_function($name, |b| {
                b.iter_custom(|iters| paired(rt, iters, $base, $f))
            });
        };
    }
    bench_pair!("shared_vs_unshared", fleet_fns::unshared, fleet_fns::shared);
    bench_pair!(
        "unshared2_vs_unshared",
        fleet_fns::unshared,
        fleet_fns::unshared2
    );
    bench_pair!("shared_vs_plain", not_inlined::plain, fleet_fns::shared);
    bench_pair!("unshared_vs_plain", not_inlined::plain, fleet_fns::unshared);
    g.finish();
    // Still shared at the end: the figures were taken while the sync thread ran.
    let connected = stormguard::__private::fleet_connected();
    println!("fleet: still connected to Redis after the group: {connected}");
    // Stop the sync thread before its Redis goes away (no "unreachable" warning).
    stormguard::config::apply("").expect("an empty configuration");
    drop(redis);
}

/// Without feature `redis` there is no `[fleet]`: the group does not exist.
#[cfg(not(feature = "redis"))]
fn fleet(_: &mut Criterion) {}

criterion_group!(benches, success, clock, retry_path, contention, fleet);
criterion_main!(benches);
