use stormguard::retry;

fn is_transient(e: &String) -> bool {
    e.starts_with("503")
}

#[retry(when = "is_transient")]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
    let _ = is_transient;
}
