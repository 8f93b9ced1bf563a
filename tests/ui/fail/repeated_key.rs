use stormguard::retry;

#[retry(attempts = 3, base = "50ms", attempts = 5)]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
