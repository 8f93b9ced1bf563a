use stormguard::retry;

#[retry(attemps = 3)]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
