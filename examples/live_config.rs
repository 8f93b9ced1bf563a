//! Serves traffic while its stormguard config file is edited: a kill switch, a bad edit that
//! is rejected (the running configuration stays), a breaker forced open, then released.
//!
//! `cargo run --example live_config`

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

stormguard::breakers! {
    payments { consecutive_failures: 5, open_for: "2s" }
}

static DOWNSTREAM_CALLS: AtomicU32 = AtomicU32::new(0);
static HEALTHY: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
struct Unavailable;
impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("503 from payments")
    }
}
impl From<stormguard::GuardError> for Unavailable {
    fn from(_: stormguard::GuardError) -> Self {
        Unavailable
    }
}

/// A downstream that fails one call in three until it recovers.
#[stormguard::retry(
    attempts = 3,
    base = "10ms",
    max = "50ms",
    jitter,
    breaker = "payments",
    name = "billing::charge"
)]
async fn charge() -> Result<(), Unavailable> {
    let n = DOWNSTREAM_CALLS.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2)).await;
    if n % 3 == 0 && !HEALTHY.load(Ordering::Relaxed) {
        Err(Unavailable)
    } else {
        Ok(())
    }
}

async fn traffic(label: &str, calls: u32) {
    let before = DOWNSTREAM_CALLS.load(Ordering::Relaxed);
    let mut failed = 0;
    for _ in 0..calls {
        if charge().await.is_err() {
            failed += 1;
        }
    }
    let reached = DOWNSTREAM_CALLS.load(Ordering::Relaxed) - before;
    println!("{label:<28} {calls} calls: {failed} failed, {reached} reached the downstream");
}

/// Writes the file and waits for the watch to pick it up.
async fn edit(path: &std::path::Path, text: &str) {
    println!("\n--- editing {}:\n{}", path.display(), text.trim_end());
    std::fs::write(path, text).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter("stormguard=info")
        .with_target(false)
        .without_time()
        .init();
    let dir = std::env::temp_dir().join(format!("stormguard-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stormguard.toml");
    std::fs::write(&path, "# no overrides yet\n").unwrap();
    stormguard::config::watch(&path).expect("the file is valid");

    traffic("compiled policy", 9).await;
    edit(&path, "[retry.\"billing::charge\"]\nenabled = false\n").await;
    traffic("kill switch on", 9).await;
    edit(
        &path,
        "[retry.\"billing::charge\"]\nenabled = false\nattempts = \"many\"\n",
    )
    .await;
    traffic("after a rejected edit", 9).await;
    edit(&path, "[breaker.payments]\nforce = \"open\"\n").await;
    traffic("breaker forced open", 9).await;
    HEALTHY.store(true, Ordering::Relaxed); // the provider recovers
    edit(&path, "[breaker.payments]\nforce = \"auto\"\n").await;
    traffic("released", 9).await;

    println!(
        "\n--- stormguard::config::current():\n{}",
        stormguard::config::current()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
