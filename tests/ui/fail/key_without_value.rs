use stormguard::retry;

#[retry(attempts, max = "2s")]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
