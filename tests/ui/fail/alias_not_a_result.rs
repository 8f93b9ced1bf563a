use stormguard::retry;

type Reply = std::collections::BTreeMap<String, u32>;

#[retry(attempts = 3)]
async fn fetch() -> Reply {
    Reply::new()
}

fn main() {
    let _ = fetch();
}
