use stormguard::retry;

#[derive(Debug)]
struct FetchError;

#[retry(breaker = "payments")]
fn charge() -> Result<u32, FetchError> {
    Err(FetchError)
}

fn main() {
    let _ = charge();
}
