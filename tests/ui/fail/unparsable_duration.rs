use stormguard::retry;

#[retry(base = "2 parsecs")]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
