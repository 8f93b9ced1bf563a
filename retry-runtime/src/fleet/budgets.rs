//! One shared budget's sync: reports this process's successes (each batch once, even when a
//! round is cut and sent again), gives back the unspent lease (once, even when a round is cut)
//! and takes the next one.

use super::connection::Connection;
use crate::budget::{Budget, LeaseReport};
use std::sync::OnceLock;
use std::time::Duration;

fn script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(include_str!("budget.lua")))
}

/// Batches of successes kept for resending while their round's fate is unknown; older ones
/// are dropped (their deposits would have expired from the window by then anyway).
const MOST_UNACKED: usize = 32;

pub(super) struct SharedBudget {
    budget: &'static Budget,
    key: String,
    ack_key: String,
    /// The fleet's leases (one field per process: its last grant).
    leases_key: String,
    /// This process's field there.
    me: String,
    /// How long a process may go without a round before its lease stops counting against
    /// the capacity (it died, or went local and returns what it held when it is back).
    gone_after_ms: u64,
    /// The last batch number used (batches are numbered from 1 per process run).
    batch: u64,
    /// Batches sent in a round that failed: Redis may or may not have applied them, so they
    /// go again with their numbers and the script applies each once.
    unacked: Vec<(u64, u64)>,
    /// Grants and refusals at the last round, to size the next lease.
    last_counts: (u64, u64),
    /// The last round whose answer arrived (its grant is the lease this process holds).
    answered: u64,
    /// Set when the budget went local: the lease it dropped then (milli-tokens), which the
    /// next answered round gives back, or not, as the fleet's record of its grants says.
    dropped: Option<i64>,
}

impl SharedBudget {
    pub(super) fn new(budget: &'static Budget, prefix: &str, me: &str, sync: Duration) -> Self {
        let key = format!("{prefix}:budget:{{{}}}", budget.name());
        SharedBudget {
            budget,
            ack_key: format!("{key}:acked:{me}"),
            leases_key: format!("{key}:leases"),
            me: me.to_owned(),
            // Eight rounds missed (a round every half `sync`).
            gone_after_ms: (4 * sync).as_millis() as u64,
            key,
            batch: 0,
            unacked: Vec::new(),
            last_counts: budget.counts(),
            answered: 0,
            dropped: None,
        }
    }

    pub(super) fn name(&self) -> &'static str {
        self.budget.name()
    }

    pub(super) async fn sync(&mut self, con: &mut Connection) -> redis::RedisResult<()> {
        let report: LeaseReport = self.budget.lease_report();
        let shape = self.budget.fleet_shape();
        self.batch += 1;
        self.unacked.push((self.batch, report.successes));
        if self.unacked.len() > MOST_UNACKED {
            self.unacked.remove(0);
        }
        // The next lease: twice the retries asked for since the last round (granted or
        // refused), at least one retry after a timeout (2 tokens), at most the capacity.
        let asked = (report.granted - self.last_counts.0) + (report.refused - self.last_counts.1);
        self.last_counts = (report.granted, report.refused);
        let want = (asked as i64 * 2000).clamp(2000, shape.capacity.max(2000));
        let mut call = script().key(&self.key);
        call.key(&self.ack_key)
            .key(&self.leases_key)
            .arg(shape.capacity)
            .arg(shape.ratio)
            .arg(shape.min_per_sec)
            .arg(shape.window_ms)
            .arg(shape.start)
            .arg(report.left)
            .arg(want)
            .arg(self.batch)
            .arg(self.answered)
            .arg(self.dropped.unwrap_or(-1))
            .arg(&self.me)
            .arg(self.gone_after_ms);
        for (batch, successes) in &self.unacked {
            call.arg(*batch).arg(*successes);
        }
        let (granted, _fleet_tokens): (i64, i64) = call.invoke_async(con).await?;
        self.unacked.clear();
        self.answered = self.batch;
        self.dropped = None;
        self.budget.apply_lease(&report, granted);
        Ok(())
    }

    /// Redis is gone: the local ledger decides (it booked every success and retry meanwhile).
    /// The lease dropped is remembered for the fleet (the first fall only: after it, the
    /// budget holds none).
    pub(super) fn fall_back(&mut self) {
        let dropped = self.budget.lease_to_local();
        if self.dropped.is_none() {
            self.dropped = Some(dropped.unwrap_or(0).max(0));
        }
    }
}
