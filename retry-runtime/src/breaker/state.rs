//! The breaker's state machine: Closed → Open → HalfOpen packed in one atomic word with a
//! generation tag, and the transitions a failure, an elapsed open time or a probe make.

use super::Breaker;
use crate::loom::{
    jitter_factor,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};

/// Where a breaker stands.
///
/// ```
/// use retry_runtime::{Breaker, BreakerConfig, BreakerState};
///
/// static SEARCH: Breaker = Breaker::new("search", BreakerConfig::DEFAULT);
/// assert_eq!(SEARCH.state(), BreakerState::Closed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum BreakerState {
    /// Calls flow and their outcomes are counted.
    Closed,
    /// Calls are refused until the open time has passed.
    Open,
    /// A few trial calls (probes) decide between `Closed` and `Open`.
    HalfOpen,
}

impl BreakerState {
    /// The `stormguard_breaker_state` gauge's value: 0 closed, 1 open, 2 half-open.
    pub(crate) const fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

// The state word: kind (2 bits) | probes in flight (15) | probes succeeded (15) | generation (32).
// Every transition bumps the generation, so a permit can tell whether the state it was admitted
// in still holds. Half-open bookkeeping lives in the same word, so one CAS decides each step.
pub(super) const KIND_MASK: u64 = 0b11;
pub(super) const CLOSED: u64 = 0;
pub(super) const OPEN: u64 = 1;
pub(super) const HALF_OPEN: u64 = 2;
pub(super) const IN_FLIGHT_SHIFT: u32 = 2;
pub(super) const SUCCEEDED_SHIFT: u32 = 17;
pub(super) const FIELD_MASK: u64 = (1 << 15) - 1;
pub(super) const GEN_SHIFT: u32 = 32;
pub(super) const IN_FLIGHT_ONE: u64 = 1 << IN_FLIGHT_SHIFT;
pub(super) const MAX_PROBES: u64 = FIELD_MASK;

pub(super) const fn closed_word(generation: u32) -> u64 {
    ((generation as u64) << GEN_SHIFT) | CLOSED
}

pub(super) const fn open_word(generation: u32) -> u64 {
    ((generation as u64) << GEN_SHIFT) | OPEN
}

pub(super) const fn half_open_word(generation: u32, in_flight: u64, succeeded: u64) -> u64 {
    ((generation as u64) << GEN_SHIFT)
        | (succeeded << SUCCEEDED_SHIFT)
        | (in_flight << IN_FLIGHT_SHIFT)
        | HALF_OPEN
}

pub(super) const fn generation_of(word: u64) -> u32 {
    (word >> GEN_SHIFT) as u32
}

pub(super) const fn in_flight_of(word: u64) -> u64 {
    (word >> IN_FLIGHT_SHIFT) & FIELD_MASK
}

pub(super) const fn succeeded_of(word: u64) -> u64 {
    (word >> SUCCEEDED_SHIFT) & FIELD_MASK
}

pub(super) const fn kind_of(word: u64) -> BreakerState {
    match word & KIND_MASK {
        CLOSED => BreakerState::Closed,
        OPEN => BreakerState::Open,
        _ => BreakerState::HalfOpen,
    }
}

/// What a probe reported.
#[derive(Clone, Copy)]
pub(super) enum ProbeOutcome {
    Success,
    Failure { now: u64 },
    Dropped,
}

impl Breaker {
    /// A probe of the half-open period `generation` reported (or was dropped). Results from an
    /// earlier period are ignored: its slots were never part of the current one.
    pub(super) fn probe_done(&self, generation: u32, outcome: ProbeOutcome) {
        let mut word = self.state.0.load(Acquire);
        loop {
            if word & KIND_MASK != HALF_OPEN || generation_of(word) != generation {
                return;
            }
            let in_flight = in_flight_of(word);
            if in_flight == 0 {
                debug_assert!(false, "probe permit without a slot");
                return;
            }
            let next = match outcome {
                ProbeOutcome::Dropped => word - IN_FLIGHT_ONE,
                ProbeOutcome::Failure { .. } => open_word(generation.wrapping_add(1)),
                ProbeOutcome::Success => {
                    let succeeded = succeeded_of(word) + 1;
                    if succeeded >= self.limits().probes {
                        // Before the CAS, so that the closed period's first calls find it
                        // (nothing is recorded in a window while half-open).
                        self.start_window(generation.wrapping_add(1));
                        closed_word(generation.wrapping_add(1))
                    } else {
                        half_open_word(generation, in_flight - 1, succeeded)
                    }
                }
            };
            match self.state.0.compare_exchange(word, next, AcqRel, Acquire) {
                Ok(_) => {
                    match (outcome, next & KIND_MASK) {
                        (ProbeOutcome::Failure { now }, _) => self.enter_open(
                            generation.wrapping_add(1),
                            BreakerState::HalfOpen,
                            now,
                            "probe failed",
                            1,
                        ),
                        (ProbeOutcome::Success, CLOSED) => {
                            self.log(
                                BreakerState::HalfOpen,
                                BreakerState::Closed,
                                "probes succeeded",
                                0,
                            );
                            #[cfg(feature = "redis")]
                            super::fleet::local_change();
                        }
                        _ => {}
                    }
                    return;
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Run by the one thread whose CAS opened the breaker (period `generation`): sets and
    /// publishes the end of the open period, then logs.
    pub(super) fn enter_open(
        &self,
        generation: u32,
        from: BreakerState,
        now: u64,
        reason: &'static str,
        failures: u64,
    ) {
        let g = self.limits();
        let (nominal, open_for) = if from == BreakerState::Closed {
            (g.open_for, g.open_for)
        } else {
            // Reopened by a failed probe: twice as long, with jitter, up to `open_max`.
            let previous = self.open_dur.load(Relaxed).max(g.open_for);
            let doubled = previous.saturating_mul(2).min(g.open_max);
            let jittered = (doubled as f64 * jitter_factor()) as u64;
            (doubled, jittered.min(g.open_max))
        };
        let until = now.saturating_add(open_for);
        self.publish_open(generation, from, nominal, until, reason, failures);
        #[cfg(feature = "redis")]
        super::fleet::local_change();
    }

    /// The one thread whose CAS moved the state word to open (period `generation`) publishes
    /// its nominal duration and end (`until`, clock nanoseconds), counts it and logs.
    pub(super) fn publish_open(
        &self,
        generation: u32,
        from: BreakerState,
        nominal: u64,
        until: u64,
        reason: &'static str,
        failures: u64,
    ) {
        self.open_dur.store(nominal, Relaxed);
        self.open_until.store(until, Relaxed);
        self.open_gen.store(generation, Release);
        self.opened.fetch_add(1, Relaxed);
        self.log(from, BreakerState::Open, reason, failures);
    }

    pub(super) fn log(
        &self,
        from: BreakerState,
        to: BreakerState,
        reason: &'static str,
        failures: u64,
    ) {
        tracing::info!(
            target: "stormguard",
            breaker = self.name,
            from = ?from,
            to = ?to,
            reason = reason,
            failures = failures,
            "circuit breaker state changed"
        );
        crate::export::breaker_state(self.name, to.gauge());
    }
}
