use stormguard::retry;

struct Client;

impl Client {
    #[retry(hedge = "50ms")]
    async fn refresh(&mut self) -> Result<u32, std::io::Error> {
        Ok(1)
    }
}

#[retry(hedge = "50ms")]
async fn fill(buf: &mut Vec<u8>) -> Result<usize, std::io::Error> {
    Ok(buf.len())
}

#[retry(hedge = "50ms")]
fn blocking() -> Result<u32, std::io::Error> {
    Ok(1)
}

#[retry(hedge = "p100")]
async fn too_high() -> Result<u32, std::io::Error> {
    Ok(1)
}

#[retry(hedge = "p40")]
async fn too_low() -> Result<u32, std::io::Error> {
    Ok(1)
}

#[retry(hedge = "50 parsecs")]
async fn bad_delay() -> Result<u32, std::io::Error> {
    Ok(1)
}

fn main() {}
