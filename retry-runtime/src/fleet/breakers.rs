//! One shared breaker's sync: tells the fleet what this process's breaker did since the last
//! round, and moves it to the fleet's state (open, closed, held while another process probes).

use super::connection::Connection;
use crate::breaker::{Breaker, BreakerState, FleetView, Force};
use crate::clock;
use std::sync::OnceLock;
use std::time::Duration;

fn script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(include_str!("breaker.lua")))
}

/// How long the fleet's keys outlive the last process that syncs them.
const KEY_TTL: Duration = Duration::from_secs(3600);

pub(super) struct SharedBreaker {
    breaker: &'static Breaker,
    key: String,
    me: String,
    sync: Duration,
    /// The breaker as the last round left it (`None` before the first).
    seen: Option<FleetView>,
    /// The manual control the fleet last agreed on, and its epoch.
    force: Force,
    force_epoch: i64,
}

/// What the script answers.
type Answer = (String, i64, i64, i64, String, i64);

impl SharedBreaker {
    pub(super) fn new(breaker: &'static Breaker, prefix: &str, me: &str, sync: Duration) -> Self {
        SharedBreaker {
            breaker,
            key: format!("{prefix}:breaker:{{{}}}", breaker.name()),
            me: me.to_owned(),
            sync,
            seen: None,
            force: Force::Auto,
            force_epoch: 0,
        }
    }

    pub(super) fn name(&self) -> &'static str {
        self.breaker.name()
    }

    /// What happened here since the last round, in the script's words.
    fn event(&self, now: &FleetView) -> &'static str {
        let Some(seen) = self.seen else {
            return match now.state {
                BreakerState::Closed => "none",
                _ => "open",
            };
        };
        if seen.generation == now.generation {
            return "none";
        }
        match (seen.state, now.state) {
            (BreakerState::Closed, BreakerState::Closed) => "none",
            (BreakerState::Closed, _) => "open",
            (_, BreakerState::Open) => "reopen",
            (_, BreakerState::Closed) => "close",
            (_, BreakerState::HalfOpen) => "none",
        }
    }

    pub(super) async fn sync(&mut self, con: &mut Connection) -> redis::RedisResult<()> {
        let view = self.breaker.fleet_view();
        let event = self.event(&view);
        let local = match view.state {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half",
        };
        let forced = self.breaker.forced();
        let publish = if forced != self.force {
            force_word(forced)
        } else {
            ""
        };
        let limits = self.breaker.config();
        let lease = limits.probe_timeout() + 2 * self.sync;
        let (state, _epoch, remaining_ms, probing, force, force_epoch): Answer = script()
            .key(&self.key)
            .arg(&self.me)
            .arg(event)
            .arg(local)
            .arg((view.open_left / 1_000_000).max(1))
            .arg(lease.as_millis() as u64)
            .arg(publish)
            .arg(KEY_TTL.as_millis() as u64)
            .invoke_async(con)
            .await?;
        // Manual control agreed by the fleet (from this process's configuration or another's).
        if force_epoch > self.force_epoch {
            let agreed = match force.as_str() {
                "open" => Force::Open,
                "closed" => Force::Closed,
                _ => Force::Auto,
            };
            if agreed != self.breaker.forced() {
                self.breaker.force(agreed);
            }
            self.force = agreed;
            self.force_epoch = force_epoch;
        }
        let now = clock::now_nanos();
        if state == "open" {
            let probing = probing == 1;
            if probing {
                // This process holds the fleet's probes: its own breaker runs them.
                self.breaker.fleet_hold(0);
            } else {
                // Another process probes (or the open time runs): stay open past the local
                // open time for two rounds; the next round renews it, a dead Redis ends it.
                self.breaker
                    .fleet_hold(now.saturating_add(clock::nanos(2 * self.sync)));
            }
            let local_now = self.breaker.fleet_view().state;
            if local_now == BreakerState::Closed
                || (local_now == BreakerState::HalfOpen && !probing)
            {
                let remaining = Duration::from_millis(remaining_ms.max(0) as u64);
                self.breaker.fleet_open(clock::nanos(remaining));
            }
        } else {
            self.breaker.fleet_hold(0);
            self.breaker.fleet_close(); // a closed breaker stays as it is
        }
        self.seen = Some(self.breaker.fleet_view());
        Ok(())
    }

    /// Redis is gone: the breaker decides alone (no hold); the next round starts afresh.
    pub(super) fn fall_back(&mut self) {
        self.breaker.fleet_hold(0);
        self.seen = None;
    }
}

fn force_word(force: Force) -> &'static str {
    match force {
        Force::Auto => "auto",
        Force::Open => "open",
        Force::Closed => "closed",
    }
}
