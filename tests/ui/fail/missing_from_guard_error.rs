use stormguard::retry;

#[derive(Debug)]
enum FetchError {
    Unavailable,
}

#[retry(timeout = "1s")]
async fn fetch() -> Result<u32, FetchError> {
    Err(FetchError::Unavailable)
}

fn main() {
    let _ = fetch();
}
