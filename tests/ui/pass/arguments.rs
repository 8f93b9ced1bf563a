//! Arguments: `&mut` and `impl Trait` arguments, and by-value arguments that the body uses by
//! reference (each attempt borrows them; nothing is moved into a closure); a borrow returned
//! beside a `&mut` argument, from another argument.
#![deny(warnings)]

use stormguard::retry;

#[derive(Debug, PartialEq)]
struct Busy;

#[retry(attempts = 3, base = "1ms")]
async fn push_all(
    out: &mut Vec<u32>,
    items: impl IntoIterator<Item = u32> + Clone,
) -> Result<usize, Busy> {
    if stormguard::attempt() == 1 {
        return Err(Busy);
    }
    out.extend(items.clone());
    Ok(out.len())
}

#[retry(attempts = 3, base = "1ms")]
async fn first_word<'t>(seen: &mut Vec<u32>, text: &'t str) -> Result<&'t str, Busy> {
    seen.push(stormguard::attempt());
    if stormguard::attempt() == 1 {
        return Err(Busy);
    }
    Ok(text.split(' ').next().unwrap_or(text))
}

#[retry(attempts = 3, base = "1ms")]
async fn describe(
    name: String,
    tags: Vec<&str>,
    show: impl Fn(&str) -> String,
) -> Result<String, Busy> {
    if stormguard::attempt() == 1 {
        return Err(Busy);
    }
    Ok(format!("{} [{}]", show(&name), tags.join(",")))
}

#[retry(attempts = 3, base = "1ms")]
async fn send(body: Vec<u8>) -> Result<usize, Busy> {
    // By reference, or cloned where an owned value is needed: every attempt sees `body`.
    let copy = body.clone();
    if stormguard::attempt() == 1 {
        return Err(Busy);
    }
    Ok(body.len() + copy.len())
}

#[retry(attempts = 2, base = "1ms")]
async fn patterned((a, b): (u32, u32), mut counter: u32) -> Result<u32, Busy> {
    counter += a + b;
    Ok(counter)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let mut out = vec![1];
    assert_eq!(push_all(&mut out, [2, 3]).await, Ok(3));
    assert_eq!(out, [1, 2, 3]);

    let mut seen = Vec::new();
    assert_eq!(first_word(&mut seen, "ab cd").await, Ok("ab"));
    assert_eq!(seen, [1, 2]);

    let upper = |s: &str| s.to_uppercase();
    assert_eq!(
        describe("db".into(), vec!["a", "b"], upper).await,
        Ok("DB [a,b]".to_string())
    );

    assert_eq!(send(vec![1, 2, 3]).await, Ok(6));
    assert_eq!(patterned((1, 2), 10).await, Ok(13));
}
