//! The sync thread's connection to Redis: one server's multiplexed connection, or a Redis
//! Cluster's (the client routes each script to the node of its keys' slot), behind one type.

use super::RedisAt;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

/// How to reach the fleet's Redis, with each step limited so that a round fits its time.
pub(super) enum Client {
    One(redis::Client, redis::AsyncConnectionConfig),
    Cluster(ClusterClient),
}

/// A connection [`Client::connect`] made.
pub(super) enum Connection {
    One(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Client {
    /// A client for `redis` that gives up on a connection after `connect` and on an answer
    /// after `answer`.
    pub(super) fn open(
        redis: &RedisAt,
        connect: Duration,
        answer: Duration,
    ) -> RedisResult<Client> {
        match redis {
            RedisAt::One(url) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect))
                    .set_response_timeout(Some(answer));
                Ok(Client::One(redis::Client::open(url.as_str())?, config))
            }
            RedisAt::Cluster(seeds) => ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                .connection_timeout(connect)
                .response_timeout(answer)
                // A round has one chance: a node that does not answer is Redis down, and the
                // next round (half a `sync` on) is the retry.
                .retries(0)
                .build()
                .map(Client::Cluster),
        }
    }

    pub(super) async fn connect(&self) -> RedisResult<Connection> {
        match self {
            Client::One(client, config) => client
                .get_multiplexed_async_connection_with_config(config)
                .await
                .map(Connection::One),
            Client::Cluster(client) => client.get_async_connection().await.map(Connection::Cluster),
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::One(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::One(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::One(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
