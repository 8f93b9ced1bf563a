use stormguard::retry;

#[retry(attempts = 3)]
async fn fetch() -> Option<u32> {
    Some(1)
}

fn main() {
    let _ = fetch();
}
