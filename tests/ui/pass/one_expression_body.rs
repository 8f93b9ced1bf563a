//! A body that is one expression compiles without warnings (no `unused_braces` from the
//! expansion), as does one whose last statement is a `return`.
#![deny(warnings)]

#[derive(Debug)]
struct E;
impl std::fmt::Display for E {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("e")
    }
}

#[stormguard::retry]
async fn one_expression(x: u32) -> Result<u32, E> {
    Ok(x + 1)
}

#[stormguard::retry]
async fn ends_with_return(x: u32) -> Result<u32, E> {
    return Ok(x * 2);
}

#[stormguard::retry]
fn blocking_one_expression(x: u32) -> Result<u32, E> {
    Ok(x)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(one_expression(1).await.unwrap(), 2);
    assert_eq!(ends_with_return(2).await.unwrap(), 4);
    assert_eq!(blocking_one_expression(3).unwrap(), 3);
}
