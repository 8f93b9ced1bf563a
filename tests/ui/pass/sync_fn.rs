//! A blocking fn: retried with a blocking sleep (called here outside any runtime), also with
//! `&self`, `&mut` arguments, `?`, `return` and a `breaker`.
#![deny(warnings)]

use std::cell::Cell;
use stormguard::{retry, GuardError};

#[derive(Debug, PartialEq)]
enum ReadError {
    Busy,
    Guard(GuardError),
}

impl From<GuardError> for ReadError {
    fn from(e: GuardError) -> Self {
        ReadError::Guard(e)
    }
}

#[retry(attempts = 3, base = "1ms", max = "1ms")]
fn read_config(path: &str, reads: &mut u32) -> Result<String, ReadError> {
    *reads += 1;
    if stormguard::attempt() == 1 {
        return Err(ReadError::Busy);
    }
    Ok(format!("{path}: ok"))
}

struct Disk {
    tries: Cell<u32>,
}

impl Disk {
    #[retry(attempts = 3, base = "1ms", max = "1ms", breaker = "disk")]
    fn sector(&self, n: u32) -> Result<u32, ReadError> {
        self.tries.set(self.tries.get() + 1);
        let n: u32 = if self.tries.get() < 2 {
            Err(ReadError::Busy)?
        } else {
            n
        };
        Ok(n * 512)
    }
}

fn main() {
    let mut reads = 0;
    assert_eq!(
        read_config("app.toml", &mut reads),
        Ok("app.toml: ok".to_string())
    );
    assert_eq!(reads, 2);

    let disk = Disk {
        tries: Cell::new(0),
    };
    assert_eq!(disk.sector(2), Ok(1024));
    assert_eq!(disk.tries.get(), 2);
}
