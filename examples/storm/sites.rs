//! The storm lab's strategies from Brooker's models: "three retries", his per-client token
//! bucket, and one `#[retry]` call site per client of a fleet (so one budget each); and the
//! hedged call sites of the latency scenario (h).

use super::{CallError, Downstream};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// Brooker's "three retries": up to 4 attempts, back to back.
pub async fn three_retries(ds: Rc<Downstream>) -> Result<(), CallError> {
    let mut last = ds.call().await;
    for _ in 0..3 {
        if last.is_ok() {
            break;
        }
        last = ds.call().await;
    }
    last
}

/// Size of Brooker's bucket (it starts full).
pub const BUCKET_SIZE: f64 = 5.0;
/// What each call deposits in it: 10% of calls.
const BUCKET_DEPOSIT: f64 = 0.1;

/// Brooker's token bucket, one per client: a retry takes a token (none: no retry), every
/// call deposits 0.1 whatever its outcome (10% of calls); up to 3 retries, back to back.
pub async fn brooker_bucket(ds: Rc<Downstream>, client: usize) -> Result<(), CallError> {
    let mut last = ds.call().await;
    for _ in 0..3 {
        if last.is_ok() {
            break;
        }
        {
            let mut buckets = ds.buckets.borrow_mut();
            if buckets[client] < 1.0 {
                break;
            }
            buckets[client] -= 1.0;
        }
        last = ds.call().await;
    }
    let mut buckets = ds.buckets.borrow_mut();
    buckets[client] = (buckets[client] + BUCKET_DEPOSIT).min(BUCKET_SIZE);
    last
}

/// `#[retry(hedge = "50ms")]`: after 50 ms without an answer the next attempt runs beside the
/// first (up to the default 3 attempts), paid from the call site's default budget.
#[stormguard::retry(hedge = "50ms")]
pub async fn hedge_fixed(ds: Rc<Downstream>) -> Result<(), CallError> {
    ds.call().await
}

/// `#[retry(hedge = "p95")]`: the next attempt beside one slower than the site's recent 95th
/// percentile (no hedge before 100 attempts were measured).
#[stormguard::retry(hedge = "p95")]
pub async fn hedge_p95(ds: Rc<Downstream>) -> Result<(), CallError> {
    ds.call().await
}

type Site = fn(Rc<Downstream>) -> Pin<Box<dyn Future<Output = Result<(), CallError>>>>;

/// `#[retry]` with no keys, once per name: each fn is its own call site with its own budget.
macro_rules! fleet_sites {
    ($($name:ident)*) => {
        $(
            #[stormguard::retry]
            async fn $name(ds: Rc<Downstream>) -> Result<(), CallError> {
                ds.call().await
            }
        )*
        /// One call site (so one default budget) per client of a fleet, as each client's
        /// own process would have: a fleet of more clients runs in several parts.
        pub const FLEET_SITES: &[Site] = &[$(|ds| Box::pin($name(ds))),*];
    };
}

fleet_sites! {
    c00 c01 c02 c03 c04 c05 c06 c07 c08 c09 c10 c11 c12 c13 c14 c15 c16 c17 c18 c19 c20 c21 c22
    c23 c24 c25 c26 c27 c28 c29 c30 c31 c32 c33 c34 c35 c36 c37 c38 c39 c40 c41 c42 c43 c44 c45
    c46 c47 c48 c49 c50 c51 c52 c53 c54 c55 c56 c57 c58 c59 c60 c61 c62 c63 c64 c65 c66 c67 c68
    c69 c70 c71 c72 c73 c74 c75 c76 c77 c78 c79 c80 c81 c82 c83 c84 c85 c86 c87 c88 c89 c90 c91
    c92 c93 c94 c95 c96 c97 c98 c99
}
