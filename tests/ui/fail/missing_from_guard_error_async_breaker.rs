use stormguard::retry;

#[derive(Debug)]
struct FetchError;

// A breaker alone takes the lighter `breaker_attempt` path: the missing impl is still
// reported once, on the error type.
#[retry(breaker = "payments")]
async fn charge() -> Result<u32, FetchError> {
    Err(FetchError)
}

fn main() {
    let _ = charge();
}
