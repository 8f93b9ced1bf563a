//! Hygiene canaries: the user's crate has its own `core`, `tracing` and `stormguard` modules
//! and prelude-shadowing names, and reaches stormguard through `crate = "…"` paths (a
//! re-export and a renamed `extern crate`).
#![deny(warnings)]
#![allow(dead_code, non_camel_case_types)]

pub extern crate stormguard as storm;

mod core {}
mod tracing {}
mod std {}
mod stormguard {}

mod reexport {
    pub use ::storm as guard;
}

// Names the expansion must not pick up from the user's scope.
struct Ok;
struct Err;
struct Some;
struct None;
struct Option;
struct Duration;
struct Call;
struct Site;
struct Verdict;
struct __STORMGUARD_SITE;
type Result<T> = ::core::result::Result<T, MyErr>;

#[derive(Debug, PartialEq)]
struct MyErr;

impl ::core::convert::From<::storm::GuardError> for MyErr {
    fn from(_: ::storm::GuardError) -> Self {
        MyErr
    }
}

#[::storm::retry(attempts = 2, base = "1ms")]
async fn default_path() -> Result<u32> {
    ::core::result::Result::Ok(1)
}

#[::storm::retry(attempts = 2, base = "1ms", crate = "::storm")]
async fn renamed() -> Result<u32> {
    ::core::result::Result::Ok(2)
}

#[reexport::guard::retry(
    attempts = 2,
    base = "1ms",
    timeout = "1s",
    breaker = "hygiene",
    crate = "crate::reexport::guard"
)]
async fn through_reexport() -> Result<u32> {
    let __stormguard_call = 3;
    let __stormguard_result = 0;
    ::core::result::Result::Ok(__stormguard_call + __stormguard_result)
}

#[::storm::retry(attempts = 2, base = "1ms", crate = crate::reexport::guard)]
fn blocking_unquoted_path() -> Result<u32> {
    ::core::result::Result::Ok(4)
}

::storm::breakers! {
    crate = "crate::reexport::guard";
    hygiene { consecutive_failures: 3 }
}

#[::tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    ::core::assert_eq!(default_path().await, ::core::result::Result::Ok(1));
    ::core::assert_eq!(renamed().await, ::core::result::Result::Ok(2));
    ::core::assert_eq!(through_reexport().await, ::core::result::Result::Ok(3));
    ::core::assert_eq!(blocking_unquoted_path(), ::core::result::Result::Ok(4));
}
