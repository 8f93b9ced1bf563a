//! `Classify for anyhow::Error` through `anyhow::Result`: the first cause of a known type in
//! the chain decides; a chain with none keeps "every error is transient".
#![cfg(feature = "anyhow")]

use anyhow::Context;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

stormguard::budgets! {
    // A budget holds only what its traffic earned (plus a start grant of min_per_sec × window):
    // this one's grant covers every retry these tests count, none of which succeeds.
    anyhow_chain { min_per_sec: 100 }
}

#[stormguard::retry(attempts = 3, base = "10ms", jitter = "none", budget = "anyhow_chain")]
async fn load(make: fn() -> anyhow::Error) -> anyhow::Result<()> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Err(make()).context("loading the price list")
}

/// The tests share `load` and `CALLS`: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn attempts(make: fn() -> anyhow::Error) -> u32 {
    let _turn = ONE_AT_A_TIME.lock().await;
    CALLS.store(0, Ordering::SeqCst);
    let _ = load(make).await.unwrap_err();
    CALLS.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn the_first_known_cause_in_the_chain_decides() {
    assert_eq!(
        attempts(|| io::Error::from(io::ErrorKind::ConnectionReset).into()).await,
        3
    );
    assert_eq!(
        attempts(|| io::Error::from(io::ErrorKind::PermissionDenied).into()).await,
        1
    );
    // Deeper in the chain, under two layers of context.
    assert_eq!(
        attempts(|| {
            anyhow::Error::new(io::Error::from(io::ErrorKind::NotFound))
                .context("opening prices.csv")
        })
        .await,
        1
    );
    // Nothing known: transient, as an error type without an impl.
    assert_eq!(attempts(|| anyhow::anyhow!("odd")).await, 3);
}

#[cfg(feature = "tonic")]
#[tokio::test(start_paused = true)]
async fn a_tonic_status_in_the_chain_decides() {
    assert_eq!(
        attempts(|| tonic::Status::not_found("no such price list").into()).await,
        1
    );
    assert_eq!(
        attempts(|| tonic::Status::unavailable("restarting").into()).await,
        3
    );
}
