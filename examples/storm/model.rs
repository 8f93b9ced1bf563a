//! The storm lab's model: a capacity-limited downstream with a FIFO queue, open-loop clients,
//! an outage, and the retry strategies compared on it; one run per (scenario, strategy).
//!
//! Shared by `examples/storm.rs` (full scale, release) and `tests/storm.rs` (the goals,
//! asserted). Deterministic: a current-thread tokio runtime with a paused clock, a seeded
//! splitmix64 generator for the model, and `stormguard::seed_jitter` for the jitter.
//!
//! Time inside the model is `f64` seconds since the run's start; the clients sleep on tokio's
//! (paused) clock until the model says their response arrives.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;
use stormguard::GuardError;
use tokio::time::Instant;

/// Width of one measurement bucket (load, offered, succeeded), in seconds.
pub const BUCKET: f64 = 0.1;
/// Width of the goodput window, in buckets (1 s).
pub const GOODPUT_WINDOW: usize = 10;
/// Goodput that counts as recovered.
pub const RECOVERED: f64 = 0.95;
/// Amplification "after the first seconds" of the outage leaves out this many seconds.
pub const OUTAGE_HEAD: f64 = 2.0;

/// One scenario: the downstream, the offered load, the outage.
///
/// # Defaults (`Config::scenario('a')`)
/// - capacity 1,000 req/s, offered load 70 % of it from 1,000 clients (open loop, Poisson)
/// - client timeout 1 s (the transport's, e.g. reqwest's `.timeout()`)
/// - outage from 5 s to 15 s: a 1 s stall (connections accepted, nothing answered) ending in
///   a crash that resets every held request at once, then connection refused for 9 s
/// - restart: requests accepted from 15 s on, but none served before 16.5 s (warm-up), then
///   full capacity
/// - no random failures; 60 s of arrivals
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Scenario id, `'a'` to `'d'`.
    pub id: char,
    /// Requests per second the downstream serves when warm.
    pub capacity: f64,
    /// Offered load, as a share of `capacity`.
    pub load: f64,
    /// Number of clients (their arrivals are independent, so they merge into one Poisson
    /// stream of `load · capacity` per second; the number only sets each client's rate).
    pub clients: u32,
    /// A request not answered within this is abandoned by its client (a timeout error); the
    /// downstream still serves it when its turn comes (wasted work).
    pub client_timeout: f64,
    /// Start of the outage (s).
    pub outage_start: f64,
    /// Length of the outage (s), stall included; 0 for none.
    pub outage: f64,
    /// The first part of the outage, in which the downstream holds requests without answering;
    /// it ends in a crash that fails every held request at the same instant.
    pub stall: f64,
    /// Capacity right after the outage, as a share of `capacity` (cold caches).
    pub cold_capacity: f64,
    /// Time for the capacity to grow back linearly to `capacity` (s).
    pub cold_start: f64,
    /// After the outage, the downstream accepts requests at once but serves none for this
    /// long (it is not ready yet); they queue.
    pub warmup: f64,
    /// Share of served requests answered with an error (503), outside the outage.
    pub failure_rate: f64,
    /// Clients make requests from 0 to this (s); the run ends when the last one finishes.
    pub duration: f64,
    /// Seed of the model's generator and of the jitter.
    pub seed: u64,
    /// Brooker's downstream when above 0: no queue, every call answered after an
    /// exponentially distributed round trip of this mean (s); `capacity` only sets the rate.
    pub rtt: f64,
    /// Of the `clients`, the ones simulated in this run (a fleet too big for one run is
    /// split into parts, its clients being independent); each request goes to one of them.
    pub local: u32,
    /// Each client has its own `#[retry]` call site, so its own budget, as its own process
    /// would have (otherwise they all share one call site).
    pub own_sites: bool,
    /// Brooker's downstream only: the share of attempts that stall [`TAIL_STALL`] on top of
    /// their round trip (a heavy tail, drawn independently per attempt); the run then records
    /// every request's latency as its client saw it.
    pub tail: f64,
}

/// What a slow attempt of the latency scenario (h) adds to its round trip (s): 50x the mean
/// round trip of 10 ms.
pub const TAIL_STALL: f64 = 0.5;
/// The client latency histogram has one bucket per millisecond up to this (the last one holds
/// everything slower).
pub const LATENCY_MS_MAX: usize = 5000;

impl Config {
    /// The lab's scenarios at full scale: `'a'` 30 % spare capacity, `'b'` 10 % spare,
    /// `'c'` no outage but a 10 % steady failure rate, `'d'` like `'a'` but the downstream
    /// restarts with cold caches (20 % of its capacity, back to 100 % over 5 s) instead of
    /// after a warm-up.
    pub fn scenario(id: char) -> Config {
        let a = Config {
            id: 'a',
            capacity: 1000.0,
            load: 0.7,
            clients: 1000,
            client_timeout: 1.0,
            outage_start: 5.0,
            outage: 10.0,
            stall: 1.0,
            cold_capacity: 1.0,
            cold_start: 0.0,
            warmup: 1.5,
            failure_rate: 0.0,
            duration: 60.0,
            seed: 0x5eed_0001,
            rtt: 0.0,
            local: 1000,
            own_sites: false,
            tail: 0.0,
        };
        match id {
            'a' => a,
            'b' => Config {
                id: 'b',
                load: 0.9,
                seed: 0x5eed_0002,
                ..a
            },
            'c' => Config {
                id: 'c',
                outage: 0.0,
                stall: 0.0,
                failure_rate: 0.1,
                seed: 0x5eed_0003,
                ..a
            },
            'd' => Config {
                id: 'd',
                warmup: 0.0,
                cold_capacity: 0.2,
                cold_start: 5.0,
                seed: 0x5eed_0004,
                ..a
            },
            // Brooker 2022, "the effect of failure rate": 100 clients x 10 rps against a
            // server that fails at random, RTT exponential (mean 10 ms), 10 s.
            'e' => Config {
                id: 'e',
                capacity: 1000.0,
                load: 1.0,
                clients: 100,
                local: 100,
                outage: 0.0,
                stall: 0.0,
                warmup: 0.0,
                failure_rate: 0.1,
                duration: 10.0,
                rtt: 0.01,
                seed: 0x5eed_0005,
                ..a
            },
            // Brooker 2022, "the effect of client count": 1,000 rps from N clients, each
            // with its own budget, through a 30 s total outage (after 20 s of traffic).
            'f' => Config {
                id: 'f',
                capacity: 1000.0,
                load: 1.0,
                clients: 100,
                local: 100,
                own_sites: true,
                outage_start: 20.0,
                outage: 30.0,
                stall: 0.0,
                warmup: 0.0,
                duration: 60.0,
                rtt: 0.01,
                seed: 0x5eed_0006,
                ..a
            },
            // A lone client: one call per 10 s (Poisson) at a 1% failure rate.
            'g' => Config {
                id: 'g',
                capacity: 0.1,
                load: 1.0,
                clients: 1,
                local: 1,
                outage: 0.0,
                stall: 0.0,
                warmup: 0.0,
                failure_rate: 0.01,
                duration: 50_000.0,
                rtt: 0.01,
                seed: 0x5eed_0007,
                ..a
            },
            // Tail latency: no outage, no failures, Brooker's downstream (no queue, RTT exp.
            // mean 10 ms) where 5% of attempts stall 500 ms more; 1,000 rps for 30 s.
            'h' => Config {
                id: 'h',
                capacity: 1000.0,
                load: 1.0,
                clients: 100,
                local: 100,
                outage: 0.0,
                stall: 0.0,
                warmup: 0.0,
                duration: 30.0,
                rtt: 0.01,
                tail: 0.05,
                seed: 0x5eed_0008,
                ..a
            },
            _ => panic!("scenarios are 'a' to 'h'"),
        }
    }

    /// The failure rates of the sweep of scenario (e).
    pub const FAILURE_RATES: [f64; 10] = [0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75];
    /// The fleet sizes of scenario (f).
    pub const FLEETS: [u32; 4] = [1, 10, 100, 1000];
    /// The shares of slow attempts of scenario (h): 5% (95% of calls ~10 ms, 5% ~500 ms) and
    /// issue 16's example, 2% of calls 50x slower.
    pub const TAILS: [f64; 2] = [0.05, 0.02];

    /// Every run of a scenario: one config for (a)–(d) and (g), one per failure rate for (e),
    /// one per part of each fleet for (f) (at most [`FLEET_SITES`] clients a run), one per
    /// share of slow attempts for (h).
    pub fn sweep(id: char) -> Vec<Config> {
        let base = Config::scenario(id);
        match id {
            'e' => Config::FAILURE_RATES
                .iter()
                .enumerate()
                .map(|(i, &x)| Config {
                    failure_rate: x,
                    seed: base.seed + i as u64 * 0x100,
                    ..base
                })
                .collect(),
            'f' => Config::FLEETS
                .iter()
                .flat_map(|&n| Config::fleet(n))
                .collect(),
            'h' => Config::TAILS
                .iter()
                .enumerate()
                .map(|(i, &tail)| Config {
                    tail,
                    seed: base.seed + i as u64 * 0x100,
                    ..base
                })
                .collect(),
            _ => vec![base],
        }
    }

    /// The runs of a fleet of `n` clients in scenario (f), `FLEET_SITES` clients a run.
    pub fn fleet(n: u32) -> Vec<Config> {
        let base = Config::scenario('f');
        let per_run = (FLEET_SITES.len() as u32).min(n);
        (0..n.div_ceil(per_run))
            .map(|part| Config {
                clients: n,
                local: per_run,
                seed: base.seed + u64::from(n) * 0x1000 + u64::from(part),
                ..base
            })
            .collect()
    }

    /// The strategies compared in this scenario.
    pub fn kinds(&self) -> &'static [Kind] {
        match self.id {
            'e' | 'f' => &Kind::BROOKER,
            'g' => &[Kind::NoRetry, Kind::Defaults],
            'h' => &Kind::HEDGED,
            'a' => &Kind::ALL_HEDGED,
            _ => &Kind::ALL,
        }
    }

    /// Requests per second made in this run.
    fn rate_here(&self) -> f64 {
        self.load * self.capacity * f64::from(self.local) / f64::from(self.clients.max(1))
    }

    /// One line describing the scenario.
    pub fn describe(&self) -> String {
        match self.id {
            'e' => return "(e) Brooker's model: 100 clients x 10 rps, random failures at rate x, RTT exp. mean 10 ms, 10 s".to_owned(),
            'f' => return "(f) Brooker's model: 1,000 rps from N clients, each its own budget, 30 s total outage".to_owned(),
            'g' => return "(g) a lone client: one call per 10 s (Poisson), 1% of calls fail".to_owned(),
            'h' => return format!(
                "(h) tail latency: 1,000 rps, RTT exp. mean 10 ms, a share of attempts {:.0} ms slower, no failures, {:.0} s",
                TAIL_STALL * 1000.0,
                self.duration
            ),
            _ => {}
        }
        let spare = ((1.0 - self.load) * 100.0).round();
        if self.outage > 0.0 && self.cold_start > 0.0 {
            format!(
                "({}) {:.0}% spare capacity, {:.0} s outage, cold restart ({:.0}% capacity, full after {:.0} s)",
                self.id,
                spare,
                self.outage,
                self.cold_capacity * 100.0,
                self.cold_start
            )
        } else if self.outage > 0.0 {
            format!(
                "({}) {:.0}% spare capacity, {:.0} s outage",
                self.id, spare, self.outage
            )
        } else {
            format!(
                "({}) {:.0}% spare capacity, no outage, {:.0}% of calls fail",
                self.id,
                spare,
                self.failure_rate * 100.0
            )
        }
    }

    fn outage_end(&self) -> f64 {
        self.outage_start + self.outage
    }

    fn crash(&self) -> f64 {
        self.outage_start + self.stall.min(self.outage)
    }

    /// Service rate at time `s` (requests per second).
    fn capacity_at(&self, s: f64) -> f64 {
        let end = self.outage_end();
        if self.outage <= 0.0 || s < end || self.cold_start <= 0.0 {
            return self.capacity;
        }
        let warm = ((s - end - self.warmup) / self.cold_start).clamp(0.0, 1.0);
        self.capacity * (self.cold_capacity + (1.0 - self.cold_capacity) * warm)
    }
}

/// splitmix64: tiny, seedable, good enough for arrival times and coin flips.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with `rate` events per second (a Poisson gap).
    pub fn gap(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}

/// What a downstream call fails with.
#[derive(Debug)]
pub enum CallError {
    /// Connection refused: the downstream is down (fails at once).
    Refused,
    /// Connection reset: the downstream crashed while holding the request.
    Reset,
    /// No answer within the client timeout (the downstream may still serve it later).
    Timeout,
    /// The downstream answered 503 (scenario c).
    Unavailable,
    /// stormguard refused the attempt (open breaker).
    Guard(GuardError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Refused => f.write_str("connection refused"),
            CallError::Reset => f.write_str("connection reset"),
            CallError::Timeout => f.write_str("timed out"),
            CallError::Unavailable => f.write_str("HTTP 503"),
            CallError::Guard(e) => write!(f, "{e}"),
        }
    }
}

impl From<GuardError> for CallError {
    fn from(e: GuardError) -> Self {
        CallError::Guard(e)
    }
}

/// Counts per bucket of `BUCKET` seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Series {
    /// Calls that reached the downstream (refused and reset ones included).
    pub calls: Vec<u32>,
    /// Logical client requests made in the bucket.
    pub offered: Vec<u32>,
    /// Of those, the ones that succeeded in the end (after retries).
    pub succeeded: Vec<u32>,
    /// Requests by their latency as the client saw it (first attempt to the call's result),
    /// in whole milliseconds, up to [`LATENCY_MS_MAX`]; empty unless the scenario has a tail.
    pub latency_ms: Vec<u32>,
}

/// The downstream, and the lab's meters.
pub struct Downstream {
    cfg: Config,
    t0: Instant,
    /// When the server finishes the last request queued so far (s).
    next_free: Cell<f64>,
    rng: RefCell<Rng>,
    series: RefCell<Series>,
    in_flight: Cell<u64>,
    /// Brooker's token bucket, one per local client.
    buckets: RefCell<Vec<f64>>,
}

impl Downstream {
    fn new(cfg: Config, t0: Instant) -> Downstream {
        let buckets = ((cfg.duration / BUCKET).ceil() as usize) + 1;
        Downstream {
            cfg,
            t0,
            next_free: Cell::new(0.0),
            rng: RefCell::new(Rng::new(cfg.seed ^ 0xd0_d0_d0)),
            series: RefCell::new(Series {
                calls: vec![0; buckets],
                offered: vec![0; buckets],
                succeeded: vec![0; buckets],
                latency_ms: if cfg.tail > 0.0 {
                    vec![0; LATENCY_MS_MAX + 1]
                } else {
                    Vec::new()
                },
            }),
            in_flight: Cell::new(0),
            buckets: RefCell::new(vec![sites::BUCKET_SIZE; cfg.local.max(1) as usize]),
        }
    }

    fn now(&self) -> f64 {
        Instant::now().duration_since(self.t0).as_secs_f64()
    }

    fn at(&self, s: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(s.max(0.0))
    }

    fn bucket(s: f64) -> usize {
        (s / BUCKET) as usize
    }

    /// One call to the downstream: what it costs the server, and what the client sees when.
    pub async fn call(&self) -> Result<(), CallError> {
        let cfg = &self.cfg;
        let now = self.now();
        {
            let mut series = self.series.borrow_mut();
            let b = Self::bucket(now);
            if b >= series.calls.len() {
                series.calls.resize(b + 1, 0);
            }
            series.calls[b] += 1;
        }
        let in_outage = cfg.outage > 0.0 && now >= cfg.outage_start && now < cfg.outage_end();
        if in_outage && now >= cfg.crash() {
            return Err(CallError::Refused);
        }
        if cfg.rtt > 0.0 {
            // Brooker's server: no queue, a random round trip, random failures.
            let (rtt, failed) = {
                let mut rng = self.rng.borrow_mut();
                let mut rtt = rng.gap(1.0 / cfg.rtt);
                if cfg.tail > 0.0 && rng.unit() < cfg.tail {
                    rtt += TAIL_STALL;
                }
                (rtt, rng.unit() < cfg.failure_rate)
            };
            tokio::time::sleep_until(self.at(now + rtt)).await;
            return if failed {
                Err(CallError::Unavailable)
            } else {
                Ok(())
            };
        }
        // Where the request would start being served.
        let mut start = self.next_free.get().max(now);
        if cfg.outage > 0.0 && now >= cfg.outage_end() {
            start = start.max(cfg.outage_end() + cfg.warmup);
        }
        let held =
            in_outage || (cfg.outage > 0.0 && now < cfg.outage_start && start >= cfg.outage_start);
        if held {
            // The stall: accepted, never answered; the crash fails everything held at once.
            let give_up = now + cfg.client_timeout;
            if give_up <= cfg.crash() {
                tokio::time::sleep_until(self.at(give_up)).await;
                return Err(CallError::Timeout);
            }
            tokio::time::sleep_until(self.at(cfg.crash())).await;
            return Err(CallError::Reset);
        }
        // FIFO, one request at a time at the current service rate. The work is done (and
        // the queue advanced) whether or not the client is still waiting.
        let finish = start + 1.0 / cfg.capacity_at(start);
        self.next_free.set(finish);
        let failed = cfg.failure_rate > 0.0 && self.rng.borrow_mut().unit() < cfg.failure_rate;
        if finish - now > cfg.client_timeout {
            tokio::time::sleep_until(self.at(now + cfg.client_timeout)).await;
            return Err(CallError::Timeout);
        }
        tokio::time::sleep_until(self.at(finish)).await;
        if failed {
            Err(CallError::Unavailable)
        } else {
            Ok(())
        }
    }
}

/// A strategy: one logical client request of local client `client`, with its retries,
/// against the downstream.
pub type Strategy =
    fn(Rc<Downstream>, usize) -> Pin<Box<dyn Future<Output = Result<(), CallError>>>>;

#[path = "sites.rs"]
mod sites;
pub use sites::FLEET_SITES;

/// The strategies, in the order of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One attempt.
    NoRetry,
    /// Three attempts back to back.
    Immediate,
    /// Three attempts, 500 ms apart.
    Fixed,
    /// Three attempts, 1 s then 2 s apart, no jitter, no budget.
    Exp,
    /// Three attempts, full jitter over 1 s then 2 s, no budget.
    ExpJitter,
    /// `#[retry]` with no keys: 100 ms → 2 s, full jitter, the call site's budget.
    Defaults,
    /// The defaults plus a circuit breaker (whose name is also the budget's).
    Breaker,
    /// Brooker's "three retries": up to 4 attempts, back to back.
    ThreeRetries,
    /// Brooker's token bucket per client: 10% of calls (0.1 token each), size 5, starts
    /// full; up to 3 retries, each needs a token.
    BrookerBucket,
    /// `#[retry(hedge = "50ms")]`: the defaults, and the next attempt beside one that has not
    /// answered within 50 ms.
    HedgeFixed,
    /// `#[retry(hedge = "p95")]`: the defaults, and the next attempt beside one slower than
    /// the call site's recent 95th-percentile attempt latency.
    HedgeP95,
}

impl Kind {
    /// Every strategy, in table order.
    pub const ALL: [Kind; 7] = [
        Kind::NoRetry,
        Kind::Immediate,
        Kind::Fixed,
        Kind::Exp,
        Kind::ExpJitter,
        Kind::Defaults,
        Kind::Breaker,
    ];

    /// The strategies of Brooker's models, (e) and (f).
    pub const BROOKER: [Kind; 4] = [
        Kind::NoRetry,
        Kind::ThreeRetries,
        Kind::Defaults,
        Kind::BrookerBucket,
    ];

    /// The outage scenario (a): every strategy, and both hedges (which pay their budget).
    pub const ALL_HEDGED: [Kind; 9] = [
        Kind::NoRetry,
        Kind::Immediate,
        Kind::Fixed,
        Kind::Exp,
        Kind::ExpJitter,
        Kind::Defaults,
        Kind::Breaker,
        Kind::HedgeFixed,
        Kind::HedgeP95,
    ];

    /// The latency scenario (h): no hedge (the defaults), a fixed delay, a percentile.
    pub const HEDGED: [Kind; 3] = [Kind::Defaults, Kind::HedgeFixed, Kind::HedgeP95];

    /// Every strategy of any scenario.
    pub const EVERY: [Kind; 11] = [
        Kind::NoRetry,
        Kind::Immediate,
        Kind::Fixed,
        Kind::Exp,
        Kind::ExpJitter,
        Kind::Defaults,
        Kind::Breaker,
        Kind::ThreeRetries,
        Kind::BrookerBucket,
        Kind::HedgeFixed,
        Kind::HedgeP95,
    ];

    /// The `strategy` field of the JSON lines.
    pub fn key(self) -> &'static str {
        match self {
            Kind::NoRetry => "no_retry",
            Kind::Immediate => "immediate_x3",
            Kind::Fixed => "fixed_500ms",
            Kind::Exp => "exp_no_jitter",
            Kind::ExpJitter => "exp_full_jitter",
            Kind::Defaults => "stormguard_defaults",
            Kind::Breaker => "stormguard_breaker",
            Kind::ThreeRetries => "three_retries",
            Kind::BrookerBucket => "brooker_bucket",
            Kind::HedgeFixed => "stormguard_hedge_50ms",
            Kind::HedgeP95 => "stormguard_hedge_p95",
        }
    }

    /// The row label of the table.
    pub fn label(self) -> &'static str {
        match self {
            Kind::NoRetry => "no retries",
            Kind::Immediate => "immediate retry x3",
            Kind::Fixed => "fixed 500ms x3",
            Kind::Exp => "exp 1s->2s, no jitter",
            Kind::ExpJitter => "exp 1s->2s, full jitter",
            Kind::Defaults => "stormguard defaults",
            Kind::Breaker => "stormguard + breaker",
            Kind::ThreeRetries => "three retries",
            Kind::BrookerBucket => "Brooker's bucket",
            Kind::HedgeFixed => "stormguard hedge 50ms",
            Kind::HedgeP95 => "stormguard hedge p95",
        }
    }
}

stormguard::budgets! {
    // Never runs dry (it starts with min(capacity, min_per_sec × window) = 10⁹ tokens, for an
    // hour): isolates backoff and jitter from the budget.
    lab_unlimited { capacity: 1000000000, ratio: 1.0, min_per_sec: 1000000, window: "1h" }
}

stormguard::breakers! {
    lab_breaker { consecutive_failures: 5, open_for: "2s", open_max: "2s" }
}

/// The breaker of the "stormguard + breaker" strategy (its budget has the same name).
pub const BREAKER: &str = "lab_breaker";
/// How long that breaker stays open (s).
pub const BREAKER_OPEN_FOR: f64 = 2.0;

async fn no_retry(ds: Rc<Downstream>) -> Result<(), CallError> {
    ds.call().await
}

/// What a hand-written retry loop usually looks like: up to 3 calls, no delay between them
/// (the lab's "immediate retry x3", here and over the wire).
pub async fn three_calls_at_once<T, E, F: Future<Output = Result<T, E>>>(
    mut call: impl FnMut() -> F,
) -> Result<T, E> {
    let mut last = call().await;
    for _ in 1..3 {
        if last.is_ok() {
            break;
        }
        last = call().await;
    }
    last
}

async fn immediate(ds: Rc<Downstream>) -> Result<(), CallError> {
    three_calls_at_once(|| ds.call()).await
}

#[stormguard::retry(
    attempts = 3,
    backoff = "fixed",
    base = "500ms",
    jitter = "none",
    budget = "lab_unlimited"
)]
async fn fixed(ds: Rc<Downstream>) -> Result<(), CallError> {
    ds.call().await
}

#[stormguard::retry(
    attempts = 3,
    base = "1s",
    max = "4s",
    jitter = "none",
    budget = "lab_unlimited"
)]
async fn exp(ds: Rc<Downstream>) -> Result<(), CallError> {
    ds.call().await
}

#[stormguard::retry(
    attempts = 3,
    base = "1s",
    max = "4s",
    jitter = "full",
    budget = "lab_unlimited"
)]
async fn exp_jitter(ds: Rc<Downstream>) -> Result<(), CallError> {
    ds.call().await
}

#[stormguard::retry]
async fn defaults(ds: Rc<Downstream>) -> Result<(), CallError> {
    ds.call().await
}

#[stormguard::retry(breaker = "lab_breaker")]
async fn breaker(ds: Rc<Downstream>) -> Result<(), CallError> {
    ds.call().await
}

/// The fn behind a strategy.
pub fn strategy(kind: Kind) -> Strategy {
    match kind {
        Kind::NoRetry => |ds, _| Box::pin(no_retry(ds)),
        Kind::Immediate => |ds, _| Box::pin(immediate(ds)),
        Kind::Fixed => |ds, _| Box::pin(fixed(ds)),
        Kind::Exp => |ds, _| Box::pin(exp(ds)),
        Kind::ExpJitter => |ds, _| Box::pin(exp_jitter(ds)),
        Kind::Defaults => |ds, client| {
            if ds.cfg.own_sites {
                FLEET_SITES[client % FLEET_SITES.len()](ds)
            } else {
                Box::pin(defaults(ds))
            }
        },
        Kind::Breaker => |ds, _| Box::pin(breaker(ds)),
        Kind::ThreeRetries => |ds, _| Box::pin(sites::three_retries(ds)),
        Kind::BrookerBucket => |ds, client| Box::pin(sites::brooker_bucket(ds, client)),
        Kind::HedgeFixed => |ds, _| Box::pin(sites::hedge_fixed(ds)),
        Kind::HedgeP95 => |ds, _| Box::pin(sites::hedge_p95(ds)),
    }
}

// ---------------------------------------------------------------------------------------------
// One run per process. Budgets and breakers are process-wide statics (one per call site or
// name), and the runtime's clock origin is taken once per process: a second run in the same
// process would start with used budgets and breakers, and with the budget's seconds shifted
// by however long the earlier runs took in real time. So each (scenario, strategy) runs in a
// child process of its own (the same executable, started again with `STORM_RUN` in its
// environment), and the parent only collects the counts.
// ---------------------------------------------------------------------------------------------

/// The environment variable that makes a process one run of the lab.
pub const RUN_VAR: &str = "STORM_RUN";
const SERIES_TAG: &str = "storm-series";
/// Printed by a child whose runtime started too long after the clock origin was taken.
const MISALIGNED_TAG: &str = "storm-misaligned";

impl Config {
    fn encode(&self) -> String {
        let f = [
            self.capacity,
            self.load,
            self.clients as f64,
            self.client_timeout,
            self.outage_start,
            self.outage,
            self.stall,
            self.cold_capacity,
            self.cold_start,
            self.warmup,
            self.failure_rate,
            self.duration,
            self.rtt,
            self.local as f64,
            f64::from(u8::from(self.own_sites)),
            self.tail,
        ];
        let nums: Vec<String> = f.iter().map(|x| format!("{x:?}")).collect();
        format!("{}:{}:{}", self.id, self.seed, nums.join(","))
    }

    fn decode(s: &str) -> Option<Config> {
        let mut parts = s.splitn(3, ':');
        let id = parts.next()?.chars().next()?;
        let seed = parts.next()?.parse().ok()?;
        let f: Vec<f64> = parts
            .next()?
            .split(',')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        if f.len() != 16 {
            return None;
        }
        Some(Config {
            id,
            capacity: f[0],
            load: f[1],
            clients: f[2] as u32,
            client_timeout: f[3],
            outage_start: f[4],
            outage: f[5],
            stall: f[6],
            cold_capacity: f[7],
            cold_start: f[8],
            warmup: f[9],
            failure_rate: f[10],
            duration: f[11],
            seed,
            rtt: f[12],
            local: f[13] as u32,
            own_sites: f[14] != 0.0,
            tail: f[15],
        })
    }
}

impl Series {
    /// Adds another run's counts, bucket by bucket (the parts of a fleet).
    pub fn add(&mut self, other: &Series) {
        fn sum(a: &mut Vec<u32>, b: &[u32]) {
            if a.len() < b.len() {
                a.resize(b.len(), 0);
            }
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        sum(&mut self.calls, &other.calls);
        sum(&mut self.offered, &other.offered);
        sum(&mut self.succeeded, &other.succeeded);
        sum(&mut self.latency_ms, &other.latency_ms);
    }

    fn encode(&self) -> String {
        let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let mut line = format!(
            "{SERIES_TAG} {} {} {}",
            list(&self.calls),
            list(&self.offered),
            list(&self.succeeded)
        );
        if !self.latency_ms.is_empty() {
            line.push(' ');
            line.push_str(&list(&self.latency_ms));
        }
        line
    }

    fn decode(line: &str) -> Option<Series> {
        // A test harness may print its own words before it on the same line.
        let at = line.find(SERIES_TAG)?;
        let mut parts = line[at + SERIES_TAG.len()..].split_whitespace();
        let mut list =
            || -> Option<Vec<u32>> { parts.next()?.split(',').map(|x| x.parse().ok()).collect() };
        Some(Series {
            calls: list()?,
            offered: list()?,
            succeeded: list()?,
            // Only a scenario with a tail records latencies.
            latency_ms: list().unwrap_or_default(),
        })
    }
}

/// In a child process started by [`run_isolated`]: runs the one (scenario, strategy) it was
/// given, prints the counts, and returns true. Elsewhere: does nothing and returns false.
pub fn child_main() -> bool {
    let Ok(spec) = std::env::var(RUN_VAR) else {
        return false;
    };
    let (kind, cfg) = spec.split_once(';').expect("STORM_RUN is kind;config");
    let kind = Kind::EVERY
        .into_iter()
        .find(|k| k.key() == kind)
        .expect("a known strategy");
    let cfg = Config::decode(cfg).expect("a config encoded by the parent");
    match run_here(cfg, strategy(kind)) {
        Some(series) => println!("{}", series.encode()),
        None => println!("{MISALIGNED_TAG}"),
    }
    true
}

/// Runs (scenario, strategy) in a child process. `command` must start this program again so
/// that it reaches [`child_main`] (the example: its own executable; a test: its test binary,
/// filtered to the test that calls `child_main`).
pub fn run_isolated(
    command: impl Fn() -> std::process::Command,
    cfg: &Config,
    kind: Kind,
) -> Series {
    for _ in 0..5 {
        let out = command()
            .env(RUN_VAR, format!("{};{}", kind.key(), cfg.encode()))
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("starting a run of the storm lab");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if let Some(series) = stdout.lines().find_map(Series::decode) {
            return series;
        }
        if !stdout.contains(MISALIGNED_TAG) {
            panic!(
                "run {} / {} printed no series ({}):\n{stdout}",
                cfg.id,
                kind.key(),
                out.status
            );
        }
    }
    panic!(
        "run {} / {}: the clock origin was misaligned 5 times in a row",
        cfg.id,
        kind.key()
    )
}

/// Runs many (scenario, strategy) pairs, `parallel` child processes at a time, calling
/// `done(count)` as each finishes; returns the series in the order given.
pub fn run_all(
    command: impl Fn() -> std::process::Command + Sync,
    runs: &[(Config, Kind)],
    parallel: usize,
    done: impl Fn(usize) + Sync,
) -> Vec<Series> {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Series>>> = runs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, SeqCst);
                let Some((cfg, kind)) = runs.get(i) else {
                    break;
                };
                let series = run_isolated(&command, cfg, *kind);
                *results[i].lock().unwrap() = Some(series);
                done(finished.fetch_add(1, SeqCst) + 1);
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().unwrap().expect("every run finished"))
        .collect()
}

/// Runs one (scenario, strategy) in this process, on a fresh current-thread runtime with a
/// paused clock. Once per process (see above): a second call panics. `None` when the runtime
/// started too long after the clock origin was taken (the process was descheduled in
/// between): the run would not be reproducible; run it again in a new process.
pub fn run_here(cfg: Config, strategy: Strategy) -> Option<Series> {
    static RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    assert!(
        !RAN.swap(true, std::sync::atomic::Ordering::SeqCst),
        "one run per process: budgets and breakers keep their state"
    );
    // The runtime reads time (the budget's `min_per_sec` seconds, the breaker's windows) as
    // whole units since a process-wide origin, taken from the real clock at first use. Taken
    // here, just before the paused clock starts, the origin sits the same whole number of
    // seconds (plus a few microseconds, well under the clock's 1 ms step) before this run's
    // start in every process, so the seconds fall at the same simulated instants every time.
    let origin = retry_runtime::__private::origin();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let local = tokio::task::LocalSet::new();
    stormguard::seed_jitter(cfg.seed);
    local.block_on(&rt, async move {
        let phase = Instant::now().duration_since(origin).subsec_nanos();
        if phase >= 900_000 {
            return None;
        }
        let ds = Rc::new(Downstream::new(cfg, Instant::now()));
        let mut rng = Rng::new(cfg.seed);
        let rate = cfg.rate_here();
        let mut pick = Rng::new(cfg.seed ^ 0x00c1_1e47);
        let mut t = 0.0;
        loop {
            t += rng.gap(rate);
            if t >= cfg.duration {
                break;
            }
            tokio::time::sleep_until(ds.at(t)).await;
            // The clock moves in whole milliseconds: count the request where it is made.
            let b = Downstream::bucket(ds.now());
            ds.series.borrow_mut().offered[b] += 1;
            ds.in_flight.set(ds.in_flight.get() + 1);
            let ds = ds.clone();
            let client = (pick.next_u64() % u64::from(cfg.local.max(1))) as usize;
            tokio::task::spawn_local(async move {
                let made = Instant::now();
                let ok = strategy(ds.clone(), client).await.is_ok();
                let mut series = ds.series.borrow_mut();
                if ok {
                    series.succeeded[b] += 1;
                }
                if !series.latency_ms.is_empty() {
                    let ms = (made.elapsed().as_micros() + 500) / 1000;
                    series.latency_ms[(ms as usize).min(LATENCY_MS_MAX)] += 1;
                }
                drop(series);
                ds.in_flight.set(ds.in_flight.get() - 1);
            });
        }
        // Every request ends within its attempts' timeouts and delays: wait for the last.
        let stop = Instant::now() + Duration::from_secs(120);
        while ds.in_flight.get() > 0 && Instant::now() < stop {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(ds.in_flight.get(), 0, "a request outlived the run");
        let series = ds.series.borrow().clone();
        Some(series)
    })
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Scenario id.
    pub scenario: char,
    /// The strategy.
    pub kind: Kind,
    /// Downstream calls / logical requests during the outage (the whole run without one).
    pub amplification: f64,
    /// The same, leaving out the outage's first `OUTAGE_HEAD` seconds.
    /// (Without an outage, `amplification - 1` is the extra load retries and hedges cost.)
    pub amplification_late: f64,
    /// Most calls in one 100 ms bucket, as a multiple of what the downstream serves in 100 ms.
    pub peak_load: f64,
    /// Seconds from the end of the outage until every later 1 s window has ≥ 95 % goodput;
    /// `None` when it never gets there (or when there is no outage).
    pub recovery_s: Option<f64>,
    /// Logical requests that succeeded (after retries) / logical requests, whole run.
    pub success_rate: f64,
    /// Calls per 100 ms bucket as a multiple of capacity, for the chart.
    pub load: Vec<f64>,
    /// Client latency (ms) at the 50th, 99th and 99.9th percentiles, in a scenario that
    /// records it (with a tail).
    pub latency_ms: Option<[f64; 3]>,
}

impl Report {
    /// Measures a run.
    pub fn new(cfg: &Config, kind: Kind, s: &Series) -> Report {
        let n = s.offered.len().min(s.calls.len());
        let sum = |v: &[u32], a: usize, b: usize| -> f64 {
            v[a.min(n)..b.min(n)].iter().map(|&x| x as f64).sum()
        };
        let ratio = |a: usize, b: usize| sum(&s.calls, a, b) / sum(&s.offered, a, b).max(1.0);
        let (os, oe) = (
            (cfg.outage_start / BUCKET).round() as usize,
            ((cfg.outage_start + cfg.outage) / BUCKET).round() as usize,
        );
        let (amplification, amplification_late) = if cfg.outage > 0.0 {
            let head = (OUTAGE_HEAD / BUCKET).round() as usize;
            (ratio(os, oe), ratio(os + head, oe))
        } else {
            (ratio(0, n), ratio(0, n))
        };
        let per_bucket = cfg.capacity * BUCKET;
        let load: Vec<f64> = s.calls.iter().map(|&c| c as f64 / per_bucket).collect();
        let peak_load = load.iter().cloned().fold(0.0, f64::max);
        let recovery_s = if cfg.outage > 0.0 {
            let last = (cfg.duration / BUCKET).floor() as usize - GOODPUT_WINDOW;
            let goodput = |i: usize| {
                sum(&s.succeeded, i, i + GOODPUT_WINDOW)
                    / sum(&s.offered, i, i + GOODPUT_WINDOW).max(1.0)
            };
            match (oe..=last).rev().find(|&i| goodput(i) < RECOVERED) {
                None => Some(0.0),
                Some(i) if i == last => None,
                Some(i) => Some((i + 1 - oe) as f64 * BUCKET),
            }
        } else {
            None
        };
        let success_rate = s.succeeded.iter().map(|&x| x as f64).sum::<f64>()
            / s.offered.iter().map(|&x| x as f64).sum::<f64>().max(1.0);
        let latency_ms = (!s.latency_ms.is_empty())
            .then(|| [0.5, 0.99, 0.999].map(|q| percentile_ms(&s.latency_ms, q)));
        Report {
            scenario: cfg.id,
            kind,
            amplification,
            amplification_late,
            peak_load,
            recovery_s,
            success_rate,
            load,
            latency_ms,
        }
    }
}

/// The `q` quantile (0.99: p99) of a histogram of whole milliseconds: the least latency that at
/// least `q` of the requests did not exceed (the nearest-rank method).
pub fn percentile_ms(histogram: &[u32], q: f64) -> f64 {
    let total: u64 = histogram.iter().map(|&n| u64::from(n)).sum();
    let rank = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (ms, &n) in histogram.iter().enumerate() {
        seen += u64::from(n);
        if seen >= rank {
            return ms as f64;
        }
    }
    histogram.len().saturating_sub(1) as f64
}
