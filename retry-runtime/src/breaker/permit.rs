//! Permits: the proof that the breaker admitted one attempt, which reports its outcome, and
//! its drop-glue-free form (`RawPermit`) that a call keeps while the attempt runs.

use super::state::ProbeOutcome;
use super::Breaker;
use crate::loom::clock_now;
use std::fmt;
use std::mem::ManuallyDrop;

/// Proof of admission for one attempt, from [`Breaker::admit`].
///
/// Consumed by [`success`](Permit::success) or [`failure`](Permit::failure). Dropped without
/// either (a cancelled or panicking attempt), it gives a half-open probe slot back and counts
/// as neither, so a breaker never gets stuck half-open. A permit reports into the state it was
/// admitted in: if the breaker has changed state since, its outcome is counted in
/// [`BreakerCounts`] but does not move the breaker.
///
/// ```
/// use retry_runtime::{Breaker, BreakerConfig};
///
/// static BILLING: Breaker = Breaker::new("billing", BreakerConfig::DEFAULT);
///
/// fn call_downstream() -> Result<u32, std::io::Error> { Ok(7) }
///
/// let permit = BILLING.admit().expect("closed");
/// match call_downstream() {
///     Ok(_) => permit.success(),
///     Err(_) => permit.failure(),
/// }
/// assert_eq!(BILLING.counts().successes, 1);
/// ```
#[must_use = "report the attempt with success() or failure(); dropping the permit counts it as neither"]
pub struct Permit {
    pub(super) breaker: &'static Breaker,
    pub(super) generation: u32,
    pub(super) probe: bool,
}

/// A [`Permit`] with its drop obligation set aside, to be kept in a struct without drop glue
/// (see [`Permit::park`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawPermit {
    breaker: &'static Breaker,
    generation: u32,
    probe: bool,
}

impl RawPermit {
    /// The permit again: report it, or drop it.
    #[inline]
    pub(crate) fn resume(self) -> Permit {
        Permit {
            breaker: self.breaker,
            generation: self.generation,
            probe: self.probe,
        }
    }

    /// True for a half-open trial call, whose slot must be given back if it is never reported.
    #[inline]
    pub(crate) fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Permit {
    /// The attempt succeeded (or failed in a way that shows the downstream is up).
    #[inline]
    pub fn success(self) {
        let permit = ManuallyDrop::new(self);
        permit.breaker.on_success(permit.generation, permit.probe);
    }

    /// The attempt failed in a way that counts against the downstream (transient error or
    /// timeout).
    pub fn failure(self) {
        let permit = ManuallyDrop::new(self);
        permit
            .breaker
            .on_failure(permit.generation, permit.probe, clock_now());
    }

    /// Sets the permit aside without its drop glue; the holder must [`RawPermit::resume`] it.
    #[inline]
    pub(crate) fn park(self) -> RawPermit {
        let permit = ManuallyDrop::new(self);
        RawPermit {
            breaker: permit.breaker,
            generation: permit.generation,
            probe: permit.probe,
        }
    }

    /// True if this permit is one of the half-open trial calls.
    ///
    /// ```
    /// use retry_runtime::{Breaker, BreakerConfig};
    ///
    /// static DNS: Breaker = Breaker::new("dns", BreakerConfig::DEFAULT);
    /// let permit = DNS.admit().unwrap();
    /// assert!(!permit.is_probe()); // closed: an ordinary call
    /// permit.success();
    /// ```
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        if self.probe {
            self.breaker
                .probe_done(self.generation, ProbeOutcome::Dropped);
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("probe", &self.probe)
            .field("generation", &self.generation)
            .finish()
    }
}
