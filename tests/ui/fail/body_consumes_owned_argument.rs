use stormguard::retry;

fn send(body: Vec<u8>) -> Result<usize, String> {
    Ok(body.len())
}

#[retry(attempts = 3)]
async fn upload(body: Vec<u8>) -> Result<usize, String> {
    send(body)
}

fn main() {
    let _ = upload(vec![1, 2, 3]);
}
