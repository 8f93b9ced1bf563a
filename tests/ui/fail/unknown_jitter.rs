use stormguard::retry;

#[retry(jitter = "ful")]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
