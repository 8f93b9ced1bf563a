use stormguard::retry;

// A zero cap does not end the call: it takes every pause away.
#[retry(max = "0ms", base = "0ms")]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
