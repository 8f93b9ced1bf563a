//! gRPC: a tonic client retrying against a real (local) tonic server.
//!
//! ```text
//! cargo run --example grpc --features tonic
//! ```
//!
//! It starts an `inventory.Inventory` server on 127.0.0.1 (a free port, no outside network;
//! the service is hand-written in `examples/grpc/inventory.rs`, so no `protoc` is needed)
//! and shows, through the attempt logs:
//! 1. `UNAVAILABLE` with `grpc-retry-pushback-ms: 300`, retried after the server's 300 ms,
//!    then `OK`;
//! 2. `NOT_FOUND`, returned at once without a retry;
//! 3. `UNAVAILABLE` with a negative pushback: the server asks not to be retried, so it isn't.
//!
//! The client side is the annotated fn and nothing else: `Classify for tonic::Status` (feature
//! `tonic`) retries only `UNAVAILABLE` (Google AIP-194) and reads the pushback (gRFC A6).

#[path = "grpc/inventory.rs"]
mod inventory;

use inventory::{InventoryClient, LookupRequest};
use std::time::Instant;
use tonic::Code;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

// ---------------------------------------------------------------------------------------------
// The client side: this is the code a user of stormguard writes.
// ---------------------------------------------------------------------------------------------

/// One `Lookup`; only this call is retried.
#[stormguard::retry(attempts = 4, max = "2s")]
async fn stock(client: &InventoryClient, sku: &str) -> Result<u32, tonic::Status> {
    let request = LookupRequest { sku: sku.into() };
    Ok(client.clone().lookup(request).await?.into_inner().count)
}

// ---------------------------------------------------------------------------------------------
// The demo.
// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(tracing_subscriber::fmt::layer())
        .init();

    let (url, server) = inventory::serve().await?;
    let client = InventoryClient::connect(url).await?;

    println!("\n== 1. UNAVAILABLE with grpc-retry-pushback-ms: 300, then OK");
    let started = Instant::now();
    let count = stock(&client, "flaky-widget").await?;
    println!("ok after {:.1?}: {count} in stock", started.elapsed());
    assert_eq!(server.requests("flaky-widget"), 2);

    println!("\n== 2. NOT_FOUND is not retried");
    let err = stock(&client, "missing-gadget").await.unwrap_err();
    println!("failed fast: {:?} {}", err.code(), err.message());
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(server.requests("missing-gadget"), 1);

    println!("\n== 3. UNAVAILABLE with a negative pushback: the server asks not to be retried");
    let err = stock(&client, "draining-gizmo").await.unwrap_err();
    println!("returned at once: {:?} {}", err.code(), err.message());
    assert_eq!(server.requests("draining-gizmo"), 1);
    Ok(())
}
