use stormguard::retry;

trait Store {
    #[retry]
    async fn load(&self) -> Result<u32, std::io::Error>;
}

fn main() {}
