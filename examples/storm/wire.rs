//! `--wire`: the storm lab's amplification claim checked on real sockets, at small scale.
//!
//! A local axum server on 127.0.0.1 (a free port) serves `capacity` requests per second:
//! `WORKERS` permits of a (fair, FIFO) tokio `Semaphore`, each held for a fixed service time.
//! The work runs in a task of its own, so a request whose client gave up is still served
//! (wasted work, as in the model). During the outage it answers 503 at once (fails fast; the
//! port and pooled connections survive, unlike a real connection refusal). Real reqwest
//! clients with a 1 s timeout make Poisson arrivals at 70 % of capacity, one strategy per
//! server, all strategies at the same time. Then the same scenario is simulated by the model
//! and both are printed side by side.
//!
//! Bounded: arrivals stop after `duration`; every request ends within its attempts' timeouts
//! and delays, and the wait for the last one gives up after `DRAIN` anyway.

use crate::model::{self, Config, Kind};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Concurrent requests the server works on.
const WORKERS: usize = 4;
/// Longest wait for the last requests after arrivals stop.
const DRAIN: Duration = Duration::from_secs(15);
/// The strategies compared on the wire.
const KINDS: [Kind; 4] = [
    Kind::NoRetry,
    Kind::Immediate,
    Kind::ExpJitter,
    Kind::Defaults,
];

/// The wire scenario: 200 req/s, 70 % load from 50 clients, a 3 s outage after 3 s, 15 s.
fn config() -> Config {
    Config {
        id: 'w',
        capacity: 200.0,
        load: 0.7,
        clients: 50,
        client_timeout: 1.0,
        outage_start: 3.0,
        outage: 3.0,
        stall: 0.0,
        cold_capacity: 1.0,
        cold_start: 0.0,
        warmup: 0.0,
        failure_rate: 0.0,
        duration: 15.0,
        seed: 0x5eed_0077,
        rtt: 0.0,
        local: 50,
        own_sites: false,
        tail: 0.0,
    }
}

// ---------------------------------------------------------------------------------------------
// The clients: what a user of stormguard writes.
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum WireError {
    Status(u16),
    Transport(reqwest::Error),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Status(code) => write!(f, "HTTP {code}"),
            WireError::Transport(e) => write!(f, "transport error: {e}"),
        }
    }
}

async fn get_once(client: &reqwest::Client, url: &str) -> Result<(), WireError> {
    let response = client.get(url).send().await.map_err(WireError::Transport)?;
    match response.status() {
        s if s.is_success() => Ok(()),
        s => Err(WireError::Status(s.as_u16())),
    }
}

stormguard::budgets! {
    wire_unlimited { capacity: 1000000000, ratio: 1.0, min_per_sec: 1000000 }
}

async fn wire_immediate(client: &reqwest::Client, url: &str) -> Result<(), WireError> {
    model::three_calls_at_once(|| get_once(client, url)).await
}

#[stormguard::retry(
    attempts = 3,
    base = "1s",
    max = "4s",
    jitter = "full",
    budget = "wire_unlimited"
)]
async fn wire_exp_jitter(client: &reqwest::Client, url: &str) -> Result<(), WireError> {
    get_once(client, url).await
}

#[stormguard::retry]
async fn wire_defaults(client: &reqwest::Client, url: &str) -> Result<(), WireError> {
    get_once(client, url).await
}

async fn request(kind: Kind, client: &reqwest::Client, url: &str) -> bool {
    match kind {
        Kind::NoRetry => get_once(client, url).await.is_ok(),
        Kind::Immediate => wire_immediate(client, url).await.is_ok(),
        Kind::ExpJitter => wire_exp_jitter(client, url).await.is_ok(),
        Kind::Defaults => wire_defaults(client, url).await.is_ok(),
        _ => unreachable!("not compared on the wire"),
    }
}

// ---------------------------------------------------------------------------------------------
// The downstream.
// ---------------------------------------------------------------------------------------------

struct Server {
    cfg: Config,
    start: Instant,
    permits: Arc<Semaphore>,
    service: Duration,
    calls: Mutex<Vec<u32>>,
}

impl Server {
    fn bucket(&self) -> usize {
        (self.start.elapsed().as_secs_f64() / model::BUCKET) as usize
    }
}

async fn handle(State(s): State<Arc<Server>>) -> StatusCode {
    let t = s.start.elapsed().as_secs_f64();
    {
        let b = s.bucket();
        let mut calls = s.calls.lock().unwrap();
        if b >= calls.len() {
            calls.resize(b + 1, 0);
        }
        calls[b] += 1;
    }
    if t >= s.cfg.outage_start && t < s.cfg.outage_start + s.cfg.outage {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    // Queue for a worker, in a task of its own: served even if the client goes away.
    let (done, finished) = tokio::sync::oneshot::channel();
    let (permits, service) = (s.permits.clone(), s.service);
    tokio::spawn(async move {
        let _worker = permits.acquire_owned().await;
        tokio::time::sleep(service).await;
        let _ = done.send(());
    });
    let _ = finished.await;
    StatusCode::OK
}

async fn start_server(cfg: Config, start: Instant) -> std::io::Result<(String, Arc<Server>)> {
    let server = Arc::new(Server {
        cfg,
        start,
        permits: Arc::new(Semaphore::new(WORKERS)),
        service: Duration::from_secs_f64(WORKERS as f64 / cfg.capacity),
        calls: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/work", get(handle))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/work"), server))
}

// ---------------------------------------------------------------------------------------------
// One strategy against its own server.
// ---------------------------------------------------------------------------------------------

async fn drive(kind: Kind, cfg: Config, start: Instant) -> model::Series {
    let (url, server) = start_server(cfg, start).await.expect("a local server");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs_f64(cfg.client_timeout))
        .build()
        .expect("a reqwest client");
    let buckets = (cfg.duration / model::BUCKET).ceil() as usize + 1;
    let offered = Arc::new(Mutex::new(vec![0u32; buckets]));
    let succeeded = Arc::new(Mutex::new(vec![0u32; buckets]));
    let outstanding = Arc::new(AtomicU64::new(0));
    let mut rng = model::Rng::new(cfg.seed ^ kind as u64);
    let rate = cfg.load * cfg.capacity;
    let mut t = 0.0;
    loop {
        t += rng.gap(rate);
        if t >= cfg.duration {
            break;
        }
        tokio::time::sleep_until((start + Duration::from_secs_f64(t)).into()).await;
        let b = (start.elapsed().as_secs_f64() / model::BUCKET) as usize;
        offered.lock().unwrap()[b.min(buckets - 1)] += 1;
        outstanding.fetch_add(1, Ordering::SeqCst);
        let (client, url) = (client.clone(), url.clone());
        let (succeeded, outstanding) = (succeeded.clone(), outstanding.clone());
        tokio::spawn(async move {
            if request(kind, &client, &url).await {
                succeeded.lock().unwrap()[b.min(buckets - 1)] += 1;
            }
            outstanding.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let stop = Instant::now() + DRAIN;
    while outstanding.load(Ordering::SeqCst) > 0 && Instant::now() < stop {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = server.calls.lock().unwrap().clone();
    let offered = offered.lock().unwrap().clone();
    let succeeded = succeeded.lock().unwrap().clone();
    model::Series {
        calls,
        offered,
        succeeded,
        latency_ms: Vec::new(),
    }
}

/// Runs the wire check and prints the comparison.
pub fn main() {
    let cfg = config();
    eprintln!(
        "wire: {} strategies against local servers of {:.0} req/s, {:.0}% load, {:.0} s outage, {:.0} s (real time)…",
        KINDS.len(),
        cfg.capacity,
        cfg.load * 100.0,
        cfg.outage,
        cfg.duration
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let wire: Vec<model::Series> = rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(200);
        let runs: Vec<_> = KINDS
            .iter()
            .map(|&kind| tokio::spawn(drive(kind, cfg, start)))
            .collect();
        let mut out = Vec::new();
        for r in runs {
            out.push(r.await.expect("a wire run"));
        }
        out
    });
    eprintln!("wire: simulating the same scenario…");
    let exe = std::env::current_exe().expect("the path of this executable");
    let runs: Vec<(Config, Kind)> = KINDS.iter().map(|&k| (cfg, k)).collect();
    let sim = model::run_all(|| std::process::Command::new(&exe), &runs, 2, |_| {});
    println!(
        "\n### On the wire: {:.0} req/s, {:.0}% load from {} clients, {:.0} s outage (503 at once), 1 s client timeout\n",
        cfg.capacity,
        cfg.load * 100.0,
        cfg.clients,
        cfg.outage
    );
    println!("| strategy | amplification (outage), wire | simulated | client success, wire | simulated |");
    println!("|---|---:|---:|---:|---:|");
    for (i, kind) in KINDS.iter().enumerate() {
        let w = model::Report::new(&cfg, *kind, &wire[i]);
        let s = model::Report::new(&cfg, *kind, &sim[i]);
        println!(
            "| {} | {:.3}x | {:.3}x | {:.2}% | {:.2}% |",
            kind.label(),
            w.amplification,
            s.amplification,
            w.success_rate * 100.0,
            s.success_rate * 100.0
        );
    }
}
