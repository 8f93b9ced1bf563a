//! A budget's side of fleet sharing (feature `redis`): the lease of the fleet's tokens its
//! retries spend while Redis answers, and what the sync task books, reports and applies.

use super::Budget;
use crate::clock;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

/// The lease's value while the budget is not shared, or Redis does not answer: the local
/// ledger decides.
pub(crate) const LOCAL: i64 = i64::MIN;

/// What one sync tells the fleet about a budget.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct LeaseReport {
    /// Successes since the last report (booked into the local ledger too).
    pub(crate) successes: u64,
    /// The lease not spent (milli-tokens; 0 in local mode): it goes back to the fleet.
    pub(crate) left: i64,
    /// Retries granted and refused so far (the sync task takes the differences).
    pub(crate) granted: u64,
    pub(crate) refused: u64,
}

/// The budget's shape in the fleet's units (milli-tokens, milliseconds), for the script.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FleetShape {
    pub(crate) capacity: i64,
    /// Milli-tokens per success.
    pub(crate) ratio: i64,
    pub(crate) min_per_sec: i64,
    pub(crate) window_ms: u64,
    pub(crate) start: i64,
}

impl Budget {
    /// Spends `cost` tokens of the lease; `None` if it holds fewer (or the budget went local
    /// meanwhile: then nothing is spent and the retry is refused, as the lease would have).
    pub(super) fn take_lease(&self, cost: u32) -> Option<i64> {
        let milli = i64::from(cost) * 1000;
        let mut current = self.lease.load(Acquire);
        loop {
            if current == LOCAL || current < milli {
                return None;
            }
            match self
                .lease
                .compare_exchange_weak(current, current - milli, AcqRel, Acquire)
            {
                Ok(_) => return Some(milli),
                Err(actual) => current = actual,
            }
        }
    }

    /// A fleet-paid retry not made gives its tokens back to the lease (unless the budget went
    /// local since: the fleet took the lease back with the last report).
    pub(super) fn return_lease(&self, milli: i64) {
        let _ = self
            .lease
            .fetch_update(AcqRel, Acquire, |l| (l != LOCAL).then_some(l + milli));
    }

    /// Books the successes counted since the last look into the local ledger and reports them
    /// with the unspent lease (the sync task, every half `sync`; never on a call's path).
    pub(crate) fn lease_report(&self) -> LeaseReport {
        let now_ms = clock::now_nanos() / 1_000_000;
        let successes = {
            let shape = self.shape();
            let mut ledger = self.ledger();
            let n = self.book(shape, &mut ledger, now_ms);
            self.booked.store(ledger.tokens().to_bits(), Relaxed);
            n
        };
        let left = match self.lease.load(Acquire) {
            LOCAL => 0,
            l => l.max(0),
        };
        let (granted, refused) = self.counts();
        LeaseReport {
            successes,
            left,
            granted,
            refused,
        }
    }

    /// The fleet granted `grant` milli-tokens after `report` gave back its `left`: the lease
    /// becomes what was spent since the report (a small debt) plus the grant, and the budget
    /// is shared from now on.
    pub(crate) fn apply_lease(&self, report: &LeaseReport, grant: i64) {
        let _ = self.lease.fetch_update(AcqRel, Acquire, |l| {
            Some(match l {
                LOCAL => grant,
                l => l - report.left + grant,
            })
        });
    }

    /// Redis does not answer: the local ledger decides from now on. Returns the lease it
    /// held (milli-tokens; `None`: it was local already).
    pub(crate) fn lease_to_local(&self) -> Option<i64> {
        match self.lease.swap(LOCAL, AcqRel) {
            LOCAL => None,
            held => Some(held),
        }
    }

    /// The shape in the fleet's units.
    pub(crate) fn fleet_shape(&self) -> FleetShape {
        let s = self.shape();
        FleetShape {
            capacity: (s.capacity * 1000.0) as i64,
            ratio: (s.ratio * 1000.0).round() as i64,
            min_per_sec: s.min_per_sec as i64,
            window_ms: s.window_ms,
            start: (s.start * 1000.0) as i64,
        }
    }
}
