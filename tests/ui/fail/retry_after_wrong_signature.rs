use stormguard::retry;

#[derive(Debug)]
struct FetchError {
    retry_after_secs: u64,
}

// Returns a number of seconds: `retry_after` wants an `Option<Duration>`.
fn server_hint(e: &FetchError) -> u64 {
    e.retry_after_secs
}

#[retry(retry_after = server_hint)]
async fn fetch() -> Result<u32, FetchError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
