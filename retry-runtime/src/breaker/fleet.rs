//! A breaker's side of fleet sharing (feature `redis`): what the sync task reads of it, and
//! the moves it makes when the fleet's shared breaker and this process's disagree.

use super::manual::FORCE_AUTO;
use super::state::*;
use super::{Breaker, BreakerState};
use crate::loom::{
    clock_now,
    Ordering::{AcqRel, Acquire, Release},
};
use std::sync::atomic::Ordering;

/// Wakes the fleet's sync task when a breaker opens or closes here, so that the fleet hears
/// of it at once rather than at the next `sync` tick.
pub(crate) static LOCAL_CHANGE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A local transition happened (cold path: opening or closing a breaker).
pub(super) fn local_change() {
    LOCAL_CHANGE.notify_one();
}

/// One look at a breaker for the sync task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FleetView {
    pub(crate) state: BreakerState,
    /// The state word's generation: any local transition changes it.
    pub(crate) generation: u32,
    /// While open, nanoseconds left of this process's open time (its hold aside).
    pub(crate) open_left: u64,
}

impl Breaker {
    /// The state, its generation and the open time left, for the sync task.
    pub(crate) fn fleet_view(&self) -> FleetView {
        let word = self.state.0.load(Acquire);
        let generation = generation_of(word);
        let open_left = if word & KIND_MASK == OPEN {
            self.open_left(generation, clock_now())
        } else {
            0
        };
        FleetView {
            state: kind_of(word),
            generation,
            open_left,
        }
    }

    /// The fleet's breaker is open for `remaining` more nanoseconds: a closed or half-open
    /// breaker here opens for that long (a half-open one drops its probes: another process
    /// holds the fleet's); an open one stays as it is.
    pub(crate) fn fleet_open(&self, remaining: u64) {
        if self.force.load(Ordering::Acquire) != FORCE_AUTO {
            return;
        }
        let now = clock_now();
        let mut word = self.state.0.load(Acquire);
        while word & KIND_MASK != OPEN {
            let next = generation_of(word).wrapping_add(1);
            match self
                .state
                .0
                .compare_exchange(word, open_word(next), AcqRel, Acquire)
            {
                Ok(_) => {
                    let nominal = self.limits().open_for;
                    let until = now.saturating_add(remaining);
                    let reason = "opened by the fleet";
                    self.publish_open(next, kind_of(word), nominal, until, reason, 0);
                    return;
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// The fleet's breaker closed (another process's probes succeeded): an open or half-open
    /// breaker here closes too, with a fresh window (`force`'s own move to closed).
    pub(crate) fn fleet_close(&self) {
        if self.force.load(Ordering::Acquire) != FORCE_AUTO {
            return;
        }
        self.hold_until.store(0, Release);
        let (from, _) = self.move_to(true);
        if from != BreakerState::Closed {
            self.log(from, BreakerState::Closed, "closed by the fleet", 0);
        }
    }

    /// Keeps an open breaker open until `until` (clock nanoseconds) past its own open time,
    /// because another process holds the fleet's probes; 0 lifts the hold. A hold is always
    /// short (two `sync`s): if the sync task stops renewing it, the local breaker decides.
    pub(crate) fn fleet_hold(&self, until: u64) {
        self.hold_until.store(until, Release);
    }
}
