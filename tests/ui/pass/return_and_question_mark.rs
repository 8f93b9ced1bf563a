//! `return` and `?` inside the body end that attempt with their result; the next attempt
//! runs the body again.
#![deny(warnings)]

use std::num::ParseIntError;
use stormguard::retry;

#[derive(Debug, PartialEq)]
enum ParseFailed {
    Int,
    Empty,
}

impl From<ParseIntError> for ParseFailed {
    fn from(_: ParseIntError) -> Self {
        ParseFailed::Int
    }
}

#[retry(attempts = 3, base = "1ms")]
async fn parse(inputs: &[&str]) -> Result<u32, ParseFailed> {
    let input = inputs[stormguard::attempt() as usize - 1];
    if input.is_empty() {
        return Err(ParseFailed::Empty);
    }
    let n: u32 = input.parse()?;
    Ok(n)
}

#[retry(attempts = 2, base = "1ms")]
async fn early_ok(flag: bool) -> Result<&'static str, ParseFailed> {
    if flag {
        return Ok("early");
    }
    let _never: u32 = "x".parse()?;
    Ok("late")
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(parse(&["", "x", "7"]).await, Ok(7));
    assert_eq!(parse(&["", "", ""]).await, Err(ParseFailed::Empty));
    assert_eq!(parse(&["x", "", "y"]).await, Err(ParseFailed::Int));
    assert_eq!(early_ok(true).await, Ok("early"));
    assert_eq!(early_ok(false).await, Err(ParseFailed::Int));
}
