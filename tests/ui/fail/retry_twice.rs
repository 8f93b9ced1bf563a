// `#[retry]` twice on one fn would count and retry every call twice: one error, on the second.
use stormguard::retry;

#[derive(Debug)]
struct Down;

#[retry(attempts = 3)]
#[retry(attempts = 2)]
async fn fetch() -> Result<u32, Down> {
    Err(Down)
}

fn main() {}
