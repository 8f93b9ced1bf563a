//! The sync thread's loop: connect to Redis, run one round for every shared name each half
//! `sync` (or at once after a local open or close), and fall back to local decisions on any fault.

use super::breakers::SharedBreaker;
use super::budgets::SharedBudget;
use super::connection::{Client, Connection};
use super::{FleetPlan, Stop};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// True while the last round succeeded (what `stormguard_fleet_connected` exports).
pub(super) static CONNECTED: AtomicBool = AtomicBool::new(false);

/// The first pause before reconnecting, doubled after each failed try up to `MOST`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MOST_BACKOFF: Duration = Duration::from_secs(5);

/// The least time the first connection is given, however short `sync` is.
const FIRST_CONNECT: Duration = Duration::from_secs(1);

/// The thread's body: its own small runtime, so that no user runtime (nor its paused clock in
/// tests) carries the sync.
pub(super) fn run_thread(plan: FleetPlan, stop: Arc<Stop>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(rt) => rt.block_on(run(&plan, &stop)),
        Err(e) => tracing::error!(
            target: crate::log::TARGET,
            "stormguard fleet: cannot start its runtime ({e}); shared breakers and budgets decide locally"
        ),
    }
}

/// Whether this process is shared with the fleet, for the transitions' logs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Starting,
    Up,
    Down,
}

struct Fleet<'p> {
    plan: &'p FleetPlan,
    breakers: Vec<SharedBreaker>,
    budgets: Vec<SharedBudget>,
    link: Link,
}

async fn run(plan: &FleetPlan, stop: &Stop) {
    let where_ = super::shown(&plan.redis);
    // A round every half `sync`, each given half a `sync`: a Redis that stops answering just
    // after a good round is given up within one `sync` of it (the next round starts at half a
    // `sync`, and times out at one), and a round slower than that is a Redis that is down.
    let half = plan.sync / 2;
    let connect_limit = plan.sync.max(Duration::from_millis(100));
    // The first connection is given longer: the process decides locally until it is made
    // anyway, and a cold TLS handshake on a busy machine is no Redis down worth a `warn`.
    let first_limit = connect_limit.max(FIRST_CONNECT);
    let client = match Client::open(&plan.redis, first_limit, half) {
        Ok(c) => c,
        Err(e) => {
            // The configuration checked the URLs; this is a client that cannot be built.
            tracing::error!(target: crate::log::TARGET, redis = where_.as_str(), "stormguard fleet: cannot use Redis at {where_} ({e}); shared breakers and budgets decide locally");
            return;
        }
    };
    let me = process_id();
    let mut fleet = Fleet {
        plan,
        breakers: plan
            .breakers
            .iter()
            .map(|b| SharedBreaker::new(b, &plan.prefix, &me, plan.sync))
            .collect(),
        budgets: plan
            .budgets
            .iter()
            .map(|b| SharedBudget::new(b, &plan.prefix, &me, plan.sync))
            .collect(),
        link: Link::Starting,
    };
    let mut connection: Option<Connection> = None;
    let mut backoff = FIRST_BACKOFF;
    while !stop.asked() {
        if connection.is_none() {
            let limit = if fleet.link == Link::Starting {
                first_limit
            } else {
                connect_limit
            };
            let made = tokio::select! {
                made = tokio::time::timeout(limit, client.connect()) => made,
                _ = stop.wait() => break,
            };
            let why = match made {
                Ok(Ok(con)) => {
                    connection = Some(con);
                    None
                }
                Ok(Err(e)) => Some(format!("cannot connect: {e}")),
                Err(_) => Some(format!("no answer to the connection within {limit:?}")),
            };
            if let Some(why) = why {
                fleet.down(&where_, &why);
                pause(stop, backoff).await;
                backoff = (backoff * 2).min(MOST_BACKOFF);
                continue;
            }
        }
        let Some(con) = connection.as_mut() else {
            continue;
        };
        match tokio::time::timeout(half, fleet.round(con)).await {
            Ok(Ok(())) => {
                backoff = FIRST_BACKOFF;
                fleet.up(&where_);
            }
            Ok(Err(e)) => {
                connection = None;
                fleet.down(&where_, &format!("a sync failed: {e}"));
            }
            Err(_) => {
                connection = None;
                fleet.down(&where_, "a sync round took longer than half of `sync`");
            }
        }
        // The next round: half a `sync` on, or at once when a breaker here opened or closed.
        tokio::select! {
            _ = tokio::time::sleep(half) => {}
            _ = crate::breaker::LOCAL_CHANGE.notified() => {}
            _ = stop.wait() => {}
        }
    }
    fleet.release();
}

/// Waits `d`, or less if a stop is asked.
async fn pause(stop: &Stop, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.wait() => {}
    }
}

/// This process among the fleet's: pid and start time, unique per process run.
fn process_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{:x}-{:x}", std::process::id(), nanos, fastrand::u32(..))
}

impl Fleet<'_> {
    /// One exchange for every shared name, one after another on the one connection.
    async fn round(&mut self, con: &mut Connection) -> redis::RedisResult<()> {
        for b in &mut self.breakers {
            b.sync(con).await?;
        }
        for b in &mut self.budgets {
            b.sync(con).await?;
        }
        Ok(())
    }

    fn up(&mut self, where_: &str) {
        if self.link != Link::Up {
            let names = self.names();
            if self.link == Link::Down {
                tracing::warn!(target: crate::log::TARGET, redis = where_, shared = names.as_str(), "stormguard fleet: Redis at {where_} is back; {names} are shared with the fleet again");
            } else {
                tracing::info!(target: crate::log::TARGET, redis = where_, shared = names.as_str(), "stormguard fleet: sharing {names} through Redis at {where_} every {:?}", self.plan.sync);
            }
            self.link = Link::Up;
            CONNECTED.store(true, Ordering::Release);
            crate::export::fleet_connected(1.0);
        }
    }

    /// Redis failed: every shared name decides locally from now on (one `warn` per fall).
    fn down(&mut self, where_: &str, why: &str) {
        self.fall_back();
        if self.link != Link::Down {
            let names = self.names();
            tracing::warn!(target: crate::log::TARGET, redis = where_, shared = names.as_str(), reason = why, "stormguard fleet: Redis at {where_} is unreachable ({why}); {names} decide on this process's own counts meanwhile");
            self.link = Link::Down;
            CONNECTED.store(false, Ordering::Release);
            crate::export::fleet_connected(0.0);
        }
    }

    fn fall_back(&mut self) {
        for b in &mut self.breakers {
            b.fall_back();
        }
        for b in &mut self.budgets {
            b.fall_back();
        }
    }

    /// The thread stops: what it shared decides locally, and the gauge says so.
    fn release(&mut self) {
        self.fall_back();
        CONNECTED.store(false, Ordering::Release);
        crate::export::fleet_connected(0.0);
    }

    fn names(&self) -> String {
        let mut names: Vec<String> = self
            .breakers
            .iter()
            .map(|b| format!("breaker `{}`", b.name()))
            .collect();
        names.extend(
            self.budgets
                .iter()
                .map(|b| format!("budget `{}`", b.name())),
        );
        names.join(", ")
    }
}
