use stormguard::retry;

#[derive(Debug)]
struct FetchError;

// Takes the error by value: `when` gets a reference.
fn is_transient(_e: FetchError) -> bool {
    true
}

#[retry(when = is_transient)]
async fn fetch() -> Result<u32, FetchError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
