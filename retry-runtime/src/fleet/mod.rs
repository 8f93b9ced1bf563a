//! Fleet sharing (feature `redis`): the `[fleet]` plan, and the one background thread per
//! process that syncs the shared breakers and budgets with Redis (started, replaced, stopped).
//!
//! A call never waits on Redis: calls decide on their process's own breaker and budget, and the
//! thread "stormguard-fleet" moves those every half `sync` (`sync.rs`) to agree with the fleet's
//! (`breakers.rs`, `budgets.rs`, each with its Lua script). When Redis fails, they decide alone.

mod breakers;
mod budgets;
mod connection;
mod sync;

use crate::breaker::Breaker;
use crate::budget::Budget;
pub(crate) use crate::redis_at::RedisAt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `[fleet]` asks for, checked against the program's names.
#[derive(Clone, Debug)]
pub(crate) struct FleetPlan {
    /// The Redis, or the seed nodes of a Redis Cluster (credentials included: never logged
    /// whole, see [`redacted`]).
    pub(crate) redis: RedisAt,
    pub(crate) prefix: String,
    pub(crate) sync: Duration,
    pub(crate) breakers: Vec<&'static Breaker>,
    pub(crate) budgets: Vec<&'static Budget>,
}

impl PartialEq for FleetPlan {
    fn eq(&self, other: &Self) -> bool {
        let names = |p: &FleetPlan| {
            (
                p.breakers.iter().map(|b| b.name()).collect::<Vec<_>>(),
                p.budgets.iter().map(|b| b.name()).collect::<Vec<_>>(),
            )
        };
        self.redis == other.redis
            && self.prefix == other.prefix
            && self.sync == other.sync
            && names(self) == names(other)
    }
}

/// The running sync thread and how to stop it.
struct Running {
    plan: FleetPlan,
    stop: Arc<Stop>,
    thread: std::thread::JoinHandle<()>,
}

/// Asks a sync thread to stop (checked between rounds and while it waits).
#[derive(Default)]
pub(crate) struct Stop {
    asked: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Stop {
    pub(crate) fn asked(&self) -> bool {
        self.asked.load(Ordering::Acquire)
    }

    /// Resolves once a stop is asked. The wake-up is registered before the flag is read, so
    /// a stop asked in between (`notify_waiters` keeps no permit) is not missed.
    pub(crate) async fn wait(&self) {
        loop {
            let mut notified = std::pin::pin!(self.wake.notified());
            notified.as_mut().enable();
            if self.asked() {
                return;
            }
            notified.await;
        }
    }
}

static RUNNING: Mutex<Option<Running>> = Mutex::new(None);

/// Applies the configuration's `[fleet]` (`None`: nothing shared). The same plan again
/// changes nothing; another one replaces the thread (the old one's breakers and budgets
/// decide locally until the new one's first round).
pub(crate) fn configure(plan: Option<FleetPlan>) {
    let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    if running.as_ref().map(|r| &r.plan) == plan.as_ref() {
        return;
    }
    if let Some(old) = running.take() {
        old.stop.asked.store(true, Ordering::Release);
        old.stop.wake.notify_waiters();
        // It stops within one Redis timeout; its last act puts its names back to local.
        let _ = old.thread.join();
    }
    let Some(plan) = plan else {
        crate::export::fleet_connected(0.0);
        return;
    };
    if plan.breakers.is_empty() && plan.budgets.is_empty() {
        return;
    }
    let stop = Arc::new(Stop::default());
    let for_thread = (plan.clone(), Arc::clone(&stop));
    let spawned = std::thread::Builder::new()
        .name("stormguard-fleet".into())
        .spawn(move || sync::run_thread(for_thread.0, for_thread.1));
    match spawned {
        Ok(thread) => *running = Some(Running { plan, stop, thread }),
        Err(e) => tracing::error!(
            target: crate::log::TARGET,
            "stormguard fleet: cannot start its sync thread ({e}); shared breakers and budgets decide locally"
        ),
    }
}

/// True while the sync thread's last round with Redis succeeded.
pub(crate) fn connected() -> bool {
    sync::CONNECTED.load(Ordering::Acquire)
}

/// Where the Redis is, as logs show it: `redis://***@host:6379/0`, or a cluster's first seed
/// node and how many seeds there are, never a user name or password.
pub(crate) fn shown(redis: &RedisAt) -> String {
    match redis {
        RedisAt::One(url) => redacted(url),
        RedisAt::Cluster(seeds) => format!(
            "{} (a Redis Cluster, {} seed node{})",
            redacted(&seeds[0]),
            seeds.len(),
            if seeds.len() == 1 { "" } else { "s" }
        ),
    }
}

/// The URL as logs show it: scheme, host and path, never a user name or password.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".into();
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => format!("{scheme}://{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn credentials_never_reach_the_logs() {
        assert_eq!(
            redacted("rediss://user:s3cret@cache:6380/0"),
            "rediss://***@cache:6380/0"
        );
        assert_eq!(redacted("redis://:p@ss@h:1"), "redis://***@h:1");
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("nonsense"), "<not a URL>");
    }
}
