use stormguard::retry;

// The attempt's output is pinned to the declared return type: a type error in the body is
// reported once, at the user's expression.
#[retry(attempts = 3)]
async fn fetch() -> Result<u32, String> {
    Ok("42")
}

fn main() {
    let _ = fetch();
}
