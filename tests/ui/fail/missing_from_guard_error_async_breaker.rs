use stormguard::retry;

#[derive(Debug)]
struct FetchError;

// A breaker alone is asked before a plain attempt (`breaker_admits`): the missing impl is still
// reported once, on the error type.
#[retry(breaker = "payments")]
async fn charge() -> Result<u32, FetchError> {
    Err(FetchError)
}

fn main() {
    let _ = charge();
}
