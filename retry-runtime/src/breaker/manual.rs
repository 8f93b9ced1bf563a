//! What an operator changes on a running breaker: its limits (the live configuration's
//! `[breaker.name]`) and manual control, `force` open, closed, or back to automatic.

use super::config::{BreakerConfig, Geometry};
use super::state::*;
use super::{Breaker, BreakerState};
use crate::loom::{clock_now, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::atomic::Ordering;

/// Manual control of a breaker (the live configuration's `force = "open" | "closed" |
/// "auto"`), for an incident or for code that reacts to its own signals.
///
/// ```
/// use retry_runtime::{Breaker, BreakerConfig, BreakerState, Force};
///
/// static DNS: Breaker = Breaker::new("dns", BreakerConfig::DEFAULT);
/// DNS.force(Force::Open); // every call fails fast, whatever the downstream does
/// assert!(DNS.admit().is_err());
/// DNS.force(Force::Auto); // the next call is a probe: its outcome decides
/// assert!(DNS.admit().is_ok());
/// assert_eq!(DNS.state(), BreakerState::HalfOpen);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Force {
    /// The state machine decides (the default).
    #[default]
    Auto,
    /// Open until forced otherwise: every call is refused.
    Open,
    /// Closed until forced otherwise: failures are counted but never open it.
    Closed,
}

pub(super) const FORCE_AUTO: u8 = 0;
pub(super) const FORCE_OPEN: u8 = 1;
pub(super) const FORCE_CLOSED: u8 = 2;

/// A breaker's limits as the live configuration set them.
#[derive(Debug)]
pub(super) struct Tuned {
    pub(super) config: BreakerConfig,
    pub(super) geometry: Geometry,
}

impl Breaker {
    /// The limits failures and probes are judged by: the compiled ones unless the live
    /// configuration changed them (the window's shape never changes).
    #[inline]
    pub(super) fn limits(&self) -> &Geometry {
        match self.tuned() {
            Some(tuned) => &tuned.geometry,
            None => &self.geometry,
        }
    }

    pub(super) fn tuned(&self) -> Option<&Tuned> {
        let tuned = self.tuned.load(Ordering::Acquire);
        // SAFETY: null or a leaked `Box<Tuned>` (`retune`), never freed.
        unsafe { tuned.as_ref() }
    }

    /// Judges from now on by `config` (`None`: the compiled one); counts, state and the
    /// window carry over. `config`'s window must be the compiled one (the live configuration
    /// checks it): the window's buckets are laid out for it.
    #[cfg_attr(not(feature = "config"), allow(dead_code))]
    pub(crate) fn retune(&self, config: Option<BreakerConfig>) {
        let next = match config {
            Some(c) if c == self.config => std::ptr::null_mut(),
            Some(c) if self.tuned().is_some_and(|t| t.config == c) => {
                return;
            }
            Some(c) => Box::into_raw(Box::new(Tuned {
                geometry: Geometry::of(&c),
                config: c,
            })),
            None => std::ptr::null_mut(),
        };
        self.tuned.store(next, Ordering::Release);
    }

    /// The manual control in force.
    ///
    /// ```
    /// use retry_runtime::{Breaker, BreakerConfig, Force};
    ///
    /// static QUEUE: Breaker = Breaker::new("queue", BreakerConfig::DEFAULT);
    /// assert_eq!(QUEUE.forced(), Force::Auto);
    /// ```
    pub fn forced(&self) -> Force {
        match self.force.load(Ordering::Acquire) {
            FORCE_OPEN => Force::Open,
            FORCE_CLOSED => Force::Closed,
            _ => Force::Auto,
        }
    }

    /// Takes manual control (see [`Force`]): `Open` refuses every call from now on, `Closed`
    /// admits every call and never opens, `Auto` hands back to the state machine (from a
    /// forced open, through half-open: the next call is a probe). Each change of state logs
    /// the usual `circuit breaker state changed` event, with reason `forced open`, `forced
    /// closed` or `force released`. Permits given before it report into nothing.
    pub fn force(&'static self, force: Force) {
        let code = match force {
            Force::Auto => FORCE_AUTO,
            Force::Open => FORCE_OPEN,
            Force::Closed => FORCE_CLOSED,
        };
        let before = self.force.swap(code, Ordering::AcqRel);
        if before == code {
            return;
        }
        let now = clock_now();
        match force {
            Force::Open => {
                let (from, generation) = self.move_to(false);
                let nominal = self.limits().open_for;
                self.publish_open(generation, from, nominal, u64::MAX, "forced open", 0);
            }
            Force::Closed => {
                let (from, _) = self.move_to(true);
                if from != BreakerState::Closed {
                    self.log(from, BreakerState::Closed, "forced closed", 0);
                }
            }
            Force::Auto => {
                let word = self.state.0.load(Acquire);
                if word & KIND_MASK == OPEN && before == FORCE_OPEN {
                    // The open time ends now: the next admit is the first probe.
                    self.open_until.store(now, Relaxed);
                    self.open_gen.store(generation_of(word), Release);
                    tracing::info!(
                        target: crate::log::TARGET,
                        breaker = self.name,
                        "circuit breaker force released: the next call is a probe"
                    );
                }
            }
        }
    }

    /// Moves the state word to open (`closing`: closed) in the next generation, from whatever
    /// it is; returns the state it left and the new generation. A closed breaker forced
    /// closed stays as it is.
    pub(super) fn move_to(&self, closing: bool) -> (BreakerState, u32) {
        let mut current = self.state.0.load(Acquire);
        loop {
            let from = kind_of(current);
            let generation = generation_of(current);
            if closing && from == BreakerState::Closed {
                return (from, generation);
            }
            let next_gen = generation.wrapping_add(1);
            let next = if closing {
                // Before the CAS, so that the closed period's first calls find it.
                self.start_window(next_gen);
                closed_word(next_gen)
            } else {
                open_word(next_gen)
            };
            match self
                .state
                .0
                .compare_exchange(current, next, Ordering::AcqRel, Acquire)
            {
                Ok(_) => return (from, next_gen),
                Err(actual) => current = actual,
            }
        }
    }
}
