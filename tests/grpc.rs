//! `Classify for tonic::Status` against a real local tonic server (127.0.0.1, a free port):
//! only `UNAVAILABLE` is retried, after the server's pushback; a negative one ends the call.
#![cfg(feature = "tonic")]

mod common;

#[path = "../examples/grpc/inventory.rs"]
mod inventory;

use common::Recorder;
use inventory::{InventoryClient, LookupRequest};
use tonic::Code;

#[stormguard::retry(
    attempts = 3,
    base = "100ms",
    max = "5s",
    jitter = "none",
    name = "grpc.stock"
)]
async fn stock(client: &InventoryClient, sku: &str) -> Result<u32, tonic::Status> {
    let request = LookupRequest { sku: sku.into() };
    Ok(client.clone().lookup(request).await?.into_inner().count)
}

/// The `delay_ms` of each retry, and the give-up reason if the call gave up.
fn retries(rec: &Recorder) -> (Vec<String>, Option<String>) {
    let events = rec.with("op", "grpc.stock");
    let delays = events
        .iter()
        .filter_map(|e| e.get("delay_ms").map(str::to_string))
        .collect();
    let reason = events
        .iter()
        .find_map(|e| e.get("reason").map(str::to_string));
    (delays, reason)
}

#[tokio::test(start_paused = true)]
async fn unavailable_is_retried_after_the_pushback() {
    let (url, server) = inventory::serve().await.unwrap();
    let client = InventoryClient::connect(url).await.unwrap();
    let rec = Recorder::default();
    let _guard = rec.install();
    let start = tokio::time::Instant::now();
    assert_eq!(stock(&client, "flaky-a").await.unwrap(), 7);
    assert!(start.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(server.requests("flaky-a"), 2);
    assert_eq!(retries(&rec), (vec!["300".to_string()], None));
}

#[tokio::test(start_paused = true)]
async fn unavailable_without_pushback_follows_the_backoff() {
    let (url, server) = inventory::serve().await.unwrap();
    let client = InventoryClient::connect(url).await.unwrap();
    let rec = Recorder::default();
    let _guard = rec.install();
    assert_eq!(
        stock(&client, "down-b").await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(server.requests("down-b"), 3);
    let (delays, reason) = retries(&rec);
    assert_eq!(delays, ["100", "200"]);
    assert_eq!(reason.as_deref(), Some("attempts_exhausted"));
}

#[tokio::test(start_paused = true)]
async fn not_found_is_returned_after_one_attempt() {
    let (url, server) = inventory::serve().await.unwrap();
    let client = InventoryClient::connect(url).await.unwrap();
    let rec = Recorder::default();
    let _guard = rec.install();
    assert_eq!(
        stock(&client, "missing-c").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(server.requests("missing-c"), 1);
    assert_eq!(retries(&rec).1.as_deref(), Some("permanent_error"));
}

#[tokio::test(start_paused = true)]
async fn a_negative_pushback_ends_the_call() {
    let (url, server) = inventory::serve().await.unwrap();
    let client = InventoryClient::connect(url).await.unwrap();
    let rec = Recorder::default();
    let _guard = rec.install();
    let err = stock(&client, "draining-d").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(server.requests("draining-d"), 1);
    assert_eq!(retries(&rec).1.as_deref(), Some("permanent_error"));
}

#[tokio::test(start_paused = true)]
async fn a_pushback_above_max_ends_the_call() {
    let (url, server) = inventory::serve().await.unwrap();
    let client = InventoryClient::connect(url).await.unwrap();
    let rec = Recorder::default();
    let _guard = rec.install();
    let _ = stock(&client, "later-e").await.unwrap_err();
    assert_eq!(server.requests("later-e"), 1);
    assert_eq!(retries(&rec).1.as_deref(), Some("retry_after_too_long"));
}
