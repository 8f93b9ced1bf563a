// Issue 12 item 18: a delay over a year was cut to tokio's far future while the logs reported
// it uncut; no key takes more than a year.
use stormguard::retry;

#[derive(Debug)]
struct Down;

#[retry(max = "10000h")]
async fn fetch() -> Result<u32, Down> {
    Err(Down)
}

fn main() {}
