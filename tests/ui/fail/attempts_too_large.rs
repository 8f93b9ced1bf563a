use stormguard::retry;

// Past u64::MAX: syn's own message would not name the key.
#[retry(attempts = 18446744073709551616)]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
