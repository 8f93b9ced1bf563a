//! The return type through an alias: `io::Result<T>`, `anyhow::Result<T>`, a crate's own
//! `type Res<T>`, and a fully written `std::result::Result`.
#![deny(warnings)]

use std::io;
use stormguard::retry;

#[derive(Debug, PartialEq)]
enum MyErr {
    Busy,
}

type Res<T> = Result<T, MyErr>;

#[retry(attempts = 3, base = "1ms")]
async fn with_io() -> io::Result<u32> {
    if stormguard::attempt() == 1 {
        return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
    }
    Ok(1)
}

#[retry(attempts = 3, base = "1ms")]
async fn with_anyhow() -> anyhow::Result<u32> {
    if stormguard::attempt() == 1 {
        anyhow::bail!("first attempt fails");
    }
    Ok(2)
}

#[retry(attempts = 3, base = "1ms")]
async fn with_local_alias() -> Res<u32> {
    if stormguard::attempt() == 1 {
        return Err(MyErr::Busy);
    }
    Ok(3)
}

#[retry(attempts = 2, base = "1ms")]
async fn with_full_path() -> std::result::Result<u32, MyErr> {
    Err(MyErr::Busy)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(with_io().await.unwrap(), 1);
    assert_eq!(with_anyhow().await.unwrap(), 2);
    assert_eq!(with_local_alias().await, Ok(3));
    assert_eq!(with_full_path().await, Err(MyErr::Busy));
}
