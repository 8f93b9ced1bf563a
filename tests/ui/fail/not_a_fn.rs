use stormguard::retry;

#[retry(attempts = 3)]
struct Client {
    url: String,
}

fn main() {
    let _ = Client { url: String::new() }.url;
}
