use stormguard::retry;

#[retry(base = "1s", max = "500ms")]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
