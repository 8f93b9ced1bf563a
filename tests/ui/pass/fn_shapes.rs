//! Every fn shape `#[retry]` goes on: a free fn, inherent methods with `&self`, `&mut self`
//! and `self`, a trait-impl method (native `async fn` in trait), a generic fn with a `where`
//! clause, and explicit lifetimes; borrows returned from `&self`, and from `&mut self` those
//! that do not borrow from it (`'static`, or the lifetime of the borrowed data it holds).
#![deny(warnings)]

use std::fmt::Display;
use stormguard::retry;

#[derive(Debug, PartialEq)]
struct Flaky(u32);

#[retry(attempts = 3, base = "1ms", max = "1ms")]
async fn free_fn(x: u32) -> Result<u32, Flaky> {
    if stormguard::attempt() < 2 {
        Err(Flaky(stormguard::attempt()))
    } else {
        Ok(x * 2)
    }
}

struct Client {
    calls: u32,
    base: u32,
}

impl Client {
    #[retry(attempts = 3, base = "1ms")]
    async fn by_ref(&self, x: u32) -> Result<u32, Flaky> {
        if stormguard::attempt() == 1 {
            return Err(Flaky(1));
        }
        Ok(self.base + x)
    }

    #[retry(attempts = 3, base = "1ms")]
    async fn by_mut(&mut self) -> Result<u32, Flaky> {
        self.calls += 1;
        if self.calls < 2 {
            Err(Flaky(self.calls))
        } else {
            Ok(self.calls)
        }
    }

    #[retry(attempts = 3, base = "1ms")]
    async fn by_value(self) -> Result<u32, Flaky> {
        Ok(self.calls + self.base)
    }

    #[retry(attempts = 3, base = "1ms")]
    async fn name_by_ref(&self) -> Result<&str, Flaky> {
        if stormguard::attempt() == 1 {
            return Err(Flaky(1));
        }
        Ok(if self.base > 5 { "big" } else { "small" })
    }

    #[retry(attempts = 3, base = "1ms")]
    async fn by_ref_into_mut(&self, out: &mut Vec<u32>) -> Result<&u32, Flaky> {
        out.push(self.base);
        if stormguard::attempt() == 1 {
            return Err(Flaky(1));
        }
        Ok(&self.base)
    }

    #[retry(attempts = 3, base = "1ms")]
    async fn label_by_mut(&mut self) -> Result<&'static str, Flaky> {
        self.calls += 1;
        if stormguard::attempt() == 1 {
            return Err(Flaky(1));
        }
        Ok("client")
    }

    #[retry(attempts = 2, base = "1ms")]
    async fn returns_self_type() -> Result<Self, Flaky> {
        Ok(Self { calls: 0, base: 7 })
    }
}

trait Store {
    async fn load(&self, key: &str) -> Result<String, Flaky>;
}

impl Store for Client {
    #[retry(attempts = 3, base = "1ms")]
    async fn load(&self, key: &str) -> Result<String, Flaky> {
        if stormguard::attempt() == 1 {
            Err(Flaky(1))
        } else {
            Ok(format!("{key}={}", self.base))
        }
    }
}

/// A lexer over borrowed text: `&mut self` returns the text's lifetime, not its own.
struct Words<'t> {
    rest: &'t str,
}

impl<'t> Words<'t> {
    #[retry(attempts = 3, base = "1ms")]
    async fn next_word(&mut self) -> Result<&'t str, Flaky> {
        if stormguard::attempt() == 1 {
            return Err(Flaky(1));
        }
        let rest: &'t str = self.rest;
        let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        self.rest = tail;
        Ok(word)
    }

    #[retry(attempts = 2, base = "1ms")]
    fn next_word_blocking(&mut self) -> Result<&'t str, Flaky> {
        let rest: &'t str = self.rest;
        let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        self.rest = tail;
        Ok(word)
    }
}

#[retry(attempts = 3, base = "1ms")]
async fn generic<T, U: Display>(value: T, label: U) -> Result<String, Flaky>
where
    T: Clone + Display + Send,
{
    if stormguard::attempt() == 1 {
        return Err(Flaky(1));
    }
    Ok(format!("{label}:{}", value.clone()))
}

#[retry(attempts = 3, base = "1ms")]
async fn with_lifetimes<'a, 'b: 'a>(first: &'a str, second: &'b str) -> Result<&'a str, Flaky> {
    if stormguard::attempt() == 1 {
        return Err(Flaky(1));
    }
    Ok(if first.len() >= second.len() {
        first
    } else {
        second
    })
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(free_fn(21).await, Ok(42));

    let mut client = Client::returns_self_type().await.unwrap();
    assert_eq!(client.by_ref(3).await, Ok(10));
    assert_eq!(client.by_mut().await, Ok(2));
    assert_eq!(client.load("k").await, Ok("k=7".to_string()));
    assert_eq!(client.name_by_ref().await, Ok("big"));
    let mut seen = Vec::new();
    assert_eq!(client.by_ref_into_mut(&mut seen).await, Ok(&7));
    assert_eq!(seen, [7, 7]);
    assert_eq!(client.label_by_mut().await, Ok("client"));
    assert_eq!(client.by_value().await, Ok(11));

    let mut words = Words { rest: "ab cd ef" };
    assert_eq!(words.next_word().await, Ok("ab"));
    assert_eq!(words.next_word_blocking(), Ok("cd"));

    assert_eq!(generic(5, "n").await, Ok("n:5".to_string()));
    let long = String::from("longer");
    assert_eq!(with_lifetimes(&long, "short").await, Ok("longer"));
}
