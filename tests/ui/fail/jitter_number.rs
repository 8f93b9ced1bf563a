use stormguard::retry;

// `jitter` is a kind, not a duration.
#[retry(jitter = 1)]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
