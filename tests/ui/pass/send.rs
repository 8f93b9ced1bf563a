//! The future of an annotated fn is `Send` when the body's is: it can be `tokio::spawn`ed,
//! also with `timeout`, `deadline`, `breaker` and a borrowed `&self`.
#![deny(warnings)]

use std::sync::Arc;
use stormguard::{retry, GuardError};

#[derive(Debug)]
struct NetError;

impl From<GuardError> for NetError {
    fn from(_: GuardError) -> Self {
        NetError
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[retry(attempts = 3, base = "1ms")]
async fn plain(x: u32) -> Result<u32, NetError> {
    tokio::task::yield_now().await;
    Ok(x)
}

#[retry(
    attempts = 3,
    base = "1ms",
    timeout = "1s",
    deadline = "5s",
    breaker = "send-net"
)]
async fn guarded(x: u32) -> Result<u32, NetError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

struct Service {
    offset: u32,
}

impl Service {
    #[retry(attempts = 3, base = "1ms", timeout = "1s")]
    async fn call(&self, x: u32) -> Result<u32, NetError> {
        tokio::task::yield_now().await;
        Ok(self.offset + x)
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let a = tokio::spawn(assert_send(plain(1)));
    let b = tokio::spawn(assert_send(guarded(1)));
    let service = Arc::new(Service { offset: 10 });
    let c = tokio::spawn(async move { assert_send(service.call(1)).await });
    assert_eq!(a.await.unwrap().unwrap(), 1);
    assert_eq!(b.await.unwrap().unwrap(), 2);
    assert_eq!(c.await.unwrap().unwrap(), 11);
}
