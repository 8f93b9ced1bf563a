//! `impl Trait` in the returned `Result` (issue 11 and 12 #13): the expansion erases it in its
//! own annotations, so `-> Result<impl Display, E>` and `-> Result<impl Iterator, E>` compile.
#![deny(warnings)]

use std::fmt::Display;
use stormguard::retry;

#[derive(Debug)]
struct Down;

#[retry(attempts = 2, base = "1ms", max = "1ms")]
async fn greeting() -> Result<impl Display, Down> {
    Ok("hello")
}

#[retry(attempts = 2, base = "1ms", max = "1ms")]
async fn bytes() -> Result<impl Iterator<Item = u8>, Down> {
    if stormguard::attempt() < 2 {
        return Err(Down);
    }
    Ok(vec![1u8, 2, 3].into_iter())
}

#[retry(attempts = 2, base = "1ms", max = "1ms")]
fn blocking_greeting() -> Result<impl Display, Down> {
    Ok(7)
}

struct Source {
    reads: u8,
}

impl Source {
    /// `&mut self` and an owned `impl Iterator`: nothing of `self` is borrowed by the result.
    #[retry(attempts = 2, base = "1ms", max = "1ms")]
    async fn drain(&mut self) -> Result<impl Iterator<Item = u8>, Down> {
        self.reads += 1;
        if stormguard::attempt() < 2 {
            return Err(Down);
        }
        Ok(vec![self.reads; 2].into_iter())
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(greeting().await.unwrap().to_string(), "hello");
    assert_eq!(bytes().await.unwrap().sum::<u8>(), 6);
    assert_eq!(blocking_greeting().unwrap().to_string(), "7");
    let mut source = Source { reads: 0 };
    assert_eq!(source.drain().await.unwrap().sum::<u8>(), 4);
}
