use stormguard::retry;

#[retry(backoff = "exp", factor = 0.5)]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
