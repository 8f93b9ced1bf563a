//! The rig both fleet measurements run on (the storm lab's `--fleet`, tests/fleet.rs): a
//! `redis-server` of their own on a free port, a TCP downstream that logs every request, and
//! the one-line request the fleet's processes make.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds: the one clock every process of a fleet shares.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as u64
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Waits (up to 2 s) until something listens on `port` of 127.0.0.1; panics naming `what`.
pub fn wait_listening(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 2 s");
}

/// A failed request, or a refusal (breaker open) or an attempt's timeout.
#[derive(Debug)]
pub struct Down(pub String);

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "downstream: {}", self.0)
    }
}

impl std::error::Error for Down {}

impl From<stormguard::GuardError> for Down {
    fn from(e: stormguard::GuardError) -> Self {
        Down(e.to_string())
    }
}

/// One request on a connection of its own: `<process> <attempt>\n`, answered `ok` or `err`.
pub async fn request(addr: &str, id: u32) -> Result<(), Down> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let fail = |e: std::io::Error| Down(e.to_string());
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(fail)?;
    let line = format!("{id} {}\n", stormguard::attempt());
    s.write_all(line.as_bytes()).await.map_err(fail)?;
    let mut answer = String::new();
    tokio::io::BufReader::new(s)
        .read_line(&mut answer)
        .await
        .map_err(fail)?;
    match answer.trim() {
        "ok" => Ok(()),
        other => Err(Down(other.to_owned())),
    }
}

/// A `redis-server` of one's own: 127.0.0.1, a free port, no persistence (a restart starts
/// empty), `DEBUG` allowed from there (to play a slow Redis).
pub struct Redis {
    pub port: u16,
    pub process: Option<Child>,
}

impl Redis {
    /// Whether `redis-server` is on PATH (both fleet measurements skip, saying so, without it).
    pub fn on_path() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Not started yet ([`Redis::start`]): its port is chosen now.
    pub fn on_free_port() -> Redis {
        Redis {
            port: free_port(),
            process: None,
        }
    }

    /// Starts it (again, after a kill) and waits until it listens.
    pub fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--enable-debug-command", "local"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.process = Some(child);
        wait_listening(self.port, "redis-server");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sends it `sig` (`-STOP`, `-CONT`, …).
    pub fn signal(&self, sig: &str) {
        let pid = self.process.as_ref().expect("started").id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// SIGKILL: no goodbye to the connected processes.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.process.is_some() {
            self.signal("-CONT"); // a paused one dies only once resumed
        }
        self.kill();
    }
}

/// The downstream: answers `err` while `failing(now_ms)`, else `ok`; logs every request as
/// (time ms, process, attempt).
pub struct Downstream {
    pub addr: String,
    log: Arc<Mutex<Vec<(u64, u32, u32)>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Downstream {
    pub fn start(
        rt: &tokio::runtime::Runtime,
        failing: impl Fn(u64) -> bool + Clone + Send + Sync + 'static,
    ) -> Downstream {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a listener on 127.0.0.1");
        let addr = listener.local_addr().expect("its address").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let into = log.clone();
        let server = rt.spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let (into, failing) = (into.clone(), failing.clone());
                tokio::spawn(async move {
                    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
                    let mut s = tokio::io::BufReader::new(s);
                    let mut line = String::new();
                    if s.read_line(&mut line).await.is_err() {
                        return;
                    }
                    let t = now_ms();
                    let mut parts = line.split_whitespace().map(|p| p.parse().unwrap_or(0));
                    let (who, attempt) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
                    into.lock().unwrap().push((t, who, attempt));
                    let answer: &[u8] = if failing(t) { b"err\n" } else { b"ok\n" };
                    let _ = s.get_mut().write_all(answer).await;
                });
            }
        });
        Downstream { addr, log, server }
    }

    /// The requests that arrived in `[from, to)`, in arrival order.
    pub fn requests(&self, from: u64, to: u64) -> Vec<(u64, u32, u32)> {
        let mut v: Vec<_> = self
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| (from..to).contains(t))
            .copied()
            .collect();
        v.sort_unstable();
        v
    }
}

impl Drop for Downstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Groups sorted times into runs separated by more than `gap` ms.
pub fn bursts(times: &[u64], gap: u64) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut last = None;
    for &t in times {
        match last {
            Some(l) if t - l <= gap => *out.last_mut().unwrap() += 1,
            _ => out.push(1),
        }
        last = Some(t);
    }
    out
}
