use stormguard::retry;

#[derive(Debug)]
struct FetchError;

// An untyped closure argument cannot take a reference of any lifetime.
#[retry(when = |e| true)]
async fn fetch() -> Result<u32, FetchError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
