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

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(greeting().await.unwrap().to_string(), "hello");
    assert_eq!(bytes().await.unwrap().sum::<u8>(), 6);
    assert_eq!(blocking_greeting().unwrap().to_string(), "7");
}
