use stormguard::retry;

#[retry(attempts = 3, timeout = "1s")]
fn read_config() -> std::io::Result<String> {
    Ok(String::new())
}

fn main() {
    let _ = read_config();
}
