//! Where `[fleet]`'s Redis is: one server's URL, or the seed nodes of a Redis Cluster. The
//! configuration reads it, the fleet's sync thread connects to it.

/// `redis = "redis://…"`, one server; `redis = ["redis://…", …]`, the seed nodes of a Redis
/// Cluster (the client finds the others). The URLs may hold credentials: never printed or
/// logged whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RedisAt {
    One(String),
    Cluster(Vec<String>),
}
