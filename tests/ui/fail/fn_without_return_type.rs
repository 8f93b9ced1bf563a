use stormguard::retry;

#[retry(attempts = 3)]
async fn notify(id: u32) {
    let _ = id;
}

fn main() {
    let _ = notify(1);
}
