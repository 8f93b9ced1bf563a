use stormguard::retry;

// Every mistake is reported in one pass, and the fn is still emitted (no "cannot find
// function `fetch`" below).
#[retry(attempts = 0, jitter = "loud", timout = "1s")]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
