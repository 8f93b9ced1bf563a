use stormguard::retry;

// 1e309 is past f64::MAX: the literal reads as infinity, not as a factor below 1.
#[retry(backoff = "exp", factor = 1e309)]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
