use std::sync::atomic::{AtomicU32, Ordering};
use stormguard::retry;

static CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 4, jitter = "none")]
async fn flaky(x: u32) -> Result<u32, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if stormguard::attempt() < 3 {
        return Err(format!("fail {}", stormguard::attempt()));
    }
    let y: u32 = "5".parse().map_err(|_| "x".to_string())?;
    Ok(x + y)
}

#[tokio::test(start_paused = true)]
async fn smoke() {
    let start = tokio::time::Instant::now();
    assert_eq!(flaky(1).await, Ok(6));
    assert_eq!(CALLS.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed().as_millis(), 300);
}
