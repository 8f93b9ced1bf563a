//! A hand-written gRPC service for the gRPC example and tests, in place of what `tonic-build`
//! generates from a `.proto` (no `protoc` needed): `inventory.Inventory/Lookup`.
//!
//! ```proto
//! service Inventory { rpc Lookup(LookupRequest) returns (LookupReply); }
//! message LookupRequest { string sku = 1; }
//! message LookupReply { string sku = 1; uint32 count = 2; }
//! ```
//!
//! The server answers by the SKU's prefix and how often it was asked:
//! `flaky-…` is `UNAVAILABLE` with `grpc-retry-pushback-ms: 300` on its first request, then
//! `OK`; `down-…` is always `UNAVAILABLE` (no pushback); `draining-…` is `UNAVAILABLE` with a
//! pushback of `-1` ("do not retry"); `later-…` is `UNAVAILABLE` with a pushback of 60 s;
//! `missing-…` is `NOT_FOUND`; anything else is `OK`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::metadata::MetadataMap;
use tonic::server::{NamedService, UnaryService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

const LOOKUP: &str = "/inventory.Inventory/Lookup";

/// `message LookupRequest { string sku = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupRequest {
    #[prost(string, tag = "1")]
    pub sku: String,
}

/// `message LookupReply { string sku = 1; uint32 count = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupReply {
    #[prost(string, tag = "1")]
    pub sku: String,
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

// ---------------------------------------------------------------------------------------------
// The client, as tonic-build would generate it.
// ---------------------------------------------------------------------------------------------

/// The generated client of `inventory.Inventory`.
#[derive(Clone)]
pub struct InventoryClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl InventoryClient {
    /// Connects to `url` (`http://127.0.0.1:PORT`).
    pub async fn connect(url: String) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(url)?.connect().await?;
        Ok(InventoryClient {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// `rpc Lookup(LookupRequest) returns (LookupReply)`.
    pub async fn lookup(
        &mut self,
        request: impl tonic::IntoRequest<LookupRequest>,
    ) -> Result<tonic::Response<LookupReply>, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
        let path = PathAndQuery::from_static(LOOKUP);
        let codec: ProstCodec<LookupRequest, LookupReply> = ProstCodec::default();
        self.grpc.unary(request.into_request(), path, codec).await
    }
}

// ---------------------------------------------------------------------------------------------
// The server.
// ---------------------------------------------------------------------------------------------

/// The server of `inventory.Inventory`; clones share the request counts.
#[derive(Clone, Default)]
pub struct InventoryServer {
    requests: Arc<Mutex<HashMap<String, u32>>>,
}

impl InventoryServer {
    /// How many requests for `sku` the server has seen.
    pub fn requests(&self, sku: &str) -> u32 {
        self.requests.lock().unwrap().get(sku).copied().unwrap_or(0)
    }

    fn answer(&self, request: LookupRequest) -> Result<tonic::Response<LookupReply>, Status> {
        let sku = request.sku;
        let seen = {
            let mut requests = self.requests.lock().unwrap();
            let n = requests.entry(sku.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let unavailable = |pushback: Option<&str>| {
            let mut trailers = MetadataMap::new();
            if let Some(ms) = pushback {
                trailers.insert("grpc-retry-pushback-ms", ms.parse().unwrap());
            }
            Err(Status::with_metadata(
                Code::Unavailable,
                "inventory is restarting",
                trailers,
            ))
        };
        match sku.split('-').next().unwrap_or("") {
            "flaky" if seen == 1 => return unavailable(Some("300")),
            "down" => return unavailable(None),
            "draining" => return unavailable(Some("-1")),
            "later" => return unavailable(Some("60000")),
            "missing" => return Err(Status::not_found(format!("no item {sku}"))),
            _ => {}
        }
        Ok(tonic::Response::new(LookupReply {
            count: sku.len() as u32,
            sku,
        }))
    }
}

/// Serves on a free port of 127.0.0.1 in a spawned task; returns its URL and the server.
pub async fn serve() -> std::io::Result<(String, InventoryServer)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = InventoryServer::default();
    let service = server.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    Ok((url, server))
}

impl NamedService for InventoryServer {
    const NAME: &'static str = "inventory.Inventory";
}

struct Lookup(InventoryServer);

impl UnaryService<LookupRequest> for Lookup {
    type Response = LookupReply;
    type Future = BoxFuture<tonic::Response<LookupReply>, Status>;

    fn call(&mut self, request: tonic::Request<LookupRequest>) -> Self::Future {
        let server = self.0.clone();
        Box::pin(async move { server.answer(request.into_inner()) })
    }
}

impl<B> Service<http::Request<B>> for InventoryServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = self.clone();
        Box::pin(async move {
            if request.uri().path() != LOOKUP {
                return Ok(Status::unimplemented(request.uri().path().to_string()).into_http());
            }
            let codec: ProstCodec<LookupReply, LookupRequest> = ProstCodec::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.unary(Lookup(server), request).await)
        })
    }
}
